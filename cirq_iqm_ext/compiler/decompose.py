"""First compiler stage: any Cirq circuit -> a flat list of 1- and 2-qubit operations.

What comes out is what the router and the synthesiser understand:

* numeric single-qubit gates with a unitary (any gate type);
* symbolic single-qubit gates of the few kinds the synthesiser handles exactly (``XPowGate``,
  ``YPowGate``, ``ZPowGate``, ``PhasedXPowGate``, ``PhasedXZGate``);
* numeric two-qubit gates with a unitary (any gate type, resynthesised later with at most 3 CZ);
* ``cirq.CZ``, which symbolic two-qubit gates are rewritten into (with symbolic 1-qubit rotations);
* measurements, waits (``cirq.WaitGate``) and barriers
  (:class:`~cirq_iqm_ext.IQMBarrierGate`) on any number of qubits, resets
  (``cirq.ResetChannel``) and classically controlled pulses (see :mod:`.dynamic` of the device),
  kept as they are.

``CircuitOperation``s are unrolled, 3+-qubit gates are decomposed by their own ``_decompose_`` or,
when they only offer a matrix, by quantum Shannon decomposition; global phases are dropped.

With ``short_forms`` (levels 1-3 on logical qubits) the doubly controlled gates take their
shortest exact forms, which need all three pairs coupled and so leave it to the router to bring
the qubits together: ``CCZ**t`` and ``CCX**t`` (any exponent, symbolic too) in 6 CZ, ``CSWAP`` in
8, where Cirq's own nearest-neighbour forms take 8 and 9. Without it (level 0, "what you write is
what runs", and circuits on device qubits, which are never routed) Cirq's forms are kept.
"""

from __future__ import annotations

from collections.abc import Iterator

import cirq

from cirq_iqm_ext.device.barriers import IQMBarrierGate
from cirq_iqm_ext.device.dynamic import conditional_pulses, controlled_pulse, is_cc_prx_form
from cirq_iqm_ext.errors import CompilationError

#: Symbolic single-qubit gates the synthesiser maps exactly (the rest are decomposed first).
SYMBOLIC_1Q_GATES = (
    cirq.XPowGate,
    cirq.YPowGate,
    cirq.ZPowGate,
    cirq.PhasedXPowGate,
    cirq.PhasedXZGate,
)


def _is_final(op: cirq.Operation) -> bool:
    """Whether ``op`` is already in the stage's output form."""
    if op.classical_controls:
        return is_cc_prx_form(op)
    gate = op.gate
    if gate is None:
        return False
    if isinstance(gate, cirq.MeasurementGate | cirq.WaitGate | IQMBarrierGate | cirq.ResetChannel):
        return True
    n = len(op.qubits)
    if n == 1:
        if cirq.is_parameterized(gate):
            return isinstance(gate, SYMBOLIC_1Q_GATES)
        return cirq.has_unitary(gate)
    if n == 2:
        if cirq.is_parameterized(gate):
            return isinstance(gate, cirq.CZPowGate) and gate.exponent == 1
        return cirq.has_unitary(gate)
    return False


def _symbolic_cz_pow(op: cirq.Operation) -> list[cirq.Operation] | None:
    """Exact rule for a symbolic ``CZ**t``: two CZ and symbolic Z rotations.

    ``CZ**t = Z0**(t/2) Z1**(t/2) ZZ**(-t/2)`` and ``ZZ**s = CNOT Z1**s CNOT`` (global phase aside).
    """
    gate = op.gate
    if not isinstance(gate, cirq.CZPowGate) or not cirq.is_parameterized(gate):
        return None
    a, b = op.qubits
    t = gate.exponent
    return [
        cirq.H(b),
        cirq.CZ(a, b),
        cirq.H(b),
        cirq.ZPowGate(exponent=-t / 2).on(b),
        cirq.H(b),
        cirq.CZ(a, b),
        cirq.H(b),
        cirq.ZPowGate(exponent=t / 2).on(a),
        cirq.ZPowGate(exponent=t / 2).on(b),
    ]


def _cnot(control: cirq.Qid, target: cirq.Qid) -> list[cirq.Operation]:
    return [cirq.H(target), cirq.CZ(control, target), cirq.H(target)]


def _short_ccz_pow(op: cirq.Operation) -> list[cirq.Operation] | None:
    """``CCZ**t`` (``t`` symbolic or not) in 6 CZ, as a phase polynomial.

    The phase ``t·abc`` (in half turns) is ``t/4·(a + b + c - a⊕b - b⊕c - a⊕c + a⊕b⊕c)``: each
    parity is formed on a wire by CNOTs and gets its ``Z**(±t/4)`` there. Exact up to global
    phase (``global_shift`` only adds one).
    """
    gate = op.gate
    if not isinstance(gate, cirq.CCZPowGate):
        return None
    a, b, c = op.qubits
    quarter = gate.exponent / 4

    def z(q: cirq.Qid, sign: int) -> cirq.Operation:
        return cirq.ZPowGate(exponent=sign * quarter).on(q)

    return [
        z(a, 1),
        z(b, 1),
        z(c, 1),
        *_cnot(b, c),
        z(c, -1),  # b⊕c
        *_cnot(a, c),
        z(c, 1),  # a⊕b⊕c
        *_cnot(b, c),
        z(c, -1),  # a⊕c
        *_cnot(a, c),
        *_cnot(a, b),
        z(b, -1),  # a⊕b
        *_cnot(a, b),
    ]


