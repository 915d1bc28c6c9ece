"""MOVE through a computational resonator: the star topology and the MOVE-insertion pass.

Star chips (IQM Deneb) couple every qubit to a computational resonator and have no qubit-qubit
couplers: a two-qubit gate is a ``cz(qubit, resonator)`` and a qubit's state is carried into and
out of the resonator with ``move(qubit, resonator)`` (STAR_MOVE.md is the contract).

* :class:`~cirq_iqm_ext.IQMMoveGate` is ``move`` in Cirq, always on
  ``(qubit, resonator)``.
* :class:`StarTopology` reads an architecture: which fictional qubit-qubit CZs have a
  *resolution* ``(g, m, r)`` (``cz(g, r)`` and ``move(m, r)`` calibrated), and the fictional
  qubit-only architecture the router compiles on.
* :func:`insert_moves` turns a circuit with fictional CZs into MOVE/CZ sequences with look-ahead
  (STAR_MOVE.md §7), on plain ``(name, locus, payload)`` instruction lists; it reads loci, never
  angles, so a parameterised circuit is processed once. :func:`insert_moves_in_instructions` and
  :func:`insert_moves_in_circuit` wrap it for transfer-format instructions and Cirq circuits.

Why the output is correct (STAR_MOVE.md §8): a MOVE opens only on an empty resonator by an unparked
qubit and closes only by the occupant; nothing touches a parked qubit; everything is restored at the
end. So a MOVE pair never meets |11>, each sandwich contributes a * a^-1 = 1 whatever the MOVE phase
a, and ``cz(g, r)`` acts as CZ(g, m) on the state m parked in r.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cirq

from cirq_iqm_ext.device.barriers import IQMBarrierGate
from cirq_iqm_ext.device.move_gate import MOVE, IQMMoveGate
from cirq_iqm_ext.errors import CircuitValidationError
from cirq_iqm_ext.wire.models import Instruction, QuantumArchitectureSpecification
from cirq_iqm_ext.wire.qubits import natural_key
from cirq_iqm_ext.wire.validation import MoveSandwichTracker, architecture_resonators

#: Default look-ahead window of the MOVE-insertion pass (input instructions).
DEFAULT_LOOKAHEAD = 8

#: Ways to treat MOVEs already in the input (STAR_MOVE.md §7.5).
EXISTING_MOVES_MODES = ("keep", "remove", "trust")

#: One instruction as the pass sees it: name, locus (names), and an opaque payload carried through.
PassInstruction = tuple[str, tuple[str, ...], Any]

#: A resolution of a fictional CZ: gate side g, moved qubit m, resonator r.
Resolution = tuple[str, str, str]


@dataclass(frozen=True)
class StarTopology:
    """What the MOVE pass needs to know about an architecture with computational resonators.

    Attributes:
        name: Architecture name.
        qubits: Components that are not resonators, in natural order.
        resonators: Computational resonators, in natural order.
        native_cz: Qubit-qubit pairs with a native ``cz`` (hybrid chips).
        cz_loci: Resonator -> qubits with a calibrated ``cz(qubit, resonator)``.
        move_loci: Resonator -> qubits with a calibrated ``move(qubit, resonator)``.
    """

    name: str
    qubits: tuple[str, ...]
    resonators: tuple[str, ...]
    native_cz: frozenset[frozenset[str]]
    cz_loci: dict[str, frozenset[str]]
    move_loci: dict[str, frozenset[str]]
    _resolutions: dict[frozenset[str], tuple[Resolution, ...]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def from_architecture(cls, architecture: QuantumArchitectureSpecification) -> StarTopology:
        """Reads qubits, resonators and the ``cz`` / ``move`` loci of ``architecture``."""
        resonators = tuple(sorted(architecture_resonators(architecture), key=natural_key))
        res_set = set(resonators)
        qubits = tuple(
            sorted((q for q in architecture.qubits if q not in res_set), key=natural_key)
        )
        native: set[frozenset[str]] = set()
        cz_loci: dict[str, set[str]] = {r: set() for r in resonators}
        for a, b in architecture.loci("cz"):
            if a in res_set and b not in res_set:
                cz_loci[a].add(b)
            elif b in res_set and a not in res_set:
                cz_loci[b].add(a)
            elif a not in res_set and b not in res_set:
                native.add(frozenset((a, b)))
        move_loci: dict[str, set[str]] = {r: set() for r in resonators}
        for q, r in architecture.loci("move"):
            if r in res_set and q not in res_set:
                move_loci[r].add(q)
        return cls(
            architecture.name,
            qubits,
            resonators,
            frozenset(native),
            {r: frozenset(v) for r, v in cz_loci.items()},
            {r: frozenset(v) for r, v in move_loci.items()},
        )

    def is_resonator(self, name: str) -> bool:
        """Whether ``name`` is a computational resonator."""
        return name in self.cz_loci

    def resolutions(self, a: str, b: str) -> tuple[Resolution, ...]:
        """Every ``(g, m, r)`` implementing a fictional ``cz(a, b)``, in natural order."""
        key = frozenset((a, b))
        cached = self._resolutions.get(key)
        if cached is not None:
            return cached
        found = [
            (g, m, r)
            for g, m in ((a, b), (b, a))
            for r in self.resonators
            if g in self.cz_loci[r] and m in self.move_loci[r]
        ]
        found.sort(key=lambda x: tuple(natural_key(n) for n in x))
        result = tuple(found)
        self._resolutions[key] = result
        return result

    def is_fictional_cz(self, locus: tuple[str, ...]) -> bool:
        """Whether ``cz`` on ``locus`` is between two qubits without a native coupler."""
        return (
            len(locus) == 2
            and not self.is_resonator(locus[0])
            and not self.is_resonator(locus[1])
            and frozenset(locus) not in self.native_cz
        )

    def fictional_architecture(
        self, architecture: QuantumArchitectureSpecification
    ) -> QuantumArchitectureSpecification:
        """The qubit-only architecture the router compiles on (STAR_MOVE.md §7.1).

        Its ``cz`` loci are the native qubit-qubit pairs and every pair with a resolution; ``prx``
        and ``measure`` keep their loci; the resonators are gone.
        """
        pairs = [
            (a, b)
            for i, a in enumerate(self.qubits)
            for b in self.qubits[i + 1 :]
            if frozenset((a, b)) in self.native_cz or self.resolutions(a, b)
        ]
        keep = set(self.qubits)
        operations = {
            name: tuple(locus for locus in loci if all(q in keep for q in locus))
            for name, loci in architecture.operations.items()
            if name not in ("cz", "move")
        }
        operations["cz"] = tuple(pairs)
        return QuantumArchitectureSpecification(
            name=architecture.name,
            qubits=self.qubits,
            qubit_connectivity=tuple(pairs),
            operations=operations,
            calibration_set_id=architecture.calibration_set_id,
        )

    def unresolvable_message(self, a: str, b: str) -> str:
        """The error for a fictional ``cz(a, b)`` that no resonator can implement."""
        return (
            f"Unable to implement cz({a!r}, {b!r}): no resonator has a calibrated cz with one of "
            "them and a calibrated move with the other"
        )


class _State:
    """Where each parked qubit's state is, and which resonators hold pinned (explicit) states."""

    __slots__ = ("loc", "occ", "pinned")

    def __init__(self) -> None:
        self.loc: dict[str, str] = {}  # parked qubit -> resonator
        self.occ: dict[str, str] = {}  # resonator -> parked qubit
        self.pinned: set[str] = set()  # resonators whose sandwich came from the input

    def copy(self) -> _State:
        other = _State()
        other.loc = dict(self.loc)
        other.occ = dict(self.occ)
        other.pinned = set(self.pinned)
        return other


