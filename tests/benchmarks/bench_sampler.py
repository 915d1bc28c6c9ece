"""``make bench-sampler``: what a user feels, each figure next to a naive baseline (same run).

1. A 100-point sweep of a 10-qubit parameterised circuit at 1,000 shots (compile + serialise +
   submit + wait + parse), split into client-side and server time. Baseline: resolve every point
   with ``cirq.resolve_parameters``, compile and serialise each resolved circuit separately, parse
   results through Python lists.
2. Serialising 1,000 native circuits of 200 operations into one request body. Baseline: one
   transfer-format object per operation, dumped with ``json.dumps``.
3. Latency from the moment the server marks a job ready to the moment ``run`` returns, for jobs of
   0.3 s and 2.5 s. Baseline: fixed 1 s polling, as IQM's client does by default.
4. ``import cirq_iqm_ext`` on top of ``import cirq``.

Machines here are shared and noisy: every figure is a median of repeated runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime

import cirq
import httpx
import numpy as np
import sympy
from _report import record

from cirq_iqm_ext.client.iqm_client import IQMClient
from cirq_iqm_ext.compiler.transpiler import transpile
from cirq_iqm_ext.device.builtin import Apollo
from cirq_iqm_ext.sampling.job import results_from_run
from cirq_iqm_ext.sampling.sampler import IQMSampler
from cirq_iqm_ext.serialization.serialize import serialize_circuit
from cirq_iqm_ext.server import EmbeddedServer
from cirq_iqm_ext.wire.models import Circuit, Instruction, RunRequest, RunResult

#: The benchmark's own HTTP client for raw fetches (the same keep-alive pool as a user's).
RAW_HTTP = httpx.Client(timeout=120)

ROWS: list[tuple[str, float, float, str]] = []


def median_time(function: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sweep_circuit(n: int = 10) -> tuple[cirq.Circuit, sympy.Symbol]:
    theta = sympy.Symbol("theta")
    q = cirq.LineQubit.range(n)
    circuit = cirq.Circuit(
        [cirq.ry(theta * (i + 1) / n).on(q[i]) for i in range(n)],
        [cirq.CZ(q[i], q[i + 1]) for i in range(0, n - 1, 2)],
        [cirq.CZ(q[i], q[i + 1]) for i in range(1, n - 1, 2)],
        [cirq.rx(theta).on(qubit) for qubit in q],
        cirq.measure(*q, key="m"),
    )
    return circuit, theta


def seconds_between(start: str, end: str) -> float:
    def parse(stamp: str) -> datetime:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))

    return (parse(end) - parse(start)).total_seconds()


def bench_sweep(server: EmbeddedServer, repeats: int, points: int, shots: int) -> None:
    """Client-side compute (compile, serialise, decode and convert the results) apart from the
    HTTP round trips (which include the server parsing the request and encoding the result) and
    from the server's work on the job."""
    circuit, theta = sweep_circuit()
    sweep = cirq.Linspace(theta, 0, np.pi, points)
    ours = {"compute": [], "http": [], "server": []}
    base = {"compute": [], "http": [], "server": []}
    for _ in range(repeats):
        with IQMSampler(server.url, environ={}, device=Apollo(), progress=False) as sampler:
            client = sampler.client
            start = time.perf_counter()
            [body] = sampler._payloads([circuit], [sweep], shots)  # compile once, fill points
            build = time.perf_counter() - start
            start = time.perf_counter()
            job_id = client.submit_payload(body)
            post = time.perf_counter() - start
            run = client.wait_for_results(job_id)
            start = time.perf_counter()
            raw = RAW_HTTP.get(
                f"{server.url}/jobs/{job_id}", params={"measurements": "packed"}
            ).content
            get = time.perf_counter() - start
            start = time.perf_counter()
            results = results_from_run(job_id, RunResult.from_dict(json.loads(raw)))
            parse = time.perf_counter() - start
            assert len(results) == points
            stamps = run.metadata.timestamps
            ours["compute"].append(build + parse)
            ours["http"].append(post + get)
            ours["server"].append(seconds_between(stamps["job_start"], stamps["job_end"]))
        with IQMClient(server.url, environ={}) as client:
            device = Apollo()
            compute = http = 0.0
            job_ids = []
            for index, resolver in enumerate(cirq.to_resolvers(sweep)):
                start = time.perf_counter()
                resolved = cirq.resolve_parameters(circuit, resolver)
                compiled = transpile(resolved, device)
                request = RunRequest(
                    (serialize_circuit(compiled.circuit, f"point_{index}"),), shots=shots
                )
                body = json.dumps(request.to_dict()).encode()
                compute += time.perf_counter() - start
                start = time.perf_counter()
                job_ids.append(client.submit_payload(body))
                http += time.perf_counter() - start
            first = last = ""
            for job_id in job_ids:
                stamps = client.wait_for_results(job_id).metadata.timestamps
                first = first or stamps["job_start"]
                last = stamps["job_end"]
            for job_id in job_ids:
                start = time.perf_counter()
                raw = RAW_HTTP.get(f"{server.url}/jobs/{job_id}").content
                http += time.perf_counter() - start
                start = time.perf_counter()
                data = json.loads(raw)  # plain lists, parsed through Python lists
                for key, rows in data["measurements"][0].items():
                    _ = key, np.array([list(map(int, row)) for row in rows])
                compute += time.perf_counter() - start
            base["compute"].append(compute)
            base["http"].append(http)
            base["server"].append(seconds_between(first, last))
    label = f"sweep {points} pts x {shots} shots"
    ROWS.append(
        (
            f"{label}: client compute [s]",
            statistics.median(ours["compute"]),
            statistics.median(base["compute"]),
            "< 0.060",
        )
    )
    ROWS.append(
        (
            f"{label}: HTTP round trips [s]",
            statistics.median(ours["http"]),
            statistics.median(base["http"]),
            "-",
        )
    )
    ROWS.append(
        (
            f"{label}: server time [s]",
            statistics.median(ours["server"]),
            statistics.median(base["server"]),
            "-",
        )
    )


