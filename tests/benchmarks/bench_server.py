"""Benchmark of the IQM-compatible server, printed in one run (``make bench-server``).

(a) ``GET jobs/{id}/status`` with 50 concurrent keep-alive clients on loopback. The server runs in
    its own process (``python -m cirq_iqm_ext serve``) and the load comes from this one, driven by
    a single-threaded ``selectors`` loop over 50 raw sockets with pre-built requests: 50 Python
    client threads (httpx) in the server's own process share its GIL and its two cores, and then
    measure mostly themselves (that generator is kept as the baseline). Two loads:

    * closed loop: every client sends its next request as soon as the answer arrives, which gives
      the most requests per second; by Little's law its latency is then 50 / throughput, so a
      median under 2 ms would need 25,000 requests/s;
    * paced (open loop): 50 clients together send 1,000 requests/s on a fixed schedule; latency is
      measured from the scheduled send time, so a server that falls behind is not hidden
      ("coordinated omission").

    With ``wrk`` installed (``apt-get install wrk``) an independent closed-loop figure is added.
(b) Simulating 1000 shots of a 20-qubit, 200-CZ circuit with and without noise, next to
    ``cirq.Simulator.run`` and naive per-shot noisy trajectories (``cirq.Simulator.run`` with
    :class:`~cirq_iqm_ext.IQMNoiseModel`, timed on a few shots and scaled per shot, since each
    shot is an independent trajectory).
    Next to it, the cost of dynamic circuits: a noisy 20-qubit circuit with 5 mid-circuit
    measurements and feed-forward (shot-by-shot branches) against the same gates without them.
(d) A noisy sweep: 100 points x 1000 shots of a mirror circuit (a swept rotation in the middle)
    at 6, 8, 10 and 12 Apollo qubits, every shot independent (exact density matrix or one
    trajectory per shot, whichever the cost model picks). Baseline in the same run: qsim
    (``qsimcirq``, when installed) running :class:`~cirq_iqm_ext.IQMNoiseModel` with 1000
    repetitions (one trajectory each), timed on a few points and scaled to 100; without qsim,
    ``cirq.Simulator`` with the noise model, timed on fewer shots and scaled.
(c) 50 clients submitting 20 jobs each with an ``Idempotency-Key``, then every submission retried
    with its key: no job lost or duplicated.
(e) The largest result the server admits by default (100 circuits x 100,000 shots of 5 qubits):
    what fetching it costs (seconds and bytes, as lists and packed), and status latency p50/p99
    from one client while another fetches it in a loop, against the same polls with no fetch.
(f) Server RSS over 100 sweeps of 100 points (1000 shots each), fetched packed: bounded
    retention (``--retain-jobs 10``) stays flat after warm-up; with the default retention every
    job is kept, so RSS grows until the count or byte bound.

Only 127.0.0.1; every loop is bounded.

Usage: ``python tests/benchmarks/bench_server.py [--quick]``
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import cirq
import httpx
import numpy as np
from _report import record
from mirror_circuits import mirror_halves

from cirq_iqm_ext.calibration import builtin_calibration
from cirq_iqm_ext.server import EmbeddedServer, load_architecture
from cirq_iqm_ext.simulation.noise import IQMNoiseModel
from cirq_iqm_ext.simulation.simulator import CalibratedSimulator
from cirq_iqm_ext.wire.models import Circuit, Instruction

HOST = "127.0.0.1"
ROWS: list[tuple[str, float, float, str]] = []

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


class ServerProcess:
    """``python -m cirq_iqm_ext serve`` on a free loopback port, in its own process."""

    def __init__(self, *options: str) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cirq_iqm_ext",
                "serve",
                "--host",
                HOST,
                "--seed",
                "1",
                *options,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # "Serving IQM API on http://127.0.0.1:PORT"
        match = re.search(r":(\d+)\s*$", line)
        if match is None:
            self.stop()
            raise RuntimeError(f"The server did not start: {line!r}")
        self.port = int(match.group(1))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def submit_bell(port: int) -> str:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    body = json.dumps({"circuits": [BELL], "shots": 10})
    connection.request("POST", "/jobs", body, {"Content-Type": "application/json"})
    job_id = str(json.loads(connection.getresponse().read())["id"])
    connection.close()
    return job_id


def socket_load(
    port: int, path: str, clients: int, requests: int, rate: float | None = None
) -> tuple[list[float], float, int]:
    """Sends ``requests`` GETs over ``clients`` keep-alive sockets from one thread.

    Args:
        port: The server's port.
        path: The request path.
        clients: Concurrent connections, each with at most one request in flight.
        requests: Requests to send in all.
        rate: Requests per second of all clients together on a fixed schedule (open loop), or
            ``None`` for a closed loop (each client sends again as soon as it has its answer).

    Returns:
        Latencies in seconds (from the scheduled send time when paced), elapsed seconds, errors.
    """
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAccept: */*\r\n\r\n".encode()
    selector = selectors.DefaultSelector()
    sockets = []
    for _ in range(clients):
        sock = socket.create_connection((HOST, port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        sockets.append(sock)
    interval = clients / rate if rate else 0.0
    start = time.perf_counter()
    # Per client: [socket, received bytes, send time, busy, next scheduled send].
    states = [
        [sock, b"", 0.0, False, start + interval * i / clients] for i, sock in enumerate(sockets)
    ]
    for state in states:
        selector.register(state[0], selectors.EVENT_READ, state)
    latencies: list[float] = []
    errors = sent = 0
    deadline = start + 120
    while len(latencies) + errors < requests and time.perf_counter() < deadline:
        now = time.perf_counter()
        wake = deadline
        for state in states:
            if state[3] or sent >= requests:
                continue
            if now >= state[4]:
                state[2] = state[4] if rate else now
                state[4] += interval
                state[3] = True
                sent += 1
                try:
                    state[0].send(request)
                except OSError:
                    errors += 1
                    state[3] = False
            else:
                wake = min(wake, state[4])
        timeout = max(0.0, wake - time.perf_counter()) if rate else None
        for key, _ in selector.select(timeout):
            state = key.data
            try:
                data = state[0].recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:  # the server hung up: count it and stop using this client
                errors += 1
                selector.unregister(state[0])
                state[3], state[4] = True, float("inf")
                continue
            state[1] += data
            head, separator, body = state[1].partition(b"\r\n\r\n")
            if not separator:
                continue
            match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            length = int(match.group(1)) if match else 0
            if len(body) < length:
                continue
            state[1] = body[length:]
            latencies.append(time.perf_counter() - state[2])
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
            state[3] = False
    elapsed = time.perf_counter() - start
    selector.close()
    for sock in sockets:
        sock.close()
    return latencies, elapsed, errors + max(0, requests - len(latencies) - errors)


def httpx_threads_load(
    port: int, path: str, clients: int, per_client: int
) -> tuple[list[float], float, int]:
    """The previous generator: one httpx client per thread (here against the same server)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def client() -> None:
        mine = []
        with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=10) as session:
            for _ in range(per_client):
                begin = time.perf_counter()
                try:
                    ok = session.get(path).status_code == 200
                except httpx.HTTPError:
                    ok = False
                mine.append(time.perf_counter() - begin)
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
    return latencies, time.perf_counter() - start, errors[0]


