"""Benchmark of the IQM-compatible server, printed in one run (``make bench-server``).

(a) ``GET jobs/{id}/status`` latency (median, p99) and throughput with 50 concurrent keep-alive
    clients on loopback; (b) simulating 1000 shots of a 20-qubit, 200-CZ circuit with and without
    noise, next to ``cirq.Simulator.run`` and naive per-shot noisy trajectories
    (``cirq.Simulator.run`` with :class:`~cirq_iqm_ext.noise.IQMNoiseModel`, timed on a few shots
    and scaled per shot, since each shot is an independent trajectory); (c) 50 clients submitting
    20 jobs each: no job lost or duplicated. Only 127.0.0.1; every loop is bounded.

Usage: ``python tests/benchmarks/bench_server.py [--quick]``
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import cirq
import httpx
import numpy as np

from cirq_iqm_ext.calibration import builtin_calibration
from cirq_iqm_ext.models import Circuit, Instruction
from cirq_iqm_ext.noise import IQMNoiseModel
from cirq_iqm_ext.server import EmbeddedServer, load_architecture
from cirq_iqm_ext.server.simulator import CalibratedSimulator

BELL = {
    "name": "bell",
    "instructions": [
        {"name": "prx", "qubits": ["QB1"], "args": {"angle_t": 0.25, "phase_t": 0.25}},
        {"name": "prx", "qubits": ["QB3"], "args": {"angle_t": 0.25, "phase_t": 0.25}},
        {"name": "cz", "qubits": ["QB1", "QB3"], "args": {}},
        {"name": "prx", "qubits": ["QB3"], "args": {"angle_t": 0.25, "phase_t": 0.75}},
        {"name": "measure", "qubits": ["QB1", "QB3"], "args": {"key": "m"}},
    ],
}


def status_latency(clients: int, per_client: int) -> None:
    with EmbeddedServer(seed=1) as server:
        with httpx.Client(base_url=server.url) as http:
            job_id = http.post("/jobs", json={"circuits": [BELL], "shots": 10}).json()["id"]
        latencies: list[float] = []
        errors = [0]
        lock = threading.Lock()

        def client() -> None:
            mine = []
            with httpx.Client(base_url=server.url, timeout=10) as http:
                for _ in range(per_client):
                    start = time.perf_counter()
                    try:
                        ok = http.get(f"/jobs/{job_id}/status").status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    mine.append(time.perf_counter() - start)
                    if not ok:
                        with lock:
                            errors[0] += 1
            with lock:
                latencies.extend(mine)

        threads = [threading.Thread(target=client) for _ in range(clients)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        elapsed = time.perf_counter() - start
    latencies.sort()
    median = statistics.median(latencies) * 1e3
    p99 = latencies[int(0.99 * (len(latencies) - 1))] * 1e3
    rate = len(latencies) / elapsed
    print(f"(a) status requests, {clients} clients x {per_client}: median {median:.2f} ms "
          f"(target < 2), p99 {p99:.2f} ms, {rate:.0f} req/s (target >= 1000), "
          f"errors {errors[0]} (target 0)")


def benchmark_circuit() -> tuple[Circuit, cirq.Circuit]:
    arch = load_architecture("apollo")
    edges, qubits = arch.operations["cz"], list(arch.qubits)
    rng = np.random.default_rng(1)
    instructions: list[Instruction] = []
    czs = 0
    while czs < 200:
        for q in qubits:
            args = {"angle_t": float(rng.random()), "phase_t": float(rng.random())}
            instructions.append(Instruction("prx", (q,), args))
        used: set[str] = set()
        for e in rng.permutation(len(edges)):
            a, b = edges[e]
            if a in used or b in used or czs == 200:
                continue
            used |= {a, b}
            instructions.append(Instruction("cz", (a, b)))
            czs += 1
    instructions.append(Instruction("measure", tuple(qubits), {"key": "m"}))
    circuit = Circuit("bench", tuple(instructions))
    cirq_circuit, _ = CalibratedSimulator(None).build_circuit(circuit)
    return circuit, cirq_circuit


def timed(function, repeats: int = 1) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def simulation(shots: int, naive_shots: int, repeats: int) -> None:
    circuit, cirq_circuit = benchmark_circuit()
    calibration = builtin_calibration("apollo")
    ours = CalibratedSimulator(None, seed=1)
    ours.run_circuit_arrays(circuit, 10)  # warm up allocations
    t_ours = timed(lambda: ours.run_circuit_arrays(circuit, shots), repeats)
    t_cirq = timed(lambda: cirq.Simulator(seed=1).run(cirq_circuit, repetitions=shots), repeats)
    print(f"(b) noiseless, 20 qubits, 200 CZ, {shots} shots: ours {t_ours:.2f} s, "
          f"cirq.Simulator.run {t_cirq:.2f} s, ratio {t_cirq / t_ours:.2f}x (target >= 1)")
    noisy = CalibratedSimulator(calibration, seed=1)
    t_noisy = timed(lambda: noisy.run_circuit_arrays(circuit, shots), 1)
    noise_model = IQMNoiseModel(calibration)
    t_naive = timed(
        lambda: cirq.Simulator(seed=1, noise=noise_model).run(cirq_circuit, repetitions=naive_shots)
    )
    per_shot = t_naive / naive_shots
    print(f"    noisy ({noisy._max_trajectories} trajectories): ours {t_noisy:.2f} s; naive per-shot "
          f"trajectories (cirq.Simulator + IQMNoiseModel) {per_shot:.2f} s/shot x {shots} = "
          f"{per_shot * shots:.0f} s; ratio {per_shot * shots / t_noisy:.0f}x (target >= 5)")


def no_lost_jobs(clients: int, per_client: int) -> None:
    with EmbeddedServer(seed=1, workers=2, max_queue=clients * per_client) as server:
        submitted: list[str] = []
        lock = threading.Lock()
        errors = [0]

        def client(number: int) -> None:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                for i in range(per_client):
                    response = http.post(
                        "/jobs",
                        json={"circuits": [BELL], "shots": 10},
                        headers={"Idempotency-Key": f"c{number}-{i}"},
                    )
                    with lock:
                        if response.status_code == 201:
                            submitted.append(response.json()["id"])
                        else:
                            errors[0] += 1

        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        deadline = time.monotonic() + 120
        with httpx.Client(base_url=server.url) as http:
            pending = set(submitted)
            while pending and time.monotonic() < deadline:
                pending = {
                    j for j in pending if http.get(f"/jobs/{j}/status").json()["status"] != "ready"
                }
                time.sleep(0.05)
        elapsed = time.perf_counter() - start
        stored = len(server.app.store)
    expected = clients * per_client
    print(f"(c) {clients} clients x {per_client} jobs in {elapsed:.1f} s: {len(submitted)} accepted, "
          f"{len(set(submitted))} distinct, {stored} stored, {len(pending)} not finished, "
          f"errors {errors[0]}; lost {expected - len(set(submitted))}, duplicated "
          f"{len(submitted) - len(set(submitted)) + stored - expected} (targets 0)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests and shots")
    args = parser.parse_args()
    status_latency(50, 40 if args.quick else 200)
    simulation(200 if args.quick else 1000, 1, 1 if args.quick else 3)
    no_lost_jobs(50, 20)


if __name__ == "__main__":
    main()
