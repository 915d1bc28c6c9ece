"""Operations as synthesis items, and the item-level rules that come before routing.

Items are the plain tuples of :mod:`.synthesis` (its module docstring lists the kinds), here on
logical qubit indices. Besides turning operations into items this module drops SWAP gates of
the input by relabelling (a logical SWAP only changes where a qubit ends up), checks the device's
rules that routing cannot fix (mid-circuit measurement, coupled pairs of a circuit on device
qubits), and holds terminal measurements back so that no routing SWAP touches a measured qubit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cirq
import numpy as np

from cirq_iqm_ext.compiler.synthesis import Item, Relabeller, item_qubits
from cirq_iqm_ext.device.barriers import IQMBarrierGate
from cirq_iqm_ext.device.dynamic import controlled_pulse
from cirq_iqm_ext.device.iqm_device import DeviceValidationError, IQMDevice

SWAP_MATRIX = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=complex)
CZ_MATRIX = np.diag([1, 1, 1, -1]).astype(complex)


def _hashable(gate: cirq.Gate) -> bool:
    try:
        hash(gate)
    except TypeError:
        return False
    return True


class Itemizer:
    """Turns operations into synthesis items on logical indices, caching gate matrices."""

    def __init__(self, index: Mapping[cirq.Qid, int]):
        self.index = index
        self.matrices: dict[cirq.Gate, np.ndarray] = {}
        # Key -> qubits of its latest measurement so far: what a classical control reads.
        self.measured: dict[cirq.MeasurementKey, tuple[int, ...]] = {}

    def matrix(self, gate: cirq.Gate) -> np.ndarray:
        """The unitary of ``gate``, computed once per (hashable) gate."""
        if not _hashable(gate):
            return np.asarray(cirq.unitary(gate), dtype=complex)
        m = self.matrices.get(gate)
        if m is None:
            m = np.asarray(cirq.unitary(gate), dtype=complex)
            self.matrices[gate] = m
        return m

    def item(self, op: cirq.Operation) -> Item:
        """The item of one flattened operation (see :func:`.decompose.flatten`)."""
        idx = tuple(self.index[q] for q in op.qubits)
        if op.classical_controls:
            return self._controlled(op, idx)
        gate = op.gate
        assert gate is not None  # flatten() only yields gate operations
        if isinstance(gate, cirq.MeasurementGate):
            self.measured[gate.mkey] = idx
            return ("m", idx, gate)
        if isinstance(gate, cirq.ResetChannel):
            return ("r", idx, gate)
        if isinstance(gate, cirq.WaitGate):
            return ("w", idx, gate)
        if isinstance(gate, IQMBarrierGate):
            return ("b", idx, gate)
        if len(idx) == 1:
            if cirq.is_parameterized(gate):
                return ("s1", idx[0], gate)
            return ("u1", idx[0], self.matrix(gate))
        if gate == cirq.CZ:
            return ("u2", idx[0], idx[1], CZ_MATRIX, "cz")
        key = gate if _hashable(gate) else None
        return ("u2", idx[0], idx[1], self.matrix(gate), key)

    def _controlled(self, op: cirq.Operation, idx: tuple[int, ...]) -> Item:
        """``("c", (target, measured qubit), op)``: the measured qubit orders it after the
        measurement (the router keeps every gate after the gates it depends on)."""
        _, key = controlled_pulse(op)
        measured = self.measured.get(key)
        if measured is None:
            raise DeviceValidationError(
                f"{op!r} is conditioned on {str(key)!r}, which no earlier measurement sets; "
                "measure that key before the gate that depends on it"
            )
        if len(measured) != 1:
            raise DeviceValidationError(
                f"{op!r} is conditioned on {str(key)!r}, a measurement of {len(measured)} qubits; "
                "IQM feeds forward the bit of a single-qubit measurement: measure that qubit "
                "under its own key"
            )
        return ("c", (idx[0], measured[0]), op)


def _is_swap(matrix: np.ndarray) -> bool:
    phase = matrix[0, 0]
    return abs(abs(phase) - 1) < 1e-9 and np.allclose(matrix, phase * SWAP_MATRIX, atol=1e-9)


def elide_swaps(items: list[Item], wire: list[int]) -> list[Item]:
    """Drops SWAP gates by relabelling the qubits of every later item; updates ``wire``."""
    out: list[Item] = []
    swap_cache: dict[int, bool] = {}
    relabel = Relabeller(wire)
    for it in items:
        if it[0] == "u2":
            m = it[3]
            is_swap = swap_cache.get(id(m))
            if is_swap is None:
                is_swap = swap_cache[id(m)] = _is_swap(m)
            if is_swap:
                wire[it[1]], wire[it[2]] = wire[it[2]], wire[it[1]]
                continue
        out.append(relabel(it))
    return out


def check_measurements(items: list[Item], device: IQMDevice) -> None:
    """Rejects operations after a measurement of the same qubit, unless the device allows them."""
    if device.mid_circuit_measurement:
        return
    measured: set[int] = set()
    for it in items:
        if it[0] == "b":
            continue  # a barrier after a measurement sends nothing that acts
        qs = item_qubits(it)
        if measured.intersection(qs):
            raise DeviceValidationError(
                f"The circuit acts on a qubit after measuring it, which device {device.name!r} "
                "does not allow (mid-circuit measurement is off)"
            )
        if it[0] == "m":
            measured.update(qs)


def split_terminal_measurements(items: Sequence[Item]) -> tuple[list[Item], list[Item]]:
    """``(others, terminal)``: measurements that nothing follows on their qubits, held apart."""
    kept: list[Item] = []
    terminal: list[Item] = []
    later: set[int] = set()
    for it in reversed(items):
        qs = item_qubits(it)
        if it[0] == "m" and not later.intersection(qs):
            terminal.append(it)
        else:
            kept.append(it)
        later.update(qs)
    kept.reverse()
    terminal.reverse()
    return kept, terminal


def check_coupled_pairs(
    items: Sequence[Item],
    edges: Sequence[tuple[int, int]],
    phys: Sequence[cirq.Qid],
    device: IQMDevice,
) -> None:
    """A circuit on device qubits is never routed: each two-qubit gate must be on a coupled pair."""
    coupled = {frozenset(e) for e in edges}
    bad: list[tuple[cirq.Qid, cirq.Qid]] = []
    for it in items:
        if it[0] == "u2" and frozenset((it[1], it[2])) not in coupled:
            pair = (phys[it[1]], phys[it[2]])
            if pair not in bad:
                bad.append(pair)
    if bad:
        pairs = ", ".join(f"({a}, {b})" for a, b in bad[:5])
        raise DeviceValidationError(
            f"Two-qubit gates act on {pairs}, which are not coupled on device {device.name!r}. A "
            "circuit written on device qubits runs exactly on those qubits (no SWAPs are added): "
            "use coupled pairs, or write the circuit on logical qubits (cirq.LineQubit) to let "
            "the compiler place and route it"
        )
