"""The server's core: what both APIs serve, behind public methods and without HTTP.

:class:`ServerCore` owns the served architecture, the calibration sets, the job store, the
simulators and the worker pool, and the admission of new jobs. The route modules of both APIs
talk to it only through its public attributes and methods, so a job submitted through one API
reads the same through the other. Building a core starts no thread; :meth:`ServerCore.start` does.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import numpy as np

from cirq_iqm_ext.calibration import (
    BUILTIN_CALIBRATIONS,
    CalibrationSet,
    generate_calibration,
    load_calibration,
)
from cirq_iqm_ext.catalogue import load_architecture
from cirq_iqm_ext.server.admission import Admission, Limits
from cirq_iqm_ext.server.architecture import (
    architecture_variant,
    feedback_groups,
    served_architecture,
)
from cirq_iqm_ext.server.config import NOISE_MODES, ServerConfig
from cirq_iqm_ext.server.jobs import Job, JobStore, QueueFullError, Worker
from cirq_iqm_ext.server.retention import RetentionPolicy
from cirq_iqm_ext.server.state_dir import StateDirLock, prepare_state_dir
from cirq_iqm_ext.simulation.simulator import CalibratedSimulator
from cirq_iqm_ext.wire.models import (
    QuantumArchitectureSpecification,
    RunRequest,
    RunResult,
    Status,
)
from cirq_iqm_ext.wire.validation import allows_dynamic_circuits

logger = logging.getLogger(__name__)

#: v1 statuses of a job that has not finished (a queued one among them).
_PENDING = frozenset({Status.PENDING_COMPILATION.value, Status.PENDING_EXECUTION.value})


class UnknownCalibrationError(LookupError):
    """A run request names a calibration set this server does not have."""

    def __init__(self, calibration_set_id: UUID):
        super().__init__(str(calibration_set_id))
        self.calibration_set_id = calibration_set_id


class ServerCore:
    """Architecture, calibrations, jobs and workers of one server; see the module docstring.

    Args:
        config: The configuration.

    Attributes:
        config: The configuration, with ``calibration_set_id`` set to the default set's id.
        architecture: The served architecture.
        dynamic: Whether jobs may measure mid-circuit and use ``reset`` and ``cc_prx``.
        feedback_groups: The groups whose ``cc_prx`` can use each other's measurements.
        calibrations: Calibration sets by id; the first is the default ("latest").
        default_calibration: The default calibration set.
        store: The job store.
        simulators: One simulator per worker thread.
        worker: The worker pool.
        admission: The checks every new job passes.

    Raises:
        ValueError: An unknown noise mode, or an architecture or calibration that cannot be
            loaded.
    """

    def __init__(self, config: ServerConfig):
        if config.noise not in NOISE_MODES:
            raise ValueError(f"noise must be one of {NOISE_MODES}, got {config.noise!r}")
        self.architecture = served_architecture(
            load_architecture(config.architecture), delay=config.delay, dynamic=config.dynamic
        )
        self.dynamic = allows_dynamic_circuits(self.architecture)
        self.feedback_groups = feedback_groups(self.architecture, config.feedback_groups)
        # v1 clients see delay, reset and cc_prx only when they ask for them: IQM's own v1
        # clients know none of them (cirq-iqm 14 fails on an unknown operation name; iqm-client
        # 17.8 expects the plain list).
        self._architecture_bodies = {
            (delay, dynamic): architecture_variant(self.architecture, delay, dynamic).to_dict()
            for delay in (False, True)
            for dynamic in (False, True)
        }
        default = _default_calibration(config, self.architecture)
        self.config = config = dataclasses.replace(
            config, calibration_set_id=default.calibration_set_id
        )
        self.calibrations: dict[UUID, CalibrationSet] = {default.calibration_set_id: default}
        for extra in config.extra_calibrations:
            calibration = load_calibration(extra)
            self.calibrations.setdefault(calibration.calibration_set_id, calibration)
        self.default_calibration = default
        self._state_lock: StateDirLock | None = None
        state_path = None
        if config.state_dir:
            # One server per state dir: checked and locked before the database is touched.
            state_dir = prepare_state_dir(config.state_dir)
            self._state_lock = StateDirLock(state_dir)
            state_path = state_dir / "jobs.sqlite3"
        try:
            self.store = JobStore(
                config.cocos_version,
                state_path,
                retention=RetentionPolicy(
                    config.retain_jobs, config.retain_bytes, config.retain_seconds
                ),
                clock=config.clock or time.time,
            )
        except BaseException:
            self._release_state_dir()
            raise
        self.simulators = _simulators(config, default, self.calibrations)
        self.worker = Worker(
            self.store, self.simulators, job_delay=config.job_delay, max_queue=config.max_queue
        )
        self.admission = Admission(
            config,
            self.architecture,
            dynamic=self.dynamic,
            feedback_groups=self.feedback_groups,
            store=self.store,
            worker=self.worker,
        )
        self._started = False

    # Life cycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Starts the workers and queues again the jobs a previous run left unfinished.

        Idempotent: a second call neither starts threads nor queues a job twice.
        """
        if self._started:
            return
        self._started = True
        self.worker.start()
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
        """Stops the workers (pending jobs stay pending), ends long polls, closes the store."""
        self.store.release_waiters()
        self.worker.stop()
        self.store.close()
        self._release_state_dir()

    def _release_state_dir(self) -> None:
        if self._state_lock is not None:
            self._state_lock.release()

    # What is served -------------------------------------------------------------------------------

    @property
    def limits(self) -> Limits:
        """The size limits of requests."""
        return self.admission.limits

    @property
    def queued(self) -> int:
        """Jobs waiting for a worker (approximate)."""
        return self.worker.queued

    def queue_position(self, job_id: UUID) -> int | None:
        """How many queued jobs run before ``job_id``; ``None`` unless it waits in the queue."""
        return self.worker.queue_position(job_id)

    def architecture_dict(self, *, delay: bool, dynamic: bool) -> dict[str, Any]:
        """The served architecture as JSON, with or without ``delay`` and dynamic operations."""
        return self._architecture_bodies[delay, dynamic]

    def calibration(self, raw: str, *, alias: str) -> CalibrationSet | None:
        """The calibration set ``raw`` names (an id, or ``alias`` for the default), or ``None``."""
        if raw == alias:
            return self.default_calibration
        try:
            return self.calibrations.get(UUID(raw))
        except ValueError:
            return None

    # Jobs -----------------------------------------------------------------------------------------

    def submit(
        self,
        run_request: RunRequest,
        *,
        idempotency_key: str | None,
        move_gate_validation: str = "strict",
        warnings: list[str] | None = None,
        owner: str | None = None,
        body: bytes | None = None,
    ) -> tuple[Job, bool]:
        """Admits a job: limits, calibration set, validation, duration, idempotency, queue.

        ``owner`` is the submitting identity (see :meth:`check_owner`); ``body`` the raw request
        body (its digest identifies an idempotent repeat).

        Returns:
            The job and whether it was created now (``False``: an idempotent repeat).

        Raises:
            AdmissionError: Refused; its ``kind`` names the step.
            UnknownCalibrationError: The request names a calibration set this server lacks.
        """
        self.admission.limits.check(run_request)
        calibration_set_id = (
            run_request.calibration_set_id or self.default_calibration.calibration_set_id
        )
        calibration = self.calibrations.get(calibration_set_id)
        if calibration is None:
            raise UnknownCalibrationError(calibration_set_id)
        return self.admission.admit(
            run_request,
            calibration,
            idempotency_key=idempotency_key,
            move_gate_validation=move_gate_validation,
            warnings=warnings,
            owner=owner,
            body=body,
        )

    def check_owner(self, job_id: UUID, identity: str | None) -> None:
        """Passes when ``identity`` may see the job (its submitter, or anyone for an unowned job).

        Raises:
            ExpiredJobError: The caller's job was evicted under the retention policy.
            UnknownJobError: Someone else's job (an unknown id passes; its lookup answers 404).
        """
        self.store.check_owner(job_id, identity)

    def status_dict(self, job_id: UUID, *, wait: float = 0.0) -> dict[str, Any]:
        """The v1 status body of a job, held up to ``wait`` seconds for a change.

        A queued job's body says how many jobs are ahead of it (``queue_position``, as the IQM
        Server API says it; an optional field of v1, like the progress of a running job).

        Raises:
            UnknownJobError: Unknown id.
        """
        body = self.store.status_dict(job_id, wait=wait)
        position = self.queue_position(job_id)
        if position is not None and body["status"] in _PENDING:
            body["queue_position"] = position
        return body

    def progress(self, job_id: UUID) -> tuple[int, int] | None:
        """(circuits done, circuits in all) while the job executes; else ``None``.

        Raises:
            UnknownJobError: Unknown id.
        """
        return self.store.progress(job_id)

    def result(self, job_id: UUID, *, measurements: bool = True) -> RunResult:
        """A snapshot of a job and, when ready and asked for, its measurements.

        Raises:
            UnknownJobError: Unknown id.
        """
        return self.store.run_result(job_id, measurements=measurements)

    def result_dict(self, job_id: UUID, *, measurements: bool = True) -> dict[str, Any]:
        """The v1 result body of a job (measurements as lists, or ``None`` when not asked for).

        Raises:
            UnknownJobError: Unknown id.
        """
        return self.store.result_dict(job_id, measurements=measurements)

    def packed_measurements(self, job_id: UUID) -> list[dict[str, Any]] | None:
        """A ready job's measurements in the packed format (``None`` while not ready).

        Raises:
            UnknownJobError: Unknown id.
        """
        return self.store.packed_measurements(job_id)

    def measurement_arrays(self, job_id: UUID) -> Sequence[Mapping[str, np.ndarray]] | None:
        """A ready job's measurements, key -> array per circuit (``None`` while not ready).

        Raises:
            UnknownJobError: Unknown id.
        """
        return self.store.measurement_arrays(job_id)

    def counts_dict(self, job_id: UUID) -> dict[str, Any]:
        """The v1 counts body of a job.

        Raises:
            UnknownJobError: Unknown id.
        """
        return self.store.counts_dict(job_id)

    def abort(self, job_id: UUID) -> None:
        """Aborts a job that has not finished.

        Raises:
            UnknownJobError: Unknown id.
            JobFinishedError: The job has finished already.
        """
        self.store.abort(job_id)

    def delete(self, job_id: UUID) -> None:
        """Deletes a job (aborting it first if it has not finished) and drops its results.

        Raises:
            UnknownJobError: Unknown id.
        """
        self.store.delete(job_id)


