"""Last compiler stage: routed operations -> native IQM operations, optimised.

Two passes over a flat, time-ordered list of *items* on physical qubit indices:

1. **Two-qubit block resynthesis.** Consecutive operations on the same pair (with the single-qubit
   gates around them, SWAPs included) are multiplied into one 4x4 unitary and resynthesised from its
   KAK decomposition with the fewest CZ possible (0 to 3). Symbolic gates end a block.
2. **Single-qubit merging with Z ejection.** Each run of single-qubit gates becomes one
   ``PhasedXPowGate``; Z rotations commute through CZ and are carried along as a frame change until
   a measurement absorbs them (or the circuit ends, where they are dropped: they do not change any
   measurement outcome). Symbolic rotations are carried the same way, so a symbolic circuit compiles
   once and is right at every parameter value.

Items (plain tuples, cheap to build):

* ``("u1", q, matrix)``: numeric single-qubit unitary;
* ``("s1", q, gate)``: symbolic single-qubit gate (X/Y/Z/PhasedX/PhasedXZ family);
* ``("u2", a, b, matrix, key[, parts])``: numeric two-qubit unitary on ``(a, b)``; a block merged
  by :func:`merge_blocks` also carries its ``parts``, the operations it was made of (on qubits
  ``0`` = ``a`` and ``1`` = ``b``), emitted instead of a resynthesis that would save nothing
  (``key`` names it for the
  synthesis cache: ``"cz"`` for CZ, else a hashable such as the Cirq gate);
* ``("m", qubits, gate)``: measurement;
* ``("w", qubits, gate)``: a wait (``cirq.WaitGate``), kept as it is;
* ``("b", qubits, gate)``: a barrier, kept as it is;
* ``("r", qubits, gate)``: a reset (``cirq.ResetChannel``);
* ``("c", (target, measured), op)``: a classically controlled pulse on ``target``, fed by the
  latest measurement of ``measured`` (which only orders it; the key in ``op`` says which).

Waits and barriers end blocks and single-qubit runs on their qubits, so nothing is merged across
them; a Z frame passes through them unchanged (a virtual Z commutes with an idle and costs no
time).
"""

from __future__ import annotations

import cmath
import math
from collections.abc import Sequence
from typing import Any

import cirq
import numpy as np
import sympy

from cirq_iqm_ext.device.dynamic import controlled_pulse, pulse_parameters

ATOL = 1e-8

_SWAP_BASIS = np.array([0, 2, 1, 3])
_LQ = cirq.LineQubit.range(2)

Item = tuple[Any, ...]

#: Item kinds that act on a tuple of qubits (``item[1]``) and that nothing is merged across.
MULTI_QUBIT_KINDS = frozenset({"m", "w", "b", "r", "c"})


class Relabeller:
    """Rewrites items onto other wires as SWAPs are taken out of the circuit.

    ``wire[q]`` is the wire that qubit index ``q`` is on now. A classically controlled item keeps
    its order after the measurement that feeds it: its second qubit is the wire that measurement
    was on, whatever SWAPs came since.
    """

    def __init__(self, wire: list[int]):
        self.wire = wire
        self._measured_on: dict[cirq.MeasurementKey, int] = {}

    def __call__(self, item: Item) -> Item:
        wire = self.wire
        kind = item[0]
        if kind == "u2":
            return ("u2", wire[item[1]], wire[item[2]], *item[3:])
        if kind == "c":
            _, key = controlled_pulse(item[2])
            target = wire[item[1][0]]
            return ("c", (target, self._measured_on.get(key, wire[item[1][1]])), item[2])
        if kind in MULTI_QUBIT_KINDS:
            qubits = tuple(wire[q] for q in item[1])
            if kind == "m" and len(qubits) == 1:
                self._measured_on[item[2].mkey] = qubits[0]
            return (kind, qubits, item[2])
        return (kind, wire[item[1]], item[2])


def item_qubits(item: Item) -> tuple[int, ...]:
    """The qubit indices an item acts on."""
    kind = item[0]
    if kind in MULTI_QUBIT_KINDS:
        return tuple(item[1])
    if kind in ("u2", "cz"):
        return (item[1], item[2])
    return (item[1],)


