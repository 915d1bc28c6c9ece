"""Tests of the short forms of doubly controlled gates: 6-CZ Toffoli/CCZ, 8-CZ CSWAP."""

from __future__ import annotations

import cirq
import numpy as np
import pytest
import sympy
from equivalence import assert_equivalent

from cirq_iqm_ext.compiler import stages
from cirq_iqm_ext.compiler.decompose import flatten, flatten_counted
from cirq_iqm_ext.compiler.stages import CompileOptions
from cirq_iqm_ext.compiler.transpiler import transpile
from cirq_iqm_ext.device.builtin import Adonis, Apollo, Deneb, Garnet

GARNET = Garnet()


def two_qubit_count(ops) -> int:
    return sum(1 for op in ops if len(op.qubits) == 2)


def cz_count(circuit: cirq.AbstractCircuit) -> int:
    return sum(1 for op in circuit.all_operations() if op.gate == cirq.CZ)


def _gates(rng: np.random.Generator) -> list[cirq.Gate]:
    t = float(rng.uniform(-2, 2))
    return [
        cirq.CCZ,
        cirq.CCX,
        cirq.CCZ**t,
        cirq.CCX**t,
        cirq.CCZPowGate(exponent=t, global_shift=float(rng.uniform(-1, 1))),
        cirq.CSWAP,
    ]


@pytest.mark.parametrize("seed", range(4))
def test_short_forms_are_exact_and_short(seed):
    rng = np.random.default_rng(seed)
    qubits = cirq.LineQubit.range(3)
    order = [qubits[i] for i in rng.permutation(3)]
    for gate in _gates(rng):
        circuit = cirq.Circuit(gate.on(*order))
        ops, used = flatten_counted(circuit, short_forms=True)
        assert used == (2 if gate == cirq.CSWAP else 1)  # CSWAP holds a Toffoli
        assert two_qubit_count(ops) == (8 if gate == cirq.CSWAP else 6), gate
        assert all(op.gate == cirq.CZ for op in ops if len(op.qubits) == 2)
        assert _equal_on(ops, circuit, qubits), gate


def _equal_on(ops, circuit: cirq.Circuit, qubits) -> bool:
    mine = cirq.Circuit(ops).unitary(qubit_order=qubits)
    theirs = circuit.unitary(qubit_order=qubits)
    return cirq.allclose_up_to_global_phase(mine, theirs, atol=1e-9)


def test_without_short_forms_cirqs_own_forms_are_kept():
    q = cirq.LineQubit.range(3)
    ops, used = flatten_counted(cirq.Circuit(cirq.CCX(*q)), short_forms=False)
    assert used == 0
    assert two_qubit_count(ops) == 8
    assert two_qubit_count(flatten(cirq.Circuit(cirq.CCX(*q)))) == 8


@pytest.mark.parametrize("value", [0.37, -1.2])
def test_symbolic_exponent_takes_the_short_form_for_every_value(value):
    q = cirq.LineQubit.range(3)
    t = sympy.Symbol("t")
    circuit = cirq.Circuit(cirq.CCZ(*q) ** t, cirq.CCX(*q) ** (t / 2))
    ops, used = flatten_counted(circuit, short_forms=True)
    assert used == 2 and two_qubit_count(ops) == 12
    resolver = {"t": value}
    mine = cirq.resolve_parameters(cirq.Circuit(ops), resolver).unitary(qubit_order=q)
    theirs = cirq.resolve_parameters(circuit, resolver).unitary(qubit_order=q)
    assert cirq.allclose_up_to_global_phase(mine, theirs, atol=1e-9)


def test_controlled_gates_that_cirq_decomposes_through_toffolis_get_shorter():
    q = cirq.LineQubit.range(5)
    circuit = cirq.Circuit(cirq.X(q[4]).controlled_by(*q[:4]), cirq.CCZ(*q[:3]).controlled_by(q[3]))
    short, used = flatten_counted(circuit, short_forms=True)
    near = flatten(circuit)
    assert used > 0
    assert two_qubit_count(short) < two_qubit_count(near)
    mine = cirq.Circuit(short).unitary(qubit_order=q)
    assert cirq.allclose_up_to_global_phase(mine, circuit.unitary(qubit_order=q), atol=1e-9)


