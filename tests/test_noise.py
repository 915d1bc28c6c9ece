"""The calibration noise model: physics checks against closed forms and against Cirq's simulators.

Statistical tolerances: a frequency estimated from N shots has standard deviation
sqrt(p(1-p)/N) <= 0.5/sqrt(N); the tests allow 4.5 standard deviations (a false failure about once
in 150,000 runs), with seeds fixed so they are deterministic anyway.
"""

from __future__ import annotations

import dataclasses
import math

import cirq
import numpy as np
import pytest

from cirq_iqm_ext.calibration import builtin_calibration
from cirq_iqm_ext.device.barriers import barrier
from cirq_iqm_ext.device.builtin import Adonis
from cirq_iqm_ext.device.move_gate import IQMMoveGate
from cirq_iqm_ext.errors import CircuitValidationError
from cirq_iqm_ext.sampling.local import local_sampler
from cirq_iqm_ext.simulation.noise import (
    IQMNoiseModel,
    depolarizing_remainder,
    readout_kraus,
    thermal_parameters,
)
from cirq_iqm_ext.simulation.simulator import CalibratedSimulator
from cirq_iqm_ext.wire.models import Circuit, Instruction, RunRequest

ADONIS = builtin_calibration("adonis")
Q1, Q2, Q3 = cirq.NamedQubit("QB1"), cirq.NamedQubit("QB2"), cirq.NamedQubit("QB3")


def tolerance(shots: int) -> float:
    return 4.5 * 0.5 / math.sqrt(shots)


@pytest.mark.parametrize("duration", [1e-6, 10e-6, 40e-6])
def test_idle_qubit_relaxes_and_dephases_as_t1_and_t2_predict(duration):
    t1, t2 = ADONIS.qubit("QB1").t1, ADONIS.qubit("QB1").t2
    idle = cirq.Circuit(cirq.wait(Q1, nanos=duration * 1e9))
    simulator = cirq.DensityMatrixSimulator(noise=IQMNoiseModel(ADONIS), dtype=np.complex128)
    excited = simulator.simulate(idle, initial_state=1).final_density_matrix
    assert excited[1, 1].real == pytest.approx(math.exp(-duration / t1), rel=1e-6)
    plus = simulator.simulate(idle, initial_state=np.array([1, 1]) / math.sqrt(2))
    coherence = abs(plus.final_density_matrix[0, 1])
    assert coherence == pytest.approx(0.5 * math.exp(-duration / t2), rel=1e-6)


def test_thermal_parameters_edge_cases():
    assert thermal_parameters(30e-6, 20e-6, 0.0) == (0.0, 0.0)
    gamma, p_z = thermal_parameters(30e-6, 60e-6, 1e-6)  # T2 = 2 T1: no pure dephasing
    assert gamma > 0 and p_z == 0


def _average_fidelity(noisy: list[np.ndarray], ideal: np.ndarray) -> float:
    d = ideal.shape[0]
    process = sum(abs(np.trace(ideal.conj().T @ k)) ** 2 for k in noisy) / d**2
    return (d * process + 1) / (d + 1)


def _compose(first: list[np.ndarray], second: list[np.ndarray]) -> list[np.ndarray]:
    return [b @ a for a in first for b in second]


@pytest.mark.parametrize(("n", "fidelity", "duration"), [(1, 0.999, 40e-9), (2, 0.992, 70e-9)])
def test_depolarizing_remainder_makes_the_gate_fidelity_exact(n, fidelity, duration):
    t1, t2 = 30e-6, 20e-6
    gamma, p_z = thermal_parameters(t1, t2, duration)
    p = depolarizing_remainder(fidelity, duration, [(t1, t2)] * n)
    assert p > 0
    one = _compose(
        list(cirq.kraus(cirq.amplitude_damp(gamma))), list(cirq.kraus(cirq.phase_flip(p_z)))
    )
    thermal = one if n == 1 else [np.kron(a, b) for a in one for b in one]
    noisy = _compose(thermal, list(cirq.kraus(cirq.depolarize(p, n))))
    assert _average_fidelity(noisy, np.eye(2**n)) == pytest.approx(fidelity, abs=1e-9)


def test_relaxation_alone_worse_than_the_fidelity_gives_no_depolarizing():
    assert depolarizing_remainder(0.9999, 1e-6, [(30e-6, 20e-6)]) == 0.0