class _MovePass:
    """The MOVE-insertion pass of STAR_MOVE.md §7.3-7.5 over one instruction list."""

    def __init__(self, topology: StarTopology, lookahead: int):
        self.topology = topology
        self.lookahead = lookahead

    # -------------------------------------------------------------------------- primitives

    @staticmethod
    def _emit_move(st: _State, q: str, r: str, out: list[PassInstruction] | None) -> int:
        if st.occ.get(r) == q:
            del st.occ[r]
            del st.loc[q]
        else:
            st.occ[r] = q
            st.loc[q] = r
        if out is not None:
            out.append(("move", (q, r), None))
        return 1

    def _restore(self, st: _State, q: str, out: list[PassInstruction] | None) -> int:
        r = st.loc.get(q)
        if r is None or r in st.pinned:  # pinned states are moved back by the input itself
            return 0
        return self._emit_move(st, q, r, out)

    def _apply(self, st: _State, res: Resolution, out: list[PassInstruction] | None) -> int:
        g, m, r = res
        k = 0
        if st.loc.get(m) != r:
            x = st.occ.get(r)
            if x is not None:
                k += self._restore(st, x, out)
            k += self._restore(st, m, out)
            k += self._emit_move(st, m, r, out)
        k += self._restore(st, g, out)
        if out is not None:
            out.append(("cz", (g, r), None))
        return k

    @staticmethod
    def _k(st: _State, res: Resolution) -> int:
        """MOVEs :meth:`_apply` would emit, without running it."""
        g, m, r = res
        loc_g = st.loc.get(g)
        if st.loc.get(m) == r:
            return int(loc_g is not None)
        x = st.occ.get(r)
        k = int(x is not None) + int(st.loc.get(m) is not None) + 1
        if loc_g is not None and x != g:  # g evicted from r is already home
            k += 1
        return k

    # ------------------------------------------------------------------------ instructions

    def _options(self, st: _State, locus: tuple[str, ...]) -> list[Resolution]:
        return [x for x in self.topology.resolutions(*locus) if x[2] not in st.pinned]

    def _other(self, st: _State, inst: PassInstruction, out: list[PassInstruction] | None) -> int:
        """Anything but a fictional CZ: restore what it touches, then emit it unchanged."""
        name, locus, _ = inst
        n = 0
        for q in locus:
            if self.topology.is_resonator(q):
                x = st.occ.get(q)
                if x is not None and q not in st.pinned:
                    n += self._restore(st, x, out)
            else:
                n += self._restore(st, q, out)
        if name == "move":  # an explicit MOVE: opening pins the sandwich, closing unpins it
            q, r = locus
            if st.occ.get(r) == q:
                del st.occ[r]
                del st.loc[q]
                st.pinned.discard(r)
            else:
                st.occ[r] = q
                st.loc[q] = r
                st.pinned.add(r)
        if out is not None:
            out.append(inst)
        return n

    def _rollout(self, st: _State, window: Sequence[PassInstruction]) -> int:
        """MOVEs of a greedy replay of ``window``, plus one per state still parked at its end."""
        total = 0
        for inst in window:
            name, locus, _ = inst
            if name == "cz" and self.topology.is_fictional_cz(locus):
                options = self._options(st, locus)
                if not options:
                    break
                best = min(options, key=lambda x: (self._k(st, x), *map(natural_key, x)))
                total += self._apply(st, best, None)
            else:
                total += self._other(st, inst, None)
        return total + sum(1 for r in st.occ if r not in st.pinned)

    def run(self, instructions: Sequence[PassInstruction]) -> list[PassInstruction]:
        st = _State()
        out: list[PassInstruction] = []
        for i, inst in enumerate(instructions):
            name, locus, _ = inst
            if not (name == "cz" and self.topology.is_fictional_cz(locus)):
                self._other(st, inst, out)
                continue
            options = self._options(st, locus)
            if not options:
                resolutions = self.topology.resolutions(*locus)
                if resolutions:
                    held = sorted({r for _, _, r in resolutions}, key=natural_key)
                    pinned = ", ".join(held)
                    raise CircuitValidationError(
                        f"cz({locus[0]!r}, {locus[1]!r}) cannot be implemented without breaking "
                        f"the explicit MOVE sandwich on {pinned}; use existing_moves='remove'"
                    )
                raise CircuitValidationError(self.topology.unresolvable_message(*locus))
            window = instructions[i + 1 : i + 1 + self.lookahead]
            best_key: tuple[Any, ...] | None = None
            best: Resolution = options[0]
            for res in options:
                trial = st.copy()
                k = self._apply(trial, res, None)
                cost = k + (self._rollout(trial, window) if self.lookahead > 0 else 0)
                key = (cost, k, *map(natural_key, res))
                if best_key is None or key < best_key:
                    best_key, best = key, res
            self._apply(st, best, out)
        for r in sorted(st.occ, key=natural_key):
            if r not in st.pinned:
                self._restore(st, st.occ[r], out)
        return out


