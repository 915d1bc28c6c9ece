"""Executes run requests on a noiseless Cirq state-vector simulation.

The server's worker hands a parsed, validated :class:`~cirq_iqm_ext.models.RunRequest` to a
:class:`NoiselessSimulator` and gets back measurements in the exact shape of PROTOCOL.md §3.4: one
dict per circuit mapping each measurement key to ``[shot][qubit in the listed order]`` of 0/1 ints.

How it is fast: in this protocol version measurements are terminal, so every circuit is evolved
once (without its measurements) and all shots are sampled from the final state with numpy. Qubits
that never interact through a two-qubit gate are simulated as separate, independent blocks, so a
54-qubit circuit of mostly single-qubit gates costs no more than its largest entangled block. Only
qubits the circuit uses are simulated.

Noise (issue 5) plugs in by subclassing and overriding :meth:`NoiselessSimulator.build_circuit` or
:meth:`NoiselessSimulator.run_circuit`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cirq
import numpy as np

from cirq_iqm_ext.models import Circuit, Instruction, RunRequest

#: One circuit's measurements: key -> [shot][qubit] of 0/1.
MeasurementDict = dict[str, list[list[int]]]

#: Default bound on the size of one entangled block of qubits (a 2**24 state vector is 256 MiB).
DEFAULT_MAX_BLOCK_QUBITS = 24


class SimulationError(RuntimeError):
    """A circuit cannot be simulated (e.g. an entangled block is too large); its job fails."""


class NoiselessSimulator:
    """Runs run requests exactly, sampling shots from a seedable numpy random generator.

    Args:
        seed: Seed of the random generator; equal seeds give equal results for equal job sequences.
        max_block_qubits: Largest number of mutually entangled qubits simulated as one state vector.
    """

    def __init__(
        self,
        seed: int | np.random.Generator | None = None,
        *,
        max_block_qubits: int = DEFAULT_MAX_BLOCK_QUBITS,
    ):
        self._rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self._max_block_qubits = max_block_qubits
        self._cirq_simulator = cirq.Simulator(dtype=np.complex128)

    def run(self, request: RunRequest) -> list[MeasurementDict]:
        """Runs every circuit of ``request`` with ``request.shots`` shots.

        Args:
            request: A run request validated with
                :func:`cirq_iqm_ext.validation.validate_run_request`.

        Returns:
            One measurement dict per circuit, in request order.

        Raises:
            SimulationError: A circuit is too large to simulate.
        """
        mapping = request.qubit_mapping_dict
        return [
            self.run_circuit(circuit, request.shots, mapping, circuit_index=index)
            for index, circuit in enumerate(request.circuits)
        ]

    def run_circuit(
        self,
        circuit: Circuit,
        shots: int,
        qubit_mapping: Mapping[str, str] | None = None,
        *,
        circuit_index: int = 0,
    ) -> MeasurementDict:
        """Runs one circuit and returns its measurements.

        Args:
            circuit: The circuit, with logical names when ``qubit_mapping`` is given.
            shots: Number of shots.
            qubit_mapping: Logical -> physical qubit names, or ``None`` for physical names.
            circuit_index: Position in the batch, for error messages.

        Returns:
            Measurement key -> ``[shot][qubit]`` of 0/1 ints, keys in instruction order.

        Raises:
            SimulationError: An entangled block of qubits is too large to simulate.
        """
        cirq_circuit, measurements = self.build_circuit(circuit, qubit_mapping)
        if not measurements:
            return {}
        if not _measurements_are_terminal(cirq_circuit):
            return self._run_with_cirq(cirq_circuit, shots, measurements)
        unitary_part = cirq.Circuit(
            op for op in cirq_circuit.all_operations() if not cirq.is_measurement(op)
        )
        measured = [q for _, qubits in measurements for q in qubits]
        bits = self._sample_terminal(unitary_part, measured, shots, circuit, circuit_index)
        out: MeasurementDict = {}
        column = 0
        for key, qubits in measurements:
            out[key] = bits[:, column : column + len(qubits)].tolist()
            column += len(qubits)
        return out

    def build_circuit(
        self, circuit: Circuit, qubit_mapping: Mapping[str, str] | None = None
    ) -> tuple[cirq.Circuit, list[tuple[str, list[cirq.NamedQubit]]]]:
        """Translates a protocol circuit to Cirq on physical ``cirq.NamedQubit`` s.

        Args:
            circuit: The protocol circuit.
            qubit_mapping: Logical -> physical qubit names, or ``None``.

        Returns:
            The Cirq circuit (measurements included) and the measurements in instruction order as
            ``(key, qubits)`` pairs.
        """
        ops: list[cirq.Operation] = []
        measurements: list[tuple[str, list[cirq.NamedQubit]]] = []
        for instruction in circuit.instructions:
            qubits = [
                cirq.NamedQubit(qubit_mapping.get(q, q) if qubit_mapping is not None else q)
                for q in instruction.qubits
            ]
            op = self.translate(instruction, qubits)
            if op is None:
                continue
            if instruction.name == "measure":
                measurements.append((instruction.args["key"], qubits))
            ops.append(op)
        return cirq.Circuit(ops), measurements

    @staticmethod
    def translate(instruction: Instruction, qubits: Sequence[cirq.Qid]) -> cirq.Operation | None:
        """Maps one instruction to a Cirq operation (``None`` for a barrier).

        ``prx(angle_t, phase_t)`` is RZ(phi)·RX(theta)·RZ(-phi) with theta = 2π·angle_t and
        phi = 2π·phase_t, which is ``PhasedXPowGate(exponent=2·angle_t, phase_exponent=2·phase_t)``
        up to global phase. ``move`` (qubit ↔ resonator transfer) acts as a SWAP on the
        computational subspace.

        Raises:
            SimulationError: The instruction has no simulation (an unknown name).
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
        if name == "move":
            return cirq.SWAP.on(*qubits)
        raise SimulationError(f"The simulator cannot execute the instruction {name!r}")

    def _sample_terminal(
        self,
        unitary_part: cirq.Circuit,
        measured: list[cirq.NamedQubit],
        shots: int,
        circuit: Circuit,
        circuit_index: int,
    ) -> np.ndarray:
        """Samples ``shots`` bitstrings of the ``measured`` qubits, one column per qubit."""
        column_of = {q: i for i, q in enumerate(measured)}
        bits = np.zeros((shots, len(measured)), dtype=np.int64)
        for block in _entangled_blocks(unitary_part, measured):
            targets = [q for q in block if q in column_of]
            if not targets:
                continue  # an unmeasured block cannot change the measured statistics
            if len(block) > self._max_block_qubits:
                raise SimulationError(
                    f'circuit {circuit_index} ("{circuit.name}") entangles {len(block)} qubits, '
                    f"more than the {self._max_block_qubits} this simulator can handle"
                )
            block_set = set(block)
            sub_circuit = cirq.Circuit(
                op for op in unitary_part.all_operations() if block_set.issuperset(op.qubits)
            )
            state = self._final_state(sub_circuit, block)
            samples = self._sample_indices(state, shots)
            width = len(block)
            for position, qubit in enumerate(block):
                if qubit in column_of:
                    # cirq's state vectors are big-endian: the first qubit is the top bit.
                    bits[:, column_of[qubit]] = (samples >> (width - 1 - position)) & 1
        return bits

    def _final_state(self, circuit: cirq.Circuit, qubits: list[cirq.NamedQubit]) -> np.ndarray:
        if not any(True for _ in circuit.all_operations()):
            state = np.zeros(2 ** len(qubits), dtype=np.complex128)
            state[0] = 1.0
            return state
        result = self._cirq_simulator.simulate(circuit, qubit_order=qubits)
        return np.asarray(result.final_state_vector)

    def _sample_indices(self, state: np.ndarray, shots: int) -> np.ndarray:
        probabilities = np.abs(state) ** 2
        cumulative = np.cumsum(probabilities)
        draws = self._rng.random(shots) * cumulative[-1]  # scaling absorbs rounding in the norm
        indices = np.searchsorted(cumulative, draws, side="right")
        return np.minimum(indices, len(state) - 1).astype(np.int64)

    def _run_with_cirq(
        self,
        cirq_circuit: cirq.Circuit,
        shots: int,
        measurements: list[tuple[str, list[cirq.NamedQubit]]],
    ) -> MeasurementDict:
        """Fallback for mid-circuit measurements: Cirq samples shot by shot."""
        seed = int(self._rng.integers(2**63 - 1))
        result = cirq.Simulator(seed=seed).run(cirq_circuit, repetitions=shots)
        return {key: result.measurements[key].astype(int).tolist() for key, _ in measurements}


def _measurements_are_terminal(circuit: cirq.Circuit) -> bool:
    measured: set[cirq.Qid] = set()
    for op in circuit.all_operations():
        if measured.intersection(op.qubits):
            return False
        if cirq.is_measurement(op):
            measured.update(op.qubits)
    return True


def _entangled_blocks(
    circuit: cirq.Circuit, extra_qubits: Sequence[cirq.NamedQubit]
) -> list[list[cirq.NamedQubit]]:
    """Groups qubits that multi-qubit operations connect (union-find); blocks are sorted lists."""
    parent: dict[Any, Any] = {}

    def find(q: Any) -> Any:
        while parent[q] != q:
            parent[q] = parent[parent[q]]
            q = parent[q]
        return q

    for qubit in [*circuit.all_qubits(), *extra_qubits]:
        parent.setdefault(qubit, qubit)
    for op in circuit.all_operations():
        first, *rest = op.qubits
        for other in rest:
            root_a, root_b = find(first), find(other)
            if root_a != root_b:
                parent[root_b] = root_a
    blocks: dict[Any, list[cirq.NamedQubit]] = {}
    for qubit in parent:
        blocks.setdefault(find(qubit), []).append(qubit)
    return [sorted(block) for block in blocks.values()]
