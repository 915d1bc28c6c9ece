"""Tests of chain-shaped placement: a circuit whose interactions form one path runs SWAP-free
wherever the device has a path that long."""

from __future__ import annotations

import itertools

import cirq
import numpy as np
import pytest
from equivalence import assert_equivalent

from cirq_iqm_ext.compiler.placement import chain_order, device_path
from cirq_iqm_ext.compiler.routing import Coupling
from cirq_iqm_ext.compiler.transpiler import transpile
from cirq_iqm_ext.device.builtin import Adonis, Aphrodite, Apollo, Deneb, Garnet


def _coupling(device) -> Coupling:
    qubits = sorted(device.qubits)
    index = {q: i for i, q in enumerate(qubits)}
    return Coupling(len(qubits), [(index[a], index[b]) for a, b in device.cz_pairs])


def _chain(order: list[int]) -> cirq.Circuit:
    q = cirq.LineQubit.range(len(order))
    circuit = cirq.Circuit(cirq.H(q[order[0]]))
    circuit.append(cirq.CNOT(q[a], q[b]) for a, b in itertools.pairwise(order))
    return circuit + cirq.Circuit(cirq.measure(*q, key="m"))


def cz_count(circuit: cirq.AbstractCircuit) -> int:
    return sum(1 for op in circuit.all_operations() if op.gate == cirq.CZ)


# Device, and the longest chain it has a path for (Apollo and Garnet have no 20-qubit path: an
# exhaustive search proves it; Adonis is a star; Deneb's fictional qubit graph is complete).
CASES = [(Adonis(), 3), (Apollo(), 19), (Garnet(), 19), (Aphrodite(), 40), (Deneb(), 6)]


@pytest.mark.parametrize(("device", "n"), CASES, ids=lambda x: getattr(x, "name", str(x)))
@pytest.mark.parametrize("level", [0, 2])
def test_ghz_on_a_path_needs_no_swap(device, n, level):
    circuit = _chain(list(range(n)))
    result = transpile(circuit, device, optimization_level=level)
    assert result.final_mapping == result.initial_mapping
    if not device.resonators:  # on Deneb each CZ goes through MOVEs, counted there
        assert cz_count(result.circuit) == n - 1
    if n <= 12:
        assert_equivalent(circuit, result)


@pytest.mark.parametrize("seed", range(3))
def test_a_shuffled_chain_is_found_and_runs_swap_free(seed):
    order = [int(i) for i in np.random.default_rng(seed).permutation(12)]
    circuit = _chain(order)
    result = transpile(circuit, Garnet(), seed=seed)
    assert result.final_mapping == result.initial_mapping
    assert cz_count(result.circuit) == 11
    assert_equivalent(circuit, result, seed=seed)


@pytest.mark.parametrize("device", [Apollo(), Garnet(), Aphrodite()], ids=lambda d: d.name)
def test_device_paths_are_simple_paths_on_couplers(device):
    coupling = _coupling(device)
    pairs = {frozenset(e) for e in coupling.edges}
    for length in (2, 7, 15, coupling.n):
        path = device_path(coupling, length)
        assert len(path) <= length and len(set(path)) == len(path)
        assert all(frozenset(e) in pairs for e in itertools.pairwise(path))
    assert len(device_path(coupling, 15)) == 15


def test_only_single_paths_are_chains():
    assert chain_order({(0, 1): 1, (1, 2): 2}) == [0, 1, 2]
    assert chain_order({(2, 1): 1, (0, 2): 1}) == [0, 2, 1]
    assert chain_order({(0, 1): 1, (0, 2): 1, (0, 3): 1}) is None  # a star
    assert chain_order({(0, 1): 1, (1, 2): 1, (0, 2): 1}) is None  # a cycle
    assert chain_order({(0, 1): 1, (2, 3): 1}) is None  # two pieces
    assert chain_order({}) is None