def wrk_load(port: int, path: str, clients: int, seconds: int) -> tuple[float, float, float] | None:
    """``wrk`` (if installed): median ms, p99 ms and requests/s, closed loop, one thread."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    command = [
        wrk,
        "-t1",
        f"-c{clients}",
        f"-d{seconds}s",
        "--latency",
        f"http://{HOST}:{port}{path}",
    ]
    output = subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=seconds + 30
    ).stdout

    def milliseconds(label: str) -> float:
        match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", output)
        if match is None:
            return float("nan")
        return float(match.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[match.group(2)]

    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", output)
    if errors:
        print(f"    wrk reported errors: {errors.group(0)}")
    return (
        milliseconds("50%"),
        milliseconds("99%"),
        float(rate.group(1)) if rate else float("nan"),
    )


def summary(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return statistics.median(ordered) * 1e3, ordered[int(0.99 * (len(ordered) - 1))] * 1e3


def status_latency(clients: int, requests: int, rate: float, repeats: int) -> None:
    server = ServerProcess()
    try:
        job_id = submit_bell(server.port)
        path = f"/jobs/{job_id}/status"
        socket_load(server.port, path, clients, 500)  # warm up connections and code paths
        closed, paced = [], []
        for _ in range(repeats):
            latencies, elapsed, errors = socket_load(server.port, path, clients, requests)
            closed.append((*summary(latencies), len(latencies) / elapsed, errors))
            count = int(rate * 3)
            latencies, elapsed, errors = socket_load(server.port, path, clients, count, rate)
            paced.append((*summary(latencies), len(latencies) / elapsed, errors))
        per_client = max(1, requests // clients // 4)
        latencies, elapsed, base_errors = httpx_threads_load(server.port, path, clients, per_client)
        base_median, base_p99 = summary(latencies)
        base_rate = len(latencies) / elapsed
        wrk = wrk_load(server.port, path, clients, 5)
    finally:
        server.stop()

    def med(rows: list[tuple[float, ...]], column: int) -> float:
        return statistics.median(row[column] for row in rows)

    errors = sum(int(row[3]) for row in closed + paced) + base_errors
    print(
        f"(a) status requests, {clients} keep-alive clients, server in its own process "
        f"(medians of {repeats} runs):\n"
        f"    closed loop ({requests} requests): {med(closed, 2):.0f} req/s, median "
        f"{med(closed, 0):.2f} ms, p99 {med(closed, 1):.2f} ms (Little: 50 / rate = "
        f"{clients / med(closed, 2) * 1e3:.1f} ms)\n"
        f"    paced at {rate:.0f} req/s ({int(rate * 3)} requests): median {med(paced, 0):.2f} ms, "
        f"p99 {med(paced, 1):.2f} ms, achieved {med(paced, 2):.0f} req/s\n"
        f"    baseline, {clients} httpx threads x {per_client}: {base_rate:.0f} req/s, median "
        f"{base_median:.2f} ms, p99 {base_p99:.2f} ms\n"
        f"    errors {errors} (target 0)"
    )
    if wrk is not None:
        print(
            f"    wrk -t1 -c{clients} (closed loop): {wrk[2]:.0f} req/s, median {wrk[0]:.2f} ms, "
            f"p99 {wrk[1]:.2f} ms"
        )
    ROWS.extend(
        [
            (
                "(a) status req/s, 50 clients, closed loop",
                med(closed, 2),
                base_rate,
                ">= 1000",
            ),
            (
                f"(a) status median ms, paced {rate:.0f} req/s",
                med(paced, 0),
                base_median,
                "< 2",
            ),
            (
                f"(a) status p99 ms, paced {rate:.0f} req/s",
                med(paced, 1),
                base_p99,
                "report",
            ),
            (
                "(a) status median ms, closed loop",
                med(closed, 0),
                base_median,
                "(= 50/rate)",
            ),
            ("(a) errors", float(errors), 0.0, "0"),
        ]
    )
    if wrk is not None:
        ROWS.append(("(a) wrk req/s, 50 clients, closed loop", wrk[2], base_rate, ">= 1000"))


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


def timed(function: Callable[[], object], repeats: int = 1) -> float:
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
    print(
        f"(b) noiseless, 20 qubits, 200 CZ, {shots} shots: ours {t_ours:.2f} s, "
        f"cirq.Simulator.run {t_cirq:.2f} s, ratio {t_cirq / t_ours:.2f}x (target >= 1)"
    )
    noisy = CalibratedSimulator(calibration, seed=1)
    t_noisy = timed(lambda: noisy.run_circuit_arrays(circuit, shots))  # ~1 min: once
    noise_model = IQMNoiseModel(calibration)
    t_naive = timed(
        lambda: cirq.Simulator(seed=1, noise=noise_model).run(cirq_circuit, repetitions=naive_shots)
    )
    per_shot = t_naive / naive_shots
    print(
        f"    noisy ({shots} independent shots, one trajectory each): ours {t_noisy:.2f} s; "
        "naive per-shot "
        f"trajectories (cirq.Simulator + IQMNoiseModel) timed on {naive_shots} shot(s): "
        f"{per_shot:.2f} s/shot x {shots} = {per_shot * shots:.0f} s (extrapolated); "
        f"ratio {per_shot * shots / t_noisy:.0f}x (target >= 5)"
    )
    ROWS.extend(
        [
            (
                f"(b) noiseless s, 20q 200cz {shots} shots (vs Simulator)",
                t_ours,
                t_cirq,
                "<= 1x",
            ),
            (
                "(b) noisy s (vs naive per-shot, extrapolated)",
                t_noisy,
                per_shot * shots,
                "<= 0.2x",
            ),
        ]
    )


def feed_forward_circuit(*, feedback: bool) -> Circuit:
    """20 Apollo qubits, 4 layers of prx + cz (~40 cz) with 5 mid-circuit measurements, each read
    by a ``cc_prx`` on a neighbour; without ``feedback`` the same gates with the measurements at
    the end and plain ``prx`` for the ``cc_prx`` (the fast path)."""
    arch = load_architecture("apollo")
    edges, qubits = arch.operations["cz"], list(arch.qubits)
    rng = np.random.default_rng(2)
    body: list[Instruction] = []
    late: list[Instruction] = []
    for layer in range(5):
        for q in qubits:
            args = {"angle_t": float(rng.random()), "phase_t": float(rng.random())}
            body.append(Instruction("prx", (q,), args))
        used: set[str] = set()
        for e in rng.permutation(len(edges)):
            a, b = edges[e]
            if a not in used and b not in used and len(used) < 16:
                used |= {a, b}
                body.append(Instruction("cz", (a, b)))
        a, b = edges[layer * 3]  # a measured qubit and the neighbour it controls
        key = f"mid{layer}"
        pulse = {"angle_t": 0.5, "phase_t": 0.0}
        if feedback:
            body.append(Instruction("measure", (a,), {"key": key, "feedback_key": key}))
            body.append(
                Instruction("cc_prx", (b,), {**pulse, "feedback_qubit": a, "feedback_key": key})
            )
        else:
            body.append(Instruction("prx", (b,), pulse))
            late.append(Instruction("measure", (a,), {"key": key}))
    measured = {i.qubits[0] for i in late} if not feedback else set()
    rest = tuple(q for q in qubits if q not in measured)
    final = [Instruction("measure", rest if not feedback else tuple(qubits), {"key": "m"})]
    return Circuit("ff" if feedback else "plain", tuple(body + late + final))


def feed_forward_cost(shots: int, repeats: int) -> None:
    calibration = builtin_calibration("apollo")
    dynamic, plain = (
        feed_forward_circuit(feedback=True),
        feed_forward_circuit(feedback=False),
    )
    t_dynamic = timed(
        lambda: CalibratedSimulator(calibration, seed=1).run_circuit_arrays(dynamic, shots),
        repeats,
    )
    t_plain = timed(
        lambda: CalibratedSimulator(calibration, seed=1).run_circuit_arrays(plain, shots),
        repeats,
    )
    print(
        f"(b) noisy, 20 qubits, 5 mid-circuit measurements + feed-forward, {shots} shots: "
        f"{t_dynamic:.2f} s (shot-by-shot branches); without feed-forward (fast path) "
        f"{t_plain:.2f} s; ratio {t_dynamic / t_plain:.1f}x"
    )
    ROWS.append(
        (
            f"(b) noisy s, 20q 5 mid-meas+cc_prx {shots} shots (vs none)",
            t_dynamic,
            t_plain,
            "cost",
        )
    )


def sweep_circuits(n: int, points: int) -> list[Circuit]:
    """A 3-layer mirror circuit on ``n`` connected Apollo qubits with a swept prx in the middle."""
    order, forward, backward = mirror_halves(n, 3, seed=n)
    measure = Instruction("measure", tuple(order), {"key": "m"})
    return [
        Circuit(
            f"sweep-{k}",
            (
                *forward,
                Instruction("prx", (order[0],), {"angle_t": k / points, "phase_t": 0.0}),
                *backward,
                measure,
            ),
        )
        for k in range(points)
    ]


def noisy_sweep(points: int, shots: int, baseline_points: int) -> None:
    calibration = builtin_calibration("apollo")
    noise_model = IQMNoiseModel(calibration)
    try:
        import qsimcirq  # type: ignore[import-not-found]  # optional engine

        def engine() -> cirq.Sampler:
            options = qsimcirq.QSimOptions(cpu_threads=1)
            return qsimcirq.QSimSimulator(options, noise=noise_model, seed=1)

        name, base_shots = "qsim+IQMNoiseModel", shots
    except ImportError:

        def engine() -> cirq.Sampler:
            return cirq.Simulator(seed=1, noise=noise_model)

        name, base_shots = "cirq.Simulator+IQMNoiseModel", max(1, shots // 20)
    for n in (6, 8, 10, 12):
        circuits = sweep_circuits(n, points)
        simulator = CalibratedSimulator(calibration, seed=1)
        start = time.perf_counter()
        for circuit in circuits:
            simulator.run_circuit_arrays(circuit, shots)
        ours = time.perf_counter() - start
        cirq_circuits = [CalibratedSimulator(None).build_circuit(c)[0] for c in circuits]
        sampler = engine()
        start = time.perf_counter()
        for cirq_circuit in cirq_circuits[:baseline_points]:
            sampler.run(cirq_circuit, repetitions=base_shots)
        base = (time.perf_counter() - start) * points / baseline_points * shots / base_shots
        print(
            f"(d) noisy sweep, {n} qubits, {points} points x {shots} independent shots: ours "
            f"{ours:.2f} s; {name} {base:.2f} s (scaled from {baseline_points} points x "
            f"{base_shots} shots); ratio {ours / base:.2f}x (target <= 1)"
        )
        ROWS.append((f"(d) noisy sweep s, {n}q {points}x{shots} (vs {name})", ours, base, "<= 1x"))


def no_lost_jobs(clients: int, per_client: int) -> None:
    expected = clients * per_client
    with EmbeddedServer(seed=1, workers=2, max_queue=expected) as server:
        submitted: dict[str, str] = {}  # idempotency key -> job id of the first submission
        retried: dict[str, str] = {}  # the same keys submitted again
        lock = threading.Lock()
        errors = [0]
        body = json.dumps({"circuits": [BELL], "shots": 10})

        def client(number: int, into: dict[str, str], status: int) -> None:
            connection = http.client.HTTPConnection(HOST, server.port, timeout=30)
            try:
                for i in range(per_client):
                    key = f"c{number}-{i}"
                    connection.request(
                        "POST",
                        "/jobs",
                        body,
                        {"Content-Type": "application/json", "Idempotency-Key": key},
                    )
                    response = connection.getresponse()
                    data = response.read()
                    with lock:
                        if response.status == status:
                            into[key] = json.loads(data)["id"]
                        else:
                            errors[0] += 1
            finally:
                connection.close()

        start = time.perf_counter()
        for into, status in ((submitted, 201), (retried, 200)):
            threads = [
                threading.Thread(target=client, args=(n, into, status)) for n in range(clients)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
        submit_time = time.perf_counter() - start
        deadline = time.monotonic() + 120
        pending = set(submitted.values())
        with httpx.Client(base_url=server.url) as session:
            while pending and time.monotonic() < deadline:
                pending = {
                    j
                    for j in pending
                    if session.get(f"/jobs/{j}/status").json()["status"] != "ready"
                }
                time.sleep(0.05)
            shots_ok = sum(
                len(session.get(f"/jobs/{j}").json()["measurements"][0]["m"]) == 10
                for j in set(submitted.values())
            )
        elapsed = time.perf_counter() - start
        stored = len(server.app.store)
    distinct = len(set(submitted.values()))
    lost = expected - distinct
    duplicated = (len(submitted) - distinct) + (stored - distinct)
    retry_mismatch = sum(retried.get(key) != job for key, job in submitted.items())
    print(
        f"(c) {clients} clients x {per_client} jobs, then every submission retried with its "
        f"Idempotency-Key: submitted in {submit_time:.1f} s, all done in {elapsed:.1f} s; "
        f"{len(submitted)} accepted, {distinct} distinct, {stored} stored, "
        f"{len(retried)} retries answered with the same id ({retry_mismatch} different), "
        f"{len(pending)} not finished, {shots_ok} results complete, errors {errors[0]}; "
        f"lost {lost}, duplicated {duplicated} (targets 0)"
    )
    ROWS.extend(
        [
            (
                "(c) jobs lost of 1000",
                float(lost + len(pending) + expected - shots_ok),
                0.0,
                "0",
            ),
            (
                "(c) jobs duplicated (incl. 1000 retries)",
                float(duplicated + retry_mismatch),
                0.0,
                "0",
            ),
            ("(c) submission errors", float(errors[0]), 0.0, "0"),
        ]
    )


def wait_ready(session: httpx.Client, job_id: str) -> None:
    """Long-polls a job until it has finished (each poll answers on any change)."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = session.get(f"/jobs/{job_id}/status", params={"wait": 20}).json()["status"]
        if not status.startswith("pending"):
            return
    raise RuntimeError(f"job {job_id} did not finish")