def _apply_one_qubit(u: np.ndarray, m: np.ndarray, on_first: bool) -> np.ndarray:
    """``kron(u, 1) @ m`` or ``kron(1, u) @ m`` for a 4x4 ``m``, without building the kron."""
    if on_first:
        return (u @ m.reshape(2, 8)).reshape(4, 4)
    return (u @ m.reshape(2, 2, 4)).reshape(4, 4)


def _swap_order(m: np.ndarray) -> np.ndarray:
    """The same two-qubit unitary with the qubit order exchanged."""
    return m[np.ix_(_SWAP_BASIS, _SWAP_BASIS)]


class _Block:
    __slots__ = ("a", "b", "items", "mat", "n2q")

    def __init__(self, a: int, b: int):
        self.a = a
        self.b = b
        self.mat = np.eye(4, dtype=complex)
        self.items: list[Item] = []
        self.n2q = 0


class TwoQubitSynthesizer:
    """KAK-based synthesis of two-qubit unitaries into CZ and single-qubit unitaries, cached."""

    def __init__(self) -> None:
        self._cache: dict[Any, list[tuple[int, np.ndarray | None]]] = {}
        self._one_qubit: dict[cirq.Gate, np.ndarray] = {}

    def cost(self, mat: np.ndarray, key: Any = None) -> int:
        """The CZ count of what :meth:`synthesize` (or an exact rule) makes of ``mat``.

        Costs are compared with the very decompositions that get emitted, so a decision never
        rests on a second tolerance that could disagree with the synthesiser's.
        """
        if key == "cz":
            return 1
        exact = _EXACT_RULES.get(key) if _hashable_key(key) else None
        if exact is not None:
            return sum(1 for which, _ in exact if which < 0)
        synth_key = (key, mat.shape) if key is not None else None
        return sum(1 for which, _ in self.synthesize(mat, key=synth_key) if which < 0)

    def synthesize(self, mat: np.ndarray, key: Any = None) -> list[tuple[int, np.ndarray | None]]:
        """Returns ``[(which, matrix)]`` steps: ``which`` 0/1 with a 2x2 unitary, or -1 for a CZ."""
        if key is None:
            # Blocks are keyed by their rounded matrix with the global phase removed.
            flat = mat.ravel()
            pivot = flat[int(np.argmax(np.abs(flat)))]
            norm = mat * (abs(pivot) / pivot)
            key = np.round(norm, 10).tobytes()
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        ops = cirq.two_qubit_matrix_to_cz_operations(
            _LQ[0], _LQ[1], mat, allow_partial_czs=False, atol=ATOL, clean_operations=False
        )
        steps: list[tuple[int, np.ndarray | None]] = []
        for op in ops:
            if len(op.qubits) == 2:
                steps.append((-1, None))
                continue
            gate = op.gate
            assert gate is not None
            u = self._one_qubit.get(gate)
            if u is None:
                u = cirq.unitary(gate)
                self._one_qubit[gate] = u
            steps.append((0 if op.qubits[0] == _LQ[0] else 1, u))
        if len(self._cache) > 20_000:
            self._cache.clear()
        self._cache[key] = steps
        return steps


def resynthesize_blocks(
    items: Sequence[Item], synth: TwoQubitSynthesizer, *, merge: bool = True
) -> list[Item]:
    """Pass 1: merges two-qubit blocks and rewrites every two-qubit unitary with CZ.

    Args:
        items: Time-ordered items (see the module docstring).
        synth: The synthesiser (and its cache).
        merge: Whether to merge consecutive operations on a pair; when off, each two-qubit unitary
            is synthesised on its own.

    Returns:
        Items with two-qubit unitaries replaced by ``("cz", a, b)`` and single-qubit ``u1`` items.
    """
    out: list[Item] = []
    open_block: dict[int, _Block] = {}
    for item in items:
        kind = item[0]
        if kind == "u1":
            q = item[1]
            block = open_block.get(q)
            if block is None or not merge:
                out.append(item)
            else:
                block.mat = _apply_one_qubit(item[2], block.mat, q == block.a)
                block.items.append(item)
        elif kind == "u2":
            if merge:
                _add_to_block(item, open_block, synth, out)
            else:
                _emit_items([item], synth, out)
        else:
            for q in item_qubits(item):
                old = open_block.get(q)
                if old is not None:
                    _close_block(old, open_block, synth, out)
            out.append(item)
    for block in list(dict.fromkeys(open_block[q] for q in sorted(open_block))):
        _close_block(block, open_block, synth, out)
    return out


