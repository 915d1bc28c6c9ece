"""The HTTP session under one client: the connection pool, the retry loop, what the server offers.

:class:`Session` is the :class:`~cirq_iqm_ext.client.profiles.base.Wire` the protocol profiles
send through, so retries, idempotency keys, authentication and error mapping behave the same in
both. Retries follow PROTOCOL.md §5, decided by the pure functions of :mod:`.retry`: reads and
``abort`` are retried on connection errors, 429, 502, 503 and 504 within a bounded, jittered
schedule that honours ``Retry-After``. A job submission (a request with a
:class:`~cirq_iqm_ext.client.profiles.base.Submission`) carries an ``Idempotency-Key``, the same on
every attempt, and is repeated only when it provably did not reach the server (connect error, 429,
503) or when the server deduplicates on the key: it said so with an ``IQM-Idempotency-Keys``
response header, or the user passed ``idempotent_submissions=True``. Otherwise an ambiguous
failure raises :class:`~cirq_iqm_ext.JobSubmissionUncertainError`, which carries the key. A
submission whose connection is refused never left, so it is retried beyond the normal attempts,
within ``RetryPolicy.submission_connect_seconds``: a restarting server does not fail it.
"""

from __future__ import annotations

import functools
import logging
import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx

from cirq_iqm_ext.client.auth import BearerAuth, TokenProvider, create_token_provider
from cirq_iqm_ext.client.profiles.base import Submission
from cirq_iqm_ext.client.retry import (
    RetryPolicy,
    is_ambiguous,
    may_retry,
    outage_backoff,
    parse_retry_after,
    retry_delay,
)
from cirq_iqm_ext.client.settings import ClientSettings
from cirq_iqm_ext.client.status_errors import detail_of, error_for_status, json_of
from cirq_iqm_ext.errors import (
    ClientConfigurationError,
    IQMConnectionError,
    JobSubmissionUncertainError,
)
from cirq_iqm_ext.wire.protocol import IDEMPOTENCY_KEY_HEADER, IDEMPOTENCY_SUPPORT_HEADER

logger = logging.getLogger(__name__)

