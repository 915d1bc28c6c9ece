"""What Cirq's characterisation experiments should measure on the noisy server, and the fits.

The expectations follow the server's noise model (`simulation.noise`) at the figures the
server serves:

* an idle qubit's excited population decays as ``exp(-t/T1)`` and its coherence as ``exp(-t/T2)``;
  the dephasing is Markovian (white), so a Hahn echo refocuses nothing and decays with the same T2
  over its total free evolution;
* every gate's noise (relaxation over its duration plus a depolarising remainder) has exactly the
  calibrated average gate fidelity ``F``. Twirled by random gates such a channel acts like a
  depolarising channel with parameter ``(d·F - 1)/(d - 1)``; that is the pure-depolarising
  reference used for randomized benchmarking and XEB;
* virtual Z rotations are free and noiseless, so a diagonal Clifford costs nothing;
* readout flips a 0 to 1 with ``error_0_to_1`` and a 1 to 0 with ``error_1_to_0``.

The decay fits are weighted least squares with standard errors from the shot counts (binomial);
XEB's estimate gets a jackknife error over its random circuits. The tests' tolerances are a number
of these standard errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cirq
import numpy as np
import pandas as pd
from scipy import optimize

from cirq_iqm_ext.calibration import CalibrationSet, QubitCalibration
from cirq_iqm_ext.simulation.noise import depolarizing_remainder, thermal_parameters

# Served values ------------------------------------------------------------------------------------

#: Metric name suffix (``QB1.<suffix>``) -> field of the calibration JSON format.
_QUBIT_METRICS = {
    "t1_time": "t1",
    "t2_time": "t2",
    "prx.fidelity": "prx_fidelity",
    "prx.duration": "prx_duration",
    "readout.error_0_to_1": "readout_error_0_to_1",
    "readout.error_1_to_0": "readout_error_1_to_0",
}
_COUPLER_METRICS = {
    "cz.fidelity": "cz_fidelity",
    "cz.duration": "cz_duration",
    "move.fidelity": "move_fidelity",
    "move.duration": "move_duration",
}


def calibration_from_metrics(body: Mapping[str, Any]) -> CalibrationSet:
    """The calibration set a ``get_calibration_metrics()`` answer describes.

    Args:
        body: ``{"calibration_set_id", "metrics": {"QB1.t1_time": {"value": "4.4e-05", ...}}}``.

    Returns:
        The figures as a :class:`~cirq_iqm_ext.calibration.CalibrationSet`.
    """
    qubits: dict[str, dict[str, float]] = {}
    couplers: dict[str, dict[str, float]] = {}
    measure_duration = None
    for key, entry in body["metrics"].items():
        locus, _, metric = key.partition(".")
        value = float(entry["value"])
        if metric == "measure.duration":
            measure_duration = value
        elif "," in locus and metric in _COUPLER_METRICS:
            couplers.setdefault(locus, {})[_COUPLER_METRICS[metric]] = value
        elif metric in _QUBIT_METRICS:
            qubits.setdefault(locus, {})[_QUBIT_METRICS[metric]] = value
    data: dict[str, Any] = {
        "calibration_set_id": body["calibration_set_id"],
        "qubits": qubits,
        "couplers": couplers,
    }
    if measure_duration is not None:
        data["measure_duration"] = measure_duration
    return CalibrationSet.from_dict(data)


# Reference values -----------------------------------------------------------------------------


def depolarizing_parameter(fidelity: float, n_qubits: int) -> float:
    """The parameter ``λ`` of the depolarising channel with average gate ``fidelity``.

    ``ρ -> λ·ρ + (1 - λ)·I/d`` has average fidelity ``(1 + (d - 1)·λ)/d``; solved for ``λ``.
    """
    d = 2**n_qubits
    return (d * fidelity - 1) / (d - 1)


def ramsey_decay_time(t2: float) -> float:
    """The 1/e time of a Ramsey fringe's amplitude, in units of the delay: T2 itself."""
    return t2


def echo_decay_time(t2: float) -> float:
    """The 1/e time of a Hahn echo's amplitude, in units of Cirq's ``delay_ns``.

    Cirq's echo waits ``delay`` before and again after its π pulse, so the coherence has evolved
    freely for ``2·delay``. White (Markovian) dephasing is not refocused by the echo: the
    amplitude is ``exp(-2·delay/T2)``, a 1/e time of ``T2/2`` in ``delay``.
    """
    return t2 / 2


def prx_pulses(gate: cirq.Gate | cirq.Operation) -> int:
    """The ``prx`` pulses the one-gate-at-a-time translation makes of a single-qubit gate.

    A gate with an X/Y part is one pulse; a diagonal gate (a Z rotation) is a virtual frame change.
    """
    return 0 if cirq.is_diagonal(cirq.unitary(gate), atol=1e-9) else 1


