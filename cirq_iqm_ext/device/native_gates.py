"""The native operations of IQM computers on the Cirq side: one table, gate ⇄ instruction.

:data:`NATIVE_OPERATIONS` holds one :class:`NativeOperation` per instruction of the wire format
(:data:`cirq_iqm_ext.wire.models.INSTRUCTION_SPECS`, which says the arity and argument types): the
Cirq gate types that become it, how a gate becomes the instruction's arguments and how arguments
become a gate again. The device's validator and gateset, the serialiser and its sweep template,
the deserialiser and the noise model's gate classification all read it, so they cannot drift.

- ``prx``: ``PhasedXPowGate``, ``XPowGate``, ``YPowGate`` and ``PhasedXZGate`` (whose Z part is
  virtual); arguments ``angle_t`` and ``phase_t`` in full turns (Cirq's exponents are half turns);
- ``cz``: ``cirq.CZ`` (a ``CZPowGate`` with exponent exactly 1);
- ``measure``: ``MeasurementGate``; argument ``key`` (the serialiser renames a repeated key);
- ``move``: :class:`~cirq_iqm_ext.IQMMoveGate`;
- ``delay``: ``WaitGate``; argument ``duration`` in seconds;
- ``barrier``: :class:`~cirq_iqm_ext.IQMBarrierGate`;
- ``reset``: ``ResetChannel``, one per qubit of the locus;
- ``cc_prx``: an X, Y or PhasedX pulse with one classical control; arguments as ``prx``, plus
  ``feedback_qubit`` and ``feedback_key``, which come from the measurement that feeds it.

Besides the table, ``cirq.ZPowGate`` is a *virtual* Z: a frame change folded into the phases of
later pulses, for which nothing is sent (:func:`frame_change`); a global phase is ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import cirq
import sympy

from cirq_iqm_ext.device.barriers import IQMBarrierGate
from cirq_iqm_ext.device.move_gate import MOVE, IQMMoveGate

#: Gates that are one prx pulse as they are (and so can also be a ``cc_prx``).
PRX_PULSE_TYPES: tuple[type[cirq.Gate], ...] = (cirq.PhasedXPowGate, cirq.XPowGate, cirq.YPowGate)
#: Gates that become one ``prx`` (``PhasedXZGate``: a pulse plus a virtual Z).
PRX_GATE_TYPES: tuple[type[cirq.Gate], ...] = (*PRX_PULSE_TYPES, cirq.PhasedXZGate)
#: Virtual Z rotations: frame changes that send nothing and cost nothing.
VIRTUAL_GATE_TYPES: tuple[type[cirq.Gate], ...] = (cirq.ZPowGate,)
#: Gates a native circuit may hold that do nothing observable (dropped when sending).
IGNORED_GATE_TYPES: tuple[type[cirq.Gate], ...] = (cirq.GlobalPhaseGate,)


#: Gate type -> its pulse as ``(exponent, phase_exponent)`` in half turns: the prx mapping.
PULSE_EXPONENTS: dict[type[cirq.Gate], Callable[[Any], tuple[Any, Any]]] = {
    cirq.PhasedXPowGate: lambda g: (g.exponent, g.phase_exponent),
    cirq.XPowGate: lambda g: (g.exponent, 0.0),
    cirq.YPowGate: lambda g: (g.exponent, 0.5),
    cirq.PhasedXZGate: lambda g: (g.x_exponent, g.axis_phase_exponent),
}


def pulse_exponents(gate: cirq.Gate) -> tuple[cirq.TParamVal, cirq.TParamVal]:
    """``(exponent, phase_exponent)`` in half turns of a gate of :data:`PRX_GATE_TYPES`.

    That is the gate as ``PhasedXPowGate(exponent=..., phase_exponent=...)``, global phase aside
    (for a ``PhasedXZGate``: its pulse, without the Z part; see :func:`frame_change`).

    Raises:
        TypeError: ``gate`` is no prx gate.
    """
    getter = PULSE_EXPONENTS.get(type(gate))
    if getter is None:
        for kind, candidate in PULSE_EXPONENTS.items():  # a subclass of a pulse gate
            if isinstance(gate, kind):
                getter = candidate
                break
        else:
            raise TypeError(f"{gate!r} is not a prx pulse")
    return getter(gate)


def frame_change(gate: cirq.Gate | None) -> cirq.TParamVal | None:
    """The virtual Z (half turns) a gate leaves on its qubit after its pulse, if any.

    ``ZPowGate(exponent=c)`` is only the frame change ``c``; ``PhasedXZGate(x, z, a)`` is
    ``Z**z · PhasedX(a, x)``, a pulse and then the frame change ``z``; other gates have none.
    """
    if isinstance(gate, cirq.ZPowGate):
        return gate.exponent
    if isinstance(gate, cirq.PhasedXZGate):
        return gate.z_exponent
    return None


def prx_turns(
    exponent: cirq.TParamVal, phase_exponent: cirq.TParamVal
) -> tuple[cirq.TParamVal, cirq.TParamVal]:
    """``(angle_t, phase_t)``: the full turns of ``prx`` for Cirq's half-turn exponents."""
    return exponent / 2, phase_exponent / 2


