"""The numpy engine and qsim compute the same physics; qsim is optional and falls back loudly.

* Noiseless: final amplitudes of seeded random circuits agree to 1e-5 (both engines apply the same
  matrices, so not even a global phase differs).
* Noisy: shots sampled by qsim trajectories, by numpy trajectories and from the exact density
  matrix (numpy) are compared by total variation distance with a bound that holds with
  probability ``1 - ALPHA``: for ``N`` samples of a distribution ``p``,
  ``E[TVD(p̂, p)] <= ½·Σ √(p_i(1-p_i)/N)`` and, TVD moving by at most ``1/N`` per sample,
  McDiarmid's inequality adds ``√(ln(1/ALPHA) / (2N))``; two samples are bounded by the sum of
  their bounds. Each test also shows the bound is small next to the effect of the noise.
* Independence on the qsim path: the spread of P(all zeros) across 30 jobs is binomial.
* Routing: MOVE blocks and dynamic circuits run on the numpy engine whatever is asked; delays run
  on qsim with the same relaxation.
* Without qsim (its import made to fail) ``auto`` falls back to the numpy engine with the same
  statistics, and ``engine="qsim"`` is refused with the command to install it.

Tests that need qsim use ``pytest.importorskip``; the fallback test covers the other case, and CI
installs qsim, so none is skipped there.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from benchmarks.mirror_circuits import connected_qubits, mirror_circuit
from scipy.stats import chi2
from test_simulator import density_matrix_probabilities, noisier, random_circuit

from cirq_iqm_ext.calibration import builtin_calibration
from cirq_iqm_ext.errors import IQMError
from cirq_iqm_ext.simulation import engines, qsim_engine
from cirq_iqm_ext.simulation.engines import ENGINE_ENV, EngineError
from cirq_iqm_ext.simulation.simulator import CalibratedSimulator
from cirq_iqm_ext.wire.models import Circuit, Instruction

APOLLO = builtin_calibration("apollo")
ADONIS = builtin_calibration("adonis")
#: Significance of every statistical bound here.
ALPHA = 1e-4


@pytest.fixture
def no_qsim(monkeypatch):
    """qsimcirq cannot be imported (as on a machine without the extra)."""
    monkeypatch.setitem(sys.modules, "qsimcirq", None)  # makes `import qsimcirq` fail
    engines.forget_qsim()
    yield
    monkeypatch.undo()
    engines.forget_qsim()


def counts_of(bits: np.ndarray) -> np.ndarray:
    n = bits.shape[1]
    return np.bincount(bits @ (1 << np.arange(n)[::-1]), minlength=2**n)


def tvd(a: np.ndarray, b: np.ndarray) -> float:
    return 0.5 * float(np.abs(a / a.sum() - b / b.sum()).sum())


def tvd_bound(p: np.ndarray, shots: int) -> float:
    """TVD(p̂, p) of ``shots`` samples stays below this with probability ``1 - ALPHA``."""
    mean = 0.5 * float(np.sqrt(p * (1 - p) / shots).sum())
    return mean + math.sqrt(math.log(1 / ALPHA) / (2 * shots))


def run(circuit: Circuit, shots: int, engine: str, calibration=APOLLO, seed: int = 1, **kwargs):
    simulator = CalibratedSimulator(calibration, seed=seed, engine=engine, **kwargs)
    return simulator.run_circuit_arrays(circuit, shots)["m"], simulator.methods


# Noiseless amplitudes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "layers", "seed"),
    [(1, 6, 0), (2, 6, 1), (3, 8, 2), (5, 8, 3), (8, 10, 4), (11, 8, 5), (14, 6, 6), (17, 4, 7)],
)
def test_noiseless_amplitudes_agree_between_engines(n, layers, seed):
    pytest.importorskip("qsimcirq")
    circuit = random_circuit(n, layers, seed)
    numpy_engine = CalibratedSimulator(None, engine="numpy")
    qsim = CalibratedSimulator(None, engine="qsim")
    qubits, ours = numpy_engine.final_state(circuit)
    qubits_q, theirs = qsim.final_state(circuit)
    assert qubits == qubits_q == [f"QB{i + 1}" for i in range(n)]
    assert numpy_engine.methods == {"numpy-state": 1}
    assert qsim.methods == {"qsim-state": 1}
    np.testing.assert_allclose(theirs, ours, atol=1e-5, rtol=0)
    assert abs(np.vdot(ours, ours) - 1) < 1e-4  # a real state, not two equal zeros


def test_noiseless_samples_from_qsim_follow_the_amplitudes():
    pytest.importorskip("qsimcirq")
    circuit = random_circuit(6, 8, 11)
    _, amplitudes = CalibratedSimulator(None, engine="numpy").final_state(circuit)
    bits, methods = run(circuit, 20_000, "qsim", calibration=None)
    assert set(methods) == {"qsim-state"}
    p = np.abs(amplitudes.astype(np.complex128)) ** 2
    assert tvd(counts_of(bits), p) < tvd_bound(p, 20_000)


# Noisy distributions --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_noisy_qsim_trajectories_match_the_exact_density_matrix(seed):
    pytest.importorskip("qsimcirq")
    calibration = noisier(APOLLO, 5.0)
    circuit = mirror_circuit(6, 3, seed=200 + seed)
    shots = 20_000
    exact = density_matrix_probabilities(circuit, calibration)  # Cirq running IQMNoiseModel
    qsim_bits, qsim_methods = run(circuit, shots, "qsim", calibration, seed=seed)
    numpy_bits, numpy_methods = run(
        circuit, shots, "numpy", calibration, seed=seed, max_density_qubits=0
    )
    assert set(qsim_methods) == {"qsim-trajectories"}
    assert set(numpy_methods) == {"numpy-trajectories"}
    bound = tvd_bound(exact, shots)
    assert tvd(counts_of(qsim_bits), exact) < bound
    assert tvd(counts_of(qsim_bits), counts_of(numpy_bits)) < 2 * bound
    noiseless = np.zeros_like(exact)
    noiseless[0] = 1
    assert tvd(exact, noiseless) > 4 * bound  # the bound is far below the noise's effect


def test_noisy_random_circuit_with_idle_qubits_agrees_between_engines():
    """Idle runs (where qsim merges relaxation) and qubits idle until the end."""
    pytest.importorskip("qsimcirq")
    calibration = noisier(ADONIS, 20.0)
    circuit = star_circuit(seed=5)
    shots = 20_000
    exact = density_matrix_probabilities(circuit, calibration)
    bits, methods = run(circuit, shots, "qsim", calibration)
    assert set(methods) == {"qsim-trajectories"}
    assert tvd(counts_of(bits), exact) < tvd_bound(exact, shots)
    assert tvd(exact, noiseless_probabilities(circuit)) > 4 * tvd_bound(exact, shots)


def star_circuit(seed: int) -> Circuit:
    """Adonis (a star around QB3): every cz waits on QB3, so the other qubits idle a lot."""
    rng = np.random.default_rng(seed)
    instructions = []
    for _ in range(6):
        for q in ("QB1", "QB2", "QB4", "QB5"):
            if rng.random() < 0.5:
                args = {"angle_t": float(rng.random()), "phase_t": float(rng.random())}
                instructions.append(Instruction("prx", (q,), args))
        other = ("QB1", "QB2", "QB4", "QB5")[int(rng.integers(4))]
        instructions.append(Instruction("cz", ("QB3", other)))
    instructions.append(Instruction("prx", ("QB3",), {"angle_t": 0.25, "phase_t": 0.0}))
    names = ("QB1", "QB2", "QB3", "QB4", "QB5")
    instructions.append(Instruction("measure", names, {"key": "m"}))
    return Circuit(f"star-{seed}", tuple(instructions))


def noiseless_probabilities(circuit: Circuit) -> np.ndarray:
    _, amplitudes = CalibratedSimulator(None, engine="numpy").final_state(circuit)
    return np.abs(amplitudes.astype(np.complex128)) ** 2


def test_a_delay_relaxes_the_same_on_qsim():
    pytest.importorskip("qsimcirq")
    (a, b), _ = connected_qubits(2)
    circuit = Circuit(
        "delay",
        (
            Instruction("prx", (a,), {"angle_t": 0.5, "phase_t": 0.0}),
            Instruction("prx", (b,), {"angle_t": 0.25, "phase_t": 0.0}),
            Instruction("cz", (a, b)),
            Instruction("delay", (a, b), {"duration": 30e-6}),
            Instruction("prx", (b,), {"angle_t": 0.25, "phase_t": 0.5}),
            Instruction("measure", (a, b), {"key": "m"}),
        ),
    )
    shots = 20_000
    exact = density_matrix_probabilities(circuit, APOLLO)
    bits, methods = run(circuit, shots, "qsim", APOLLO)
    assert set(methods) == {"qsim-trajectories"}
    assert tvd(counts_of(bits), exact) < tvd_bound(exact, shots)
    without_delay = Circuit("none", tuple(i for i in circuit.instructions if i.name != "delay"))
    assert tvd(exact, density_matrix_probabilities(without_delay, APOLLO)) > 4 * tvd_bound(
        exact, shots
    )


def test_qsim_shots_are_independent_across_jobs():
    """The spread of P(all zeros) over 30 jobs is the binomial one (χ², as in
    test_simulator_statistics); shared trajectories would inflate it."""
    pytest.importorskip("qsimcirq")
    circuit = mirror_circuit(6, 3, seed=6)
    calibration = noisier(APOLLO, 3.0)
    shots, repeats = 1000, 30
    estimates = np.array(
        [
            (run(circuit, shots, "qsim", calibration, seed=s)[0] == 0).all(axis=1).mean()
            for s in range(repeats)
        ]
    )
    p = estimates.mean()
    assert 0.2 < p < 0.9
    statistic = (repeats - 1) * estimates.var(ddof=1) / (p * (1 - p) / shots)
    assert chi2.ppf(ALPHA, repeats - 1) < statistic < chi2.ppf(1 - ALPHA, repeats - 1)


def test_seeds_of_one_run_are_distinct():
    seeds = qsim_engine.distinct_seeds(np.random.default_rng(0), 200_000)
    assert len(np.unique(seeds)) == 200_000
    assert seeds.max() < 2**32
    assert not np.all(np.diff(seeds.astype(np.int64)) > 0)  # shuffled, not sorted


# Choice and routing ---------------------------------------------------------------------------


def test_auto_uses_qsim_where_it_is_faster_and_numpy_where_it_is():
    pytest.importorskip("qsimcirq")
    small, large = mirror_circuit(6, 3, seed=1), mirror_circuit(12, 3, seed=1)
    assert set(run(small, 1000, "auto")[1]) == {"numpy-trajectories"}
    assert set(run(large, 1000, "auto")[1]) == {"qsim-trajectories"}
    assert set(run(large, 10, "auto", calibration=None)[1]) == {"qsim-state"}


def test_moves_and_dynamic_circuits_stay_on_the_numpy_engine():
    pytest.importorskip("qsimcirq")
    moves = random_circuit(6, 8, 100, moves=True)
    assert any(i.name == "move" for i in moves.instructions)
    assert set(run(moves, 100, "qsim", calibration=None)[1]) == {"numpy-state"}
    assert set(run(moves, 100, "qsim", calibration=noisier(APOLLO, 2.0))[1]) <= {
        "numpy-density",
        "numpy-trajectories",
    }
    qubits, _ = connected_qubits(2)
    dynamic = Circuit(
        "dynamic",
        (
            Instruction("prx", (qubits[0],), {"angle_t": 0.25, "phase_t": 0.0}),
            Instruction("measure", (qubits[0],), {"key": "mid", "feedback_key": "mid"}),
            Instruction(
                "cc_prx",
                (qubits[1],),
                {
                    "angle_t": 0.5,
                    "phase_t": 0.0,
                    "feedback_qubit": qubits[0],
                    "feedback_key": "mid",
                },
            ),
            Instruction("measure", (qubits[1],), {"key": "m"}),
        ),
    )
    bits, methods = run(dynamic, 2000, "qsim")
    assert set(methods) == {"numpy-dynamic"}
    assert 0.4 < bits.mean() < 0.6


def test_engine_is_chosen_by_argument_then_environment(monkeypatch):
    monkeypatch.setenv(ENGINE_ENV, "numpy")
    assert CalibratedSimulator(None).engine == "numpy"
    assert CalibratedSimulator(None, engine="auto").engine == "auto"
    monkeypatch.setenv(ENGINE_ENV, "fastest")
    with pytest.raises(EngineError, match=r"CIRQ_IQM_EXT_ENGINE='fastest'.*auto, numpy, qsim"):
        CalibratedSimulator(None)
    monkeypatch.delenv(ENGINE_ENV)
    assert CalibratedSimulator(None).engine == "auto"
    with pytest.raises(EngineError, match="engine='gpu'"):
        CalibratedSimulator(None, engine="gpu")
    assert issubclass(EngineError, IQMError) and issubclass(EngineError, ValueError)


# Without qsim ---------------------------------------------------------------------------------


def test_without_qsim_auto_falls_back_to_numpy_with_the_same_statistics(no_qsim):
    assert engines.qsim_module() is None
    with pytest.raises(EngineError, match=r'pip install "cirq-iqm-ext\[qsim\]"'):
        CalibratedSimulator(None, engine="qsim")
    simulator = CalibratedSimulator(APOLLO, seed=3)
    assert simulator.engine == "auto"
    large = mirror_circuit(12, 3, seed=1)  # qsim's, when installed
    bits = simulator.run_circuit_arrays(large, 1000)["m"]
    assert set(simulator.methods) == {"numpy-trajectories"}
    p_zero = (bits == 0).all(axis=1).mean()
    assert 0.2 < p_zero < 0.9  # noisy, and the state came back to |0…0> most of the time
    calibration = noisier(APOLLO, 5.0)
    circuit = mirror_circuit(6, 3, seed=201)
    exact = density_matrix_probabilities(circuit, calibration)
    sampled, methods = run(circuit, 20_000, "auto", calibration, max_density_qubits=0)
    assert set(methods) == {"numpy-trajectories"}
    assert tvd(counts_of(sampled), exact) < tvd_bound(exact, 20_000)
    _, methods = run(random_circuit(14, 4, 2), 100, "auto", calibration=None)
    assert set(methods) == {"numpy-state"}