def sandwich_error(
    instructions: Iterable[PassInstruction], topology: StarTopology, *, mode: str = "strict"
) -> str | None:
    """The first MOVE-sandwich violation (V1-V6) of ``instructions``, fictional CZs included."""
    tracker = MoveSandwichTracker(
        topology.resonators,
        move_supported=any(topology.move_loci.values()),
        mode=mode,
    )
    for name, locus, _ in instructions:
        message = tracker.step(name, locus)
        if message is not None:
            return message
    return tracker.finish()


def _is_calibrated(inst: PassInstruction, topology: StarTopology) -> bool:
    name, locus, _ = inst
    if name == "move":
        return len(locus) == 2 and locus[0] in topology.move_loci.get(locus[1], ())
    if name == "cz":
        a, b = locus
        if topology.is_resonator(b):
            return a in topology.cz_loci[b]
        if topology.is_resonator(a):
            return b in topology.cz_loci[a]
        return frozenset(locus) in topology.native_cz
    return True


def lift(
    instructions: Iterable[PassInstruction],
    topology: StarTopology,
    relocate: Callable[[PassInstruction, tuple[str, ...]], Any] | None = None,
) -> list[PassInstruction]:
    """Drops every MOVE, writing each resonator in a locus as the qubit whose state it holds.

    ``cz(g, r)`` on an empty resonator (an identity) is dropped, and so is a ``barrier``/``delay``
    left with no qubit. The input's sandwiches must be valid (V3/V4).

    Args:
        instructions: The instructions.
        topology: The architecture.
        relocate: Builds the payload of an instruction whose locus changed (default: ``None``).
    """
    occupant: dict[str, str] = {}
    out: list[PassInstruction] = []
    for inst in instructions:
        name, locus, _ = inst
        if name == "move":
            q, r = locus
            if occupant.get(r) == q:
                del occupant[r]
            else:
                occupant[r] = q
            continue
        new_locus: list[str] = []
        for x in locus:
            y = occupant.get(x) if topology.is_resonator(x) else x
            if y is not None and y not in new_locus:
                new_locus.append(y)
        lifted = tuple(new_locus)
        if lifted == locus:
            out.append(inst)
        elif name == "cz" and len(lifted) < 2:
            continue  # cz(g, r) on an empty resonator is the identity
        elif not lifted:
            continue
        else:
            out.append((name, lifted, None if relocate is None else relocate(inst, lifted)))
    return out


