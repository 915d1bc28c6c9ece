"""Executes run requests: exact or with the noise of a calibration set, sampling all shots at once.

The server's worker hands a parsed, validated :class:`~cirq_iqm_ext.RunRequest` to a
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
* noiseless: one state vector (``complex64``), every shot sampled from its probabilities;
* noisy: every shot is an independent sample of the noisy process, as on hardware. Either an
  exact density matrix (blocks of up to ``max_density_qubits`` qubits, per-qubit superoperators)
  with every shot drawn from its diagonal, or one Monte-Carlo trajectory per shot (Pauli errors,
  dephasing flips and relaxation jumps drawn per trajectory), many trajectories evolved together
  by :mod:`.trajectories` (or, on qsim, one at a time); all are exact in distribution, so
  measured cost models (:func:`density_matrix_cost`, :func:`trajectory_cost`,
  :func:`~.engines.qsim_trajectory_cost`) pick the cheapest. A job needing more trajectories than
  ``max_trajectories`` fails instead of sharing them between shots;
* two engines evolve the blocks of terminal circuits (:mod:`.engines`): this module's numpy
  engine, and qsim (:mod:`.qsim_engine`, the optional extra ``cirq-iqm-ext[qsim]``) for
  noiseless blocks and for one-trajectory-per-shot noisy blocks where its measured cost is lower
  (large blocks); ``engine=`` / ``CIRQ_IQM_EXT_ENGINE`` choose ``auto``, ``numpy`` or ``qsim``.
  MOVE blocks and dynamic circuits always run on the numpy engine. Both compute the same noise;
* BLAS and qsim run on one thread while a simulation runs (:mod:`.blas`): the server's workers
  are the parallelism;
* readout errors and heralding are vectorised over all shots.

Dynamic circuits (a mid-circuit ``measure``, anything after a qubit's measurement, ``cc_prx``,
``reset``) and requests with ``active_reset_cycles`` run shot by shot on a tree of branches (see
:meth:`CalibratedSimulator._run_dynamic`): shots that share their outcome history share one
simulation up to the next measurement, where the group splits by the outcomes drawn for its shots.

The physics is :mod:`.noise`'s, so results agree with Cirq's simulators running
:class:`~cirq_iqm_ext.IQMNoiseModel`.
"""

from __future__ import annotations

import collections
import functools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cirq
import numpy as np

from cirq_iqm_ext.calibration import CalibrationSet
from cirq_iqm_ext.device.native_gates import NATIVE_OPERATIONS, instruction_operations
from cirq_iqm_ext.simulation import qsim_engine
from cirq_iqm_ext.simulation.blas import single_blas_thread
from cirq_iqm_ext.simulation.engines import (
    QSIM_MIN_PURE_QUBITS,
    qsim_module,
    qsim_trajectory_cost,
    resolve_engine,
)
from cirq_iqm_ext.simulation.move_model import MovePhaseModel
from cirq_iqm_ext.simulation.noise import (
    PAULIS,
    depolarizing_remainder,
    pauli_strings,
    superoperator,
    thermal_parameters,
)
from cirq_iqm_ext.simulation.trajectories import sample_trajectories
from cirq_iqm_ext.wire.models import Circuit, HeraldingMode, Instruction, RunRequest
from cirq_iqm_ext.wire.qubits import natural_key
from cirq_iqm_ext.wire.validation import DYNAMIC_OPERATIONS

#: One circuit's measurements: key -> [shot, qubit] array of 0/1.
MeasurementArrays = dict[str, np.ndarray]
#: One circuit's measurements as JSON lists: key -> [shot][qubit] of 0/1.
MeasurementDict = dict[str, list[list[int]]]

#: Default bound on the size of one entangled block of qubits (a 2**24 state vector is 128 MiB).
DEFAULT_MAX_BLOCK_QUBITS = 24
#: Noisy blocks up to this size may be evolved as one exact density matrix (when it is cheaper
#: than one trajectory per shot; see :func:`density_matrix_is_cheaper`).
DEFAULT_MAX_DENSITY_QUBITS = 10
#: Dynamic circuits use density matrices up to this size (their branches copy states).
_DYNAMIC_MAX_DENSITY_QUBITS = 8
#: Most Monte-Carlo trajectories one circuit may need (one per shot); a circuit needing more fails
#: with a :class:`SimulationError` instead of sharing trajectories between shots.
DEFAULT_MAX_TRAJECTORIES = 10_000_000

_CZ_DIAG = np.array([1, 1, 1, -1], dtype=np.complex128)


class SimulationError(RuntimeError):
    """A circuit cannot be simulated (e.g. an entangled block is too large); its job fails."""