def rb_decay_per_clifford(prx_fidelity: float, pulses: Sequence[int]) -> float:
    """The expected randomized-benchmarking decay ``p`` of ``A·p^m + B``.

    Each Clifford is drawn uniformly from a gate set whose elements translate to ``pulses[i]``
    ``prx`` pulses; each pulse acts (after twirling) like a depolarising channel of parameter
    ``λ = 2·F - 1``, and depolarising channels commute with every gate, so a Clifford of ``n``
    pulses multiplies the survival signal by ``λ**n`` and the average Clifford by the mean.

    Args:
        prx_fidelity: The served average gate fidelity of one ``prx`` pulse.
        pulses: Pulses of each Clifford of the gate set the experiment draws from.
    """
    lam = depolarizing_parameter(prx_fidelity, 1)
    return float(np.mean([lam**n for n in pulses]))


def xeb_decay_per_cycle(
    cz_fidelity: float, prx_fidelities: Sequence[float], pulses_per_cycle: Sequence[int]
) -> float:
    """The expected two-qubit XEB decay per cycle (Cirq's ``layer_fid``).

    A random two-qubit circuit scrambles errors over the 15 non-identity two-qubit Paulis, so the
    XEB fidelity decays per cycle by the product of each gate's depolarising parameter averaged
    over them: ``(4·F_cz - 1)/3`` for the ``cz``, and for a pulse on one qubit (which leaves the 3
    Paulis that are the identity there alone) ``(3 + 12·(2·F - 1))/15``.

    Args:
        cz_fidelity: The served average gate fidelity of the pair's ``cz``.
        prx_fidelities: The served ``prx`` fidelity of each of the two qubits.
        pulses_per_cycle: The ``prx`` pulses each qubit gets per cycle.
    """
    out = depolarizing_parameter(cz_fidelity, 2)
    for fidelity, pulses in zip(prx_fidelities, pulses_per_cycle, strict=True):
        one = depolarizing_parameter(fidelity, 1)
        out *= ((3 + 12 * one) / 15) ** pulses
    return out


def measured_readout_errors(
    figures: QubitCalibration, *, zero_pulse: bool = True
) -> tuple[float, float]:
    """The readout errors a readout calibration should measure on a qubit: the served ones, plus
    what the preparation pulses get wrong.

    |1> is prepared by one ``prx`` π pulse; |0> by a ``prx`` of angle 0 when ``zero_pulse`` (Cirq
    prepares with ``X**flip``, a sweep parameter). Per the noise model a pulse is followed by its
    depolarising remainder ``p`` (which flips the population with probability ``2p/3``) and then
    by relaxation over its duration (a 1 decays with probability ``γ``).

    Returns:
        ``(error_0_to_1, error_1_to_0)`` as the experiment should estimate them.
    """
    e01, e10 = figures.readout_error_0_to_1 or 0.0, figures.readout_error_1_to_0 or 0.0
    fidelity, duration = figures.prx_fidelity or 1.0, figures.prx_duration or 0.0
    p = depolarizing_remainder(fidelity, duration, [(figures.t1, figures.t2)])
    gamma, _ = thermal_parameters(figures.t1, figures.t2, duration)
    flip = 2 * p / 3
    excited_after_zero = flip * (1 - gamma) if zero_pulse else 0.0
    ground_after_one = flip + (1 - flip) * gamma
    contrast = 1 - e01 - e10
    return e01 + contrast * excited_after_zero, e10 + contrast * ground_after_one


# Fits -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fit:
    """A weighted least-squares fit.

    Attributes:
        params: The fitted parameters.
        errors: Their standard errors (from the data's standard deviations).
        chi2: The fit's chi-square.
        dof: Its degrees of freedom.
    """

    params: np.ndarray
    errors: np.ndarray
    chi2: float
    dof: int