def native_circuits(count: int, ops: int, seed: int = 1) -> list[cirq.Circuit]:
    rng = np.random.default_rng(seed)
    qubits = [cirq.NamedQubit(f"QB{i}") for i in range(1, 21)]
    device = Apollo()
    pairs = list(device.cz_pairs)
    circuits = []
    for _ in range(count):
        operations: list[cirq.Operation] = []
        for _ in range(ops - 1):
            if rng.random() < 0.3:
                a, b = pairs[rng.integers(len(pairs))]
                operations.append(cirq.CZ(a, b))
            else:
                operations.append(
                    cirq.PhasedXPowGate(
                        exponent=float(rng.uniform(0, 1)), phase_exponent=float(rng.uniform(0, 1))
                    ).on(qubits[rng.integers(20)])
                )
        operations.append(cirq.measure(*qubits, key="m"))
        circuits.append(cirq.Circuit(operations))
    return circuits


def bench_serialise(repeats: int) -> None:
    from cirq_iqm_ext.serialization.serialize import CircuitTemplate

    circuits = native_circuits(1000, 200)

    point = [cirq.ParamResolver()]

    def ours() -> str:
        texts = [
            CircuitTemplate(c, f"c{i}").resolve_json_many(point)[0] for i, c in enumerate(circuits)
        ]
        return '{"circuits":[' + ",".join(texts) + '],"shots":100}'

    def naive() -> str:
        models = []
        for index, circuit in enumerate(circuits):
            instructions = []
            for op in circuit.all_operations():
                names = [q.name for q in op.qubits]  # type: ignore[attr-defined]
                if isinstance(op.gate, cirq.PhasedXPowGate):
                    instructions.append(
                        Instruction(
                            "prx",
                            names,
                            {
                                "angle_t": float(op.gate.exponent) / 2,
                                "phase_t": float(op.gate.phase_exponent) / 2,
                            },
                        )
                    )
                elif isinstance(op.gate, cirq.CZPowGate):
                    instructions.append(Instruction("cz", names))
                else:
                    instructions.append(Instruction("measure", names, {"key": "m"}))
            models.append(Circuit(f"c{index}", tuple(instructions)))
        return json.dumps(RunRequest(tuple(models), shots=100).to_dict())

    assert (
        json.loads(ours())["circuits"][0]["instructions"][:3]
        == json.loads(naive())["circuits"][0]["instructions"][:3]
    )
    ROWS.append(
        (
            "serialise 1000 circuits x 200 ops [s]",
            median_time(ours, repeats),
            median_time(naive, repeats),
            "< 0.25",
        )
    )