def prx_matrix(angle_t: float, phase_t: float) -> np.ndarray:
    """RZ(φ)·RX(θ)·RZ(-φ) with θ = 2π·angle_t, φ = 2π·phase_t (PROTOCOL.md §3.2)."""
    theta, phi = 2 * math.pi * angle_t, 2 * math.pi * phase_t
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    return np.array(
        [[c, -1j * s * np.exp(-1j * phi)], [-1j * s * np.exp(1j * phi), c]],
        dtype=np.complex128,
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
        max_density_qubits: Noisy blocks up to this size may use an exact density matrix (when
            the cost model finds it cheaper than one trajectory per shot; dynamic circuits: up
            to 8 qubits).
        max_trajectories: Most Monte-Carlo trajectories (one per shot) a noisy circuit may
            need; a circuit needing more fails with a :class:`SimulationError`.
        calibrations: Further sets by id, for requests naming a ``calibration_set_id``.
        engine: ``"auto"`` (qsim where it is faster and can run the block, else the numpy
            engine), ``"numpy"`` or ``"qsim"`` (qsim wherever it can run the block); default:
            the environment variable ``CIRQ_IQM_EXT_ENGINE``, else ``"auto"``. See
            :mod:`.engines`. The choice changes speed only, never the distribution of results.

    Attributes:
        engine: The engine setting in use (``auto``, ``numpy`` or ``qsim``).
        methods: How many blocks each method has simulated so far (``numpy-state``,
            ``qsim-state``, ``numpy-density``, ``numpy-trajectories``, ``qsim-trajectories``,
            ``numpy-dynamic`` for whole dynamic circuits).

    Raises:
        EngineError: An unknown engine, or ``"qsim"`` without qsimcirq installed.
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
        engine: str | None = None,
    ):
        self.engine = resolve_engine(engine)
        self.methods: collections.Counter[str] = collections.Counter()
        self.calibration = calibration
        self._calibrations = dict(calibrations or {})
        self._rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self._max_block_qubits = max_block_qubits
        self._max_density_qubits = max_density_qubits
        self._max_trajectories = max(1, max_trajectories)

    def _qsim_can_run(self, moments: list[list[_Op]]) -> bool:
        """Whether qsim may take the block: allowed, installed, and only ``prx`` and ``cz``
        (MOVE blocks stay on the numpy engine, whose MOVE model is the tested one)."""
        return (
            self.engine != "numpy" and qsim_module() is not None and qsim_engine.supports(moments)
        )

    def _pure_method(self, width: int, moments: list[list[_Op]]) -> str:
        """``qsim-state`` or ``numpy-state`` for a noiseless block."""
        if self._qsim_can_run(moments) and (self.engine == "qsim" or width >= QSIM_MIN_PURE_QUBITS):
            return "qsim-state"
        return "numpy-state"

    def _noisy_method(self, width: int, shots: int, moments: list[list[_Op]]) -> str:
        """The cheapest exact method for a noisy block by the measured cost models: an exact
        density matrix (up to ``max_density_qubits``), or one trajectory per shot on the numpy
        engine or on qsim (all exact in distribution). ``engine="qsim"`` forces qsim
        trajectories where qsim can run the block."""
        gates, n_moments = sum(len(m) for m in moments), len(moments)
        qsim = self._qsim_can_run(moments)
        if qsim and self.engine == "qsim":
            return "qsim-trajectories"
        costs = {"numpy-trajectories": trajectory_cost(width, shots, gates, n_moments)}
        if width <= self._max_density_qubits:
            costs["numpy-density"] = density_matrix_cost(width, gates, n_moments)
        if qsim:
            costs["qsim-trajectories"] = qsim_trajectory_cost(width, shots, gates, n_moments)
        return min(costs, key=costs.__getitem__)

    def _check_trajectories(self, shots: int, name: str, circuit_index: int) -> None:
        """Refuses a job whose shots would need more trajectories than allowed: sharing one
        trajectory between shots would correlate them, which no quantum computer does."""
        if shots > self._max_trajectories:
            raise SimulationError(
                f'circuit {circuit_index} ("{name}") needs {shots} independent noisy '
                f"trajectories (one per shot), more than the {self._max_trajectories} this "
                "simulator allows; lower the shots or raise max_trajectories"
            )

    # Public API ---------------------------------------------------------------------------------

    def run(
        self, request: RunRequest, progress: Callable[[int], None] | None = None
    ) -> list[MeasurementArrays]:
        """Runs every circuit of ``request`` with ``request.shots`` shots.

        With ``heralding_mode == "zeros"`` shots whose pre-circuit measurement of the used qubits
        was not all 0 are dropped (only readout errors make that happen here).

        Args:
            request: The circuits, shots and options.
            progress: Called with the number of circuits done after each one (a server reports
                it as the job's progress).

        Raises:
            SimulationError: A circuit is too large to simulate.
        """
        calibration = self.calibration
        if calibration is not None and request.calibration_set_id is not None:
            calibration = self._calibrations.get(request.calibration_set_id, calibration)
        mapping = request.qubit_mapping_dict
        # Read defensively: older request models have no such field.
        cycles = getattr(request, "active_reset_cycles", None)
        out = []
        for index, circuit in enumerate(request.circuits):
            arrays = self.run_circuit_arrays(
                circuit,
                request.shots,
                mapping,
                circuit_index=index,
                calibration=calibration,
                active_reset_cycles=cycles,
            )
            if request.heralding_mode == HeraldingMode.ZEROS:
                arrays = self._herald(circuit, mapping, arrays, request.shots, calibration)
            out.append(arrays)
            if progress is not None:
                progress(index + 1)
        return out

    def run_circuit_arrays(
        self,
        circuit: Circuit,
        shots: int,
        qubit_mapping: Mapping[str, str] | None = None,
        *,
        circuit_index: int = 0,
        calibration: CalibrationSet | None = None,
        active_reset_cycles: int | None = None,
    ) -> MeasurementArrays:
        """Runs one circuit and returns key -> ``[shot, qubit]`` ``uint8`` arrays.

        Args:
            circuit: The circuit.
            shots: Number of shots.
            qubit_mapping: Logical -> physical names.
            circuit_index: Position in the batch, for messages.
            calibration: The noise figures (default: the simulator's own).
            active_reset_cycles: As the run request's field: ``None`` starts every shot in |0>;
                ``n >= 1`` applies ``n`` active resets to the previous shot's final state;
                ``< 1`` starts each shot where the previous one left off.

        Raises:
            SimulationError: An entangled block of qubits is too large to simulate.
        """
        with single_blas_thread():  # BLAS threads would fight the server's workers for cores
            return self._run_circuit(
                circuit, shots, qubit_mapping, circuit_index, calibration, active_reset_cycles
            )

    def _run_circuit(
        self,
        circuit: Circuit,
        shots: int,
        qubit_mapping: Mapping[str, str] | None,
        circuit_index: int,
        calibration: CalibrationSet | None,
        active_reset_cycles: int | None,
    ) -> MeasurementArrays:
        calibration = calibration if calibration is not None else self.calibration
        # Without noise an active reset is perfect, so n >= 1 cycles equal a fresh |0>.
        carries = active_reset_cycles is not None and (
            active_reset_cycles < 1 or calibration is not None
        )
        if carries or _is_dynamic(circuit):
            self.methods["numpy-dynamic"] += 1  # qsim cannot branch on mid-circuit outcomes
            return self._run_dynamic(
                circuit,
                shots,
                qubit_mapping,
                circuit_index,
                calibration,
                active_reset_cycles,
            )
        schedule = self.schedule(circuit, qubit_mapping, calibration)
        if not schedule.measurements:
            return {}
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

    def final_state(
        self, circuit: Circuit, qubit_mapping: Mapping[str, str] | None = None
    ) -> tuple[list[str], np.ndarray]:
        """The noiseless final state of a terminal circuit, by this simulator's engine.

        All the circuit's qubits form one block (natural order, the first one the top bit of
        the index); measurements are ignored.

        Returns:
            The physical qubits and the ``complex64`` amplitudes.

        Raises:
            SimulationError: A dynamic circuit, or more qubits than ``max_block_qubits``.
        """
        schedule = self.schedule(circuit, qubit_mapping, None)
        if not schedule.terminal:
            raise SimulationError(
                f'circuit "{circuit.name}" is dynamic (it acts on a qubit after measuring it): '
                "it has no single final state"
            )
        used = {q for moment in schedule.moments for op in moment for q in op.qubits}
        used.update(q for _, qubits in schedule.measurements for q in qubits)
        qubits = sorted(used, key=natural_key)
        if len(qubits) > self._max_block_qubits:
            raise SimulationError(
                f'circuit "{circuit.name}" has {len(qubits)} qubits, more than the '
                f"{self._max_block_qubits} this simulator can handle"
            )
        index = {q: i for i, q in enumerate(qubits)}
        method = self._pure_method(len(qubits), schedule.moments)
        self.methods[method] += 1
        if method == "qsim-state":
            return qubits, qsim_engine.final_state(len(qubits), schedule.moments, index)
        state = _StateVector(len(qubits), self._rng)
        state.run(schedule.moments, index)  # leaves every pending gate applied
        return qubits, state.psi

    # The Cirq form of a protocol circuit ---------------------------------------------------------

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
        if name == "barrier":
            return None
        if name == "move":
            model = move_model or MovePhaseModel(None)
            names = [q.name if isinstance(q, cirq.NamedQubit) else str(q) for q in qubits]
            return cirq.MatrixGate(model.matrix(names[0], names[1])).on(*qubits)
        if name in NATIVE_OPERATIONS and name not in DYNAMIC_OPERATIONS:
            # prx, cz, measure and delay, as the native-gate table reads them; IQMNoiseModel
            # relaxes every qubit for a wait's duration, as the schedule does here.
            (op,) = instruction_operations(name, instruction.args, qubits)
            return op
        raise SimulationError(f"The simulator cannot execute the instruction {name!r}")

    # Scheduling ---------------------------------------------------------------------------------

    def schedule(
        self,
        circuit: Circuit,
        qubit_mapping: Mapping[str, str] | None,
        calibration: CalibrationSet | None,
    ) -> _Schedule:
        """Places gates in ASAP moments (as ``cirq.Circuit`` would) with their noise figures.

        Only circuits it marks ``terminal`` run from this schedule; for the others (dynamic
        circuits) it skips ``cc_prx`` and ``reset``.
        """
        schedule = _Schedule()
        level: dict[str, int] = {}  # next free moment per qubit
        measured: set[str] = set()
        for instruction in circuit.instructions:
            names = tuple(_physical(q, qubit_mapping) for q in instruction.qubits)
            if measured.intersection(names):
                schedule.terminal = False
            name = instruction.name
            if name in DYNAMIC_OPERATIONS:
                schedule.terminal = False  # runs on the dynamic engine, which plans it itself
                continue
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
            op, duration = _gate(instruction, names, calibration)
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
            noise = None
            if calibration is not None:
                noise = _ThermalTable(block, schedule.durations, calibration, schedule.measured_at)
            samples = self._sample_block(
                width, moments, index, noise, shots, circuit, circuit_index
            )
            for position, qubit in enumerate(block):
                for column in column_of.get(qubit, ()):
                    # Big-endian: the block's first qubit is the top bit of the index.
                    bits[:, column] = (samples >> (width - 1 - position)) & 1
        return bits

    def _sample_block(
        self,
        width: int,
        moments: list[list[_Op]],
        index: dict[str, int],
        noise: _ThermalTable | None,
        shots: int,
        circuit: Circuit,
        circuit_index: int,
    ) -> np.ndarray:
        """Every shot's outcome (big-endian index) of one block, by the method chosen for it."""
        rng = self._rng
        if noise is None:
            method = self._pure_method(width, moments)
            if method == "qsim-state":
                probabilities = np.abs(qsim_engine.final_state(width, moments, index)) ** 2
            else:
                probabilities = _StateVector(width, rng).run(moments, index)
            self.methods[method] += 1
            return _draw(probabilities, shots, rng)
        method = self._noisy_method(width, shots, moments)
        self.methods[method] += 1
        if method == "numpy-density":
            return _draw(_density_matrix(width, moments, index, noise), shots, rng)
        self._check_trajectories(shots, circuit.name, circuit_index)
        # One trajectory per shot: shots are independent, as on hardware.
        if method == "qsim-trajectories":
            return qsim_engine.sample_trajectories(width, moments, index, noise, shots, rng)
        return sample_trajectories(width, moments, index, noise, shots, rng)

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

    # Dynamic circuits ---------------------------------------------------------------------------

    def _run_dynamic(
        self,
        circuit: Circuit,
        shots: int,
        qubit_mapping: Mapping[str, str] | None,
        circuit_index: int,
        calibration: CalibrationSet | None,
        active_reset_cycles: int | None,
    ) -> MeasurementArrays:
        """Runs a circuit shot by shot on a tree of branches.

        Method (exact in distribution):

        * A *branch* is a group of shots with the same outcome history. It holds one state per
          block of entangled qubits: a state vector without noise; with noise, an exact density
          matrix for blocks of up to ``max_density_qubits`` qubits, else a Monte-Carlo trajectory.
          Blocks are classically correlated through feed-forward, so a branch carries all of them.
        * At a measurement whose result is needed before the end (its qubits are used again, or a
          ``cc_prx`` reads it), the outcome of each shot of the group is drawn independently from
          the Born probabilities of the branch's state, readout errors are drawn per shot when a
          ``cc_prx`` reads the bit, and the group splits by (true outcome, read bits); each child
          continues from the projected state. Measurements nothing depends on are drawn at the
          leaf from the final state, as in the fast path. With density matrices every shot is an
          independent sample of the sequential measurement process. With trajectories every shot
          is its own root (its own noise realisation); at each split every child renormalises
          and draws a fresh jump threshold, which is exact for the quantum-jump unravelling (the
          remaining threshold is uniform given no jump so far).
        * Children are processed smallest first, so a state waiting for a sibling is kept on at
          most log2(shots) levels; the last child takes its parent's state over without a copy.
          The number of leaves is at most the number of shots.

        ``reset`` is an active reset: a measurement, then a π pulse (``prx`` figures) iff it read
        1. Readout errors make it fail: a 1 read as 0 stays 1, a 0 read as 1 is flipped to 1; the
        qubits relax during the measurement and the pulse. ``active_reset_cycles`` (see
        :meth:`run_circuit_arrays`) makes shots start in the previous shot's final state: the
        basis state drawn from each leaf's final state over all qubits (coherences of unmeasured
        qubits are dropped; no relaxation between shots), to which ``n >= 1`` resets are applied
        per qubit (a classical chain on basis states, with the same noise). The first shot starts
        in |0>.
        """
        plan = _plan(circuit, qubit_mapping, calibration, self._max_block_qubits, circuit_index)
        if not plan.reported:
            return {}
        carry = active_reset_cycles is not None and (
            active_reset_cycles < 1 or calibration is not None
        )
        if not carry:
            results, _ = self._tree(
                plan, shots, np.zeros(len(plan.qubits), dtype=np.uint8), calibration
            )
        else:
            results = self._carried(plan, shots, max(0, active_reset_cycles or 0), calibration)
        out: MeasurementArrays = {}
        for measure in plan.reported:
            bits = results[measure.id]
            if calibration is not None and not measure.fed_back:
                # Fed-back results were read (with their errors) during the run already.
                bits = self._readout_errors(bits, list(measure.qubits), calibration)
            out[measure.key] = bits  # type: ignore[index]  # reported measures have keys
        return out

    def _carried(
        self, plan: _Plan, shots: int, cycles: int, calibration: CalibrationSet | None
    ) -> dict[int, np.ndarray]:
        """Shots that start where the previous one ended, then ``cycles`` active resets.

        Each shot's run is drawn from a pool of independent runs from the same initial basis
        state, filled by :meth:`_tree` on demand; which run is used does not depend on its
        values, so the chain of shots is exact.
        """
        results = {m.id: np.zeros((shots, len(m.qubits)), dtype=np.uint8) for m in plan.reported}
        reset = _ResetChain(plan.qubits, calibration, self._rng) if cycles else None
        pools: dict[bytes, list[Any]] = {}  # key -> [results, finals, next row]
        visits: dict[bytes, int] = {}
        state = np.zeros(len(plan.qubits), dtype=np.uint8)
        for shot in range(shots):
            if reset is not None:
                state = reset.apply(state, cycles)
            key = state.tobytes()
            pool = pools.get(key)
            if pool is None or pool[2] == len(pool[1]):
                remaining = shots - shot
                # Size the pool by how often this start has come up so far.
                size = min(
                    remaining,
                    max(1, math.ceil(remaining * (visits.get(key, 0) + 1) / (shot + 1))),
                )
                pool = pools[key] = [*self._tree(plan, size, state, calibration), 0]
            row = pool[2]
            pool[2] += 1
            visits[key] = visits.get(key, 0) + 1
            for measure_id, bits in pool[0].items():
                results[measure_id][shot] = bits[row]
            state = pool[1][row]
        return results

    def _tree(
        self,
        plan: _Plan,
        shots: int,
        initial: np.ndarray,
        calibration: CalibrationSet | None,
    ) -> tuple[dict[int, np.ndarray], np.ndarray]:
        """Runs ``shots`` shots from the basis state ``initial`` (bits over ``plan.qubits``).

        Returns:
            Measure id -> ``[shot, qubit]`` bits (true outcomes, or read bits for fed-back
            measurements), and each shot's final basis state over ``plan.qubits``.
        """
        rng = self._rng
        results = {m.id: np.zeros((shots, len(m.qubits)), dtype=np.uint8) for m in plan.reported}
        finals = np.zeros((shots, len(plan.qubits)), dtype=np.uint8)
        # Branches copy their states, so dynamic circuits keep density matrices small.
        density_cap = min(self._max_density_qubits, _DYNAMIC_MAX_DENSITY_QUBITS)
        kinds = [_block_kind(len(b), calibration, density_cap) for b in plan.blocks]
        roots = 1
        if "trajectory" in kinds:
            # One root per shot: every shot follows its own noise realisation.
            self._check_trajectories(shots, plan.circuit_name, plan.circuit_index)
            roots = shots
        order = rng.permutation(shots) if roots > 1 else np.arange(shots)
        for rows in np.array_split(order, roots):
            handles = []
            for b, block in enumerate(plan.blocks):
                basis = 0
                for position, q in enumerate(block):
                    basis |= int(initial[plan.column[q]]) << (len(block) - 1 - position)
                state = _new_state(kinds[b], len(block), basis, rng)
                handles.append(_Handle(_Shared(state), {}))
            stack = [_Branch(0, 0, handles, {}, rows)]
            while stack:
                branch = stack.pop()
                while branch.moment < plan.n_moments:
                    active = plan.active.get(branch.moment, ())
                    if branch.done < len(active):
                        stack.extend(
                            self._split(plan, branch, active[branch.done], results, calibration)
                        )
                        break
                    self._advance(plan, branch)
                else:
                    self._leaf(plan, branch, results, finals)
        return results, finals

    def _advance(self, plan: _Plan, branch: _Branch) -> None:
        """Applies the branch's moment (its ``cc_prx`` resolved by its read bits) and relaxation."""
        m = branch.moment
        for b, ops in enumerate(plan.block_ops):
            if m >= plan.block_end[b]:
                continue  # nothing acts on the block any more, and it no longer relaxes
            state = branch.own(b)
            state.step(ops[m], plan.index[b], plan.noise[b], m, branch.register, plan.superops)
        branch.moment += 1
        branch.done = 0

    def _split(
        self,
        plan: _Plan,
        branch: _Branch,
        measure: _Measure,
        results: dict[int, np.ndarray],
        calibration: CalibrationSet | None,
    ) -> list[_Branch]:
        """Draws the measurement for every shot of the branch; one child per outcome history."""
        rng = self._rng
        rows = branch.rows
        bits = np.zeros((len(rows), len(measure.qubits)), dtype=np.uint8)
        for b, positions, columns in plan.parts[measure.id]:
            probabilities = branch.handles[b].probabilities(len(plan.blocks[b]))
            marginal = _marginal(probabilities, len(plan.blocks[b]), positions)
            drawn = _draw(marginal, len(rows), rng)
            for j, column in enumerate(columns):
                bits[:, column] = (drawn >> (len(positions) - 1 - j)) & 1
        read = bits
        if measure.fed_back and calibration is not None:
            read = self._readout_errors(bits, list(measure.qubits), calibration)
        if measure.id in results:
            results[measure.id][rows] = read if measure.fed_back else bits
        keys = np.concatenate([bits, read], axis=1) if measure.fed_back else bits
        unique, inverse = np.unique(keys, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        groups = [rows[inverse == g] for g in range(len(unique))]
        # Largest first on the stack, so the smallest child runs first (see _run_dynamic).
        order = sorted(range(len(unique)), key=lambda g: -len(groups[g]))
        for handle in branch.handles:
            handle.shared.users += len(unique) - 1
        children = []
        for g in order:
            true_bits = unique[g, : len(measure.qubits)]
            handles = list(branch.handles)
            for b, positions, columns in plan.parts[measure.id]:
                old = handles[b]
                projection = dict(old.projection)
                projection.update(
                    {p: int(true_bits[c]) for p, c in zip(positions, columns, strict=True)}
                )
                handles[b] = _Handle(old.shared, projection)
            register = branch.register
            if measure.fed_back:
                register = {
                    **register,
                    measure.id: tuple(int(x) for x in unique[g, len(measure.qubits) :]),
                }
            children.append(_Branch(branch.moment, branch.done + 1, handles, register, groups[g]))
        return children

    def _leaf(
        self,
        plan: _Plan,
        branch: _Branch,
        results: dict[int, np.ndarray],
        finals: np.ndarray,
    ) -> None:
        """Draws the final state of every block for the branch's shots: deferred measurements'
        outcomes and each shot's final basis state."""
        rows = branch.rows
        for b, block in enumerate(plan.blocks):
            width = len(block)
            handle = branch.handles[b]
            drawn = _draw(handle.probabilities(width), len(rows), self._rng)
            handle.release()
            for position, q in enumerate(block):
                finals[rows, plan.column[q]] = (drawn >> (width - 1 - position)) & 1
        for measure in plan.deferred:
            for c, q in enumerate(measure.qubits):
                results[measure.id][rows, c] = finals[rows, plan.column[q]]


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
        sorted(block, key=natural_key)
        for block in blocks.values()
        if measured_set.intersection(block)  # an unmeasured block cannot change the results
    ]


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
        threshold = self.rng.random() if noise is not None else 0.0
        for m, moment in enumerate(moments):
            for op in moment:
                self._apply(op, [index[q] for q in op.qubits], noise is not None)
            if noise is not None:
                threshold = self._relax(noise, m, threshold)
        for k in range(self.n):
            self._flush(k)
        probabilities = np.abs(self.psi) ** 2
        return probabilities / probabilities.sum()

    def _apply(self, op: _Op, ks: list[int], noisy: bool) -> None:
        """One gate (single-qubit ones queued for grouping), then its depolarising remainder."""
        if op.kind in ("u", "cc"):
            self._push(ks[0], op.matrix)  # type: ignore[arg-type]
        else:
            self._flush(ks[0])
            self._flush(ks[1])
            if op.kind == "cz":
                self._cz(ks[0], ks[1])
            else:
                self._two_qubit(ks[0], ks[1], op.matrix)  # type: ignore[arg-type]
        rng = self.rng
        if noisy and op.depolarizing > 0 and rng.random() < op.depolarizing:
            # A uniformly random non-identity Pauli string on the gate's qubits.
            choice = int(rng.integers(1, 4 ** len(ks)))
            for k in ks:
                self._push(k, PAULIS[choice % 4])
                choice //= 4

    def _relax(self, noise: _ThermalTable, m: int, threshold: float) -> float:
        gamma, p_z = noise.gamma[m], noise.p_z[m]
        if not gamma.any() and not p_z.any():
            return threshold
        flips = self.rng.random(self.n) < p_z
        if not gamma.any():
            for flipped in np.flatnonzero(flips):
                self._push(int(flipped), PAULIS[3])
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
            matrix = np.kron(matrix, PAULIS[0] if u is None else u)
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


