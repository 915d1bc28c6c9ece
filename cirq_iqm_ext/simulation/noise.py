"""A noise model built from a calibration set, and a local noisy sampler that needs no server.

The physics, per operation of duration ``t`` on qubits with relaxation time T1 and dephasing time
T2:

* **thermal relaxation** on every qubit of the circuit for the duration of each moment (so idling
  qubits decay too): amplitude damping with ``γ = 1 - exp(-t/T1)`` and pure dephasing with
  ``1/Tφ = 1/T2 - 1/(2·T1)``, so populations relax as ``exp(-t/T1)`` and coherences as
  ``exp(-t/T2)``;
* a **depolarising remainder** after each gate, its probability chosen so that relaxation plus
  depolarisation give exactly the calibrated average gate fidelity (computed from the Pauli transfer
  matrix of the relaxation; zero when relaxation alone already explains the infidelity);
* **asymmetric readout errors**: a measured 0 reads 1 with ``readout_error_0_to_1`` and a measured 1
  reads 0 with ``readout_error_1_to_0``. The error is in the bit, not the qubit: after a mid-circuit
  measurement the qubit is in the state actually found, and classical control (``cc_prx``,
  ``with_classical_controls``) sees the bit as read;
* **active reset** (``cirq.ResetChannel``, the ``reset`` instruction): a measurement, then a π pulse
  iff it read 1, so it fails with the readout errors (a 1 read as 0 stays 1, a 0 read as 1 ends in
  1) and the qubit relaxes during the measurement and the pulse.

:class:`IQMNoiseModel` is a :class:`cirq.NoiseModel` for Cirq's own simulators;
:func:`cirq_iqm_ext.local_sampler` (in :mod:`cirq_iqm_ext.sampling.local`) validates against an
:class:`~cirq_iqm_ext.IQMDevice` and runs the server's fast simulator with the same physics.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from typing import Any

import cirq
import numpy as np

from cirq_iqm_ext.calibration import CalibrationSet
from cirq_iqm_ext.device.native_gates import instruction_name, is_native


def thermal_parameters(t1: float, t2: float, duration: float) -> tuple[float, float]:
    """Amplitude-damping ``γ`` and phase-flip probability for an idle of ``duration`` seconds.

    Returns:
        ``(gamma, p_z)``: apply amplitude damping with ``gamma`` and a Z with probability ``p_z``
        (equivalently ``cirq.phase_damp(1 - (1 - 2·p_z)**2)``).
    """
    if duration <= 0:
        return 0.0, 0.0
    gamma = -math.expm1(-duration / t1)
    rate_phi = max(0.0, 1.0 / t2 - 0.5 / t1)  # pure dephasing rate; T2 <= 2 T1 keeps it >= 0
    p_z = -0.5 * math.expm1(-duration * rate_phi)
    return gamma, p_z


def depolarizing_remainder(
    fidelity: float, duration: float, coherence: Sequence[tuple[float, float]]
) -> float:
    """The depolarising probability that, after relaxation, yields the average gate ``fidelity``.

    Relaxation of each qubit for ``duration`` has a diagonal Pauli transfer matrix
    ``(1, e^{-t/T2}, e^{-t/T2}, e^{-t/T1})``; with ``S`` the sum of the diagonal of their tensor
    product and ``d = 2**n``, the process fidelity after ``cirq.depolarize(p, n)`` is
    ``(1 + (1 - p·d²/(d²-1))·(S - 1)) / d²``. Solved for ``p`` at the process fidelity
    ``((d+1)·F - 1)/d`` of the average fidelity ``F``.

    Args:
        fidelity: Average gate fidelity.
        duration: Gate duration in seconds.
        coherence: ``(T1, T2)`` of each qubit the gate acts on.

    Returns:
        ``p`` for ``cirq.depolarize(p, n_qubits=len(coherence))``, clipped to ``[0, 1 - 1/d²]``.
    """
    n = len(coherence)
    d2 = 4**n
    s = 1.0
    for t1, t2 in coherence:
        s *= 1 + 2 * math.exp(-duration / t2) + math.exp(-duration / t1)
    process_fidelity = ((2**n + 1) * fidelity - 1) / 2**n
    if s <= 1:
        return 0.0
    p = (1 - (d2 * process_fidelity - 1) / (s - 1)) * (d2 - 1) / d2
    return min(max(p, 0.0), 1 - 1 / d2)


def readout_kraus(p01: float, p10: float) -> tuple[np.ndarray, ...]:
    """Kraus operators that, right before a Z measurement, flip outcomes like readout errors do."""
    return (
        np.diag([math.sqrt(1 - p01), math.sqrt(1 - p10)]).astype(complex),
        np.array([[0, 0], [math.sqrt(p01), 0]], dtype=complex),
        np.array([[0, math.sqrt(p10)], [0, 0]], dtype=complex),
    )


def readout_confusion(p01: float, p10: float) -> np.ndarray:
    """The confusion matrix (row: true outcome, column: read bit) of a qubit's readout."""
    return np.array([[1 - p01, p01], [p10, 1 - p10]])


