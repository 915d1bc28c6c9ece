"""The IQM-compatible server over a real loopback socket, with raw httpx requests."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import Counter
from typing import Any
from uuid import UUID

import cirq
import httpx
import numpy as np
import pytest

from cirq_iqm_ext.server import EmbeddedServer, ServerConfig, create_app, load_architecture
from cirq_iqm_ext.server.jobs import utc_timestamp
from cirq_iqm_ext.simulation.simulator import CalibratedSimulator
from cirq_iqm_ext.wire.models import TIMESTAMP_KEYS, Circuit, Instruction, RunRequest, RunResult

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def prx(qubit: str, angle_t: float, phase_t: float) -> dict[str, Any]:
    return {"name": "prx", "qubits": [qubit], "args": {"angle_t": angle_t, "phase_t": phase_t}}


def cz(a: str, b: str) -> dict[str, Any]:
    return {"name": "cz", "qubits": [a, b], "args": {}}


def measure(*qubits: str, key: str) -> dict[str, Any]:
    return {"name": "measure", "qubits": list(qubits), "args": {"key": key}}


def bell(control: str = "QB1", target: str = "QB3", name: str = "bell") -> dict[str, Any]:
    """RY(pi/2) on both, CZ, RY(-pi/2) on the target: (|00> + |11>)/sqrt(2)."""
    return {
        "name": name,
        "instructions": [
            prx(control, 0.25, 0.25),
            prx(target, 0.25, 0.25),
            cz(control, target),
            prx(target, 0.25, 0.75),
            measure(control, target, key="m"),
        ],
    }


def run_request(*circuits: dict[str, Any], shots: int = 100, **extra: Any) -> dict[str, Any]:
    return {"circuits": list(circuits) or [bell()], "shots": shots, **extra}


def wait_final(client: httpx.Client, job_id: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/jobs/{job_id}/status").json()["status"]
        if status not in ("pending compilation", "pending execution"):
            return client.get(f"/jobs/{job_id}").json()
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def submit(client: httpx.Client, body: dict[str, Any], **kwargs: Any) -> str:
    response = client.post("/jobs", json=body, **kwargs)
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture(scope="module")
def server():
    with EmbeddedServer("adonis", seed=11) as running:
        yield running


@pytest.fixture(scope="module")
def slow_server():
    with EmbeddedServer("adonis", seed=11, job_delay=0.6) as running:
        yield running


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield http


@pytest.fixture
def slow_client(slow_server):
    with httpx.Client(base_url=slow_server.url, timeout=10) as http:
        yield http


# Endpoints ---------------------------------------------------------------------------------------


def test_health(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["content-type"] == "application/json"


def test_quantum_architecture_is_the_static_form(client, server):
    response = client.get("/quantum-architecture")
    assert response.status_code == 200
    arch = response.json()["quantum_architecture"]
    assert arch["name"] == "Adonis"
    assert arch["qubits"] == ["QB1", "QB2", "QB3", "QB4", "QB5"]
    assert sorted(map(sorted, arch["qubit_connectivity"])) == [
        ["QB1", "QB3"],
        ["QB2", "QB3"],
        ["QB3", "QB4"],
        ["QB3", "QB5"],
    ]
    # Plain v1, as IQM's own v1 clients know it; delay is listed only when asked for.
    assert set(arch["operations"]) == {"prx", "cz", "measure", "barrier"}
    assert arch["operations"]["barrier"] == []


@pytest.mark.parametrize("path", ["/quantum-architecture/", "/health/"])
def test_trailing_slashes_are_accepted(client, path):
    assert client.get(path).status_code == 200


@pytest.mark.parametrize(
    ("name", "expected", "n_qubits", "n_edges"),
    [
        ("adonis", "Adonis", 5, 4),
        ("Apollo", "Apollo", 20, 30),
        ("GARNET", "Garnet", 20, 30),
        ("aphrodite", "Aphrodite", 54, None),
        ("deneb", "Deneb", 7, 6),
    ],
)
def test_builtin_architectures(name, expected, n_qubits, n_edges):
    arch = load_architecture(name)
    assert arch.name == expected
    assert len(arch.qubits) == n_qubits
    if n_edges is not None:
        assert len(arch.qubit_connectivity) == n_edges


def test_architecture_from_a_json_file(tmp_path):
    data = load_architecture("adonis").to_dict()
    data["quantum_architecture"]["name"] = "Custom"
    path = tmp_path / "custom.json"
    path.write_text(json.dumps(data))
    with EmbeddedServer(str(path)) as running:
        body = httpx.get(f"{running.url}/quantum-architecture").json()
    assert body["quantum_architecture"]["name"] == "Custom"


def test_unknown_architecture_names_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="adonis, aphrodite, apollo, deneb, garnet"):
        EmbeddedServer("nonesuch").start()
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="Cannot load the architecture file"):
        load_architecture(str(broken))


def test_submit_answers_201_with_a_uuid4(client):
    response = client.post("/jobs", json=run_request())
    assert response.status_code == 201
    assert UUID(response.json()["id"]).version == 4
    assert response.headers["location"].endswith(f"/jobs/{response.json()['id']}")


def test_result_has_the_shape_of_the_protocol(client, server):
    body = run_request(shots=20)
    job_id = submit(client, body)
    result = wait_final(client, job_id)
    assert result["status"] == "ready"
    assert result["message"] is None
    assert result["warnings"] == []
    (circuit,) = result["measurements"]
    assert list(circuit) == ["m"]
    assert len(circuit["m"]) == 20
    assert all(len(shot) == 2 and all(type(b) is int for b in shot) for shot in circuit["m"])
    metadata = result["metadata"]
    assert metadata["request"] == RunRequest.from_dict(body).to_dict()
    assert metadata["calibration_set_id"] == str(server.app.config.calibration_set_id)
    assert metadata["cocos_version"]
    stamps = metadata["timestamps"]
    assert list(stamps) == list(TIMESTAMP_KEYS)
    assert all(TIMESTAMP.match(value) for value in stamps.values())
    assert [stamps[k] for k in TIMESTAMP_KEYS] == sorted(stamps.values())
    # The lead's transfer format parses it.
    parsed = RunResult.from_dict(result)
    assert parsed.metadata.request.shots == 20


def test_timestamps_are_utc_with_milliseconds():
    assert TIMESTAMP.match(utc_timestamp())


def test_metadata_request_is_normalised(client):
    body = {
        "circuits": [
            {
                "name": "old names",
                "instructions": [
                    {"name": "phased_rx", "qubits": ["QB1"], "args": {"angle_t": 1, "phase_t": 0}},
                    {"name": "measurement", "qubits": ["QB1"], "args": {"key": "m"}},
                ],
            }
        ],
        "shots": 3,
    }
    result = wait_final(client, submit(client, body))
    request = result["metadata"]["request"]
    assert [i["name"] for i in request["circuits"][0]["instructions"]] == ["prx", "measure"]
    assert request["circuits"][0]["instructions"][0]["args"] == {"angle_t": 1.0, "phase_t": 0.0}
    assert request["heralding_mode"] == "none"
    # prx(1, 0) is a full turn: the qubit comes back to 0.
    assert result["measurements"] == [{"m": [[0], [0], [0]]}]


def test_states_move_through_pending_to_ready_with_timestamps(slow_client):
    job_id = submit(slow_client, run_request(shots=5))
    seen: list[str] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = slow_client.get(f"/jobs/{job_id}/status").json()["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
            if status == "pending compilation":
                pending = slow_client.get(f"/jobs/{job_id}").json()
                assert "measurements" not in pending
                assert pending["metadata"]["request"]["shots"] == 5
                assert "job_end" not in pending["metadata"]["timestamps"]
        if status == "ready":
            break
        time.sleep(0.02)
    assert seen == ["pending compilation", "pending execution", "ready"]
    stamps = slow_client.get(f"/jobs/{job_id}").json()["metadata"]["timestamps"]
    assert list(stamps) == list(TIMESTAMP_KEYS)


def test_abort_a_pending_job_then_abort_again_is_409(slow_client):
    job_id = submit(slow_client, run_request())
    response = slow_client.post(f"/jobs/{job_id}/abort")
    assert response.status_code == 200
    assert response.json() == {}
    status = slow_client.get(f"/jobs/{job_id}/status").json()
    assert status["status"] == "aborted"
    result = slow_client.get(f"/jobs/{job_id}").json()
    assert result["status"] == "aborted"
    assert "measurements" not in result
    assert "job_end" in result["metadata"]["timestamps"]
    again = slow_client.post(f"/jobs/{job_id}/abort")
    assert again.status_code == 409
    assert "already aborted" in again.json()["detail"]
    time.sleep(0.7)  # the worker must not resurrect it
    assert slow_client.get(f"/jobs/{job_id}/status").json()["status"] == "aborted"


def test_abort_of_a_finished_job_is_409(client):
    job_id = submit(client, run_request())
    wait_final(client, job_id)
    response = client.post(f"/jobs/{job_id}/abort/")
    assert response.status_code == 409
    assert job_id in response.json()["detail"]
    assert "already ready" in response.json()["detail"]


@pytest.mark.parametrize("suffix", ["", "/status", "/counts", "/abort"])
@pytest.mark.parametrize("job_id", ["3f2b4bba-8f0b-4c1f-9d7e-2f1a4c1b0a11", "not-a-uuid"])
def test_unknown_job_is_404_on_every_job_path(client, suffix, job_id):
    method = "POST" if suffix == "/abort" else "GET"
    response = client.request(method, f"/jobs/{job_id}{suffix}")
    assert response.status_code == 404
    assert response.json() == {"detail": "Job not found"}


# Simulation --------------------------------------------------------------------------------------


def test_bell_circuit_gives_only_00_and_11(client):
    result = wait_final(client, submit(client, run_request(shots=1000)))
    counts = Counter("".join(map(str, shot)) for shot in result["measurements"][0]["m"])
    assert set(counts) == {"00", "11"}
    assert 400 < counts["00"] < 600


def test_qubit_mapping_runs_logical_names_on_physical_qubits(client):
    circuit = {
        "name": "mapped",
        "instructions": [
            prx("x", 0.5, 0.0),  # X on the logical x
            *bell("a", "b")["instructions"][:-1],
            measure("b", "x", "a", key="m"),
        ],
    }
    mapping = [
        {"logical_name": "a", "physical_name": "QB3"},
        {"logical_name": "b", "physical_name": "QB5"},
        {"logical_name": "x", "physical_name": "QB2"},
    ]
    result = wait_final(client, submit(client, run_request(circuit, qubit_mapping=mapping)))
    shots = result["measurements"][0]["m"]
    assert all(shot[1] == 1 and shot[0] == shot[2] for shot in shots)
    assert result["metadata"]["request"]["qubit_mapping"] == mapping


def test_measurement_columns_follow_the_listed_order_and_keys_the_instruction_order(client):
    circuit = {
        "name": "order",
        "instructions": [
            prx("QB1", 0.5, 0.25),
            measure("QB4", key="z"),
            measure("QB3", "QB1", key="a"),
        ],
    }
    job_id = submit(client, run_request(circuit, shots=4))
    (measurements,) = wait_final(client, job_id)["measurements"]
    assert list(measurements) == ["z", "a"]
    assert measurements == {"z": [[0]] * 4, "a": [[0, 1]] * 4}
    counts = client.get(f"/jobs/{job_id}/counts").json()
    assert counts == {
        "status": "ready",
        "counts_batch": [{"measurement_keys": ["z", "a"], "counts": {"001": 4}}],
    }


def test_batch_and_circuit_without_measurements(client):
    no_measurement = {"name": "idle", "instructions": [prx("QB2", 0.5, 0.0)]}
    body = run_request(bell(), no_measurement, bell("QB2", "QB3", "other"), shots=8)
    result = wait_final(client, submit(client, body))
    assert len(result["measurements"]) == 3
    assert result["measurements"][1] == {}
    assert all(len(result["measurements"][i]["m"]) == 8 for i in (0, 2))


def test_counts_is_null_while_pending(slow_client):
    job_id = submit(slow_client, run_request())
    counts = slow_client.get(f"/jobs/{job_id}/counts").json()
    assert counts == {"status": "pending compilation", "counts_batch": None}
    slow_client.post(f"/jobs/{job_id}/abort")


def test_equal_seeds_give_equal_results_and_other_seeds_differ():
    def run(seed: int) -> list[Any]:
        with EmbeddedServer(seed=seed) as running, httpx.Client(base_url=running.url) as http:
            ids = [submit(http, run_request(shots=64)) for _ in range(2)]
            return [wait_final(http, i)["measurements"] for i in ids]

    first, second, other = run(5), run(5), run(6)
    assert first == second
    assert first != other


def test_simulated_state_matches_cirq_for_random_native_circuits():
    rng = np.random.default_rng(1234)
    qubits = ["QB1", "QB2", "QB3"]
    simulator = CalibratedSimulator(None, seed=0)  # no calibration: exact
    for _ in range(10):
        instructions = []
        for _ in range(12):
            if rng.random() < 0.3:
                a, b = rng.choice(3, size=2, replace=False)
                instructions.append(Instruction("cz", (qubits[a], qubits[b])))
            else:
                q = qubits[int(rng.integers(3))]
                args = {"angle_t": float(rng.uniform(-1, 1)), "phase_t": float(rng.uniform(-1, 1))}
                instructions.append(Instruction("prx", (q,), args))
        circuit = Circuit("random", tuple(instructions))
        ours, _ = simulator.build_circuit(circuit)
        reference = cirq.Circuit(_reference_op(i) for i in instructions)
        cirq.testing.assert_allclose_up_to_global_phase(
            cirq.unitary(ours), cirq.unitary(reference), atol=1e-8
        )


def _reference_op(instruction: Instruction) -> cirq.Operation:
    """prx as RZ(phi)·RX(theta)·RZ(-phi) (PROTOCOL.md §3.2), built from cirq's rotations."""
    qubits = [cirq.NamedQubit(q) for q in instruction.qubits]
    if instruction.name == "cz":
        return cirq.CZ(*qubits)
    theta = 2 * np.pi * instruction.args["angle_t"]
    phi = 2 * np.pi * instruction.args["phase_t"]
    matrix = cirq.unitary(cirq.rz(phi)) @ cirq.unitary(cirq.rx(theta)) @ cirq.unitary(cirq.rz(-phi))
    return cirq.MatrixGate(matrix).on(*qubits)


