"""Runs an end-to-end test module once per protocol profile (CoCoS v1 and the IQM Server API).

A module imports :func:`api` (an autouse fixture parametrised over both profiles) and builds its
clients and samplers with :func:`make_client` / :func:`make_sampler`, which use the profile of the
running test unless a test names one itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cirq_iqm_ext.client.iqm_client import IQMClient
from cirq_iqm_ext.sampling.sampler import IQMSampler
from cirq_iqm_ext.server import EmbeddedServer

PROFILES = ("cocos-v1", "iqm-server")
_CURRENT = ["cocos-v1"]

#: The server's request-count key of a job submission and of an abort, per profile.
SUBMIT_KEY = {"cocos-v1": "POST jobs", "iqm-server": "POST api/v1/jobs/{qc}/circuit"}
ABORT_KEY = {"cocos-v1": "POST jobs/{id}/abort", "iqm-server": "POST api/v1/jobs/{id}/cancel"}


@pytest.fixture(autouse=True, params=PROFILES)
def api(request: pytest.FixtureRequest) -> Iterator[str]:
    """The profile of the running test (every test of the module runs once per profile)."""
    _CURRENT[0] = request.param
    yield request.param
    _CURRENT[0] = "cocos-v1"


def current_api() -> str:
    """The profile of the running test."""
    return _CURRENT[0]


def make_client(url: str, **options: Any) -> IQMClient:
    """An ``IQMClient`` speaking the running test's profile."""
    options.setdefault("api", current_api())
    return IQMClient(url, **options)


def make_sampler(url: str, **options: Any) -> IQMSampler:
    """An ``IQMSampler`` speaking the running test's profile."""
    options.setdefault("api", current_api())
    return IQMSampler(url, **options)


def submissions(server: EmbeddedServer) -> int:
    """Job submissions the server has seen, through either profile."""
    return sum(server.app.stats[key] for key in SUBMIT_KEY.values())


def aborts(server: EmbeddedServer) -> int:
    """Abort (cancel) requests the server has seen, through either profile."""
    return sum(server.app.stats[key] for key in ABORT_KEY.values())