def insert_moves(
    instructions: Sequence[PassInstruction],
    topology: StarTopology,
    *,
    existing_moves: str = "keep",
    lookahead: int = DEFAULT_LOOKAHEAD,
    relocate: Callable[[PassInstruction, tuple[str, ...]], Any] | None = None,
) -> list[PassInstruction]:
    """Implements fictional qubit-qubit CZs with MOVEs and resonator CZs (STAR_MOVE.md §7).

    Instructions the pass emits itself carry the payload ``None``; the others keep theirs.

    Args:
        instructions: ``(name, locus, payload)`` in circuit order; ``cz`` between two qubits without
            a native coupler is fictional.
        topology: The star architecture.
        existing_moves: ``"keep"`` (explicit sandwiches stay, pinned), ``"remove"`` (lift them
            first and compile the rest) or ``"trust"`` (``keep`` without pre-validation).
        lookahead: Window W of the cost rollout, in input instructions; 0 is greedy.
        relocate: For ``"remove"``: payload of an instruction whose locus was lifted.

    Returns:
        The instructions with every fictional CZ replaced, all sandwiches closed.

    Raises:
        CircuitValidationError: An explicit MOVE breaks V1-V6, a fictional CZ has no resolution,
            or (``keep``) needs a resonator that an explicit sandwich holds.
        ValueError: Unknown ``existing_moves`` or a negative ``lookahead``.
    """
    if existing_moves not in EXISTING_MOVES_MODES:
        raise ValueError(
            f"existing_moves must be one of {EXISTING_MOVES_MODES}, got {existing_moves!r}"
        )
    if lookahead < 0:
        raise ValueError(f"lookahead must be >= 0, got {lookahead}")
    instructions = list(instructions)
    has_moves = any(
        name == "move" or any(topology.is_resonator(q) for q in locus)
        for name, locus, _ in instructions
    )
    if has_moves and existing_moves != "trust":
        message = sandwich_error(instructions, topology)
        if message is None and all(_is_calibrated(i, topology) for i in instructions):
            return instructions  # already valid: nothing to do
        if message is not None:
            raise CircuitValidationError(message)
        if existing_moves == "remove":
            instructions = lift(instructions, topology, relocate)
    for name, locus, _ in instructions:
        if name == "cz" and topology.is_fictional_cz(locus) and not topology.resolutions(*locus):
            raise CircuitValidationError(topology.unresolvable_message(*locus))
    return _MovePass(topology, lookahead).run(instructions)