def _depolarizing_superoperator(p: float, n: int) -> np.ndarray:
    d2 = 4**n
    out = (1 - p) * np.eye(d2, dtype=np.complex128)
    for pauli in pauli_strings(n)[1:]:
        out += p / (d2 - 1) * np.kron(pauli, pauli.conj())
    return out


def _thermal_superoperator(gamma: float, p_z: float) -> np.ndarray:
    damp = superoperator(
        [
            np.diag([1.0, math.sqrt(1 - gamma)]),
            np.array([[0, math.sqrt(gamma)], [0, 0]]),
        ]
    )
    dephase = superoperator([math.sqrt(1 - p_z) * PAULIS[0], math.sqrt(p_z) * PAULIS[3]])
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


# Dynamic circuits: plan, branches and per-branch block states ------------------------------------

#: Instructions only the dynamic engine executes.
#: The π pulse of an active reset: prx(π, 0).
_RESET_PULSE = prx_matrix(0.5, 0.0)


def _is_dynamic(circuit: Circuit) -> bool:
    """Whether the circuit needs the shot-by-shot engine: ``cc_prx``, ``reset``, or anything
    (another measurement included) on a qubit after its measurement."""
    measured: set[str] = set()
    for instruction in circuit.instructions:
        if instruction.name in DYNAMIC_OPERATIONS or measured.intersection(instruction.qubits):
            return True
        if instruction.name == "measure":
            measured.update(instruction.qubits)
    return False


