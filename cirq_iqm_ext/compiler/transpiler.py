"""The compiler: any Cirq circuit -> a native circuit on an IQM device, plus the qubit maps.

Optimisation levels (one meaning everywhere, :data:`OPTIMIZATION_LEVELS`):

* ``0`` — translate: every operation becomes native pulses on its own (Z rotations stay virtual,
  folded exactly into the phases of later ``prx`` pulses); nothing is merged, cancelled or
  resynthesised across operations; waits and barriers are kept. The sampler's default.
* ``1`` — also merge adjacent single-qubit gates into one pulse and drop negligible ones.
* ``2`` — also resynthesise two-qubit blocks, absorb SWAPs into the final mapping and try several
  layouts. The default of :func:`transpile`.
* ``3`` — also spend more layout and routing trials (the best of several seeds).

At every level: barriers are honoured (nothing is moved or merged across one), waits are kept, a
circuit written on the device's own qubits runs on exactly those qubits (no placement, no
routing), only logical qubits (``LineQubit``, ``GridQubit``, other names) are placed, and the
output is equivalent to the input up to global phase and the reported qubit maps (a Z rotation
is dropped only where a measurement follows it).

Pipeline (each stage in its own module):

1. :mod:`.decompose`: flatten to 1- and 2-qubit gates and measurements (symbolic
   two-qubit gates become CZ and symbolic rotations);
2. :mod:`.placement`: an exact embedding of the interaction graph when there is one,
   else the best of several seeded SABRE layout trials;
3. :mod:`.routing`: look-ahead SWAP insertion;
4. :mod:`.synthesis`: two-qubit blocks (SWAPs included) resynthesised with at most 3
   CZ, single-qubit runs merged into one ``PhasedXPowGate``, Z rotations ejected into measurements.

On a star device (a computational resonator, e.g. Deneb) the pipeline runs on the fictional
qubit-only architecture whose ``cz`` pairs are those a resonator can implement, and a final pass
(:mod:`.star`) replaces each fictional CZ by MOVEs and resonator CZs with look-ahead.

The result is checked with :meth:`IQMDevice.validate_circuit` before it is returned. The same input
and seed give the same output in any process: nothing depends on hash order or on the clock.
"""

from __future__ import annotations

import re
import warnings
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cirq
import numpy as np

from cirq_iqm_ext.compiler.decompose import flatten
from cirq_iqm_ext.compiler.placement import best_routing
from cirq_iqm_ext.compiler.routing import Coupling, Skeleton
from cirq_iqm_ext.compiler.star import (
    DEFAULT_LOOKAHEAD,
    EXISTING_MOVES_MODES,
    PassInstruction,
    StarTopology,
    circuit_instructions,
    insert_moves,
    instructions_to_circuit,
    lift,
    on_qubits,
    sandwich_error,
)
from cirq_iqm_ext.compiler.synthesis import (
    MULTI_QUBIT_KINDS,
    Item,
    Relabeller,
    TwoQubitSynthesizer,
    absorb_swaps,
    item_qubits,
    merge_blocks,
    resynthesize_blocks,
    to_native,
)
from cirq_iqm_ext.device.barriers import IQMBarrierGate
from cirq_iqm_ext.device.dynamic import controlled_pulse
from cirq_iqm_ext.device.iqm_device import DeviceValidationError, IQMDevice
from cirq_iqm_ext.device.move_gate import IQMMoveGate
from cirq_iqm_ext.errors import CompilationError

#: The optimisation levels of :func:`transpile` (see the module docstring).
OPTIMIZATION_LEVELS = (0, 1, 2, 3)

#: Layout trials are sized so that (trials x two-qubit gates x device qubits) stays near this.
TRIAL_WORK = 100_000
MAX_TRIALS = 12
MIN_TRIALS = 2
#: Level 3: seeds tried (each with twice the layout trials of level 2); the fewest CZ wins. A
#: fixed count, not a clock, so the output never depends on the machine's speed.
LEVEL3_SEEDS = 4

_SWAP = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=complex)
_CZ_MAT = np.diag([1, 1, 1, -1]).astype(complex)