def insert_moves_in_instructions(
    instructions: Sequence[Instruction],
    architecture: QuantumArchitectureSpecification,
    *,
    existing_moves: str = "keep",
    lookahead: int = DEFAULT_LOOKAHEAD,
) -> list[Instruction]:
    """:func:`insert_moves` on transfer-format instructions with physical qubit names.

    Raises:
        CircuitValidationError: See :func:`insert_moves`.
    """
    topology = StarTopology.from_architecture(architecture)

    def relocate(inst: PassInstruction, locus: tuple[str, ...]) -> Instruction:
        old: Instruction = inst[2]
        return Instruction(old.name, locus, old.args, old.implementation)

    triples = [(i.name, i.qubits, i) for i in instructions]
    out = insert_moves(
        triples, topology, existing_moves=existing_moves, lookahead=lookahead, relocate=relocate
    )
    return [
        payload if payload is not None else Instruction(name, locus, {})
        for name, locus, payload in out
    ]


def circuit_instructions(circuit: cirq.AbstractCircuit) -> list[PassInstruction]:
    """A native Cirq circuit as pass instructions (payload: the operation); global phases dropped.

    Raises:
        ValueError: An operation is not native (``prx``-type, ``CZ``, measurement, MOVE).
    """
    out: list[PassInstruction] = []
    for op in circuit.all_operations():
        gate = op.untagged.gate
        if isinstance(gate, cirq.GlobalPhaseGate):
            continue
        if isinstance(
            gate, cirq.PhasedXPowGate | cirq.XPowGate | cirq.YPowGate | cirq.PhasedXZGate
        ):
            name = "prx"
        elif isinstance(gate, cirq.ZPowGate):
            name = "rz"  # a virtual Z
        elif isinstance(gate, cirq.CZPowGate) and gate.exponent == 1:
            name = "cz"
        elif isinstance(gate, cirq.MeasurementGate):
            name = "measure"
        elif isinstance(gate, IQMMoveGate):
            name = "move"
        elif isinstance(gate, cirq.WaitGate):
            name = "delay"
        elif isinstance(gate, IQMBarrierGate):
            name = "barrier"
        else:
            raise ValueError(
                f"{op!r} is not native; with explicit MOVEs in the input, the rest must be native "
                "(use existing_moves='remove' to compile any circuit)"
            )
        out.append((name, tuple(_qubit_name(q) for q in op.qubits), op))
    return out


def _qubit_name(qubit: cirq.Qid) -> str:
    return qubit.name if isinstance(qubit, cirq.NamedQubit) else str(qubit)


def instructions_to_circuit(instructions: Iterable[PassInstruction]) -> cirq.Circuit:
    """Cirq operations of pass output: payloads as they are, emitted MOVEs and CZs rebuilt."""
    ops: list[cirq.Operation] = []
    for name, locus, payload in instructions:
        if payload is not None and tuple(_qubit_name(q) for q in payload.qubits) == locus:
            ops.append(payload)
            continue
        qubits = [cirq.NamedQubit(n) for n in locus]
        if name == "move":
            ops.append(MOVE.on(*qubits))
        elif name == "cz":
            ops.append(cirq.CZ.on(*qubits))
        elif payload is not None:  # a lifted measurement or barrier-like op
            ops.append(on_qubits(payload, qubits))
    return cirq.Circuit(ops)


def on_qubits(op: cirq.Operation, qubits: Sequence[cirq.Qid]) -> cirq.Operation:
    """``op`` on other qubits; a barrier or a wait may span a different number of them."""
    gate = op.untagged.gate
    if isinstance(gate, IQMBarrierGate):
        return IQMBarrierGate(len(qubits)).on(*qubits)
    if isinstance(gate, cirq.WaitGate):
        return cirq.WaitGate(gate.duration, num_qubits=len(qubits)).on(*qubits)
    return op.with_qubits(*qubits)


def insert_moves_in_circuit(
    circuit: cirq.AbstractCircuit,
    architecture: QuantumArchitectureSpecification,
    *,
    existing_moves: str = "keep",
    lookahead: int = DEFAULT_LOOKAHEAD,
) -> cirq.Circuit:
    """:func:`insert_moves` on a native Cirq circuit over the device's named qubits.

    Raises:
        CircuitValidationError: See :func:`insert_moves`.
        ValueError: An operation is not native.
    """
    topology = StarTopology.from_architecture(architecture)
    out = insert_moves(
        circuit_instructions(circuit),
        topology,
        existing_moves=existing_moves,
        lookahead=lookahead,
    )
    return instructions_to_circuit(out)


__all__ = [
    "DEFAULT_LOOKAHEAD",
    "EXISTING_MOVES_MODES",
    "StarTopology",
    "insert_moves",
    "insert_moves_in_circuit",
    "insert_moves_in_instructions",
    "lift",
    "sandwich_error",
]
