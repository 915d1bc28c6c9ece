"""The server's numpy simulator against Cirq's: exact states, sampling, and noisy statistics.

The kernel (fused and grouped single-qubit gates, ``cz`` sign flips, phased ``move``) must give
the state ``cirq.final_state_vector`` gives for the same circuit, on seeded random native circuits
wide enough that grouped products at every position (first, middle, last qubits) are exercised.
Noisy results, from the exact density matrix and from Monte-Carlo trajectories, must match
``cirq.DensityMatrixSimulator`` running :class:`~cirq_iqm_ext.IQMNoiseModel`.
"""

from __future__ import annotations

import dataclasses

import cirq
import numpy as np
import pytest

from cirq_iqm_ext.calibration import CalibrationSet, builtin_calibration
from cirq_iqm_ext.simulation.noise import IQMNoiseModel, readout_kraus
from cirq_iqm_ext.simulation.simulator import (
    CalibratedSimulator,
    _density_matrix,
    _StateVector,
    _ThermalTable,
)
from cirq_iqm_ext.wire.models import Circuit, Instruction


def random_circuit(n: int, layers: int, seed: int, *, moves: bool = False) -> Circuit:
    """Layers of random ``prx`` on random qubits and ``cz`` (or ``move``) on random pairs."""
    rng = np.random.default_rng(seed)
    names = [f"QB{i + 1}" for i in range(n)]
    instructions: list[Instruction] = []
    for _ in range(layers):
        for q in names:
            if rng.random() < 0.8:
                args = {"angle_t": float(rng.random()), "phase_t": float(rng.random())}
                instructions.append(Instruction("prx", (q,), args))
        if n > 1:
            for _ in range(int(rng.integers(0, n))):
                a, b = (names[int(i)] for i in rng.choice(n, size=2, replace=False))
                kind = "move" if moves and rng.random() < 0.2 else "cz"
                instructions.append(Instruction(kind, (a, b)))
    instructions.append(Instruction("measure", tuple(names), {"key": "m"}))
    return Circuit(f"random-{n}-{seed}", tuple(instructions))


def kernel_state(circuit: Circuit, n: int) -> np.ndarray:
    """The kernel's final state over QB1..QBn (QB1 the top bit)."""
    simulator = CalibratedSimulator(None, seed=0)
    schedule = simulator.schedule(circuit, None, None)
    index = {f"QB{i + 1}": i for i in range(n)}
    state = _StateVector(n, np.random.default_rng(0))
    state.run(schedule.moments, index)
    return state.psi.astype(np.complex128)


def cirq_state(circuit: Circuit, n: int) -> np.ndarray:
    cirq_circuit, _ = CalibratedSimulator(None).build_circuit(circuit)
    unitary = cirq.Circuit(
        op for op in cirq_circuit.all_operations() if not cirq.is_measurement(op)
    )
    order = [cirq.NamedQubit(f"QB{i + 1}") for i in range(n)]
    return cirq.final_state_vector(unitary, qubit_order=order, dtype=np.complex128)


@pytest.mark.parametrize(
    ("n", "layers", "seed"),
    [(1, 6, 0), (2, 6, 1), (3, 8, 2), (5, 8, 3), (7, 10, 4), (9, 10, 5), (11, 8, 6)],
)
def test_kernel_state_matches_cirq_final_state_vector(n, layers, seed):
    ours = kernel_state(random_circuit(n, layers, seed), n)
    expected = cirq_state(random_circuit(n, layers, seed), n)
    # Equal up to a global phase (prx and PhasedXPowGate differ by one).
    overlap = abs(np.vdot(expected, ours))
    assert overlap == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(np.abs(ours) ** 2, np.abs(expected) ** 2, atol=1e-5)


@pytest.mark.parametrize("seed", range(4))
def test_kernel_with_moves_matches_cirq(seed):
    n = 6
    circuit = random_circuit(n, 8, 100 + seed, moves=True)
    ours = kernel_state(circuit, n)
    expected = cirq_state(circuit, n)
    assert abs(np.vdot(expected, ours)) == pytest.approx(1.0, abs=1e-4)


def test_sampled_shots_follow_the_exact_probabilities():
    n, shots = 4, 40_000
    circuit = random_circuit(n, 6, 11)
    probabilities = np.abs(cirq_state(circuit, n)) ** 2
    bits = CalibratedSimulator(None, seed=3).run_circuit_arrays(circuit, shots)["m"]
    assert bits.shape == (shots, n) and bits.dtype == np.uint8
    indices = bits @ (1 << np.arange(n - 1, -1, -1))
    observed = np.bincount(indices, minlength=2**n) / shots
    assert 0.5 * np.abs(observed - probabilities).sum() < 0.02


