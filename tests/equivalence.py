"""Unitary equivalence of a compiled circuit and its input, up to the reported qubit maps."""

from __future__ import annotations

import cirq
import numpy as np

from cirq_iqm_ext.compiler.transpiler import TranspileResult


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


def is_dynamic(circuit: cirq.AbstractCircuit) -> bool:
    """Whether the circuit measures mid-circuit, resets or feeds a bit forward."""
    return not circuit.are_all_measurements_terminal() or any(
        op.classical_controls or isinstance(op.gate, cirq.ResetChannel)
        for op in circuit.all_operations()
    )


def assert_same_distribution(
    original: cirq.AbstractCircuit,
    result: TranspileResult,
    *,
    repetitions: int = 4000,
    seed: int = 0,
) -> None:
    """A dynamic circuit and its compiled form give the same joint distribution of every key's
    records (sampled; the bound is four times the distance two samples of one distribution
    show on average, so only a real difference crosses it)."""

    def histogram(circuit: cirq.AbstractCircuit) -> dict[tuple[int, ...], float]:
        run = cirq.Simulator(seed=seed).run(circuit, repetitions=repetitions)
        keys = sorted(run.records)
        rows = zip(*(run.records[k].reshape(repetitions, -1) for k in keys), strict=True)
        counts: dict[tuple[int, ...], float] = {}
        for row in rows:
            outcome = tuple(int(b) for part in row for b in part)
            counts[outcome] = counts.get(outcome, 0) + 1 / repetitions
        return counts

    a, b = histogram(original), histogram(result.circuit)
    outcomes = set(a) | set(b)
    tvd = 0.5 * sum(abs(a.get(k, 0) - b.get(k, 0)) for k in outcomes)
    # E|p̂ - q̂| for two samples of p: sqrt(2 p (1 - p) / N) * sqrt(2 / pi) per outcome.
    noise = 0.5 * sum(
        np.sqrt(2 * m * (1 - m) / repetitions) * np.sqrt(2 / np.pi)
        for m in (((a.get(k, 0) + b.get(k, 0)) / 2) for k in outcomes)
    )
    assert tvd < 4 * noise + 0.01, f"total variation distance {tvd:.3f} (noise {noise:.3f})"
