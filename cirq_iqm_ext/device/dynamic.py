"""Dynamic-circuit operations as IQM runs them: what ``cc_prx`` and ``reset`` can express.

IQM computers feed a measured bit forward into one ``cc_prx``: a ``prx`` pulse applied when the
earlier measurement of one qubit read 1 (PROTOCOL_IQM_SERVER.md §3.3). In Cirq that is a
single-qubit X, Y, ``rx``, ``ry`` or ``PhasedXPowGate`` with one key condition,
``gate.on(q).with_classical_controls(key)``. ``cirq.reset`` (``cirq.ResetChannel``) is ``reset``.
The compiler, the device and the serialiser share these rules from here.
"""

from __future__ import annotations

import cirq
import sympy

from cirq_iqm_ext.device.native_gates import PRX_PULSE_TYPES, pulse_exponents
from cirq_iqm_ext.errors import CircuitValidationError

#: Below this a rotation exponent is nothing (far above rounding, far below any real gate).
ATOL = 1e-8

#: Gates a ``cc_prx`` can apply (one pulse, as ``prx``; the ``cc_prx`` entry of the native table).
CONTROLLABLE_GATES = PRX_PULSE_TYPES


def is_reset(op: cirq.Operation) -> bool:
    """Whether ``op`` is ``cirq.reset`` (a ``cirq.ResetChannel`` on a qubit)."""
    return isinstance(op.untagged.gate, cirq.ResetChannel)


def controlled_pulse(op: cirq.Operation) -> tuple[cirq.Operation, cirq.MeasurementKey]:
    """The pulse and the measurement key of a classically controlled operation.

    Args:
        op: An operation with classical controls.

    Returns:
        ``(pulse, key)``: the uncontrolled single-qubit operation and the key it depends on.

    Raises:
        CircuitValidationError: ``op`` is not what a ``cc_prx`` can run: more than one condition, a
            condition other than "the key's last measurement read 1", or a gate other than X, Y,
            ``rx``, ``ry`` or ``PhasedXPowGate`` on one qubit.
    """
    conditions = tuple(op.classical_controls)
    if len(conditions) != 1 or not isinstance(conditions[0], cirq.KeyCondition):
        raise CircuitValidationError(
            f"{op!r}: IQM's cc_prx feeds one measured bit forward; give exactly one key "
            "condition (gate.with_classical_controls('key'))"
        )
    condition = conditions[0]
    if condition.index != -1:
        raise CircuitValidationError(
            f"{op!r}: only the latest measurement of a key can be fed forward (index -1)"
        )
    pulse = op.without_classical_controls().untagged
    if len(pulse.qubits) != 1 or not isinstance(pulse.gate, CONTROLLABLE_GATES):
        raise CircuitValidationError(
            f"{op!r}: IQM's cc_prx applies one prx pulse, so only X, Y, rx, ry or PhasedXPowGate "
            "on one qubit can be classically controlled; rewrite the conditional part with them"
        )
    return pulse, condition.key


def is_cc_prx_form(op: cirq.Operation) -> bool:
    """Whether ``op`` is already one ``cc_prx``: a controllable gate on one latest key."""
    try:
        controlled_pulse(op)
    except CircuitValidationError:
        return False
    return True


def _single_key(op: cirq.Operation) -> cirq.MeasurementKey:
    """The key of the one bit ``op`` is conditioned on: a key condition, or OpenQASM's
    ``if (c == 1)`` on a one-bit register (a sympy condition ``Eq(c_0, 1)``)."""
    conditions = tuple(op.classical_controls)
    if len(conditions) == 1:
        condition = conditions[0]
        if isinstance(condition, cirq.KeyCondition) and condition.index == -1:
            return condition.key
        if isinstance(condition, cirq.SympyCondition):
            expr = condition.expr
            if (
                isinstance(expr, sympy.Eq)
                and isinstance(expr.lhs, sympy.Symbol)
                and expr.rhs == 1
                and len(condition.keys) == 1
            ):
                return condition.keys[0]
    raise CircuitValidationError(
        f"{op!r}: IQM's cc_prx feeds one measured bit forward when it reads 1; give exactly one "
        "key condition (gate.with_classical_controls('key'))"
    )


def conditional_pulses(op: cirq.Operation) -> list[cirq.Operation]:
    """A classically controlled single-qubit gate as ``cc_prx`` pulses, exactly.

    A gate ``U = Z**z · PhasedX(a, x)`` (global phase aside) becomes the conditional pulse
    ``PhasedX(a, x)`` followed, for its Z part, by two conditional π pulses
    (``PhasedX(z/2, 1) · X = Z**z``): a Z rotation that depends on a bit cannot be virtual.

    Raises:
        CircuitValidationError: More than one condition, a condition on anything but one bit
            reading 1, a gate on more than one qubit, a symbolic gate that is not a controllable
            pulse, or a gate without a unitary.
    """
    key = _single_key(op)
    inner = op.without_classical_controls().untagged
    if len(inner.qubits) != 1:
        raise CircuitValidationError(
            f"{op!r}: IQM feeds a bit forward into single-qubit pulses only; condition each "
            "qubit's gate on its own"
        )
    (qubit,) = inner.qubits
    if isinstance(inner.gate, CONTROLLABLE_GATES):
        return [inner.with_classical_controls(key)]
    if cirq.is_parameterized(inner) or not cirq.has_unitary(inner):
        raise CircuitValidationError(
            f"{op!r}: only numeric single-qubit gates (or symbolic X, Y and PhasedX pulses) can "
            "be classically controlled"
        )
    u = cirq.unitary(inner)
    phased = cirq.PhasedXZGate.from_matrix(u)
    pulses: list[cirq.Gate] = []
    x, z, a = phased.x_exponent, phased.z_exponent, phased.axis_phase_exponent
    if abs(_wrapped(x)) > ATOL:
        pulses.append(cirq.PhasedXPowGate(phase_exponent=a, exponent=x))
    if abs(_wrapped(z)) > ATOL:
        pulses.append(cirq.PhasedXPowGate(phase_exponent=0.0))
        pulses.append(cirq.PhasedXPowGate(phase_exponent=z / 2))
    return [g.on(qubit).with_classical_controls(key) for g in pulses]


def _wrapped(exponent: float) -> float:
    """An exponent reduced to (-1, 1]."""
    value = float(exponent) % 2.0
    return value - 2.0 if value > 1.0 else value


def pulse_parameters(gate: cirq.Gate | None) -> tuple[cirq.TParamVal, cirq.TParamVal]:
    """``(exponent, phase_exponent)`` in half turns of a controllable gate, as a PhasedX pulse.

    Raises:
        TypeError: ``gate`` is not one of :data:`CONTROLLABLE_GATES`.
    """
    if not isinstance(gate, CONTROLLABLE_GATES):
        raise TypeError(f"{gate!r} is not a controllable pulse")
    return pulse_exponents(gate)


__all__ = [
    "CONTROLLABLE_GATES",
    "conditional_pulses",
    "controlled_pulse",
    "is_cc_prx_form",
    "is_reset",
    "pulse_parameters",
]