@dataclass(frozen=True)
class TranspileResult:
    """A compiled circuit and where the logical qubits are at its start and end.

    Unpacks as a tuple: ``circuit, initial_mapping, final_mapping = transpile(...)``.

    Attributes:
        circuit: The native circuit on device qubits.
        initial_mapping: Logical qubit -> device qubit at the start of the circuit.
        final_mapping: Logical qubit -> device qubit at the end (after routing SWAPs).
    """

    circuit: cirq.Circuit
    initial_mapping: dict[cirq.Qid, cirq.Qid]
    final_mapping: dict[cirq.Qid, cirq.Qid]

    def __iter__(self) -> Iterator[Any]:
        return iter((self.circuit, self.initial_mapping, self.final_mapping))


def _hashable(gate: cirq.Gate) -> bool:
    try:
        hash(gate)
    except TypeError:
        return False
    return True


class _Itemizer:
    """Turns operations into synthesis items on logical indices, caching gate matrices."""

    def __init__(self, index: Mapping[cirq.Qid, int]):
        self.index = index
        self.matrices: dict[cirq.Gate, np.ndarray] = {}
        # Key -> qubits of its latest measurement so far: what a classical control reads.
        self.measured: dict[cirq.MeasurementKey, tuple[int, ...]] = {}

    def matrix(self, gate: cirq.Gate) -> np.ndarray:
        if not _hashable(gate):
            return np.asarray(cirq.unitary(gate), dtype=complex)
        m = self.matrices.get(gate)
        if m is None:
            m = np.asarray(cirq.unitary(gate), dtype=complex)
            self.matrices[gate] = m
        return m

    def item(self, op: cirq.Operation) -> Item:
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
            return ("u2", idx[0], idx[1], _CZ_MAT, "cz")
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
    return abs(abs(phase) - 1) < 1e-9 and np.allclose(matrix, phase * _SWAP, atol=1e-9)


def _elide_swaps(items: list[Item], wire: list[int]) -> list[Item]:
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


def _check_measurements(items: list[Item], device: IQMDevice) -> None:
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


def _physical_region(
    device: IQMDevice, qubit_subset: Iterable[cirq.Qid | str] | None, n_logical: int
) -> list[cirq.Qid]:
    """Device qubits the circuit may use: a connected set, in natural order."""
    prx = set(device.loci("prx"))
    allowed: list[cirq.Qid] = [q for q in device.qubits if (q,) in prx]
    if qubit_subset is not None:
        allowed = [q for q in allowed if q in _subset(device, qubit_subset)]
    graph = device.metadata.nx_graph.subgraph(allowed)
    cz = {frozenset(p) for p in device.cz_pairs}
    # Largest connected component (earliest qubit first on ties).
    seen: set[cirq.Qid] = set()
    best: list[cirq.Qid] = []
    for start in allowed:
        if start in seen:
            continue
        comp = [start]
        seen.add(start)
        queue = deque([start])
        while queue:
            u = queue.popleft()
            for v in sorted(graph.neighbors(u)):
                if v not in seen and frozenset((u, v)) in cz:
                    seen.add(v)
                    comp.append(v)
                    queue.append(v)
        if len(comp) > len(best):
            best = comp
    if n_logical > len(best):
        raise CompilationError(
            f"The circuit needs {n_logical} qubits but device {device.name!r} offers at most "
            f"{len(best)} connected usable qubits"
            + (" in qubit_subset" if qubit_subset is not None else "")
        )
    order: dict[cirq.Qid, int] = {q: i for i, q in enumerate(device.qubits)}
    return sorted(best, key=order.__getitem__)


def _subset(device: IQMDevice, qubit_subset: Iterable[cirq.Qid | str]) -> list[cirq.Qid]:
    wanted: list[cirq.Qid] = []
    for q in qubit_subset:
        dq = device.qubit(q) if isinstance(q, str) else q
        if dq not in device.metadata.qubit_set:
            raise CompilationError(
                f"qubit_subset names a qubit not on device {device.name!r}: {q!r}"
            )
        if dq not in wanted:
            wanted.append(dq)
    return wanted