@dataclass
class _ConditionalOp(_Op):
    """A ``cc_prx`` (or a reset's pulse): ``matrix`` iff bit ``column`` of measurement
    ``measure`` read 1, else an identity of the same duration."""

    measure: int = -1
    column: int = 0


def _taking_effect(ops: list[_Op], register: Mapping[int, tuple[int, ...]]) -> Iterator[_Op]:
    """A moment's operations that act in this branch: a conditional one only if its bit read 1
    (otherwise it is an identity; the qubit still relaxes for the moment)."""
    for op in ops:
        if op.kind == "cc":
            assert isinstance(op, _ConditionalOp)
            if not register[op.measure][op.column]:
                continue
        yield op


@dataclass
class _Measure:
    """One measurement: a ``measure`` (``key`` set) or a ``reset``'s own (``key`` None).

    ``fed_back``: a ``cc_prx`` reads its bits; ``active``: needed before the end (fed back, or
    its qubits are used again), so groups split at it; otherwise it is drawn at the leaf.
    """

    id: int
    key: str | None
    qubits: tuple[str, ...]
    fed_back: bool
    active: bool


@dataclass
class _Plan:
    """A dynamic circuit ready for the branch engine (one per circuit and calibration)."""

    blocks: list[list[str]]
    index: list[dict[str, int]]
    block_ops: list[list[list[_Op]]]
    block_end: list[int]
    noise: list[_ThermalTable | None]
    n_moments: int
    active: dict[int, list[_Measure]]
    deferred: list[_Measure]
    reported: list[_Measure]
    #: Measure id -> (block, positions in the block, columns in the measure's locus).
    parts: dict[int, list[tuple[int, list[int], list[int]]]]
    qubits: list[str] = field(default_factory=list)
    column: dict[str, int] = field(default_factory=dict)
    #: Cached superoperators of density-matrix blocks, by ``id(op)``.
    superops: dict[int, np.ndarray] = field(default_factory=dict)
    #: The circuit's name and position in its batch, for messages.
    circuit_name: str = ""
    circuit_index: int = 0