def _default_calibration(
    config: ServerConfig, architecture: QuantumArchitectureSpecification
) -> CalibrationSet:
    """The configured default set (with the configured id), else the architecture's own."""
    if config.calibration is not None:
        default = load_calibration(config.calibration)
    elif architecture.name.lower() in BUILTIN_CALIBRATIONS:
        default = load_calibration(architecture.name.lower())
    else:
        default = generate_calibration(architecture, seed=0)
    if config.calibration_set_id is not None:
        default = default.with_id(config.calibration_set_id)
    return default


def _simulators(
    config: ServerConfig, default: CalibrationSet, calibrations: dict[UUID, CalibrationSet]
) -> list[CalibratedSimulator]:
    """One simulator per worker thread, noisy when the configuration asks for it."""
    noisy = config.noise == "calibration"
    seeds = np.random.SeedSequence(config.seed).spawn(max(1, config.workers))
    return [
        CalibratedSimulator(
            default if noisy else None,
            # One generator per thread; a single worker keeps the plain seed (reproducible).
            np.random.default_rng(seed) if config.workers > 1 else config.seed,
            max_block_qubits=config.max_block_qubits,
            max_density_qubits=config.max_density_qubits,
            max_trajectories=config.max_trajectories,
            calibrations=calibrations if noisy else None,
            engine=config.engine,
        )
        for seed in seeds
    ]