def rss_mib(pid: int) -> float:
    """The resident set size of a process (Linux ``/proc``), in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def big_result(circuits: int, shots: int, polls: int) -> None:
    """(e) The largest admitted result (circuits × shots = the default 10^7 limit, 5 qubits
    measured): the cost of fetching it, and status latency while another client fetches it."""
    server = ServerProcess("--noise", "none")
    try:
        with httpx.Client(base_url=f"http://{HOST}:{server.port}", timeout=600) as session:
            measure = {"name": "measure", "qubits": [f"QB{q}" for q in range(1, 6)], "args": {}}
            circuit = {**BELL, "instructions": [*BELL["instructions"][:-1], measure]}
            circuit["instructions"][-1]["args"] = {"key": "m"}
            body = {"circuits": [circuit] * circuits, "shots": shots}
            job_id = session.post("/jobs", json=body).json()["id"]
            wait_ready(session, job_id)
            costs = {}
            for label, params in (("lists", {}), ("packed", {"measurements": "packed"})):
                start = time.perf_counter()
                size = len(session.get(f"/jobs/{job_id}", params=params).content)
                costs[label] = (time.perf_counter() - start, size)
            rss = rss_mib(server.process.pid)
            quiet = status_polls(server.port, job_id, polls)
            fetching = threading.Event()
            stop = threading.Event()
            fetches = [0]

            def fetch_loop() -> None:
                with httpx.Client(base_url=f"http://{HOST}:{server.port}", timeout=600) as other:
                    while not stop.is_set():
                        with other.stream("GET", f"/jobs/{job_id}") as response:
                            fetching.set()
                            for _ in response.iter_bytes(1 << 20):
                                pass
                        fetches[0] += 1

            thread = threading.Thread(target=fetch_loop)
            thread.start()
            fetching.wait(60)
            busy = status_polls(server.port, job_id, polls)
            stop.set()
            thread.join(600)
            rss_after = rss_mib(server.process.pid)
    finally:
        server.stop()
    report_big_result(circuits * shots, costs, quiet, busy, fetches[0], (rss, rss_after))


def status_polls(port: int, job_id: str, count: int) -> list[float]:
    """Latencies of ``count`` sequential status requests on one keep-alive connection."""
    connection = http.client.HTTPConnection(HOST, port, timeout=120)
    latencies = []
    for _ in range(count):
        start = time.perf_counter()
        connection.request("GET", f"/jobs/{job_id}/status")
        connection.getresponse().read()
        latencies.append(time.perf_counter() - start)
        time.sleep(0.005)
    connection.close()
    return latencies


def report_big_result(
    shots: int,
    costs: dict[str, tuple[float, int]],
    quiet: list[float],
    busy: list[float],
    fetches: int,
    rss: tuple[float, float],
) -> None:
    quiet_p50, quiet_p99 = summary(quiet)
    busy_p50, busy_p99 = summary(busy)
    (lists_s, lists_b), (packed_s, packed_b) = costs["lists"], costs["packed"]
    print(
        f"(e) largest admitted result ({shots:,} shots of 5 qubits): lists {lists_b / 1e6:.1f} MB "
        f"in {lists_s:.2f} s, packed {packed_b / 1e6:.1f} MB in {packed_s:.2f} s; status p50/p99 "
        f"{quiet_p50:.2f}/{quiet_p99:.2f} ms alone, {busy_p50:.2f}/{busy_p99:.2f} ms while "
        f"another client fetched it ({fetches} full fetches); server RSS {rss[0]:.0f} MiB "
        f"before, {rss[1]:.0f} MiB after those fetches"
    )
    ROWS.extend(
        [
            ("(e) status p50 ms during a largest-result fetch", busy_p50, quiet_p50, "~1x"),
            ("(e) status p99 ms during a largest-result fetch", busy_p99, quiet_p99, "< 10x"),
            ("(e) largest result fetch s (lists; base: packed)", lists_s, packed_s, "info"),
            ("(e) largest result MB (lists; base: packed)", lists_b / 1e6, packed_b / 1e6, "info"),
            ("(e) server RSS MiB after fetches (base: before)", rss[1], rss[0], "~1x"),
        ]
    )


def server_memory(sweeps: int, points: int, shots: int, *options: str) -> tuple[float, float]:
    """(f) Server RSS after each of ``sweeps`` sweeps of ``points`` circuits, fetched packed
    (as the client does); returns the RSS after a warm-up tenth and after the last, in MiB."""
    server = ServerProcess("--noise", "none", *options)
    rss = []
    try:
        with httpx.Client(base_url=f"http://{HOST}:{server.port}", timeout=600) as session:
            for sweep in range(sweeps):
                circuits = []
                for point in range(points):
                    circuit = json.loads(json.dumps(BELL))
                    circuit["name"] = f"point-{point}"
                    circuit["instructions"][0]["args"]["angle_t"] = (sweep + point / points) % 1
                    circuits.append(circuit)
                job_id = session.post("/jobs", json={"circuits": circuits, "shots": shots}).json()
                wait_ready(session, job_id["id"])
                session.get(f"/jobs/{job_id['id']}", params={"measurements": "packed"})
                rss.append(rss_mib(server.process.pid))
    finally:
        server.stop()
    return rss[max(0, sweeps // 10 - 1)], rss[-1]


def memory_rows(sweeps: int, points: int, shots: int) -> None:
    bounded = server_memory(sweeps, points, shots, "--retain-jobs", "10")
    default = server_memory(sweeps, points, shots)
    print(
        f"(f) server RSS over {sweeps} sweeps of {points} points x {shots} shots, fetched packed: "
        f"with --retain-jobs 10 {bounded[0]:.1f} MiB after warm-up ({sweeps // 10} sweeps), "
        f"{bounded[1]:.1f} MiB after the last; with the default retention (every job kept) "
        f"{default[0]:.1f} -> {default[1]:.1f} MiB"
    )
    ROWS.extend(
        [
            ("(f) RSS MiB last sweep, retain 10 (base: warm)", bounded[1], bounded[0], "+few MiB"),
            ("(f) RSS MiB last sweep, default (base: warm)", default[1], default[0], "info"),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests and shots")
    parser.add_argument(
        "--only",
        choices=("a", "b", "c", "d", "e", "f"),
        action="append",
        help="run only these parts",
    )
    args = parser.parse_args()
    parts = set(args.only or "abcdef")
    if "a" in parts:
        status_latency(50, 4000 if args.quick else 20000, 1000.0, 1 if args.quick else 3)
    if "b" in parts:
        simulation(200 if args.quick else 1000, 1, 1 if args.quick else 3)
        feed_forward_cost(200 if args.quick else 1000, 1)  # ~6 min at 1000 shots: once
    if "d" in parts:
        noisy_sweep(10 if args.quick else 100, 1000, 2 if args.quick else 5)
    if "c" in parts:
        no_lost_jobs(50, 20)
    if "e" in parts:
        big_result(10 if args.quick else 100, 100_000, 200 if args.quick else 1000)
    if "f" in parts:
        memory_rows(20 if args.quick else 100, 100, 1000)
    record("server", ROWS)


if __name__ == "__main__":
    main()
