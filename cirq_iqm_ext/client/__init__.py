"""The HTTP client for IQM's job APIs: the only code in the package that does HTTP.

:class:`IQMClient` is the public facade; its parts are the retry and polling schedules
(:mod:`.retry`), authentication (:mod:`.auth`) and one protocol profile per wire API
(:mod:`.profiles`).
"""

from __future__ import annotations

from cirq_iqm_ext.client.iqm_client import (
    DEFAULT_REQUESTS_TIMEOUT,
    DEFAULT_SECONDS_BETWEEN_CALLS,
    DEFAULT_TIMEOUT_SECONDS,
    IQMClient,
    IQMServerWarning,
    redact_url,
    user_agent,
)

__all__ = [
    "DEFAULT_REQUESTS_TIMEOUT",
    "DEFAULT_SECONDS_BETWEEN_CALLS",
    "DEFAULT_TIMEOUT_SECONDS",
    "IQMClient",
    "IQMServerWarning",
    "redact_url",
    "user_agent",
]