def test_a_toffoli_costs_six_cz_where_all_its_pairs_meet():
    """On Deneb every qubit pair meets through the resonator: no routing, 6 CZ."""
    q = cirq.LineQubit.range(3)
    circuit = cirq.Circuit(cirq.CCX(*q))
    result = transpile(circuit, Deneb())
    assert cz_count(result.circuit) == 6
    assert cz_count(transpile(circuit, Deneb(), optimization_level=0).circuit) == 8


@pytest.mark.parametrize("level", [1, 2, 3])
def test_a_lone_toffoli_on_a_lattice_is_never_longer_than_cirqs_form(level):
    q = cirq.LineQubit.range(3)
    circuit = cirq.Circuit(cirq.H(q[0]), cirq.CCX(*q), cirq.measure(*q, key="m"))
    result = transpile(circuit, GARNET, optimization_level=level)
    assert_equivalent(circuit, result)
    assert cz_count(result.circuit) <= 8


def test_level_zero_translates_a_toffoli_as_cirq_does():
    q = cirq.LineQubit.range(3)
    result = transpile(cirq.Circuit(cirq.CCX(*q)), GARNET, optimization_level=0)
    assert cz_count(result.circuit) == 8


def test_a_toffoli_on_device_qubits_keeps_its_nearest_neighbour_form():
    """Device qubits are never routed: QB1-QB2-QB3 on Adonis is a path through QB3."""
    qb = {n: cirq.NamedQubit(n) for n in ("QB1", "QB2", "QB3")}
    circuit = cirq.Circuit(cirq.CCX(qb["QB1"], qb["QB3"], qb["QB2"]))
    result = transpile(circuit, Adonis())
    assert_equivalent(circuit, result)
    assert set(result.circuit.all_qubits()) == set(qb.values())


def _toffoli_heavy(n: int, seed: int) -> cirq.Circuit:
    rng = np.random.default_rng(seed)
    q = cirq.LineQubit.range(n)
    circuit = cirq.Circuit(cirq.H.on_each(*q))
    for _ in range(10):
        a, b, c = (q[i] for i in rng.choice(n, size=3, replace=False))
        kind = int(rng.integers(4))
        gate = [cirq.CCX, cirq.CCZ, cirq.CSWAP, cirq.CCZ ** float(rng.uniform(-1, 1))][kind]
        circuit.append([gate(a, b, c), cirq.T(a), cirq.CNOT(b, c)])
    return circuit + cirq.Circuit(cirq.measure(*q, key="m"))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("level", [2, 3])
def test_toffoli_heavy_circuits_compile_equivalently_and_no_longer(seed, level):
    circuit = _toffoli_heavy(6, seed)
    device = Apollo()
    result = transpile(circuit, device, optimization_level=level, seed=seed)
    assert_equivalent(circuit, result, seed=seed)
    device.validate_circuit(result.circuit)
    if level == 2:
        # Cirq's nearest-neighbour forms only: what level 2 compiled before the short forms.
        near = _stages(circuit, device, CompileOptions(level=2, seed=seed, short_forms=False))
        assert cz_count(result.circuit) <= cz_count(near.circuit)


def _stages(circuit: cirq.Circuit, device, options: CompileOptions) -> stages.Compilation:
    form = stages.prepare(circuit, device, options)
    for stage in (
        stages.itemise,
        stages.optimise_logical,
        stages.schedule_measurements,
        stages.place_and_route,
        stages.synthesise,
        stages.finish,
    ):
        form = stage(form)
    return form


def test_the_short_forms_are_tried_only_at_level_two_and_up():
    q = cirq.LineQubit.range(3)
    circuit = cirq.Circuit(cirq.CCX(*q))
    for level, expected in ((0, 0), (1, 0), (2, 1)):
        options = CompileOptions(level=level, short_forms=True)
        assert _stages(circuit, GARNET, options).short_forms_used == expected