def _add_to_block(
    item: Item, open_block: dict[int, _Block], synth: TwoQubitSynthesizer, out: list[Item]
) -> None:
    """Multiplies a ``u2`` item into the open block on its pair, closing other blocks first."""
    a, b, m = item[1], item[2], item[3]
    block = open_block.get(a)
    if block is None or open_block.get(b) is not block:
        for q in (a, b):
            old = open_block.get(q)
            if old is not None:
                _close_block(old, open_block, synth, out)
        block = _Block(a, b)
        open_block[a] = block
        open_block[b] = block
    block.mat = (m if a == block.a else _swap_order(m)) @ block.mat
    block.items.append(item)
    block.n2q += 1


def _close_block(
    block: _Block, open_block: dict[int, _Block], synth: TwoQubitSynthesizer, out: list[Item]
) -> None:
    """Emits a block: resynthesised when that needs fewer CZ, else as its items were."""
    del open_block[block.a]
    del open_block[block.b]
    if block.n2q == 1:
        _emit_items(block.items, synth, out)
        return
    if synth.cost(block.mat) >= _original_cost(block.items, synth):
        _emit_items(block.items, synth, out)  # nothing gained: keep the original
        return
    _emit_steps(synth.synthesize(block.mat), block.a, block.b, out)


def _emit_items(items: Sequence[Item], synth: TwoQubitSynthesizer, out: list[Item]) -> None:
    """Each item on its own: a two-qubit unitary becomes its CZ decomposition."""
    for item in items:
        if item[0] != "u2":
            out.append(item)
            continue
        a, b, m, key = item[1], item[2], item[3], item[4]
        if key == "cz":
            out.append(("cz", a, b))
            continue
        parts = item[5] if len(item) > 5 else None
        if parts is not None and synth.cost(m) >= _original_cost(parts, synth):
            # Resynthesis saves nothing: the block as written (exact, and the same everywhere).
            _emit_items([_absolute(p, a, b) for p in parts], synth, out)
            continue
        exact = _EXACT_RULES.get(key) if _hashable_key(key) else None
        if exact is not None:
            _emit_steps(exact, a, b, out)
            continue
        steps = synth.synthesize(m, key=(key, m.shape) if key is not None else None)
        _emit_steps(steps, a, b, out)


def _hashable_key(key: Any) -> bool:
    try:
        hash(key)
    except TypeError:
        return False
    return True


_H = np.array([[1, 1], [1, -1]], dtype=complex) / math.sqrt(2)
_CNOT_STEPS: list[tuple[int, np.ndarray | None]] = [(1, _H), (-1, None), (1, _H)]
_CNOT_REVERSED: list[tuple[int, np.ndarray | None]] = [(0, _H), (-1, None), (0, _H)]
_SWAP_STEPS = _CNOT_STEPS + _CNOT_REVERSED + _CNOT_STEPS
#: Gates with a known optimal CZ form, used instead of a KAK decomposition: exact, and the same
#: pulses on every machine (LAPACK may pick any of the equivalent KAK forms).
_EXACT_RULES: dict[Any, list[tuple[int, np.ndarray | None]]] = {
    cirq.CNOT: _CNOT_STEPS,
    cirq.SWAP: _SWAP_STEPS,
    "swap": _SWAP_STEPS,
}


def _emit_steps(
    steps: Sequence[tuple[int, np.ndarray | None]], a: int, b: int, out: list[Item]
) -> None:
    """Appends one decomposition's items; its single-qubit steps between two CZs are multiplied
    into one (they are parts of the same operation, so this merges nothing across operations)."""
    qs = (a, b)
    pending: list[np.ndarray | None] = [None, None]

    def flush(which: int) -> None:
        u = pending[which]
        if u is not None:
            out.append(("u1", qs[which], u))
            pending[which] = None

    for which, u in steps:
        if which < 0:
            flush(0)
            flush(1)
            out.append(("cz", a, b))
        else:
            assert u is not None
            prev = pending[which]
            pending[which] = u if prev is None else u @ prev
    flush(0)
    flush(1)