def _thermal_kraus(gamma: float, p_z: float) -> list[np.ndarray]:
    damp = [
        np.diag([1.0, math.sqrt(1 - gamma)]),
        np.array([[0, math.sqrt(gamma)], [0, 0]]),
    ]
    dephase = [math.sqrt(1 - p_z) * np.eye(2), math.sqrt(p_z) * np.diag([1.0, -1.0])]
    return [z @ a for z in dephase for a in damp]


#: The one-qubit Paulis I, X, Y, Z (the engines' error operators).
PAULIS: tuple[np.ndarray, ...] = (
    np.eye(2, dtype=np.complex128),
    np.array([[0, 1], [1, 0]], dtype=np.complex128),
    np.array([[0, -1j], [1j, 0]], dtype=np.complex128),
    np.array([[1, 0], [0, -1]], dtype=np.complex128),
)
for _pauli in PAULIS:
    _pauli.setflags(write=False)  # shared by both engines


@functools.cache
def pauli_strings(n: int) -> tuple[np.ndarray, ...]:
    """The ``4**n`` Pauli strings on ``n`` qubits; string ``c`` has ``PAULIS[c % 4]`` on the
    first qubit, ``PAULIS[c // 4 % 4]`` on the second, … (0 is the identity)."""
    strings = []
    for choice in range(4**n):
        pauli: np.ndarray = np.array([[1.0]], dtype=np.complex128)
        for _ in range(n):
            pauli = np.kron(pauli, PAULIS[choice % 4])
            choice //= 4
        pauli.setflags(write=False)  # shared by every caller (cached)
        strings.append(pauli)
    return tuple(strings)


def superoperator(kraus: Iterable[np.ndarray]) -> np.ndarray:
    """Σ K ⊗ K* of a channel's Kraus operators, acting on (row, column) index pairs."""
    terms = [np.kron(k, k.conj()) for k in kraus]
    return sum(terms, np.zeros(terms[0].shape, dtype=np.complex128))


def _kraus_from_superoperator(superop: np.ndarray) -> tuple[np.ndarray, ...]:
    """At most four Kraus operators of a one-qubit channel, from its Choi matrix."""
    choi = superop.reshape(2, 2, 2, 2).transpose(0, 2, 1, 3).reshape(4, 4)
    values, vectors = np.linalg.eigh((choi + choi.conj().T) / 2)
    return tuple(
        math.sqrt(value) * vectors[:, i].reshape(2, 2)
        for i, value in enumerate(values)
        if value > 1e-14
    )


