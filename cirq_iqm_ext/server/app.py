"""The IQM-compatible server as a WSGI application (standard library only).

:func:`create_app` builds an :class:`IQMServerApp` from a :class:`ServerConfig`. The app answers the
five core endpoints of PROTOCOL.md §2 plus ``GET health`` and ``GET jobs/{id}/counts``, and, when
users are configured, the OpenID Connect token endpoints of :mod:`cirq_iqm_ext.server.oidc`. Paths
work with or without a trailing slash and with or without the configured base path.

Every answer is JSON. Bad input gets a 4xx with a ``detail``; an unexpected exception is logged here
and answered with a bare 500, never a traceback. Requests are parsed with the same transfer-format
classes and validated with the same function as the client, so both report the same messages.

The app owns a :class:`~cirq_iqm_ext.server.jobs.JobStore` (in memory, or SQLite with a state
directory) and a :class:`~cirq_iqm_ext.server.jobs.Worker` pool with a bounded queue (a full queue
answers 503 with ``Retry-After``); call :meth:`IQMServerApp.close` to stop the workers. It serves
one or more calibration sets (:mod:`cirq_iqm_ext.calibration`) through the optional endpoints of
PROTOCOL.md §2, simulates with their noise unless ``noise="none"``, and checks circuits like the
real machine: the duration against ``max_circuit_duration_over_t2`` times the shortest T2, and the
request limits.
"""

from __future__ import annotations

import collections
import dataclasses
import hmac
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np

from cirq_iqm_ext._version import __version__
from cirq_iqm_ext.calibration import (
    BUILTIN_CALIBRATIONS,
    CalibrationSet,
    generate_calibration,
    load_calibration,
)
from cirq_iqm_ext.catalogue import load_architecture
from cirq_iqm_ext.errors import CircuitValidationError, ModelValidationError
from cirq_iqm_ext.server.jobs import (
    IdempotencyConflictError,
    Job,
    JobFinishedError,
    JobStore,
    QueueFullError,
    UnknownJobError,
    Worker,
)
from cirq_iqm_ext.server.oidc import REALM, OIDCError, TokenIssuer
from cirq_iqm_ext.simulation.simulator import (
    DEFAULT_MAX_BLOCK_QUBITS,
    DEFAULT_MAX_DENSITY_QUBITS,
    DEFAULT_MAX_TRAJECTORIES,
    CalibratedSimulator,
)
from cirq_iqm_ext.wire.models import (
    QuantumArchitectureSpecification,
    RunRequest,
)
from cirq_iqm_ext.wire.protocol import (
    ARCHITECTURE_EXTENSIONS_QUERY,
    IDEMPOTENCY_KEY_HEADER,
    IDEMPOTENCY_SUPPORT_HEADER,
    IDEMPOTENCY_SUPPORT_VALUE,
    LONG_POLL_HEADER,
    LONG_POLL_QUERY,
    MEASUREMENTS_FORMAT_FIELD,
    MEASUREMENTS_QUERY,
    PACKED_FORMAT,
)
from cirq_iqm_ext.wire.validation import (
    DYNAMIC_OPERATIONS,
    allows_dynamic_circuits,
    architecture_resonators,
    validate_run_request,
)

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 20 * 1024 * 1024
#: Server default of ``max_circuit_duration_over_t2`` when a request does not set it.
DEFAULT_MAX_DURATION_OVER_T2 = 1.0
#: Noise settings of :class:`ServerConfig`.
NOISE_MODES = ("calibration", "none")
#: Client library versions this server is known to work with (``GET info/client-libraries``).
CLIENT_LIBRARIES = {
    "iqm-client": {"min": "17.0", "max": "18.0"},
    "cirq-iqm": {"min": "14.0", "max": "15.0"},
    "cirq-iqm-ext": {"min": "0.1", "max": "1.0"},
}
#: Form bodies of the token endpoints are tiny; anything larger is refused.
MAX_FORM_BYTES = 64 * 1024
#: Tells clients that ``POST jobs`` deduplicates on ``Idempotency-Key``, so an ambiguous
#: submission (connection lost before the answer) may be retried with the same key.
IDEMPOTENCY_HEADER = (IDEMPOTENCY_SUPPORT_HEADER, IDEMPOTENCY_SUPPORT_VALUE)

StartResponse = Callable[..., Any]