def _layout_from_mapping(
    mapping: Mapping[cirq.Qid, cirq.Qid | str],
    logical: list[cirq.Qid],
    phys_index: Mapping[cirq.Qid, int],
    device: IQMDevice,
) -> list[int]:
    layout: list[int] = []
    used: set[int] = set()
    for q in logical:
        if q not in mapping:
            raise CompilationError(f"initial_mapping does not place qubit {q!r}")
        target = mapping[q]
        dq = device.qubit(target) if isinstance(target, str) else target
        if dq not in phys_index:
            raise CompilationError(
                f"initial_mapping puts {q!r} on {target!r}, which is not a usable qubit of device "
                f"{device.name!r}"
            )
        p = phys_index[dq]
        if p in used:
            raise CompilationError(f"initial_mapping puts two qubits on {target!r}")
        used.add(p)
        layout.append(p)
    return layout


def _name_pattern(device: IQMDevice) -> re.Pattern[str]:
    """What the device's qubit names look like (``QB12``, ``COMP_R2``): prefix and number."""
    prefixes = sorted(
        {m.group(1) for n in device.qubit_names if (m := re.fullmatch(r"(.*?)\d+", n))}
    )
    if not prefixes:
        return re.compile(r"(?!)")  # matches nothing
    return re.compile("(?:" + "|".join(map(re.escape, prefixes)) + r")\d+")


def device_qubits_of(circuit: cirq.AbstractCircuit, device: IQMDevice) -> list[cirq.Qid]:
    """The circuit's qubits if it is written on ``device``'s own qubits, else ``[]``.

    A circuit on device qubits runs on exactly those qubits; one on logical qubits (``LineQubit``,
    ``GridQubit``, names unlike the device's) is placed by the compiler.

    Raises:
        CircuitValidationError: A qubit is named like a device qubit but the device has no such
            qubit (``NamedQubit("QB99")`` on a 20-qubit device), or the circuit mixes device and
            logical qubits.
    """
    on_device = device.metadata.qubit_set
    pattern = _name_pattern(device)
    fixed: list[cirq.Qid] = []
    logical: list[cirq.Qid] = []
    unknown: list[cirq.Qid] = []
    for q in sorted(circuit.all_qubits()):
        if q in on_device:
            fixed.append(q)
        elif isinstance(q, cirq.NamedQubit) and pattern.fullmatch(q.name):
            unknown.append(q)
        else:
            logical.append(q)
    if unknown:
        names = ", ".join(str(q) for q in unknown)
        raise DeviceValidationError(
            f"The circuit uses {names}, named like qubits of device {device.name!r}, which has no "
            f"such qubit(s) (it has {_qubit_range(device)}). Use qubits the device has, or "
            "logical qubits (cirq.LineQubit, cirq.GridQubit, cirq.NamedQubit('a')) to let the "
            "compiler place them"
        )
    if fixed and logical:
        raise DeviceValidationError(
            f"The circuit mixes device qubits ({', '.join(map(str, fixed[:3]))}) with logical "
            f"qubits ({', '.join(map(str, logical[:3]))}). Device qubits run exactly where they "
            "are written and logical ones are placed by the compiler; write the whole circuit "
            "in one kind (or give initial_mapping for logical qubits)"
        )
    return fixed


def _qubit_range(device: IQMDevice) -> str:
    names = device.qubit_names
    return ", ".join(names) if len(names) <= 4 else f"{names[0]} ... {names[-1]}"


def _check_level(optimization_level: Any, optimize: bool | None) -> int:
    if optimize is not None:
        warnings.warn(
            "transpile(optimize=...) is deprecated: use optimization_level (optimize=True is "
            "level 2, optimize=False level 0)",
            DeprecationWarning,
            stacklevel=3,
        )
        return 2 if optimize else 0
    if (
        isinstance(optimization_level, bool)
        or not isinstance(optimization_level, int | np.integer)
        or int(optimization_level) not in OPTIMIZATION_LEVELS
    ):
        raise CompilationError(
            f"optimization_level must be one of {OPTIMIZATION_LEVELS}, got {optimization_level!r}"
        )
    return int(optimization_level)


