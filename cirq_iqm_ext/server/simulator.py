"""Executes run requests: exact or with the noise of a calibration set, sampling all shots at once.

The server's worker hands a parsed, validated :class:`~cirq_iqm_ext.models.RunRequest` to a
:class:`CalibratedSimulator` and gets back measurements in the shape of PROTOCOL.md §3.4: one dict
per circuit mapping each measurement key to a ``[shot, qubit]`` array of 0/1 (numpy ``uint8``; the
store turns them into JSON lists only when asked).

How it is fast:

* measurements are terminal in this protocol version, so each circuit is evolved once without them
  and every shot is sampled from the final probabilities with numpy;
* qubits that never interact are simulated as separate blocks (noise is local, so this stays exact);
* a small numpy engine does the evolution: single-qubit gates on a qubit are fused until a two-qubit
  gate touches it, and then the pending gates of up to four neighbouring qubits go out together as
  one small matrix product (one pass over the state instead of four); ``cz`` is an in-place sign
  flip on a strided view;
* noiseless: one state vector (``complex64``); noisy blocks of up to ``max_density_qubits`` qubits:
  one exact density-matrix evolution (per-qubit superoperators); larger noisy blocks: Monte-Carlo
  trajectories (Pauli errors and relaxation jumps drawn per trajectory; each moment's amplitude
  damping and dephasing flips on every qubit are one diagonal, applied in one pass), at most
  ``max_trajectories`` of them, each sampled for an equal share of the shots (every shot follows the
  exact noisy distribution; shots of one trajectory are correlated);
* readout errors and heralding are vectorised over all shots.

The physics is :mod:`cirq_iqm_ext.noise`'s, so results agree with Cirq's simulators running
:class:`~cirq_iqm_ext.noise.IQMNoiseModel`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cirq
import numpy as np

from cirq_iqm_ext.calibration import CalibrationSet
from cirq_iqm_ext.models import Circuit, HeraldingMode, Instruction, RunRequest
from cirq_iqm_ext.noise import depolarizing_remainder, thermal_parameters
from cirq_iqm_ext.server.move_model import MovePhaseModel

#: One circuit's measurements: key -> [shot, qubit] array of 0/1.
MeasurementArrays = dict[str, np.ndarray]
#: One circuit's measurements as JSON lists: key -> [shot][qubit] of 0/1.
MeasurementDict = dict[str, list[list[int]]]

#: Default bound on the size of one entangled block of qubits (a 2**24 state vector is 128 MiB).
DEFAULT_MAX_BLOCK_QUBITS = 24
#: Noisy blocks up to this size are evolved as one exact density matrix.
DEFAULT_MAX_DENSITY_QUBITS = 8
#: Noisy larger blocks use at most this many Monte-Carlo trajectories per circuit.
DEFAULT_MAX_TRAJECTORIES = 40

_I2 = np.eye(2, dtype=np.complex128)
_PAULIS = (
    _I2,
    np.array([[0, 1], [1, 0]], dtype=np.complex128),
    np.array([[0, -1j], [1j, 0]], dtype=np.complex128),
    np.array([[1, 0], [0, -1]], dtype=np.complex128),
)
_CZ_DIAG = np.array([1, 1, 1, -1], dtype=np.complex128)


class SimulationError(RuntimeError):
    """A circuit cannot be simulated (e.g. an entangled block is too large); its job fails."""


def prx_matrix(angle_t: float, phase_t: float) -> np.ndarray:
    """RZ(φ)·RX(θ)·RZ(-φ) with θ = 2π·angle_t, φ = 2π·phase_t (PROTOCOL.md §3.2)."""
    theta, phi = 2 * math.pi * angle_t, 2 * math.pi * phase_t
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    return np.array(
        [[c, -1j * s * np.exp(-1j * phi)], [-1j * s * np.exp(1j * phi), c]], dtype=np.complex128
    )


@dataclass
class _Op:
    """One scheduled gate: ``kind`` is ``u`` (1-qubit matrix), ``cz`` or ``move`` (4x4 matrix in
    the basis |qubit resonator>, with the locus's MOVE phase)."""

    kind: str
    qubits: tuple[str, ...]
    matrix: np.ndarray | None = None
    depolarizing: float = 0.0


@dataclass
class _Schedule:
    """A circuit as moments (ASAP), with the duration of each moment."""

    moments: list[list[_Op]] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    measurements: list[tuple[str, list[str]]] = field(default_factory=list)
    terminal: bool = True
    #: Moment at which each measured qubit is read out; it no longer relaxes from there on.
    measured_at: dict[str, int] = field(default_factory=dict)

    def reserve(self, moment: int) -> None:
        """Makes sure the moment exists."""
        while len(self.moments) <= moment:
            self.moments.append([])
            self.durations.append(0.0)


class CalibratedSimulator:
    """Runs run requests exactly (``calibration=None``) or with a calibration set's noise.

    Args:
        calibration: The figures; ``None`` for exact simulation.
        seed: Seed of the random generator; equal seeds give equal results for equal job sequences.
        max_block_qubits: Largest number of mutually entangled qubits simulated together.
        max_density_qubits: Noisy blocks up to this size use an exact density matrix.
        max_trajectories: Most Monte-Carlo trajectories per circuit for larger noisy blocks.
        calibrations: Further sets by id, for requests naming a ``calibration_set_id``.
    """

    def __init__(
        self,
        calibration: CalibrationSet | None = None,
        seed: int | np.random.Generator | None = None,
        *,
        max_block_qubits: int = DEFAULT_MAX_BLOCK_QUBITS,
        max_density_qubits: int = DEFAULT_MAX_DENSITY_QUBITS,
        max_trajectories: int = DEFAULT_MAX_TRAJECTORIES,
        calibrations: Mapping[Any, CalibrationSet] | None = None,
    ):
        self.calibration = calibration
        self._calibrations = dict(calibrations or {})
        self._rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self._max_block_qubits = max_block_qubits
        self._max_density_qubits = max_density_qubits
        self._max_trajectories = max(1, max_trajectories)

    # Public API ---------------------------------------------------------------------------------

    def run(self, request: RunRequest) -> list[MeasurementArrays]:
        """Runs every circuit of ``request`` with ``request.shots`` shots.

        With ``heralding_mode == "zeros"`` shots whose pre-circuit measurement of the used qubits
        was not all 0 are dropped (only readout errors make that happen here).

        Raises:
            SimulationError: A circuit is too large to simulate.
        """
        calibration = self.calibration
        if calibration is not None and request.calibration_set_id is not None:
            calibration = self._calibrations.get(request.calibration_set_id, calibration)
        mapping = request.qubit_mapping_dict
        out = []
        for index, circuit in enumerate(request.circuits):
            arrays = self.run_circuit_arrays(
                circuit, request.shots, mapping, circuit_index=index, calibration=calibration
            )
            if request.heralding_mode == HeraldingMode.ZEROS:
                arrays = self._herald(circuit, mapping, arrays, request.shots, calibration)
            out.append(arrays)
        return out

    def run_circuit(
        self,
        circuit: Circuit,
        shots: int,
        qubit_mapping: Mapping[str, str] | None = None,
        *,
        circuit_index: int = 0,
    ) -> MeasurementDict:
        """Runs one circuit; measurements as JSON lists (key -> ``[shot][qubit]``)."""
        arrays = self.run_circuit_arrays(circuit, shots, qubit_mapping, circuit_index=circuit_index)
        return {key: value.tolist() for key, value in arrays.items()}

    def run_circuit_arrays(
        self,
        circuit: Circuit,
        shots: int,
        qubit_mapping: Mapping[str, str] | None = None,
        *,
        circuit_index: int = 0,
        calibration: CalibrationSet | None = None,
    ) -> MeasurementArrays:
        """Runs one circuit and returns key -> ``[shot, qubit]`` ``uint8`` arrays.

        Raises:
            SimulationError: An entangled block of qubits is too large to simulate.
        """
        calibration = calibration if calibration is not None else self.calibration
        schedule = self.schedule(circuit, qubit_mapping, calibration)
        if not schedule.measurements:
            return {}
        if not schedule.terminal:
            return self._run_with_cirq(circuit, shots, qubit_mapping, calibration)
        measured = [q for _, qubits in schedule.measurements for q in qubits]
        bits = self._sample(schedule, measured, shots, circuit, circuit_index, calibration)
        if calibration is not None:
            bits = self._readout_errors(bits, measured, calibration)
        out: MeasurementArrays = {}
        column = 0
        for key, qubits in schedule.measurements:
            out[key] = bits[:, column : column + len(qubits)]
            column += len(qubits)
        return out

    # Compatibility with the noiseless simulator's API --------------------------------------------

    def build_circuit(
        self, circuit: Circuit, qubit_mapping: Mapping[str, str] | None = None
    ) -> tuple[cirq.Circuit, list[tuple[str, list[cirq.NamedQubit]]]]:
        """Translates a protocol circuit to Cirq on physical ``cirq.NamedQubit`` s.

        Returns:
            The Cirq circuit (measurements included) and the measurements in instruction order.
        """
        ops: list[cirq.Operation] = []
        measurements: list[tuple[str, list[cirq.NamedQubit]]] = []
        for instruction in circuit.instructions:
            qubits = [cirq.NamedQubit(_physical(q, qubit_mapping)) for q in instruction.qubits]
            op = self.translate(instruction, qubits)
            if op is None:
                continue
            if instruction.name == "measure":
                measurements.append((instruction.args["key"], qubits))
            ops.append(op)
        return cirq.Circuit(ops), measurements

    @staticmethod
    def translate(
        instruction: Instruction,
        qubits: Sequence[cirq.Qid],
        move_model: MovePhaseModel | None = None,
    ) -> cirq.Operation | None:
        """Maps one instruction to a Cirq operation (``None`` for a barrier).

        ``prx(angle_t, phase_t)`` is
        ``PhasedXPowGate(exponent=2·angle_t, phase_exponent=2·phase_t)`` up to global phase;
        ``move`` is the population exchange with the locus's phase from ``move_model`` (by default
        the phases of an unnamed calibration set, as the simulation without calibration uses).

        Raises:
            SimulationError: An unknown instruction.
        """
        name = instruction.name
        if name == "prx":
            return cirq.PhasedXPowGate(
                exponent=2 * instruction.args["angle_t"],
                phase_exponent=2 * instruction.args["phase_t"],
            ).on(*qubits)
        if name == "cz":
            return cirq.CZ.on(*qubits)
        if name == "measure":
            return cirq.measure(*qubits, key=instruction.args["key"])
        if name == "barrier":
            return None
        if name == "delay":
            # IQMNoiseModel relaxes every qubit for a wait's duration, as the schedule does here.
            return cirq.WaitGate(
                cirq.Duration(nanos=instruction.args["duration"] * 1e9), num_qubits=len(qubits)
            ).on(*qubits)
        if name == "move":
            model = move_model or MovePhaseModel(None)
            names = [q.name if isinstance(q, cirq.NamedQubit) else str(q) for q in qubits]
            return cirq.MatrixGate(model.matrix(names[0], names[1])).on(*qubits)
        raise SimulationError(f"The simulator cannot execute the instruction {name!r}")

    # Scheduling ---------------------------------------------------------------------------------

    def schedule(
        self,
        circuit: Circuit,
        qubit_mapping: Mapping[str, str] | None,
        calibration: CalibrationSet | None,
    ) -> _Schedule:
        """Places gates in ASAP moments (as ``cirq.Circuit`` would) with their noise figures."""
        schedule = _Schedule()
        level: dict[str, int] = {}  # next free moment per qubit
        measured: set[str] = set()
        for instruction in circuit.instructions:
            names = tuple(_physical(q, qubit_mapping) for q in instruction.qubits)
            if measured.intersection(names):
                schedule.terminal = False
            name = instruction.name
            if name == "measure":
                schedule.measurements.append((instruction.args["key"], list(names)))
                # A measurement waits for all its qubits, like any operation on several.
                start = max((level.get(q, 0) for q in names), default=0)
                for q in names:
                    schedule.measured_at.setdefault(q, start)
                measured.update(names)
                continue
            if name == "barrier":
                top = max((level.get(q, 0) for q in names), default=0)
                for q in names:
                    level[q] = top
                continue
            if name == "delay":
                # An idle: lines its qubits up like a barrier, then occupies them for a moment
                # that lasts at least the duration; every qubit relaxes for that moment (T1, T2).
                moment = max((level.get(q, 0) for q in names), default=0)
                schedule.reserve(moment)
                duration = float(instruction.args["duration"])
                schedule.durations[moment] = max(schedule.durations[moment], duration)
                for q in names:
                    level[q] = moment + 1
                continue
            if name == "prx":
                op = _Op(
                    "u", names, prx_matrix(instruction.args["angle_t"], instruction.args["phase_t"])
                )
            elif name == "cz":
                op = _Op("cz", names)
            elif name == "move":
                # Population exchange with the locus's phase (STAR_MOVE.md §2), not a plain SWAP:
                # like the hardware, results depend on the phase unless the sandwich cancels it.
                cal_id = None if calibration is None else calibration.calibration_set_id
                op = _Op("move", names, MovePhaseModel(cal_id).matrix(names[0], names[1]))
            else:
                raise SimulationError(f"The simulator cannot execute the instruction {name!r}")
            duration = 0.0
            if calibration is not None:
                figures = calibration.gate(name, names)
                if figures is not None and all(q in calibration.qubits for q in names):
                    duration = figures[1]
                    coherence = [
                        (calibration.qubits[q].t1, calibration.qubits[q].t2) for q in names
                    ]
                    op.depolarizing = depolarizing_remainder(figures[0], figures[1], coherence)
            moment = max((level.get(q, 0) for q in names), default=0)
            schedule.reserve(moment)
            schedule.moments[moment].append(op)
            schedule.durations[moment] = max(schedule.durations[moment], duration)
            for q in names:
                level[q] = moment + 1
        return schedule

    # Sampling -----------------------------------------------------------------------------------

    def _sample(
        self,
        schedule: _Schedule,
        measured: list[str],
        shots: int,
        circuit: Circuit,
        circuit_index: int,
        calibration: CalibrationSet | None,
    ) -> np.ndarray:
        column_of: dict[str, list[int]] = {}
        for i, q in enumerate(measured):
            column_of.setdefault(q, []).append(i)
        bits = np.zeros((shots, len(measured)), dtype=np.uint8)
        for block in _blocks(schedule, measured):
            if len(block) > self._max_block_qubits:
                raise SimulationError(
                    f'circuit {circuit_index} ("{circuit.name}") entangles {len(block)} qubits, '
                    f"more than the {self._max_block_qubits} this simulator can handle"
                )
            index = {q: i for i, q in enumerate(block)}
            moments = [[op for op in m if op.qubits[0] in index] for m in schedule.moments]
            width = len(block)
            if calibration is None:
                probabilities = _StateVector(width, self._rng).run(moments, index)
                samples = _draw(probabilities, shots, self._rng)
            elif width <= self._max_density_qubits:
                noise = _ThermalTable(block, schedule.durations, calibration, schedule.measured_at)
                probabilities = _density_matrix(width, moments, index, noise)
                samples = _draw(probabilities, shots, self._rng)
            else:
                noise = _ThermalTable(block, schedule.durations, calibration, schedule.measured_at)
                trajectories = min(shots, self._max_trajectories)
                shares = np.full(trajectories, shots // trajectories)
                shares[: shots % trajectories] += 1
                parts = []
                for share in shares:
                    probabilities = _StateVector(width, self._rng).run(moments, index, noise)
                    parts.append(_draw(probabilities, int(share), self._rng))
                # Shuffle so shots of one trajectory are not adjacent.
                samples = self._rng.permutation(np.concatenate(parts))
            for position, qubit in enumerate(block):
                for column in column_of.get(qubit, ()):
                    # Big-endian: the block's first qubit is the top bit of the index.
                    bits[:, column] = (samples >> (width - 1 - position)) & 1
        return bits

    def _readout_errors(
        self, bits: np.ndarray, measured: list[str], calibration: CalibrationSet
    ) -> np.ndarray:
        p01 = np.array([_readout(calibration, q)[0] for q in measured])
        p10 = np.array([_readout(calibration, q)[1] for q in measured])
        flip = self._rng.random(bits.shape) < np.where(bits == 1, p10, p01)
        return bits ^ flip.astype(np.uint8)

    def _herald(
        self,
        circuit: Circuit,
        mapping: Mapping[str, str] | None,
        arrays: MeasurementArrays,
        shots: int,
        calibration: CalibrationSet | None,
    ) -> MeasurementArrays:
        if calibration is None or not arrays:
            return arrays
        used = sorted({_physical(q, mapping) for q in circuit.qubits})
        p01 = np.array([_readout(calibration, q)[0] for q in used])
        # Qubits start in 0, so a herald reads 1 only through a readout error.
        keep = ~(self._rng.random((shots, len(used))) < p01).any(axis=1)
        return {key: value[keep] for key, value in arrays.items()}

    def _run_with_cirq(
        self,
        circuit: Circuit,
        shots: int,
        qubit_mapping: Mapping[str, str] | None,
        calibration: CalibrationSet | None,
    ) -> MeasurementArrays:
        """Fallback for mid-circuit measurements: Cirq samples shot by shot."""
        from cirq_iqm_ext.noise import IQMNoiseModel

        cirq_circuit, measurements = self.build_circuit(circuit, qubit_mapping)
        seed = int(self._rng.integers(2**32))  # Cirq seeds a RandomState: 32 bits
        if calibration is None:
            result = cirq.Simulator(seed=seed).run(cirq_circuit, repetitions=shots)
        else:
            result = cirq.DensityMatrixSimulator(noise=IQMNoiseModel(calibration), seed=seed).run(
                cirq_circuit, repetitions=shots
            )
        return {key: result.measurements[key].astype(np.uint8) for key, _ in measurements}


class NoiselessSimulator(CalibratedSimulator):
    """Exact simulation (no calibration); kept for callers of the original server simulator.

    Args:
        seed: Seed of the random generator.
        max_block_qubits: Largest number of mutually entangled qubits simulated together.
    """

    def __init__(
        self,
        seed: int | np.random.Generator | None = None,
        *,
        max_block_qubits: int = DEFAULT_MAX_BLOCK_QUBITS,
    ):
        super().__init__(None, seed, max_block_qubits=max_block_qubits)

    def run(self, request: RunRequest) -> list[MeasurementDict]:  # type: ignore[override]
        """Runs every circuit; measurements as JSON lists."""
        return [
            {key: value.tolist() for key, value in arrays.items()}
            for arrays in super().run(request)
        ]


def _physical(name: str, mapping: Mapping[str, str] | None) -> str:
    return mapping.get(name, name) if mapping is not None else name


def _readout(calibration: CalibrationSet, qubit: str) -> tuple[float, float]:
    figures = calibration.qubits.get(qubit)
    if figures is None or not figures.measurable:
        return 0.0, 0.0
    return figures.readout_error_0_to_1 or 0.0, figures.readout_error_1_to_0 or 0.0


def _blocks(schedule: _Schedule, measured: list[str]) -> list[list[str]]:
    """Measured qubits grouped by the gates that connect them (union-find), natural order."""
    parent: dict[str, str] = {}

    def find(q: str) -> str:
        while parent[q] != q:
            parent[q] = parent[parent[q]]
            q = parent[q]
        return q

    for q in measured:
        parent.setdefault(q, q)
    for moment in schedule.moments:
        for op in moment:
            for q in op.qubits:
                parent.setdefault(q, q)
            first, *rest = op.qubits
            for other in rest:
                a, b = find(first), find(other)
                if a != b:
                    parent[b] = a
    blocks: dict[str, list[str]] = {}
    for q in parent:
        blocks.setdefault(find(q), []).append(q)
    measured_set = set(measured)
    return [
        sorted(block, key=_natural)
        for block in blocks.values()
        if measured_set.intersection(block)  # an unmeasured block cannot change the results
    ]


def _natural(name: str) -> tuple[Any, ...]:
    head = name.rstrip("0123456789")
    tail = name[len(head) :]
    return (head, int(tail) if tail else -1)


def _draw(probabilities: np.ndarray, shots: int, rng: np.random.Generator) -> np.ndarray:
    cumulative = np.cumsum(probabilities, dtype=np.float64)
    draws = rng.random(shots) * cumulative[-1]  # scaling absorbs rounding in the norm
    indices = np.searchsorted(cumulative, draws, side="right")
    return np.minimum(indices, len(probabilities) - 1).astype(np.int64)


class _ThermalTable:
    """Relaxation parameters ``(γ, p_z)`` per moment and block qubit.

    A qubit relaxes in every moment (idle or not) until it is read out: what happens to it after
    its measurement, e.g. while another qubit waits out a long delay, cannot change its result.
    """

    def __init__(
        self,
        block: list[str],
        durations: list[float],
        calibration: CalibrationSet,
        measured_at: Mapping[str, int] | None = None,
    ):
        self.gamma = np.zeros((len(durations), len(block)))
        self.p_z = np.zeros((len(durations), len(block)))
        cache: dict[tuple[str, float], tuple[float, float]] = {}
        for k, q in enumerate(block):
            figures = calibration.qubits.get(q)
            if figures is None:
                continue
            end = (measured_at or {}).get(q, len(durations))
            for m, duration in enumerate(durations[:end]):
                key = (q, duration)
                if key not in cache:
                    cache[key] = thermal_parameters(figures.t1, figures.t2, duration)
                self.gamma[m, k], self.p_z[m, k] = cache[key]


#: Pending single-qubit gates on up to this many neighbouring qubits are applied as one product.
_GROUP = 4


def _product_diagonal(factors: np.ndarray) -> np.ndarray:
    """The diagonal of ``⊗_k diag(1, factors[k])`` (qubit 0 is the top bit), as ``float32``."""

    def kron(part: np.ndarray) -> np.ndarray:
        out = np.ones(1, dtype=np.float32)
        for f in part:
            out = np.kron(out, np.array([1.0, f], dtype=np.float32))
        return out

    half = len(factors) // 2
    # Two kron chains of half the qubits and one outer product: cheap next to a pass over the state.
    return np.multiply.outer(kron(factors[:half]), kron(factors[half:])).reshape(-1)


def _is_diagonal(u: np.ndarray | None) -> bool:
    return u is not None and abs(u[0, 1]) < 1e-12 and abs(u[1, 0]) < 1e-12


class _StateVector:
    """A ``complex64`` state vector over ``n`` qubits, big-endian, with fused 1-qubit gates."""

    def __init__(self, n: int, rng: np.random.Generator):
        self.n = n
        self.rng = rng
        self.psi = np.zeros(2**n, dtype=np.complex64)
        self.psi[0] = 1
        self.pending: list[np.ndarray | None] = [None] * n
        self._spare: np.ndarray | None = None  # output buffer of grouped gates, then swapped

    def run(
        self,
        moments: list[list[_Op]],
        index: Mapping[str, int],
        noise: _ThermalTable | None = None,
    ) -> np.ndarray:
        """Evolves through the moments (one trajectory when ``noise`` is given) → probabilities."""
        rng = self.rng
        threshold = rng.random() if noise is not None else 0.0
        for m, moment in enumerate(moments):
            for op in moment:
                ks = [index[q] for q in op.qubits]
                if op.kind == "u":
                    self._push(ks[0], op.matrix)  # type: ignore[arg-type]
                else:
                    self._flush(ks[0])
                    self._flush(ks[1])
                    if op.kind == "cz":
                        self._cz(ks[0], ks[1])
                    else:
                        self._two_qubit(ks[0], ks[1], op.matrix)  # type: ignore[arg-type]
                if noise is not None and op.depolarizing > 0 and rng.random() < op.depolarizing:
                    # A uniformly random non-identity Pauli string on the gate's qubits.
                    choice = int(rng.integers(1, 4 ** len(ks)))
                    for k in ks:
                        self._push(k, _PAULIS[choice % 4])
                        choice //= 4
            if noise is not None:
                threshold = self._relax(noise, m, threshold)
        for k in range(self.n):
            self._flush(k)
        probabilities = np.abs(self.psi) ** 2
        return probabilities / probabilities.sum()

    def _relax(self, noise: _ThermalTable, m: int, threshold: float) -> float:
        gamma, p_z = noise.gamma[m], noise.p_z[m]
        if not gamma.any() and not p_z.any():
            return threshold
        flips = self.rng.random(self.n) < p_z
        if not gamma.any():
            for flipped in np.flatnonzero(flips):
                self._push(int(flipped), _PAULIS[3])
            return threshold
        # No-jump evolution: K0 = diag(1, sqrt(1-γ)) shrinks the norm; a jump happens when the
        # norm falls below a uniform threshold (the quantum-jump unravelling), resolved per moment.
        # K0 and the Z flips of every qubit are one diagonal: a single pass over the state.
        for k in range(self.n):
            self._flush(k)
        factors = np.sqrt(1 - gamma) * np.where(flips, -1.0, 1.0)
        self.psi *= _product_diagonal(factors)
        norm2 = float(np.vdot(self.psi, self.psi).real)
        if norm2 >= threshold:
            return threshold
        weights = np.zeros(self.n)
        for damped in np.flatnonzero(gamma):
            ones = self.psi.reshape(2**damped, 2, -1)[:, 1, :]
            weights[damped] = gamma[damped] / (1 - gamma[damped]) * float(np.vdot(ones, ones).real)
        if weights.sum() > 0:
            jumped = int(self.rng.choice(self.n, p=weights / weights.sum()))
            view = self.psi.reshape(2**jumped, 2, -1)
            view[:, 0, :] = view[:, 1, :]
            view[:, 1, :] = 0
        self.psi /= np.sqrt(np.vdot(self.psi, self.psi).real)
        return float(self.rng.random())

    def _push(self, k: int, matrix: np.ndarray) -> None:
        current = self.pending[k]
        self.pending[k] = matrix if current is None else matrix @ current

    def _flush(self, k: int) -> None:
        if self.pending[k] is None:
            return
        # Pending gates on neighbouring qubits go out together as one small matrix product: one
        # pass over the state instead of one per qubit (flushing early is always allowed, the
        # pending gates of other qubits commute with whatever comes next on this one).
        low = k - k % _GROUP
        high = min(low + _GROUP, self.n)
        busy = [j for j in range(low, high) if self.pending[j] is not None]
        if len(busy) == 1 or all(_is_diagonal(self.pending[j]) for j in busy):
            for j in busy:
                self._flush_one(j)
            return
        first, last = busy[0], busy[-1]
        matrix: np.ndarray = np.array([[1.0]], dtype=np.complex128)
        for j in range(first, last + 1):
            u = self.pending[j]
            self.pending[j] = None
            matrix = np.kron(matrix, _I2 if u is None else u)
        width = last - first + 1
        gate = matrix.astype(np.complex64)
        if self._spare is None:
            self._spare = np.empty_like(self.psi)
        if last == self.n - 1:  # the lowest qubits: one (2^(n-w), 2^w) @ (2^w, 2^w) product
            low_view = self.psi.reshape(-1, 2**width)
            np.matmul(low_view, gate.T, out=self._spare.reshape(low_view.shape))
        else:
            view = self.psi.reshape(2**first, 2**width, -1)
            np.matmul(gate, view, out=self._spare.reshape(view.shape))
        self.psi, self._spare = self._spare, self.psi

    def _flush_one(self, k: int) -> None:
        u = self.pending[k]
        if u is None:
            return
        self.pending[k] = None
        v = self.psi.reshape(2**k, 2, -1)
        # Python complex scalars keep the arithmetic in complex64 (numpy scalars would upcast).
        u00, u01, u10, u11 = (complex(x) for x in u.ravel())
        if abs(u01) < 1e-12 and abs(u10) < 1e-12:
            if u00 != 1:
                v[:, 0, :] *= u00
            if u11 != 1:
                v[:, 1, :] *= u11
            return
        a = v[:, 0, :].copy()
        b = v[:, 1, :]
        v[:, 0, :] *= u00
        v[:, 0, :] += u01 * b
        b *= u11
        b += u10 * a

    def _cz(self, a: int, b: int) -> None:
        a, b = min(a, b), max(a, b)
        view = self.psi.reshape(2**a, 2, 2 ** (b - a - 1), 2, -1)
        view[:, 1, :, 1, :] *= -1

    def _two_qubit(self, a: int, b: int, matrix: np.ndarray) -> None:
        """Applies a 4x4 unitary on axes ``a`` (high bit) and ``b`` (low bit)."""
        tensor = np.moveaxis(self.psi.reshape((2,) * self.n), (a, b), (0, 1))
        shape = tensor.shape
        out = (matrix @ tensor.reshape(4, -1)).reshape(shape)
        self.psi = np.ascontiguousarray(np.moveaxis(out, (0, 1), (a, b))).reshape(-1)


def _superoperator(kraus: Sequence[np.ndarray]) -> np.ndarray:
    """Σ K ⊗ K* acting on (row, column) index pairs of a density matrix."""
    return sum(np.kron(k, k.conj()) for k in kraus)  # type: ignore[return-value]


def _depolarizing_superoperator(p: float, n: int) -> np.ndarray:
    d2 = 4**n
    out = (1 - p) * np.eye(d2, dtype=np.complex128)
    for choice in range(1, d2):
        pauli: np.ndarray = np.array([[1.0]], dtype=np.complex128)
        c = choice
        for _ in range(n):
            pauli = np.kron(pauli, _PAULIS[c % 4])
            c //= 4
        out += p / (d2 - 1) * np.kron(pauli, pauli.conj())
    return out


def _thermal_superoperator(gamma: float, p_z: float) -> np.ndarray:
    damp = _superoperator(
        [np.diag([1.0, math.sqrt(1 - gamma)]), np.array([[0, math.sqrt(gamma)], [0, 0]])]
    )
    dephase = _superoperator([math.sqrt(1 - p_z) * _I2, math.sqrt(p_z) * _PAULIS[3]])
    return dephase @ damp


def _density_matrix(
    n: int, moments: list[list[_Op]], index: Mapping[str, int], noise: _ThermalTable
) -> np.ndarray:
    """Exact noisy evolution of a density matrix; returns the measurement probabilities."""
    rho = np.zeros((2,) * (2 * n), dtype=np.complex128)
    rho[(0,) * (2 * n)] = 1

    def apply(superop: np.ndarray, ks: list[int]) -> np.ndarray:
        # Superoperator index order: rows of all its qubits, then columns (kron(U, U*) layout).
        axes = ks + [n + k for k in ks]
        moved = np.moveaxis(rho, axes, range(len(axes)))
        shape = moved.shape
        out = (superop @ moved.reshape(4 ** len(ks), -1)).reshape(shape)
        return np.moveaxis(out, range(len(axes)), axes)

    for m, moment in enumerate(moments):
        for op in moment:
            ks = [index[q] for q in op.qubits]
            if op.kind == "u":
                unitary = op.matrix
            elif op.kind == "cz":
                unitary = np.diag(_CZ_DIAG)
            else:
                unitary = op.matrix
            assert unitary is not None  # a "u" op always carries its matrix
            superop = np.kron(unitary, unitary.conj())
            if op.depolarizing > 0:
                superop = _depolarizing_superoperator(op.depolarizing, len(ks)) @ superop
            rho = apply(superop, ks)
        for k in range(n):
            gamma, p_z = noise.gamma[m, k], noise.p_z[m, k]
            if gamma > 0 or p_z > 0:
                rho = apply(_thermal_superoperator(gamma, p_z), [k])
    diagonal = np.einsum("ii->i", rho.reshape(2**n, 2**n)).real
    diagonal = np.clip(diagonal, 0, None)
    return diagonal / diagonal.sum()
