"""``make bench-sampler``: what a user feels, each figure next to a naive baseline (same run).

1. A 100-point sweep of a 10-qubit parameterised circuit at 1,000 shots, end to end as the user
   feels it and cold (construct the sampler, compile, submit, wait, results in hand), against the
   project's server in its own process (so the CPU figures are the client's alone), simulating
   exactly (``serve --noise none``): the same cheap server work for every client, so that the
   ratios measure client and protocol work; one noisy row (the server's default) is kept for
   information, and each protocol's requests are printed with their times. Contenders,
   run interleaved in the same run, medians: on the IQM Server API, IQM's official Cirq adapter 36
   (route + decompose once, ``run_sweep``; run this file with ``.venv-bench/bin/python``), with
   its job tracker polling on the same interval as ours (and, for information, both at the
   shipped 1 s); on the v1 profile, a compile-once naive baseline (transpile the parameterised
   circuit once, resolve and serialise each point, ``json.dumps``, results through lists). The
   physical floor: one loopback GET of the measurements and its ``json.loads``.
2. Serialising 1,000 native circuits of 200 operations into one request body. Baseline: one
   transfer-format object per operation, dumped with ``json.dumps``.
3. Latency from the moment the server marks a job ready to the moment ``run`` returns, for jobs of
   0.3 s and 2.5 s. Baseline: fixed 1 s polling, as IQM's client does by default.
4. ``import cirq_iqm_ext`` on top of ``import cirq``.

Machines here are shared and noisy: every figure is a median of repeated runs.
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import signal
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
from cirq_iqm_ext.sampling.sampler import IQMSampler
from cirq_iqm_ext.serialization.serialize import serialize_circuit
from cirq_iqm_ext.server import EmbeddedServer
from cirq_iqm_ext.wire.models import Circuit, Instruction, RunRequest

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


class ServerProcess:
    """The project's server in its own process (``python -m cirq_iqm_ext serve``), so that the
    client CPU measured here is the client's alone."""

    def __init__(self, architecture: str = "apollo", seed: int = 1, noise: str = "calibration"):
        self.noise = noise
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cirq_iqm_ext",
                "serve",
                "--port",
                "0",
                "--architecture",
                architecture,
                "--seed",
                str(seed),
                "--noise",
                noise,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        match = re.search(r"(http://\S+)", line)
        assert match, line
        self.url = match.group(1).rstrip(".,")

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def timed(function: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def ours_sweep(url: str, api: str, interval: float, points: int, shots: int) -> Callable[[], None]:
    """Cold, as a user runs it: construct the sampler, compile, submit, wait, results in hand."""
    circuit, theta = sweep_circuit()

    def run() -> None:
        with IQMSampler(
            url, environ={}, api=api, seconds_between_calls=interval, progress=False
        ) as sampler:
            results = sampler.run_sweep(circuit, cirq.Linspace(theta, 0, np.pi, points), shots)
        assert len(results) == points and results[-1].measurements["m"].shape == (shots, 10)

    return run


def iqm_adapter_sweep(url: str, interval: float, points: int, shots: int) -> Callable[[], None]:
    """The same sweep through IQM's Cirq adapter 36, as its documentation shows: route and
    decompose once, then ``run_sweep``; its job tracker polls every ``interval`` seconds."""
    import warnings

    from iqm.cirq_iqm.iqm_sampler import IQMSampler as OfficialSampler
    from iqm.station_control.interface.executor_interface import JobTracker

    circuit, theta = sweep_circuit()

    def run() -> None:
        wait = JobTracker.wait_for_completion
        wait.__kwdefaults__["polling_interval"] = interval  # type: ignore[index]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its note that the routing used no calibration set
            sampler = OfficialSampler(url)
            routed, _, _ = sampler.device.route_circuit(circuit)
            native = sampler.device.decompose_circuit(routed)
            results = sampler.run_sweep(native, cirq.Linspace(theta, 0, np.pi, points), shots)
        assert len(results) == points and results[-1].measurements["m"].shape == (shots, 10)

    return run


def naive_compile_once_sweep(url: str, points: int, shots: int) -> Callable[[], None]:
    """What a user could write with the client alone: compile the parameterised circuit once,
    resolve and serialise each point naively, one job, results parsed through Python lists."""
    circuit, theta = sweep_circuit()

    def run() -> None:
        with IQMClient(url, environ={}, api="cocos-v1") as client:
            compiled = transpile(circuit, Apollo()).circuit
            circuits = []
            for index, resolver in enumerate(
                cirq.to_resolvers(cirq.Linspace(theta, 0, np.pi, points))
            ):
                resolved = cirq.resolve_parameters(compiled, resolver)
                circuits.append(serialize_circuit(resolved, f"point_{index}"))
            body = json.dumps(RunRequest(tuple(circuits), shots=shots).to_dict()).encode()
            job_id = client.submit_payload(body)
            client.wait_for_results(job_id)
            data = RAW_HTTP.get(f"{url}/jobs/{job_id}").json()
            arrays = [np.array(c["m"], dtype=np.int8) for c in data["measurements"]]
        assert len(arrays) == points and arrays[-1].shape[0] == shots

    return run


def interleaved(
    contenders: dict[str, Callable[[], None]], repeats: int
) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) of each contender, run in turns (A B C A B C ...) after one warm-up,
    each from a collected heap."""
    for run in contenders.values():
        run()
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, run in contenders.items():
            # Every run starts with no garbage of the one before: a full collection falling due
            # in a run (~0.12 s with IQM's client imported) is then that run's own doing.
            gc.collect()
            samples[name].append(timed(run))
    return {
        name: (statistics.median(w for w, _ in got), statistics.median(c for _, c in got))
        for name, got in samples.items()
    }


def bench_sweep(repeats: int, points: int, shots: int, fast_interval: float) -> None:
    """End-to-end sweeps, cold, against the project's server in its own process.

    The server simulates exactly (``serve --noise none``): the same cheap server work for every
    client, so that the ratios measure client and protocol work, not the simulator's.
    """
    label = f"sweep {points} pts x {shots} shots, server --noise none"
    with ServerProcess(noise="none") as server:
        url = server.url
        contenders = {
            "ours iqm-server": ours_sweep(url, "iqm-server", fast_interval, points, shots),
            "ours v1": ours_sweep(url, "cocos-v1", 1.0, points, shots),
            "naive v1": naive_compile_once_sweep(url, points, shots),
        }
        try:
            contenders["iqm 36"] = iqm_adapter_sweep(url, fast_interval, points, shots)
        except ImportError:
            print("IQM's Cirq adapter is not installed: run this with .venv-bench/bin/python")
        same = interleaved(contenders, repeats)
        if "iqm 36" in same:
            shipped = interleaved(
                {
                    "ours iqm-server": ours_sweep(url, "iqm-server", 1.0, points, shots),
                    "iqm 36": iqm_adapter_sweep(url, 1.0, points, shots),
                },
                repeats,
            )
        floor = physical_floor(url, points, shots)
        where_the_time_goes(url, "cocos-v1", 1.0, points, shots)
        where_the_time_goes(url, "iqm-server", fast_interval, points, shots)
    print(f"  sweeps against `serve --noise none`, medians of {repeats} interleaved runs:")
    for name, (wall, cpu) in same.items():
        print(f"  {name:16s} wall {wall:.3f} s  client CPU {cpu:.3f} s")
    if "iqm 36" in same:
        ours, iqm = same["ours iqm-server"], same["iqm 36"]
        note = f"both polling every {fast_interval:g} s"
        ROWS.append((f"{label}, IQM Server API, wall [s] ({note})", ours[0], iqm[0], "<= 0.5x"))
        ROWS.append((f"{label}, IQM Server API, client CPU [s]", ours[1], iqm[1], "<= 0.5x"))
        ROWS.append(
            (
                f"{label}, IQM Server API, wall [s] (shipped 1 s polling, for information)",
                shipped["ours iqm-server"][0],
                shipped["iqm 36"][0],
                "-",
            )
        )
    ROWS.append(
        (
            f"{label}, v1, wall [s] vs compile-once naive",
            same["ours v1"][0],
            same["naive v1"][0],
            "<= 0.25 s",
        )
    )
    ROWS.append(
        (
            f"{label}, v1, client CPU [s] vs compile-once naive",
            same["ours v1"][1],
            same["naive v1"][1],
            "-",
        )
    )
    ROWS.append((f"{label}: floor, loopback GET of the result + json.loads [s]", floor, floor, "-"))


def bench_noisy_sweep(repeats: int, points: int, shots: int, interval: float) -> None:
    """For information: the same IQM Server API sweep against the noisy simulation (the
    server's default), where the simulation's seconds dominate both clients alike."""
    try:
        iqm_adapter_sweep("http://127.0.0.1:9", interval, points, shots)
    except ImportError:
        return
    with ServerProcess(noise="calibration") as server:
        got = interleaved(
            {
                "ours iqm-server": ours_sweep(server.url, "iqm-server", interval, points, shots),
                "iqm 36": iqm_adapter_sweep(server.url, interval, points, shots),
            },
            repeats,
        )
    print(f"  noisy sweeps (`serve`, calibration noise), medians of {repeats} interleaved runs:")
    for name, (wall, cpu) in got.items():
        print(f"  {name:16s} wall {wall:.3f} s  client CPU {cpu:.3f} s")
    ROWS.append(
        (
            f"sweep {points} pts x {shots} shots, IQM Server API, noisy server, wall [s] "
            f"(both polling every {interval:g} s; simulation dominates, for information)",
            got["ours iqm-server"][0],
            got["iqm 36"][0],
            "-",
        )
    )


class TimingTransport(httpx.HTTPTransport):
    """A real connection pool that records (method, path, seconds, bytes) of each request."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str, float, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        start = time.perf_counter()
        response = super().handle_request(request)
        response.read()
        path = request.url.path
        self.calls.append(
            (request.method, path, time.perf_counter() - start, len(response.content))
        )
        return response


def where_the_time_goes(url: str, api: str, interval: float, points: int, shots: int) -> None:
    """Prints one sweep's requests and the server's own job phases, to see what is whose."""
    circuit, theta = sweep_circuit()
    transport = TimingTransport()
    gc.collect()  # as in interleaved(): no earlier run's garbage collected in this one
    wall, cpu = time.perf_counter(), time.process_time()
    with IQMSampler(
        url,
        environ={},
        api=api,
        seconds_between_calls=interval,
        progress=False,
        transport=transport,
    ) as sampler:
        results = sampler.run_sweep(circuit, cirq.Linspace(theta, 0, np.pi, points), shots)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stamps = results[0].timestamps
    job = seconds_between(stamps["job_start"], stamps["job_end"])
    execution = seconds_between(stamps["execution_start"], stamps["execution_end"])
    print(
        f"  where a {api} sweep's {wall:.3f} s go (client CPU {cpu:.3f} s; server job "
        f"{job:.3f} s, of it simulation {execution:.3f} s):"
    )
    for method, path, seconds, size in transport.calls:
        print(f"    {method:4s} {path[:60]:60s} {seconds * 1e3:7.1f} ms {size:9d} B")


def physical_floor(url: str, points: int, shots: int) -> float:
    """One loopback GET of a sweep's measurements and its ``json.loads``: no client of the IQM
    Server API gets its results faster than this."""
    circuit, theta = sweep_circuit()
    with IQMSampler(url, environ={}, api="iqm-server", progress=False) as sampler:
        results = sampler.run_sweep(circuit, cirq.Linspace(theta, 0, np.pi, points), shots)
    path = f"{url}/api/v1/jobs/{results[0].job_id}/artifacts/measurements"
    return median_time(lambda: json.loads(RAW_HTTP.get(path).content), 5)


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
    bench_sweep(repeats, 20 if args.quick else 100, 100 if args.quick else 1000, 0.05)
    bench_noisy_sweep(
        1 if args.quick else 2, 20 if args.quick else 100, 100 if args.quick else 1000, 0.05
    )
    bench_serialise(1 if args.quick else 3)
    for seconds in (0.3, 2.5):
        bench_latency(seconds, 1 if args.quick else 5)
    bench_import(3 if args.quick else 7)
    record("sampler", ROWS)


if __name__ == "__main__":
    main()
