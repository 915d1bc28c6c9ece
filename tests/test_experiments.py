"""Cirq's characterisation experiments on the noisy server measure the calibration it serves.

Each test runs one of ``cirq.experiments``' experiments through :class:`IQMSampler` (with its
defaults: every gate translated to native pulses on its own, waits sent as delays, circuits on
device qubits run on those qubits) against :class:`EmbeddedServer` with ``noise="calibration"``, and
compares the result with the figures the server serves (read through ``get_calibration_metrics``).

The expected values and the fits are in ``experiment_reference``. Tolerances are ``SIGMAS``
standard errors of the estimate, derived from the shot counts (and, for XEB, from the spread of
the random circuits); seeds are fixed, so the tests are deterministic, and at the chosen sizes the
errors are small enough that a dropped wait, an optimised-away sequence or a doubled pulse count
lies many tolerances away.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import cirq
import numpy as np
import pytest
from cirq.experiments import random_quantum_circuit_generation, xeb_fitting, xeb_sampling
from cirq.experiments.t2_decay_experiment import ExperimentType
from cirq.experiments.xeb_simulation import simulate_2q_xeb_circuits
from experiment_reference import (
    calibration_from_metrics,
    echo_decay_time,
    fit_binomial_decay,
    fit_rb,
    jackknife_xeb_layer_fidelity,
    measured_readout_errors,
    prx_pulses,
    ramsey_decay_time,
    rb_decay_per_clifford,
    xeb_decay_per_cycle,
    xeb_terms,
)

from cirq_iqm_ext import IQMSampler
from cirq_iqm_ext.calibration import CalibrationSet
from cirq_iqm_ext.server import EmbeddedServer

#: Standard errors allowed between an estimate and its expectation (a false failure about once in
#: 1.7 million runs for a Gaussian estimate).
SIGMAS = 5.0
ARCHITECTURE = "garnet"
QUBIT = cirq.NamedQubit("QB3")
PAIR = (cirq.NamedQubit("QB1"), cirq.NamedQubit("QB2"))


@contextmanager
def noisy_server(seed: int, **sampler_options: Any) -> Iterator[tuple[IQMSampler, CalibrationSet]]:
    """A sampler on a fresh noisy server and the calibration that server serves."""
    with (
        EmbeddedServer(ARCHITECTURE, seed=seed, noise="calibration") as server,
        IQMSampler(server.url, **sampler_options) as sampler,
    ):
        yield sampler, calibration_from_metrics(sampler.client.get_calibration_metrics())


def test_t1_decay_measures_the_served_t1():
    # Delays exceed T2 by far, so the server's duration check is off.
    with noisy_server(101, max_circuit_duration_over_t2=0) as (sampler, served):
        t1 = served.qubit(QUBIT.name).t1
        repetitions = 5000
        result = cirq.experiments.t1_decay(
            sampler,
            qubit=QUBIT,
            num_points=15,
            min_delay=cirq.Duration(micros=1),
            max_delay=cirq.Duration(nanos=round(4 * t1 * 1e9)),
            repetitions=repetitions,
        )
    data = result.data
    assert (data["false_count"] + data["true_count"] == repetitions).all()
    fit = fit_binomial_decay(
        data["delay_ns"].to_numpy(), [data["true_count"].to_numpy()], repetitions, t1 * 1e9
    )
    estimate, error = fit.params[0] * 1e-9, fit.errors[0] * 1e-9
    print(f"T1 {QUBIT}: {estimate:.4g} ± {error:.2g} s, served {t1:.4g} s")
    assert abs(estimate - t1) < SIGMAS * error, (estimate, error, t1)
    # The experiment resolves T1 (no decay, e.g. waits dropped, gives no usable fit).
    assert error < 0.05 * t1, (estimate, error, t1)


@pytest.mark.parametrize(
    ("experiment_type", "decay_time"),
    [(ExperimentType.RAMSEY, ramsey_decay_time), (ExperimentType.HAHN_ECHO, echo_decay_time)],
    ids=["ramsey", "echo"],
)
def test_t2_decay_measures_the_served_t2(experiment_type, decay_time):
    with noisy_server(202, max_circuit_duration_over_t2=0) as (sampler, served):
        t2 = served.qubit(QUBIT.name).t2
        expected = decay_time(t2)
        repetitions = 10_000
        result = cirq.experiments.t2_decay(
            sampler,
            qubit=QUBIT,
            experiment_type=experiment_type,
            num_points=12,
            min_delay=cirq.Duration(nanos=0),
            max_delay=cirq.Duration(nanos=round(3 * expected * 1e9)),
            repetitions=repetitions,
        )
    # Both tomography bases share the decay time; the state's phase decides which one shows it.
    bases = [result.expectation_pauli_x, result.expectation_pauli_y]
    ones = [np.round((basis["value"].to_numpy() + 1) / 2 * repetitions) for basis in bases]
    fit = fit_binomial_decay(bases[0]["delay_ns"].to_numpy(), ones, repetitions, expected * 1e9)
    estimate, error = fit.params[0] * 1e-9, fit.errors[0] * 1e-9
    print(
        f"T2 {experiment_type.name} {QUBIT}: decay time {estimate:.4g} ± {error:.2g} s, "
        f"expected {expected:.4g} s (served T2 {t2:.4g} s)"
    )
    assert abs(estimate - expected) < SIGMAS * error, (estimate, error, expected)
    assert error < 0.05 * expected, (estimate, error, expected)


def test_single_qubit_rb_measures_the_served_prx_fidelity():
    parameters = cirq.experiments.RBParameters(
        num_clifford_range=(1, 150, 400, 800, 1200), num_circuits=10, repetitions=8000
    )
    # Cirq's RB circuits are one PhasedXZGate per Clifford: one prx pulse, none when diagonal.
    pulses = [prx_pulses(gate.to_phased_xz_gate()) for (gate,) in parameters.gateset()]
    assert 0 < sum(pulses) < len(pulses)
    with noisy_server(303) as (sampler, served):
        fidelity = served.qubit(QUBIT.name).prx_fidelity
        assert fidelity is not None
        result = cirq.experiments.single_qubit_rb(sampler, QUBIT, parameters, rng_or_seed=303)
    expected = rb_decay_per_clifford(fidelity, pulses)
    num_cliffords, survival = np.array(result.data).T
    fit = fit_rb(num_cliffords, survival, parameters.num_circuits * parameters.repetitions)
    estimate, error = fit.params[2], fit.errors[2]
    library = 1 - result.pauli_error() * 4 / 3
    print(
        f"RB {QUBIT}: decay per Clifford {estimate:.6f} ± {error:.2g} (Cirq's fit {library:.6f}), "
        f"expected {expected:.6f} from the served prx fidelity {fidelity}"
    )
    assert abs(estimate - expected) < SIGMAS * error, (estimate, error, expected)
    # The decay is resolved (an optimised-away sequence does not decay: no usable fit).
    assert SIGMAS * error < 0.3 * (1 - expected), (estimate, error, expected)


def test_two_qubit_xeb_measures_the_served_cz_fidelity():
    cycle_depths = (5, 30, 60, 100, 150)
    repetitions = 1000
    library = random_quantum_circuit_generation.generate_library_of_2q_circuits(
        n_library_circuits=30,
        two_qubit_gate=cirq.CZ,
        q0=PAIR[0],
        q1=PAIR[1],
        max_cycle_depth=max(cycle_depths),
        random_state=404,
    )
    # Every single-qubit gate of a cycle is one PhasedXZGate with an X part: one pulse per qubit.
    single = {prx_pulses(op) for c in library for op in c.all_operations() if len(op.qubits) == 1}
    assert single == {1}
    with noisy_server(404) as (sampler, served):
        sampled = xeb_sampling.sample_2q_xeb_circuits(
            sampler,
            library,
            cycle_depths,
            repetitions=repetitions,
            batch_size=len(library) * len(cycle_depths),
            progress_bar=None,
        )
    figures = served.gate("cz", tuple(q.name for q in PAIR))
    assert figures is not None
    prx = [served.qubit(q.name).prx_fidelity or 0.0 for q in PAIR]
    expected = xeb_decay_per_cycle(figures[0], prx, (1, 1))
    fits = xeb_fitting.fit_exponential_decays(
        xeb_fitting.benchmark_2q_xeb_fidelities(sampled, library, cycle_depths)
    )
    cirq_layer_fid = float(fits["layer_fid"].iloc[0])
    estimate, error = jackknife_xeb_layer_fidelity(
        xeb_terms(sampled, simulate_2q_xeb_circuits(library, cycle_depths))
    )
    print(
        f"XEB {PAIR[0]}-{PAIR[1]}: decay per cycle {estimate:.5f} ± {error:.2g}, expected "
        f"{expected:.5f} from the served cz fidelity {figures[0]} and prx fidelities {prx}"
    )
    assert cirq_layer_fid == pytest.approx(estimate, abs=1e-6)  # the same estimate as Cirq's
    assert abs(estimate - expected) < SIGMAS * error, (estimate, error, expected)
    assert SIGMAS * error < 0.3 * (1 - expected), (estimate, error, expected)


def test_readout_calibration_measures_the_served_readout_errors():
    with noisy_server(505) as (sampler, served):
        qubits = [cirq.NamedQubit(name) for name, q in served.qubits.items() if q.measurable]
        repetitions = 20_000
        result = cirq.experiments.estimate_single_qubit_readout_errors(
            sampler, qubits=qubits, repetitions=repetitions
        )
    rows = []
    for qubit in qubits:
        figures = served.qubit(qubit.name)
        expected = measured_readout_errors(figures)
        measured = (result.zero_state_errors[qubit], result.one_state_errors[qubit])
        served_errors = (figures.readout_error_0_to_1, figures.readout_error_1_to_0)
        for kind, estimate, reference, figure in zip(
            ("0->1", "1->0"), measured, expected, served_errors, strict=True
        ):
            error = np.sqrt(reference * (1 - reference) / repetitions)
            rows.append(
                f"{qubit} {kind}: {estimate:.4f}, expected {reference:.4f} ± {error:.1g} "
                f"(served {figure})"
            )
            assert abs(estimate - reference) < SIGMAS * error, rows[-1]
    print("readout errors:", "; ".join(rows))