@dataclass
class ServerConfig:
    """Everything that configures the server app.

    Attributes:
        architecture: Built-in name, JSON file path, dict or architecture object.
        token: A static bearer token that job endpoints require (``None``: no static token).
        auth_users: User name -> password for the OpenID Connect endpoint (``None``: no endpoint).
            When either ``token`` or ``auth_users`` is set, job endpoints require a bearer token.
        seed: Seed of the simulator's random generator.
        job_delay: Seconds each job spends in the pending states (split between them).
        token_lifetime: Seconds an access token from the token endpoint is valid.
        refresh_token_lifetime: Seconds a refresh token is valid (default: 6 x ``token_lifetime``).
        base_path: Optional path prefix, e.g. ``"/cocos"``; requests work with and without it.
        max_body_bytes: Largest accepted request body; larger ones get 413 before being read.
        max_shots: Largest accepted ``shots``.
        max_circuits: Largest accepted number of circuits in one job.
        max_block_qubits: Largest number of entangled qubits the simulator handles.
        calibration_set_id: Id of the default calibration set (default: the set's own id).
        cocos_version: Reported in job metadata.
        calibration: The default calibration set: a built-in name, a JSON file path, a dict or a
            :class:`~cirq_iqm_ext.calibration.CalibrationSet` (default: the built-in set of the
            architecture, or one generated from seed 0 for a custom architecture).
        extra_calibrations: Further calibration sets that requests may name by id.
        noise: ``"calibration"`` simulates with the calibration's noise, ``"none"`` exactly.
        max_circuit_duration_over_t2: Used when a request does not set it (``0.0`` disables).
        max_total_shots: Largest circuits × shots of one job.
        max_density_qubits: Noisy blocks up to this size use an exact density matrix.
        max_trajectories: Most Monte-Carlo trajectories per circuit for larger noisy blocks.
        state_dir: Directory of the SQLite job database (``None``: jobs live in memory only).
        workers: Simulation threads.
        max_queue: Most jobs waiting for a worker; beyond, ``POST jobs`` answers 503.
        retry_after: Seconds suggested in ``Retry-After`` with a 503.
        clock: Current time in seconds since the epoch for the token issuer (injectable for
            tests; default :func:`time.time`).
        delay: Whether the server executes ``delay`` (a wait) and lists it in its architecture
            (default). ``False`` behaves like a real CoCoS v1 server, which has no delay: the
            architecture does not list it and jobs with a delay are refused (400).
        dynamic: Whether the server runs dynamic circuits (default): it lists ``reset`` and
            ``cc_prx`` where the architecture has them and accepts mid-circuit measurements.
            ``False`` behaves like a real CoCoS v1 server: neither is listed anywhere, and jobs
            with them, with a ``feedback_key`` or with mid-circuit measurements are refused (400).
        feedback_groups: Groups of qubits whose ``cc_prx`` can use each other's measurements
            (``None``: one group of all qubits). Served to clients as IQM's channel properties
            and checked on submission.
    """

    architecture: str | Path | Mapping[str, Any] | QuantumArchitectureSpecification = "adonis"
    token: str | None = None
    auth_users: Mapping[str, str] | None = None
    seed: int | None = None
    job_delay: float = 0.0
    token_lifetime: float = 300.0
    refresh_token_lifetime: float | None = None
    base_path: str = ""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_shots: int = 100_000
    max_circuits: int = 10_000
    max_block_qubits: int = DEFAULT_MAX_BLOCK_QUBITS
    calibration_set_id: UUID | None = None
    cocos_version: str = f"cirq-iqm-ext-server {__version__}"
    calibration: str | Path | Mapping[str, Any] | CalibrationSet | None = None
    extra_calibrations: tuple[str | Path | Mapping[str, Any] | CalibrationSet, ...] = ()
    noise: str = "none"
    max_circuit_duration_over_t2: float = DEFAULT_MAX_DURATION_OVER_T2
    max_total_shots: int = 10_000_000
    max_density_qubits: int = DEFAULT_MAX_DENSITY_QUBITS
    max_trajectories: int = DEFAULT_MAX_TRAJECTORIES
    state_dir: str | Path | None = None
    workers: int = 1
    max_queue: int = 1000
    retry_after: float = 1.0
    clock: Callable[[], float] | None = None
    delay: bool = True
    dynamic: bool = True
    feedback_groups: Sequence[Iterable[str]] | None = None

    def __repr__(self) -> str:
        # Never show the token or passwords.
        token = "'***'" if self.token is not None else "None"
        users = sorted(self.auth_users) if self.auth_users else None
        return (
            f"ServerConfig(architecture={self.architecture!r}, token={token}, "
            f"auth_users={users!r}, seed={self.seed!r}, job_delay={self.job_delay!r}, "
            f"noise={self.noise!r}, state_dir={self.state_dir!r}, delay={self.delay!r}, "
            f"dynamic={self.dynamic!r})"
        )