def _gate(
    instruction: Instruction, names: tuple[str, ...], calibration: CalibrationSet | None
) -> tuple[_Op, float]:
    """A ``prx``, ``cz`` or ``move`` as a scheduled op with its noise, and its duration."""
    name = instruction.name
    if name == "prx":
        op = _Op(
            "u",
            names,
            prx_matrix(instruction.args["angle_t"], instruction.args["phase_t"]),
        )
    elif name == "cz":
        op = _Op("cz", names)
    elif name == "move":
        # Population exchange with the locus's phase (STAR_MOVE.md §2), not a plain SWAP: like
        # the hardware, results depend on the phase unless the sandwich cancels it.
        cal_id = None if calibration is None else calibration.calibration_set_id
        op = _Op("move", names, MovePhaseModel(cal_id).matrix(names[0], names[1]))
    else:
        raise SimulationError(f"The simulator cannot execute the instruction {name!r}")
    return op, _figures(op, name, names, calibration)


def _figures(
    op: _Op, name: str, names: tuple[str, ...], calibration: CalibrationSet | None
) -> float:
    """Sets ``op.depolarizing`` from the calibration and returns the gate's duration."""
    if calibration is None:
        return 0.0
    figures = calibration.gate(name, names)
    if figures is None or not all(q in calibration.qubits for q in names):
        return 0.0
    coherence = [(calibration.qubits[q].t1, calibration.qubits[q].t2) for q in names]
    op.depolarizing = depolarizing_remainder(figures[0], figures[1], coherence)
    return figures[1]


