"""``IQMClient``: the HTTP client for IQM's job APIs, a facade over the parts in this package.

The public methods are the ones users know from IQM's own client (``submit_circuits``,
``get_run_status``, ``get_run``, ``wait_for_results``, ``wait_for_compilation``, ``abort_job``,
``get_quantum_architecture``, ``close_auth_session``). The work is done underneath:

- :mod:`.settings`: the URL, the environment, timeouts and the TLS/loopback policy;
- :mod:`.session`: one ``httpx.Client`` (so connections are reused), the retry loop of
  PROTOCOL.md §5 (decided by :mod:`.retry`) and what the server advertises;
- :mod:`.auth`: the token providers and the ``httpx.Auth`` that refreshes on 401;
- :mod:`.status_errors`: an HTTP answer -> the package's exception;
- :mod:`.polling`: the wait loop; :mod:`.profiles`: one module per wire API.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any
from uuid import UUID

import httpx

from cirq_iqm_ext.client.auth import TokenProvider, gather_auth_parameters
from cirq_iqm_ext.client.polling import (
    FIRST_POLL_SECONDS,
    LONG_POLL_SECONDS,
    PollSchedule,
    Progress,
    through_outages,
    wait_while,
)
from cirq_iqm_ext.client.profiles.base import Profile
from cirq_iqm_ext.client.profiles.choice import choose_profile
from cirq_iqm_ext.client.retry import RetryPolicy
from cirq_iqm_ext.client.server_warnings import IQMServerWarning, emit_server_warnings
from cirq_iqm_ext.client.session import Session
from cirq_iqm_ext.client.settings import (
    DEFAULT_REQUESTS_TIMEOUT,
    DEFAULT_SECONDS_BETWEEN_CALLS,
    DEFAULT_TIMEOUT_SECONDS,
    IQM_SERVER_REQUESTS_TIMEOUT,
    ClientSettings,
    check_credential_transport,
    redact_url,
    resolve_settings,
    user_agent,
)
from cirq_iqm_ext.errors import CircuitExecutionError, ClientConfigurationError, IQMError
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
from cirq_iqm_ext.wire.protocol import IDEMPOTENCY_SUPPORT_HEADER
from cirq_iqm_ext.wire.validation import allows_dynamic_circuits, validate_run_request

logger = logging.getLogger(__name__)

#: A response header by which a server says that it deduplicates ``POST jobs`` on the
#: ``Idempotency-Key`` request header (see :mod:`.session`).
IDEMPOTENCY_HEADER = IDEMPOTENCY_SUPPORT_HEADER

#: What ``repr`` says about each way of authenticating.
_AUTH_WAYS = {
    None: "none",
    "token": "token",
    "tokens_file": "tokens file",
    "auth_server_url": "password",
}


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
        self._settings = resolve_settings(
            url,
            api=api,
            quantum_computer=quantum_computer,
            timeout=timeout,
            seconds_between_calls=seconds_between_calls,
            retry_policy=retry_policy,
            idempotent_submissions=idempotent_submissions,
            client_signature=client_signature,
            environ=environ,
        )
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
        check_credential_transport(self._settings.url, auth_parameters)
        self._session = Session(
            self._settings, auth_parameters, transport=transport, sleep=sleep, monotonic=monotonic
        )
        self._auth_way = next(iter(auth_parameters), None)
        self._sleep = sleep
        self._monotonic = monotonic
        self._profile: Profile | None = None
        self._profile_lock = threading.Lock()
        self._architecture: QuantumArchitectureSpecification | None = None
        self._architecture_lock = threading.Lock()
        self._feedback_groups: tuple[tuple[frozenset[str], ...] | None] | None = None

    # ------------------------------------------------------------------ life cycle

    def __repr__(self) -> str:
        profile = self._profile
        api = profile.name if profile is not None else self._settings.api
        parts = [repr(self._settings.display_url), f"api={api!r}"]
        qc = profile.quantum_computer if profile is not None else self._settings.quantum_computer
        if qc is not None:
            parts.append(f"quantum_computer={qc!r}")
        parts.append(f"auth={_AUTH_WAYS[self._auth_way]!r}")
        return f"IQMClient({', '.join(parts)})"

    def close(self) -> None:
        """Closes the connection pool. The client cannot be used afterwards."""
        self._session.close()

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
        provider = self._session.token_provider
        return False if provider is None else provider.close()

    @property
    def url(self) -> str:
        """The base URL (without credentials)."""
        return self._settings.display_url

    @property
    def settings(self) -> ClientSettings:
        """The resolved configuration: URL, timeouts, retry policy (never any credential)."""
        return self._settings

    @property
    def token_provider(self) -> TokenProvider | None:
        """Where the bearer tokens come from (``None`` without authentication); its ``repr``
        shows no secret."""
        return self._session.token_provider

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
                settings = self._settings
                self._profile = choose_profile(
                    settings.api,
                    self._session,
                    quantum_computer=settings.quantum_computer,
                    url_has_path=settings.has_path,
                )
                logger.info(
                    "IQMClient(%r) speaks the %s API%s",
                    settings.display_url,
                    self._profile.name,
                    " (detected)" if settings.api == "auto" else "",
                )
            return self._profile

    def clear_cache(self) -> None:
        """Forgets the cached architecture and feedback groups, so that the next call fetches
        them again (e.g. after the quantum computer was recalibrated)."""
        with self._architecture_lock:
            self._architecture = None
            self._feedback_groups = None

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
        self._learn_deduplication()
        return self.profile.submit(payload, idempotency_key or str(uuid.uuid4()))

    def _learn_deduplication(self) -> None:
        """Finds out whether the server deduplicates before the first submission.

        Otherwise a brand-new client whose first request is ``POST jobs`` could not repeat an
        ambiguous failure of it safely. The architecture is what a submission needs anyway
        (and is cached), and the server says on its answer whether it deduplicates. A failure
        here is left to the submission itself, which then stays conservative.
        """
        if self._session.knows_deduplication or self._architecture is not None:
            return
        try:
            self.get_quantum_architecture()
        except IQMError as error:
            logger.info("Could not learn whether the server deduplicates: %s", error)

    def get_run_status(self, job_id: UUID | str) -> RunStatus:
        """The status of a job (cheaper than :meth:`get_run`). Server warnings are re-emitted.

        Raises:
            JobNotFoundError: The server does not know the job.
            ServerResponseError: The answer is malformed.
        """
        status, _ = self.profile.status(_as_uuid(job_id), 0.0)
        emit_server_warnings(status.warnings)
        return status

    def get_run(self, job_id: UUID | str) -> RunResult:
        """The result of a job (possibly still pending). Server warnings are re-emitted.

        Raises:
            JobNotFoundError: The server does not know the job.
            CircuitExecutionError: The job failed; the message has the job id and the reason.
            ServerResponseError: The answer is malformed.
        """
        job_id = _as_uuid(job_id)
        result = self.profile.result(job_id)
        emit_server_warnings(result.warnings)
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

    def _poll(
        self,
        job_id: UUID,
        progress_callback: Callable[[RunStatus, float], None] | None = None,
    ) -> Callable[[float], tuple[Status, bool, Progress | None]]:
        """One status request for :func:`~.polling.wait_while`, re-emitting server warnings."""
        # The clock is read only for a progress callback, so waits without one read it as before.
        started = None if progress_callback is None else self._monotonic()

        def poll(hold: float) -> tuple[Status, bool, Progress | None]:
            run_status, long_poll = self.profile.status(job_id, hold)
            # emit, poll, through_outages, wait_while, the client's wait method, the user's code.
            emit_server_warnings(run_status.warnings, stacklevel=6)
            if progress_callback is not None and started is not None:
                progress_callback(run_status, self._monotonic() - started)
            done, total = run_status.circuits_done, run_status.circuits_total
            # What the server says of its progress guides the schedule (polling.wait_while).
            progress = None if done is None or total is None else (done, total)
            return run_status.status, long_poll, progress

        return poll

    def _schedule(self) -> PollSchedule:
        interval = self._settings.seconds_between_calls
        # On the IQM Server API (no long polling), never poll more often than IQM's own client
        # would with the same interval: it polls at once, then every ``interval`` seconds.
        pace = interval if self.profile.name == "iqm-server" else None
        return PollSchedule(interval, self._settings.timeout, pace=pace)

    def wait_for_compilation(
        self, job_id: UUID | str, timeout_secs: float = DEFAULT_TIMEOUT_SECONDS
    ) -> RunResult:
        """Polls until the job is past compilation, then returns its (possibly pending) result.

        Raises:
            APITimeoutError: Still compiling after ``timeout_secs``; the job keeps running.
            CircuitExecutionError: The job failed.
        """
        job_id = _as_uuid(job_id)
        deadline = self._monotonic() + timeout_secs
        wait_while(
            job_id,
            self._poll(job_id),
            frozenset({Status.PENDING_COMPILATION}),
            what="finish compiling",
            timeout_secs=timeout_secs,
            schedule=self._schedule(),
            monotonic=self._monotonic,
            sleep=self._sleep,
        )
        return self._run_within(job_id, deadline, timeout_secs)

    def wait_for_results(
        self,
        job_id: UUID | str,
        timeout_secs: float = DEFAULT_TIMEOUT_SECONDS,
        *,
        status_callback: Callable[[Status, float], None] | None = None,
        progress_callback: Callable[[RunStatus, float], None] | None = None,
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
            progress_callback: Like ``status_callback``, with the whole :class:`RunStatus`: its
                queue position and circuits done where the server says them.

        The wait outlasts outages: a server that refuses connections (e.g. while it restarts)
        or answers 5xx is tried again, with jittered backoff capped at a few seconds, until
        ``timeout_secs``; only then does the wait give up.

        Raises:
            APITimeoutError: Not finished after ``timeout_secs``; the job keeps running and can be
                fetched later.
            IQMConnectionError: The server could not be reached when ``timeout_secs`` ran out.
            CircuitExecutionError: The job failed.
            JobNotFoundError: The server does not know the job.
        """
        job_id = _as_uuid(job_id)
        deadline = self._monotonic() + timeout_secs
        wait_while(
            job_id,
            self._poll(job_id, progress_callback),
            frozenset({Status.PENDING_COMPILATION, Status.PENDING_EXECUTION}),
            what="finish",
            timeout_secs=timeout_secs,
            schedule=self._schedule(),
            monotonic=self._monotonic,
            sleep=self._sleep,
            status_callback=status_callback,
        )
        return self._run_within(job_id, deadline, timeout_secs)

    def _run_within(self, job_id: UUID, deadline: float, timeout_secs: float) -> RunResult:
        """The result at the end of a wait, fetched through outages until the wait's deadline."""
        return through_outages(
            lambda: self.get_run(job_id),
            job_id=job_id,
            deadline=deadline,
            timeout_secs=timeout_secs,
            monotonic=self._monotonic,
            sleep=self._sleep,
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
