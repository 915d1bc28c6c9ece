"""What you write is what runs: optimisation levels, waits, barriers, device qubits, virtual Z."""

from __future__ import annotations

import cirq
import numpy as np
import pytest
import sympy
from equivalence import assert_equivalent

from cirq_iqm_ext import CompilationError, IQMError, barrier
from cirq_iqm_ext.compiler.synthesis import cz_cost
from cirq_iqm_ext.compiler.transpiler import transpile
from cirq_iqm_ext.device.barriers import IQMBarrierGate
from cirq_iqm_ext.device.builtin import Apollo, Deneb, Garnet
from cirq_iqm_ext.device.iqm_device import DeviceValidationError
from cirq_iqm_ext.serialization.serialize import CircuitTemplate, serialize_circuit

GARNET, APOLLO = Garnet(), Apollo()
LEVELS = (0, 1, 2, 3)
QB = {i: cirq.NamedQubit(f"QB{i}") for i in range(1, 21)}


def _ops(circuit: cirq.AbstractCircuit, gate_type: type) -> list[cirq.Operation]:
    return [op for op in circuit.all_operations() if isinstance(op.gate, gate_type)]


def _cz(circuit: cirq.AbstractCircuit) -> int:
    return sum(1 for op in circuit.all_operations() if op.gate == cirq.CZ)


def _pulses(circuit: cirq.AbstractCircuit) -> int:
    return len(_ops(circuit, cirq.PhasedXPowGate | cirq.XPowGate | cirq.YPowGate))


def _random_circuit_with_waits_and_barriers(
    qubits: list[cirq.Qid], seed: int, *, measure: bool, pairs: list[tuple[int, int]] | None = None
) -> cirq.Circuit:
    """Random 1- and 2-qubit gates with waits and barriers among them."""
    rng = np.random.default_rng(seed)
    n = len(qubits)
    pairs = pairs or [(i, j) for i in range(n) for j in range(n) if i != j]
    two_qubit = [
        cirq.CZ,
        cirq.CNOT,
        cirq.ISWAP**0.5,
        cirq.SWAP,
        cirq.CZ**0.3,
        cirq.FSimGate(0.4, 0.2),
    ]
    ops: list[cirq.Operation] = []
    for _ in range(30):
        r = rng.random()
        if r < 0.35:
            i, j = pairs[rng.integers(len(pairs))]
            ops.append(two_qubit[rng.integers(len(two_qubit))].on(qubits[i], qubits[j]))
        elif r < 0.8:
            q = qubits[rng.integers(n)]
            ops.append(
                cirq.PhasedXZGate(
                    x_exponent=rng.uniform(-1, 1),
                    z_exponent=rng.uniform(-1, 1),
                    axis_phase_exponent=rng.uniform(-1, 1),
                ).on(q)
            )
        elif r < 0.9:
            chosen = sorted({qubits[k] for k in rng.integers(n, size=2)})
            ops.append(cirq.wait(*chosen, nanos=float(rng.integers(10, 500))))
        else:
            chosen = sorted({qubits[k] for k in rng.integers(n, size=3)})
            ops.append(barrier(*chosen))
    if measure:
        ops.append(cirq.measure(*qubits, key="m"))
    return cirq.Circuit(ops)