def transpile(
    circuit: cirq.AbstractCircuit,
    device: IQMDevice,
    *,
    optimization_level: int = 2,
    initial_mapping: Mapping[cirq.Qid, cirq.Qid | str] | None = None,
    qubit_subset: Iterable[cirq.Qid | str] | None = None,
    seed: int | None = None,
    existing_moves: str = "keep",
    lookahead: int = DEFAULT_LOOKAHEAD,
    optimize: bool | None = None,
) -> TranspileResult:
    """Compiles ``circuit`` into native operations on ``device``.

    Args:
        circuit: Any circuit of unitary gates (symbolic ones included), measurements, waits
            (``cirq.WaitGate``) and barriers (:func:`cirq_iqm_ext.barrier`).
        device: The target device.
        optimization_level: ``0`` translate each operation on its own, ``1`` also merge adjacent
            single-qubit gates, ``2`` (default) also resynthesise two-qubit blocks, ``3`` also
            try more layouts and seeds (see the module docstring).
        initial_mapping: Logical qubit -> device qubit (or its name) to start from; placement
            search is skipped when given.
        qubit_subset: Restrict the compiled circuit to these device qubits (or names).
        seed: Seeds layout trials and tie-breaking; ``None`` means ``0``. The output depends only on
            the input and the seed.
        existing_moves: Star devices only, for an input that already holds ``IQMMoveGate``s (on
            device qubits): ``"keep"`` its sandwiches (the rest must then be native, with
            qubit-qubit CZs allowed), ``"remove"`` them and compile the rest, or ``"trust"`` them
            (``keep`` without pre-validation). An input that is already valid is returned as is.
        lookahead: Star devices only: the MOVE pass's look-ahead window (0 is greedy).
        optimize: Deprecated: ``True`` is level 2, ``False`` level 0.

    Returns:
        The native circuit with the initial and final logical -> physical maps (the identity for a
        circuit on device qubits).

    Raises:
        CompilationError: The circuit holds an operation that cannot be compiled (a non-unitary one
            other than measurement), needs more qubits than the device (or ``qubit_subset``)
            offers, ``initial_mapping`` is invalid, or ``optimization_level`` is unknown.
        cirq_iqm_ext.errors.CircuitValidationError: A qubit is named like a device qubit the device
            does not have, device and logical qubits are mixed, a circuit on device qubits uses an
            uncoupled pair, or (star devices) explicit MOVEs break a sandwich rule.
        TypeError: ``circuit`` is not a Cirq circuit or ``device`` not an ``IQMDevice``.
    """
    level = _check_level(optimization_level, optimize)
    if not isinstance(circuit, cirq.AbstractCircuit):
        raise TypeError(f"transpile needs a cirq.Circuit, got {type(circuit).__name__}")
    if not isinstance(device, IQMDevice):
        raise TypeError(f"transpile needs an IQMDevice to compile for, got {device!r}")
    if device.resonators:
        return _transpile_star(
            circuit,
            device,
            level=level,
            initial_mapping=initial_mapping,
            qubit_subset=qubit_subset,
            seed=seed,
            existing_moves=existing_moves,
            lookahead=lookahead,
        )
    seed = 0 if seed is None else int(seed)
    if level < 3:
        return _transpile_flat(circuit, device, level, initial_mapping, qubit_subset, seed, 1)
    best: TranspileResult | None = None
    best_cz = 0
    for k in range(LEVEL3_SEEDS):
        result = _transpile_flat(circuit, device, 2, initial_mapping, qubit_subset, seed + k, 2)
        n_cz = sum(1 for op in result.circuit.all_operations() if len(op.qubits) == 2)
        if best is None or n_cz < best_cz:
            best, best_cz = result, n_cz
    assert best is not None
    return best