def _phased_x_and_z(u: np.ndarray) -> tuple[float, float, float]:
    """``(x, a, z)`` with ``u = Z**z · PhasedX(a, x)`` up to global phase, ``x`` in ``[0, 1]``."""
    c = min(1.0, abs(u[0, 0]))
    s = min(1.0, abs(u[0, 1]))
    x = 2.0 * math.atan2(s, c) / math.pi
    if s < ATOL:
        # Diagonal: a pure Z rotation.
        return 0.0, 0.0, cmath.phase(u[1, 1] / u[0, 0]) / math.pi
    if c < ATOL:
        # Anti-diagonal: choose a = 0, so g = i·u01/s and e^{iπz} = i·u10/(g·s).
        g = 1j * u[0, 1] / s
        return x, 0.0, cmath.phase(1j * u[1, 0] / (g * s)) / math.pi
    g = u[0, 0] / c
    z = cmath.phase(u[1, 1] / (g * c)) / math.pi
    a = -cmath.phase(1j * u[0, 1] / (g * s)) / math.pi
    return x, a, z


def _reduce(phase: Any) -> Any:
    """A phase exponent reduced to (-1, 1] when numeric."""
    if isinstance(phase, sympy.Basic):
        if phase.is_number:
            phase = float(phase)
        else:
            return phase
    phase = float(phase) % 2.0
    return phase - 2.0 if phase > 1.0 else phase


def _is_zero(value: Any) -> bool:
    return not isinstance(value, sympy.Basic) and abs(_reduce(value)) < ATOL


def to_native(
    items: Sequence[Item], qubits: Sequence[cirq.Qid], *, merge: bool = True
) -> list[cirq.Operation]:
    """Pass 2: single-qubit gates become ``PhasedXPowGate`` pulses with Z rotations ejected.

    A Z rotation is carried as a frame change into the phase of the qubit's next pulse. Where a
    measurement follows it, it is dropped (it changes no outcome; after the measurement the qubit
    is in a basis state, where a frame is a global phase). A frame still open at the end, on a
    qubit that is not measured afterwards, is emitted as a ``cirq.ZPowGate`` (a virtual Z), so the
    output keeps the input's unitary.

    Args:
        items: Output of :func:`resynthesize_blocks` (``u1``, ``s1``, ``cz``, ``m``, ``w``, ``b``).
        qubits: Physical qubit of each index.
        merge: Multiply each run of adjacent single-qubit gates into one pulse (and drop it when
            it is negligible); when off, every single-qubit item becomes its own pulse.

    Returns:
        Native operations in time order.
    """
    writer = _PulseWriter(qubits)
    pending, flush, out = writer.pending, writer.flush, writer.out
    for item in items:
        kind = item[0]
        if kind == "u1":  # the common kinds inline: this loop is hot
            q, u = item[1], item[2]
            prev = pending[q]
            pending[q] = u if prev is None else u @ prev
            if not merge:
                flush(q)
        elif kind == "cz":
            a, b = item[1], item[2]
            flush(a)
            flush(b)
            out.append(cirq.CZ(qubits[a], qubits[b]))
        else:
            writer.other(item)
    writer.close()
    return out


