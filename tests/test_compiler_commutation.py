"""Tests of commutation-aware routing: the router runs commuting gates in whichever order the
layout makes adjacent, and the output stays exactly equivalent to the input."""

from __future__ import annotations

import random

import cirq
import numpy as np
import pytest
from equivalence import assert_equivalent

from cirq_iqm_ext.compiler.commutation import (
    GENERAL,
    X,
    Z,
    item_classes,
    one_qubit_class,
    two_qubit_classes,
)
from cirq_iqm_ext.compiler.itemise import Itemizer
from cirq_iqm_ext.compiler.routing import Coupling, Skeleton, route
from cirq_iqm_ext.compiler.transpiler import transpile
from cirq_iqm_ext.device.builtin import Adonis, Apollo, Garnet

GARNET, APOLLO, ADONIS = Garnet(), Apollo(), Adonis()


def _classes_of(gate: cirq.Gate) -> tuple[int, ...]:
    qubits = cirq.LineQubit.range(cirq.num_qubits(gate))
    itemizer = Itemizer({q: i for i, q in enumerate(qubits)})
    return item_classes([itemizer.item(gate.on(*qubits))])[0]


@pytest.mark.parametrize(
    ("gate", "expected"),
    [
        (cirq.CZ, (Z, Z)),
        (cirq.CZ**0.3, (Z, Z)),
        (cirq.ZZ**0.41, (Z, Z)),
        (cirq.CNOT, (Z, X)),
        (cirq.XX**0.2, (X, X)),
        (cirq.ISWAP, (GENERAL, GENERAL)),
        (cirq.SWAP**0.5, (GENERAL, GENERAL)),
        (cirq.rz(0.7), (Z,)),
        (cirq.T, (Z,)),
        (cirq.rx(1.1), (X,)),
        (cirq.H, (GENERAL,)),
        (cirq.ry(0.4), (GENERAL,)),
    ],
    ids=str,
)
def test_each_gate_gets_the_basis_it_commutes_with_on_each_qubit(gate, expected):
    assert _classes_of(gate) == expected


def test_classes_follow_the_qubit_order_of_the_matrix():
    a, b = cirq.LineQubit.range(2)
    cnot_reversed = cirq.Circuit(cirq.CNOT(b, a)).unitary(qubit_order=[a, b])
    assert two_qubit_classes(cnot_reversed) == (X, Z)
    assert one_qubit_class(np.eye(2)) == Z


def test_non_unitary_items_keep_their_order():
    q = cirq.LineQubit.range(2)
    itemizer = Itemizer({x: i for i, x in enumerate(q)})
    items = [itemizer.item(cirq.measure(*q, key="m")), itemizer.item(cirq.ResetChannel().on(q[0]))]
    assert item_classes(items) == [(GENERAL, GENERAL), (GENERAL,)]


def test_commuting_gates_do_not_depend_on_each_other():
    # CZ(0,1), CZ(0,2), H(0), CZ(0,1): the first two commute; H separates them from the third.
    gates = [(0, 1), (0, 2), (0,), (0, 1)]
    classes = [(Z, Z), (Z, Z), (GENERAL,), (Z, Z)]
    dag = Skeleton.build(3, gates, [True, True, False, True], classes=classes)
    assert dag.n_predecessors == (0, 0, 2, 1)
    assert dag.successors[0] == (2,) and dag.successors[1] == (2,)
    plain = Skeleton.build(3, gates, [True, True, False, True])
    assert plain.n_predecessors == (0, 1, 1, 2)  # the last CZ also waits for the first
    # A CNOT target (X) and a CZ (Z) on the same qubit do not commute.
    mixed = Skeleton.build(3, [(0, 1), (2, 1)], [True, True], classes=[(Z, X), (Z, Z)])
    assert mixed.n_predecessors == (0, 1)
    # Shared controls commute, shared targets commute.
    fan = Skeleton.build(3, [(0, 1), (0, 2), (1, 2)], [True] * 3, classes=[(Z, X)] * 3)
    assert fan.n_predecessors == (0, 0, 1)


def test_the_router_runs_an_adjacent_commuting_gate_before_swapping():
    line = Coupling(3, [(0, 1), (1, 2)])
    gates = [(0, 2), (0, 1)]  # the first is blocked on the line, the second is adjacent
    commuting = Skeleton.build(3, gates, [True, True], classes=[(Z, Z), (Z, Z)])
    routed = route(commuting, line, [0, 1, 2], random.Random(0))
    assert routed.steps[0] == (1, (0, 1))
    ordered = route(Skeleton.build(3, gates, [True, True]), line, [0, 1, 2], random.Random(0))
    assert ordered.steps[0][0] == -1  # in written order the first gate needs a SWAP first


@pytest.mark.parametrize("seed", range(6))
def test_every_gate_is_routed_exactly_once(seed):
    rng = random.Random(seed)
    n = 7
    coupling = Coupling(n, [(i, i + 1) for i in range(n - 1)])
    gates: list[tuple[int, ...]] = []
    classes: list[tuple[int, ...]] = []
    for _ in range(60):
        a, b = rng.sample(range(n), 2)
        kind = rng.choice([(Z, Z), (Z, X), (X, Z), (GENERAL, GENERAL), (X, X)])
        gates.append((a, b))
        classes.append(kind)
    skeleton = Skeleton.build(n, gates, [True] * len(gates), classes=classes)
    routed = route(skeleton, coupling, list(range(n)), rng)
    ran = sorted(g for g, _ in routed.steps if g >= 0)
    assert ran == list(range(len(gates)))
    # Every gate runs on coupled qubits, after all its predecessors.
    assert all(coupling.dist[qs[0]][qs[1]] == 1 for g, qs in routed.steps if g >= 0)
    position = {g: i for i, (g, _) in enumerate(routed.steps) if g >= 0}
    for p, succ in enumerate(skeleton.successors):
        assert all(position[p] < position[s] for s in succ)