def test_unentangled_blocks_are_sampled_independently_and_exactly():
    circuit = Circuit(
        "blocks",
        (
            Instruction("prx", ("QB1",), {"angle_t": 0.5, "phase_t": 0.0}),  # X: always 1
            Instruction("prx", ("QB2",), {"angle_t": 0.25, "phase_t": 0.25}),
            Instruction("prx", ("QB3",), {"angle_t": 0.25, "phase_t": 0.25}),
            Instruction("cz", ("QB2", "QB3")),
            Instruction("prx", ("QB3",), {"angle_t": 0.25, "phase_t": 0.75}),  # Bell on QB2, QB3
            Instruction("measure", ("QB1", "QB2", "QB3"), {"key": "m"}),
        ),
    )
    bits = CalibratedSimulator(None, seed=5).run_circuit_arrays(circuit, 4000)["m"]
    assert bits[:, 0].all()
    assert (bits[:, 1] == bits[:, 2]).all()
    assert 0.45 < bits[:, 1].mean() < 0.55


def noisier(calibration: CalibrationSet, factor: float) -> CalibrationSet:
    """The set with T1 and T2 divided by ``factor`` (gate fidelities stay as they are)."""
    qubits = {
        name: dataclasses.replace(q, t1=q.t1 / factor, t2=q.t2 / factor)
        for name, q in calibration.qubits.items()
    }
    return dataclasses.replace(calibration, qubits=qubits)


def density_matrix_probabilities(circuit: Circuit, calibration: CalibrationSet) -> np.ndarray:
    """Cirq's DensityMatrixSimulator with IQMNoiseModel, readout errors applied as channels."""
    cirq_circuit, measurements = CalibratedSimulator(None).build_circuit(circuit)
    measured = [q for _, qubits in measurements for q in qubits]
    unitary = cirq.Circuit(
        op for op in cirq_circuit.all_operations() if not cirq.is_measurement(op)
    )
    noisy = unitary.with_noise(IQMNoiseModel(calibration))
    for q in measured:
        figures = calibration.qubit(str(q))
        noisy.append(
            cirq.KrausChannel(
                readout_kraus(
                    figures.readout_error_0_to_1 or 0.0, figures.readout_error_1_to_0 or 0.0
                )
            ).on(q)
        )
    result = cirq.DensityMatrixSimulator(dtype=np.complex128).simulate(noisy, qubit_order=measured)
    return np.diag(result.final_density_matrix).real


@pytest.mark.parametrize("max_density_qubits", [8, 0], ids=["density-matrix", "trajectories"])
def test_noisy_statistics_match_cirq_density_matrix_simulator(max_density_qubits):
    calibration = noisier(builtin_calibration("adonis"), 20.0)
    # Adonis is a star around QB3: every cz touches it.
    rng = np.random.default_rng(21)
    names = ["QB1", "QB2", "QB3"]
    instructions = []
    for _ in range(4):
        for q in names:
            args = {"angle_t": float(rng.random()), "phase_t": float(rng.random())}
            instructions.append(Instruction("prx", (q,), args))
        instructions.append(Instruction("cz", ("QB3", names[int(rng.integers(0, 2))])))
    instructions.append(Instruction("measure", tuple(names), {"key": "m"}))
    circuit = Circuit("noisy", tuple(instructions))
    expected = density_matrix_probabilities(circuit, calibration)
    exact = np.abs(cirq_state(circuit, 3)) ** 2
    shots = 20_000 if max_density_qubits else 6_000
    simulator = CalibratedSimulator(
        calibration, seed=9, max_density_qubits=max_density_qubits, max_trajectories=shots
    )
    bits = simulator.run_circuit_arrays(circuit, shots)["m"]
    observed = np.bincount(bits @ np.array([4, 2, 1]), minlength=8) / shots
    assert 0.5 * np.abs(expected - exact).sum() > 0.08  # the noise is strong enough to see
    assert 0.5 * np.abs(observed - expected).sum() < 0.035


def test_trajectory_average_matches_the_density_matrix_without_readout():
    """Relaxation jumps, dephasing flips and depolarising Paulis, averaged over trajectories."""
    calibration = noisier(builtin_calibration("adonis"), 30.0)
    circuit = Circuit(
        "idle-ish",
        (
            Instruction("prx", ("QB1",), {"angle_t": 0.5, "phase_t": 0.0}),
            Instruction("prx", ("QB3",), {"angle_t": 0.25, "phase_t": 0.25}),
            *[Instruction("cz", ("QB1", "QB3")) for _ in range(10)],
            Instruction("prx", ("QB3",), {"angle_t": 0.25, "phase_t": 0.75}),
            Instruction("measure", ("QB1", "QB3"), {"key": "m"}),
        ),
    )
    simulator = CalibratedSimulator(calibration, seed=2, max_density_qubits=8)
    schedule = simulator.schedule(circuit, None, calibration)
    index = {"QB1": 0, "QB3": 1}
    noise = _ThermalTable(["QB1", "QB3"], schedule.durations, calibration)
    exact = _density_matrix(2, schedule.moments, index, noise)
    rng = np.random.default_rng(4)
    runs = 3000
    average = np.mean(
        [_StateVector(2, rng).run(schedule.moments, index, noise) for _ in range(runs)], axis=0
    )
    assert np.abs(average - exact).max() < 0.02
    assert exact[2] > 0.05  # QB1 decayed from 1 to 0 in a noticeable fraction