class _PulseWriter:
    """The state of :func:`to_native`: pending single-qubit unitaries and Z frames per qubit."""

    def __init__(self, qubits: Sequence[cirq.Qid]):
        self.qubits = qubits
        self.pending: list[np.ndarray | None] = [None] * len(qubits)
        self.frame: list[Any] = [0.0] * len(qubits)  # carried Z exponent (float or sympy)
        self.out: list[cirq.Operation] = []

    def emit_phx(self, q: int, phase: Any, x: Any) -> None:
        if _is_zero(x):
            return
        gate = cirq.PhasedXPowGate(phase_exponent=_reduce(phase), exponent=x)
        self.out.append(gate.on(self.qubits[q]))

    def flush(self, q: int) -> None:
        """Emits the qubit's pending unitary as one pulse; its Z part joins the frame."""
        u = self.pending[q]
        if u is None:
            return
        self.pending[q] = None
        x, a, z = _phased_x_and_z(u)
        if x > ATOL:
            self.emit_phx(q, a - self.frame[q], x)
        self.frame[q] = _reduce(self.frame[q] + z)

    def other(self, item: Item) -> None:
        """Every kind but ``u1`` and ``cz``."""
        kind, qubits, frame = item[0], self.qubits, self.frame
        if kind == "s1":
            q, gate = item[1], item[2]
            self.flush(q)
            _symbolic_one_qubit(q, gate, frame, self.emit_phx)
        elif kind in ("m", "w", "b", "r"):
            qs, gate = item[1], item[2]
            for q in qs:
                self.flush(q)
                if kind in ("m", "r"):
                    # After a measurement or a reset the qubit is in a basis state, where a
                    # frame is a global phase; through an idle it passes (it commutes).
                    frame[q] = 0.0
            self.out.append(gate.on(*(qubits[q] for q in qs)))
        elif kind == "c":
            q, op = item[1][0], item[2]
            self.flush(q)
            pulse, _ = controlled_pulse(op)
            exponent, phase = pulse_parameters(pulse.gate)
            # The frame enters the conditional pulse's phase exactly as a plain pulse's.
            gate = cirq.PhasedXPowGate(phase_exponent=_reduce(phase - frame[q]), exponent=exponent)
            self.out.append(gate.on(qubits[q]).with_classical_controls(*op.classical_controls))
        else:  # pragma: no cover - internal invariant
            raise ValueError(f"Unknown item kind {kind!r}")

    def close(self) -> None:
        """Flushes every qubit; a frame still open becomes a virtual Z."""
        for q in range(len(self.qubits)):
            self.flush(q)
            if not _is_zero(self.frame[q]):
                self.out.append(cirq.ZPowGate(exponent=self.frame[q]).on(self.qubits[q]))


def _symbolic_one_qubit(q: int, gate: cirq.Gate, frame: list[Any], emit_phx: Any) -> None:
    """Applies a symbolic single-qubit gate: emits its PhasedX part, moves its Z part into the
    frame.

    With the frame ``Z**c`` applied before: ``PhasedX(p, e) · Z**c = Z**c · PhasedX(p - c, e)``.
    """
    c = frame[q]
    if isinstance(gate, cirq.ZPowGate):
        frame[q] = _reduce(c + gate.exponent)
    elif isinstance(gate, cirq.XPowGate):
        emit_phx(q, -c, gate.exponent)
    elif isinstance(gate, cirq.YPowGate):
        emit_phx(q, 0.5 - c, gate.exponent)
    elif isinstance(gate, cirq.PhasedXPowGate):
        emit_phx(q, gate.phase_exponent - c, gate.exponent)
    elif isinstance(gate, cirq.PhasedXZGate):
        # PhasedXZ(x, z, a) = Z**z · PhasedX(a, x).
        emit_phx(q, gate.axis_phase_exponent - c, gate.x_exponent)
        frame[q] = _reduce(c + gate.z_exponent)
    else:  # pragma: no cover - decompose.flatten only lets the kinds above through
        raise TypeError(f"Unsupported symbolic single-qubit gate {gate!r}")


_SYY = np.kron(np.array([[0, -1j], [1j, 0]]), np.array([[0, -1j], [1j, 0]]))
_SWAP_MAT = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=complex)


def cz_cost(u: np.ndarray, atol: float = 1e-7) -> int:
    """The fewest CZ that implement the two-qubit unitary ``u`` (0 to 3).

    Uses the invariant ``γ(u) = u·(Y⊗Y)·uᵀ·(Y⊗Y)`` of ``u`` scaled into SU(4) (Shende, Bullock,
    Markov, "Recognizing small-circuit structure in two-qubit operators", 2004): none if ``γ = ±1``,
    one if ``tr γ = 0`` and ``γ² = -1``, two if ``tr γ`` is real, else three.
    """
    det = np.linalg.det(u)
    v = u / det**0.25
    g = v @ _SYY @ v.T @ _SYY
    tr = np.trace(g)
    if abs(abs(tr.real) - 4) < atol * 10 and abs(tr.imag) < atol * 10:
        return 0
    if abs(tr) < atol * 10 and np.allclose(g @ g, -np.eye(4), atol=atol * 10):
        return 1
    if abs(tr.imag) < 1e-6:
        return 2
    return 3