def _plan(
    circuit: Circuit,
    mapping: Mapping[str, str] | None,
    calibration: CalibrationSet | None,
    max_block_qubits: int,
    circuit_index: int,
) -> _Plan:
    """Schedules a dynamic circuit (ASAP moments, like :meth:`CalibratedSimulator.schedule`).

    An active measurement occupies its qubits for a moment of the measurement's duration; a
    ``cc_prx`` comes after the measurement it reads; a ``reset`` is an active measurement and a
    conditional π pulse on each of its qubits. A deferred measurement takes no moment (as a
    terminal one in the fast path) and its qubits stop relaxing there.
    """
    scheduler = _DynamicScheduler(circuit, mapping, calibration, circuit_index)
    for position, instruction in enumerate(circuit.instructions):
        scheduler.add(position, instruction)
    schedule, measures = scheduler.schedule, scheduler.measures
    measured = [q for m in measures for q in m.qubits]
    blocks = _blocks(schedule, measured)
    for block in blocks:
        if len(block) > max_block_qubits:
            raise SimulationError(
                f'circuit {circuit_index} ("{circuit.name}") entangles {len(block)} qubits, '
                f"more than the {max_block_qubits} this simulator can handle"
            )
    index = [{q: i for i, q in enumerate(block)} for block in blocks]
    block_ops = [
        [[op for op in m if op.qubits[0] in idx] for m in schedule.moments] for idx in index
    ]
    noise, block_end = _block_noise(schedule, blocks, block_ops, calibration)
    qubits = [q for block in blocks for q in block]
    return _Plan(
        blocks=blocks,
        index=index,
        block_ops=block_ops,
        block_end=block_end,
        noise=noise,
        n_moments=len(schedule.moments),
        active=scheduler.active,
        deferred=[m for m in measures if not m.active],
        reported=[m for m in measures if m.key is not None],
        parts=_measure_parts(measures, blocks, index),
        qubits=qubits,
        column={q: i for i, q in enumerate(qubits)},
        circuit_name=circuit.name,
        circuit_index=circuit_index,
    )


class _DynamicScheduler:
    """Places a dynamic circuit's instructions in ASAP moments (see :func:`_plan`)."""

    def __init__(
        self,
        circuit: Circuit,
        mapping: Mapping[str, str] | None,
        calibration: CalibrationSet | None,
        circuit_index: int,
    ):
        self.circuit, self.mapping, self.calibration = circuit, mapping, calibration
        self.circuit_index = circuit_index
        instructions = circuit.instructions
        self.loci = [tuple(_physical(q, mapping) for q in i.qubits) for i in instructions]
        self.fed_keys = {i.args["feedback_key"] for i in instructions if i.name == "cc_prx"}
        # Whether a later instruction (other than a barrier or a delay) uses the same qubits.
        used_later: set[str] = set()
        self.reused = [False] * len(instructions)
        for position in reversed(range(len(instructions))):
            self.reused[position] = bool(used_later.intersection(self.loci[position]))
            if instructions[position].name not in ("barrier", "delay"):
                used_later.update(self.loci[position])
        self.schedule = _Schedule()
        self.level: dict[str, int] = {}  # next free moment per qubit
        self.ready: dict[int, int] = {}  # measure id -> first moment that may use its bits
        self.by_feedback: dict[str, _Measure] = {}
        self.measures: list[_Measure] = []
        self.active: dict[int, list[_Measure]] = {}

    def add(self, position: int, instruction: Instruction) -> None:
        """Places one instruction."""
        names, name = self.loci[position], instruction.name
        if name in ("measure", "reset"):
            self._measure(position, instruction, names)
        elif name == "cc_prx":
            self._cc_prx(position, instruction, names)
        elif name == "barrier":
            top = max(self.level.get(q, 0) for q in names)
            for q in names:
                self.level[q] = top
        elif name == "delay":
            schedule = self.schedule
            moment = max(self.level.get(q, 0) for q in names)
            schedule.reserve(moment)
            duration = float(instruction.args["duration"])
            schedule.durations[moment] = max(schedule.durations[moment], duration)
            for q in names:
                self.level[q] = moment + 1
        else:
            self._place(*_gate(instruction, names, self.calibration))

    def _place(self, op: _Op, duration: float, earliest: int = 0) -> None:
        schedule = self.schedule
        moment = max(earliest, *(self.level.get(q, 0) for q in op.qubits))
        schedule.reserve(moment)
        schedule.moments[moment].append(op)
        schedule.durations[moment] = max(schedule.durations[moment], duration)
        for q in op.qubits:
            self.level[q] = moment + 1

    def _conditional(self, q: str, matrix: np.ndarray, measure: _Measure, column: int) -> None:
        op = _ConditionalOp("cc", (q,), matrix, measure=measure.id, column=column)
        # Applied or not, it lasts a prx; its gate noise is the prx's (only when applied).
        self._place(op, _figures(op, "prx", (q,), self.calibration), self.ready[measure.id])

    def _measure(self, position: int, instruction: Instruction, names: tuple[str, ...]) -> None:
        """A measurement, or a reset (a measurement fed back into π pulses)."""
        name, schedule, level = instruction.name, self.schedule, self.level
        feedback = instruction.args.get("feedback_key") if name == "measure" else None
        fed_back = name == "reset" or (feedback is not None and feedback in self.fed_keys)
        measure = _Measure(
            len(self.measures),
            instruction.args["key"] if name == "measure" else None,
            names,
            fed_back,
            fed_back or self.reused[position],
        )
        self.measures.append(measure)
        start = max(level.get(q, 0) for q in names)
        if measure.active:
            schedule.reserve(start)
            calibration = self.calibration
            figures = None if calibration is None else calibration.gate("measure", names)
            if figures is not None:
                schedule.durations[start] = max(schedule.durations[start], figures[1])
            self.active.setdefault(start, []).append(measure)
            for q in names:
                level[q] = start + 1
            self.ready[measure.id] = start + 1
        else:
            for q in names:
                schedule.measured_at[q] = start
        if feedback is not None:
            self.by_feedback[feedback] = measure  # the most recent one with that key
        if name == "reset":
            for column, q in enumerate(names):
                self._conditional(q, _RESET_PULSE, measure, column)

    def _cc_prx(self, position: int, instruction: Instruction, names: tuple[str, ...]) -> None:
        source = self.by_feedback.get(instruction.args["feedback_key"])
        feedback_qubit = _physical(instruction.args["feedback_qubit"], self.mapping)
        if source is None or feedback_qubit not in source.qubits:
            raise SimulationError(
                f'circuit {self.circuit_index} ("{self.circuit.name}"), instruction {position}: '
                f"cc_prx reads no earlier measurement of {feedback_qubit!r} with feedback_key "
                f"{instruction.args['feedback_key']!r}"
            )
        matrix = prx_matrix(instruction.args["angle_t"], instruction.args["phase_t"])
        self._conditional(names[0], matrix, source, source.qubits.index(feedback_qubit))


