"""Native Cirq circuits ⇄ IQM instructions.

The serialiser does no decomposition: a circuit must already be native (``cirq.PhasedXPowGate``,
``cirq.XPowGate``, ``cirq.YPowGate``, ``cirq.CZ``, ``cirq.MeasurementGate``, and on star devices
:class:`~cirq_iqm_ext.move.IQMMoveGate` as ``move``; global phases are dropped), which is the
compiler's job (:func:`cirq_iqm_ext.transpiler.transpile`).

A parameterised circuit is serialised once into a :class:`CircuitTemplate`: the instruction dicts
are built once, and each sweep point only fills in the numbers of the symbolic arguments, evaluated
for all points at once with numpy. That is what makes a 100-point sweep cost about as much as one
circuit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cirq
import numpy as np
import sympy

from cirq_iqm_ext.errors import CircuitValidationError
from cirq_iqm_ext.models import Circuit, Instruction
from cirq_iqm_ext.move import MOVE, IQMMoveGate

#: Key of this package's entry in a circuit's metadata (what rebuilding results needs).
METADATA_KEY = "cirq_iqm_ext"


class SerializationError(CircuitValidationError):
    """A circuit contains an operation that has no IQM instruction; compile it first."""


@dataclass(frozen=True)
class MeasurementInfo:
    """How one measurement key's columns come back.

    Attributes:
        key: The measurement key.
        qubits: Qubit names in column order.
        invert_mask: Columns whose bits are flipped after measurement (Cirq's ``invert_mask``).
    """

    key: str
    qubits: tuple[str, ...]
    invert_mask: tuple[bool, ...] = ()


def _turns(value: cirq.TParamVal) -> float | sympy.Expr:
    """Converts a Cirq exponent (half turns) to the protocol's full turns."""
    if isinstance(value, sympy.Basic):
        return value / 2
    return float(value) / 2


def _qubit_name(qubit: cirq.Qid) -> str:
    return qubit.name if isinstance(qubit, cirq.NamedQubit) else str(qubit)


def _prx_args(gate: cirq.Gate) -> tuple[Any, Any]:
    if isinstance(gate, cirq.PhasedXPowGate):
        return _turns(gate.exponent), _turns(gate.phase_exponent)
    if isinstance(gate, cirq.XPowGate):
        return _turns(gate.exponent), 0.0
    if isinstance(gate, cirq.YPowGate):
        return _turns(gate.exponent), 0.25
    raise TypeError(gate)


def _native_instruction(
    op: cirq.Operation, moment_index: int
) -> tuple[str, tuple[str, ...], dict[str, Any], MeasurementInfo | None] | None:
    """(name, qubit names, args, measurement info) of a native operation; None for global phase."""
    gate = op.gate
    names = tuple(_qubit_name(q) for q in op.qubits)
    if isinstance(gate, cirq.PhasedXPowGate | cirq.XPowGate | cirq.YPowGate):
        angle, phase = _prx_args(gate)
        return "prx", names, {"angle_t": angle, "phase_t": phase}, None
    if isinstance(gate, cirq.CZPowGate):
        if not cirq.is_parameterized(gate) and gate.exponent == 1:
            return "cz", names, {}, None
        raise SerializationError(
            f"moment {moment_index}: {op!r} is a partial CZ (exponent {gate.exponent}); IQM runs "
            "only CZ with exponent 1. Compile the circuit (compile=True) to decompose it"
        )
    if isinstance(gate, cirq.MeasurementGate):
        if gate.confusion_map:
            raise SerializationError(
                f"moment {moment_index}: {op!r} has a confusion map, which IQM cannot run"
            )
        mask = tuple(gate.full_invert_mask())
        info = MeasurementInfo(gate.key, names, mask if any(mask) else ())
        return "measure", names, {"key": gate.key}, info
    if isinstance(gate, IQMMoveGate):
        return "move", names, {}, None
    if isinstance(gate, cirq.GlobalPhaseGate) or (gate is None and not op.qubits):
        return None
    raise SerializationError(
        f"moment {moment_index}: {op!r} has no IQM instruction (IQM runs prx, cz, measure and "
        "move). Compile the circuit first (IQMSampler(compile=True) or cirq_iqm_ext.transpile)"
    )


def _evaluator(expression: sympy.Expr) -> tuple[tuple[str, ...], Callable[..., Any]]:
    symbols = tuple(sorted(expression.free_symbols, key=lambda s: s.name))
    function = sympy.lambdify(symbols, expression, modules="numpy")
    return tuple(s.name for s in symbols), function


@dataclass(frozen=True)
class _Slot:
    """One symbolic expression and how to evaluate it for many sweep points at once."""

    symbols: tuple[str, ...]
    function: Callable[..., Any]
    expression: sympy.Expr
    is_phase: bool


@dataclass(frozen=True)
class _SymbolicPrx:
    """A ``prx`` with at least one symbolic argument: each argument a number or a slot index."""

    fragment: int
    qubit_json: str
    angle: float | int
    phase: float | int
    angle_is_slot: bool
    phase_is_slot: bool


_PRX_JSON = '{"name":"prx","qubits":[%s],"args":{"angle_t":%r,"phase_t":%r}}'
_CZ_JSON = '{"name":"cz","qubits":[%s,%s],"args":{}}'


def _is_plain_number(value: Any) -> bool:
    return type(value) is float or type(value) is int


class CircuitTemplate:
    """A native circuit serialised once; :meth:`resolve_many` fills in numbers for sweep points.

    Instructions are kept as ready JSON text; only ``prx`` arguments that depend on symbols are
    formatted per sweep point, from values computed for all points at once with numpy.

    Args:
        circuit: A native Cirq circuit (see the module docstring).
        name: The circuit's name in the run request.
        qubit_names: Optional map from Cirq qubit to the name sent on the wire; by default a
            ``NamedQubit``'s name, or ``str(qubit)`` for other qubits.

    Raises:
        SerializationError: An operation is not native, or a measurement key is repeated.
    """

    def __init__(
        self,
        circuit: cirq.AbstractCircuit,
        name: str = "circuit",
        qubit_names: Mapping[cirq.Qid, str] | None = None,
    ):
        self.name = name
        self._fragments: list[str] = []
        self._symbolic: list[_SymbolicPrx] = []
        self._slots: list[_Slot] = []
        self._slot_of: dict[tuple[sympy.Expr, bool], int] = {}
        self._qubit_json: dict[cirq.Qid, str] = {}
        self.measurements: dict[str, MeasurementInfo] = {}
        wire_names = qubit_names or {}
        fragments = self._fragments
        append = fragments.append
        # The hot loop of a large batch: qubit prefixes are cached by object identity (hashing a
        # NamedQubit runs Python code), and plain-number prx gates are formatted inline.
        prx_prefix: dict[int, tuple[cirq.Qid, str]] = {}
        phased_x, x_pow, y_pow, cz_pow = (
            cirq.PhasedXPowGate,
            cirq.XPowGate,
            cirq.YPowGate,
            cirq.CZPowGate,
        )
        for moment_index, moment in enumerate(circuit):
            for op in moment.operations:
                gate = op.gate
                kind = type(gate)
                if kind is phased_x or kind is x_pow or kind is y_pow:
                    assert gate is not None
                    qubit = op.qubits[0]
                    exponent = gate.exponent  # type: ignore[attr-defined]
                    if kind is phased_x:
                        phase = gate.phase_exponent  # type: ignore[attr-defined]
                    else:
                        phase = 0.0 if kind is x_pow else 0.5
                    entry = prx_prefix.get(id(qubit))
                    if entry is None or entry[0] is not qubit:
                        entry = prx_prefix[id(qubit)] = (
                            qubit,
                            '{"name":"prx","qubits":[%s],"args":{"angle_t":'
                            % self._json_name(qubit, wire_names),
                        )
                    if (type(exponent) is float or type(exponent) is int) and (
                        type(phase) is float or type(phase) is int
                    ):
                        append(f'{entry[1]}{exponent / 2!r},"phase_t":{phase / 2!r}}}}}')
                    else:
                        self._add_prx(qubit, exponent, phase, wire_names)
                elif (
                    kind is cz_pow
                    and _is_plain_number(cz_exponent := getattr(gate, "exponent", None))
                    and cz_exponent == 1
                ):
                    a, b = op.qubits
                    append(
                        _CZ_JSON % (self._json_name(a, wire_names), self._json_name(b, wire_names))
                    )
                else:
                    self._add_other(op, moment_index, wire_names)
        if not self._fragments:
            raise SerializationError(f"Circuit {name!r} has no operations IQM could run")
        self._joined = None if self._symbolic else ",".join(self._fragments)
        self.parameter_names: frozenset[str] = frozenset(
            s for slot in self._slots for s in slot.symbols
        )

    def _json_name(self, qubit: cirq.Qid, wire_names: Mapping[cirq.Qid, str]) -> str:
        text = self._qubit_json.get(qubit)
        if text is None:
            text = self._qubit_json[qubit] = json.dumps(wire_names.get(qubit) or _qubit_name(qubit))
        return text

    def _argument(self, value: Any, is_phase: bool) -> tuple[float | int, bool]:
        """A prx argument in full turns: (number, False) or (slot index, True)."""
        if _is_plain_number(value):
            return value / 2, False
        if isinstance(value, sympy.Basic) and value.free_symbols:
            key = (value, is_phase)
            slot = self._slot_of.get(key)
            if slot is None:
                symbols, function = _evaluator(value / 2)
                slot = self._slot_of[key] = len(self._slots)
                self._slots.append(_Slot(symbols, function, value / 2, is_phase))
            return slot, True
        return float(value) / 2, False

    def _add_prx(
        self,
        qubit: cirq.Qid,
        exponent: Any,
        phase_exponent: Any,
        wire_names: Mapping[cirq.Qid, str],
    ) -> None:
        qubit_json = self._json_name(qubit, wire_names)
        if _is_plain_number(exponent) and _is_plain_number(phase_exponent):
            self._fragments.append(_PRX_JSON % (qubit_json, exponent / 2, phase_exponent / 2))
            return
        angle, angle_is_slot = self._argument(exponent, False)
        phase, phase_is_slot = self._argument(phase_exponent, True)
        if not angle_is_slot and not phase_is_slot:
            self._fragments.append(_PRX_JSON % (qubit_json, float(angle), float(phase)))
            return
        self._symbolic.append(
            _SymbolicPrx(
                len(self._fragments), qubit_json, angle, phase, angle_is_slot, phase_is_slot
            )
        )
        self._fragments.append("")  # formatted per sweep point

    def _add_other(
        self, op: cirq.Operation, moment_index: int, wire_names: Mapping[cirq.Qid, str]
    ) -> None:
        if isinstance(op.untagged, cirq.CircuitOperation):
            raise SerializationError(
                f"moment {moment_index}: {op!r} is a sub-circuit; compile or flatten it"
            )
        native = _native_instruction(op, moment_index)
        if native is None:
            return
        inst_name, _, args, info = native
        if inst_name == "prx":  # a subclass or a gate with a global shift
            gate = op.gate
            assert gate is not None
            angle, phase = args["angle_t"], args["phase_t"]
            self._add_prx(op.qubits[0], angle * 2, phase * 2, wire_names)
            return
        qubits = [self._json_name(q, wire_names) for q in op.qubits]
        if info is not None:
            if info.key in self.measurements:
                raise SerializationError(
                    f"moment {moment_index}: measurement key {info.key!r} is used more than "
                    "once; give each measurement its own key"
                )
            names = tuple(json.loads(q) for q in qubits)
            self.measurements[info.key] = MeasurementInfo(info.key, names, info.invert_mask)
        self._fragments.append(
            f'{{"name":"{inst_name}","qubits":[{",".join(qubits)}],"args":{json.dumps(args)}}}'
        )

    @property
    def is_parameterized(self) -> bool:
        """Whether any argument depends on a symbol."""
        return bool(self._slots)

    @property
    def qubits(self) -> tuple[str, ...]:
        """Qubit names used, in order of first use."""
        return tuple(json.loads(text) for text in self._qubit_json.values())

    def _slot_values(self, resolvers: Sequence[cirq.ParamResolver]) -> list[np.ndarray]:
        count = len(resolvers)
        out = []
        for slot in self._slots:
            columns = []
            for symbol in slot.symbols:
                column = []
                for resolver in resolvers:
                    value = resolver.value_of(symbol, recursive=True)
                    if isinstance(value, sympy.Basic) and not value.is_number:
                        raise ValueError(
                            f"Circuit {self.name!r}: the parameter {symbol!r} has no value at a "
                            "sweep point; give it a value in the sweep or the resolver"
                        )
                    column.append(complex(value))
                array = np.asarray(column)
                columns.append(array.real if not np.any(array.imag) else array)
            with np.errstate(all="ignore"):  # a nan or inf is reported below, with context
                raw = slot.function(*columns)
            evaluated = np.broadcast_to(np.asarray(raw, dtype=complex), (count,))
            if np.any(np.abs(evaluated.imag) > 1e-12) or not np.all(np.isfinite(evaluated)):
                raise ValueError(
                    f"Circuit {self.name!r}: {slot.expression} is not a finite real number at some "
                    "sweep point"
                )
            real = evaluated.real
            out.append(np.mod(real, 1.0) if slot.is_phase else real)
        return out

    def resolve_json_many(
        self,
        resolvers: Sequence[cirq.ParamResolver],
        metadata: Sequence[Mapping[str, Any]] | None = None,
        names: Sequence[str] | None = None,
    ) -> list[str]:
        """The JSON text of the circuit at many sweep points, evaluating each symbol once for all.

        Args:
            resolvers: One resolver per sweep point.
            metadata: Optional metadata dict per point.
            names: Optional circuit name per point (default: the template's name).

        Raises:
            ValueError: A symbol has no value, or a value is not a finite real number.
        """
        values = self._slot_values(resolvers)
        out = []
        default_head = '{"name":%s,"instructions":[' % json.dumps(self.name)
        for point in range(len(resolvers)):
            if self._joined is not None:
                body = self._joined
            else:
                fragments = list(self._fragments)
                for prx in self._symbolic:
                    angle = values[int(prx.angle)][point] if prx.angle_is_slot else prx.angle
                    phase = values[int(prx.phase)][point] if prx.phase_is_slot else prx.phase
                    fragments[prx.fragment] = _PRX_JSON % (
                        prx.qubit_json,
                        float(angle),
                        float(phase),
                    )
                body = ",".join(fragments)
            head = (
                default_head
                if names is None
                else ('{"name":%s,"instructions":[' % json.dumps(names[point]))
            )
            tail = (
                "]}"
                if metadata is None
                else "]%s}" % (',"metadata":' + json.dumps(metadata[point], separators=(",", ":")))
            )
            out.append(head + body + tail)
        return out

    def resolve_many(
        self,
        resolvers: Sequence[cirq.ParamResolver],
        metadata: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Like :meth:`resolve_json_many`, as JSON-ready dicts."""
        return [json.loads(text) for text in self.resolve_json_many(resolvers, metadata)]

    def resolve(self, resolver: cirq.ParamResolverOrSimilarType = None) -> dict[str, Any]:
        """The JSON-ready circuit dict at one parameter point."""
        return self.resolve_many([cirq.ParamResolver(resolver)])[0]

    def to_model(self, resolver: cirq.ParamResolverOrSimilarType = None) -> Circuit:
        """The validated transfer-format :class:`~cirq_iqm_ext.models.Circuit` at one point."""
        return Circuit.from_dict(self.resolve(resolver))


def serialize_circuit(
    circuit: cirq.AbstractCircuit,
    name: str = "circuit",
    resolver: cirq.ParamResolverOrSimilarType = None,
) -> Circuit:
    """Serialises one native circuit to a transfer-format circuit.

    Raises:
        SerializationError: An operation is not native.
    """
    return CircuitTemplate(circuit, name).to_model(resolver)


def deserialize_circuit(
    circuit: Circuit, qubit_mapping: Mapping[str, str] | None = None
) -> cirq.Circuit:
    """Rebuilds a Cirq circuit from transfer-format instructions (barriers are dropped).

    Args:
        circuit: The transfer-format circuit.
        qubit_mapping: Optional logical -> physical names, applied to the qubits.
    """
    ops: list[cirq.Operation] = []
    for inst in circuit.instructions:
        qubits = [cirq.NamedQubit((qubit_mapping or {}).get(q, q)) for q in inst.qubits]
        ops.extend(instruction_to_operations(inst, qubits))
    return cirq.Circuit(ops)


def instruction_to_operations(
    instruction: Instruction, qubits: Sequence[cirq.Qid]
) -> list[cirq.Operation]:
    """The Cirq operation(s) of one instruction on the given qubits (none for a barrier)."""
    if instruction.name == "prx":
        return [
            cirq.PhasedXPowGate(
                exponent=2 * instruction.args["angle_t"],
                phase_exponent=2 * instruction.args["phase_t"],
            ).on(*qubits)
        ]
    if instruction.name == "cz":
        return [cirq.CZ(*qubits)]
    if instruction.name == "measure":
        return [cirq.measure(*qubits, key=instruction.args["key"])]
    if instruction.name == "barrier":
        return []
    if instruction.name == "move":
        return [MOVE.on(*qubits)]
    raise SerializationError(f"Instruction {instruction.name!r} has no Cirq operation here")