def _transpile_flat(
    circuit: cirq.AbstractCircuit,
    device: IQMDevice,
    level: int,
    initial_mapping: Mapping[cirq.Qid, cirq.Qid | str] | None,
    qubit_subset: Iterable[cirq.Qid | str] | None,
    seed: int,
    trial_scale: int,
) -> TranspileResult:
    """:func:`transpile` for a device without resonators, at levels 0-2."""
    fixed = device_qubits_of(circuit, device)
    if fixed:
        if initial_mapping is not None:
            raise CompilationError(
                "initial_mapping places logical qubits, but this circuit is written on device "
                f"qubits ({', '.join(map(str, fixed[:3]))}), which run exactly where they are "
                "written; drop initial_mapping, or write the circuit on logical qubits"
            )
        if qubit_subset is not None:
            outside = [q for q in fixed if q not in _subset(device, qubit_subset)]
            if outside:
                raise CompilationError(
                    f"The circuit is written on {', '.join(map(str, outside))}, outside "
                    "qubit_subset"
                )
        order: dict[cirq.Qid, int] = {q: i for i, q in enumerate(device.qubits)}
        logical = sorted(fixed, key=order.__getitem__)
        phys = list(logical)
    else:
        logical = sorted(circuit.all_qubits())
        phys = _physical_region(device, qubit_subset, len(logical))
    phys_index = {q: i for i, q in enumerate(phys)}
    edges = [
        (phys_index[a], phys_index[b])
        for a, b in device.cz_pairs
        if a in phys_index and b in phys_index
    ]
    ops = flatten(circuit)
    itemizer = _Itemizer({q: i for i, q in enumerate(logical)})
    all_items = [itemizer.item(op) for op in ops]
    if fixed:
        _check_fixed_pairs(all_items, edges, phys, device)
    # wire[q]: the routed wire that logical qubit q is on; a SWAP gate in the input only relabels
    # wires (the final mapping reports where each qubit ends up), so it costs nothing. Device
    # qubits stay where they are written: their SWAPs run.
    wire = list(range(len(logical)))
    # relabel[w]: wire after the SWAPs absorbed into two-qubit blocks (see absorb_swaps).
    relabel = list(range(len(logical)))
    if level >= 2:
        if not fixed:
            all_items = _elide_swaps(all_items, wire)
        all_items = merge_blocks(all_items)
        if not fixed:
            all_items = absorb_swaps(all_items, relabel)
    _check_measurements(all_items, device)
    # Terminal measurements wait until routing is done, so no SWAP ever touches a measured qubit.
    items: list[Item] = []
    terminal: list[Item] = []
    later: set[int] = set()
    for it in reversed(all_items):
        qs = item_qubits(it)
        if it[0] == "m" and not later.intersection(qs):
            terminal.append(it)
        else:
            items.append(it)
        later.update(qs)
    items.reverse()
    terminal.reverse()
    gate_qubits = [item_qubits(it) for it in items]
    two_qubit = [it[0] == "u2" for it in items]

    if fixed:
        # Device qubits are never placed or routed (their pairs are coupled, checked above).
        layout = list(range(len(logical)))
        steps: Sequence[tuple[int, tuple[int, ...]]] = list(enumerate(gate_qubits))
        final_layout: Sequence[int] = layout
    else:
        mergeable = [it[0] == "u1" for it in items]
        skeleton = Skeleton.build(len(logical), gate_qubits, two_qubit, mergeable)
        layout_fixed = None
        if initial_mapping is not None:
            layout_fixed = _layout_from_mapping(initial_mapping, logical, phys_index, device)
        n2q = sum(two_qubit)
        if level >= 2:
            trials = int(trial_scale * TRIAL_WORK / max(1, n2q * len(phys)))
            trials = max(MIN_TRIALS, min(trial_scale * MAX_TRIALS, trials))
        else:
            trials = 1
        layout, routed = best_routing(
            skeleton,
            Coupling(len(phys), edges),
            seed=seed,
            trials=trials,
            refinements=2 if level >= 2 else 0,
            fixed_layout=layout_fixed,
        )
        steps, final_layout = routed.steps, routed.final_layout

    physical_items: list[Item] = []
    for g, pq in steps:
        if g < 0:
            physical_items.append(("u2", pq[0], pq[1], _SWAP, "swap"))
            continue
        it = items[g]
        kind = it[0]
        if kind == "u2":
            physical_items.append(("u2", pq[0], pq[1], *it[3:]))
        elif kind in MULTI_QUBIT_KINDS:
            physical_items.append((kind, pq, it[2]))
        else:
            physical_items.append((kind, pq[0], it[2]))

    for it in terminal:
        physical_items.append(("m", tuple(final_layout[q] for q in it[1]), it[2]))

    native_items = resynthesize_blocks(physical_items, _SYNTHESIZER, merge=level >= 2)
    native_ops = to_native(native_items, phys, merge=level >= 1)
    out = cirq.Circuit(native_ops)

    initial = {q: phys[layout[i]] for i, q in enumerate(logical)}
    final = {q: phys[final_layout[relabel[wire[i]]]] for i, q in enumerate(logical)}
    device.validate_circuit(out)
    return TranspileResult(out, initial, final)


