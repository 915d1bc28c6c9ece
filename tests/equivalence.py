"""Unitary equivalence of a compiled circuit and its input, up to the reported qubit maps."""

from __future__ import annotations

import cirq
import numpy as np

from cirq_iqm_ext.transpiler import TranspileResult


def _without_measurements(circuit: cirq.AbstractCircuit) -> cirq.Circuit:
    return cirq.Circuit(op for op in circuit.all_operations() if not cirq.is_measurement(op))


def _embed(state: np.ndarray, order: list[cirq.Qid], qubits: list[cirq.Qid]) -> np.ndarray:
    """``state`` on the first qubits of ``order`` (the rest |0>), as a vector over ``qubits``."""
    n_extra = len(qubits) - int(np.log2(len(state)))
    full = np.kron(state, np.eye(1, 2**n_extra, 0)[0]).reshape((2,) * len(qubits))
    return full.transpose([order.index(q) for q in qubits]).reshape(-1)


def assert_equivalent(
    original: cirq.AbstractCircuit,
    result: TranspileResult,
    *,
    resolver: cirq.ParamResolverOrSimilarType = None,
    seed: int = 0,
) -> None:
    """The compiled circuit maps a random input state like the original, up to the qubit maps.

    On measured qubits, Z rotations before the measurement may be dropped (no outcome can see
    them), so the states may differ there by per-qubit phases; elsewhere only by a global phase.
    """
    compiled = result.circuit
    if resolver is not None:
        original = cirq.resolve_parameters(original, resolver)
        compiled = cirq.resolve_parameters(compiled, resolver)
    logical = sorted(original.all_qubits())
    qubits = sorted(
        set(compiled.all_qubits())
        | set(result.initial_mapping.values())
        | set(result.final_mapping.values())
    )
    rng = np.random.default_rng(seed)
    psi = rng.normal(size=2 ** len(logical)) + 1j * rng.normal(size=2 ** len(logical))
    psi /= np.linalg.norm(psi)
    start_order = [result.initial_mapping[q] for q in logical]
    start = _embed(psi, start_order + [q for q in qubits if q not in start_order], qubits)
    out = cirq.final_state_vector(
        _without_measurements(original),
        initial_state=psi,
        qubit_order=logical,
        dtype=np.complex128,
    )
    end_order = [result.final_mapping[q] for q in logical]
    expected = _embed(out, end_order + [q for q in qubits if q not in end_order], qubits)
    actual = cirq.final_state_vector(
        _without_measurements(compiled),
        initial_state=start,
        qubit_order=qubits,
        dtype=np.complex128,
    )
    np.testing.assert_allclose(abs(actual), abs(expected), atol=1e-6)
    # A Z rotation may be dropped only where a measurement follows it: per-qubit phases are
    # allowed on measured qubits, nowhere else.
    measured = {q for op in compiled.all_operations() if cirq.is_measurement(op) for q in op.qubits}
    m = len(qubits)
    ref = int(np.argmax(abs(expected)))
    predicted = expected * (actual[ref] / expected[ref])
    index = np.arange(2**m)
    for k in range(m):
        if qubits[k] not in measured:
            continue
        bit = 1 << (m - 1 - k)
        other = ref ^ bit
        if abs(expected[other]) > 1e-4:
            phase = actual[other] / expected[other] / (actual[ref] / expected[ref])
            predicted = np.where((index & bit) != (ref & bit), predicted * phase, predicted)
    np.testing.assert_allclose(actual, predicted, atol=1e-6)
