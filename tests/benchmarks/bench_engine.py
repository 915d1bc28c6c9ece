"""Benchmark of the simulation engines, each figure next to its baseline from the same run.

Ours is :meth:`CalibratedSimulator.run` (the server worker's entry point: a run request in,
measurement arrays out) with the default engine choice (``auto``); the line names the methods
it picked. Every figure is the median of a few repeats, ours and the baseline interleaved so that
load on the machine hits both alike; one thread each (qsim ``cpu_threads=1``, BLAS pinned).

(a) Noiseless, 20 Apollo qubits, 200 CZ, 1000 shots; baseline ``qsimcirq.QSimSimulator.run``
    alone (target <= 1.1x).
(b) Noisy, 1000 independent shots of a mirror circuit at 10 and 12 qubits; baseline qsim running
    :class:`~cirq_iqm_ext.IQMNoiseModel` with 1000 repetitions, one trajectory each
    (target <= 1.0x).
(c) A noisy sweep, 100 points x 1000 shots, at 6, 8, 10 and 12 qubits (bench_server's sweep
    circuit); ours runs every point, the baseline (as in (b)) a few points per repeat, scaled
    per point; the line says how many (target <= 1.0x).

Without qsimcirq it says so and stops (there is no baseline). Rows go to
``.bench-results/engine.json`` like the other benchmarks (``_report.py``).

Usage: ``python tests/benchmarks/bench_engine.py [--quick]`` (about 3 min on 2 cores; --quick
about 40 s).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence

import cirq
import numpy as np
from _report import record
from bench_server import benchmark_circuit, sweep_circuits
from mirror_circuits import mirror_circuit

from cirq_iqm_ext.calibration import builtin_calibration
from cirq_iqm_ext.simulation.noise import IQMNoiseModel
from cirq_iqm_ext.simulation.simulator import CalibratedSimulator
from cirq_iqm_ext.wire.jobs import RunRequest
from cirq_iqm_ext.wire.models import Circuit

ROWS: list[tuple[str, float, float, str]] = []
APOLLO = builtin_calibration("apollo")


def interleaved(ours: Callable[[], object], base: Callable[[], object], repeats: int):
    """Medians of ``repeats`` alternating runs of ``ours`` and ``base`` (seconds)."""
    mine, theirs = [], []
    for _ in range(repeats):
        for function, times in ((ours, mine), (base, theirs)):
            start = time.perf_counter()
            function()
            times.append(time.perf_counter() - start)
    return statistics.median(mine), statistics.median(theirs)


def qsim_sampler(noisy: bool) -> cirq.Sampler:
    import qsimcirq  # type: ignore[import-not-found]  # the baseline

    options = qsimcirq.QSimOptions(cpu_threads=1)
    return qsimcirq.QSimSimulator(options, noise=IQMNoiseModel(APOLLO) if noisy else None, seed=1)


def cirq_form(circuit: Circuit) -> cirq.Circuit:
    return CalibratedSimulator(None).build_circuit(circuit)[0]


def methods(simulator: CalibratedSimulator) -> str:
    return ", ".join(f"{k} x{v}" for k, v in sorted(simulator.methods.items()))


def report(label: str, ours: float, base: float, baseline: str, target: float, note: str) -> None:
    print(
        f"{label}: ours {ours:.3f} s, {baseline} {base:.3f} s, ratio {ours / base:.2f}x "
        f"(target <= {target:g}); {note}",
        flush=True,
    )
    ROWS.append((f"{label} s (vs {baseline})", ours, base, f"<= {target:g}x"))


def noiseless(repeats: int) -> None:
    circuit, cirq_circuit = benchmark_circuit()
    request = RunRequest(circuits=(circuit,), shots=1000)
    simulator = CalibratedSimulator(None, seed=1)
    sampler = qsim_sampler(noisy=False)
    simulator.run(RunRequest(circuits=(circuit,), shots=10))  # warm up both
    sampler.run(cirq_circuit, repetitions=10)
    simulator.methods.clear()
    ours, base = interleaved(
        lambda: simulator.run(request), lambda: sampler.run(cirq_circuit, repetitions=1000), repeats
    )
    report("(a) noiseless 20q 200cz 1000 shots", ours, base, "qsim alone", 1.1, methods(simulator))


def noisy_shots(sizes: Sequence[int], layers: int, repeats: int) -> None:
    for n in sizes:
        circuit = mirror_circuit(n, layers, seed=n)
        request = RunRequest(circuits=(circuit,), shots=1000)
        simulator = CalibratedSimulator(APOLLO, seed=1)
        sampler, cirq_circuit = qsim_sampler(noisy=True), cirq_form(circuit)
        ours, base = interleaved(
            lambda: simulator.run(request),  # noqa: B023  # run at once, in this iteration
            lambda: sampler.run(cirq_circuit, repetitions=1000),  # noqa: B023
            repeats,
        )
        cz = sum(i.name == "cz" for i in circuit.instructions)
        report(
            f"(b) noisy {n}q {cz}cz 1000 independent shots",
            ours,
            base,
            "qsim+IQMNoiseModel",
            1.0,
            methods(simulator),
        )


def sweep(sizes: Sequence[int], points: int, base_points: int, repeats: int) -> None:
    for n in sizes:
        circuits = sweep_circuits(n, points)
        chunks = [circuits[r::repeats] for r in range(repeats)]
        simulator = CalibratedSimulator(APOLLO, seed=1)
        sampler = qsim_sampler(noisy=True)
        per_ours, per_base = [], []
        for chunk in chunks:
            request = RunRequest(circuits=tuple(chunk), shots=1000)
            baseline = [cirq_form(c) for c in chunk[:base_points]]
            ours, base = interleaved(
                lambda: simulator.run(request),  # noqa: B023  # run at once
                lambda: [sampler.run(c, repetitions=1000) for c in baseline],  # noqa: B023
                1,
            )
            per_ours.append(ours / len(chunk))
            per_base.append(base / len(baseline))
        ours, base = statistics.median(per_ours) * points, statistics.median(per_base) * points
        report(
            f"(c) noisy sweep {n}q {points}x1000",
            ours,
            base,
            "qsim+IQMNoiseModel",
            1.0,
            f"ours ran all {points} points, the baseline {base_points} per repeat x {repeats} "
            f"repeats, scaled per point; {methods(simulator)}",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer points and repeats")
    args = parser.parse_args()
    try:
        import qsimcirq  # noqa: F401  # type: ignore[import-not-found]
    except ImportError:
        print('bench_engine: no qsimcirq (pip install "cirq-iqm-ext[qsim]"), so no baseline')
        sys.exit(0)
    np.random.seed(0)
    repeats = 3
    noiseless(repeats)
    noisy_shots((10, 12), 4 if args.quick else 10, 1 if args.quick else repeats)
    sweep((6, 8, 10, 12), 12 if args.quick else 100, 1 if args.quick else 2, repeats)
    record("engine", ROWS)


if __name__ == "__main__":
    main()