def prx_args(exponent: cirq.TParamVal, phase_exponent: cirq.TParamVal) -> dict[str, Any]:
    """``prx`` arguments (full turns) of a pulse given by Cirq's half-turn exponents."""
    angle_t, phase_t = prx_turns(exponent, phase_exponent)
    return {"angle_t": angle_t, "phase_t": phase_t}


def prx_gate(args: Mapping[str, Any]) -> cirq.Gate:
    """The ``PhasedXPowGate`` of ``prx`` (or ``cc_prx``) arguments."""
    return cirq.PhasedXPowGate(exponent=2 * args["angle_t"], phase_exponent=2 * args["phase_t"])


def delay_seconds(gate: cirq.WaitGate) -> cirq.TParamVal:
    """A wait's duration in seconds, the unit of ``delay`` (a sympy expression if symbolic)."""
    return gate.duration.total_nanos() / 1e9


def _wait_gate(args: Mapping[str, Any], num_qubits: int) -> cirq.Gate:
    seconds = args["duration"]
    nanos = seconds * 1e9 if isinstance(seconds, sympy.Basic) else float(seconds) * 1e9
    return cirq.WaitGate(cirq.Duration(nanos=nanos), num_qubits=num_qubits)


def _is_whole_cz(gate: cirq.Gate) -> bool:
    exponent = getattr(gate, "exponent", None)
    if type(exponent) is float or type(exponent) is int:  # the common case, without a protocol
        return exponent == 1
    return not cirq.is_parameterized(exponent) and exponent == 1


def _always(gate: cirq.Gate) -> bool:
    return True


def _no_args(gate: cirq.Gate) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class NativeOperation:
    """One native instruction as Cirq sees it.

    Attributes:
        name: The instruction name on the wire (a key of ``INSTRUCTION_SPECS``).
        gate_types: Cirq gate types that become it (subclasses included).
        gate_args: A gate -> the instruction's arguments in wire units (numbers or, for a
            parameterised gate, sympy expressions).
        build: Arguments and locus size -> the Cirq gate.
        accepts: Whether a gate of ``gate_types`` is native as it is (a ``CZPowGate`` only with
            exponent 1).
        per_qubit: The Cirq gate acts on one qubit, once per qubit of the locus (``reset``).
        controlled: The instruction is a classically controlled pulse (``cc_prx``): the gate
            runs when the measurement named by the ``feedback_key`` argument read 1.
        circuit_args: Arguments that come from the circuit around the gate, not from the gate
            (``cc_prx``'s ``feedback_qubit`` and ``feedback_key``).
        family: The one gate a ``cirq.Gateset`` should accept (``cirq.CZ``), when not all of
            ``gate_types`` are native.
    """

    name: str
    gate_types: tuple[type[cirq.Gate], ...]
    gate_args: Callable[[cirq.Gate], dict[str, Any]]
    build: Callable[[Mapping[str, Any], int], cirq.Gate]
    accepts: Callable[[cirq.Gate], bool] = _always
    per_qubit: bool = False
    controlled: bool = False
    circuit_args: tuple[str, ...] = ()
    family: cirq.Gate | None = None

    def matches(self, gate: cirq.Gate | None) -> bool:
        """Whether ``gate`` becomes this instruction as it is."""
        return isinstance(gate, self.gate_types) and self.accepts(gate)

    def operations(
        self, args: Mapping[str, Any], qubits: Sequence[cirq.Qid]
    ) -> list[cirq.Operation]:
        """The Cirq operations of this instruction with ``args`` on ``qubits``."""
        if self.per_qubit:
            return [self.build(args, 1).on(q) for q in qubits]
        op = self.build(args, len(qubits)).on(*qubits)
        if self.controlled:
            op = op.with_classical_controls(args["feedback_key"])
        return [op]


def _prx_args(gate: cirq.Gate) -> dict[str, Any]:
    return prx_args(*pulse_exponents(gate))


def _table(*operations: NativeOperation) -> Mapping[str, NativeOperation]:
    return MappingProxyType({op.name: op for op in operations})