def qaoa_like(n: int, layers: int, seed: int) -> cirq.Circuit:
    """ZZ-phase cost layers on a random graph and X mixers, written as CNOT-Rz-CNOT or ZZ."""
    rng = np.random.default_rng(seed)
    q = cirq.LineQubit.range(n)
    edges = [(a, b) for a in range(n) for b in range(a + 1, n) if rng.random() < 0.45]
    circuit = cirq.Circuit(cirq.H.on_each(*q))
    for _ in range(layers):
        gamma, beta = rng.uniform(-np.pi, np.pi, size=2)
        for a, b in edges:
            if rng.random() < 0.5:
                circuit.append([cirq.CNOT(q[a], q[b]), cirq.rz(gamma)(q[b]), cirq.CNOT(q[a], q[b])])
            else:
                circuit.append(cirq.ZZPowGate(exponent=gamma / np.pi)(q[a], q[b]))
        circuit.append(cirq.rx(2 * beta).on_each(*q))
    return circuit


def phase_ladder(n: int, seed: int) -> cirq.Circuit:
    """Controlled-phase ladders (QFT/QPE-like) with Hadamards and Z rotations between them."""
    rng = np.random.default_rng(seed)
    q = cirq.LineQubit.range(n)
    circuit = cirq.Circuit(cirq.H.on_each(*q))
    for j in rng.permutation(n):
        circuit.append(cirq.H(q[j]))
        for k in rng.permutation(n):
            if k != j:
                circuit.append(cirq.CZ(q[j], q[k]) ** float(rng.uniform(-1, 1)))
                if rng.random() < 0.3:
                    circuit.append(cirq.rz(float(rng.uniform(-3, 3)))(q[k]))
    return circuit


def fan_in_out(n: int, seed: int) -> cirq.Circuit:
    """CNOTs sharing controls or targets (hubs), Rx on targets and Rz on controls between."""
    rng = np.random.default_rng(seed)
    q = cirq.LineQubit.range(n)
    circuit = cirq.Circuit(cirq.H.on_each(*q))
    for _ in range(3 * n):
        other = int(rng.integers(1, n - 1))  # neither hub
        a, b = (0, other) if rng.random() < 0.5 else (other, n - 1)  # a hub control or target
        circuit.append(cirq.CNOT(q[a], q[b]))
        if rng.random() < 0.3:
            circuit.append([cirq.rz(float(rng.uniform(-3, 3)))(q[a]), cirq.rx(0.3)(q[b])])
    return circuit


@pytest.mark.parametrize("device", [GARNET, APOLLO, ADONIS], ids=lambda d: d.name)
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("build", [qaoa_like, phase_ladder, fan_in_out], ids=lambda f: f.__name__)
def test_commuting_gate_heavy_circuits_compile_equivalently(device, seed, build):
    n = 5 if device is ADONIS else 9
    circuit = build(n, 2, seed) if build is qaoa_like else build(n, seed)
    circuit.append(cirq.measure(*sorted(circuit.all_qubits()), key="m"))
    for level in (2, 3):
        result = transpile(circuit, device, seed=seed, optimization_level=level)
        assert_equivalent(circuit, result, seed=seed)


def _cz_depth(circuit: cirq.AbstractCircuit) -> int:
    level: dict[cirq.Qid, int] = {}
    for op in circuit.all_operations():
        if len(op.qubits) == 2:
            level[op.qubits[0]] = level[op.qubits[1]] = 1 + max(level.get(q, 0) for q in op.qubits)
    return max(level.values(), default=0)


def _brick_wall(n: int, layers: int, seed: int) -> cirq.Circuit:
    """Rotations, then ``layers`` times two layers of CZ on a line (even pairs, odd pairs)."""
    rng = np.random.default_rng(seed)
    q = cirq.LineQubit.range(n)
    moments: list[list[cirq.Operation]] = []
    for _ in range(layers):
        moments.append([cirq.ry(float(rng.uniform(0, np.pi))).on(x) for x in q])
        moments.append([cirq.CZ(q[i], q[i + 1]) for i in range(0, n - 1, 2)])
        moments.append([cirq.CZ(q[i], q[i + 1]) for i in range(1, n - 1, 2)])
    return cirq.Circuit(*moments, cirq.measure(*q, key="m"))


@pytest.mark.parametrize("device", [APOLLO, GARNET], ids=["apollo", "garnet"])
@pytest.mark.parametrize("level", [0, 1, 2, 3])
@pytest.mark.parametrize(("n", "layers"), [(6, 1), (10, 1), (8, 3)])
def test_layers_of_commuting_czs_keep_their_depth(device, level, n, layers):
    # All CZs of a layer commute, so the router may run them in any order; taken in the order
    # they became ready, the two layers of a 10-qubit wall became a chain of nine.
    circuit = _brick_wall(n, layers, seed=n + layers)
    result = transpile(circuit, device, optimization_level=level, seed=0)
    cz = [op for op in result.circuit.all_operations() if len(op.qubits) == 2]
    assert len(cz) == layers * (n - 1)  # a line fits: no SWAP
    assert _cz_depth(result.circuit) == _cz_depth(circuit) == 2 * layers
    if n <= 8:
        assert_equivalent(circuit, result)