def weighted_fit(
    model: Callable[..., np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    sigma: np.ndarray,
    p0: Sequence[float],
) -> Fit:
    """Fits ``model(x, *params)`` to ``y`` with absolute standard deviations ``sigma``."""
    params, cov = optimize.curve_fit(
        model, x, y, p0=list(p0), sigma=sigma, absolute_sigma=True, maxfev=20000
    )
    chi2 = float(np.sum(((model(x, *params) - y) / sigma) ** 2))
    return Fit(np.asarray(params), np.sqrt(np.diag(cov)), chi2, len(x) - len(params))


def exponential(x: np.ndarray, amplitude: float, tau: float, offset: float) -> np.ndarray:
    """``amplitude·exp(-x/tau) + offset``."""
    return amplitude * np.exp(-x / tau) + offset


def fit_binomial_decay(
    x: np.ndarray, ones: Sequence[np.ndarray], shots: int, tau_guess: float
) -> Fit:
    """Fits ``P_k(1) = amplitude_k·exp(-x/tau) + offset_k`` with one ``tau`` to several series.

    Each series ``ones[k]`` counts ones out of ``shots`` at the points ``x`` (e.g. the two
    tomography bases of a T2 experiment: the decay shows in whichever the state points along).
    The binomial standard deviations come from the previous fit's curves (not from the counts,
    which can be 0 or ``shots``), and the fit is repeated with them.

    Returns:
        The fit; ``params`` are ``tau`` followed by ``(amplitude_k, offset_k)`` per series.
    """
    x = np.asarray(x, dtype=float)
    frequencies = [np.asarray(k, dtype=float) / shots for k in ones]

    def model(_: np.ndarray, tau: float, *pairs: float) -> np.ndarray:
        return np.concatenate(
            [exponential(x, pairs[2 * k], tau, pairs[2 * k + 1]) for k in range(len(frequencies))]
        )

    y = np.concatenate(frequencies)
    p0 = [tau_guess]
    for f in frequencies:
        p0 += [f[0] - f[-1], f[-1]]
    curve = y  # the first pass weighs by the counts themselves
    for _ in range(3):
        clipped = np.clip(curve, 0.5 / shots, 1 - 0.5 / shots)
        fit = weighted_fit(
            model, np.arange(len(y)), y, np.sqrt(clipped * (1 - clipped) / shots), p0
        )
        curve = model(x, *fit.params)
        p0 = list(fit.params)
    return fit


def rb_model(m: np.ndarray, amplitude: float, offset: float, p: float) -> np.ndarray:
    """The randomized-benchmarking survival ``amplitude·p^m + offset``."""
    return amplitude * p**m + offset


def fit_rb(num_cliffords: np.ndarray, survival: np.ndarray, shots: int) -> Fit:
    """Fits ``A·p^m + B`` to mean survival probabilities, each from ``shots`` shots in total.

    Shot noise is binomial around the fitted curve; the circuit-to-circuit spread of the survival
    (the number of pulses of a random sequence varies) is negligible next to it for weak noise.
    """
    m = np.asarray(num_cliffords, dtype=float)
    y = np.asarray(survival, dtype=float)
    p0 = [0.5, 0.5, 0.999]
    sigma = np.sqrt(np.clip(y * (1 - y), 0.25 / shots, None) / shots)
    fit = weighted_fit(rb_model, m, y, sigma, p0)
    for _ in range(2):
        curve = np.clip(rb_model(m, *fit.params), 1 / shots, 1 - 1 / shots)
        fit = weighted_fit(rb_model, m, y, np.sqrt(curve * (1 - curve) / shots), list(fit.params))
    return fit


def xeb_terms(sampled: pd.DataFrame, pure: pd.DataFrame) -> pd.DataFrame:
    """The per-circuit terms of Cirq's least-squares XEB fidelity estimate.

    Per circuit and cycle depth, with ideal probabilities ``p`` and sampled frequencies ``q`` of
    the ``D = 4`` outcomes: ``x = Σp² - 1/D`` and ``y = Σp·q - 1/D``; the estimate at a depth is
    ``Σxy / Σx²`` over the circuits (``cirq.experiments.xeb_fitting.benchmark_2q_xeb_fidelities``).

    Args:
        sampled: ``sample_2q_xeb_circuits``' frame (index ``circuit_i, cycle_depth``;
            ``sampled_probs``).
        pure: ``simulate_2q_xeb_circuits``' frame (same index; ``pure_probs``).

    Returns:
        Columns ``circuit_i``, ``cycle_depth``, ``x``, ``y``.
    """
    df = sampled.join(pure, how="inner").reset_index()
    d = 4
    p = np.array(df["pure_probs"].to_list())
    q = np.array(df["sampled_probs"].to_list())
    df["x"] = np.sum(p**2, axis=1) - 1 / d
    df["y"] = np.sum(p * q, axis=1) - 1 / d
    return df[["circuit_i", "cycle_depth", "x", "y"]]


def xeb_model(depth: np.ndarray, amplitude: float, layer_fid: float) -> np.ndarray:
    """Cirq's XEB decay ``amplitude·layer_fid^depth``."""
    return amplitude * layer_fid**depth


def xeb_layer_fidelity(terms: pd.DataFrame) -> tuple[float, float]:
    """Cirq's estimate: the fidelity per depth, then an unweighted fit of ``a·layer_fid^depth``.

    Returns:
        ``(a, layer_fid)``.
    """
    sums = terms.assign(xy=terms["x"] * terms["y"], xx=terms["x"] ** 2).groupby("cycle_depth")
    per_depth = sums["xy"].sum() / sums["xx"].sum()
    depths = per_depth.index.to_numpy(dtype=float)
    (a, layer_fid), _ = optimize.curve_fit(
        xeb_model, depths, per_depth.to_numpy(), p0=[1.0, 0.99], maxfev=20000
    )
    return float(a), float(layer_fid)


def jackknife_xeb_layer_fidelity(terms: pd.DataFrame) -> tuple[float, float]:
    """:func:`xeb_layer_fidelity`'s ``layer_fid`` with its jackknife standard error.

    Leaving out one random circuit at a time (at every depth, as each circuit's truncations are
    correlated) covers both the shot noise and the spread of the finite set of random circuits,
    which for two qubits is as large as the shot noise.

    Returns:
        ``(layer_fid, standard_error)``.
    """
    circuits = np.unique(terms["circuit_i"])
    n = len(circuits)
    _, estimate = xeb_layer_fidelity(terms)
    leave_one_out = np.array(
        [xeb_layer_fidelity(terms[terms["circuit_i"] != c])[1] for c in circuits]
    )
    error = math.sqrt((n - 1) / n * float(np.sum((leave_one_out - leave_one_out.mean()) ** 2)))
    return estimate, error
