"""The server's configuration: :class:`ServerConfig` and its defaults.

Nothing here runs anything; :func:`cirq_iqm_ext.server.app.create_app` turns a configuration into
a running app.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from cirq_iqm_ext._version import __version__
from cirq_iqm_ext.calibration import CalibrationSet
from cirq_iqm_ext.server.retention import (
    DEFAULT_RETAIN_BYTES,
    DEFAULT_RETAIN_JOBS,
    DEFAULT_RETAIN_SECONDS,
)
from cirq_iqm_ext.simulation.simulator import (
    DEFAULT_MAX_BLOCK_QUBITS,
    DEFAULT_MAX_DENSITY_QUBITS,
    DEFAULT_MAX_TRAJECTORIES,
)
from cirq_iqm_ext.wire.models import QuantumArchitectureSpecification

DEFAULT_MAX_BODY_BYTES = 20 * 1024 * 1024
#: Server default of ``max_circuit_duration_over_t2`` when a request does not set it.
DEFAULT_MAX_DURATION_OVER_T2 = 1.0
#: Most HTTP connections served at once (well below the common ``ulimit -n 1024``).
DEFAULT_MAX_CONNECTIONS = 256
#: Seconds a connection may take to send one whole request.
DEFAULT_CONNECTION_TIMEOUT = 120.0
#: Noise settings of :class:`ServerConfig`.
NOISE_MODES = ("calibration", "none")


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
        max_density_qubits: Noisy blocks up to this size may be simulated as an exact density
            matrix (when a measured cost model finds it cheaper than one trajectory per shot).
        max_trajectories: Most Monte-Carlo trajectories (one per shot) a noisy circuit may need;
            a circuit needing more fails instead of sharing trajectories between shots.
        state_dir: Directory of the SQLite job database (``None``: jobs live in memory only).
        workers: Simulation threads.
        max_queue: Most jobs waiting for a worker; beyond, ``POST jobs`` answers 503.
        retry_after: Seconds suggested in ``Retry-After`` with a 503.
        clock: Current time in seconds since the epoch for the token issuer and the retention
            age limit (injectable for tests; default :func:`time.time`).
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
        max_connections: Most HTTP connections served at once; beyond, the oldest idle
            keep-alive connection is closed to make room, or the newcomer gets 503 when every
            connection is busy (the embedded HTTP server; default 256).
        connection_timeout: Seconds each request may take to arrive whole, from the moment its
            connection is idle: a total deadline, not one per read (default 120).
        retain_jobs: Most finished jobs kept (default 10,000); beyond, the oldest go first,
            those already fetched before unread ones. An evicted job answers that it expired
            (v1: 410; IQM Server API: 404), and leaves the state dir too.
        retain_bytes: Most bytes of measurement results kept (packed, eight measured bits to a
            byte; default 1 GiB); the job that has just finished is always kept.
        retain_seconds: Seconds a finished job is kept (default a week; ``0``: no age limit).
        engine: Simulation engine, ``"auto"``, ``"numpy"`` or ``"qsim"`` (``None``: the
            ``CIRQ_IQM_EXT_ENGINE`` environment variable, else ``"auto"``); speed only, the
            distribution of results is the same (see :mod:`cirq_iqm_ext.simulation.engines`).
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
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    connection_timeout: float = DEFAULT_CONNECTION_TIMEOUT
    retain_jobs: int = DEFAULT_RETAIN_JOBS
    retain_bytes: int = DEFAULT_RETAIN_BYTES
    retain_seconds: float = DEFAULT_RETAIN_SECONDS
    engine: str | None = None

    def __repr__(self) -> str:
        # Never show the token or passwords.
        token = "'***'" if self.token is not None else "None"
        users = sorted(self.auth_users) if self.auth_users else None
        return (
            f"ServerConfig(architecture={self.architecture!r}, token={token}, "
            f"auth_users={users!r}, seed={self.seed!r}, job_delay={self.job_delay!r}, "
            f"noise={self.noise!r}, state_dir={self.state_dir!r}, delay={self.delay!r}, "
            f"dynamic={self.dynamic!r}, engine={self.engine!r})"
        )