def reset_kraus(
    p01: float,
    p10: float,
    measure_relaxation: tuple[float, float],
    pulse_depolarizing: float,
    pulse_relaxation: tuple[float, float],
) -> tuple[np.ndarray, ...]:
    """Kraus operators of an active reset, as the server simulates it.

    The qubit is measured (the readout errors decide the bit read), relaxes for the
    measurement's duration, gets a π pulse iff it read 1 (with the prx's depolarising remainder)
    and relaxes for the pulse's duration, applied or not.

    Args:
        p01: Readout error 0 -> 1.
        p10: Readout error 1 -> 0.
        measure_relaxation: ``(gamma, p_z)`` of :func:`thermal_parameters` for the measurement.
        pulse_depolarizing: Depolarising probability of the pulse.
        pulse_relaxation: ``(gamma, p_z)`` for the pulse's duration.
    """
    zero, one = np.diag([1.0, 0.0]), np.diag([0.0, 1.0])
    read = (
        [math.sqrt(1 - p01) * zero, math.sqrt(p10) * one],  # read 0
        [math.sqrt(p01) * zero, math.sqrt(1 - p10) * one],  # read 1
    )
    pulse = np.array([[0, -1j], [-1j, 0]])  # prx(π, 0)
    paulis = (
        np.array([[0, 1], [1, 0]]),
        np.array([[0, -1j], [1j, 0]]),
        np.diag([1.0, -1.0]),
    )
    noisy_pulse = [math.sqrt(1 - pulse_depolarizing) * pulse] + [
        math.sqrt(pulse_depolarizing / 3) * p @ pulse for p in paulis
    ]
    during_measure = superoperator(_thermal_kraus(*measure_relaxation))
    during_pulse = superoperator(_thermal_kraus(*pulse_relaxation))
    total = np.zeros((4, 4), dtype=complex)
    for bit, branch in enumerate(read):
        conditional = superoperator(noisy_pulse) if bit else np.eye(4)
        total += during_pulse @ conditional @ during_measure @ superoperator(branch)
    return _kraus_from_superoperator(total)


def _gate_kind(op: cirq.Operation) -> str | None:
    """The calibrated gate an operation stands for (``None``: free, e.g. a virtual Z).

    A native gate is what the native-gate table says (``"wait"`` for a ``delay``; a barrier is
    free). Cirq's simulators take any gate, so another one is priced as the pulse it stands for:
    a SWAP-like gate as a MOVE, a one-qubit gate as a ``prx``, a two-qubit gate as a ``cz``.
    """
    if op.classical_controls:
        return _gate_kind(op.without_classical_controls())  # a cc_prx costs a prx, applied or not
    gate = op.gate
    name = instruction_name(gate)
    if name is not None:
        return _KIND_OF_INSTRUCTION.get(name, name)
    if is_native(gate) or isinstance(gate, cirq.IdentityGate):
        return None  # Z rotations are virtual (frame changes) on IQM hardware
    if isinstance(gate, cirq.SwapPowGate) and len(op.qubits) == 2:
        return "move"
    if len(op.qubits) == 1:
        return "prx"
    if len(op.qubits) == 2:
        return "cz"
    return None


#: Instructions priced otherwise than by the calibrated gate of their name.
_KIND_OF_INSTRUCTION: dict[str, str | None] = {"delay": "wait", "barrier": None}