def test_sampling_follows_the_state_probabilities():
    # prx(1/6, 0): P(1) = sin^2(pi/6) = 0.25.
    circuit = Circuit(
        "tilt",
        (
            Instruction("prx", ("QB1",), {"angle_t": 1 / 6, "phase_t": 0.0}),
            Instruction("measure", ("QB1",), {"key": "m"}),
        ),
    )
    request = RunRequest((circuit,), shots=20_000)
    (result,) = CalibratedSimulator(None, seed=3).run(request)
    assert result["m"].shape == (20_000, 1)
    ones = result["m"][:, 0].sum() / 20_000
    assert abs(ones - 0.25) < 0.015


def test_independent_blocks_of_a_large_architecture_are_simulated_separately():
    with EmbeddedServer("aphrodite", seed=2) as running, httpx.Client(base_url=running.url) as http:
        qubits = running.app.architecture.qubits
        circuit = {
            "name": "all flipped",
            "instructions": [prx(q, 0.5, 0.0) for q in qubits] + [measure(*qubits, key="m")],
        }
        result = wait_final(http, submit(http, run_request(circuit, shots=3)))
    assert result["measurements"][0]["m"] == [[1] * 54] * 3


def test_deneb_move_sandwich_runs_and_a_broken_sandwich_is_refused():
    move_qb2 = {"name": "move", "qubits": ["QB2", "COMP_R"], "args": {}}
    with EmbeddedServer("deneb", seed=2) as running, httpx.Client(base_url=running.url) as http:
        # QB2 is parked in the resonator while QB1 interacts with it, then restored (STAR_MOVE.md).
        sandwich = {
            "name": "sandwich",
            "instructions": [
                prx("QB2", 0.5, 0.0),
                move_qb2,
                cz("QB1", "COMP_R"),
                move_qb2,
                measure("QB1", "QB2", key="m"),
            ],
        }
        result = wait_final(http, submit(http, run_request(sandwich, shots=2)))
        assert result["measurements"][0]["m"] == [[0, 1], [0, 1]]
        # Moving a second qubit into an occupied resonator would depend on an undefined phase.
        broken = {
            "name": "broken",
            "instructions": [
                prx("QB1", 0.5, 0.0),
                {"name": "move", "qubits": ["QB1", "COMP_R"], "args": {}},
                move_qb2,
                measure("QB1", "QB2", key="m"),
            ],
        }
        answer = http.post("/jobs", json=run_request(broken, shots=2))
    assert answer.status_code == 400
    assert "already occupied resonator" in answer.json()["detail"]