def _predicted_probabilities(circuit: Circuit, calibration) -> np.ndarray:
    """Cirq's DensityMatrixSimulator with IQMNoiseModel, readout errors applied as channels."""
    simulator = CalibratedSimulator(None)
    cirq_circuit, measurements = simulator.build_circuit(circuit)
    measured = [q for _, qubits in measurements for q in qubits]
    unitary = cirq.Circuit(
        op for op in cirq_circuit.all_operations() if not cirq.is_measurement(op)
    )
    noisy = unitary.with_noise(IQMNoiseModel(calibration))
    for q in measured:
        figures = calibration.qubit(str(q))
        noisy.append(
            cirq.KrausChannel(
                readout_kraus(figures.readout_error_0_to_1, figures.readout_error_1_to_0)
            ).on(q)
        )
    result = cirq.DensityMatrixSimulator(dtype=np.complex128).simulate(noisy, qubit_order=measured)
    return np.diag(result.final_density_matrix).real


def prx(q: str, angle: float, phase: float) -> Instruction:
    return Instruction("prx", (q,), {"angle_t": angle, "phase_t": phase})


def ghz_circuit(qubits: list[str], *, parity: bool) -> Circuit:
    """GHZ on a star around QB3; with ``parity`` every qubit is rotated to the X basis."""
    centre, *leaves = qubits
    ins = [prx(centre, 0.25, 0.25)]
    for leaf in leaves:
        ins += [prx(leaf, 0.25, 0.25), Instruction("cz", (centre, leaf)), prx(leaf, 0.25, 0.75)]
    if parity:
        ins += [prx(q, 0.25, 0.75) for q in qubits]  # RY(-pi/2): X basis onto Z
    ins.append(Instruction("measure", tuple(qubits), {"key": "m"}))
    return Circuit("ghz", tuple(ins))


@pytest.mark.parametrize("max_density_qubits", [8, 0], ids=["density-matrix", "trajectories"])
def test_bell_fidelity_on_the_noisy_simulator_matches_the_prediction(max_density_qubits):
    circuit = ghz_circuit(["QB3", "QB1"], parity=False)
    predicted = _predicted_probabilities(circuit, ADONIS)
    correlated = predicted[0] + predicted[3]
    # The calibration figures alone: two prx + cz + prx, then both readouts must be right.
    rough = ADONIS.gate("cz", ("QB1", "QB3"))[0] * ADONIS.qubit("QB1").prx_fidelity ** 3
    assert correlated == pytest.approx(rough * 0.95, abs=0.03)
    shots = 20_000 if max_density_qubits else 5_000  # a trajectory per shot costs ~1 ms
    simulator = CalibratedSimulator(
        ADONIS, seed=7, max_density_qubits=max_density_qubits, max_trajectories=shots
    )
    bits = simulator.run_circuit_arrays(circuit, shots)["m"]
    observed = np.mean(bits[:, 0] == bits[:, 1])
    assert observed == pytest.approx(correlated, abs=tolerance(shots))
    assert observed < 0.99  # noise is really there


@pytest.mark.parametrize("max_density_qubits", [8, 0], ids=["density-matrix", "trajectories"])
def test_ghz_parity_contrast_matches_the_prediction(max_density_qubits):
    circuit = ghz_circuit(["QB3", "QB1", "QB2"], parity=True)
    predicted = _predicted_probabilities(circuit, ADONIS)
    signs = np.array([(-1) ** bin(i).count("1") for i in range(8)])
    expected = float(predicted @ signs)
    shots = 20_000 if max_density_qubits else 3_000
    simulator = CalibratedSimulator(
        ADONIS, seed=11, max_density_qubits=max_density_qubits, max_trajectories=shots
    )
    bits = simulator.run_circuit_arrays(circuit, shots)["m"]
    observed = float(np.mean((-1.0) ** bits.sum(axis=1)))
    # A +-1 average has standard deviation <= 1/sqrt(N): twice the frequency bound.
    assert abs(observed) == pytest.approx(abs(expected), abs=2 * tolerance(shots))
    assert 0.6 < abs(expected) < 0.98


