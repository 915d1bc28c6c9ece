"""The HTTP client for IQM's job APIs: the only code in the package that does HTTP.

:class:`IQMClient` is the public facade. Its parts: the settings and TLS/loopback policy
(:mod:`.settings`), the session with the connection pool and retry loop (:mod:`.session`), the
retry schedule as pure functions (:mod:`.retry`), the wait loop (:mod:`.polling`), the status ->
exception map (:mod:`.status_errors`), authentication (:mod:`.auth`) and one protocol profile per
wire API (:mod:`.profiles`).
"""

from __future__ import annotations

from cirq_iqm_ext.client.iqm_client import IDEMPOTENCY_HEADER, IQMClient
from cirq_iqm_ext.client.polling import FIRST_POLL_SECONDS, LONG_POLL_SECONDS
from cirq_iqm_ext.client.server_warnings import IQMServerWarning
from cirq_iqm_ext.client.settings import (
    DEFAULT_REQUESTS_TIMEOUT,
    DEFAULT_SECONDS_BETWEEN_CALLS,
    DEFAULT_TIMEOUT_SECONDS,
    IQM_SERVER_REQUESTS_TIMEOUT,
    redact_url,
    user_agent,
)

__all__ = [
    "DEFAULT_REQUESTS_TIMEOUT",
    "DEFAULT_SECONDS_BETWEEN_CALLS",
    "DEFAULT_TIMEOUT_SECONDS",
    "FIRST_POLL_SECONDS",
    "IDEMPOTENCY_HEADER",
    "IQM_SERVER_REQUESTS_TIMEOUT",
    "LONG_POLL_SECONDS",
    "IQMClient",
    "IQMServerWarning",
    "redact_url",
    "user_agent",
]