# ------------------------------------------------------------------------ equivalence by level


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("measure", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_every_level_is_equivalent_and_keeps_waits_and_barriers(level, measure, seed):
    qubits = cirq.LineQubit.range(5)
    circuit = _random_circuit_with_waits_and_barriers(qubits, seed, measure=measure)
    result = transpile(circuit, APOLLO, optimization_level=level, seed=seed)
    APOLLO.validate_circuit(result.circuit)
    for state_seed in range(3):
        assert_equivalent(circuit, result, seed=state_seed)
    waits = sorted(op.gate.duration for op in _ops(circuit, cirq.WaitGate))
    assert sorted(op.gate.duration for op in _ops(result.circuit, cirq.WaitGate)) == waits
    assert len(_ops(result.circuit, IQMBarrierGate)) == len(_ops(circuit, IQMBarrierGate))


@pytest.mark.parametrize("seed", range(4))
def test_level_0_keeps_each_operations_two_qubit_gate_count(seed):
    # On device qubits and coupled pairs nothing is routed, so each two-qubit operation keeps
    # exactly the CZ count it needs on its own: none is merged, cancelled or resynthesised away.
    chain = [QB[1], QB[2], QB[5], QB[6]]
    coupled = [(0, 1), (1, 2), (2, 3), (1, 0), (2, 1), (3, 2)]
    assert all(
        frozenset((chain[i], chain[j])) in {frozenset(p) for p in GARNET.cz_pairs}
        for i, j in coupled
    )
    circuit = _random_circuit_with_waits_and_barriers(chain, seed, measure=True, pairs=coupled)
    result = transpile(circuit, GARNET, optimization_level=0)
    expected = sum(
        1 if op.gate == cirq.CZ else cz_cost(cirq.unitary(op))
        for op in circuit.all_operations()
        if len(op.qubits) == 2 and not isinstance(op.gate, IQMBarrierGate | cirq.WaitGate)
    )
    assert _cz(result.circuit) == expected
    assert result.initial_mapping == result.final_mapping == {q: q for q in chain}
    assert_equivalent(circuit, result)


def test_level_0_turns_each_single_qubit_gate_into_its_own_pulse():
    # A Clifford sequence that multiplies to the identity: level 0 runs every pulse of it,
    # level 1 and above may merge it away.
    q = cirq.LineQubit(0)
    rng = np.random.default_rng(7)
    gates = [cirq.X**0.5, cirq.Y**0.5, cirq.X, cirq.Y**-0.5, cirq.X**-0.5]
    seq = [gates[k] for k in rng.integers(len(gates), size=50)]
    total = cirq.unitary(cirq.Circuit(g.on(q) for g in seq))
    inverse = cirq.MatrixGate(np.conj(total.T)).on(q)
    circuit = cirq.Circuit([g.on(q) for g in seq], inverse, cirq.measure(q, key="m"))
    level0 = transpile(circuit, APOLLO, optimization_level=0).circuit
    assert _pulses(level0) >= 50
    level1 = transpile(circuit, APOLLO, optimization_level=1).circuit
    assert _pulses(level1) == 0
    z_only = cirq.Circuit(cirq.Z(q) ** 0.25, cirq.S(q), cirq.measure(q, key="m"))
    assert _pulses(transpile(z_only, APOLLO, optimization_level=0).circuit) == 0  # virtual Z


def test_two_qubit_gates_are_not_cancelled_below_level_2():
    a, b = cirq.LineQubit.range(2)
    circuit = cirq.Circuit([cirq.CZ(a, b)] * 20, cirq.measure(a, b, key="m"))
    for level in (0, 1):
        assert _cz(transpile(circuit, APOLLO, optimization_level=level).circuit) == 20
    assert _cz(transpile(circuit, APOLLO, optimization_level=2).circuit) == 0


# ------------------------------------------------------------------------------------ barriers


@pytest.mark.parametrize("level", LEVELS)
def test_nothing_is_merged_or_cancelled_across_a_barrier(level):
    a, b = cirq.LineQubit.range(2)
    circuit = cirq.Circuit(
        cirq.X(a) ** 0.5,
        barrier(a),
        cirq.X(a) ** 0.5,
        cirq.CZ(a, b),
        barrier(a, b),
        cirq.CZ(a, b),
        cirq.measure(a, b, key="m"),
    )
    compiled = transpile(circuit, APOLLO, optimization_level=level).circuit
    assert _pulses(compiled) == 2
    assert _cz(compiled) == 2
    ops = list(compiled.all_operations())
    kinds = [type(op.gate).__name__ for op in ops]
    first, second = (i for i, k in enumerate(kinds) if k == "IQMBarrierGate")
    assert kinds[first - 1] != "IQMBarrierGate" and _cz(cirq.Circuit(ops[:second])) == 1


def test_barrier_serialises_and_is_validated():
    circuit = cirq.Circuit(cirq.X(QB[1]), barrier(QB[1], QB[2]), cirq.measure(QB[1], key="m"))
    names = [(i.name, i.qubits) for i in serialize_circuit(circuit).instructions]
    assert names == [("prx", ("QB1",)), ("barrier", ("QB1", "QB2")), ("measure", ("QB1",))]
    with pytest.raises(IQMError, match="more than once"):
        barrier(QB[1], QB[1])
    assert cirq.read_json(
        json_text=cirq.to_json(IQMBarrierGate(3)),
        resolvers=[__import__("cirq_iqm_ext").json_resolver, *cirq.DEFAULT_RESOLVERS],
    ) == IQMBarrierGate(3)


# --------------------------------------------------------------------------------------- waits


@pytest.mark.parametrize("level", LEVELS)
def test_waits_are_kept_at_every_level_and_sent_as_delay(level):
    q = cirq.LineQubit(0)
    circuit = cirq.Circuit(cirq.X(q), cirq.wait(q, micros=200), cirq.measure(q, key="m"))
    compiled = transpile(circuit, GARNET, optimization_level=level).circuit
    [wait] = _ops(compiled, cirq.WaitGate)
    assert wait.gate.duration == cirq.Duration(micros=200)
    delays = [i for i in serialize_circuit(compiled).instructions if i.name == "delay"]
    assert [d.args["duration"] for d in delays] == [pytest.approx(2e-4, rel=1e-12)]


def test_symbolic_waits_are_filled_in_per_sweep_point():
    t = sympy.Symbol("t")
    circuit = cirq.Circuit(cirq.X(QB[1]), cirq.wait(QB[1], nanos=t), cirq.measure(QB[1], key="m"))
    template = CircuitTemplate(circuit)
    assert template.parameter_names == {"t"}
    points = template.resolve_many([cirq.ParamResolver({"t": v}) for v in (0, 1500, 2e5)])
    durations = [c["instructions"][1]["args"]["duration"] for c in points]
    assert durations == pytest.approx([0.0, 1.5e-6, 2e-4], rel=1e-12)
    with pytest.raises(IQMError, match="negative"):
        template.resolve({"t": -1})
    with pytest.raises(IQMError, match="no value"):
        template.resolve({})


def test_a_device_without_delay_refuses_waits_with_a_reason():
    spec = GARNET.architecture.to_dict()["quantum_architecture"]
    spec["operations"] = {k: v for k, v in spec["operations"].items() if k != "delay"}
    device = type(GARNET).from_architecture(spec)
    assert not device.supports_delay and GARNET.supports_delay
    circuit = cirq.Circuit(cirq.wait(QB[1], micros=1), cirq.measure(QB[1], key="m"))
    with pytest.raises(DeviceValidationError, match="waits are not supported.*never dropped"):
        device.validate_circuit(circuit)
    with pytest.raises(DeviceValidationError, match="waits are not supported"):
        transpile(cirq.Circuit(cirq.wait(cirq.LineQubit(0), micros=1)), device)


# ---------------------------------------------------------------------------------- virtual Z


@pytest.mark.parametrize("level", LEVELS)
def test_trailing_z_rotations_are_kept_where_no_measurement_follows(level):
    a, b = cirq.LineQubit.range(2)
    circuit = cirq.Circuit(cirq.H(a), cirq.CNOT(a, b), cirq.Z(a) ** 0.3, cirq.T(b))
    result = transpile(circuit, APOLLO, optimization_level=level)
    assert _ops(result.circuit, cirq.ZPowGate)
    assert_equivalent(circuit, result)  # exact up to global phase: no per-qubit phase allowed


def test_virtual_z_folds_into_later_pulses_on_the_wire():
    circuit = cirq.Circuit(
        cirq.Z(QB[1]) ** 0.5,
        cirq.X(QB[1]),
        cirq.PhasedXZGate(x_exponent=0.5, z_exponent=0.25, axis_phase_exponent=0.1).on(QB[1]),
        cirq.Y(QB[1]) ** 0.5,
        cirq.Z(QB[1]) ** 0.7,
        cirq.measure(QB[1], key="m"),
    )
    prx = [i.args for i in serialize_circuit(circuit).instructions if i.name == "prx"]
    # X after Z**0.5: phase -0.25 turns; PhasedXZ's pulse sees the same frame; its Z (0.125
    # turns) then shifts the Y pulse too. The last Z before the measurement sends nothing.
    assert [a["angle_t"] for a in prx] == pytest.approx([0.5, 0.25, 0.25])
    phases = [a["phase_t"] % 1.0 for a in prx]
    assert phases == pytest.approx([0.75, (0.05 - 0.25) % 1.0, (0.25 - 0.25 - 0.125) % 1.0])
    state = cirq.final_state_vector(cirq.drop_terminal_measurements(circuit), dtype=np.complex128)
    from cirq_iqm_ext.serialization.serialize import deserialize_circuit

    replay = deserialize_circuit(serialize_circuit(circuit))
    replayed = cirq.final_state_vector(cirq.drop_terminal_measurements(replay), dtype=np.complex128)
    np.testing.assert_allclose(abs(replayed) ** 2, abs(state) ** 2, atol=1e-12)


# ------------------------------------------------------------------------------- device qubits


@pytest.mark.parametrize("level", LEVELS)
def test_device_qubits_run_where_they_are_written(level):
    circuit = cirq.Circuit(
        cirq.H(QB[19]),
        cirq.CZ(QB[19], QB[20]),
        cirq.SWAP(QB[19], QB[20]),
        cirq.measure(QB[19], QB[20], key="m"),
    )
    result = transpile(circuit, GARNET, optimization_level=level)
    assert result.circuit.all_qubits() == {QB[19], QB[20]}
    assert result.initial_mapping == result.final_mapping == {QB[19]: QB[19], QB[20]: QB[20]}
    assert_equivalent(circuit, result)


def test_qubits_named_like_device_qubits_but_absent_are_an_error():
    circuit = cirq.Circuit(cirq.X(cirq.NamedQubit("QB99")), cirq.measure(QB[1], key="m"))
    with pytest.raises(DeviceValidationError, match="QB99"):
        transpile(circuit, GARNET, optimization_level=0)
    logical = cirq.Circuit(cirq.X(cirq.NamedQubit("alice")), cirq.measure(cirq.NamedQubit("bob")))
    assert len(transpile(logical, GARNET).initial_mapping) == 2  # other names are placed


def test_mixed_and_uncoupled_device_qubits_are_refused_with_what_to_do():
    mixed = cirq.Circuit(cirq.CZ(QB[1], cirq.LineQubit(0)))
    with pytest.raises(DeviceValidationError, match="mixes device qubits"):
        transpile(mixed, GARNET)
    uncoupled = cirq.Circuit(cirq.CZ(QB[1], QB[20]))
    with pytest.raises(DeviceValidationError, match=r"not coupled.*logical qubits"):
        transpile(uncoupled, GARNET)
    with pytest.raises(CompilationError, match="initial_mapping"):
        transpile(cirq.Circuit(cirq.X(QB[1])), GARNET, initial_mapping={QB[1]: QB[2]})


def test_device_qubits_on_a_star_device_keep_their_qubits():
    deneb = Deneb()
    q1, q2 = deneb.qubit("QB1"), deneb.qubit("QB2")
    circuit = cirq.Circuit(cirq.H(q1), cirq.CZ(q1, q2), cirq.measure(q1, q2, key="m"))
    result = transpile(circuit, deneb, optimization_level=0)
    assert result.initial_mapping == {q1: q1, q2: q2}
    deneb.validate_circuit(result.circuit)


# ------------------------------------------------------------------------------------ contract


def test_errors_of_the_compiler_are_iqm_errors():
    q = cirq.LineQubit.range(30)
    with pytest.raises(CompilationError, match="needs 30 qubits"):
        transpile(cirq.Circuit(cirq.X.on_each(*q)), APOLLO)
    with pytest.raises(CompilationError, match="Non-unitary"):
        transpile(cirq.Circuit(cirq.depolarize(0.1).on(q[0])), APOLLO)
    with pytest.raises(CompilationError, match="optimization_level"):
        transpile(cirq.Circuit(), APOLLO, optimization_level=4)
    assert transpile(cirq.Circuit(cirq.X(q[0])), APOLLO, optimization_level=np.int64(1))


def test_outputs_do_not_depend_on_rounding_noise():
    # Gates a rounding error away from special values: the same decisions either side.
    q = cirq.LineQubit.range(2)
    for eps in (0.0, 1e-15, -1e-15):
        circuit = cirq.Circuit(
            cirq.Z(q[0]) ** (0.3 + eps),
            cirq.CZ(*q),
            cirq.Z(q[1]) ** (1 + eps),
            cirq.X(q[0]) ** (1e-12 + eps),
            cirq.measure(*q, key="m"),
        )
        kinds = [type(op.gate) for op in transpile(circuit, APOLLO).circuit.all_operations()]
        assert kinds == [cirq.CZPowGate, cirq.MeasurementGate]