def test_a_simulation_error_fails_the_job_with_a_clear_message():
    with (
        EmbeddedServer(seed=1, max_block_qubits=2) as running,
        httpx.Client(base_url=running.url) as http,
    ):
        ghz = {
            "name": "ghz",
            "instructions": [cz("QB1", "QB3"), cz("QB2", "QB3"), measure("QB1", key="m")],
        }
        job_id = submit(http, run_request(ghz))
        result = wait_final(http, job_id)
        status = http.get(f"/jobs/{job_id}/status").json()
    assert result["status"] == "failed"
    assert "measurements" not in result
    assert 'circuit 0 ("ghz") entangles 3 qubits' in result["message"]
    assert status["message"] == result["message"]
    assert "execution_start" in result["metadata"]["timestamps"]


def test_an_unexpected_simulator_exception_fails_only_that_job(server, client, monkeypatch):
    def explode(request, progress=None):
        raise RuntimeError("boom")

    monkeypatch.setattr(server.app.simulator, "run", explode)
    result = wait_final(client, submit(client, run_request()))
    assert result["status"] == "failed"
    assert "boom" in result["message"]
    monkeypatch.undo()
    assert wait_final(client, submit(client, run_request()))["status"] == "ready"


# Request handling --------------------------------------------------------------------------------


