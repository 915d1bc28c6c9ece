"""Admission of run requests, shared by both APIs: what a job must pass before it is queued.

In order: the request limits (circuits, shots, circuits × shots; the body size is enforced
while reading, see :attr:`Limits.max_body_bytes`), validation against the served architecture
(the same function as the client's, so both report the same messages), the circuit duration
against ``max_circuit_duration_over_t2`` times the shortest T2, ``Idempotency-Key`` handling
(a repeat returns the earlier job) and the bounded queue. Each refusal is an
:class:`AdmissionError` whose ``kind`` names the step, so each API can word its answer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cirq_iqm_ext.calibration import CalibrationSet
from cirq_iqm_ext.errors import CircuitValidationError
from cirq_iqm_ext.server.config import ServerConfig
from cirq_iqm_ext.server.framework import HTTPError
from cirq_iqm_ext.server.jobs import (
    IdempotencyConflictError,
    Job,
    JobStore,
    QueueFullError,
    Worker,
)
from cirq_iqm_ext.wire.models import QuantumArchitectureSpecification, RunRequest
from cirq_iqm_ext.wire.validation import validate_run_request


class AdmissionError(HTTPError):
    """A run request refused on submission.

    Attributes:
        kind: The step that refused it: ``limits``, ``validation``, ``duration``,
            ``idempotency`` or ``queue``.
    """

    def __init__(
        self, kind: str, status: int, detail: str, headers: list[tuple[str, str]] | None = None
    ):
        super().__init__(status, detail, headers=headers)
        self.kind = kind


@dataclass(frozen=True)
class Limits:
    """The size limits of one job (see the fields of the same names of ``ServerConfig``)."""

    max_body_bytes: int
    max_shots: int
    max_circuits: int
    max_total_shots: int

    @classmethod
    def from_config(cls, config: ServerConfig) -> Limits:
        """The limits a configuration sets."""
        return cls(
            config.max_body_bytes, config.max_shots, config.max_circuits, config.max_total_shots
        )

    def check(self, run_request: RunRequest) -> None:
        """Refuses a request with too many shots, circuits or circuits × shots.

        Raises:
            AdmissionError: ``kind="limits"``, status 400.
        """
        shots, circuits = run_request.shots, len(run_request.circuits)
        if shots > self.max_shots:
            raise AdmissionError(
                "limits", 400, f"shots must be at most {self.max_shots}, got {_short(shots)}"
            )
        if circuits > self.max_circuits:
            raise AdmissionError(
                "limits",
                400,
                f"A job may have at most {self.max_circuits} circuits, got {circuits}",
            )
        check_angles(run_request)
        total = circuits * shots
        if total > self.max_total_shots:
            raise AdmissionError(
                "limits",
                400,
                f"circuits × shots must be at most {self.max_total_shots}, got "
                f"{circuits} × {shots} = {total}",
            )


#: Largest ``|angle_t|`` or ``|phase_t|`` in full turns the server runs. Beyond it a float
#: cannot resolve a useful fraction of a turn (and ``2π·x`` may overflow), so such an angle is
#: refused rather than run as something else.
MAX_ABS_TURNS = 1e6
#: Arguments that hold an angle in full turns.
TURN_ARGS = ("angle_t", "phase_t")


def check_angles(run_request: RunRequest) -> None:
    """Refuses angles beyond :data:`MAX_ABS_TURNS` turns, naming the circuit and the argument.

    Raises:
        AdmissionError: ``kind="limits"``, status 400.
    """
    for index, circuit in enumerate(run_request.circuits):
        for position, instruction in enumerate(circuit.instructions):
            for name in TURN_ARGS:
                value = instruction.args.get(name)
                if isinstance(value, float) and abs(value) > MAX_ABS_TURNS:
                    radians = "angle" if name == "angle_t" else "phase"
                    raise AdmissionError(
                        "limits",
                        400,
                        f'circuit {index} ("{circuit.name}"), instruction {position} '
                        f"({instruction.name}): {name} = {value!r} turns ({radians} = "
                        f"{value * 2 * math.pi!r} rad) is beyond ±{MAX_ABS_TURNS:g} turns; "
                        "reduce it modulo one turn (2π)",
                    )


def _short(number: int) -> str:
    """An integer for a message: a huge one by its digit count, not all its digits."""
    text = str(number)
    return text if len(text) <= 24 else f"an integer of {len(text)} digits"


class Admission:
    """Checks run requests and turns the admitted ones into queued jobs.

    Args:
        config: The limits, the default duration ratio and ``retry_after``.
        architecture: The served architecture requests are validated against.
        dynamic: Whether mid-circuit measurements (and ``reset``, ``cc_prx``) are allowed.
        feedback_groups: The groups ``cc_prx`` feedback is checked against.
        store: Where admitted jobs are stored (and idempotency keys remembered).
        worker: The queue admitted jobs go to.
    """

    def __init__(
        self,
        config: ServerConfig,
        architecture: QuantumArchitectureSpecification,
        *,
        dynamic: bool,
        feedback_groups: tuple[frozenset[str], ...],
        store: JobStore,
        worker: Worker,
    ):
        self.limits = Limits.from_config(config)
        self._default_ratio = config.max_circuit_duration_over_t2
        self._retry_after = config.retry_after
        self._architecture = architecture
        self._dynamic = dynamic
        self._feedback_groups = feedback_groups
        self._store = store
        self._worker = worker

    def admit(
        self,
        run_request: RunRequest,
        calibration: CalibrationSet,
        *,
        idempotency_key: str | None,
        move_gate_validation: str = "strict",
        warnings: list[str] | None = None,
        owner: str | None = None,
        body: bytes | None = None,
    ) -> tuple[Job, bool]:
        """Validates a run request, stores the job and queues it (the limits are checked before).

        ``owner`` is the submitting identity; only it (or anyone, for ``None``) sees the job.
        ``body`` is the raw request body, whose digest tells an idempotent repeat.

        The request's own ``move_gate_validation`` wins over the argument.

        Returns:
            The job and whether it was created now (``False``: an idempotent repeat).

        Raises:
            AdmissionError: Refused (``validation``, ``duration``, ``idempotency``, ``queue``).
        """
        try:
            validate_run_request(
                run_request,
                self._architecture,
                allow_mid_circuit_measurement=self._dynamic,
                move_gate_validation=run_request.move_gate_validation or move_gate_validation,
                feedback_groups=self._feedback_groups,
            )
        except CircuitValidationError as error:
            raise AdmissionError("validation", 400, str(error)) from None
        warnings = list(warnings or ()) + option_warnings(run_request)
        self.check_durations(run_request, calibration)
        try:
            job, created = self._store.create(
                run_request,
                calibration.calibration_set_id,
                idempotency_key=idempotency_key,
                warnings=warnings,
                owner=owner,
                body=body,
            )
        except IdempotencyConflictError as error:
            raise AdmissionError("idempotency", 409, str(error)) from None
        if created:
            self._queue(job)
        return job, created

    def _queue(self, job: Job) -> None:
        try:
            self._worker.submit(job.id)
        except QueueFullError as error:
            self._store.discard(job.id)  # never queued: forget it, and its idempotency key
            raise AdmissionError(
                "queue", 503, str(error), [("Retry-After", f"{self._retry_after:g}")]
            ) from None

    def check_durations(self, run_request: RunRequest, calibration: CalibrationSet) -> None:
        """Refuses circuits longer than the ratio times the shortest T2 of their qubits.

        Raises:
            AdmissionError: ``kind="duration"``, status 400; also for a gate the calibration set
                does not cover.
        """
        ratio = run_request.max_circuit_duration_over_t2
        if ratio is None:
            ratio = self._default_ratio
        mapping = run_request.qubit_mapping_dict
        for index, circuit in enumerate(run_request.circuits):
            duration, qubits, missing = circuit_duration(circuit, calibration, mapping)
            if missing is not None:
                raise AdmissionError(
                    "duration",
                    400,
                    f'circuit {index} ("{circuit.name}"): {missing} is not calibrated in '
                    f"calibration set {calibration.calibration_set_id}",
                )
            shortest = calibration.min_t2(qubits) if ratio > 0 else None
            if shortest is None:
                continue
            t2, qubit = shortest
            if duration > ratio * t2:
                raise AdmissionError(
                    "duration",
                    400,
                    f'circuit {index} ("{circuit.name}") lasts {duration * 1e6:.3f} µs, longer '
                    f"than max_circuit_duration_over_t2 = {ratio:g} times the shortest T2 of its "
                    f"qubits ({t2 * 1e6:.3f} µs on {qubit}), i.e. {ratio * t2 * 1e6:.3f} µs "
                    "(delays count); send a larger max_circuit_duration_over_t2, or "
                    "max_circuit_duration_over_t2=0 to turn the check off (e.g. for a T1 "
                    "experiment, whose delays last several T2)",
                )


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


def option_warnings(run_request: RunRequest) -> list[str]:
    """Job messages for the options that the simulator records but cannot apply."""
    if run_request.dd_mode == "enabled" or run_request.dd_strategy is not None:
        return [
            "Dynamical decoupling (dd_mode, dd_strategy) is recorded but not applied: this "
            "simulator inserts no DD pulses, so idle qubits decohere as without DD"
        ]
    return []
