"""What one :class:`~cirq_iqm_ext.IQMClient` is configured with, and the checks on it.

:func:`resolve_settings` reads the constructor arguments and the ``IQM_*`` environment variables
into a frozen :class:`ClientSettings`: the server URL (checked and normalised), the protocol
profile asked for, the timeouts and the retry policy. :func:`check_credential_transport` is the
TLS/loopback policy for secrets: a bearer token or a password travels over plain http only to this
machine. Credentials themselves are never part of the settings, so printing them shows no secret.
"""

from __future__ import annotations

import ipaddress
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from cirq_iqm_ext._version import __version__
from cirq_iqm_ext.client.profiles.base import API_CHOICES
from cirq_iqm_ext.client.retry import RetryPolicy
from cirq_iqm_ext.errors import ClientConfigurationError

#: The per-request timeout of the CoCoS v1 profile (and of ``api="auto"``), in seconds.
DEFAULT_REQUESTS_TIMEOUT = 60.0
#: The per-request timeout of the IQM Server API profile (PROTOCOL_IQM_SERVER.md §1.4).
IQM_SERVER_REQUESTS_TIMEOUT = 120.0
#: The longest interval between two status polls, in seconds.
DEFAULT_SECONDS_BETWEEN_CALLS = 1.0
#: How long ``wait_for_results`` waits by default, in seconds.
DEFAULT_TIMEOUT_SECONDS = 900.0


@dataclass(frozen=True)
class ClientSettings:
    """The resolved configuration of one client (no credentials in it).

    Attributes:
        url: The base URL without a trailing slash (as given, so possibly with user info; left
            out of ``repr``).
        display_url: ``url`` without user name or password, safe to show.
        api: ``"auto"``, ``"cocos-v1"`` or ``"iqm-server"``, as asked for.
        quantum_computer: The alias asked for on an IQM server, or ``None``.
        timeout: Per-request network timeout in seconds.
        seconds_between_calls: Longest interval between status polls in seconds.
        retry_policy: How transient failures are retried.
        idempotent_submissions: Whether the server is trusted to deduplicate submissions
            (``None``: only once it says so).
        user_agent: The ``User-Agent`` header sent with every request.
    """

    # The URL may carry user info (a secret), so only display_url is shown.
    url: str = field(repr=False)
    display_url: str
    api: str
    quantum_computer: str | None
    timeout: float
    seconds_between_calls: float
    retry_policy: RetryPolicy
    idempotent_submissions: bool | None
    user_agent: str

    @property
    def has_path(self) -> bool:
        """Whether the URL has a path, i.e. is a v1 per-computer URL (the IQM Server API is
        mounted at the root)."""
        return bool(urlsplit(self.url).path.strip("/"))


def redact_url(url: str) -> str:
    """The URL without any user name or password in it, safe to show."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def user_agent(client_signature: str | None = None) -> str:
    """The ``User-Agent`` header of PROTOCOL.md §1."""
    agent = f"{platform.platform(terse=True)}, python {platform.python_version()}, "
    agent += f"cirq-iqm-ext {__version__}"
    if client_signature:
        agent += f", {client_signature}"
    return agent


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (``localhost`` or a loopback address)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def env_seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    """A positive number of seconds from the environment variable ``name`` (unset: ``default``).

    Raises:
        ClientConfigurationError: The variable is not a positive number.
    """
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ClientConfigurationError(
            f"The environment variable {name} must be a number of seconds, got {raw!r}"
        ) from None
    if not value > 0:
        raise ClientConfigurationError(f"The environment variable {name} must be positive")
    return value


def _checked_url(url: str | None, api: str, environ: Mapping[str, str]) -> str:
    if url is None:
        url = environ.get("IQM_SERVER_URL") or None
        if url is None:
            raise ClientConfigurationError(
                "No server URL: pass url= or set the environment variable IQM_SERVER_URL"
            )
    if not isinstance(url, str):
        raise ClientConfigurationError(f"The URL must be a string, got {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ClientConfigurationError(
            f"The URL must start with http:// or https:// and name a host, got {redact_url(url)!r}"
        )
    if api == "iqm-server" and parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ClientConfigurationError(
            f"Plain http is allowed only for this machine (localhost, 127.0.0.1, ::1), got "
            f"{parts.hostname}: use an https:// URL"
        )
    return url.rstrip("/")


def resolve_settings(
    url: str | None,
    *,
    api: str,
    quantum_computer: str | None,
    timeout: float | None,
    seconds_between_calls: float | None,
    retry_policy: RetryPolicy | None,
    idempotent_submissions: bool | None,
    client_signature: str | None,
    environ: Mapping[str, str],
) -> ClientSettings:
    """The settings from the constructor arguments, falling back to ``IQM_*`` variables.

    Raises:
        ClientConfigurationError: ``api`` is unknown, the URL is missing or not http(s) (or plain
            http to another host with ``api="iqm-server"``), or a timeout variable is malformed.
    """
    if api not in API_CHOICES:
        raise ClientConfigurationError(
            f"api must be one of {', '.join(map(repr, API_CHOICES))}, got {api!r}"
        )
    url = _checked_url(url, api, environ)
    default_timeout = (
        IQM_SERVER_REQUESTS_TIMEOUT if api == "iqm-server" else DEFAULT_REQUESTS_TIMEOUT
    )
    return ClientSettings(
        url=url,
        display_url=redact_url(url),
        api=api,
        quantum_computer=(
            quantum_computer
            if quantum_computer is not None
            else environ.get("IQM_QUANTUM_COMPUTER") or None
        ),
        timeout=timeout or env_seconds(environ, "IQM_CLIENT_REQUESTS_TIMEOUT", default_timeout),
        seconds_between_calls=seconds_between_calls
        or env_seconds(environ, "IQM_CLIENT_SECONDS_BETWEEN_CALLS", DEFAULT_SECONDS_BETWEEN_CALLS),
        retry_policy=retry_policy or RetryPolicy(),
        idempotent_submissions=idempotent_submissions,
        user_agent=user_agent(client_signature),
    )


def check_credential_transport(url: str, auth_parameters: Mapping[str, str]) -> None:
    """Refuses to send a secret where it could be read on the way (PROTOCOL.md §6).

    A bearer token goes over plain http only to this machine; a password goes to the auth server
    only over https (or plain http to this machine).

    Raises:
        ClientConfigurationError: Either rule would be broken.
    """
    parts = urlsplit(url)
    if auth_parameters and parts.scheme == "http" and not is_loopback(parts.hostname or ""):
        raise ClientConfigurationError(
            f"Refusing to send a bearer token over plain http to {parts.hostname}: use an "
            "https:// URL (plain http is allowed only for this machine, e.g. 127.0.0.1)"
        )
    auth_parts = urlsplit(str(auth_parameters.get("auth_server_url", "https://x")))
    if auth_parts.scheme != "https" and not (
        auth_parts.scheme == "http" and is_loopback(auth_parts.hostname or "")
    ):
        raise ClientConfigurationError(
            f"Refusing to send a password to the auth server {auth_parts.hostname or ''!s} "
            "over anything but https (plain http is allowed only for this machine)"
        )
