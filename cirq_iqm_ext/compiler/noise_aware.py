"""Noise-aware placement: the estimated success probability of a native circuit, and moving a
compiled circuit onto the device qubits where it is highest.

The estimate is the product of calibrated fidelities: each CZ's coupler fidelity, each ``prx``
pulse's qubit fidelity (Z rotations are virtual and free) and each measured qubit's readout
fidelity (one minus the mean of its two readout errors).

Relocation never changes a gate: a compiled circuit needs only the couplers its CZs use, so any
injective renaming of its qubits that maps those onto couplers of the device (a subgraph
monomorphism) gives an equivalent circuit with the same CZ count. VF2 enumerates such renamings
(a bounded number of steps and candidates, never a clock) and the most probable wins.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import cirq
import networkx as nx

from cirq_iqm_ext.calibration import CalibrationSet
from cirq_iqm_ext.compiler.placement import BoundedMatcher, StepLimitReached
from cirq_iqm_ext.device.barriers import IQMBarrierGate

#: Feasibility checks VF2 may spend looking for renamings.
RELOCATION_STEP_LIMIT = 50_000
#: Renamings scored at most.
MAX_RELOCATIONS = 1_000


class _Counts:
    """How often each qubit and coupler is used: prx pulses, measurements, CZs."""

    def __init__(self, circuit: cirq.AbstractCircuit):
        self.prx: dict[cirq.Qid, int] = {}
        self.measured: dict[cirq.Qid, int] = {}
        self.cz: dict[tuple[cirq.Qid, cirq.Qid], int] = {}
        for op in circuit.all_operations():
            if cirq.is_measurement(op):
                for q in op.qubits:
                    self.measured[q] = self.measured.get(q, 0) + 1
            elif len(op.qubits) == 2:
                a, b = sorted(op.qubits)
                self.cz[(a, b)] = self.cz.get((a, b), 0) + 1
            elif not isinstance(op.gate, cirq.ZPowGate | IQMBarrierGate) and op.qubits:
                q = op.qubits[0]
                self.prx[q] = self.prx.get(q, 0) + 1


class _LogFidelities:
    """Log-fidelities by device qubit name; an uncalibrated figure counts as the worst
    calibrated one of its kind (so relocation never prefers what nobody measured)."""

    def __init__(self, calibration: CalibrationSet):
        self.calibration = calibration
        prx = [f.prx_fidelity for f in calibration.qubits.values() if f.prx_fidelity]
        readout = [self._readout(n) for n in calibration.qubits]
        self.worst_prx = math.log(min(prx, default=1.0))
        self.worst_readout = math.log(min((r for r in readout if r is not None), default=1.0))
        cz = [g[0] for g in (calibration.gate("cz", k) for k in self._couplers()) if g]
        self.worst_cz = math.log(max(min(cz, default=1.0), 1e-12))
        self._prx: dict[str, float] = {}
        self._readout_log: dict[str, float] = {}
        self._cz: dict[tuple[str, str], float] = {}

    def _couplers(self) -> Iterable[tuple[str, str]]:
        names = sorted(self.calibration.qubits)
        return [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]

    def _readout(self, name: str) -> float | None:
        fig = self.calibration.qubits.get(name)
        if fig is None or not fig.measurable:
            return None
        return 1 - ((fig.readout_error_0_to_1 or 0.0) + (fig.readout_error_1_to_0 or 0.0)) / 2

    def prx(self, name: str) -> float:
        if name not in self._prx:
            fig = self.calibration.qubits.get(name)
            fidelity = None if fig is None else fig.prx_fidelity
            self._prx[name] = math.log(fidelity) if fidelity else self.worst_prx
        return self._prx[name]

    def readout(self, name: str) -> float:
        if name not in self._readout_log:
            value = self._readout(name)
            if value is None:
                self._readout_log[name] = self.worst_readout
            else:
                self._readout_log[name] = math.log(max(value, 1e-12))
        return self._readout_log[name]

    def cz(self, a: str, b: str) -> float:
        key = (a, b) if a < b else (b, a)
        if key not in self._cz:
            figures = self.calibration.gate("cz", key)
            self._cz[key] = self.worst_cz if figures is None else math.log(max(figures[0], 1e-12))
        return self._cz[key]


def _name(q: cirq.Qid) -> str:
    return q.name if isinstance(q, cirq.NamedQubit) else str(q)


def _log_probability(
    counts: _Counts, logs: _LogFidelities, to: Mapping[cirq.Qid, cirq.Qid]
) -> float:
    total = 0.0
    for q, n in counts.prx.items():
        total += n * logs.prx(_name(to[q]))
    for q, n in counts.measured.items():
        total += n * logs.readout(_name(to[q]))
    for (a, b), n in counts.cz.items():
        total += n * logs.cz(_name(to[a]), _name(to[b]))
    return total


def estimated_success_probability(
    circuit: cirq.AbstractCircuit, calibration: CalibrationSet
) -> float:
    """The product of calibrated CZ, prx and readout fidelities over a native circuit."""
    counts = _Counts(circuit)
    identity = {q: q for q in circuit.all_qubits()}
    return math.exp(_log_probability(counts, _LogFidelities(calibration), identity))


def best_relocation(
    circuit: cirq.AbstractCircuit,
    extra_qubits: Iterable[cirq.Qid],
    allowed: Sequence[cirq.Qid],
    couplers: Iterable[tuple[cirq.Qid, cirq.Qid]],
    calibration: CalibrationSet,
) -> dict[cirq.Qid, cirq.Qid]:
    """The renaming of the circuit's device qubits (and ``extra_qubits``, e.g. idle logical
    qubits' places) onto ``allowed`` qubits that maximises the estimated success probability.

    Args:
        circuit: A native circuit on device qubits.
        extra_qubits: More device qubits that must move along (distinct targets).
        allowed: The device qubits the circuit may use.
        couplers: Coupled pairs among ``allowed``.
        calibration: The figures to judge by.

    Returns:
        Old -> new device qubit; the identity when nothing better was found.
    """
    counts = _Counts(circuit)
    logs = _LogFidelities(calibration)
    used = sorted(set(circuit.all_qubits()) | set(extra_qubits))
    identity = {q: q for q in used}
    # VF2 places the coupled qubits (breadth first, so each new one touches placed ones);
    # qubits without a CZ then take the best free qubits, each on its own.
    small = nx.Graph()
    small.add_edges_from(counts.cz)
    order = [q for part in nx.connected_components(small) for q in sorted(part)]
    ordered = nx.Graph()
    ordered.add_nodes_from(_breadth_first(small, order))
    ordered.add_edges_from(counts.cz)
    big = nx.Graph()
    big.add_nodes_from(allowed)
    big.add_edges_from(couplers)
    best: dict[cirq.Qid, cirq.Qid] = {q: q for q in ordered}
    best_score = _log_probability(counts, logs, identity)
    matcher = BoundedMatcher(big, ordered, RELOCATION_STEP_LIMIT)
    try:
        for k, found in enumerate(matcher.subgraph_monomorphisms_iter()):
            if k >= MAX_RELOCATIONS:
                break
            to = {old: new for new, old in found.items()}
            score = _log_probability(counts, logs, _with_loose(to, used, allowed, counts, logs))
            if score > best_score + 1e-12:
                best, best_score = to, score
    except StepLimitReached:
        pass  # the best found so far stands
    relocated = _with_loose(best, used, allowed, counts, logs)
    if _log_probability(counts, logs, relocated) <= _log_probability(counts, logs, identity):
        return identity
    return relocated


def _breadth_first(graph: nx.Graph, order: list[cirq.Qid]) -> list[cirq.Qid]:
    """The nodes breadth first from the busiest of each component (VF2 prunes early then)."""
    out: list[cirq.Qid] = []
    seen: set[cirq.Qid] = set()
    for root in sorted(order, key=lambda q: (-graph.degree[q], order.index(q))):
        if root in seen:
            continue
        seen.add(root)
        queue = [root]
        while queue:
            u = queue.pop(0)
            out.append(u)
            for v in sorted(graph.neighbors(u)):
                if v not in seen:
                    seen.add(v)
                    queue.append(v)
    return out


def _with_loose(
    to: Mapping[cirq.Qid, cirq.Qid],
    used: Sequence[cirq.Qid],
    allowed: Sequence[cirq.Qid],
    counts: _Counts,
    logs: _LogFidelities,
) -> dict[cirq.Qid, cirq.Qid]:
    """``to`` extended to the qubits without a CZ: the busiest first, each onto the free qubit
    where its prx pulses and readouts are most likely to succeed."""
    out = dict(to)
    loose = [q for q in used if q not in out]
    if not loose:
        return out
    taken = set(out.values())
    free = [p for p in allowed if p not in taken]  # in device order: ties go to the first

    def weight(q: cirq.Qid) -> tuple[int, cirq.Qid]:
        return (-(counts.prx.get(q, 0) + counts.measured.get(q, 0)), q)

    for q in sorted(loose, key=weight):
        n_prx, n_meas = counts.prx.get(q, 0), counts.measured.get(q, 0)
        scores = [n_prx * logs.prx(_name(p)) + n_meas * logs.readout(_name(p)) for p in free]
        k = max(range(len(free)), key=lambda i: (scores[i], -i))
        out[q] = free.pop(k)
    return out
