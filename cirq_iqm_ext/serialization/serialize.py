"""Native Cirq circuits ⇄ IQM instructions.

The serialiser does no decomposition: a circuit must already be native, which is the compiler's
job (:func:`cirq_iqm_ext.transpile`). Each operation becomes one instruction:
``cirq.PhasedXPowGate`` / ``XPowGate`` / ``YPowGate`` → ``prx``; ``cirq.CZ`` → ``cz``;
``cirq.MeasurementGate`` → ``measure``; ``cirq.WaitGate`` → ``delay`` (seconds);
:class:`~cirq_iqm_ext.IQMBarrierGate` → ``barrier``; on star devices
:class:`~cirq_iqm_ext.IQMMoveGate` → ``move``. ``cirq.ZPowGate`` is a virtual Z (a frame
change folded into later ``prx`` phases) and ``cirq.PhasedXZGate`` one ``prx`` plus a virtual Z;
global phases are dropped.

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

from cirq_iqm_ext.device.barriers import IQMBarrierGate
from cirq_iqm_ext.device.dynamic import controlled_pulse, pulse_parameters
from cirq_iqm_ext.device.move_gate import MOVE, IQMMoveGate
from cirq_iqm_ext.errors import CircuitValidationError, ModelValidationError, SerializationError
from cirq_iqm_ext.wire.models import Circuit, Instruction

#: Key of this package's entry in a circuit's metadata (what rebuilding results needs).
METADATA_KEY = "cirq_iqm_ext"


@dataclass(frozen=True)
class MeasurementInfo:
    """How one measurement key's columns come back.

    Attributes:
        key: The measurement's key on the wire (unique in its circuit).
        qubits: Qubit names in column order.
        invert_mask: Columns whose bits are flipped after measurement (Cirq's ``invert_mask``).
        cirq_key: The Cirq key it records (a key Cirq measures more than once gets one wire key
            per measurement: ``k``, ``k__1``, ...).
    """

    key: str
    qubits: tuple[str, ...]
    invert_mask: tuple[bool, ...] = ()
    cirq_key: str = ""


def _qubit_name(qubit: cirq.Qid) -> str:
    return qubit.name if isinstance(qubit, cirq.NamedQubit) else str(qubit)


def _is_plain_number(value: Any) -> bool:
    return type(value) is float or type(value) is int


def _add_frame(frame: Any, exponent: Any) -> Any:
    """A virtual Z frame (half turns) plus ``exponent``; numbers stay reduced to [0, 2)."""
    total = frame + exponent
    if _is_plain_number(total):
        return total % 2.0
    if isinstance(total, sympy.Basic) and total.is_number:
        return float(total) % 2.0
    return total


def _evaluator(expression: sympy.Expr) -> tuple[tuple[str, ...], Callable[..., Any]]:
    symbols = tuple(sorted(expression.free_symbols, key=lambda s: s.name))
    function = sympy.lambdify(symbols, expression, modules="numpy")
    return tuple(s.name for s in symbols), function


#: What a symbolic slot holds: a prx angle or phase (full turns), or a delay (seconds).
ANGLE, PHASE, DURATION = "angle", "phase", "duration"


@dataclass(frozen=True)
class _Slot:
    """One symbolic expression and how to evaluate it for many sweep points at once."""

    symbols: tuple[str, ...]
    function: Callable[..., Any]
    expression: sympy.Expr
    kind: str


@dataclass(frozen=True)
class _SymbolicInstruction:
    """An instruction with at least one symbolic argument, formatted per sweep point.

    ``pattern`` is the instruction's JSON with one ``%r`` per argument; each argument is a number
    or, where ``is_slot`` says so, the index of a :class:`_Slot`.
    """

    fragment: int
    pattern: str
    values: tuple[float | int, ...]
    is_slot: tuple[bool, ...]


_PRX_PATTERN = '{"name":"prx","qubits":[%s],"args":{"angle_t":%%r,"phase_t":%%r}}'
_DELAY_PATTERN = '{"name":"delay","qubits":[%s],"args":{"duration":%%r}}'
_CC_PRX_PATTERN = (
    '{"name":"cc_prx","qubits":[%s],"args":{"angle_t":%%r,"phase_t":%%r,'
    '"feedback_qubit":%s,"feedback_key":%s}}'
)
_CZ_JSON = '{"name":"cz","qubits":[%s,%s],"args":{}}'


class CircuitTemplate:
    """A native circuit serialised once; :meth:`resolve_many` fills in numbers for sweep points.

    Instructions are kept as ready JSON text; only arguments that depend on symbols (``prx``
    angles and phases, ``delay`` durations) are formatted per sweep point, from values computed
    for all points at once with numpy.

    Virtual Z rotations (``cirq.ZPowGate`` and the Z part of ``cirq.PhasedXZGate``) are frame
    changes, as on the hardware: each is folded exactly into the phases of the later ``prx``
    pulses on its qubit (``PhasedX(p, e)·Z**c = Z**c·PhasedX(p - c, e)``; CZ, delays and barriers
    commute with it, a MOVE carries it to the resonator and back). What is left of a frame at a
    measurement or at the end acts on no outcome and sends nothing.

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
        self._symbolic: list[_SymbolicInstruction] = []
        self._slots: list[_Slot] = []
        self._slot_of: dict[tuple[sympy.Expr, str], int] = {}
        self._qubit_json: dict[cirq.Qid, str] = {}
        self.measurements: dict[str, MeasurementInfo] = {}
        #: Cirq key -> its wire keys, for keys measured more than once.
        self.repeated: dict[str, list[str]] = {}
        self._circuit = circuit
        self._instances: dict[str, list[str]] = {}
        self._keys_in_use: set[str] | None = None  # every Cirq key, found when a key repeats
        # Cirq key -> (wire key, fragment index, qubit names) of its latest measurement so far.
        self._latest: dict[str, tuple[str, int, tuple[str, ...]]] = {}
        wire_names = qubit_names or {}
        # Virtual Z per qubit, in half turns (absent: none).
        frames: dict[cirq.Qid, Any] = {}
        self._frames = frames
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
                    if frames:
                        frame = frames.get(qubit)
                        if frame is not None:
                            phase = phase - frame
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

    def _wire_key(self, key: str) -> str:
        """The measurement's key on the wire: the Cirq key, or for a repeat one that clashes with
        no other key of the circuit (found by a scan only then, off the common path)."""
        instances = self._instances.setdefault(key, [])
        wire_key = key
        n = len(instances)
        if n:
            if self._keys_in_use is None:
                self._keys_in_use = {
                    op.gate.key
                    for op in self._circuit.all_operations()
                    if isinstance(op.gate, cirq.MeasurementGate)
                }
                self._keys_in_use.update(w for ws in self._instances.values() for w in ws)
            while wire_key == key or wire_key in self._keys_in_use:
                wire_key = f"{key}__{n}"
                n += 1
            self._keys_in_use.add(wire_key)
        elif self._keys_in_use is not None:
            self._keys_in_use.add(wire_key)
        instances.append(wire_key)
        if len(instances) > 1:
            self.repeated[key] = instances
        return wire_key

    def _json_name(self, qubit: cirq.Qid, wire_names: Mapping[cirq.Qid, str]) -> str:
        text = self._qubit_json.get(qubit)
        if text is None:
            text = self._qubit_json[qubit] = json.dumps(wire_names.get(qubit) or _qubit_name(qubit))
        return text

    def _argument(self, value: Any, kind: str) -> tuple[float | int, bool]:
        """An argument already in wire units: (number, False) or (slot index, True)."""
        if isinstance(value, sympy.Basic) and value.free_symbols:
            key = (value, kind)
            slot = self._slot_of.get(key)
            if slot is None:
                symbols, function = _evaluator(value)
                slot = self._slot_of[key] = len(self._slots)
                self._slots.append(_Slot(symbols, function, value, kind))
            return slot, True
        return float(value), False

    def _add_symbolic(self, pattern: str, arguments: Sequence[tuple[Any, str]]) -> None:
        """Appends an instruction whose arguments (in wire units) may be symbolic."""
        resolved = [self._argument(value, kind) for value, kind in arguments]
        if not any(is_slot for _, is_slot in resolved):
            self._fragments.append(pattern % tuple(float(v) for v, _ in resolved))
            return
        self._symbolic.append(
            _SymbolicInstruction(
                len(self._fragments),
                pattern,
                tuple(v for v, _ in resolved),
                tuple(is_slot for _, is_slot in resolved),
            )
        )
        self._fragments.append("")  # formatted per sweep point

    def _add_prx(
        self,
        qubit: cirq.Qid,
        exponent: Any,
        phase_exponent: Any,
        wire_names: Mapping[cirq.Qid, str],
    ) -> None:
        """A prx from Cirq's half-turn exponents (numbers or sympy expressions)."""
        pattern = _PRX_PATTERN % self._json_name(qubit, wire_names)
        self._add_symbolic(pattern, [(exponent / 2, ANGLE), (phase_exponent / 2, PHASE)])

    def _add_other(
        self, op: cirq.Operation, moment_index: int, wire_names: Mapping[cirq.Qid, str]
    ) -> None:
        if isinstance(op.untagged, cirq.CircuitOperation):
            raise SerializationError(
                f"moment {moment_index}: {op!r} is a sub-circuit; compile or flatten it"
            )
        gate = op.gate
        frames = self._frames
        if op.classical_controls:
            self._add_controlled(op, moment_index, wire_names)
            return
        if isinstance(gate, cirq.ZPowGate):
            q = op.qubits[0]
            frames[q] = _add_frame(frames.get(q, 0.0), gate.exponent)
            return
        if isinstance(gate, cirq.PhasedXPowGate | cirq.XPowGate | cirq.YPowGate):
            # A subclass (e.g. cirq.Rx) or a gate with a global shift: the same pulse.
            if isinstance(gate, cirq.PhasedXPowGate):
                phase = gate.phase_exponent
            else:
                phase = 0.0 if isinstance(gate, cirq.XPowGate) else 0.5
            q = op.qubits[0]
            self._add_prx(q, gate.exponent, phase - frames.get(q, 0.0), wire_names)
            return
        if isinstance(gate, cirq.PhasedXZGate):
            # PhasedXZ(x, z, a) = Z**z · PhasedX(a, x): the pulse, then a virtual Z.
            q = op.qubits[0]
            frame = frames.get(q, 0.0)
            if not (_is_plain_number(gate.x_exponent) and gate.x_exponent == 0):
                self._add_prx(q, gate.x_exponent, gate.axis_phase_exponent - frame, wire_names)
            frames[q] = _add_frame(frame, gate.z_exponent)
            return
        if isinstance(gate, cirq.CZPowGate):
            raise SerializationError(
                f"moment {moment_index}: {op!r} is a partial CZ (exponent {gate.exponent}); IQM "
                "runs only CZ with exponent 1. Compile the circuit (compile=True) to decompose it"
            )
        qubits = [self._json_name(q, wire_names) for q in op.qubits]
        locus = ",".join(qubits)
        if isinstance(gate, cirq.MeasurementGate):
            if gate.confusion_map:
                raise SerializationError(
                    f"moment {moment_index}: {op!r} has a confusion map, which IQM cannot run"
                )
            wire_key = self._wire_key(gate.key)
            mask = tuple(gate.full_invert_mask())
            names = tuple(json.loads(q) for q in qubits)
            self.measurements[wire_key] = MeasurementInfo(
                wire_key, names, mask if any(mask) else (), gate.key
            )
            for q in op.qubits:
                # After a measurement the qubit is in a basis state: its frame is a global phase.
                frames.pop(q, None)
            # A feedback_key is added to this fragment if a cc_prx reads it (_add_controlled).
            self._latest[gate.key] = (wire_key, len(self._fragments), names)
            args = json.dumps({"key": wire_key})
            self._fragments.append(f'{{"name":"measure","qubits":[{locus}],"args":{args}}}')
            return
        if isinstance(gate, cirq.WaitGate):
            seconds = gate.duration.total_nanos() / 1e9
            self._add_symbolic(_DELAY_PATTERN % locus, [(seconds, DURATION)])
            return
        if isinstance(gate, IQMBarrierGate):
            self._fragments.append(f'{{"name":"barrier","qubits":[{locus}],"args":{{}}}}')
            return
        if isinstance(gate, cirq.ResetChannel):
            for q in op.qubits:
                frames.pop(q, None)  # |0> after a reset: a frame is a global phase there
            self._fragments.append(f'{{"name":"reset","qubits":[{locus}],"args":{{}}}}')
            return
        if isinstance(gate, IQMMoveGate):
            # The state moves between qubit and resonator, and its frame moves with it.
            a, b = op.qubits
            fa, fb = frames.pop(a, None), frames.pop(b, None)
            if fa is not None:
                frames[b] = fa
            if fb is not None:
                frames[a] = fb
            self._fragments.append(f'{{"name":"move","qubits":[{locus}],"args":{{}}}}')
            return
        if isinstance(gate, cirq.GlobalPhaseGate) or (gate is None and not op.qubits):
            return
        raise SerializationError(
            f"moment {moment_index}: {op!r} has no IQM instruction (IQM runs prx, cz, measure, "
            "delay, barrier and move, plus virtual Z rotations). Compile the circuit first "
            "(IQMSampler(compile=True) or cirq_iqm_ext.transpile)"
        )

    def _add_controlled(
        self, op: cirq.Operation, moment_index: int, wire_names: Mapping[cirq.Qid, str]
    ) -> None:
        """A classically controlled pulse as ``cc_prx``, fed by its key's latest measurement."""
        try:
            pulse, key = controlled_pulse(op)
        except CircuitValidationError as error:
            raise SerializationError(f"moment {moment_index}: {error}") from None
        latest = self._latest.get(str(key))
        if latest is None:
            raise SerializationError(
                f"moment {moment_index}: {op!r} is conditioned on {str(key)!r} before any "
                "measurement of it; measure it first"
            )
        feedback_key, fragment, names = latest
        if len(names) != 1:
            raise SerializationError(
                f"moment {moment_index}: {op!r} is fed by {str(key)!r}, a measurement of "
                f"{len(names)} qubits; IQM feeds forward single-qubit measurements"
            )
        feedback_qubit = names[0]
        measure = self._fragments[fragment]
        if '"feedback_key"' not in measure:
            args = json.dumps({"key": feedback_key, "feedback_key": feedback_key})
            self._fragments[fragment] = measure[: measure.rindex('"args":')] + f'"args":{args}}}'

        exponent, phase = pulse_parameters(pulse.gate)
        qubit = pulse.qubits[0]
        phase = phase - self._frames.get(qubit, 0.0)

        def literal(text: str) -> str:
            return json.dumps(text).replace("%", "%%")  # the pattern is %-formatted later

        pattern = _CC_PRX_PATTERN % (
            self._json_name(qubit, wire_names),
            literal(feedback_qubit),
            literal(feedback_key),
        )
        self._add_symbolic(pattern, [(exponent / 2, ANGLE), (phase / 2, PHASE)])

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
                        raise ModelValidationError(
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
                raise ModelValidationError(
                    f"Circuit {self.name!r}: {slot.expression} is not a finite real number at some "
                    "sweep point"
                )
            real = evaluated.real
            if slot.kind == DURATION and np.any(real < 0):
                raise ModelValidationError(
                    f"Circuit {self.name!r}: the wait {slot.expression} s is negative at some "
                    "sweep point"
                )
            out.append(np.mod(real, 1.0) if slot.kind == PHASE else real)
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
            ModelValidationError: A symbol has no value, or a value is not a finite real number
                (or a negative wait).
        """
        values = self._slot_values(resolvers)
        out = []
        default_head = '{"name":%s,"instructions":[' % json.dumps(self.name)
        for point in range(len(resolvers)):
            if self._joined is not None:
                body = self._joined
            else:
                fragments = list(self._fragments)
                for inst in self._symbolic:
                    fragments[inst.fragment] = inst.pattern % tuple(
                        float(values[int(v)][point]) if is_slot else float(v)
                        for v, is_slot in zip(inst.values, inst.is_slot, strict=True)
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
        """The validated transfer-format :class:`~cirq_iqm_ext.Circuit` at one point."""
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
    """Rebuilds a Cirq circuit from transfer-format instructions.

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
    """The Cirq operation(s) of one instruction on the given qubits."""
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
    if instruction.name == "reset":
        return [cirq.ResetChannel().on(q) for q in qubits]
    if instruction.name == "cc_prx":
        pulse = cirq.PhasedXPowGate(
            exponent=2 * instruction.args["angle_t"],
            phase_exponent=2 * instruction.args["phase_t"],
        )
        # The key names a measure's feedback_key, which this package makes equal to its key.
        return [pulse.on(*qubits).with_classical_controls(instruction.args["feedback_key"])]
    if instruction.name == "barrier":
        return [IQMBarrierGate(len(qubits)).on(*qubits)]
    if instruction.name == "delay":
        nanos = float(instruction.args["duration"]) * 1e9
        return [cirq.WaitGate(cirq.Duration(nanos=nanos), num_qubits=len(qubits)).on(*qubits)]
    if instruction.name == "move":
        return [MOVE.on(*qubits)]
    raise SerializationError(f"Instruction {instruction.name!r} has no Cirq operation here")