def bench_latency(job_seconds: float, repeats: int) -> None:
    circuit = cirq.Circuit(cirq.X(cirq.LineQubit(0)), cirq.measure(cirq.LineQubit(0), key="m"))

    def latency_after_ready(run_and_get_stamps: Callable[[], dict[str, str]]) -> float:
        stamps = run_and_get_stamps()
        returned = datetime.now().astimezone()
        ready = datetime.fromisoformat(stamps["job_end"].replace("Z", "+00:00"))
        return (returned - ready).total_seconds()

    with EmbeddedServer("apollo", seed=1, job_delay=job_seconds) as server:
        ours, fixed = [], []
        with IQMSampler(server.url, environ={}, device=Apollo(), progress=False) as sampler:
            sampler.prepare(circuit)
            for _ in range(repeats):
                ours.append(
                    latency_after_ready(lambda: sampler.run(circuit, repetitions=10).timestamps)
                )
        with IQMClient(server.url, environ={}) as client:
            request = RunRequest(
                (
                    Circuit(
                        "x",
                        (
                            Instruction("prx", ["QB1"], {"angle_t": 0.5, "phase_t": 0.0}),
                            Instruction("measure", ["QB1"], {"key": "m"}),
                        ),
                    ),
                ),
                shots=10,
            )

            def fixed_polling() -> dict[str, str]:
                job_id = client.submit_run_request(request)
                while True:  # what IQM's client does: a fixed 1 s between status requests
                    time.sleep(1.0)
                    if client.get_run_status(job_id).status.is_final:
                        return client.get_run(job_id).metadata.timestamps

            for _ in range(repeats):
                fixed.append(latency_after_ready(fixed_polling))
    ROWS.append(
        (
            f"latency after ready, {job_seconds} s job [s]",
            statistics.median(ours),
            statistics.median(fixed),
            "< 0.050",
        )
    )


def bench_import(repeats: int) -> None:
    code = (
        "import time, cirq; t = time.perf_counter(); import {module}; "
        "print(time.perf_counter() - t)"
    )

    def measure(module: str) -> float:
        out = subprocess.run(
            [sys.executable, "-c", code.format(module=module)],
            check=True,
            capture_output=True,
            text=True,
        )
        return float(out.stdout.strip())

    ours = statistics.median(measure("cirq_iqm_ext") for _ in range(repeats))
    baseline = statistics.median(
        measure("cirq_iqm_ext.client.iqm_client, cirq_iqm_ext.sampling.sampler")
        for _ in range(repeats)
    )
    ROWS.append(("import cirq_iqm_ext after cirq [s]", ours, baseline, "< 0.100"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (for smoke tests)")
    args = parser.parse_args()
    repeats = 1 if args.quick else 5
    with EmbeddedServer("apollo", seed=1) as server:
        bench_sweep(server, repeats, 20 if args.quick else 100, 100 if args.quick else 1000)
    bench_serialise(1 if args.quick else 3)
    for seconds in (0.3, 2.5):
        bench_latency(seconds, 1 if args.quick else 5)
    bench_import(3 if args.quick else 7)
    record("sampler", ROWS)


if __name__ == "__main__":
    main()
