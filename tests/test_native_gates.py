"""The native-gate table: one entry per wire instruction, and every entry round-trips."""

from __future__ import annotations

from typing import Any

import cirq
import pytest
import sympy

from cirq_iqm_ext.device.barriers import IQMBarrierGate
from cirq_iqm_ext.device.move_gate import MOVE
from cirq_iqm_ext.device.native_gates import (
    NATIVE_GATE_TYPES,
    NATIVE_OPERATIONS,
    frame_change,
    gate_to_instruction,
    gateset_families,
    instruction_name,
    instruction_operations,
    is_native,
    is_virtual,
    native_operation,
    operation_instruction_name,
    prx_args,
    pulse_exponents,
)
from cirq_iqm_ext.serialization.serialize import instruction_to_operations
from cirq_iqm_ext.wire.models import INSTRUCTION_SPECS, Instruction

T, S = sympy.Symbol("t"), sympy.Symbol("s")
QUBITS = tuple(cirq.NamedQubit(f"QB{i}") for i in range(1, 4))
POINT = cirq.ParamResolver({"t": 0.37, "s": -0.61})

#: Gates of every uncontrolled entry, numeric and symbolic.
GATES: list[tuple[str, cirq.Gate]] = [
    ("prx", cirq.PhasedXPowGate(exponent=0.3, phase_exponent=0.7)),
    ("prx", cirq.PhasedXPowGate(exponent=T, phase_exponent=2 * S + 0.1)),
    ("prx", cirq.X**0.5),
    ("prx", cirq.X**T),
    ("prx", cirq.Y**0.25),
    ("prx", cirq.Y ** (T * S)),
    ("prx", cirq.rx(0.4)),
    ("prx", cirq.ry(T)),
    ("prx", cirq.PhasedXZGate(x_exponent=0.5, z_exponent=0.0, axis_phase_exponent=0.2)),
    ("cz", cirq.CZ),
    ("measure", cirq.MeasurementGate(2, key="m")),
    ("move", MOVE),
    ("delay", cirq.WaitGate(cirq.Duration(nanos=40), num_qubits=2)),
    ("delay", cirq.WaitGate(cirq.Duration(nanos=T), num_qubits=1)),
    ("barrier", IQMBarrierGate(3)),
    ("reset", cirq.ResetChannel()),
]


def _resolved(value: Any) -> Any:
    return cirq.resolve_parameters(value, POINT)


def _numbers(args: dict[str, Any]) -> dict[str, Any]:
    return {k: float(_resolved(v)) if not isinstance(v, str) else v for k, v in args.items()}


def test_every_wire_instruction_has_exactly_one_entry():
    assert sorted(NATIVE_OPERATIONS) == sorted(INSTRUCTION_SPECS)
    assert all(name == op.name for name, op in NATIVE_OPERATIONS.items())
    covered = {name for name, _ in GATES} | {"cc_prx"}
    assert covered == set(NATIVE_OPERATIONS), "every entry has a round-trip case below"


@pytest.mark.parametrize(("name", "gate"), GATES, ids=lambda x: str(x))
def test_gate_to_instruction_to_gate_round_trips(name, gate):
    assert instruction_name(gate) == name
    assert is_native(gate) and not is_virtual(gate)
    assert isinstance(gate, NATIVE_GATE_TYPES)
    got_name, args = gate_to_instruction(gate)
    assert got_name == name
    spec = INSTRUCTION_SPECS[name]
    assert set(args) == set(spec.args)  # the gate alone gives every argument of the wire
    n = cirq.num_qubits(gate)
    assert spec.arity in (None, n)
    qubits = QUBITS[:n]
    (op,) = instruction_operations(name, args, qubits)
    assert op.qubits == qubits
    again = gate_to_instruction(op.gate)
    assert again[0] == name
    assert _numbers(again[1]) == pytest.approx(_numbers(args))
    if cirq.has_unitary(_resolved(gate)):
        cirq.testing.assert_allclose_up_to_global_phase(
            cirq.unitary(_resolved(op.gate)), cirq.unitary(_resolved(gate)), atol=1e-9
        )


@pytest.mark.parametrize(("name", "gate"), GATES, ids=lambda x: str(x))
def test_the_deserialiser_reads_the_table(name, gate):
    args = _numbers(gate_to_instruction(gate)[1])  # the wire holds numbers only
    qubits = QUBITS[: cirq.num_qubits(gate)]
    instruction = Instruction(name, tuple(q.name for q in qubits), args)
    assert instruction_to_operations(instruction, qubits) == instruction_operations(
        name, args, qubits
    )