def _block_noise(
    schedule: _Schedule,
    blocks: list[list[str]],
    block_ops: list[list[list[_Op]]],
    calibration: CalibrationSet | None,
) -> tuple[list[_ThermalTable | None], list[int]]:
    """Each block's relaxation table and the moment it ends (it relaxes until measured)."""
    n_moments = len(schedule.moments)
    block_end = []
    noise: list[_ThermalTable | None] = []
    for b, block in enumerate(blocks):
        last = max((m + 1 for m, ops in enumerate(block_ops[b]) if ops), default=0)
        if calibration is None:
            noise.append(None)
            block_end.append(last)
            continue
        noise.append(_ThermalTable(block, schedule.durations, calibration, schedule.measured_at))
        relaxing = max(schedule.measured_at.get(q, n_moments) for q in block)
        block_end.append(max(last, relaxing))
    return noise, block_end


def _measure_parts(
    measures: list[_Measure], blocks: list[list[str]], index: list[dict[str, int]]
) -> dict[int, list[tuple[int, list[int], list[int]]]]:
    """Measure id -> (block, positions in the block, columns in the measure's locus)."""
    parts: dict[int, list[tuple[int, list[int], list[int]]]] = {}
    block_of = {q: b for b, block in enumerate(blocks) for q in block}
    for measure in measures:
        grouped: dict[int, tuple[list[int], list[int]]] = {}
        for column, q in enumerate(measure.qubits):
            positions, columns = grouped.setdefault(block_of[q], ([], []))
            positions.append(index[block_of[q]][q])
            columns.append(column)
        parts[measure.id] = [(b, p, c) for b, (p, c) in grouped.items()]
    return parts


def _marginal(probabilities: np.ndarray, width: int, positions: Sequence[int]) -> np.ndarray:
    """Probabilities of the bits at ``positions`` (in that order, first = top bit)."""
    tensor = probabilities.reshape((2,) * width)
    others = tuple(k for k in range(width) if k not in positions)
    reduced = tensor.sum(axis=others) if others else tensor
    kept = sorted(positions)
    return np.transpose(reduced, [kept.index(p) for p in positions]).reshape(-1)


def _projected(probabilities: np.ndarray, width: int, projection: Mapping[int, int]) -> np.ndarray:
    """``probabilities`` conditioned on the bits of ``projection`` (position -> bit)."""
    tensor = probabilities.reshape((2,) * width)
    window: list[slice | int] = [slice(None)] * width
    for position, bit in projection.items():
        window[position] = bit
    out = np.zeros_like(tensor)
    out[tuple(window)] = tensor[tuple(window)]
    out = out.reshape(-1)
    return out / out.sum()


def _block_kind(width: int, calibration: CalibrationSet | None, max_density_qubits: int) -> str:
    if calibration is None:
        return "pure"
    return "density" if width <= max_density_qubits else "trajectory"


def _new_state(kind: str, width: int, basis: int, rng: np.random.Generator) -> _BlockState:
    if kind == "density":
        return _DensityBlock(width, basis)
    return _BranchStateVector(width, rng, basis, noisy=kind == "trajectory")


class _Shared:
    """A block state that ``users`` branches refer to; the last one takes it over uncopied."""

    __slots__ = ("state", "users")

    def __init__(self, state: _BlockState):
        self.state: _BlockState | None = state
        self.users = 1


class _Handle:
    """A branch's view of a block state: the shared state and the outcomes it is conditioned on
    (block position -> bit), applied only when the branch needs the state itself."""

    __slots__ = ("projection", "shared")

    def __init__(self, shared: _Shared, projection: dict[int, int]):
        self.shared = shared
        self.projection = projection

    def probabilities(self, width: int) -> np.ndarray:
        assert self.shared.state is not None
        probabilities = self.shared.state.probabilities()
        return (
            _projected(probabilities, width, self.projection) if self.projection else probabilities
        )

    def take(self) -> _BlockState:
        """The state to modify: the shared one if this is its last user, else a copy."""
        shared = self.shared
        assert shared.state is not None
        if shared.users == 1:
            state, shared.state = shared.state, None
        else:
            state = shared.state.copy()
        shared.users -= 1
        if self.projection:
            state.project(self.projection)
        return state

    def release(self) -> None:
        self.shared.users -= 1
        if self.shared.users == 0:
            self.shared.state = None


@dataclass
class _Branch:
    """Shots ``rows`` with one outcome history, at ``moment`` with ``done`` of its measurements
    drawn; ``register`` holds the read bits of fed-back measurements by measure id."""

    moment: int
    done: int
    handles: list[_Handle]
    register: dict[int, tuple[int, ...]]
    rows: np.ndarray

    def own(self, b: int) -> _BlockState:
        """The branch's own, modifiable state of block ``b``."""
        handle = self.handles[b]
        if handle.shared.users == 1 and not handle.projection:
            assert handle.shared.state is not None
            return handle.shared.state
        state = handle.take()
        self.handles[b] = _Handle(_Shared(state), {})
        return state


class _BranchStateVector(_StateVector):
    """A block's state vector in a branch: noiseless, or one noisy trajectory (``noisy``)."""

    def __init__(self, n: int, rng: np.random.Generator, basis: int = 0, *, noisy: bool = False):
        super().__init__(n, rng)
        self.psi[0] = 0
        self.psi[basis] = 1
        self.noisy = noisy
        self.threshold = rng.random() if noisy else 0.0

    def copy(self) -> _BranchStateVector:
        new = object.__new__(_BranchStateVector)
        new.n, new.rng, new.noisy = self.n, self.rng, self.noisy
        new.psi = self.psi.copy()
        new.pending = list(self.pending)
        new._spare = None
        new.threshold = self.threshold
        if self.noisy:
            new._renormalise()
        return new

    def _renormalise(self) -> None:
        # Given no jump so far the remaining jump threshold is uniform: a fresh one is exact.
        self.psi /= np.sqrt(np.vdot(self.psi, self.psi).real)
        self.threshold = float(self.rng.random())

    def step(
        self,
        ops: list[_Op],
        index: Mapping[str, int],
        noise: _ThermalTable | None,
        m: int,
        register: Mapping[int, tuple[int, ...]],
        superops: dict[int, np.ndarray],
    ) -> None:
        """One moment: its gates (a conditional one iff its bit read 1), then relaxation."""
        for op in _taking_effect(ops, register):
            self._apply(op, [index[q] for q in op.qubits], noise is not None)
        if noise is not None:
            self.threshold = self._relax(noise, m, self.threshold)

    def _flush_all(self) -> None:
        for k in range(self.n):
            self._flush(k)

    def probabilities(self) -> np.ndarray:
        self._flush_all()
        probabilities = np.abs(self.psi).astype(np.float64) ** 2
        return probabilities / probabilities.sum()

    def project(self, projection: Mapping[int, int]) -> None:
        """Collapses onto the outcome ``projection`` (position -> bit) and renormalises."""
        self._flush_all()
        tensor = self.psi.reshape((2,) * self.n)
        window: list[slice | int] = [slice(None)] * self.n
        for position, bit in projection.items():
            window[position] = bit
        out = np.zeros_like(tensor)
        out[tuple(window)] = tensor[tuple(window)]
        self.psi = out.reshape(-1)
        if self.noisy:
            self._renormalise()
        else:
            self.psi /= np.sqrt(np.vdot(self.psi, self.psi).real)