class IQMNoiseModel(cirq.NoiseModel):
    """A :class:`cirq.NoiseModel` from a calibration set (see the module docstring).

    Qubits are ``cirq.NamedQubit`` s named as in the calibration set; qubits without figures get no
    noise. Each moment is followed by the gates' depolarising remainders and by thermal relaxation
    of every qubit for the moment's duration (its longest operation; ``cirq.WaitGate`` s count with
    their own duration). Terminal measurements are preceded by the readout-error channel; a
    measurement followed by anything on its qubits gets the readout errors as its
    ``confusion_map`` instead, so the qubit keeps the state found and only the bit is wrong (what
    classical control reads). A classically controlled gate lasts its gate's duration whether or not
    it is applied, and has the gate's depolarising remainder only when applied. A
    ``cirq.ResetChannel`` becomes :func:`reset_kraus` (a measurement and a conditional π pulse).

    Args:
        calibration: The figures.
        readout_errors: Whether to model readout errors.
    """

    def __init__(self, calibration: CalibrationSet, *, readout_errors: bool = True):
        self.calibration = calibration
        self.readout_errors = readout_errors

    def __repr__(self) -> str:
        return (
            f"IQMNoiseModel(calibration=<{self.calibration.name} "
            f"{self.calibration.calibration_set_id}>, readout_errors={self.readout_errors!r})"
        )

    def _figures(self, kind: str, names: tuple[str, ...]) -> tuple[float, float] | None:
        if kind == "move" and self.calibration.gate("move", names) is None:
            kind = "cz"
        return self.calibration.gate(kind, names)

    def _op_duration(self, op: cirq.Operation) -> float:
        kind = _gate_kind(op)
        if kind is None:
            return 0.0
        if kind == "wait":
            gate = op.without_classical_controls().gate
            return float(gate.duration.total_nanos()) * 1e-9  # type: ignore[union-attr]
        figures = self._figures(kind, tuple(str(q) for q in op.qubits))
        return 0.0 if figures is None else figures[1]

    def _readout(self, name: str) -> tuple[float, float] | None:
        figures = self.calibration.qubits.get(name)
        if not self.readout_errors or figures is None or not figures.measurable:
            return None
        return figures.readout_error_0_to_1 or 0.0, figures.readout_error_1_to_0 or 0.0

    def _reset(self, op: cirq.Operation) -> tuple[cirq.Operation, float] | None:
        """A reset as its Kraus channel and duration (``None``: not calibrated, left ideal)."""
        name = str(op.qubits[0])
        figures = self.calibration.qubits.get(name)
        prx = self.calibration.gate("prx", (name,))
        if figures is None or not figures.measurable or prx is None:
            return None
        p01, p10 = self._readout(name) or (0.0, 0.0)
        t1, t2 = figures.t1, figures.t2
        kraus = reset_kraus(
            p01,
            p10,
            thermal_parameters(t1, t2, self.calibration.measure_duration),
            depolarizing_remainder(prx[0], prx[1], [(t1, t2)]),
            thermal_parameters(t1, t2, prx[1]),
        )
        return cirq.KrausChannel(kraus).on(*op.qubits), self.calibration.measure_duration + prx[1]

    def noisy_moments(
        self, moments: Iterable[cirq.Moment], system_qubits: Sequence[cirq.Qid]
    ) -> Sequence[Any]:
        """Every moment with its noise; measurements followed by anything on their qubits are
        mid-circuit ones (see the class docstring)."""
        moments = list(moments)
        later: set[cirq.Qid] = set()
        mid: set[cirq.Operation] = set()
        for moment in reversed(moments):
            for op in moment.operations:
                if cirq.is_measurement(op) and later.intersection(op.qubits):
                    mid.add(op)
            for op in moment.operations:
                later.update(op.qubits)
        return [self._noisy(moment, system_qubits, mid) for moment in moments]

    def noisy_moment(self, moment: cirq.Moment, system_qubits: Sequence[cirq.Qid]) -> Any:
        """The moment with its noise (see the class docstring), its measurements as terminal."""
        return self._noisy(moment, system_qubits, set())

    def _mid_circuit_measurement(self, op: cirq.Operation) -> cirq.Operation:
        gate = op.gate
        assert isinstance(gate, cirq.MeasurementGate)
        confusion: dict[tuple[int, ...], np.ndarray] = {}
        for i, qubit in enumerate(op.qubits):
            errors = self._readout(str(qubit))
            if errors is not None and not any(i in key for key in gate.confusion_map):
                confusion[(i,)] = readout_confusion(*errors)
        if not confusion:
            return op
        return cirq.MeasurementGate(
            gate.num_qubits(),
            gate.mkey,
            gate.invert_mask,
            cirq.qid_shape(gate),
            confusion_map={**gate.confusion_map, **confusion},
        ).on(*op.qubits)

    def _noisy(
        self,
        moment: cirq.Moment,
        system_qubits: Sequence[cirq.Qid],
        mid: set[cirq.Operation],
    ) -> list[cirq.Moment]:
        before: list[cirq.Operation] = []
        depolarizing: list[cirq.Operation] = []
        replaced: dict[cirq.Operation, cirq.Operation] = {}
        absorbed: dict[cirq.Qid, float] = {}  # relaxation already inside a reset's channel
        duration = 0.0
        for op in moment.operations:
            kind = _gate_kind(op)
            names = tuple(str(q) for q in op.qubits)
            if kind == "reset" and not op.classical_controls:
                reset = self._reset(op)
                if reset is not None:
                    replaced[op] = reset[0]
                    absorbed[op.qubits[0]] = reset[1]
                    duration = max(duration, reset[1])
                continue
            if kind == "measure" and op in mid:
                duration = max(duration, self.calibration.measure_duration)
                replaced[op] = self._mid_circuit_measurement(op)
                continue
            if kind == "measure":
                duration = max(duration, self.calibration.measure_duration)
                before.extend(self._readout_channels(op))
                continue
            duration = max(duration, self._op_duration(op))
            if kind in ("prx", "cz", "move"):
                noise_op = self._depolarizing(op, kind, names)
                if noise_op is not None:
                    depolarizing.append(noise_op)
        if replaced:
            moment = cirq.Moment(replaced.get(op, op) for op in moment.operations)
        thermal = self._thermal(system_qubits, duration, absorbed)
        return _noisy_moments(before, moment, depolarizing, thermal)

    def _depolarizing(
        self, op: cirq.Operation, kind: str, names: tuple[str, ...]
    ) -> cirq.Operation | None:
        """The gate's depolarising remainder (``None``: uncalibrated or none needed)."""
        gate_figures = self._figures(kind, names)
        if gate_figures is None or not all(n in self.calibration.qubits for n in names):
            return None
        coherence = [(self.calibration.qubits[n].t1, self.calibration.qubits[n].t2) for n in names]
        p = depolarizing_remainder(gate_figures[0], gate_figures[1], coherence)
        if p <= 0:
            return None
        noise_op: cirq.Operation = cirq.depolarize(p, n_qubits=len(names)).on(*op.qubits)
        if op.classical_controls:  # only when the gate is applied
            noise_op = noise_op.with_classical_controls(*op.classical_controls)
        return noise_op

    def _readout_channels(self, op: cirq.Operation) -> list[cirq.Operation]:
        """The readout-error channels right before a terminal measurement."""
        if not self.readout_errors:
            return []
        channels = []
        for qubit in op.qubits:
            figures = self.calibration.qubits.get(str(qubit))
            if figures is not None and figures.measurable:
                kraus = readout_kraus(
                    figures.readout_error_0_to_1 or 0.0, figures.readout_error_1_to_0 or 0.0
                )
                channels.append(cirq.KrausChannel(kraus).on(qubit))
        return channels

    def _thermal(
        self, system_qubits: Sequence[cirq.Qid], duration: float, absorbed: dict[cirq.Qid, float]
    ) -> list[cirq.Operation]:
        """Relaxation of every qubit for a moment's duration (less what a reset absorbed)."""
        thermal: list[cirq.Operation] = []
        for qubit in system_qubits:
            figures = self.calibration.qubits.get(str(qubit))
            if figures is None:
                continue
            idle = duration - absorbed.get(qubit, 0.0)
            gamma, p_z = thermal_parameters(figures.t1, figures.t2, idle)
            if gamma > 0:
                thermal.append(cirq.amplitude_damp(gamma).on(qubit))
            if p_z > 0:
                thermal.append(cirq.phase_flip(p_z).on(qubit))
        return thermal


def _noisy_moments(
    before: list[cirq.Operation],
    moment: cirq.Moment,
    depolarizing: list[cirq.Operation],
    thermal: list[cirq.Operation],
) -> list[cirq.Moment]:
    """Readout channels, the moment, its depolarising remainders, then damping and dephasing."""
    out = []
    if before:
        out.append(cirq.Moment(before))
    out.append(moment)
    if depolarizing:
        out.append(cirq.Moment(depolarizing))
    # Amplitude and phase damping on one qubit cannot share a moment.
    amp = [op for op in thermal if isinstance(op.gate, cirq.AmplitudeDampingChannel)]
    phase = [op for op in thermal if not isinstance(op.gate, cirq.AmplitudeDampingChannel)]
    if amp:
        out.append(cirq.Moment(amp))
    if phase:
        out.append(cirq.Moment(phase))
    return out


__all__ = [
    "IQMNoiseModel",
    "depolarizing_remainder",
    "readout_confusion",
    "readout_kraus",
    "reset_kraus",
    "thermal_parameters",
]