def test_prx_arguments_are_full_turns_and_the_phased_xz_leaves_a_frame():
    assert prx_args(0.5, 0.25) == {"angle_t": 0.25, "phase_t": 0.125}
    assert pulse_exponents(cirq.Y**0.3) == (0.3, 0.5)
    phased_xz = cirq.PhasedXZGate(x_exponent=0.5, z_exponent=0.3, axis_phase_exponent=0.2)
    assert pulse_exponents(phased_xz) == (0.5, 0.2)
    assert frame_change(phased_xz) == 0.3
    assert frame_change(cirq.Z**T) == T
    assert frame_change(cirq.X) is None
    with pytest.raises(TypeError, match="prx"):
        pulse_exponents(cirq.H)


@pytest.mark.parametrize(
    "pulse", [cirq.X**0.5, cirq.Y**T, cirq.PhasedXPowGate(exponent=T, phase_exponent=S)]
)
def test_cc_prx_round_trips_with_its_feedback(pulse):
    cc_prx = NATIVE_OPERATIONS["cc_prx"]
    assert cc_prx.matches(pulse) and cc_prx.controlled
    args = {**cc_prx.gate_args(pulse), "feedback_qubit": "QB1", "feedback_key": "k"}
    spec = INSTRUCTION_SPECS["cc_prx"]
    assert set(args) == set(spec.args)
    assert set(cc_prx.circuit_args) == {"feedback_qubit", "feedback_key"}
    (op,) = cc_prx.operations(args, QUBITS[1:2])
    assert operation_instruction_name(op) == "cc_prx"
    assert op.classical_controls == frozenset({cirq.KeyCondition(cirq.MeasurementKey("k"))})
    inner = op.without_classical_controls()
    assert cc_prx.gate_args(inner.gate) == {k: args[k] for k in ("angle_t", "phase_t")}
    cirq.testing.assert_allclose_up_to_global_phase(
        cirq.unitary(_resolved(inner.gate)), cirq.unitary(_resolved(pulse)), atol=1e-9
    )
    phased_xz = cirq.PhasedXZGate(x_exponent=0.5, z_exponent=0.1, axis_phase_exponent=0.0)
    assert not cc_prx.matches(phased_xz)  # a conditional Z cannot be virtual


def test_a_reset_of_several_qubits_is_one_channel_per_qubit():
    ops = instruction_operations("reset", {}, QUBITS[:2])
    assert ops == [cirq.ResetChannel().on(QUBITS[0]), cirq.ResetChannel().on(QUBITS[1])]


@pytest.mark.parametrize(
    ("gate", "virtual", "native"),
    [
        (cirq.Z**0.3, True, True),
        (cirq.rz(T), True, True),
        (cirq.GlobalPhaseGate(1j), False, True),
        (cirq.H, False, False),
        (cirq.CZ**0.5, False, False),
        (cirq.CZ**T, False, False),
        (cirq.CNOT, False, False),
        (None, False, False),
    ],
)
def test_gates_that_are_no_instruction(gate, virtual, native):
    assert instruction_name(gate) is None
    assert is_virtual(gate) is virtual
    assert is_native(gate) is native
    with pytest.raises(ValueError, match="not a native"):
        gate_to_instruction(gate)


def test_a_partial_cz_has_the_cz_entry_but_is_not_native():
    entry = native_operation(cirq.CZ**0.5)
    assert entry is NATIVE_OPERATIONS["cz"]
    assert not entry.matches(cirq.CZ**0.5) and entry.matches(cirq.CZ)
    assert native_operation(cirq.H) is None
    assert native_operation(cirq.X) is NATIVE_OPERATIONS["prx"]  # never cc_prx on its own


def test_the_gateset_accepts_exactly_the_native_gates():
    gateset = cirq.Gateset(*gateset_families())
    samples = [gate for _, gate in GATES] + [
        cirq.Z**0.3,
        cirq.GlobalPhaseGate(1j),
        cirq.H,
        cirq.CZ**0.5,
        cirq.CNOT,
        cirq.SWAP,
    ]
    for gate in samples:
        assert (gate in gateset) is is_native(gate), gate