def test_idempotency_key_deduplicates_and_detects_a_changed_body(client, server):
    before_jobs = len(server.app.store)
    before_posts = server.app.stats["POST jobs"]
    headers = {"Idempotency-Key": "sweep-42"}
    first = client.post("/jobs", json=run_request(shots=7), headers=headers)
    second = client.post("/jobs", json=run_request(shots=7), headers=headers)
    assert first.status_code == 201
    assert second.status_code in (200, 201)
    assert first.json()["id"] == second.json()["id"]
    assert len(server.app.store) == before_jobs + 1
    assert server.app.stats["POST jobs"] == before_posts + 2
    changed = client.post("/jobs", json=run_request(shots=8), headers=headers)
    assert changed.status_code == 409
    assert "sweep-42" in changed.json()["detail"]
    assert "different request body" in changed.json()["detail"]


def test_calibration_set_id_known_and_unknown(client, server):
    known = str(server.app.config.calibration_set_id)
    job_id = submit(client, run_request(calibration_set_id=known))
    assert wait_final(client, job_id)["metadata"]["calibration_set_id"] == known
    unknown = "00000000-0000-4000-8000-000000000000"
    response = client.post("/jobs", json=run_request(calibration_set_id=unknown))
    assert response.status_code == 400
    assert unknown in response.json()["detail"]


