"""Hub-shaped and Toffoli-heavy circuits: seeded property tests of equivalence, and the hub-walk
placement (one qubit talking to many runs with about one CZ per hop of the hub, the same for
every seed)."""

from __future__ import annotations

import itertools
import random

import cirq
import pytest
from equivalence import assert_equivalent

from cirq_iqm_ext.compiler.hub import hub_and_partners, hub_starts, hub_walk
from cirq_iqm_ext.compiler.routing import Coupling, Skeleton
from cirq_iqm_ext.compiler.transpiler import transpile
from cirq_iqm_ext.device.builtin import Aphrodite, Apollo, Garnet

GARNET, APOLLO, APHRODITE = Garnet(), Apollo(), Aphrodite()
ONE_QUBIT = [cirq.H, cirq.T, cirq.S, cirq.X, cirq.rx(0.3), cirq.ry(-1.1)]


def _coupling(device) -> Coupling:
    qubits = sorted(device.qubits)
    index = {q: i for i, q in enumerate(qubits)}
    return Coupling(len(qubits), [(index[a], index[b]) for a, b in device.cz_pairs])


def cz_count(circuit: cirq.AbstractCircuit) -> int:
    return sum(1 for op in circuit.all_operations() if op.gate == cirq.CZ)


def hub_circuit(n: int, seed: int, *, extra: int = 2) -> cirq.Circuit:
    """A hub (the last qubit) meeting every other qubit in a random order, some twice, with
    random single-qubit gates between and ``extra`` interactions among the partners."""
    rng = random.Random(seed)
    q = cirq.LineQubit.range(n)
    hub = q[-1]
    order = q[:-1]
    rng.shuffle(order)
    order += rng.sample(q[:-1], 2)
    circuit = cirq.Circuit(cirq.H.on_each(*q))
    for p in order:
        gate = rng.choice([cirq.CNOT, cirq.CZ, cirq.CZ**0.5, cirq.CNOT])
        pair = (p, hub) if rng.random() < 0.5 else (hub, p)
        circuit.append([rng.choice(ONE_QUBIT)(p), gate(*pair)])
    for _ in range(extra):
        a, b = rng.sample(q[:-1], 2)
        circuit.append(cirq.CNOT(a, b))
    return circuit + cirq.Circuit(cirq.measure(*q, key="m"))


def toffoli_circuit(n: int, seed: int, n_ops: int = 14) -> cirq.Circuit:
    """Mostly doubly controlled gates (CCX, CCZ, CSWAP) on random triples, with CNOTs and
    single-qubit gates between."""
    rng = random.Random(seed)
    q = cirq.LineQubit.range(n)
    circuit = cirq.Circuit(cirq.H.on_each(*q))
    for _ in range(n_ops):
        kind = rng.random()
        if kind < 0.6:
            gate = rng.choice([cirq.CCX, cirq.CCZ, cirq.CSWAP])
            circuit.append(gate(*rng.sample(q, 3)))
        elif kind < 0.8:
            circuit.append(cirq.CNOT(*rng.sample(q, 2)))
        else:
            circuit.append(rng.choice(ONE_QUBIT)(rng.choice(q)))
    return circuit + cirq.Circuit(cirq.measure(*q, key="m"))


def deutsch_jozsa(n: int) -> cirq.Circuit:
    """A balanced Deutsch-Jozsa oracle: every input meets the ancilla (the last qubit) once."""
    q = cirq.LineQubit.range(n)
    circuit = cirq.Circuit(cirq.X(q[-1]), cirq.H.on_each(*q))
    circuit.append(cirq.CNOT(p, q[-1]) for p in q[:-1])
    circuit.append(cirq.H.on_each(*q[:-1]))
    return circuit + cirq.Circuit(cirq.measure(*q[:-1], key="m"))


# ------------------------------------------------------------------------ property tests


@pytest.mark.parametrize("device", [GARNET, APOLLO], ids=lambda d: d.name)
@pytest.mark.parametrize("level", [2, 3])
@pytest.mark.parametrize("seed", range(3))
def test_hub_circuits_compile_equivalently(device, level, seed):
    circuit = hub_circuit(8, seed)
    result = transpile(circuit, device, optimization_level=level, seed=seed)
    device.validate_circuit(result.circuit)
    assert_equivalent(circuit, result, seed=seed)