#: Transport failures that happen before the connection is open: the request never left.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def default_tls_context() -> ssl.SSLContext:
    """The certificates httpx trusts by default, loaded once per process (per setting).

    The same trust as ``httpx.Client()``'s default (``SSL_CERT_FILE``, ``SSL_CERT_DIR``, else
    certifi's bundle), but loading the bundle costs about 40 ms, a fifth of a cold sweep, so
    every client of the process shares one context (an ``SSLContext`` may be shared).
    """
    return _tls_context_for(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.lru_cache(maxsize=4)
def _tls_context_for(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    # httpx reads the same variables; the arguments only key the cache.
    return httpx.create_ssl_context()


@dataclass(frozen=True)
class _Call:
    """One logical request, for the retry decisions and the messages."""

    method: str
    display: str
    submission: Submission | None
    job_id: UUID | None


@dataclass(frozen=True)
class _Attempt:
    """The outcome of one attempt: an answer, or a transport failure."""

    response: httpx.Response | None
    sent: bool
    failure: str
    retry_after: float | None = None

    @property
    def status(self) -> int | None:
        return None if self.response is None else self.response.status_code


class Session:
    """The connection pool and retry loop of one client; the profiles' :class:`Wire`.

    Args:
        settings: URL, timeouts, retry policy and what to trust about deduplication.
        auth_parameters: From :func:`~cirq_iqm_ext.client.auth.gather_auth_parameters`.
        transport: An ``httpx`` transport (default: a real connection pool).
        sleep: Sleeps between retries (injectable for tests).
        monotonic: The clock for the retry budget (injectable for tests).
    """

    def __init__(
        self,
        settings: ClientSettings,
        auth_parameters: Mapping[str, str],
        *,
        transport: httpx.BaseTransport | None,
        sleep: Callable[[float], None],
        monotonic: Callable[[], float],
    ):
        self._settings = settings
        self._sleep = sleep
        self._monotonic = monotonic
        self._http = httpx.Client(
            transport=transport,
            timeout=settings.timeout,
            headers={"User-Agent": settings.user_agent},
            verify=default_tls_context(),
        )
        # A password login talks to the auth server through the same pool.
        self._token_provider: TokenProvider | None = create_token_provider(
            auth_parameters, self._http, timeout=settings.timeout
        )
        self._deduplication_advertised = False
        self._capabilities_seen = False
        self._closed = False

    # ------------------------------------------------------------------ state

    @property
    def http(self) -> httpx.Client:
        """The ``httpx.Client`` every request goes through."""
        return self._http

    @property
    def token_provider(self) -> TokenProvider | None:
        """Where bearer tokens come from (``None``: no authentication)."""
        return self._token_provider

    @property
    def server_deduplicates(self) -> bool:
        """Whether a job submission may be repeated safely with the same ``Idempotency-Key``:
        as the user said, else once the server has advertised it."""
        if self._settings.idempotent_submissions is not None:
            return self._settings.idempotent_submissions
        return self._deduplication_advertised

    @property
    def knows_deduplication(self) -> bool:
        """Whether :attr:`server_deduplicates` is settled: the user said, or an answer of the
        server (one that says what it offers: a success, or any answer with the header) came."""
        return self._settings.idempotent_submissions is not None or self._capabilities_seen

    def close(self) -> None:
        """Closes the connection pool; later requests raise ``ClientConfigurationError``."""
        self._closed = True
        self._http.close()

    # ------------------------------------------------------------------ Wire

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        submission: Submission | None = None,
        extra_headers: Mapping[str, str] | None = None,
        job_id: UUID | None = None,
        capabilities: bool = True,
    ) -> httpx.Response:
        """Sends one logical request, retrying transient failures within the retry policy.

        Returns:
            The final answer: a success, a non-retryable status, or the last transient status
            when the retry budget is spent (:meth:`check` maps it to an exception).

        Raises:
            IQMConnectionError: The server could not be reached within the retry budget (with the
                URL, the attempts made, and the job id for a job path).
            JobSubmissionUncertainError: A submission failed after it may have reached the server.
            ClientConfigurationError: The session is closed.
        """
        if self._closed:
            raise ClientConfigurationError("This IQMClient is closed; create a new one")
        headers = dict(extra_headers or {})
        if submission is not None:
            headers[IDEMPOTENCY_KEY_HEADER] = submission.idempotency_key
        # One auth per logical request: its one forced refresh on 401 spans all attempts.
        auth = None if self._token_provider is None else BearerAuth(self._token_provider)
        url = f"{self._settings.url}/{path}"

        def send() -> httpx.Response:
            return self._http.request(
                method,
                url,
                json=json_body,
                content=content,
                params=params,
                headers=headers,
                auth=auth,
            )

        call = _Call(method, f"{self._settings.display_url}/{path}", submission, job_id)
        return self._send_with_retries(send, call, note_capabilities=capabilities)

    def check(
        self,
        response: httpx.Response,
        endpoint: str,
        *,
        job_id: UUID | None = None,
        submission: bool = False,
    ) -> None:
        """Raises the package's exception for an unsuccessful answer (PROTOCOL.md §5).

        ``submission`` marks a job submission: a 400 or 422 there is a
        :class:`~cirq_iqm_ext.CircuitValidationError`, a 5xx leaves the outcome uncertain.
        """
        if response.status_code < 400:
            return
        error = error_for_status(
            response.status_code,
            detail_of(response),
            endpoint=endpoint,
            url=self._settings.display_url,
            job_id=job_id,
            submission=submission,
        )
        if error is not None:
            raise error

    def json(self, response: httpx.Response, endpoint: str, job_id: UUID | None = None) -> Any:
        """The answer's JSON, or :class:`~cirq_iqm_ext.ServerResponseError`."""
        return json_of(response, endpoint, job_id)

    def detail(self, response: httpx.Response) -> str:
        """The human-readable text of an error answer."""
        return detail_of(response)

    # ------------------------------------------------------------------ retries

    def _send_with_retries(
        self, send: Callable[[], httpx.Response], call: _Call, *, note_capabilities: bool
    ) -> httpx.Response:
        policy = self._settings.retry_policy
        started = self._monotonic()
        maybe_created = False  # whether any attempt may have created a job
        attempt = 0
        while True:
            attempt += 1
            safe = call.submission is None or self.server_deduplicates
            outcome = _attempt(send)
            if outcome.response is not None:
                if note_capabilities:
                    self._note_capabilities(outcome.response)
                if outcome.response.status_code not in policy.statuses:
                    return outcome.response
            ambiguous = call.submission is not None and is_ambiguous(
                status=outcome.status, request_sent=outcome.sent, idempotent=False
            )
            maybe_created = maybe_created or ambiguous
            if not may_retry(
                status=outcome.status, request_sent=outcome.sent, idempotent=safe, policy=policy
            ):
                # Only this attempt counts: a later definite answer (201, 400) settles it.
                if outcome.response is None or ambiguous:
                    raise _uncertain_submission(call, outcome, attempt)
                return outcome.response
            elapsed = self._monotonic() - started
            delay = retry_delay(attempt, elapsed, policy, retry_after=outcome.retry_after)
            if delay is None and call.submission is not None and not maybe_created:
                delay = _unsent_submission_delay(outcome, attempt, elapsed, policy)
            if delay is None:
                if maybe_created:
                    raise _uncertain_submission(call, outcome, attempt)
                raise _connection_error(call, outcome, attempt, policy)
            logger.info(
                "%s %s: %s (attempt %d); retrying in %.2f s",
                call.method,
                call.display,
                outcome.failure,
                attempt,
                delay,
            )
            self._sleep(delay)

    def _note_capabilities(self, response: httpx.Response) -> None:
        if IDEMPOTENCY_SUPPORT_HEADER in response.headers:
            self._deduplication_advertised = True
            self._capabilities_seen = True
        elif response.is_success:
            # A gateway's 502 says nothing about the server behind it; its own success does.
            self._capabilities_seen = True


def _unsent_submission_delay(
    outcome: _Attempt, attempt: int, elapsed: float, policy: RetryPolicy
) -> float | None:
    """The sleep before repeating a submission that never left, past the normal retry budget.

    A refused connection proves the server never saw the job, so repeating it is safe; a server
    being restarted refuses for a few seconds, which should not fail the submission. Its own
    budget is ``policy.submission_connect_seconds``.
    """
    if outcome.sent:
        return None
    delay = outage_backoff(attempt)
    if elapsed + delay > policy.submission_connect_seconds:
        return None
    return delay


def _attempt(send: Callable[[], httpx.Response]) -> _Attempt:
    """Sends once; a transport failure becomes an outcome, not an exception."""
    try:
        response = send()
    except _NOT_SENT as error:
        return _Attempt(None, sent=False, failure=f"{type(error).__name__}: {error}")
    except httpx.TransportError as error:
        return _Attempt(None, sent=True, failure=f"{type(error).__name__}: {error}")
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return _Attempt(response, True, f"HTTP {response.status_code}", retry_after)


def _connection_error(
    call: _Call, outcome: _Attempt, attempts: int, policy: RetryPolicy
) -> IQMConnectionError:
    message = f"{call.method} {call.display} failed after {attempts} attempt(s): {outcome.failure}"
    if call.submission is not None:
        message += ". The server did not accept the job; submit it again later"
    retry_after = outcome.retry_after
    if retry_after is not None and retry_after > policy.retry_after_cap:
        message += (
            f" (the server asked to retry after {retry_after:g} s, more than the "
            f"{policy.retry_after_cap:g} s this client waits)"
        )
    if call.job_id is not None:
        message += (
            f". Job {call.job_id} is unaffected on the server; fetch it later with "
            f"get_run({str(call.job_id)!r}) or wait_for_results({str(call.job_id)!r})"
        )
    return IQMConnectionError(message, url=call.display, attempts=attempts, job_id=call.job_id)


def _uncertain_submission(
    call: _Call, outcome: _Attempt, attempts: int
) -> JobSubmissionUncertainError:
    key = None if call.submission is None else call.submission.idempotency_key
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
        f"Submitting the job to {call.display} failed after the request was sent "
        f"({outcome.failure}, attempt {attempts}); the server may have created the job. {how}.",
        url=call.display,
        attempts=attempts,
        idempotency_key=key,
    )
