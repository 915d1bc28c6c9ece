"""The compiler's stages over one typed intermediate form, :class:`Compilation`.

:func:`~cirq_iqm_ext.compiler.transpiler.transpile` runs them in this order; each takes the form
and returns a new one (a stage never changes the form it was given):

1. :func:`prepare`: which qubits are logical and which device qubits the circuit may use;
2. :func:`itemise`: flatten (:mod:`.decompose`) into items on logical indices (:mod:`.itemise`);
3. :func:`optimise_logical`: level 2: input SWAPs elided, blocks merged, SWAPs absorbed;
4. :func:`schedule_measurements`: the device's measurement rule; terminal measurements held back;
5. :func:`place_and_route`: initial layout and SWAP routing (:mod:`.placement`, :mod:`.routing`);
6. :func:`synthesise`: native pulses on the device qubits (:mod:`.synthesis`);
7. :func:`finish`: the qubit maps, and the device's validation of the output.

On a star device :func:`plan_star` first reads the circuit's own MOVEs; the stages then run on
the fictional qubit-only device, and :func:`star_pass` inserts the MOVEs (:mod:`.star`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import cirq

from cirq_iqm_ext.compiler.commutation import item_classes
from cirq_iqm_ext.compiler.decompose import flatten_counted
from cirq_iqm_ext.compiler.itemise import (
    SWAP_MATRIX,
    Itemizer,
    check_coupled_pairs,
    check_measurements,
    elide_swaps,
    split_terminal_measurements,
)
from cirq_iqm_ext.compiler.placement import best_routing
from cirq_iqm_ext.compiler.region import (
    device_qubits_of,
    layout_from_mapping,
    pinned_qubits,
    usable_region,
)
from cirq_iqm_ext.compiler.routing import Coupling, Routed, Skeleton
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
    TwoQubitSynthesizer,
    absorb_swaps,
    item_qubits,
    merge_blocks,
    resynthesize_blocks,
    to_native,
)
from cirq_iqm_ext.device.iqm_device import DeviceValidationError, IQMDevice
from cirq_iqm_ext.device.move_gate import IQMMoveGate
from cirq_iqm_ext.errors import CompilationError

#: Layout trials are sized so that (trials x two-qubit gates x device qubits) stays near this.
TRIAL_WORK = 100_000
MAX_TRIALS = 12
MIN_TRIALS = 2

#: One routing step: ``(gate index, physical qubits)``, or ``(-1, (p, q))`` for a SWAP.
Step = tuple[int, tuple[int, ...]]

# One synthesiser per process: its cache of resynthesised blocks is pure (matrix -> circuit).
SYNTHESIZER = TwoQubitSynthesizer()


@dataclass(frozen=True)
class CompileOptions:
    """The checked options of one compilation (see :func:`.transpiler.transpile`).

    Attributes:
        level: Optimisation level; the stages see 0-2 (level 3 runs them at 2, several times).
        initial_mapping: Logical qubit -> device qubit (or name) to start from, if given.
        qubit_subset: The device qubits (or names) the circuit may use, if restricted.
        seed: Seeds layout trials and tie-breaking.
        trial_scale: Multiplies the number of layout trials (2 at level 3).
        short_forms: Level 2: decompose doubly controlled gates into their shortest forms (6-CZ
            Toffoli), which use all three pairs and so may need more routing (the driver tries
            both and keeps the fewer CZ).
        existing_moves: Star devices: what to do with MOVEs already in the input.
        lookahead: Star devices: the MOVE pass's look-ahead window.
    """

    level: int = 2
    initial_mapping: Mapping[cirq.Qid, cirq.Qid | str] | None = None
    qubit_subset: tuple[cirq.Qid | str, ...] | None = None
    seed: int = 0
    trial_scale: int = 1
    short_forms: bool = False
    existing_moves: str = "keep"
    lookahead: int = DEFAULT_LOOKAHEAD


@dataclass(frozen=True, eq=False)  # items hold numpy arrays: no meaningful ==
class Compilation:
    """The intermediate form the stages pass along.

    Items are on logical indices (into ``logical``) until :func:`place_and_route`, and on
    physical indices (into ``physical``) after it; see :mod:`.synthesis` for their kinds.

    Attributes:
        circuit: The input circuit; the native output from :func:`synthesise` on.
        device: The device compiled for (the fictional qubit-only one on a star device).
        options: What was asked for.
        logical: The circuit's qubits in index order.
        physical: The device qubits the circuit may use, in index order.
        on_device_qubits: The circuit is written on device qubits: never placed or routed.
        edges: Coupled pairs of ``physical`` indices.
        operations: The flattened operations, one per item of :func:`itemise`.
        short_forms_used: How many gates :func:`itemise` decomposed into a short form.
        items: The items of the current stage.
        terminal: Terminal measurements held back from routing.
        wire: Logical qubit -> wire after the input's SWAPs were elided.
        relabel: Wire -> wire after SWAPs were absorbed into two-qubit blocks.
        layout: Logical (wire) index -> physical index at the start.
        steps: The routed steps over ``items``.
        final_layout: Logical (wire) index -> physical index at the end.
        initial_mapping: Logical qubit -> device qubit at the start (from :func:`finish`).
        final_mapping: Logical qubit -> device qubit at the end (from :func:`finish`).
    """

    circuit: cirq.AbstractCircuit
    device: IQMDevice
    options: CompileOptions
    logical: tuple[cirq.Qid, ...] = ()
    physical: tuple[cirq.Qid, ...] = ()
    on_device_qubits: bool = False
    edges: tuple[tuple[int, int], ...] = ()
    operations: Sequence[cirq.Operation] = ()
    items: list[Item] = field(default_factory=list)
    terminal: list[Item] = field(default_factory=list)
    wire: list[int] = field(default_factory=list)
    relabel: list[int] = field(default_factory=list)
    layout: Sequence[int] = ()
    steps: Sequence[Step] = ()
    final_layout: Sequence[int] = ()
    initial_mapping: dict[cirq.Qid, cirq.Qid] = field(default_factory=dict)
    final_mapping: dict[cirq.Qid, cirq.Qid] = field(default_factory=dict)
    short_forms_used: int = 0


def prepare(
    circuit: cirq.AbstractCircuit, device: IQMDevice, options: CompileOptions
) -> Compilation:
    """Stage 1: the logical qubits and the region of device qubits they may use.

    Raises:
        CompilationError: The options contradict a circuit on device qubits, or the device (or
            ``qubit_subset``) offers too few connected qubits.
        CircuitValidationError: Device and logical qubits are mixed, or a qubit is named like a
            device qubit the device does not have.
    """
    fixed = device_qubits_of(circuit, device)
    if fixed:
        logical = pinned_qubits(fixed, device, options.initial_mapping, options.qubit_subset)
        physical = list(logical)
    else:
        logical = sorted(circuit.all_qubits())
        physical = usable_region(device, options.qubit_subset, len(logical))
    phys_index = {q: i for i, q in enumerate(physical)}
    edges = tuple(
        (phys_index[a], phys_index[b])
        for a, b in device.cz_pairs
        if a in phys_index and b in phys_index
    )
    return Compilation(
        circuit, device, options, tuple(logical), tuple(physical), bool(fixed), edges
    )


def itemise(form: Compilation) -> Compilation:
    """Stage 2: the circuit flattened to 1- and 2-qubit operations, as items on logical indices.

    Raises:
        CompilationError: An operation cannot be compiled (see :func:`.decompose.flatten`).
        CircuitValidationError: A circuit on device qubits uses an uncoupled pair, or a classical
            control reads no single-qubit measurement.
    """
    # The shortest forms of doubly controlled gates need all their pairs coupled: only for
    # placed (routed) qubits, at level 2 (level 0 translates each gate as Cirq does, and
    # level 1 has no block resynthesis to make the routing SWAPs cheap).
    options = form.options
    short_forms = options.short_forms and options.level >= 2 and not form.on_device_qubits
    operations, short_forms_used = flatten_counted(form.circuit, short_forms=short_forms)
    itemizer = Itemizer({q: i for i, q in enumerate(form.logical)})
    items = [itemizer.item(op) for op in operations]
    if form.on_device_qubits:
        check_coupled_pairs(items, form.edges, form.physical, form.device)
    identity = list(range(len(form.logical)))
    return replace(
        form,
        operations=operations,
        items=items,
        wire=identity,
        relabel=list(identity),
        short_forms_used=short_forms_used,
    )


def optimise_logical(form: Compilation) -> Compilation:
    """Stage 3, level 2 only: optimisations before routing, on logical qubits.

    A SWAP of the input only relabels wires (the final mapping reports where each qubit ends
    up), so it costs nothing; consecutive operations on a pair merge into one block; a block
    becomes ``SWAP·block`` where that needs fewer CZ. Device qubits stay where they are written:
    their SWAPs run.
    """
    if form.options.level < 2:
        return form
    items, wire, relabel = form.items, list(form.wire), list(form.relabel)
    if not form.on_device_qubits:
        items = elide_swaps(items, wire)
    items = merge_blocks(items)
    if not form.on_device_qubits:
        items = absorb_swaps(items, relabel)
    return replace(form, operations=(), items=items, wire=wire, relabel=relabel)


def schedule_measurements(form: Compilation) -> Compilation:
    """Stage 4: the device's mid-circuit measurement rule is checked, and terminal measurements
    wait until routing is done, so no SWAP ever touches a measured qubit.

    Raises:
        CircuitValidationError: The circuit acts on a measured qubit and the device does not
            allow mid-circuit measurement.
    """
    check_measurements(form.items, form.device)
    items, terminal = split_terminal_measurements(form.items)
    return replace(form, items=items, terminal=terminal)


def place_and_route(form: Compilation) -> Compilation:
    """Stage 5: the initial layout and the routed steps (SWAPs included).

    Placement and routing are one search: a layout is judged by the SWAPs its routing needs
    (:func:`.placement.best_routing`). A circuit on device qubits is neither placed nor routed.

    Raises:
        CompilationError: ``initial_mapping`` is invalid.
    """
    gate_qubits = [item_qubits(it) for it in form.items]
    if form.on_device_qubits:
        layout = list(range(len(form.logical)))
        return replace(form, layout=layout, steps=list(enumerate(gate_qubits)), final_layout=layout)
    layout, routed = _best_routing(form, gate_qubits)
    return replace(form, layout=layout, steps=routed.steps, final_layout=routed.final_layout)


def _best_routing(
    form: Compilation, gate_qubits: Sequence[tuple[int, ...]]
) -> tuple[list[int], Routed]:
    options = form.options
    two_qubit = [it[0] == "u2" for it in form.items]
    mergeable = [it[0] == "u1" for it in form.items]
    # Level 2: gates that commute may run in any order, whichever the layout makes adjacent.
    classes = item_classes(form.items) if options.level >= 2 else None
    skeleton = Skeleton.build(len(form.logical), gate_qubits, two_qubit, mergeable, classes)
    fixed_layout = None
    if options.initial_mapping is not None:
        phys_index = {q: i for i, q in enumerate(form.physical)}
        fixed_layout = layout_from_mapping(
            options.initial_mapping, form.logical, phys_index, form.device
        )
    return best_routing(
        skeleton,
        Coupling(len(form.physical), form.edges),
        seed=options.seed,
        trials=_trials(options, sum(two_qubit), len(form.physical)),
        # One forward-backward round trip per trial: commuting fronts make each pass dearer,
        # and a second trip gained 0.3 % CZ for a fifth more time (bench_compile).
        refinements=1 if options.level >= 2 else 0,
        fixed_layout=fixed_layout,
    )


def _trials(options: CompileOptions, n_two_qubit: int, n_physical: int) -> int:
    """Layout trials: one below level 2, else sized by ``TRIAL_WORK``."""
    if options.level < 2:
        return 1
    trials = int(options.trial_scale * TRIAL_WORK / max(1, n_two_qubit * n_physical))
    return max(MIN_TRIALS, min(options.trial_scale * MAX_TRIALS, trials))


def synthesise(form: Compilation) -> Compilation:
    """Stage 6: the routed steps as native pulses on the device qubits.

    Two-qubit blocks are resynthesised with at most 3 CZ (level 2), single-qubit runs merge into
    one pulse (level >= 1), and Z rotations become frame changes (:mod:`.synthesis`).
    """
    level = form.options.level
    items = physical_items(form.items, form.steps, form.terminal, form.final_layout)
    native_items = resynthesize_blocks(items, SYNTHESIZER, merge=level >= 2)
    native_ops = to_native(native_items, form.physical, merge=level >= 1)
    return replace(form, circuit=cirq.Circuit(native_ops), items=[], terminal=[])


def physical_items(
    items: Sequence[Item],
    steps: Sequence[Step],
    terminal: Sequence[Item],
    final_layout: Sequence[int],
) -> list[Item]:
    """The routed items on physical indices, SWAPs included, terminal measurements last."""
    out: list[Item] = []
    for g, pq in steps:
        if g < 0:
            out.append(("u2", pq[0], pq[1], SWAP_MATRIX, "swap"))
            continue
        it = items[g]
        kind = it[0]
        if kind == "u2":
            out.append(("u2", pq[0], pq[1], *it[3:]))
        elif kind in MULTI_QUBIT_KINDS:
            out.append((kind, pq, it[2]))
        else:
            out.append((kind, pq[0], it[2]))
    for it in terminal:
        out.append(("m", tuple(final_layout[q] for q in it[1]), it[2]))
    return out


def finish(form: Compilation) -> Compilation:
    """Stage 7: where each logical qubit starts and ends, and the device's check of the output.

    Raises:
        CircuitValidationError: The device rejects the output (an internal error).
    """
    initial, final = qubit_maps(form)
    form.device.validate_circuit(form.circuit)
    return replace(form, initial_mapping=initial, final_mapping=final)


def qubit_maps(
    form: Compilation,
) -> tuple[dict[cirq.Qid, cirq.Qid], dict[cirq.Qid, cirq.Qid]]:
    """Logical qubit -> device qubit at the start and at the end of a routed form."""
    phys, layout, final_layout = form.physical, form.layout, form.final_layout
    wire, relabel = form.wire, form.relabel
    initial = {q: phys[layout[i]] for i, q in enumerate(form.logical)}
    final = {q: phys[final_layout[relabel[wire[i]]]] for i, q in enumerate(form.logical)}
    return initial, final


# ------------------------------------------------------------------------------ star devices


@dataclass(frozen=True)
class StarPlan:
    """How a circuit meets a device with computational resonators (STAR_MOVE.md §7).

    Attributes:
        device: The star device.
        topology: Its resonators and their ``cz`` / ``move`` loci.
        circuit: The input, or (``existing_moves="remove"``) the input without its MOVEs.
        options: What was asked for.
        pinned: The input's own MOVE sandwiches pin it to its qubits: it is neither placed,
            routed nor resynthesised, only completed by :func:`star_pass`.
    """

    device: IQMDevice
    topology: StarTopology
    circuit: cirq.AbstractCircuit
    options: CompileOptions
    pinned: bool

    def fictional_device(self) -> IQMDevice:
        """The qubit-only device the stages compile on: its CZs are the resolvable pairs."""
        return fictional_device(self.device, self.topology)


def fictional_device(device: IQMDevice, topology: StarTopology | None = None) -> IQMDevice:
    """The qubit-only device of a star ``device`` (STAR_MOVE.md §7.1), the same device when it
    has no resonator."""
    if not device.resonators:
        return device
    if topology is None:
        topology = StarTopology.from_architecture(device.architecture)
    return IQMDevice(
        topology.fictional_architecture(device.architecture),
        device.calibration_set_id,
        mid_circuit_measurement=device.mid_circuit_measurement,
    )


def plan_star(
    circuit: cirq.AbstractCircuit, device: IQMDevice, options: CompileOptions
) -> StarPlan:
    """The star stage before the others: read the input's MOVEs (lifted when told to remove them).

    Raises:
        CompilationError: Unknown ``existing_moves``, or an explicit MOVE sandwich holds an
            operation other than ``cz`` on its resonator.
        CircuitValidationError: The input's MOVEs break a sandwich rule.
    """
    if options.existing_moves not in EXISTING_MOVES_MODES:
        raise CompilationError(
            f"existing_moves must be one of {EXISTING_MOVES_MODES}, got {options.existing_moves!r}"
        )
    topology = StarTopology.from_architecture(device.architecture)
    resonators = set(device.resonators)
    explicit = any(
        isinstance(op.gate, IQMMoveGate) or resonators.intersection(op.qubits)
        for op in circuit.all_operations()
    )
    if explicit and options.existing_moves != "remove":
        return StarPlan(device, topology, circuit, options, pinned=True)
    if explicit:
        circuit = _lifted(circuit, topology)
    return StarPlan(device, topology, circuit, options, pinned=False)


def star_pass(plan: StarPlan, compiled: Compilation | None = None) -> Compilation:
    """The last star stage: fictional CZs become MOVEs and resonator CZs, checked by the device.

    Args:
        plan: From :func:`plan_star`.
        compiled: The stages' output on the fictional device; ``None`` for a pinned plan, whose
            input is completed as it is (identity maps).

    Raises:
        CircuitValidationError: A fictional CZ cannot be implemented, or the output is invalid.
    """
    options = plan.options
    if compiled is None:
        instructions = insert_moves(
            circuit_instructions(plan.circuit),
            plan.topology,
            existing_moves=options.existing_moves,
            lookahead=options.lookahead,
        )
        resonators = set(plan.device.resonators)
        identity = {q: q for q in sorted(plan.circuit.all_qubits()) if q not in resonators}
        compiled = Compilation(
            plan.circuit,
            plan.device,
            options,
            initial_mapping=identity,
            final_mapping=dict(identity),
        )
    else:
        instructions = insert_moves(
            circuit_instructions(compiled.circuit), plan.topology, lookahead=options.lookahead
        )
    out = instructions_to_circuit(instructions)
    plan.device.validate_circuit(out)
    return replace(compiled, circuit=out, device=plan.device)


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
