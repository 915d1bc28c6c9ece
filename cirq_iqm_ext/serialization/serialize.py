"""Native Cirq circuits ⇄ IQM instructions.

The serialiser does no decomposition: a circuit must already be native, which is the compiler's
job (:func:`cirq_iqm_ext.transpile`). Each operation becomes one instruction, as the native-gate
table of :mod:`cirq_iqm_ext.device.native_gates` says:
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
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cirq
import numpy as np
import sympy

from cirq_iqm_ext.device.dynamic import controlled_pulse
from cirq_iqm_ext.device.native_gates import (
    IGNORED_GATE_TYPES,
    NATIVE_OPERATIONS,
    PRX_GATE_TYPES,
    PRX_PULSE_TYPES,
    PULSE_EXPONENTS,
    frame_change,
    is_virtual,
    native_operation,
    prx_args,
    pulse_exponents,
)
from cirq_iqm_ext.errors import CircuitValidationError, ModelValidationError, SerializationError
from cirq_iqm_ext.serialization.floats import NonFiniteNumberError, float_reprs
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
    # The exact type first: isinstance with Cirq's ABCs runs Python code.
    if type(qubit) is cirq.NamedQubit or isinstance(qubit, cirq.NamedQubit):
        return qubit.name
    return str(qubit)


#: Texts of the hot loop shared by every template that sends default qubit names (no
#: ``qubit_names``): a batch of circuits on one device names the same (interned) qubits again and
#: again. Keyed by ``id``; :data:`_SHARED_QUBITS` holds every qubit a key names and is filled
#: first and never emptied, so an id found is that very qubit. Bounded: once it holds
#: :data:`_SHARED_BOUND` qubits, templates keep their own caches.
_SHARED_QUBITS: dict[int, cirq.Qid] = {}
_SHARED_PRX: dict[int, str] = {}
_SHARED_CZ: dict[tuple[int, int], str] = {}
#: ids of a locus -> (its JSON text, its wire names), e.g. a measurement of every qubit.
_SHARED_LOCI: dict[tuple[int, ...], tuple[str, tuple[str, ...]]] = {}
_SHARED_BOUND = 4096


def _fill_numbers(text: str, numbers: Sequence[str]) -> str:
    """``text`` with its number places (:data:`_NUMBER_PLACE`) filled by ``numbers``, in order."""
    parts = text.split(_NUMBER_PLACE)
    if len(parts) != len(numbers) + 1:  # cannot happen: the places are only ours
        raise SerializationError("Internal error: the prx numbers do not match their places")
    pieces = [""] * (2 * len(numbers) + 1)
    pieces[::2] = parts
    pieces[1::2] = numbers
    return "".join(pieces)


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
#: A plain prx of the hot loop, with a place for each of its two numbers: a NUL, which no JSON
#: text made here holds (every string goes through the JSON encoder, which escapes it).
_NUMBER_PLACE = "\x00"
_PRX_NUMBERS = '{"name":"prx","qubits":[%s],"args":{"angle_t":\x00,"phase_t":\x00}}'
#: Exact types formatted inline on the hot path (their subclasses take the general path).
#: The pulse gates the hot loop formats inline (``PhasedXZGate`` also moves the frame).
_PULSE_EXPONENTS = {kind: PULSE_EXPONENTS[kind] for kind in PRX_PULSE_TYPES}
_CZ = NATIVE_OPERATIONS["cz"]

#: ``json.dumps`` of a ``str``: the function it ends in (no encoder object made per call).
_json_string: Callable[[str], str] = json.encoder.encode_basestring_ascii


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
        # id(qubit) -> (wire name, its JSON text); ``_named`` holds each such qubit, so an id
        # found here is that qubit.
        self._wire: dict[int, tuple[str, str]] = {}
        self._named: list[cirq.Qid] = []
        self.measurements: dict[str, MeasurementInfo] = {}
        #: Cirq key -> its wire keys, for keys measured more than once.
        self.repeated: dict[str, list[str]] = {}
        self._circuit = circuit
        self._instances: dict[str, list[str]] = {}
        self._keys_in_use: set[str] | None = None  # every Cirq key, found when a key repeats
        # Cirq key -> (wire key, fragment index, qubit names) of its latest measurement so far.
        self._latest: dict[str, tuple[str, int, tuple[str, ...]]] = {}
        # Virtual Z per qubit, in half turns (absent: none).
        self._frames: dict[cirq.Qid, Any] = {}
        try:
            joined = self._add_circuit(circuit, qubit_names or {})
        except NonFiniteNumberError:
            raise _non_finite_error(circuit, name) from None
        if not self._fragments:
            raise SerializationError(f"Circuit {name!r} has no operations IQM could run")
        # The instructions' text when no argument is symbolic (then _fragments is not read again).
        self._joined = None if self._symbolic else joined or ",".join(self._fragments)
        self.parameter_names: frozenset[str] = frozenset(
            s for slot in self._slots for s in slot.symbols
        )

    #: Whether plain-number ``prx`` pulses and CZs take the inline hot loop (:meth:`_add_fast`).
    #: ``False`` sends every operation through the general path (:meth:`_add_other`), the
    #: reference the hot loop is tested against; the JSON text is the same either way.
    fast_path: bool = True

    def _add_circuit(
        self, circuit: cirq.AbstractCircuit, wire_names: Mapping[cirq.Qid, str]
    ) -> str | None:
        """Every operation's instruction, in order; the joined text if already made, or None."""
        if self.fast_path:
            return self._add_fast(circuit, wire_names)
        for moment_index, moment in enumerate(circuit):
            for op in moment.operations:
                self._add_other(op, moment_index, wire_names)
        return None

    def _add_fast(
        self, circuit: cirq.AbstractCircuit, wire_names: Mapping[cirq.Qid, str]
    ) -> str | None:
        """The hot loop of a large batch, the same text as the general path.

        Operations are told apart by their gate's exact type (``is``, the cheapest test; a
        subclass takes the general path). Texts are cached by qubit identity (hashing a
        NamedQubit runs Python code), across templates when names are the default ones;
        plain-number prx pulses and CZs are handled inline. A plain prx is first a pattern with
        two number places; the numbers of the whole circuit are printed at once afterwards
        (:func:`.floats.float_reprs`) and put into their places in the joined text.

        Returns:
            The joined instructions, or ``None`` if they were not joined here.
        """
        # Long on purpose: one loop over every operation, inlined so that no call per operation
        # is made on the common path (a call costs about a tenth of the loop).
        frames = self._frames
        fragments = self._fragments
        append = fragments.append
        # Caches by id(qubit) (see _SHARED_QUBITS; a template's own hold their qubits in _named).
        shared = not wire_names and len(_SHARED_QUBITS) < _SHARED_BOUND
        prx_patterns: dict[int, str] = _SHARED_PRX if shared else {}
        cz_texts: dict[tuple[int, int], str] = _SHARED_CZ if shared else {}
        numbers: list[float] = []  # angle_t, phase_t of each prx pattern, in order
        number = numbers.append
        cz, cz_pow, phased_x = cirq.CZ, cirq.CZPowGate, cirq.PhasedXPowGate
        exponents_of: dict[Any, Any] = _PULSE_EXPONENTS  # the prx mapping, by exact type
        for moment_index, moment in enumerate(circuit):
            for op in moment.operations:
                gate = op.gate
                kind = type(gate)
                if kind is phased_x:  # the compiler's pulse, the most common operation
                    exponent = gate.exponent  # type: ignore[union-attr]
                    phase = gate.phase_exponent  # type: ignore[union-attr]
                elif gate is cz or (kind is cz_pow and gate.exponent == 1):  # type: ignore[union-attr]
                    a, b = op.qubits
                    text = cz_texts.get((id(a), id(b)))
                    if text is None:
                        text = _CZ_JSON % (
                            self._json_name(a, wire_names),
                            self._json_name(b, wire_names),
                        )
                        if shared:
                            _SHARED_QUBITS[id(a)] = a  # held before their text is shared
                            _SHARED_QUBITS[id(b)] = b
                        cz_texts[id(a), id(b)] = text
                    append(text)
                    continue
                elif kind in exponents_of:
                    exponent, phase = exponents_of[kind](gate)
                else:
                    self._add_other(op, moment_index, wire_names)
                    continue
                qubit = op.qubits[0]
                if frames:
                    frame = frames.get(qubit)
                    if frame is not None:
                        phase = phase - frame
                # Floats are formatted here; ints, symbols and numpy scalars take _add_prx.
                if type(exponent) is not float or type(phase) is not float:
                    self._add_prx(qubit, exponent, phase, wire_names)
                    continue
                pattern = prx_patterns.get(id(qubit))
                if pattern is None:
                    pattern = _PRX_NUMBERS % self._json_name(qubit, wire_names)
                    if shared:
                        _SHARED_QUBITS[id(qubit)] = qubit  # held before its text is shared
                    prx_patterns[id(qubit)] = pattern
                append(pattern)
                # Half turns to full turns, as native_gates.prx_turns (inlined: the hot path).
                number(exponent / 2)
                number(phase / 2)
        texts = float_reprs(numbers)
        if not self._symbolic:
            return _fill_numbers(",".join(fragments), texts)
        if texts:  # fragments stay apart: the symbolic ones are filled per sweep point
            position = 0
            for index, fragment in enumerate(fragments):
                if _NUMBER_PLACE in fragment:
                    fragments[index] = _fill_numbers(fragment, texts[position : position + 2])
                    position += 2
        return None

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
        """The qubit's wire name as JSON text (``qubit_names``' entry, or its default name)."""
        entry = self._wire.get(id(qubit))
        if entry is None:
            name = (wire_names.get(qubit) if wire_names else None) or _qubit_name(qubit)
            self._named.append(qubit)  # held: its id keys the entry
            entry = self._wire[id(qubit)] = (name, _json_string(name))
        return entry[1]

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
        number = float(value)
        if not math.isfinite(number):
            raise NonFiniteNumberError(0, number)
        return number, False

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
        # A "%" in a name is escaped: the pattern is %-formatted again with the numbers.
        pattern = _PRX_PATTERN % self._json_name(qubit, wire_names).replace("%", "%%")
        args = prx_args(exponent, phase_exponent)
        self._add_symbolic(pattern, [(args["angle_t"], ANGLE), (args["phase_t"], PHASE)])

    def _add_other(
        self, op: cirq.Operation, moment_index: int, wire_names: Mapping[cirq.Qid, str]
    ) -> None:
        """An operation off the hot path, by its entry in the native-gate table."""
        if isinstance(op.untagged, cirq.CircuitOperation):
            raise SerializationError(
                f"moment {moment_index}: {op!r} is a sub-circuit; compile or flatten it"
            )
        if op.classical_controls:
            self._add_controlled(op, moment_index, wire_names)
            return
        gate = op.gate
        native = native_operation(gate)
        if native is None:
            self._add_unlisted(op, moment_index)
            return
        assert gate is not None
        if not native.accepts(gate):  # only cz asks more than its type: exponent exactly 1
            raise SerializationError(
                f"moment {moment_index}: {op!r} is a partial CZ (exponent "
                f"{getattr(gate, 'exponent', None)}); IQM runs only CZ with exponent 1. Compile "
                "the circuit (compile=True) to decompose it"
            )
        if native.name == "prx":
            # A subclass (e.g. cirq.Rx), a gate with a global shift or a PhasedXZGate.
            self._add_pulse(op.qubits[0], gate, wire_names)
            return
        locus, names = self._locus(op.qubits, wire_names)
        if native.name == "measure":
            self._add_measure(op, native.gate_args(gate)["key"], locus, names, moment_index)
        elif native.name == "delay":
            self._add_symbolic(
                _DELAY_PATTERN % locus.replace("%", "%%"),
                [(native.gate_args(gate)["duration"], DURATION)],
            )
        else:
            self._add_plain(native.name, op.qubits, locus)

    def _add_unlisted(self, op: cirq.Operation, moment_index: int) -> None:
        """A gate that is no instruction: a virtual Z turns its qubit's frame, a global phase is
        dropped, anything else is refused."""
        gate = op.gate
        if is_virtual(gate):
            q = op.qubits[0]
            self._frames[q] = _add_frame(self._frames.get(q, 0.0), frame_change(gate))
            return
        if isinstance(gate, IGNORED_GATE_TYPES) or (gate is None and not op.qubits):
            return
        raise SerializationError(
            f"moment {moment_index}: {op!r} has no IQM instruction (IQM runs prx, cz, measure, "
            "delay, barrier and move, plus virtual Z rotations). Compile the circuit first "
            "(IQMSampler(compile=True) or cirq_iqm_ext.transpile)"
        )

    def _add_pulse(
        self, qubit: cirq.Qid, gate: cirq.Gate, wire_names: Mapping[cirq.Qid, str]
    ) -> None:
        """A gate of the ``prx`` entry: its pulse, then the virtual Z it leaves (PhasedXZ)."""
        exponent, phase = pulse_exponents(gate)
        frame = self._frames.get(qubit, 0.0)
        change = frame_change(gate)
        # PhasedXZ(x, z, a) = Z**z · PhasedX(a, x); with x = 0 it is only a virtual Z.
        if change is None or not (_is_plain_number(exponent) and exponent == 0):
            self._add_prx(qubit, exponent, phase - frame, wire_names)
        if change is not None:
            self._frames[qubit] = _add_frame(frame, change)

    def _locus(
        self, qubits: Sequence[cirq.Qid], wire_names: Mapping[cirq.Qid, str]
    ) -> tuple[str, tuple[str, ...]]:
        """The JSON text of a locus (names joined by commas) and its wire names."""
        ids = tuple(map(id, qubits))
        shared = not wire_names
        if shared:
            entry = _SHARED_LOCI.get(ids)
            if entry is not None:
                return entry
        locus = ",".join(self._json_name(q, wire_names) for q in qubits)
        entry = (locus, tuple(self._wire[i][0] for i in ids))
        if shared and len(_SHARED_QUBITS) < _SHARED_BOUND and len(_SHARED_LOCI) < _SHARED_BOUND:
            for qubit in qubits:
                _SHARED_QUBITS[id(qubit)] = qubit  # held before their text is shared
            _SHARED_LOCI[ids] = entry
        return entry

    def _add_measure(
        self,
        op: cirq.Operation,
        key: str,
        locus: str,
        names: tuple[str, ...],
        moment_index: int,
    ) -> None:
        """A ``measure`` under a key unique on the wire; its columns go to :attr:`measurements`."""
        gate = op.gate
        assert isinstance(gate, cirq.MeasurementGate)
        if gate.confusion_map:
            raise SerializationError(
                f"moment {moment_index}: {op!r} has a confusion map, which IQM cannot run"
            )
        wire_key = self._wire_key(key)
        mask = tuple(gate.full_invert_mask()) if any(gate.invert_mask) else ()
        self.measurements[wire_key] = MeasurementInfo(
            wire_key, names, mask if any(mask) else (), key
        )
        if self._frames:
            for q in op.qubits:
                # After a measurement the qubit is in a basis state: its frame is a global phase.
                self._frames.pop(q, None)
        # A feedback_key is added to this fragment if a cc_prx reads it (_add_controlled).
        self._latest[key] = (wire_key, len(self._fragments), names)
        args = '{"key": %s}' % _json_string(wire_key)  # json.dumps({"key": wire_key})
        self._fragments.append(f'{{"name":"measure","qubits":[{locus}],"args":{args}}}')

    def _add_plain(self, name: str, qubits: Sequence[cirq.Qid], locus: str) -> None:
        """An instruction without arguments (``cz``, ``barrier``, ``reset``, ``move``)."""
        frames = self._frames
        if name == "reset":
            for q in qubits:
                frames.pop(q, None)  # |0> after a reset: a frame is a global phase there
        elif name == "move":
            # The state moves between qubit and resonator, and its frame moves with it.
            a, b = qubits
            fa, fb = frames.pop(a, None), frames.pop(b, None)
            if fa is not None:
                frames[b] = fa
            if fb is not None:
                frames[a] = fb
        self._fragments.append(f'{{"name":"{name}","qubits":[{locus}],"args":{{}}}}')

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
            fed = json.dumps({"key": feedback_key, "feedback_key": feedback_key})
            self._fragments[fragment] = measure[: measure.rindex('"args":')] + f'"args":{fed}}}'

        assert pulse.gate is not None  # controlled_pulse checked it is a prx pulse
        exponent, phase = pulse_exponents(pulse.gate)
        qubit = pulse.qubits[0]
        args = prx_args(exponent, phase - self._frames.get(qubit, 0.0))

        def literal(text: str) -> str:
            return json.dumps(text).replace("%", "%%")  # the pattern is %-formatted later

        pattern = _CC_PRX_PATTERN % (
            self._json_name(qubit, wire_names).replace("%", "%%"),
            literal(feedback_qubit),
            literal(feedback_key),
        )
        self._add_symbolic(pattern, [(args["angle_t"], ANGLE), (args["phase_t"], PHASE)])

    @property
    def is_parameterized(self) -> bool:
        """Whether any argument depends on a symbol."""
        return bool(self._slots)

    @property
    def qubits(self) -> tuple[str, ...]:
        """Qubit names the instructions use, in order of first use (read from their text)."""
        if self._joined is not None:
            texts = [self._joined]
        else:
            texts = list(self._fragments)
            for inst in self._symbolic:  # any number shows the qubits
                texts[inst.fragment] = inst.pattern % ((0.0,) * len(inst.values))
        instructions = json.loads("[" + ",".join(texts) + "]")
        return tuple(dict.fromkeys(q for inst in instructions for q in inst["qubits"]))

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
        default_head = '{"name":%s,"instructions":[' % _json_string(self.name)
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
                else ('{"name":%s,"instructions":[' % _json_string(names[point]))
            )
            tail = (
                "]}"
                if metadata is None
                else "]%s}" % (',"metadata":' + json.dumps(metadata[point], separators=(",", ":")))
            )
            out.append("".join((head, body, tail)))  # one copy of a long body
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