def test_stats_count_requests_per_endpoint(server, client):
    before = dict(server.app.stats)
    job_id = submit(client, run_request())
    client.get(f"/jobs/{job_id}/status")
    client.get(f"/jobs/{job_id}")
    client.get("/nowhere")
    after = server.app.stats
    assert after["POST jobs"] == before.get("POST jobs", 0) + 1
    assert after["GET jobs/{id}/status"] == before.get("GET jobs/{id}/status", 0) + 1
    assert after["GET jobs/{id}"] == before.get("GET jobs/{id}", 0) + 1
    assert after["unmatched"] == before.get("unmatched", 0) + 1


def test_base_path_is_optional_in_requests():
    with EmbeddedServer(base_path="/cocos/") as running:
        assert running.url.endswith("/cocos")
        with httpx.Client(timeout=5) as http:
            assert http.get(f"{running.url}/health").status_code == 200
            root = running.url.removesuffix("/cocos")
            assert http.get(f"{root}/health").status_code == 200
            job_id = http.post(f"{running.url}/jobs/", json=run_request()).json()["id"]
            assert http.get(f"{running.url}/jobs/{job_id}/status/").status_code == 200


def test_keep_alive_serves_many_requests_on_one_connection(server):
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        stream = sock.makefile("rb")
        for _ in range(20):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            status_line = stream.readline()
            assert status_line.startswith(b"HTTP/1.1 200")
            length = 0
            while (line := stream.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            assert json.loads(stream.read(length)) == {"status": "ok"}


def test_concurrent_submissions_are_all_accepted_once(server):
    ids: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for _ in range(5):
                job_id = submit(http, run_request(shots=10))
                with lock:
                    ids.append(job_id)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == len(set(ids)) == 40
    with httpx.Client(base_url=server.url) as http:
        assert all(wait_final(http, i)["status"] == "ready" for i in ids)


def test_ipv6_loopback():
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        running = EmbeddedServer(host="::1").start()
    except OSError:
        pytest.skip("IPv6 loopback unavailable")
    try:
        assert running.url.startswith("http://[::1]:")
        assert httpx.get(f"{running.url}/health").json() == {"status": "ok"}
    finally:
        running.stop()


def test_stop_joins_every_thread_even_with_open_connections_and_pending_jobs():
    before = set(threading.enumerate())
    running = EmbeddedServer(job_delay=30.0).start()
    idle = socket.create_connection(("127.0.0.1", running.port))
    with httpx.Client(base_url=running.url) as http:
        submit(http, run_request())
        started = time.monotonic()
        running.stop()
    idle.close()
    assert time.monotonic() - started < 5
    left = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    assert left == []
    running.stop()  # idempotent
    with pytest.raises(RuntimeError, match="not running"):
        _ = running.url


def test_create_app_works_in_process_with_wsgi_transport():
    app = create_app(ServerConfig(architecture="apollo", seed=1))
    try:
        with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://iqm") as http:
            arch = http.get("/quantum-architecture").json()["quantum_architecture"]
            assert arch["name"] == "Apollo"
            job_id = submit(http, run_request(bell("QB1", "QB2")))
            assert wait_final(http, job_id)["status"] == "ready"
    finally:
        app.close()


def test_server_config_repr_hides_secrets():
    config = ServerConfig(token="s3cret-token", auth_users={"alice": "pw-alice"})
    text = repr(config)
    assert "s3cret-token" not in text
    assert "pw-alice" not in text
    assert "alice" in text


# -------------------------------------------------------------------------------- structure


def _worker_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("cirq-iqm-ext-worker-")}