@pytest.mark.parametrize("device", [GARNET, APOLLO], ids=lambda d: d.name)
@pytest.mark.parametrize("level", [1, 2, 3])
@pytest.mark.parametrize("seed", range(3))
def test_toffoli_heavy_circuits_compile_equivalently(device, level, seed):
    circuit = toffoli_circuit(6, seed)
    result = transpile(circuit, device, optimization_level=level, seed=seed)
    device.validate_circuit(result.circuit)
    assert_equivalent(circuit, result, seed=seed)


@pytest.mark.parametrize("seed", range(3))
def test_a_hub_with_an_initial_mapping_stays_where_the_user_put_it(seed):
    circuit = hub_circuit(6, seed, extra=0)
    qubits = sorted(circuit.all_qubits())
    chosen = sorted(GARNET.qubits)[-len(qubits) :]
    mapping = dict(zip(qubits, chosen, strict=True))
    result = transpile(circuit, GARNET, initial_mapping=mapping, seed=seed)
    assert result.initial_mapping == mapping
    assert_equivalent(circuit, result, seed=seed)


# ------------------------------------------------------------------------- placement


def test_the_hub_is_the_qubit_with_most_partners_in_first_use_order():
    gates = [(0, 3), (3, 1), (2,), (3, 2), (0, 1), (3, 0)]
    skeleton = Skeleton.build(4, gates, [len(g) == 2 for g in gates])
    assert hub_and_partners(skeleton) == (3, [0, 1, 2])
    line = Skeleton.build(3, [(0, 1), (1, 2)], [True, True])
    assert hub_and_partners(line) is None


@pytest.mark.parametrize("device", [GARNET, APOLLO, APHRODITE], ids=lambda d: d.name)
def test_hub_walk_puts_partners_next_to_the_hubs_path(device):
    coupling = _coupling(device)
    partners = list(range(11))
    for start in hub_starts(coupling):
        layout = hub_walk(11, partners, 12, coupling, start)
        assert layout[11] == start
        assert len(coupling.adj[start]) == max(len(a) for a in coupling.adj)
        placed = [p for p in layout if p >= 0]
        assert len(placed) == len(set(placed)) == 12
        # The first partners are the hub's neighbours; each later one is next to an earlier
        # partner (the one the hub swapped with), so each hop costs about one CZ.
        first = len(coupling.adj[start])
        assert all(coupling.dist[start][layout[p]] == 1 for p in partners[:first])
        for k in partners[first:]:
            assert any(coupling.dist[layout[k]][layout[j]] == 1 for j in partners[:k])


@pytest.mark.parametrize("device", [GARNET, APOLLO, APHRODITE], ids=lambda d: d.name)
@pytest.mark.parametrize("n", [8, 12, 16])
def test_deutsch_jozsa_costs_about_one_cz_per_hub_hop_for_every_seed(device, n):
    circuit = deutsch_jozsa(n)
    counts = set()
    for seed in range(3):
        result = transpile(circuit, device, seed=seed)
        counts.add(cz_count(result.circuit))
        if n <= 8:
            assert_equivalent(circuit, result, seed=seed)
    assert len(counts) == 1, counts
    # n - 1 CNOTs; the hub meets up to 4 partners where it starts, then at least 2 new ones per
    # hop, each hop one CZ: at most n - 1 + ceil((n - 5) / 2).
    assert counts.pop() <= n - 1 + (n - 4) // 2


@pytest.mark.parametrize("device", [GARNET, APOLLO], ids=lambda d: d.name)
def test_ghz_20_without_a_20_qubit_path_needs_one_merged_swap(device):
    q = cirq.LineQubit.range(20)
    circuit = cirq.Circuit(cirq.H(q[0]), (cirq.CNOT(a, b) for a, b in itertools.pairwise(q)))
    result = transpile(circuit, device)
    # The 19-qubit path's last but one qubit neighbours the 20th: one SWAP merged into the
    # chain's last CNOT (2 CZ for both) instead of a separate SWAP (3 CZ).
    assert cz_count(result.circuit) == 20
