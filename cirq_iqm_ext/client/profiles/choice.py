"""Which protocol profile a client speaks: by name, by the URL's shape, or by asking the server.

This is the one module that knows both profiles; :mod:`.base` (which both import) knows neither,
so there is no import circle.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from cirq_iqm_ext.client.profiles.base import API_CHOICES, Profile, Wire
from cirq_iqm_ext.client.profiles.cocos_v1 import CocosV1Profile
from cirq_iqm_ext.client.profiles.iqm_server import IQMServerProfile
from cirq_iqm_ext.errors import ClientConfigurationError, ServerResponseError
from cirq_iqm_ext.wire.protocol import COCOS_V1_HEADER, PROBE_PATH

logger = logging.getLogger(__name__)


def create_profile(api: str, wire: Wire, *, quantum_computer: str | None = None) -> Profile:
    """The profile named ``api`` (not ``auto``).

    Raises:
        ClientConfigurationError: Unknown name.
    """
    if api == "cocos-v1":
        return CocosV1Profile(wire)
    if api == "iqm-server":
        return IQMServerProfile(wire, quantum_computer=quantum_computer)
    raise ClientConfigurationError(f"api must be one of {', '.join(API_CHOICES)}, got {api!r}")


def detect_profile(wire: Wire, *, quantum_computer: str | None = None) -> Profile:
    """Chooses the profile from what the server answers to ``GET api/v1/quantum-computers``.

    200 with a ``quantum_computers`` list means ``iqm-server``; 404 or 405 means ``cocos-v1``;
    anything else (401, a network error, another body) is raised, not guessed. A server that
    serves both at the same root says so with the header :data:`COCOS_V1_HEADER` (``/``): then
    ``cocos-v1`` is chosen unless a quantum computer was asked for by alias.

    Raises:
        ClientAuthenticationError: The server refused the credentials.
        IQMConnectionError: The server could not be reached.
        ServerResponseError: The answer fits neither profile.
    """
    endpoint = f"GET {PROBE_PATH}"
    response = wire.request("GET", PROBE_PATH, capabilities=False)
    if response.status_code in (404, 405):
        if quantum_computer is not None:
            logger.warning(
                "The server speaks the CoCoS v1 API, which has no quantum computer aliases; "
                "ignoring quantum_computer=%r",
                quantum_computer,
            )
        return CocosV1Profile(wire)
    wire.check(response, endpoint)
    data = wire.json(response, endpoint)
    if isinstance(data, Mapping) and isinstance(data.get("quantum_computers"), list):
        if response.headers.get(COCOS_V1_HEADER) == "/" and quantum_computer is None:
            return CocosV1Profile(wire)
        profile = IQMServerProfile(wire, quantum_computer=quantum_computer)
        profile.remember_quantum_computers(data, endpoint)
        return profile
    raise ServerResponseError(
        f"Cannot tell which API the server speaks: {endpoint} answered HTTP "
        f'{response.status_code} without a "quantum_computers" list; pass api="cocos-v1" or '
        'api="iqm-server"',
        endpoint=endpoint,
        status_code=response.status_code,
    )


def choose_profile(
    api: str, wire: Wire, *, quantum_computer: str | None = None, url_has_path: bool = False
) -> Profile:
    """The profile for ``IQMClient(api=...)``: named, or for ``auto`` found out.

    ``auto`` with a URL that has a path needs no probe: the IQM Server API is mounted at the
    root, so such a URL is a v1 per-computer URL.

    Raises:
        ClientConfigurationError: Unknown name.
        ClientAuthenticationError, IQMConnectionError, ServerResponseError: As
            :func:`detect_profile`.
    """
    if api != "auto":
        return create_profile(api, wire, quantum_computer=quantum_computer)
    if url_has_path:
        return create_profile("cocos-v1", wire)
    return detect_profile(wire, quantum_computer=quantum_computer)


__all__ = ["choose_profile", "create_profile", "detect_profile"]