#: The native instructions by name (see the module docstring).
NATIVE_OPERATIONS: Mapping[str, NativeOperation] = _table(
    NativeOperation("prx", PRX_GATE_TYPES, _prx_args, lambda args, n: prx_gate(args)),
    NativeOperation(
        "cz",
        (cirq.CZPowGate,),
        _no_args,
        lambda args, n: cirq.CZ,
        accepts=_is_whole_cz,
        family=cirq.CZ,
    ),
    NativeOperation(
        "measure",
        (cirq.MeasurementGate,),
        lambda gate: {"key": gate.key},  # type: ignore[attr-defined]
        lambda args, n: cirq.MeasurementGate(n, key=args["key"]),
    ),
    NativeOperation("move", (IQMMoveGate,), _no_args, lambda args, n: MOVE),
    NativeOperation(
        "delay",
        (cirq.WaitGate,),
        lambda gate: {"duration": delay_seconds(gate)},  # type: ignore[arg-type]
        _wait_gate,
    ),
    NativeOperation("barrier", (IQMBarrierGate,), _no_args, lambda args, n: IQMBarrierGate(n)),
    NativeOperation(
        "reset", (cirq.ResetChannel,), _no_args, lambda args, n: cirq.ResetChannel(), per_qubit=True
    ),
    NativeOperation(
        "cc_prx",
        PRX_PULSE_TYPES,
        _prx_args,
        lambda args, n: prx_gate(args),
        controlled=True,
        circuit_args=("feedback_qubit", "feedback_key"),
    ),
)

#: Entries a gate on its own (no classical control) can be, tried in this order.
_UNCONTROLLED = tuple(op for op in NATIVE_OPERATIONS.values() if not op.controlled)

#: Every gate type a native circuit may hold (some only with certain parameters, e.g. CZ).
NATIVE_GATE_TYPES: tuple[type[cirq.Gate], ...] = (
    *(t for op in _UNCONTROLLED for t in op.gate_types),
    *VIRTUAL_GATE_TYPES,
    *IGNORED_GATE_TYPES,
)


def native_operation(gate: cirq.Gate | None) -> NativeOperation | None:
    """The table entry a gate (on its own, no classical control) is of by its type.

    A gate of the entry's type may still not be native as it is (``CZ**0.5``); see
    :meth:`NativeOperation.matches` and :func:`instruction_name`.
    """
    for op in _UNCONTROLLED:
        if isinstance(gate, op.gate_types):
            return op
    return None


def instruction_name(gate: cirq.Gate | None) -> str | None:
    """The instruction a native gate becomes; ``None`` for a virtual Z, a global phase or a gate
    that is not native."""
    op = native_operation(gate)
    return op.name if op is not None and op.accepts(gate) else None  # type: ignore[arg-type]


def operation_instruction_name(operation: cirq.Operation) -> str | None:
    """The instruction a native operation becomes (``cc_prx`` for a classically controlled one);
    ``None`` as for :func:`instruction_name`."""
    if operation.classical_controls:
        return "cc_prx"
    return instruction_name(operation.untagged.gate)


def is_virtual(gate: cirq.Gate | None) -> bool:
    """Whether ``gate`` is a virtual Z (a frame change: nothing is sent for it)."""
    return isinstance(gate, VIRTUAL_GATE_TYPES)


def is_native(gate: cirq.Gate | None) -> bool:
    """Whether a native circuit may hold ``gate`` as it is: it becomes one instruction, is a
    virtual Z, or is a global phase."""
    return isinstance(gate, VIRTUAL_GATE_TYPES + IGNORED_GATE_TYPES) or (
        instruction_name(gate) is not None
    )


def gate_to_instruction(gate: cirq.Gate) -> tuple[str, dict[str, Any]]:
    """``(name, args)`` of the instruction a native gate becomes (without ``circuit_args`` that
    need the circuit, e.g. a ``cc_prx``'s feedback; a measurement keeps its own key).

    Raises:
        ValueError: ``gate`` is not one instruction (a virtual Z, a global phase, not native).
    """
    op = native_operation(gate)
    if op is None or not op.accepts(gate):
        raise ValueError(f"{gate!r} is not a native IQM instruction")
    return op.name, op.gate_args(gate)


def instruction_operations(
    name: str, args: Mapping[str, Any], qubits: Sequence[cirq.Qid]
) -> list[cirq.Operation]:
    """The Cirq operations of the instruction ``name`` with ``args`` on ``qubits``.

    Raises:
        KeyError: ``name`` is no native instruction.
    """
    return NATIVE_OPERATIONS[name].operations(args, qubits)


def gateset_families() -> tuple[type[cirq.Gate] | cirq.Gate, ...]:
    """What ``cirq.Gateset(...)`` needs to accept the native gates: a type, or the one gate where
    only that gate of its type is native (``cirq.CZ``)."""
    families: list[type[cirq.Gate] | cirq.Gate] = []
    for op in _UNCONTROLLED:
        families.extend(op.gate_types if op.family is None else (op.family,))
    return (*families, *VIRTUAL_GATE_TYPES, *IGNORED_GATE_TYPES)


__all__ = [
    "IGNORED_GATE_TYPES",
    "NATIVE_GATE_TYPES",
    "NATIVE_OPERATIONS",
    "PRX_GATE_TYPES",
    "PRX_PULSE_TYPES",
    "VIRTUAL_GATE_TYPES",
    "NativeOperation",
    "delay_seconds",
    "frame_change",
    "gate_to_instruction",
    "gateset_families",
    "instruction_name",
    "instruction_operations",
    "is_native",
    "is_virtual",
    "native_operation",
    "operation_instruction_name",
    "prx_args",
    "prx_gate",
    "pulse_exponents",
]