def _plain_numbers(gate: cirq.Gate | None) -> list[Any]:
    """The numbers a gate puts on the wire or into a frame (symbolic ones left out)."""
    if isinstance(gate, PRX_GATE_TYPES):
        numbers = [*pulse_exponents(gate), frame_change(gate)]
    elif is_virtual(gate):
        numbers = [frame_change(gate)]
    elif isinstance(gate, cirq.WaitGate):
        numbers = [native_operation(gate).gate_args(gate)["duration"]]  # type: ignore[union-attr]
    else:
        return []
    return [n for n in numbers if n is not None and not cirq.is_parameterized(n)]


def _non_finite_error(circuit: cirq.AbstractCircuit, name: str) -> SerializationError:
    """The error for a circuit with a ``nan`` or infinite number, naming its first such gate."""
    for moment_index, moment in enumerate(circuit):
        for op in moment.operations:
            untagged = op.without_classical_controls()
            if any(not math.isfinite(float(n)) for n in _plain_numbers(untagged.gate)):
                return SerializationError(
                    f"Circuit {name!r}, moment {moment_index}: {op!r} has a number that is nan or "
                    "infinite, which cannot be sent; give the gate finite exponents (or duration)"
                )
    return SerializationError(
        f"Circuit {name!r} has a number that is nan or infinite, which cannot be sent"
    )


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
    """The Cirq operation(s) of one instruction on the given qubits (the native-gate table's).

    Raises:
        SerializationError: The instruction has no entry in the table.
    """
    native = NATIVE_OPERATIONS.get(instruction.name)
    if native is None:
        raise SerializationError(f"Instruction {instruction.name!r} has no Cirq operation here")
    return native.operations(instruction.args, qubits)
