"""Noisy shots are independent: their statistics are those of a quantum computer.

* 30 jobs (different seeds) of a noisy 10- and 12-qubit mirror circuit at 1000 shots each: the
  spread of the estimated P(all zeros) across jobs must be the binomial one. Under independence
  ``29·s²/σ²`` (sample variance over binomial variance ``p(1-p)/1000``) is χ²(29); the test
  accepts it between the 1e-4 and 1 - 1e-4 quantiles (``s/σ`` within 0.61 .. 1.47). Shots that
  share trajectories inflate it: 40 shared trajectories gave ``s/σ`` of 3.3 and 4.2 here.
* At 6 and 8 qubits the sampled distribution (whichever method the simulator picks, and forced
  trajectories) matches Cirq's density-matrix simulator running ``IQMNoiseModel``: a χ² test of
  goodness of fit at 1e-4 significance, which the noiseless distribution must fail.
"""

from __future__ import annotations

import numpy as np
import pytest
from benchmarks.mirror_circuits import mirror_circuit
from scipy.stats import chi2
from test_simulator import cirq_state, density_matrix_probabilities, noisier, random_circuit

from cirq_iqm_ext.calibration import builtin_calibration
from cirq_iqm_ext.simulation.blas import blas_threads
from cirq_iqm_ext.simulation.simulator import (
    CalibratedSimulator,
    SimulationError,
    _density_matrix,
    _ThermalTable,
)
from cirq_iqm_ext.simulation.trajectories import sample_trajectories

APOLLO = builtin_calibration("apollo")
#: Significance of every statistical bound here.
ALPHA = 1e-4


@pytest.mark.parametrize(("n", "layers"), [(10, 4), (12, 3)])
def test_spread_across_jobs_is_binomial(n, layers):
    circuit = mirror_circuit(n, layers, seed=n)
    shots, repeats = 1000, 30
    estimates = np.array(
        [
            (CalibratedSimulator(APOLLO, seed=seed).run_circuit_arrays(circuit, shots)["m"] == 0)
            .all(axis=1)
            .mean()
            for seed in range(repeats)
        ]
    )
    p = estimates.mean()
    assert 0.2 < p < 0.9  # noisy enough to see, far from 0 and 1
    statistic = (repeats - 1) * estimates.var(ddof=1) / (p * (1 - p) / shots)
    low, high = chi2.ppf(ALPHA, repeats - 1), chi2.ppf(1 - ALPHA, repeats - 1)
    ratio = np.sqrt(statistic / (repeats - 1))
    assert low < statistic < high, f"spread {ratio:.2f}x the binomial error (p = {p:.3f})"


def goodness_of_fit(counts: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    """Pearson's χ² over outcomes expected at least 20 times (the rest pooled in one bin), and
    the statistic's 1 - 1e-4 quantile."""
    shots = counts.sum()
    large = expected * shots >= 20
    observed = np.append(counts[large], counts[~large].sum())
    wanted = np.append(expected[large], expected[~large].sum()) * shots
    keep = wanted > 0
    statistic = float((((observed - wanted) ** 2)[keep] / wanted[keep]).sum())
    return statistic, float(chi2.ppf(1 - ALPHA, keep.sum() - 1))


@pytest.mark.parametrize("force_trajectories", [False, True], ids=["chosen", "trajectories"])
@pytest.mark.parametrize("n", [6, 8])
def test_noisy_distribution_matches_cirq_density_matrix(n, force_trajectories):
    calibration = noisier(APOLLO, 5.0)
    circuit = mirror_circuit(n, 3, seed=100 + n)
    expected = density_matrix_probabilities(circuit, calibration)
    shots = 20_000
    simulator = CalibratedSimulator(
        calibration, seed=n, max_density_qubits=0 if force_trajectories else 10
    )
    bits = simulator.run_circuit_arrays(circuit, shots)["m"]
    counts = np.bincount(bits @ (1 << np.arange(n)[::-1]), minlength=2**n)
    statistic, bound = goodness_of_fit(counts, expected)
    assert statistic < bound
    noiseless = np.zeros(2**n)
    noiseless[0] = 1.0
    assert 0.5 * np.abs(expected - noiseless).sum() > 0.2  # the noise is strong enough to see
    assert goodness_of_fit(counts, 0.5 * (expected + noiseless))[0] > bound  # the test has power


def test_a_job_needing_more_trajectories_than_allowed_fails_loudly():
    circuit = mirror_circuit(10, 1, seed=1)
    simulator = CalibratedSimulator(APOLLO, seed=1, max_density_qubits=0, max_trajectories=100)
    assert simulator.run_circuit_arrays(circuit, 100)["m"].shape == (100, 10)
    with pytest.raises(SimulationError, match="101 independent noisy trajectories"):
        simulator.run_circuit_arrays(circuit, 101)


def test_trajectories_with_moves_match_the_exact_density_matrix():
    """The batch engine's two-qubit matrix path (a phased ``move``) and grouped gates, against
    the simulator's exact density matrix (itself checked against Cirq's) without readout."""
    calibration = noisier(builtin_calibration("adonis"), 20.0)
    circuit = random_circuit(5, 6, seed=3, moves=True)
    assert any(i.name == "move" for i in circuit.instructions)
    schedule = CalibratedSimulator(calibration).schedule(circuit, None, calibration)
    block = [f"QB{i + 1}" for i in range(5)]
    index = {q: i for i, q in enumerate(block)}
    noise = _ThermalTable(block, schedule.durations, calibration, schedule.measured_at)
    expected = _density_matrix(5, schedule.moments, index, noise)
    shots = 20_000
    rng = np.random.default_rng(4)
    counts = np.bincount(
        sample_trajectories(5, schedule.moments, index, noise, shots, rng), minlength=32
    )
    statistic, bound = goodness_of_fit(counts, expected)
    assert statistic < bound
    noiseless = np.abs(cirq_state(circuit, 5)) ** 2
    assert goodness_of_fit(counts, noiseless)[0] > bound  # the noise is visible


def test_blas_runs_single_threaded_during_a_simulation_and_is_restored(monkeypatch):
    before = blas_threads()
    if before is None:
        pytest.skip("no BLAS thread control found in this environment")
    seen = []
    original = CalibratedSimulator._run_circuit

    def recording(self, *args):
        seen.append(blas_threads())
        return original(self, *args)

    monkeypatch.setattr(CalibratedSimulator, "_run_circuit", recording)
    CalibratedSimulator(APOLLO, seed=1).run_circuit_arrays(mirror_circuit(4, 1, seed=1), 10)
    assert seen == [1]
    assert blas_threads() == before