def test_readout_error_rates_come_back_as_configured():
    qubits = ("QB1", "QB2", "QB3", "QB4", "QB5")
    shots = 40_000
    simulator = CalibratedSimulator(ADONIS, seed=3)
    zeros = Circuit("zeros", (Instruction("measure", qubits, {"key": "m"}),))
    bits = simulator.run_circuit_arrays(zeros, shots)["m"]
    for column, q in enumerate(qubits):
        rate = bits[:, column].mean()
        assert rate == pytest.approx(ADONIS.qubit(q).readout_error_0_to_1, abs=tolerance(shots))
    ones = Circuit(
        "ones",
        tuple(prx(q, 0.5, 0.0) for q in qubits) + (Instruction("measure", qubits, {"key": "m"}),),
    )
    predicted = _predicted_probabilities(ones, ADONIS)
    bits = simulator.run_circuit_arrays(ones, shots)["m"]
    for column, q in enumerate(qubits):
        flipped = 1 - bits[:, column].mean()
        reads_zero = sum(p for i, p in enumerate(predicted) if not (i >> (4 - column)) & 1)
        assert flipped == pytest.approx(reads_zero, abs=tolerance(shots))
        # Dominated by the configured 1 -> 0 error (the prx adds ~0.1 %).
        assert flipped == pytest.approx(ADONIS.qubit(q).readout_error_1_to_0, abs=0.006)


def test_noiseless_simulator_is_exact_and_noisy_one_is_not():
    circuit = ghz_circuit(["QB3", "QB1"], parity=False)
    exact = CalibratedSimulator(None, seed=1).run_circuit_arrays(circuit, 2000)["m"]
    assert set(map(tuple, exact.tolist())) <= {(0, 0), (1, 1)}
    noisy = CalibratedSimulator(ADONIS, seed=1).run_circuit_arrays(circuit, 2000)["m"]
    assert {(0, 1), (1, 0)} & set(map(tuple, noisy.tolist()))


def test_heralding_drops_shots_with_a_nonzero_herald():
    circuit = ghz_circuit(["QB3", "QB1", "QB2"], parity=False)
    shots = 10_000
    request = RunRequest((circuit,), shots=shots, heralding_mode="zeros")
    (result,) = CalibratedSimulator(ADONIS, seed=5).run(request)
    kept = len(result["m"])
    keep = np.prod([1 - ADONIS.qubit(q).readout_error_0_to_1 for q in ("QB1", "QB2", "QB3")])
    assert kept < shots
    assert kept / shots == pytest.approx(keep, abs=tolerance(shots))
    (exact,) = CalibratedSimulator(None, seed=5).run(request)
    assert len(exact["m"]) == shots


def test_local_sampler_validates_and_simulates_with_noise():
    device = Adonis()
    sampler = local_sampler(device, seed=3)
    bell = cirq.Circuit(
        cirq.PhasedXPowGate(phase_exponent=0.5, exponent=0.5).on_each(Q1, Q3),
        cirq.CZ(Q1, Q3),
        cirq.PhasedXPowGate(phase_exponent=1.5, exponent=0.5).on(Q3),
        cirq.measure(Q1, Q3, key="m"),
    )
    result = sampler.run(bell, repetitions=4000)
    bits = result.measurements["m"]
    agree = np.mean(bits[:, 0] == bits[:, 1])
    assert 0.85 < agree < 0.99
    exact = local_sampler(device, seed=3, noise=False).run(bell, repetitions=500)
    assert np.all(exact.measurements["m"][:, 0] == exact.measurements["m"][:, 1])
    with pytest.raises(CircuitValidationError):
        sampler.run(cirq.Circuit(cirq.CZ(Q1, Q2), cirq.measure(Q1, key="m")))


def test_local_sampler_sweeps_resolve_parameters():
    import sympy

    theta = sympy.Symbol("theta")
    circuit = cirq.Circuit(cirq.X(Q1) ** theta, cirq.measure(Q1, key="m"))
    sampler = local_sampler(Adonis(), seed=1, noise=False)
    results = sampler.run_sweep(circuit, cirq.Points("theta", [0.0, 1.0]), repetitions=20)
    assert [r.measurements["m"].mean() for r in results] == [0.0, 1.0]


def test_local_sampler_needs_a_device():
    with pytest.raises(TypeError, match="needs an IQMDevice"):
        local_sampler("adonis")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- waits


def test_local_sampler_runs_waits_as_idle_relaxation():
    figures = builtin_calibration("adonis").qubit("QB1")
    sampler = local_sampler(Adonis(), seed=5)
    shots = 10_000
    circuit = cirq.Circuit(
        cirq.X(Q1), cirq.wait(Q1, nanos=2 * figures.t1 * 1e9), cirq.measure(Q1, key="m")
    )
    p1 = math.exp(-2)
    e01, e10 = figures.readout_error_0_to_1 or 0.0, figures.readout_error_1_to_0 or 0.0
    expected = p1 * (1 - e10) + (1 - p1) * e01
    observed = float(sampler.run(circuit, repetitions=shots).measurements["m"].mean())
    assert abs(observed - expected) < 5 * math.sqrt(expected * (1 - expected) / shots) + 0.005
    # Noiseless, a wait changes nothing; several qubits may wait together.
    exact = local_sampler(Adonis(), seed=5, noise=False)
    both = cirq.Circuit(
        cirq.X.on_each(Q1, Q2), cirq.wait(Q1, Q2, micros=50), cirq.measure(Q1, Q2, key="m")
    )
    assert exact.run(both, repetitions=20).measurements["m"].tolist() == [[1, 1]] * 20


