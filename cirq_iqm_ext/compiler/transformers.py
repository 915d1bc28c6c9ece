"""The compiler's stages as Cirq transformers, to compose by hand.

:func:`~cirq_iqm_ext.compiler.transpiler.transpile` runs every stage in one call. These wrappers
let a user run them one at a time, the way Cirq's own transformers compose, and look at (or
change) the circuit between them::

    maps = QubitMaps()
    circuit = decompose_to_two_qubit_gates(circuit, context=context)
    circuit = route_to_device(circuit, device=device, context=context, maps=maps)
    circuit = synthesize_to_native(circuit, device=device, context=context)
    circuit = insert_move_gates(circuit, device=device, context=context)  # star devices only
    device.validate_circuit(circuit)

The result equals the input up to global phase and the qubit maps that :func:`route_to_device`
reports in ``maps``. On a star device (e.g. Deneb) routing and synthesis target the fictional
qubit-only device whose CZ pairs a resonator can implement, and :func:`insert_move_gates` turns
its CZs into MOVE sandwiches. The stages act on the whole circuit (``CircuitOperation``s are
unrolled), so a ``context`` serves Cirq's transformer logging; its ``tags_to_ignore`` and
``deep`` do not apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import cirq

from cirq_iqm_ext.compiler.decompose import flatten
from cirq_iqm_ext.compiler.region import device_qubits_of
from cirq_iqm_ext.compiler.stages import (
    Compilation,
    CompileOptions,
    fictional_device,
    itemise,
    place_and_route,
    prepare,
    qubit_maps,
    schedule_measurements,
)
from cirq_iqm_ext.compiler.star import DEFAULT_LOOKAHEAD, insert_moves_in_circuit
from cirq_iqm_ext.compiler.transpiler import transpile
from cirq_iqm_ext.device.iqm_device import IQMDevice
from cirq_iqm_ext.errors import CompilationError

__all__ = [
    "QubitMaps",
    "decompose_to_two_qubit_gates",
    "insert_move_gates",
    "route_to_device",
    "synthesize_to_native",
]


@dataclass
class QubitMaps:
    """Where :func:`route_to_device` put the logical qubits; it fills this in.

    Attributes:
        initial: Logical qubit -> device qubit at the start of the routed circuit.
        final: Logical qubit -> device qubit at its end (after the routing SWAPs).
    """

    initial: dict[cirq.Qid, cirq.Qid] = field(default_factory=dict)
    final: dict[cirq.Qid, cirq.Qid] = field(default_factory=dict)


def _required(device: IQMDevice | None, stage: str) -> IQMDevice:
    if not isinstance(device, IQMDevice):
        raise TypeError(f"{stage} needs the device to compile for (device=...), got {device!r}")
    return device


@cirq.transformer
def decompose_to_two_qubit_gates(
    circuit: cirq.AbstractCircuit, *, context: cirq.TransformerContext | None = None
) -> cirq.Circuit:
    """The circuit as 1- and 2-qubit gates, measurements, resets, waits and barriers.

    Three-qubit and larger gates are decomposed, ``CircuitOperation``s unrolled, symbolic
    two-qubit gates rewritten to CZ and symbolic rotations, global phases dropped
    (:func:`.decompose.flatten`).

    Raises:
        CompilationError: An operation cannot be compiled (a noise channel, say).
    """
    return cirq.Circuit(flatten(circuit))


@cirq.transformer
def route_to_device(
    circuit: cirq.AbstractCircuit,
    *,
    context: cirq.TransformerContext | None = None,
    device: IQMDevice | None = None,
    initial_mapping: Mapping[cirq.Qid, cirq.Qid | str] | None = None,
    qubit_subset: Iterable[cirq.Qid | str] | None = None,
    seed: int | None = None,
    maps: QubitMaps | None = None,
) -> cirq.Circuit:
    """Places the logical qubits on ``device`` and inserts ``cirq.SWAP``s where a pair is apart.

    The gates keep their kind (nothing is merged or resynthesised); a circuit already written on
    device qubits is returned decomposed, on the same qubits. Placement and routing are those of
    :func:`.transpiler.transpile` at level 2.

    Args:
        circuit: Any circuit :func:`decompose_to_two_qubit_gates` accepts.
        context: Cirq's transformer context (logging).
        device: The device to route for.
        initial_mapping: Logical qubit -> device qubit (or its name) to start from.
        qubit_subset: Restrict the circuit to these device qubits (or names).
        seed: Seeds layout trials and tie-breaking (``None`` means ``0``).
        maps: Filled in with where each logical qubit starts and ends.

    Raises:
        CompilationError, CircuitValidationError: As :func:`.transpiler.transpile`.
        TypeError: No device is given.
    """
    target = fictional_device(_required(device, "route_to_device"))
    options = CompileOptions(
        initial_mapping=initial_mapping,
        qubit_subset=None if qubit_subset is None else tuple(qubit_subset),
        seed=0 if seed is None else int(seed),
    )
    itemised = itemise(prepare(circuit, target, options))
    routed = place_and_route(schedule_measurements(itemised))
    out = cirq.Circuit(_routed_operations(itemised, routed))
    if maps is not None:
        maps.initial, maps.final = qubit_maps(replace(routed, circuit=out))
    return out


def _routed_operations(itemised: Compilation, routed: Compilation) -> list[cirq.Operation]:
    """The flattened operations of ``itemised`` in ``routed``'s order, on device qubits."""
    # Each item of itemise() stands for one operation; the later stages move items, never copy.
    operation_of = {id(it): op for it, op in zip(itemised.items, itemised.operations, strict=True)}
    physical = routed.physical
    out: list[cirq.Operation] = []
    for g, pq in routed.steps:
        if g < 0:
            out.append(cirq.SWAP(physical[pq[0]], physical[pq[1]]))
            continue
        op = operation_of[id(routed.items[g])]
        # A classically controlled pulse's item also names its measured qubit: drop it.
        out.append(op.with_qubits(*(physical[p] for p in pq[: len(op.qubits)])))
    for it in routed.terminal:
        op = operation_of[id(it)]
        out.append(op.with_qubits(*(physical[routed.final_layout[q]] for q in it[1])))
    return out