def _check_fixed_pairs(
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


# One synthesiser per process: its cache of resynthesised blocks is pure (matrix -> circuit).
_SYNTHESIZER = TwoQubitSynthesizer()


def _transpile_star(
    circuit: cirq.AbstractCircuit,
    device: IQMDevice,
    *,
    level: int,
    initial_mapping: Mapping[cirq.Qid, cirq.Qid | str] | None,
    qubit_subset: Iterable[cirq.Qid | str] | None,
    seed: int | None,
    existing_moves: str,
    lookahead: int,
) -> TranspileResult:
    """:func:`transpile` for a device with computational resonators (STAR_MOVE.md §7)."""
    if existing_moves not in EXISTING_MOVES_MODES:
        raise CompilationError(
            f"existing_moves must be one of {EXISTING_MOVES_MODES}, got {existing_moves!r}"
        )
    topology = StarTopology.from_architecture(device.architecture)
    resonators = set(device.resonators)
    explicit = any(
        isinstance(op.gate, IQMMoveGate) or resonators.intersection(op.qubits)
        for op in circuit.all_operations()
    )
    if explicit and existing_moves != "remove":
        # Explicit sandwiches pin the circuit to its qubits: no placement or routing.
        out = instructions_to_circuit(
            insert_moves(
                circuit_instructions(circuit),
                topology,
                existing_moves=existing_moves,
                lookahead=lookahead,
            )
        )
        device.validate_circuit(out)
        identity = {q: q for q in sorted(circuit.all_qubits()) if q not in resonators}
        return TranspileResult(out, identity, dict(identity))
    if explicit:
        circuit = _lifted(circuit, topology)
    virtual = IQMDevice(
        topology.fictional_architecture(device.architecture),
        device.calibration_set_id,
        mid_circuit_measurement=device.mid_circuit_measurement,
    )
    routed = transpile(
        circuit,
        virtual,
        optimization_level=level,
        initial_mapping=initial_mapping,
        qubit_subset=qubit_subset,
        seed=seed,
    )
    out = instructions_to_circuit(
        insert_moves(circuit_instructions(routed.circuit), topology, lookahead=lookahead)
    )
    device.validate_circuit(out)
    return TranspileResult(out, routed.initial_mapping, routed.final_mapping)


def _lifted(circuit: cirq.AbstractCircuit, topology: StarTopology) -> cirq.Circuit:
    """``circuit`` without its MOVEs, each resonator replaced by the qubit it holds (§7.5)."""
    triples: list[PassInstruction] = []
    for op in circuit.all_operations():
        gate = op.untagged.gate
        if isinstance(gate, IQMMoveGate):
            name = "move"
        elif isinstance(gate, cirq.CZPowGate) and gate.exponent == 1:
            name = "cz"
        else:
            name = "op"
        triples.append((name, tuple(str(q) for q in op.qubits), op))
    message = sandwich_error(triples, topology)  # V1-V6, fictional CZs as ordinary instructions
    if message is not None:
        raise DeviceValidationError(message)
    for name, locus, _ in triples:
        if name == "op" and any(topology.is_resonator(q) for q in locus):
            raise CompilationError(
                f"Only cz and move may act on a resonator, got {name} on {locus}"
            )

    def relocate(inst: PassInstruction, locus: tuple[str, ...]) -> cirq.Operation:
        return on_qubits(inst[2], [cirq.NamedQubit(n) for n in locus])

    return cirq.Circuit(payload for _, _, payload in lift(triples, topology, relocate))