def test_local_sampler_waits_agree_with_the_cirq_noise_model():
    # Ramsey: X90, wait, X90; the fast simulator and Cirq's density matrix with IQMNoiseModel.
    calibration = builtin_calibration("adonis")
    t2 = calibration.qubit("QB1").t2
    circuit = cirq.Circuit(
        cirq.X(Q1) ** 0.5, cirq.wait(Q1, nanos=0.7 * t2 * 1e9), cirq.X(Q1) ** 0.5
    )
    noisy = circuit.with_noise(IQMNoiseModel(calibration, readout_errors=False))
    rho = cirq.DensityMatrixSimulator(dtype=np.complex128).simulate(noisy).final_density_matrix
    expected = float(rho[1, 1].real)
    shots = 20_000
    simulator = CalibratedSimulator(calibration, seed=8)
    native = Circuit(
        "ramsey",
        (
            Instruction("prx", ("QB1",), {"angle_t": 0.25, "phase_t": 0.0}),
            Instruction("delay", ("QB1",), {"duration": 0.7 * t2}),
            Instruction("prx", ("QB1",), {"angle_t": 0.25, "phase_t": 0.0}),
            Instruction("measure", ("QB1",), {"key": "m"}),
        ),
    )
    schedule = simulator.schedule(native, None, calibration)
    assert schedule.durations[1] == pytest.approx(0.7 * t2)
    assert abs(expected - (1 + math.exp(-0.7)) / 2) < 0.01  # both follow exp(-t/T2)
    # The server's readout errors are part of its sampling; compare with perfect readout.
    perfect = dataclasses.replace(
        calibration,
        qubits={
            name: dataclasses.replace(figures, readout_error_0_to_1=0.0, readout_error_1_to_0=0.0)
            for name, figures in calibration.qubits.items()
        },
    )
    bits = CalibratedSimulator(perfect, seed=8).run_circuit_arrays(native, shots)["m"]
    assert bits.shape == (shots, 1)
    assert abs(float(bits.mean()) - expected) < 5 * math.sqrt(expected * (1 - expected) / shots)


def test_local_sampler_refuses_waits_where_the_device_lists_no_delay():
    from cirq_iqm_ext.device.iqm_device import IQMDevice

    spec = Adonis().architecture
    without = dataclasses.replace(
        spec, operations={k: v for k, v in spec.operations.items() if k != "delay"}
    )
    sampler = local_sampler(IQMDevice(without), calibration="adonis", seed=1)
    with pytest.raises(CircuitValidationError, match="delay"):
        sampler.run(cirq.Circuit(cirq.wait(Q1, micros=1), cirq.measure(Q1, key="m")))


def test_the_noise_model_prices_native_gates_as_the_server_does():
    # As the server's schedule: a barrier costs nothing, a MOVE has the move figures (not cz's).
    deneb = builtin_calibration("deneb")
    model = IQMNoiseModel(deneb, readout_errors=False)
    qubit, resonator = cirq.NamedQubit("QB1"), cirq.NamedQubit("COMP_R")
    assert model.noisy_moment(cirq.Moment(barrier(qubit)), [qubit]) == [cirq.Moment(barrier(qubit))]
    fidelity, duration = deneb.gate("move", ("QB1", "COMP_R"))
    assert (fidelity, duration) != deneb.gate("cz", ("QB1", "COMP_R"))
    move = cirq.Moment(IQMMoveGate().on(qubit, resonator))
    moments = model.noisy_moment(move, [qubit, resonator])
    coherence = [(deneb.qubit(n).t1, deneb.qubit(n).t2) for n in ("QB1", "COMP_R")]
    (depolarizing,) = moments[1].operations
    assert depolarizing.gate == cirq.depolarize(
        depolarizing_remainder(fidelity, duration, coherence), n_qubits=2
    )
    damping = {op.qubits[0]: op.gate.gamma for op in moments[2].operations}
    assert damping[qubit] == pytest.approx(thermal_parameters(*coherence[0], duration)[0])


