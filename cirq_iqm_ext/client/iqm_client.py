"""``IQMClient``: the HTTP client for IQM's job API (PROTOCOL.md), the only code that does HTTP.

The public methods are the ones users know from IQM's own client (``submit_circuits``,
``get_run_status``, ``get_run``, ``wait_for_results``, ``wait_for_compilation``, ``abort_job``,
``get_quantum_architecture``, ``close_auth_session``). Underneath there is one ``httpx.Client``
(so connections are reused), one retry loop for transient failures, one polling loop for waiting,
and one function that maps an HTTP answer to the package's exception tree.

Retries and duplicates (PROTOCOL.md §5): reads and ``abort`` are retried on connection errors, 429,
502, 503 and 504 within a bounded, jittered schedule that honours ``Retry-After``. ``POST jobs``
carries an ``Idempotency-Key`` (the same on every attempt of one call) and is repeated only when
it provably did not reach the server (connect error, 429, 503), or when the server deduplicates on
the key: it said so with an ``IQM-Idempotency-Keys`` response header, or the user passed
``idempotent_submissions=True``. Otherwise an ambiguous failure raises
:class:`~cirq_iqm_ext.JobSubmissionUncertainError`, which carries the key to repeat the
submission with safely.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import platform
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import httpx

from cirq_iqm_ext._version import __version__
from cirq_iqm_ext.client.auth import (
    TokenProvider,
    create_token_provider,
    gather_auth_parameters,
)
from cirq_iqm_ext.client.profiles.base import API_CHOICES, Profile, create_profile, detect_profile
from cirq_iqm_ext.client.retry import RetryPolicy, parse_retry_after, poll_intervals
from cirq_iqm_ext.client.retry import is_ambiguous as _is_ambiguous
from cirq_iqm_ext.client.retry import may_retry as _may_retry
from cirq_iqm_ext.client.retry import retry_delay as _retry_delay
from cirq_iqm_ext.errors import (
    APITimeoutError,
    CircuitExecutionError,
    CircuitValidationError,
    ClientAuthenticationError,
    ClientConfigurationError,
    IQMConnectionError,
    IQMError,
    JobNotFoundError,
    JobSubmissionUncertainError,
    ServerResponseError,
)
from cirq_iqm_ext.wire.models import (
    Circuit,
    HeraldingMode,
    QuantumArchitectureSpecification,
    RunRequest,
    RunResult,
    RunStatus,
    Status,
    serialize_qubit_mapping,
)
from cirq_iqm_ext.wire.protocol import IDEMPOTENCY_KEY_HEADER, IDEMPOTENCY_SUPPORT_HEADER
from cirq_iqm_ext.wire.validation import allows_dynamic_circuits, validate_run_request

logger = logging.getLogger(__name__)

DEFAULT_REQUESTS_TIMEOUT = 60.0
#: The per-request timeout of the IQM Server API profile (PROTOCOL_IQM_SERVER.md §1.4).
IQM_SERVER_REQUESTS_TIMEOUT = 120.0
DEFAULT_SECONDS_BETWEEN_CALLS = 1.0
DEFAULT_TIMEOUT_SECONDS = 900.0
#: The first status poll comes this soon, so short jobs return quickly; later polls slow down.
FIRST_POLL_SECONDS = 0.02
#: Longest a long-polling status request asks the server to hold its answer.
LONG_POLL_SECONDS = 10.0
#: A response header by which a server says that it deduplicates ``POST jobs`` on the
#: ``Idempotency-Key`` request header (any value). Seeing it once lets the client repeat a
#: submission whose outcome is unknown, with the same key, instead of raising
#: :class:`~cirq_iqm_ext.JobSubmissionUncertainError`.
IDEMPOTENCY_HEADER = IDEMPOTENCY_SUPPORT_HEADER


class IQMServerWarning(UserWarning):
    """A warning the IQM server attached to a job, re-emitted on the client side."""


def _env_float(environ: Mapping[str, str], name: str, default: float) -> float:
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


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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


class IQMClient:
    """A client for one IQM quantum computer, over either protocol profile.

    The same methods and results serve both wire APIs: the CoCoS v1 job API (PROTOCOL.md) and the
    IQM Server API of today's IQM servers (PROTOCOL_IQM_SERVER.md). The profile converts units,
    statuses, architectures and results at the edge (:mod:`cirq_iqm_ext.client.profiles.base`).

    Args:
        url: Base URL of the quantum computer (v1) or root URL of the IQM server, ``http://`` or
            ``https://``. Default: ``IQM_SERVER_URL``.
        quantum_computer: Alias of the quantum computer on an IQM server (``iqm-server`` profile).
            Default: ``IQM_QUANTUM_COMPUTER``, else the server's only one.
        api: ``"cocos-v1"``, ``"iqm-server"``, or ``"auto"`` (default): decided on first use from
            what the server answers to ``GET api/v1/quantum-computers`` (200 with a list:
            ``iqm-server``; 404 or 405: ``cocos-v1``). A URL with a path is a v1 per-computer URL
            (the IQM Server API lives at the root), so ``auto`` needs no probe for it.
        token: A long-lived token (authentication way 1).
        tokens_file: Path of a tokens file kept fresh by a login tool (way 2).
        auth_server_url: Base URL of the OpenID Connect server (way 3, with ``username`` and
            ``password``).
        username: User name for way 3.
        password: Password for way 3.
        client_signature: Extra text appended to the ``User-Agent`` header.
        transport: An ``httpx`` transport to send requests through, e.g. ``httpx.MockTransport`` in
            tests. Default: a real network connection pool.
        timeout: Per-request network timeout in seconds. Default: ``IQM_CLIENT_REQUESTS_TIMEOUT``
            or 60 (120 with ``api="iqm-server"``).
        seconds_between_calls: Longest interval between status polls. Default:
            ``IQM_CLIENT_SECONDS_BETWEEN_CALLS`` or 1.
        retry_policy: How transient failures are retried.
        idempotent_submissions: Whether the server deduplicates ``POST jobs`` on the
            ``Idempotency-Key`` header the client sends, so that a submission whose outcome is
            unknown (a connection lost after sending, 502, 504) may be repeated with the same key
            without creating a second job. ``None`` (default): only once the server has said so
            with an ``IQM-Idempotency-Keys`` response header; ``True``: trust it (e.g. the
            project's own server); ``False``: never repeat such a submission, raise
            :class:`~cirq_iqm_ext.JobSubmissionUncertainError` instead.
        sleep: Sleep function (injectable for tests).
        monotonic: Monotonic clock used for deadlines (injectable for tests).
        environ: Environment to read ``IQM_*`` variables from. Default: ``os.environ`` at call time.

    Authentication parameters come either all from the constructor or all from the environment
    (``IQM_TOKEN``, ``IQM_TOKENS_FILE``, ``IQM_AUTH_SERVER``, ``IQM_AUTH_USERNAME``,
    ``IQM_AUTH_PASSWORD``); none at all means no ``Authorization`` header.

    Raises:
        ClientConfigurationError: The URL is not http(s) (or missing), ``api`` is unknown, the
            authentication parameters are not one valid combination, an environment variable is
            malformed, or a bearer token would be sent over plain http to a host other than this
            machine (with ``api="iqm-server"``: any plain http to such a host).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        quantum_computer: str | None = None,
        api: str = "auto",
        token: str | None = None,
        tokens_file: str | os.PathLike[str] | None = None,
        auth_server_url: str | None = None,
        username: str | None = None,
        password: str | None = None,
        client_signature: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float | None = None,
        seconds_between_calls: float | None = None,
        retry_policy: RetryPolicy | None = None,
        idempotent_submissions: bool | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        environ: Mapping[str, str] | None = None,
    ):
        environ = os.environ if environ is None else environ
        if api not in API_CHOICES:
            raise ClientConfigurationError(
                f"api must be one of {', '.join(map(repr, API_CHOICES))}, got {api!r}"
            )
        if url is None:
            url = environ.get("IQM_SERVER_URL") or None
            if url is None:
                raise ClientConfigurationError(
                    "No server URL: pass url= or set the environment variable IQM_SERVER_URL"
                )
        if quantum_computer is None:
            quantum_computer = environ.get("IQM_QUANTUM_COMPUTER") or None
        if not isinstance(url, str):
            raise ClientConfigurationError(f"The URL must be a string, got {type(url).__name__}")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ClientConfigurationError(
                f"The URL must start with http:// or https:// and name a host, got "
                f"{redact_url(url)!r}"
            )
        if api == "iqm-server" and parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise ClientConfigurationError(
                f"Plain http is allowed only for this machine (localhost, 127.0.0.1, ::1), got "
                f"{parts.hostname}: use an https:// URL"
            )
        self._url = url.rstrip("/")
        self._display_url = redact_url(self._url)
        self._api = api
        self._quantum_computer = quantum_computer
        self._profile: Profile | None = None
        self._profile_lock = threading.Lock()
        self._timeout = timeout or _env_float(
            environ,
            "IQM_CLIENT_REQUESTS_TIMEOUT",
            IQM_SERVER_REQUESTS_TIMEOUT if api == "iqm-server" else DEFAULT_REQUESTS_TIMEOUT,
        )
        self._seconds_between_calls = seconds_between_calls or _env_float(
            environ, "IQM_CLIENT_SECONDS_BETWEEN_CALLS", DEFAULT_SECONDS_BETWEEN_CALLS
        )
        self._retry_policy = retry_policy or RetryPolicy()
        self._idempotent_submissions = idempotent_submissions
        self._dedup_advertised = False
        self._sleep = sleep
        self._monotonic = monotonic
        auth_parameters = gather_auth_parameters(
            {
                "token": token,
                "tokens_file": tokens_file,
                "auth_server_url": auth_server_url,
                "username": username,
                "password": password,
            },
            environ,
        )
        if auth_parameters and parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise ClientConfigurationError(
                f"Refusing to send a bearer token over plain http to {parts.hostname}: use an "
                "https:// URL (plain http is allowed only for this machine, e.g. 127.0.0.1)"
            )
        auth_parts = urlsplit(str(auth_parameters.get("auth_server_url", "https://x")))
        if auth_parts.scheme != "https" and not (
            auth_parts.scheme == "http" and _is_loopback(auth_parts.hostname or "")
        ):
            raise ClientConfigurationError(
                f"Refusing to send a password to the auth server {auth_parts.hostname or ''!s} "
                "over anything but https (plain http is allowed only for this machine)"
            )
        self._http = httpx.Client(
            transport=transport,
            timeout=self._timeout,
            headers={"User-Agent": user_agent(client_signature)},
        )
        self._auth_way = next(iter(auth_parameters), None)
        self._token_provider: TokenProvider | None = create_token_provider(
            auth_parameters, self._http, timeout=self._timeout
        )
        self._architecture: QuantumArchitectureSpecification | None = None
        self._architecture_lock = threading.Lock()
        self._feedback_groups: tuple[tuple[frozenset[str], ...] | None] | None = None
        self._closed = False

    # ------------------------------------------------------------------ life cycle

    def __repr__(self) -> str:
        way = {
            None: "none",
            "token": "token",
            "tokens_file": "tokens file",
            "auth_server_url": "password",
        }[self._auth_way]
        api = self._profile.describe() if self._profile is not None else self._api
        return f"IQMClient({self._display_url!r}, api={api!r}, auth={way!r})"

    def close(self) -> None:
        """Closes the connection pool. The client cannot be used afterwards."""
        self._closed = True
        self._http.close()

    def __enter__(self) -> IQMClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close_auth_session(self) -> bool:
        """Logs out of the auth server when the client logged in with a password.

        Returns:
            True when a session was ended, False when no authentication or no session was active.

        Raises:
            ClientAuthenticationError: The session is not the client's to end (plain token, tokens
                file) or the auth server refused the logout.
        """
        if self._token_provider is None:
            return False
        return self._token_provider.close()

    @property
    def url(self) -> str:
        """The base URL (without credentials)."""
        return self._display_url

    @property
    def api(self) -> str:
        """The protocol profile in use, ``"cocos-v1"`` or ``"iqm-server"`` (detected if needed).

        Raises:
            IQMConnectionError: ``auto`` could not reach the server to decide.
            ClientAuthenticationError: ``auto`` was refused by the server.
        """
        return self.profile.name

    @property
    def profile(self) -> Profile:
        """The protocol profile, chosen once on first use (``api="auto"`` asks the server)."""
        with self._profile_lock:
            if self._profile is None:
                wire = _ClientWire(self)
                if self._api == "auto" and urlsplit(self._url).path.strip("/"):
                    # The IQM Server API is mounted at the root: a path means a v1 base URL.
                    profile = create_profile("cocos-v1", wire)
                elif self._api == "auto":
                    profile = detect_profile(wire, quantum_computer=self._quantum_computer)
                else:
                    profile = create_profile(
                        self._api, wire, quantum_computer=self._quantum_computer
                    )
                logger.info(
                    "IQMClient(%r) speaks the %s API%s",
                    self._display_url,
                    profile.name,
                    " (detected)" if self._api == "auto" else "",
                )
                self._profile = profile
            return self._profile

    # ------------------------------------------------------------------ HTTP core

    def _headers(self, *, force_refresh: bool = False) -> dict[str, str]:
        if self._token_provider is None:
            return {}
        token = self._token_provider.get_token(force_refresh=force_refresh)
        return {"Authorization": f"Bearer {token}"}

    def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool = True,
        extra_headers: Mapping[str, str] | None = None,
        job_id: UUID | None = None,
        capabilities: bool = True,
    ) -> httpx.Response:
        """Sends one logical request, retrying transient failures within the retry policy.

        The decision is :func:`~cirq_iqm_ext.client.retry.may_retry`, the schedule
        :func:`~.retry.retry_delay`. A request that is not idempotent (``POST jobs``)
        is repeated only when the failure shows that the server never acted on it (a connection
        that could not be opened, 429 or 503), or when the server deduplicates on the request's
        ``Idempotency-Key`` (see ``idempotent_submissions``); any other failure of it raises
        :class:`JobSubmissionUncertainError` at once.

        Returns:
            The final answer: a success, a non-retryable status, or the last transient status
            when the retry budget is spent (the caller maps it to an exception).

        Raises:
            IQMConnectionError: The server could not be reached within the retry budget (with the
                URL, the attempts made, and the job id for a job path).
            JobSubmissionUncertainError: A submission failed after it may have reached the server.
        """
        if self._closed:
            raise ClientConfigurationError("This IQMClient is closed; create a new one")
        url = f"{self._url}/{path}"
        display = f"{self._display_url}/{path}"
        key = (extra_headers or {}).get(IDEMPOTENCY_KEY_HEADER)
        started = self._monotonic()
        attempt = 0
        refreshed = False
        maybe_created = False
        while True:
            attempt += 1
            safe = idempotent or (key is not None and self._server_deduplicates())
            headers = {**self._headers(), **(extra_headers or {})}
            response: httpx.Response | None = None
            status: int | None = None
            retry_after: float | None = None
            try:
                response = self._http.request(
                    method, url, json=json_body, content=content, params=params, headers=headers
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
                # The connection was never opened: the request did not leave this machine.
                sent = False
                failure = f"{type(error).__name__}: {error}"
            except httpx.TransportError as error:
                sent = True
                failure = f"{type(error).__name__}: {error}"
            else:
                sent = True
                status = response.status_code
                if capabilities:
                    self._note_capabilities(response)
                if status == 401 and not refreshed and self._token_provider is not None:
                    # One forced token refresh and one repeat (PROTOCOL.md §6). The server refused
                    # the request before acting on it, so this is safe even for POST jobs.
                    refreshed = True
                    attempt -= 1
                    self._headers(force_refresh=True)
                    continue
                if status not in self._retry_policy.statuses:
                    return response
                failure = f"HTTP {status}"
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            # Whether this attempt may have created something (only a submission can).
            ambiguous = _is_ambiguous(status=status, request_sent=sent, idempotent=False)
            maybe_created = maybe_created or (key is not None and ambiguous)
            if not _may_retry(
                status=status, request_sent=sent, idempotent=safe, policy=self._retry_policy
            ):
                # Only this attempt counts: a later definite answer (201, 400) settles it.
                if response is None or (key is not None and ambiguous):
                    raise self._uncertain_submission(display, failure, key, attempt)
                return response
            delay = _retry_delay(
                attempt, self._monotonic() - started, self._retry_policy, retry_after=retry_after
            )
            if delay is None:
                if maybe_created:
                    raise self._uncertain_submission(display, failure, key, attempt)
                raise self._connection_error(
                    method, display, failure, attempt, job_id, retry_after, submission=key
                )
            logger.info(
                "%s %s: %s (attempt %d); retrying in %.2f s",
                method,
                display,
                failure,
                attempt,
                delay,
            )
            self._sleep(delay)

    def _connection_error(
        self,
        method: str,
        display: str,
        failure: str,
        attempts: int,
        job_id: UUID | None,
        retry_after: float | None,
        *,
        submission: str | None = None,
    ) -> IQMConnectionError:
        message = f"{method} {display} failed after {attempts} attempt(s): {failure}"
        if submission is not None:
            message += ". The server did not accept the job; submit it again later"
        if retry_after is not None and retry_after > self._retry_policy.retry_after_cap:
            message += (
                f" (the server asked to retry after {retry_after:g} s, more than the "
                f"{self._retry_policy.retry_after_cap:g} s this client waits)"
            )
        if job_id is not None:
            message += (
                f". Job {job_id} is unaffected on the server; fetch it later with "
                f"get_run({str(job_id)!r}) or wait_for_results({str(job_id)!r})"
            )
        return IQMConnectionError(message, url=display, attempts=attempts, job_id=job_id)

    def _server_deduplicates(self) -> bool:
        """Whether a job submission may be repeated safely with the same ``Idempotency-Key``."""
        if self._idempotent_submissions is not None:
            return self._idempotent_submissions
        return self._dedup_advertised

    def _note_capabilities(self, response: httpx.Response) -> None:
        if IDEMPOTENCY_HEADER in response.headers:
            self._dedup_advertised = True

    def _uncertain_submission(
        self, display: str, failure: str, key: str | None, attempts: int
    ) -> JobSubmissionUncertainError:
        if key is not None:
            how = (
                f"To find it without risking a duplicate, submit the same request again with "
                f"idempotency_key={key!r} (a server that deduplicates on the Idempotency-Key "
                "header answers with the existing job's id); otherwise check the jobs of your "
                "account before submitting again"
            )
        else:
            how = "Check the jobs of your account before submitting again"
        return JobSubmissionUncertainError(
            f"Submitting the job to {display} failed after the request was sent ({failure}, "
            f"attempt {attempts}); the server may have created the job. {how}.",
            url=display,
            attempts=attempts,
            idempotency_key=key,
        )

    def _json(self, response: httpx.Response, endpoint: str, job_id: UUID | None = None) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ServerResponseError(
                f"The server's answer to {endpoint} is not JSON (HTTP {response.status_code}, "
                f"content-type {response.headers.get('content-type', 'none')!r})",
                endpoint=endpoint,
                status_code=response.status_code,
                job_id=job_id,
            ) from None

    def _detail(self, response: httpx.Response) -> str:
        try:
            data = response.json()
        except ValueError:
            text = response.text.strip()
            return text[:500] if text else response.reason_phrase
        # IQM Server API bodies carry "message" (and "detail" with the same text); v1 "detail".
        for field in ("message", "detail"):
            if isinstance(data, dict) and isinstance(data.get(field), str):
                return str(data[field])
        return str(data)[:500]

    def _raise_for_status(
        self,
        response: httpx.Response,
        endpoint: str,
        *,
        job_id: UUID | None = None,
        submission: bool = False,
    ) -> None:
        """Maps an unsuccessful answer to the exception of PROTOCOL.md §5.

        ``submission`` marks a job submission (``POST jobs``, ``POST jobs/{qc}/circuit``): a 400
        or 422 there is a :class:`CircuitValidationError`, a 5xx leaves the outcome uncertain.
        """
        submission = submission or endpoint == "POST jobs"
        code = response.status_code
        if code < 400:
            return
        detail = self._detail(response)
        if code in (401, 403):
            raise ClientAuthenticationError(
                f"Authentication failed for {endpoint} (HTTP {code}): {detail}",
                status_code=code,
                detail=detail,
                job_id=job_id,
            )
        if code == 404 and job_id is not None:
            raise JobNotFoundError(
                f"Job {job_id} not found on {self._display_url}: {detail}",
                job_id=job_id,
                status_code=code,
                detail=detail,
            )
        if 400 <= code < 500:
            error_type: type[IQMError] = (
                CircuitValidationError
                if code in (400, 422) and submission
                else ClientConfigurationError
            )
            raise error_type(
                f"{endpoint} was refused (HTTP {code}): {detail}", status_code=code, detail=detail
            )
        if submission:
            raise JobSubmissionUncertainError(
                f"{endpoint} failed on the server (HTTP {code}): {detail}; the server may have "
                "created the job. Check the jobs of your account before submitting again",
                status_code=code,
                detail=detail,
                url=self._display_url,
            )
        raise IQMConnectionError(
            f"{endpoint} failed on the server (HTTP {code}): {detail}"
            + (f". Job {job_id} may still be running; fetch it later" if job_id else ""),
            url=self._display_url,
            status_code=code,
            detail=detail,
            job_id=job_id,
        )

    @staticmethod
    def _emit_warnings(warning_texts: Iterable[str]) -> None:
        for text in warning_texts:
            warnings.warn(text, IQMServerWarning, stacklevel=3)

    # ------------------------------------------------------------------ architecture

    def get_quantum_architecture(self) -> QuantumArchitectureSpecification:
        """The quantum computer's architecture, fetched once and then cached.

        Raises:
            ClientAuthenticationError: The server refused the credentials.
            ServerResponseError: The answer is not a valid architecture.
            IQMConnectionError: The server could not be reached.
        """
        with self._architecture_lock:
            if self._architecture is None:
                self._architecture = self.profile.architecture()
            return self._architecture

    def get_dynamic_quantum_architecture(
        self, calibration_set_id: UUID | str | None = None
    ) -> QuantumArchitectureSpecification:
        """What one calibration set has calibrated (PROTOCOL.md §4.2), as an architecture.

        Args:
            calibration_set_id: The calibration set; ``None``: the server's default.

        Raises:
            ClientAuthenticationError: The server refused the credentials.
            ClientConfigurationError: The server does not know the calibration set.
            ServerResponseError: The answer is not a valid dynamic architecture.
        """
        cal = None if calibration_set_id is None else _as_uuid(calibration_set_id)
        return self.profile.dynamic_architecture(cal)

    # ------------------------------------------------------------------ jobs

    def create_run_request(
        self,
        circuits: Sequence[Circuit],
        *,
        qubit_mapping: Mapping[str, str] | None = None,
        calibration_set_id: UUID | str | None = None,
        shots: int = 1,
        max_circuit_duration_over_t2: float | None = None,
        heralding_mode: HeraldingMode | str = HeraldingMode.NONE,
        custom_settings: Mapping[str, Any] | None = None,
        move_gate_validation: str | None = None,
        move_gate_frame_tracking: str | None = None,
        active_reset_cycles: int | None = None,
        dd_mode: str | None = None,
        dd_strategy: Mapping[str, Any] | None = None,
        use_timeslot: bool = False,
    ) -> RunRequest:
        """Builds (and validates) the request :meth:`submit_circuits` would send, without sending.

        Raises:
            ModelValidationError: A field is malformed (e.g. shots < 1, a bad mapping, an
                unknown option value).
        """
        if isinstance(circuits, Circuit):
            circuits = [circuits]
        parsed = [c if not isinstance(c, Mapping) else Circuit.from_dict(c) for c in circuits]
        return RunRequest(
            circuits=tuple(parsed),
            shots=shots,
            qubit_mapping=None if qubit_mapping is None else serialize_qubit_mapping(qubit_mapping),
            calibration_set_id=calibration_set_id,  # type: ignore[arg-type]
            custom_settings=None if custom_settings is None else dict(custom_settings),
            max_circuit_duration_over_t2=max_circuit_duration_over_t2,
            heralding_mode=heralding_mode,  # type: ignore[arg-type]
            move_gate_validation=move_gate_validation,
            move_gate_frame_tracking=move_gate_frame_tracking,
            active_reset_cycles=active_reset_cycles,
            dd_mode=dd_mode,
            dd_strategy=None if dd_strategy is None else dict(dd_strategy),
            use_timeslot=use_timeslot,
        )

    def submit_circuits(
        self,
        circuits: Sequence[Circuit],
        *,
        qubit_mapping: Mapping[str, str] | None = None,
        calibration_set_id: UUID | str | None = None,
        shots: int = 1,
        max_circuit_duration_over_t2: float | None = None,
        heralding_mode: HeraldingMode | str = HeraldingMode.NONE,
        custom_settings: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        move_gate_validation: str | None = None,
        move_gate_frame_tracking: str | None = None,
        active_reset_cycles: int | None = None,
        dd_mode: str | None = None,
        dd_strategy: Mapping[str, Any] | None = None,
        use_timeslot: bool = False,
    ) -> UUID:
        """Submits a batch of circuits to run with the same settings.

        The batch is validated against the quantum architecture before anything is posted.
        Mid-circuit measurements pass where the architecture runs dynamic circuits
        (:func:`~cirq_iqm_ext.wire.validation.allows_dynamic_circuits`) and always with the IQM
        Server API; a ``cc_prx`` is checked against :meth:`get_feedback_groups`.

        The job options (PROTOCOL_IQM_SERVER.md §3.1) need the IQM Server API; ``None`` leaves
        the server's default, which is what a CoCoS v1 job gets.

        Args:
            circuits: The circuits (transfer-format :class:`~cirq_iqm_ext.Circuit`).
            qubit_mapping: Names used in the circuits -> physical qubit names; ``None`` when the
                circuits use physical names.
            calibration_set_id: Run with this calibration set instead of the server's default.
            shots: Repetitions of each circuit.
            max_circuit_duration_over_t2: Reject circuits longer than this times the shortest T2;
                ``0.0`` disables the check, ``None`` leaves the server's default.
            heralding_mode: ``"none"`` or ``"zeros"``.
            custom_settings: Expert overrides, normally ``None``.
            idempotency_key: The ``Idempotency-Key`` to send (default: a new random one). Give
                the key of a :class:`~cirq_iqm_ext.JobSubmissionUncertainError` to repeat
                that submission without creating a second job on a server that deduplicates.
            move_gate_validation: ``"strict"``, ``"allow_prx"`` or ``"none"`` (STAR_MOVE.md §6).
            move_gate_frame_tracking: ``"full"``, ``"no_detuning_correction"`` or ``"none"``.
            active_reset_cycles: Active resets before each circuit (``None``: reset by waiting).
            dd_mode: Dynamical decoupling, ``"disabled"`` or ``"enabled"``.
            dd_strategy: The DD sequences (``None``: the server's default).
            use_timeslot: Submit to the timeslot queue instead of the on-demand one.

        Returns:
            The id of the new job.

        Raises:
            ModelValidationError: A field of the request is malformed.
            ClientConfigurationError: A job option is set while the client speaks CoCoS v1.
            CircuitValidationError: A circuit does not fit the architecture.
            JobSubmissionUncertainError: The submission failed after being sent; the job may exist.
            IQMConnectionError: The server could not be reached, or refused the job for now (429,
                503) for longer than the retry policy allows; no job was created.
        """
        request = self.create_run_request(
            circuits,
            qubit_mapping=qubit_mapping,
            calibration_set_id=calibration_set_id,
            shots=shots,
            max_circuit_duration_over_t2=max_circuit_duration_over_t2,
            heralding_mode=heralding_mode,
            custom_settings=custom_settings,
            move_gate_validation=move_gate_validation,
            move_gate_frame_tracking=move_gate_frame_tracking,
            active_reset_cycles=active_reset_cycles,
            dd_mode=dd_mode,
            dd_strategy=dd_strategy,
            use_timeslot=use_timeslot,
        )
        self.validate_run_request(request)
        return self.submit_run_request(request, idempotency_key=idempotency_key)

    def validate_run_request(self, run_request: RunRequest) -> None:
        """Checks a request against the quantum architecture, as the server will.

        Mid-circuit measurements pass where the architecture runs dynamic circuits and with the
        IQM Server API (whose protocol always has them); the request's ``move_gate_validation``
        applies to MOVE sandwiches; a ``cc_prx`` is checked against the feedback groups.

        Raises:
            CircuitValidationError: A circuit does not fit the architecture.
        """
        architecture = self.get_quantum_architecture()
        uses_feedback = any(
            instruction.name == "cc_prx"
            for circuit in run_request.circuits
            for instruction in circuit.instructions
        )
        validate_run_request(
            run_request,
            architecture,
            allow_mid_circuit_measurement=(
                allows_dynamic_circuits(architecture) or self.profile.name == "iqm-server"
            ),
            move_gate_validation=run_request.move_gate_validation or "strict",
            feedback_groups=self.get_feedback_groups() if uses_feedback else None,
        )

    def submit_run_request(
        self,
        run_request: RunRequest,
        *,
        validate: bool = False,
        idempotency_key: str | None = None,
    ) -> UUID:
        """Submits a prepared run request.

        Args:
            run_request: The request, e.g. from :meth:`create_run_request`.
            validate: Check it against the architecture first (:meth:`submit_circuits` always does).
            idempotency_key: As in :meth:`submit_circuits`.

        Returns:
            The id of the new job.
        """
        if validate:
            self.validate_run_request(run_request)
        return self.submit_payload(run_request.to_dict(), idempotency_key=idempotency_key)

    def submit_payload(
        self, payload: Mapping[str, Any] | bytes, *, idempotency_key: str | None = None
    ) -> UUID:
        """Posts an already serialised run request (the fast path of the sampler).

        Every attempt of one call carries the same ``Idempotency-Key``. Retries follow
        PROTOCOL.md §5: a submission is repeated only when it provably did not reach the server,
        or when the server deduplicates on the key (see ``idempotent_submissions``).

        Args:
            payload: The run request as a JSON-ready dict, or as encoded JSON text. Job options
                (``move_gate_validation``, ``move_gate_frame_tracking``, ``active_reset_cycles``,
                ``dd_mode``, ``dd_strategy``, ``use_timeslot``) are top-level fields, as in
                :class:`~cirq_iqm_ext.RunRequest`.
            idempotency_key: As in :meth:`submit_circuits`.

        Returns:
            The id of the new job (or of the job an earlier submission with the same key created).

        Raises:
            JobSubmissionUncertainError: The outcome is unknown; the job may exist (the error
                carries the key to repeat the submission safely with).
            IQMConnectionError: The server could not be reached, or kept refusing (429, 503); no
                job was created.
            ServerResponseError: The server's answer has no job id.
            ClientConfigurationError: A job option is set to a non-default value while the
                client speaks CoCoS v1 (nothing is posted).

        The caller is responsible for the payload being a valid run request.
        """
        return self.profile.submit(payload, idempotency_key or str(uuid.uuid4()))

    def get_run_status(self, job_id: UUID | str) -> RunStatus:
        """The status of a job (cheaper than :meth:`get_run`). Server warnings are re-emitted.

        Raises:
            JobNotFoundError: The server does not know the job.
            ServerResponseError: The answer is malformed.
        """
        return self._get_status(_as_uuid(job_id))[0]

    def _get_status(self, job_id: UUID, wait: float = 0.0) -> tuple[RunStatus, bool]:
        """The status, holding up to ``wait`` s for a change where the server can long-poll.

        Returns:
            The status and whether the server supports long polling (so no sleep is needed).
        """
        status, long_poll = self.profile.status(job_id, wait)
        self._emit_warnings(status.warnings)
        return status, long_poll

    def get_run(self, job_id: UUID | str) -> RunResult:
        """The result of a job (possibly still pending). Server warnings are re-emitted.

        Raises:
            JobNotFoundError: The server does not know the job.
            CircuitExecutionError: The job failed; the message has the job id and the reason.
            ServerResponseError: The answer is malformed.
        """
        job_id = _as_uuid(job_id)
        result = self.profile.result(job_id)
        self._emit_warnings(result.warnings)
        if result.status == Status.FAILED:
            raise CircuitExecutionError(
                f"Job {job_id} failed: {result.message or 'the server gave no reason'}",
                job_id=job_id,
                detail=result.message,
            )
        return result

    def get_run_counts(self, job_id: UUID | str) -> dict[str, Any]:
        """Bitstring counts per circuit: ``{"status", "counts_batch", "warnings"?}`` as JSON.

        ``counts_batch`` is ``None`` until the job is ready (v1 ``jobs/{id}/counts``; IQM Server
        API ``measurement_counts`` artifact).
        """
        return self.profile.counts(_as_uuid(job_id))

    def get_calibration_metrics(
        self, calibration_set_id: UUID | str | None = None
    ) -> dict[str, Any]:
        """Quality metrics of a calibration set (default: the current one), in the form of
        PROTOCOL.md §4.3 whichever profile is in use: ``{"calibration_set_id", "metrics":
        {"QB1.t1_time": {"value": "4.4e-05", "unit": "s"}, "QB1,QB3.cz.fidelity": ...}}``.

        Raises:
            ClientConfigurationError: The server offers no metrics (404).
            ServerResponseError: The answer is malformed.
        """
        which = None if calibration_set_id is None else _as_uuid(calibration_set_id)
        return self.profile.metrics(which)

    def _wait(
        self,
        job_id: UUID,
        timeout_secs: float,
        waiting_for: frozenset[Status],
        what: str,
        status_callback: Callable[[Status, float], None] | None = None,
    ) -> RunResult:
        started = self._monotonic()
        deadline = started + timeout_secs
        warned_unknown: set[str] = set()
        long_poll = False
        for interval in poll_intervals(FIRST_POLL_SECONDS, self._seconds_between_calls):
            # Where the server can hold a status request until the job changes, ask it to: the
            # answer then comes the moment the job is done, with no polling delay.
            hold = min(LONG_POLL_SECONDS, self._timeout / 2, deadline - self._monotonic())
            run_status, long_poll = self._get_status(job_id, hold if long_poll else 0.0)
            status = run_status.status
            if status_callback is not None:
                status_callback(status, self._monotonic() - started)
            if not status.is_known:
                if status.value not in warned_unknown:
                    warned_unknown.add(status.value)
                    warnings.warn(
                        f"Job {job_id} has the status {status.value!r}, which this version of "
                        "cirq-iqm-ext does not know; treating it as still pending",
                        IQMServerWarning,
                        stacklevel=3,
                    )
            elif status not in waiting_for:
                return self.get_run(job_id)
            remaining = deadline - self._monotonic()
            if remaining <= 0:
                raise APITimeoutError(
                    f"Job {job_id} did not {what} within {timeout_secs:g} s; it is still "
                    f"{status.value} on the server. Fetch it later with "
                    f"get_run({str(job_id)!r}) or wait_for_results({str(job_id)!r})",
                    job_id=job_id,
                )
            if not long_poll:
                self._sleep(min(interval, remaining))
        raise AssertionError("poll_intervals() never ends")  # pragma: no cover

    def wait_for_compilation(
        self, job_id: UUID | str, timeout_secs: float = DEFAULT_TIMEOUT_SECONDS
    ) -> RunResult:
        """Polls until the job is past compilation, then returns its (possibly pending) result.

        Raises:
            APITimeoutError: Still compiling after ``timeout_secs``; the job keeps running.
            CircuitExecutionError: The job failed.
        """
        return self._wait(
            _as_uuid(job_id),
            timeout_secs,
            frozenset({Status.PENDING_COMPILATION}),
            "finish compiling",
        )

    def wait_for_results(
        self,
        job_id: UUID | str,
        timeout_secs: float = DEFAULT_TIMEOUT_SECONDS,
        *,
        status_callback: Callable[[Status, float], None] | None = None,
    ) -> RunResult:
        """Polls until the job is ready, failed or aborted and returns its result.

        Polling starts after a few milliseconds and slows down geometrically up to the configured
        interval (``IQM_CLIENT_SECONDS_BETWEEN_CALLS``), so short jobs return quickly and long ones
        do not flood the server. Unknown statuses are treated as pending, with a warning.

        Args:
            job_id: The job to wait for.
            timeout_secs: How long to wait at most.
            status_callback: Called after each poll with the status and the seconds waited so far
                (e.g. to show progress).

        Raises:
            APITimeoutError: Not finished after ``timeout_secs``; the job keeps running and can be
                fetched later.
            CircuitExecutionError: The job failed.
            JobNotFoundError: The server does not know the job.
        """
        return self._wait(
            _as_uuid(job_id),
            timeout_secs,
            frozenset({Status.PENDING_COMPILATION, Status.PENDING_EXECUTION}),
            "finish",
            status_callback,
        )

    def abort_job(self, job_id: UUID | str) -> None:
        """Asks the server to abort a job.

        With the IQM Server API, cancelling a finished job succeeds and changes nothing.

        Raises:
            JobAbortionError: The server refused (v1: e.g. the job already finished).
            JobNotFoundError: The server does not know the job.
        """
        self.profile.abort(_as_uuid(job_id))

    def delete_job(self, job_id: UUID | str) -> None:
        """Deletes a job: cancels it if it has not finished, then the server drops it.

        Afterwards the IQM Server API answers 404 for the job (:class:`JobNotFoundError`); the
        project's v1 server reports the status ``deleted``. There is no way to recover it.

        Raises:
            JobNotFoundError: The server does not know the job (or it was deleted already, with
                the IQM Server API).
            ClientConfigurationError: The server does not delete jobs (a CoCoS v1 server).
        """
        self.profile.delete(_as_uuid(job_id))

    def get_feedback_groups(self) -> tuple[frozenset[str], ...] | None:
        """Groups of qubits that can feed measurement results to each other's ``cc_prx``.

        Within a group any qubit can receive real-time feedback from any other; a qubit may be
        in several groups, and a single group means no restriction. Fetched once, then cached:
        with the IQM Server API from the quantum computer's channel properties (as IQM's client
        36 does), with v1 from the project server's ``feedback-groups`` extension.

        Returns:
            The groups, largest first, or ``None`` when the server does not describe them
            (e.g. a CoCoS v1 server, which runs no ``cc_prx``).

        Raises:
            ClientAuthenticationError: The server refused the credentials.
            ServerResponseError: The answer is malformed.
        """
        with self._architecture_lock:
            if self._feedback_groups is None:
                self._feedback_groups = (self.profile.feedback_groups(),)
            return self._feedback_groups[0]


def _as_uuid(job_id: UUID | str) -> UUID:
    if isinstance(job_id, UUID):
        return job_id
    try:
        return UUID(str(job_id))
    except ValueError:
        raise ClientConfigurationError(f"A job id must be a UUID, got {job_id!r}") from None


class _ClientWire:
    """The :class:`~.profiles.base.Wire` a profile sends through: the client's retry
    loop, authentication and error mapping, so both profiles behave the same on the network."""

    def __init__(self, client: IQMClient):
        self._client = client

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        # The options are those of Wire.request, passed through unchanged.
        return self._client._request(method, path, **options)

    def check(
        self,
        response: httpx.Response,
        endpoint: str,
        *,
        job_id: UUID | None = None,
        submission: bool = False,
    ) -> None:
        self._client._raise_for_status(response, endpoint, job_id=job_id, submission=submission)

    def json(self, response: httpx.Response, endpoint: str, job_id: UUID | None = None) -> Any:
        return self._client._json(response, endpoint, job_id)

    def detail(self, response: httpx.Response) -> str:
        return self._client._detail(response)