_thermal_superoperator_cached = functools.lru_cache(maxsize=4096)(
    lambda gamma, p_z: _thermal_superoperator(gamma, p_z)
)


class _DensityBlock:
    """A block's exact density matrix in a branch (axes: rows of every qubit, then columns)."""

    def __init__(self, n: int, basis: int = 0):
        self.n = n
        self.rho = np.zeros((2,) * (2 * n), dtype=np.complex128)
        self.rho.reshape(2**n, 2**n)[basis, basis] = 1

    def copy(self) -> _DensityBlock:
        new = object.__new__(_DensityBlock)
        new.n, new.rho = self.n, self.rho.copy()
        return new

    def _apply(self, superop: np.ndarray, ks: list[int]) -> None:
        axes = ks + [self.n + k for k in ks]
        moved = np.moveaxis(self.rho, axes, range(len(axes)))
        shape = moved.shape
        out = (superop @ moved.reshape(4 ** len(ks), -1)).reshape(shape)
        self.rho = np.moveaxis(out, range(len(axes)), axes)

    def step(
        self,
        ops: list[_Op],
        index: Mapping[str, int],
        noise: _ThermalTable | None,
        m: int,
        register: Mapping[int, tuple[int, ...]],
        superops: dict[int, np.ndarray],
    ) -> None:
        """One moment: its gates (a conditional one iff its bit read 1), then relaxation."""
        for op in _taking_effect(ops, register):
            superop = superops.get(id(op))
            if superop is None:
                unitary = np.diag(_CZ_DIAG) if op.kind == "cz" else op.matrix
                assert unitary is not None
                superop = np.kron(unitary, unitary.conj())
                if op.depolarizing > 0:
                    superop = _depolarizing_superoperator(op.depolarizing, len(op.qubits)) @ superop
                superops[id(op)] = superop
            self._apply(superop, [index[q] for q in op.qubits])
        if noise is None:
            return
        for k in range(self.n):
            gamma, p_z = float(noise.gamma[m, k]), float(noise.p_z[m, k])
            if gamma > 0 or p_z > 0:
                self._apply(_thermal_superoperator_cached(gamma, p_z), [k])

    def probabilities(self) -> np.ndarray:
        diagonal = np.einsum("ii->i", self.rho.reshape(2**self.n, 2**self.n)).real
        diagonal = np.clip(diagonal, 0, None)
        return diagonal / diagonal.sum()

    def project(self, projection: Mapping[int, int]) -> None:
        """Collapses onto the outcome ``projection`` (position -> bit) and renormalises."""
        window: list[slice | int] = [slice(None)] * (2 * self.n)
        for position, bit in projection.items():
            window[position] = window[self.n + position] = bit
        out = np.zeros_like(self.rho)
        out[tuple(window)] = self.rho[tuple(window)]
        trace = np.einsum("ii->", out.reshape(2**self.n, 2**self.n)).real
        self.rho = out / trace


_BlockState = _BranchStateVector | _DensityBlock


class _ResetChain:
    """``n`` active resets of basis states, qubit by qubit (see :meth:`apply`)."""

    def __init__(
        self,
        qubits: Sequence[str],
        calibration: CalibrationSet | None,
        rng: np.random.Generator,
    ):
        self.rng = rng
        n = len(qubits)
        self.p01, self.p10 = np.zeros(n), np.zeros(n)
        self.decay_measure, self.decay_pulse, self.flip = (
            np.zeros(n),
            np.zeros(n),
            np.zeros(n),
        )
        self.perfect = np.ones(n, dtype=bool)
        if calibration is None:
            return
        for k, q in enumerate(qubits):
            figures = calibration.qubits.get(q)
            prx = calibration.gate("prx", (q,))
            if figures is None or not figures.measurable or prx is None:
                continue  # no readout (a resonator): it starts in |0>
            self.perfect[k] = False
            self.p01[k], self.p10[k] = _readout(calibration, q)
            t1, t2 = figures.t1, figures.t2
            self.decay_measure[k] = thermal_parameters(t1, t2, calibration.measure_duration)[0]
            self.decay_pulse[k] = thermal_parameters(t1, t2, prx[1])[0]
            # X and Y of the pulse's depolarising remainder flip a basis state, Z does not.
            self.flip[k] = 2 / 3 * depolarizing_remainder(prx[0], prx[1], [(t1, t2)])

    def apply(self, state: np.ndarray, cycles: int) -> np.ndarray:
        """Each cycle: read (with readout errors), relax for the measurement, π pulse iff read 1
        (with the prx's error), relax for the pulse's duration (applied or not)."""
        rng, n = self.rng, len(state)
        bits = state.astype(bool)
        for _ in range(cycles):
            read = bits ^ (rng.random(n) < np.where(bits, self.p10, self.p01))
            bits &= ~(rng.random(n) < self.decay_measure)
            bits ^= read
            bits ^= read & (rng.random(n) < self.flip)
            bits &= ~(rng.random(n) < self.decay_pulse)
        bits &= ~self.perfect
        return bits.astype(np.uint8)


def density_matrix_is_cheaper(width: int, shots: int, gates: int, moments: int) -> bool:
    """Whether the exact density matrix of a noisy block costs less than one numpy trajectory per
    shot (see :func:`density_matrix_cost` and :func:`trajectory_cost`)."""
    return density_matrix_cost(width, gates, moments) < trajectory_cost(
        width, shots, gates, moments
    )


def density_matrix_cost(width: int, gates: int, moments: int) -> float:
    """Estimated seconds for the exact density matrix of a noisy block (numpy engine).

    Both noisy numpy methods are exact in distribution, so only the cost decides. The model
    counts passes over the state: the density matrix applies every gate and each qubit's
    relaxation per moment to ``4**width`` entries. Constants measured with one BLAS thread
    (``tests/benchmarks/bench_server.py`` prints both costs): per pass ~0.16 ms + 3.5 ns per
    entry.
    """
    return (gates + moments * width) * (_DM_PASS_S + _DM_ENTRY_S * 4.0**width)


def trajectory_cost(width: int, shots: int, gates: int, moments: int) -> float:
    """Estimated seconds for one numpy trajectory per shot of a noisy block: every gate and
    about four passes per moment (grouped gates, the relaxation diagonal, the norms) over
    ``shots * 2**width`` amplitudes; per pass ~0.04 ms + 1.4 ns per amplitude."""
    return (gates + 4 * moments) * (_TRAJ_PASS_S + _TRAJ_AMPLITUDE_S * shots * 2.0**width)


#: Measured costs of the two noisy numpy methods (see :func:`density_matrix_cost`).
_DM_PASS_S, _DM_ENTRY_S = 1.6e-4, 3.5e-9
_TRAJ_PASS_S, _TRAJ_AMPLITUDE_S = 4e-5, 1.4e-9