# Dynamic circuits -----------------------------------------------------------------------------


def _reset_closed_form(start: int, q: str) -> float:
    """P(|1>) after one active reset of a basis state (CalibratedSimulator._run_dynamic's model)."""
    figures = ADONIS.qubit(q)
    p01, p10 = figures.readout_error_0_to_1, figures.readout_error_1_to_0
    gm = thermal_parameters(figures.t1, figures.t2, ADONIS.measure_duration)[0]
    gp = thermal_parameters(figures.t1, figures.t2, figures.prx_duration)[0]
    f = (
        2
        / 3
        * depolarizing_remainder(
            figures.prx_fidelity, figures.prx_duration, [(figures.t1, figures.t2)]
        )
    )
    if start == 0:
        return p01 * (1 - f) * (1 - gp)
    return (p10 * (1 - gm) + (1 - p10) * (gm * (1 - f) + (1 - gm) * f)) * (1 - gp)


@pytest.mark.parametrize("start", [0, 1])
def test_reset_channel_is_the_active_reset_model(start):
    circuit = cirq.Circuit(cirq.ResetChannel().on(Q1))
    simulator = cirq.DensityMatrixSimulator(noise=IQMNoiseModel(ADONIS), dtype=np.complex128)
    rho = simulator.simulate(circuit, initial_state=start).final_density_matrix
    assert rho[1, 1].real == pytest.approx(_reset_closed_form(start, "QB1"), rel=1e-6)


def test_mid_circuit_readout_errors_flip_the_bit_not_the_qubit():
    """QB1 stays |0>; its mid-circuit reading errs, the qubit does not: a second measurement
    reads 1 only by its own readout error, and classical control sees the erroneous bit."""
    shots = 4_000  # Cirq runs these shot by shot
    circuit = cirq.Circuit(
        cirq.measure(Q1, key="a"),
        cirq.X(Q2).with_classical_controls("a"),
        cirq.measure(Q1, key="again"),
        cirq.measure(Q2, key="b"),
    )
    result = cirq.DensityMatrixSimulator(noise=IQMNoiseModel(ADONIS), seed=3).run(
        circuit, repetitions=shots
    )
    a, again, b = (result.measurements[k][:, 0] for k in ("a", "again", "b"))
    p01 = ADONIS.qubit("QB1").readout_error_0_to_1
    binomial = 4.5 * math.sqrt(p01 * (1 - p01) / shots)
    assert a.mean() == pytest.approx(p01, abs=binomial)
    assert again.mean() == pytest.approx(p01, abs=binomial)
    # Independent errors: both readings wrong only about p01² of the time.
    assert np.mean(a & again) < 0.01
    assert (b[a == 1] == 1).mean() > 0.9  # the X followed the bit as read


def test_local_sampler_runs_dynamic_cirq_circuits_like_the_server():
    shots = 20_000
    x = cirq.PhasedXPowGate(exponent=1.0, phase_exponent=0.0)
    reset = cirq.Circuit(x.on(Q1), cirq.ResetChannel().on(Q1), cirq.measure(Q1, key="m"))
    feed = cirq.Circuit(
        cirq.PhasedXPowGate(exponent=0.5, phase_exponent=0.5).on(Q1),
        cirq.measure(Q1, key="a"),
        x.on(Q3).with_classical_controls("a"),
        cirq.measure(Q3, key="b"),
    )
    sampler = local_sampler(Adonis(), seed=4)
    server = CalibratedSimulator(ADONIS, seed=5)
    served_reset = server.run_circuit_arrays(
        Circuit(
            "r",
            (
                Instruction("prx", ("QB1",), {"angle_t": 0.5, "phase_t": 0.0}),
                Instruction("reset", ("QB1",)),
                Instruction("measure", ("QB1",), {"key": "m"}),
            ),
        ),
        shots,
    )["m"]
    local_reset = sampler.run(reset, repetitions=shots).measurements["m"]
    assert local_reset.mean() == pytest.approx(served_reset.mean(), abs=2 * tolerance(shots) / 3)
    measured = sampler.run(feed, repetitions=shots).measurements
    disagreement = (measured["a"] != measured["b"]).mean()
    p01, p10 = (
        ADONIS.qubit("QB3").readout_error_0_to_1,
        ADONIS.qubit("QB3").readout_error_1_to_0,
    )
    assert disagreement == pytest.approx((p01 + p10) / 2, abs=tolerance(shots) / 2 + 0.003)