class HTTPError(Exception):
    """An error answer: status and ``detail`` (plus optional headers and extra body fields)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        headers: list[tuple[str, str]] | None = None,
        body: dict[str, Any] | None = None,
    ):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or []
        self.body = body if body is not None else {"detail": detail}


class AdmissionError(HTTPError):
    """A run request refused on submission; ``kind`` says at which step (see ``admit``)."""

    def __init__(
        self, kind: str, status: int, detail: str, headers: list[tuple[str, str]] | None = None
    ):
        super().__init__(status, detail, headers=headers)
        self.kind = kind


@dataclass
class Request:
    """What a handler sees of one HTTP request."""

    method: str
    path: str
    params: dict[str, str]
    environ: dict[str, Any]

    def header(self, name: str) -> str | None:
        """A request header (case-insensitive), or ``None``."""
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            return self.environ.get(key)
        return self.environ.get(f"HTTP_{key}")


Response = tuple[int, Any, list[tuple[str, str]]]
Handler = Callable[[Request], Response]

#: Longest a status request is held with ``?wait=`` (long polling).
MAX_LONG_POLL_SECONDS = 20.0

_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    411: "Length Required",
    413: "Content Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class IQMServerApp:
    """The WSGI application. Build it with :func:`create_app`.

    Attributes:
        config: The configuration.
        architecture: The served architecture.
        store: The job store.
        stats: Request counts per endpoint, e.g. ``stats["POST jobs"]`` or
            ``stats["GET jobs/{id}/status"]`` (unmatched requests count under ``"unmatched"``).
    """

    def __init__(self, config: ServerConfig):
        if config.noise not in NOISE_MODES:
            raise ValueError(f"noise must be one of {NOISE_MODES}, got {config.noise!r}")
        architecture = _with_delay(load_architecture(config.architecture), config.delay)
        self.architecture = architecture if config.dynamic else _without_dynamic(architecture)
        #: Whether jobs may measure mid-circuit and use reset and cc_prx.
        self.dynamic = allows_dynamic_circuits(self.architecture)
        self.feedback_groups = _feedback_groups(self.architecture, config.feedback_groups)
        # v1 clients see delay, reset and cc_prx only when they ask for them
        # (ARCHITECTURE_EXTENSIONS_QUERY): IQM's own v1 clients know none of them (cirq-iqm 14
        # fails on an unknown operation name; iqm-client 17.8 expects the plain list).
        self._architecture_bodies = {
            (delay, dynamic): _architecture_variant(self.architecture, delay, dynamic).to_dict()
            for delay in (False, True)
            for dynamic in (False, True)
        }
        default = _default_calibration(config, self.architecture)
        if config.calibration_set_id is not None:
            default = default.with_id(config.calibration_set_id)
        self.config = config = dataclasses.replace(
            config, calibration_set_id=default.calibration_set_id
        )
        #: Calibration sets by id; the first is the default ("latest").
        self.calibrations: dict[UUID, CalibrationSet] = {default.calibration_set_id: default}
        for extra in config.extra_calibrations:
            calibration = load_calibration(extra)
            self.calibrations.setdefault(calibration.calibration_set_id, calibration)
        self.default_calibration = default
        state_path = Path(config.state_dir) / "jobs.sqlite3" if config.state_dir else None
        self.store = JobStore(config.cocos_version, state_path)
        noisy = config.noise == "calibration"
        seeds = np.random.SeedSequence(config.seed).spawn(max(1, config.workers))
        simulators = [
            CalibratedSimulator(
                default if noisy else None,
                # One generator per thread; a single worker keeps the plain seed (reproducible).
                np.random.default_rng(seed) if config.workers > 1 else config.seed,
                max_block_qubits=config.max_block_qubits,
                max_density_qubits=config.max_density_qubits,
                max_trajectories=config.max_trajectories,
                calibrations=self.calibrations if noisy else None,
            )
            for seed in seeds
        ]
        self.simulator = simulators[0]
        self.worker = Worker(
            self.store,
            simulators,
            job_delay=config.job_delay,
            max_queue=config.max_queue,
        )
        self.oidc = (
            TokenIssuer(
                config.auth_users,
                access_lifetime=config.token_lifetime,
                refresh_lifetime=config.refresh_token_lifetime,
                clock=config.clock or time.time,
            )
            if config.auth_users
            else None
        )
        self.stats: collections.Counter[str] = collections.Counter()
        self._stats_lock = threading.Lock()
        self._base = "/" + config.base_path.strip("/") if config.base_path.strip("/") else ""
        oidc_prefix = f"realms/{REALM}/protocol/openid-connect"
        # (path pattern, method -> handler, needs auth); "{id}" matches one path segment.
        self._routes: list[tuple[tuple[str, ...], dict[str, Handler], bool]] = [
            (("health",), {"GET": self._health}, False),
            (("info", "client-libraries"), {"GET": self._client_libraries}, False),
            (("quantum-architecture",), {"GET": self._get_architecture}, True),
            (("calibration", "metrics", "{cal}"), {"GET": self._get_metrics}, True),
            (
                ("api", "v1", "calibration", "{cal}", "gates"),
                {"GET": self._get_dynamic_architecture},
                True,
            ),
            (("jobs",), {"POST": self._submit}, True),
            (("jobs", "{id}"), {"GET": self._get_result, "DELETE": self._delete}, True),
            (("feedback-groups",), {"GET": self._get_feedback_groups}, True),
            (("jobs", "{id}", "status"), {"GET": self._get_status}, True),
            (("jobs", "{id}", "counts"), {"GET": self._get_counts}, True),
            (("jobs", "{id}", "abort"), {"POST": self._abort}, True),
        ]
        if self.oidc is not None:
            self._routes += [
                (tuple(f"{oidc_prefix}/token".split("/")), {"POST": self._oidc_token}, False),
                (tuple(f"{oidc_prefix}/logout".split("/")), {"POST": self._oidc_logout}, False),
            ]
        # The IQM Server API (PROTOCOL_IQM_SERVER.md) over the same store, under /api/v1/.
        from cirq_iqm_ext.server.iqm_server_api import install  # imports this module

        self.iqm_server_api = install(self)
        self.worker.start()
        self._requeue_unfinished()

    def _requeue_unfinished(self) -> None:
        """Runs again the jobs a previous server run accepted but did not finish."""
        for job_id in self.store.unfinished():
            try:
                self.worker.submit(job_id)
            except QueueFullError:
                self.store.fail_unfinished(
                    job_id,
                    "The server restarted before this job ran and could not queue it again; "
                    "submit it again",
                )

    def close(self) -> None:
        """Stops the background workers (jobs still pending stay pending) and ends long polls."""
        self.store.release_waiters()
        self.worker.stop()
        self.store.close()

    # WSGI -----------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Answers one request."""
        try:
            status, body, headers = self._dispatch(environ)
        except HTTPError as error:
            status, body, headers = error.status, error.body, error.headers
        except Exception:  # the last resort: log it here, never show a traceback to the client
            logger.exception(
                "Unhandled error answering %s %s",
                environ.get("REQUEST_METHOD"),
                environ.get("PATH_INFO"),
            )
            status, body, headers = 500, {"detail": "internal server error"}, []
        headers = list(headers)
        if isinstance(body, bytes):  # e.g. protobuf; the handler names its Content-Type
            payload = body
        else:
            payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
            if body is not None:
                headers.append(("Content-Type", "application/json"))
        headers.append(("Content-Length", str(len(payload))))
        start_response(f"{status} {_REASONS.get(status, 'Unknown')}", headers)
        return [payload]

    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    def _dispatch(self, environ: dict[str, Any]) -> Response:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = str(environ.get("PATH_INFO", "") or "/")
        if self._base and (path == self._base or path.startswith(self._base + "/")):
            path = path[len(self._base) :]
        segments = tuple(s for s in path.split("/") if s)
        for pattern, handlers, needs_auth in self._routes:
            params = _match(pattern, segments)
            if params is None:
                continue
            handler = handlers.get(method)
            if handler is None:
                self._count("unmatched")
                allowed = ", ".join(sorted(handlers))
                raise HTTPError(
                    405,
                    f"Method {method} is not allowed on /{'/'.join(segments)}; use {allowed}",
                    headers=[("Allow", allowed)],
                )
            self._count(f"{method} {'/'.join(pattern)}")
            request = Request(method, path, params, environ)
            if needs_auth:
                self._authenticate(request)
            return handler(request)
        self._count("unmatched")
        raise HTTPError(404, f"Not found: {method} {path}")

    # Authentication -------------------------------------------------------------------------------

    def _authenticate(self, request: Request) -> None:
        if self.config.token is None and self.oidc is None:
            return
        challenge = [("WWW-Authenticate", 'Bearer realm="iqm"')]
        header = request.header("Authorization")
        if not header:
            raise HTTPError(
                401,
                "Authentication required: send 'Authorization: Bearer <token>'",
                headers=challenge,
            )
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise HTTPError(
                401, "The Authorization header must be 'Bearer <token>'", headers=challenge
            )
        if self.config.token is not None and hmac.compare_digest(
            token.encode("utf-8", "replace"), self.config.token.encode("utf-8")
        ):
            return
        if self.oidc is not None and self.oidc.verify_access_token(token) is not None:
            return
        raise HTTPError(401, "Invalid, expired or revoked bearer token", headers=challenge)

    # Body reading ---------------------------------------------------------------------------------

    def _read_body(self, request: Request, limit: int) -> bytes:
        raw_length = request.header("Content-Length")
        if not raw_length:
            if "chunked" in (request.header("Transfer-Encoding") or "").lower():
                raise HTTPError(
                    411, "Chunked request bodies are not supported; send Content-Length"
                )
            return b""
        try:
            length = int(raw_length)
            if length < 0:
                raise ValueError
        except ValueError:
            raise HTTPError(400, f"Invalid Content-Length header: {raw_length!r}") from None
        if length > limit:
            raise HTTPError(
                413, f"Request body of {length} bytes is larger than the limit of {limit} bytes"
            )
        stream = request.environ["wsgi.input"]
        chunks = []
        remaining = length
        while remaining > 0:
            chunk = stream.read(min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        if remaining:
            raise HTTPError(400, f"Request body ended after {length - remaining} of {length} bytes")
        return b"".join(chunks)

    def _read_json(self, request: Request) -> Any:
        body = self._read_body(request, self.config.max_body_bytes)
        if not body.strip():
            raise HTTPError(400, "The request body is empty; send a JSON run request")
        try:
            return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
        except UnicodeDecodeError as error:
            raise HTTPError(400, f"The request body is not UTF-8: {error}") from None
        except RecursionError:
            raise HTTPError(400, "The request body is nested too deeply") from None
        except ValueError as error:  # JSONDecodeError, NaN/Infinity, too many digits
            raise HTTPError(400, f"The request body is not valid JSON: {error}") from None

    def _read_form(self, request: Request) -> dict[str, str]:
        body = self._read_body(request, MAX_FORM_BYTES)
        try:
            pairs = urllib.parse.parse_qsl(
                body.decode("utf-8"), keep_blank_values=True, strict_parsing=False
            )
        except (UnicodeDecodeError, ValueError) as error:
            raise HTTPError(400, f"The form body cannot be parsed: {error}") from None
        return dict(pairs)

    # Handlers -------------------------------------------------------------------------------------

    def _health(self, request: Request) -> Response:
        return 200, {"status": "ok"}, [IDEMPOTENCY_HEADER]

    def _get_architecture(self, request: Request) -> Response:
        # "?extensions=delay,dynamic": a comma-separated set; unknown members are ignored.
        (query_name,) = ARCHITECTURE_EXTENSIONS_QUERY
        asked = {part.strip() for part in (_query(request, query_name) or "").split(",")}
        body = self._architecture_bodies["delay" in asked, "dynamic" in asked]
        return 200, body, [IDEMPOTENCY_HEADER]

    def _get_feedback_groups(self, request: Request) -> Response:
        # An extension of v1 (CoCoS v1 has no cc_prx): what IQM's channel properties tell.
        if not self.dynamic:
            raise HTTPError(404, "This server runs no dynamic circuits, so it has no feedback")
        return 200, {"feedback_groups": [sorted(g) for g in self.feedback_groups]}, []

    def _client_libraries(self, request: Request) -> Response:
        return 200, CLIENT_LIBRARIES, []

    def _calibration(self, request: Request, alias: str) -> CalibrationSet:
        raw = request.params["cal"]
        if raw == alias:
            return self.default_calibration
        try:
            calibration = self.calibrations.get(UUID(raw))
        except ValueError:
            calibration = None
        if calibration is None:
            raise HTTPError(404, f"Calibration set {raw} not found; use {alias!r} or a known id")
        return calibration

    def _get_metrics(self, request: Request) -> Response:
        return 200, self._calibration(request, "latest").metrics(), []

    def _get_dynamic_architecture(self, request: Request) -> Response:
        calibration = self._calibration(request, "default")
        return 200, calibration.dynamic_architecture(self.architecture), []

    def _submit(self, request: Request) -> Response:
        data = self._read_json(request)
        try:
            run_request = RunRequest.from_dict(data)
        except ModelValidationError as error:
            raise HTTPError(400, str(error)) from None
        except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as error:
            # Malformed input the transfer format did not anticipate: still the client's fault.
            logger.warning("Run request rejected by an unexpected %s", type(error).__name__)
            raise HTTPError(400, f"Invalid run request: {type(error).__name__}: {error}") from None
        self._check_limits(run_request)
        calibration_set_id = (
            run_request.calibration_set_id or self.default_calibration.calibration_set_id
        )
        calibration = self.calibrations.get(calibration_set_id)
        if calibration is None:
            known = ", ".join(str(c) for c in self.calibrations)
            raise HTTPError(
                400, f"Unknown calibration set id {calibration_set_id}; this server has {known}"
            )
        warnings = []
        if run_request.custom_settings:
            warnings.append("custom_settings are ignored by this server")
        job, created = self.admit(
            run_request,
            calibration,
            idempotency_key=request.header(IDEMPOTENCY_KEY_HEADER) or None,
            warnings=warnings,
        )
        return (
            (201 if created else 200),
            {"id": str(job.id)},
            [("Location", f"{self._base}/jobs/{job.id}"), IDEMPOTENCY_HEADER],
        )

    def admit(
        self,
        run_request: RunRequest,
        calibration: CalibrationSet,
        *,
        idempotency_key: str | None,
        move_gate_validation: str = "strict",
        warnings: list[str] | None = None,
    ) -> tuple[Job, bool]:
        """Validates a run request, stores the job and queues it: what both APIs do on submit.

        The request's own ``move_gate_validation`` wins over the argument. Mid-circuit
        measurements are allowed where the server runs dynamic circuits (``dynamic``), and
        ``cc_prx`` feedback is checked against the feedback groups.

        Returns:
            The job and whether it was created now (``False``: an idempotent repeat).

        Raises:
            AdmissionError: Refused; ``kind`` tells why (``validation``, ``duration``,
                ``idempotency``, ``queue``) so each API can word its answer.
        """
        try:
            validate_run_request(
                run_request,
                self.architecture,
                allow_mid_circuit_measurement=self.dynamic,
                move_gate_validation=run_request.move_gate_validation or move_gate_validation,
                feedback_groups=self.feedback_groups,
            )
        except CircuitValidationError as error:
            raise AdmissionError("validation", 400, str(error)) from None
        warnings = list(warnings or ()) + _option_warnings(run_request)
        try:
            self._check_durations(run_request, calibration)
        except HTTPError as error:
            raise AdmissionError("duration", error.status, error.detail) from None
        try:
            job, created = self.store.create(
                run_request,
                calibration.calibration_set_id,
                idempotency_key=idempotency_key,
                warnings=warnings,
            )
        except IdempotencyConflictError as error:
            raise AdmissionError("idempotency", 409, str(error)) from None
        if created:
            try:
                self.worker.submit(job.id)
            except QueueFullError as error:
                self.store.discard(job.id)
                raise AdmissionError(
                    "queue", 503, str(error), [("Retry-After", f"{self.config.retry_after:g}")]
                ) from None
        return job, created

    def _check_limits(self, run_request: RunRequest) -> None:
        config = self.config
        if run_request.shots > config.max_shots:
            raise HTTPError(
                400, f"shots must be at most {config.max_shots}, got {run_request.shots}"
            )
        if len(run_request.circuits) > config.max_circuits:
            raise HTTPError(
                400,
                f"A job may have at most {config.max_circuits} circuits, "
                f"got {len(run_request.circuits)}",
            )
        total = len(run_request.circuits) * run_request.shots
        if total > config.max_total_shots:
            raise HTTPError(
                400,
                f"circuits × shots must be at most {config.max_total_shots}, got "
                f"{len(run_request.circuits)} × {run_request.shots} = {total}",
            )

    def _check_durations(self, run_request: RunRequest, calibration: CalibrationSet) -> None:
        """Rejects circuits longer than the ratio times the shortest T2 of their qubits."""
        ratio = run_request.max_circuit_duration_over_t2
        if ratio is None:
            ratio = self.config.max_circuit_duration_over_t2
        mapping = run_request.qubit_mapping_dict
        for index, circuit in enumerate(run_request.circuits):
            duration, qubits, missing = circuit_duration(circuit, calibration, mapping)
            if missing is not None:
                raise HTTPError(
                    400,
                    f'circuit {index} ("{circuit.name}"): {missing} is not calibrated in '
                    f"calibration set {calibration.calibration_set_id}",
                )
            if ratio <= 0:
                continue
            shortest = calibration.min_t2(qubits)
            if shortest is None:
                continue
            t2, qubit = shortest
            if duration > ratio * t2:
                raise HTTPError(
                    400,
                    f'circuit {index} ("{circuit.name}") lasts {duration * 1e6:.3f} µs, longer '
                    f"than max_circuit_duration_over_t2 = {ratio:g} times the shortest T2 of its "
                    f"qubits ({t2 * 1e6:.3f} µs on {qubit}), i.e. {ratio * t2 * 1e6:.3f} µs "
                    "(delays count); send a larger max_circuit_duration_over_t2, or "
                    "max_circuit_duration_over_t2=0 to turn the check off (e.g. for a T1 "
                    "experiment, whose delays last several T2)",
                )

    def _job_id(self, request: Request) -> UUID:
        try:
            return UUID(request.params["id"])
        except ValueError:
            raise HTTPError(404, "Job not found") from None

    def _get_status(self, request: Request) -> Response:
        # An extension: "?wait=S" holds the answer until the status changes (long polling), so a
        # client learns of a finished job at once instead of at its next poll.
        wait = _query_float(request, LONG_POLL_QUERY, 0.0, MAX_LONG_POLL_SECONDS)
        try:
            body = self.store.status_dict(self._job_id(request), wait=wait)
        except UnknownJobError:
            raise HTTPError(404, "Job not found") from None
        return 200, body, [(LONG_POLL_HEADER, f"{MAX_LONG_POLL_SECONDS:g}")]

    def _get_result(self, request: Request) -> Response:
        job_id = self._job_id(request)
        try:
            body = self.store.result_dict(job_id)
        except UnknownJobError:
            raise HTTPError(404, "Job not found") from None
        # An extension: "?measurements=packed" sends bits packed eight to a byte instead of
        # nested lists, which are slow to encode and to parse for large sweeps.
        if (
            _query(request, *MEASUREMENTS_QUERY) == MEASUREMENTS_QUERY["measurements"]
            and body.get("measurements") is not None
        ):
            body = dict(body)
            body["measurements"] = self.store.packed_measurements(job_id)
            body[MEASUREMENTS_FORMAT_FIELD] = PACKED_FORMAT
        return 200, body, []

    def _get_counts(self, request: Request) -> Response:
        try:
            return 200, self.store.counts_dict(self._job_id(request)), []
        except UnknownJobError:
            raise HTTPError(404, "Job not found") from None

    def _delete(self, request: Request) -> Response:
        # An extension of v1 (IQM Server API E8): cancels, then drops the request and results;
        # the job then reads as "deleted" (PROTOCOL_IQM_SERVER.md §9.1).
        try:
            self.store.delete(self._job_id(request))
        except UnknownJobError:
            raise HTTPError(404, "Job not found") from None
        return 200, {}, []

    def _abort(self, request: Request) -> Response:
        try:
            self.store.abort(self._job_id(request))
        except UnknownJobError:
            raise HTTPError(404, "Job not found") from None
        except JobFinishedError as error:
            raise HTTPError(409, str(error)) from None
        return 200, {}, []

    def _oidc_token(self, request: Request) -> Response:
        assert self.oidc is not None  # the route exists only with an issuer
        try:
            return (
                200,
                self.oidc.token(self._read_form(request)),
                [("Cache-Control", "no-store")],
            )
        except OIDCError as error:
            raise HTTPError(error.status, error.description, body=error.body()) from None

    def _oidc_logout(self, request: Request) -> Response:
        assert self.oidc is not None
        try:
            self.oidc.logout(self._read_form(request))
        except OIDCError as error:
            raise HTTPError(error.status, error.description, body=error.body()) from None
        return 204, None, []


def _query(request: Request, name: str) -> str | None:
    values = urllib.parse.parse_qs(str(request.environ.get("QUERY_STRING", ""))).get(name)
    return values[-1] if values else None


def _query_float(request: Request, name: str, default: float, maximum: float) -> float:
    raw = _query(request, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise HTTPError(400, f"Query parameter {name!r} must be a number, got {raw!r}") from None
    if not 0 <= value < float("inf"):
        raise HTTPError(400, f"Query parameter {name!r} must be a non-negative number")
    return min(value, maximum)


def circuit_duration(
    circuit: Any, calibration: CalibrationSet, mapping: Mapping[str, str] | None = None
) -> tuple[float, list[str], str | None]:
    """The duration of a circuit's critical path from the calibrated gate durations.

    Gates start as soon as all their qubits are free (ASAP); a barrier lines its qubits up, and a
    delay lines them up and then lasts its ``duration`` (it needs no calibration).

    Returns:
        ``(seconds, physical qubits used, None)``, or ``(…, …, "QB1,QB2 cz")`` naming the first
        gate the calibration set does not cover.
    """
    free: dict[str, float] = {}
    for instruction in circuit.instructions:
        names = tuple(mapping.get(q, q) if mapping else q for q in instruction.qubits)
        start = max((free.get(q, 0.0) for q in names), default=0.0)
        if instruction.name == "delay":
            length = float(instruction.args["duration"])
        else:
            figures = calibration.gate(instruction.name, names)
            if figures is None:
                return 0.0, [], f"{','.join(names)} {instruction.name}"
            length = figures[1]
        for q in names:
            free[q] = start + length
    return max(free.values(), default=0.0), list(free), None


def _with_delay(
    architecture: QuantumArchitectureSpecification, delay: bool
) -> QuantumArchitectureSpecification:
    """``architecture`` listing ``delay`` (any component) exactly when the server executes it."""
    if ("delay" in architecture.operations) == delay:
        return architecture
    operations = {k: v for k, v in architecture.operations.items() if k != "delay"}
    if delay:
        operations["delay"] = ()
    return dataclasses.replace(architecture, operations=operations)


def _without_dynamic(
    architecture: QuantumArchitectureSpecification,
) -> QuantumArchitectureSpecification:
    """``architecture`` without ``reset`` and ``cc_prx``, as a CoCoS v1 server lists it."""
    if not any(name in architecture.operations for name in DYNAMIC_OPERATIONS):
        return architecture
    operations = {k: v for k, v in architecture.operations.items() if k not in DYNAMIC_OPERATIONS}
    return dataclasses.replace(architecture, operations=operations)


def _architecture_variant(
    architecture: QuantumArchitectureSpecification, delay: bool, dynamic: bool
) -> QuantumArchitectureSpecification:
    """What a v1 client that asked for these extensions sees of the served architecture."""
    if not delay:
        architecture = _with_delay(architecture, False)
    return architecture if dynamic else _without_dynamic(architecture)


def _feedback_groups(
    architecture: QuantumArchitectureSpecification,
    groups: Sequence[Iterable[str]] | None,
) -> tuple[frozenset[str], ...]:
    """The configured feedback groups, checked; ``None``: one group of every qubit."""
    resonators = set(architecture_resonators(architecture))
    qubits = [q for q in architecture.qubits if q not in resonators]
    if groups is None:
        return (frozenset(qubits),)
    if isinstance(groups, str | bytes):
        raise TypeError("feedback_groups must be a list of lists of qubit names, not a string")
    out = []
    for group in groups:
        if isinstance(group, str | bytes):
            raise TypeError(
                f"feedback_groups must be a list of lists of qubit names, got the string {group!r}"
            )
        names = frozenset(group)
        unknown = sorted(names - set(qubits))
        if unknown or not names:
            raise ValueError(
                f"feedback group {sorted(names)} names no qubits or unknown ones {unknown}; "
                f"the qubits of {architecture.name} are {', '.join(qubits)}"
            )
        out.append(names)
    return tuple(out)


def _option_warnings(run_request: RunRequest) -> list[str]:
    """Job messages for the options that the simulator records but cannot apply."""
    if run_request.dd_mode == "enabled" or run_request.dd_strategy is not None:
        return [
            "Dynamical decoupling (dd_mode, dd_strategy) is recorded but not applied: this "
            "simulator inserts no DD pulses, so idle qubits decohere as without DD"
        ]
    return []


def _default_calibration(
    config: ServerConfig, architecture: QuantumArchitectureSpecification
) -> CalibrationSet:
    if config.calibration is not None:
        return load_calibration(config.calibration)
    name = architecture.name.lower()
    if name in BUILTIN_CALIBRATIONS:
        return load_calibration(name)
    return generate_calibration(architecture, seed=0)


def _match(pattern: tuple[str, ...], segments: tuple[str, ...]) -> dict[str, str] | None:
    if len(pattern) != len(segments):
        return None
    params: dict[str, str] = {}
    for expected, actual in zip(pattern, segments, strict=True):
        if expected.startswith("{"):
            params[expected.strip("{}")] = actual
        elif expected != actual:
            return None
    return params


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def create_app(config: ServerConfig | None = None, **options: Any) -> IQMServerApp:
    """Builds the WSGI app and starts its background worker.

    Args:
        config: The configuration; default ``ServerConfig()`` (Adonis, no auth).
        **options: Fields of :class:`ServerConfig` that override ``config``.

    Returns:
        The app; call its ``close()`` when done.

    Raises:
        ValueError: The architecture cannot be loaded.
        TypeError: An unknown option.
    """
    config = config or ServerConfig()
    if options:
        config = ServerConfig(**{**config.__dict__, **options})
    return IQMServerApp(config)