def test_building_the_app_starts_no_thread_and_start_is_idempotent():
    from cirq_iqm_ext.server.app import IQMServerApp

    before = _worker_threads()
    app = IQMServerApp(ServerConfig(seed=1, workers=2))
    try:
        assert _worker_threads() == before
        assert app.start() is app and app.start() is app
        started = _worker_threads() - before
        assert len(started) == 2
    finally:
        app.close()
    assert not any(t.is_alive() for t in started)


def test_create_app_returns_a_started_app():
    before = _worker_threads()
    app = create_app(seed=1)
    try:
        assert len(_worker_threads() - before) == 1
    finally:
        app.close()


def test_router_first_pattern_wins_405_names_the_methods_and_base_path_is_optional():
    from cirq_iqm_ext.server.framework import NoRouteError, Response, Router

    router = Router("/base/")
    router.add("GET", "jobs/{id}", lambda request: Response(200, request.params))
    router.add("DELETE", "jobs/{id}", lambda request: Response(204))
    router.add("GET", "jobs/{other}", lambda request: Response(500))
    assert router.base == "/base"
    match = router.resolve({"REQUEST_METHOD": "GET", "PATH_INFO": "/base/jobs/7/"})
    assert match.key == "GET jobs/{id}"
    assert match.request.path == "/jobs/7/"
    assert match.handler(match.request) == (200, {"id": "7"}, ())
    with pytest.raises(NoRouteError) as refused:
        router.resolve({"REQUEST_METHOD": "POST", "PATH_INFO": "/jobs/7"})
    assert refused.value.status == 405
    assert refused.value.headers == [("Allow", "DELETE, GET")]
    with pytest.raises(NoRouteError) as missing:
        router.resolve({"REQUEST_METHOD": "GET", "PATH_INFO": "/jobs"})
    assert missing.value.status == 404