def _short_cswap(op: cirq.Operation) -> list[cirq.Operation] | None:
    """``CSWAP`` as ``CNOT·CCX·CNOT``: 8 CZ with the 6-CZ Toffoli."""
    if op.gate != cirq.CSWAP:
        return None
    control, t1, t2 = op.qubits
    return [*_cnot(t2, t1), cirq.CCX(control, t1, t2), *_cnot(t2, t1)]


def _intercept(op: cirq.Operation) -> list[cirq.Operation] | None:
    """Rules tried before a gate's own decomposition."""
    if isinstance(op.untagged, cirq.CircuitOperation):
        return None  # Cirq's own unrolling (qubit maps, repetitions, parameters) is right.
    if op.classical_controls:
        return conditional_pulses(op)
    if op.gate is None:
        return None
    return _symbolic_cz_pow(op)


class _ShortFormInterceptor:
    """:func:`_intercept`, then the shortest forms of the doubly controlled gates; counts them."""

    def __init__(self) -> None:
        self.used = 0

    def __call__(self, op: cirq.Operation) -> list[cirq.Operation] | None:
        out = _intercept(op)
        if out is not None or op.gate is None or op.classical_controls:
            return out
        out = _short_ccz_pow(op) or _short_cswap(op)
        self.used += out is not None
        return out


def _fallback(op: cirq.Operation) -> list[cirq.Operation] | None:
    """Matrix-only gates with no decomposition of their own."""
    if op.gate is None or cirq.is_parameterized(op) or not cirq.has_unitary(op):
        return None
    n = len(op.qubits)
    if n <= 2:
        return None
    matrix = cirq.unitary(op)
    return list(cirq.quantum_shannon_decomposition(list(op.qubits), matrix))


def _check_supported(op: cirq.Operation) -> None:
    if cirq.is_measurement(op) and not isinstance(op.gate, cirq.MeasurementGate):
        raise CompilationError(f"Unsupported measurement-like operation {op!r}: use cirq.measure")
    if op.classical_controls:
        controlled_pulse(op)  # raises unless a cc_prx can run it


def flatten(circuit: cirq.AbstractCircuit, *, short_forms: bool = False) -> list[cirq.Operation]:
    """:func:`flatten_counted` without the count."""
    return flatten_counted(circuit, short_forms=short_forms)[0]


def flatten_counted(
    circuit: cirq.AbstractCircuit, *, short_forms: bool = False
) -> tuple[list[cirq.Operation], int]:
    """Decomposes ``circuit`` into the stage's output form, in a valid time order.

    Args:
        circuit: Any circuit: any unitary gates (symbolic or not), ``CircuitOperation``s and
            measurements.
        short_forms: Decompose doubly controlled gates into their shortest exact forms, which
            use all three pairs of their qubits (see the module docstring).

    Returns:
        Untagged operations: 1-qubit gates, 2-qubit gates (symbolic ones rewritten to ``CZ``) and
        measurements; and how many gates took a short form.

    Raises:
        CompilationError: The circuit holds a non-unitary operation other than a measurement or a
            reset (e.g. a noise channel), or a gate that cannot be decomposed.
        CircuitValidationError: A classically controlled operation that IQM's ``cc_prx`` cannot
            run.
    """
    out: list[cirq.Operation] = []
    short = _ShortFormInterceptor()
    for op in _iter_ops(circuit):
        for sub in cirq.decompose(
            op,
            keep=_is_final,
            intercepting_decomposer=short if short_forms else _intercept,
            fallback_decomposer=_fallback,
            on_stuck_raise=None,
        ):
            sub = sub.untagged
            if isinstance(sub.gate, cirq.GlobalPhaseGate) or not sub.qubits:
                continue
            _check_supported(sub)
            if not _is_final(sub):
                if not cirq.is_parameterized(sub) and not cirq.has_unitary(sub):
                    raise CompilationError(
                        f"Non-unitary operation {sub!r} is not supported (of the non-unitary "
                        "operations only measurements and resets are)"
                    )
                raise CompilationError(
                    f"Cannot decompose operation {sub!r} into 1- and 2-qubit gates"
                )
            out.append(sub)
    return out, short.used


def _iter_ops(circuit: cirq.AbstractCircuit) -> Iterator[cirq.Operation]:
    for moment in circuit:
        yield from moment.operations