@cirq.transformer
def synthesize_to_native(
    circuit: cirq.AbstractCircuit,
    *,
    context: cirq.TransformerContext | None = None,
    device: IQMDevice | None = None,
    optimization_level: int = 2,
) -> cirq.Circuit:
    """A circuit on coupled device qubits as native ``prx``/``cz``/``measure`` pulses.

    Nothing is placed or routed: the circuit (e.g. the output of :func:`route_to_device`) must be
    written on device qubits with every two-qubit gate on a coupled pair. Its SWAPs run.

    Args:
        circuit: The circuit on device qubits.
        context: Cirq's transformer context (logging).
        device: The device (on a star device, its fictional qubit-only device is the target).
        optimization_level: As :func:`.transpiler.transpile`: ``0`` pulse by pulse, ``1`` merge
            single-qubit runs, ``2`` and ``3`` also resynthesise two-qubit blocks.

    Raises:
        CompilationError: The circuit is on logical qubits, or cannot be compiled.
        CircuitValidationError: A two-qubit gate acts on an uncoupled pair.
        TypeError: No device is given.
    """
    target = fictional_device(_required(device, "synthesize_to_native"))
    if circuit.all_qubits() and not device_qubits_of(circuit, target):
        raise CompilationError(
            "synthesize_to_native needs a circuit on device qubits: place it first with "
            "route_to_device"
        )
    return transpile(circuit, target, optimization_level=optimization_level).circuit


@cirq.transformer
def insert_move_gates(
    circuit: cirq.AbstractCircuit,
    *,
    context: cirq.TransformerContext | None = None,
    device: IQMDevice | None = None,
    existing_moves: str = "keep",
    lookahead: int = DEFAULT_LOOKAHEAD,
) -> cirq.Circuit:
    """Star devices: each CZ between two qubits becomes MOVEs and a CZ with the resonator.

    The circuit must be native (e.g. the output of :func:`synthesize_to_native`). On a device
    without resonators it is returned unchanged.

    Args:
        circuit: The native circuit on the device's qubits.
        context: Cirq's transformer context (logging).
        device: The device.
        existing_moves: For MOVEs already in the input: ``"keep"``, ``"remove"`` or ``"trust"``
            (see :func:`.transpiler.transpile`).
        lookahead: The MOVE pass's look-ahead window (0 is greedy).

    Raises:
        CircuitValidationError: A CZ cannot be implemented, or the input's MOVEs break a
            sandwich rule.
        ValueError: An operation is not native.
        TypeError: No device is given.
    """
    device = _required(device, "insert_move_gates")
    if not device.resonators:
        return circuit.unfreeze(copy=True)
    return insert_moves_in_circuit(
        circuit, device.architecture, existing_moves=existing_moves, lookahead=lookahead
    )
