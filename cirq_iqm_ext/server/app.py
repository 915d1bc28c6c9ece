"""The IQM-compatible server as a WSGI application (standard library only): the composition root.

:func:`create_app` builds an :class:`IQMServerApp` from a :class:`ServerConfig` and starts it.
The app wires together a :class:`~cirq_iqm_ext.server.core.ServerCore` (architecture,
calibration sets, job store, workers, admission), an
:class:`~cirq_iqm_ext.server.auth.Authenticator` and one :class:`~.framework.Router` carrying
the routes of both APIs: the IQM Server API (:mod:`.routes_iqm_server`, under ``/api/v1/``),
CoCoS v1 (:mod:`.routes_cocos_v1`, PROTOCOL.md §2) and, when users are configured, the OpenID
Connect token endpoints (:mod:`.routes_oidc`). Paths work with or without a trailing slash and
with or without the configured base path.

Every answer is JSON. Bad input gets a 4xx with a ``detail``; an unexpected exception is logged
and answered with a bare 500, never a traceback. Requests are parsed with the same
transfer-format classes and validated with the same function as the client, so both report the
same messages. Building the app starts no thread: :meth:`IQMServerApp.start` starts the workers,
:meth:`IQMServerApp.close` stops them.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from cirq_iqm_ext.calibration import CalibrationSet
from cirq_iqm_ext.catalogue import BUILTIN_ARCHITECTURES, load_architecture
from cirq_iqm_ext.server.admission import AdmissionError, circuit_duration
from cirq_iqm_ext.server.auth import Authenticator
from cirq_iqm_ext.server.config import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_DURATION_OVER_T2,
    NOISE_MODES,
    ServerConfig,
)
from cirq_iqm_ext.server.core import ServerCore
from cirq_iqm_ext.server.framework import (
    Handler,
    HTTPError,
    NoRouteError,
    Request,
    Response,
    Router,
    StartResponse,
    answer_wsgi,
)
from cirq_iqm_ext.server.jobs import Job, JobStore, Worker
from cirq_iqm_ext.server.oidc import TokenIssuer
from cirq_iqm_ext.server.routes_cocos_v1 import (
    CLIENT_LIBRARIES,
    IDEMPOTENCY_HEADER,
    MAX_LONG_POLL_SECONDS,
    CocosV1Routes,
)
from cirq_iqm_ext.server.routes_iqm_server import IQMServerRoutes
from cirq_iqm_ext.server.routes_oidc import MAX_FORM_BYTES, OIDCRoutes
from cirq_iqm_ext.server.throttle import LoginThrottle
from cirq_iqm_ext.simulation.simulator import CalibratedSimulator
from cirq_iqm_ext.wire.models import QuantumArchitectureSpecification, RunRequest

__all__ = [
    "BUILTIN_ARCHITECTURES",
    "CLIENT_LIBRARIES",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_DURATION_OVER_T2",
    "IDEMPOTENCY_HEADER",
    "MAX_FORM_BYTES",
    "MAX_LONG_POLL_SECONDS",
    "NOISE_MODES",
    "AdmissionError",
    "HTTPError",
    "Handler",
    "IQMServerApp",
    "Request",
    "Response",
    "ServerConfig",
    "StartResponse",
    "circuit_duration",
    "create_app",
    "load_architecture",
]


class IQMServerApp:
    """The WSGI application. Build it with :func:`create_app`, which also starts it.

    Args:
        config: The configuration.

    Attributes:
        core: What both APIs serve (architecture, calibration sets, store, workers, admission).
        auth: Checks bearer tokens.
        router: The routes of both APIs (and of the token endpoints).
        cocos_v1: The CoCoS v1 routes.
        iqm_server_api: The IQM Server API routes.
        stats: Request counts per endpoint, e.g. ``stats["POST jobs"]`` or
            ``stats["GET jobs/{id}/status"]`` (unmatched requests count under ``"unmatched"``).

    Raises:
        ValueError: The architecture or a calibration set cannot be loaded, or a bad setting.
    """

    def __init__(self, config: ServerConfig):
        self.core = ServerCore(config)
        self.auth = Authenticator.from_config(config)
        self.router = Router(config.base_path)
        # The IQM Server API first: its patterns are tried ahead of v1's.
        self.iqm_server_api = IQMServerRoutes(self.core, self.auth)
        self.iqm_server_api.add_to(self.router)
        self.cocos_v1 = CocosV1Routes(self.core, self.auth, self.router.base)
        self.cocos_v1.add_to(self.router)
        if self.auth.issuer is not None:
            throttle = LoginThrottle(config.clock or time.monotonic)
            OIDCRoutes(self.auth.issuer, throttle).add_to(self.router)
        self.stats: collections.Counter[str] = collections.Counter()
        self._stats_lock = threading.Lock()

    # Life cycle -----------------------------------------------------------------------------------

    def start(self) -> IQMServerApp:
        """Starts the workers and requeues unfinished jobs of a previous run (idempotent).

        Returns:
            ``self``.
        """
        self.core.start()
        return self

    def close(self) -> None:
        """Stops the background workers (jobs still pending stay pending) and ends long polls."""
        self.core.close()

    # The core's parts, as the app always offered them ---------------------------------------------

    @property
    def config(self) -> ServerConfig:
        """The configuration (``calibration_set_id`` set to the default set's id)."""
        return self.core.config

    @property
    def architecture(self) -> QuantumArchitectureSpecification:
        """The served architecture."""
        return self.core.architecture

    @property
    def dynamic(self) -> bool:
        """Whether jobs may measure mid-circuit and use ``reset`` and ``cc_prx``."""
        return self.core.dynamic

    @property
    def feedback_groups(self) -> tuple[frozenset[str], ...]:
        """The groups whose ``cc_prx`` can use each other's measurements."""
        return self.core.feedback_groups

    @property
    def calibrations(self) -> dict[UUID, CalibrationSet]:
        """Calibration sets by id; the first is the default."""
        return self.core.calibrations

    @property
    def default_calibration(self) -> CalibrationSet:
        """The default calibration set."""
        return self.core.default_calibration

    @property
    def store(self) -> JobStore:
        """The job store."""
        return self.core.store

    @property
    def worker(self) -> Worker:
        """The worker pool."""
        return self.core.worker

    @property
    def simulator(self) -> CalibratedSimulator:
        """The first worker's simulator."""
        return self.core.simulators[0]

    @property
    def oidc(self) -> TokenIssuer | None:
        """The OpenID Connect token issuer, when users are configured."""
        return self.auth.issuer

    def admit(
        self,
        run_request: RunRequest,
        calibration: CalibrationSet,
        *,
        idempotency_key: str | None,
        move_gate_validation: str = "strict",
        warnings: list[str] | None = None,
    ) -> tuple[Job, bool]:
        """Validates a run request, stores the job and queues it (see ``Admission.admit``)."""
        return self.core.admission.admit(
            run_request,
            calibration,
            idempotency_key=idempotency_key,
            move_gate_validation=move_gate_validation,
            warnings=warnings,
        )

    # WSGI -----------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Answers one request."""
        return answer_wsgi(self._respond, environ, start_response)

    def _respond(self, environ: dict[str, Any]) -> Response:
        try:
            match = self.router.resolve(environ)
        except NoRouteError:
            self._count("unmatched")
            raise
        self._count(match.key)
        return match.handler(match.request)

    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1


def create_app(config: ServerConfig | None = None, **options: Any) -> IQMServerApp:
    """Builds the WSGI app and starts its background workers.

    Args:
        config: The configuration; default ``ServerConfig()`` (Adonis, no auth).
        **options: Fields of :class:`ServerConfig` that override ``config``.

    Returns:
        The running app; call its ``close()`` when done.

    Raises:
        ValueError: The architecture cannot be loaded.
        TypeError: An unknown option.
    """
    config = config or ServerConfig()
    if options:
        config = ServerConfig(**{**config.__dict__, **options})
    return IQMServerApp(config).start()