def test_admission_refusals_name_their_step():
    from cirq_iqm_ext.server.admission import AdmissionError, Limits

    limits = Limits(max_body_bytes=1000, max_shots=10, max_circuits=2, max_total_shots=15)
    one = RunRequest.from_dict(run_request(shots=10))
    limits.check(one)
    for body, fragment in [
        (run_request(shots=11), "shots must be at most 10"),
        (run_request(bell(), bell(), bell(), shots=1), "at most 2 circuits"),
        (run_request(bell(), bell(), shots=8), "circuits × shots must be at most 15"),
    ]:
        with pytest.raises(AdmissionError) as refused:
            limits.check(RunRequest.from_dict(body))
        assert refused.value.kind == "limits" and refused.value.status == 400
        assert fragment in refused.value.detail


def test_the_core_serves_jobs_without_http():
    from cirq_iqm_ext.server.core import ServerCore, UnknownCalibrationError

    core = ServerCore(ServerConfig(seed=3))
    core.start()
    try:
        job, created = core.submit(RunRequest.from_dict(run_request(shots=20)), idempotency_key="k")
        assert created
        assert core.submit(RunRequest.from_dict(run_request(shots=20)), idempotency_key="k") == (
            job,
            False,
        )
        assert core.status_dict(job.id, wait=5.0)["status"] in ("pending execution", "ready")
        deadline = time.monotonic() + 10
        while core.result(job.id).status.value != "ready" and time.monotonic() < deadline:
            time.sleep(0.01)
        result = core.result(job.id)
        assert result.measurements is not None and len(result.measurements[0]["m"]) == 20
        assert core.result_dict(job.id) == RunResult.from_dict(core.result_dict(job.id)).to_dict()
        unknown = run_request(calibration_set_id="00000000-0000-0000-0000-000000000001")
        with pytest.raises(UnknownCalibrationError):
            core.submit(RunRequest.from_dict(unknown), idempotency_key=None)
        core.delete(job.id)
        assert core.result(job.id).status.value == "deleted"
    finally:
        core.close()


def test_old_module_paths_still_import_and_install_hands_back_the_routes():
    from cirq_iqm_ext.server import app as app_module
    from cirq_iqm_ext.server import iqm_server_api

    for name in ("ServerConfig", "HTTPError", "AdmissionError", "Request", "circuit_duration"):
        assert hasattr(app_module, name)
    app = create_app(seed=1)
    try:
        assert iqm_server_api.install(app) is app.iqm_server_api
        assert isinstance(app.iqm_server_api, iqm_server_api.IQMServerAPI)
    finally:
        app.close()