def _original_cost(items: Sequence[Item], synth: TwoQubitSynthesizer) -> int:
    """CZs that the two-qubit items need when each is synthesised on its own."""
    return sum(synth.cost(it[3], it[4]) for it in items if it[0] == "u2")


def _relative(item: Item, a: int) -> Item:
    """``item`` of a block on ``(a, b)`` with its qubits written as 0 (``a``) and 1 (``b``)."""
    if item[0] == "u2":
        first = 0 if item[1] == a else 1
        return ("u2", first, 1 - first, *item[3:])
    return (item[0], 0 if item[1] == a else 1, *item[2:])


def _absolute(part: Item, a: int, b: int) -> Item:
    qs = (a, b)
    if part[0] == "u2":
        return ("u2", qs[part[1]], qs[part[2]], *part[3:])
    return (part[0], qs[part[1]], *part[2:])


def merge_blocks(items: Sequence[Item]) -> list[Item]:
    """Multiplies consecutive operations on a qubit pair into single ``u2`` block items.

    Single-qubit gates inside a block are absorbed; symbolic gates, measurements, waits and
    barriers end blocks. A merged block carries ``None`` as key and its parts (see the module
    docstring), so that a block whose product is no cheaper is later emitted as it was written.
    """
    out: list[Item | None] = []
    open_at: dict[int, int] = {}  # qubit -> index in ``out`` of its open block
    blocks: dict[int, list[Any]] = {}  # index -> [a, b, matrix, parts]

    def close(q: int) -> None:
        idx = open_at.pop(q, None)
        if idx is None:
            return
        a, b, m, parts = blocks.pop(idx)
        open_at.pop(b if q == a else a, None)
        if len(parts) == 1:
            out[idx] = _absolute(parts[0], a, b)
        else:
            out[idx] = ("u2", a, b, m, None, tuple(parts))

    for item in items:
        kind = item[0]
        if kind == "u1" and item[1] in open_at:
            q = item[1]
            blk = blocks[open_at[q]]
            u = item[2]
            blk[2] = _apply_one_qubit(u, blk[2], q == blk[0])
            blk[3].append(_relative(item, blk[0]))
        elif kind == "u2":
            a, b, m = item[1], item[2], item[3]
            ia, ib = open_at.get(a), open_at.get(b)
            if ia is not None and ia == ib:
                blk = blocks[ia]
                blk[2] = (m if a == blk[0] else _swap_order(m)) @ blk[2]
                blk[3].append(_relative(item, blk[0]))
            else:
                close(a)
                close(b)
                out.append(None)
                idx = len(out) - 1
                blocks[idx] = [a, b, m, [_relative(item, a)]]
                open_at[a] = open_at[b] = idx
        else:
            for q in item_qubits(item):
                close(q)
            out.append(item)
    for q in sorted(open_at):
        close(q)
    return [it for it in out if it is not None]


def absorb_swaps(items: Sequence[Item], wire: list[int]) -> list[Item]:
    """Replaces each block ``U`` by ``SWAP·U`` when that needs fewer CZ, relabelling later items.

    A SWAP at the logical level is free: it only changes where a qubit ends up, which the final
    mapping reports. ``wire`` (logical qubit -> wire) is updated in place.
    """
    out: list[Item] = []
    relabel = Relabeller(wire)
    for item in items:
        if item[0] == "u2" and item[4] != "cz":
            m = item[3]
            swapped = _SWAP_MAT @ m
            if cz_cost(swapped) < cz_cost(m):
                a, b = wire[item[1]], wire[item[2]]
                wire[item[1]], wire[item[2]] = b, a
                out.append(("u2", a, b, swapped, None))  # no longer its parts
                continue
        out.append(relabel(item))
    return out
