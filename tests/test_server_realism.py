"""The server behaving like a real IQM computer: calibration endpoints, noise, checks, limits,
persistence across restarts and a bounded queue."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from test_server import bell, measure, prx, run_request, submit, wait_final

from cirq_iqm_ext.calibration import builtin_calibration, generate_calibration
from cirq_iqm_ext.cli.main import build_parser
from cirq_iqm_ext.server import EmbeddedServer, load_architecture


@pytest.fixture(scope="module")
def noisy():
    extra = generate_calibration(load_architecture("adonis"), seed=99)
    with EmbeddedServer(seed=3, noise="calibration", extra_calibrations=(extra,)) as running:
        yield running, extra


@pytest.fixture
def client(noisy):
    with httpx.Client(base_url=noisy[0].url) as http:
        yield http


def test_calibration_endpoints(client, noisy):
    server, extra = noisy
    default = builtin_calibration("adonis")
    assert server.app.config.calibration_set_id == default.calibration_set_id
    latest = client.get("/calibration/metrics/latest").json()
    assert latest == default.metrics()
    assert client.get(f"/calibration/metrics/{extra.calibration_set_id}").json() == extra.metrics()
    assert client.get(f"/calibration/metrics/{uuid.uuid4()}").status_code == 404
    gates = client.get("/api/v1/calibration/default/gates").json()
    assert gates["calibration_set_id"] == str(default.calibration_set_id)
    assert set(gates["gates"]) == {"prx", "cz", "measure", "delay", "reset", "cc_prx"}
    assert client.get("/info/client-libraries").json()["iqm-client"] == {
        "min": "17.0",
        "max": "18.0",
    }
    assert client.get("/health").json() == {"status": "ok"}


def test_jobs_run_with_the_named_calibration_set_and_unknown_ids_are_named(client, noisy):
    _, extra = noisy
    job_id = submit(client, run_request(calibration_set_id=str(extra.calibration_set_id)))
    assert wait_final(client, job_id)["metadata"]["calibration_set_id"] == str(
        extra.calibration_set_id
    )
    unknown = str(uuid.uuid4())
    response = client.post("/jobs", json=run_request(calibration_set_id=unknown))
    assert response.status_code == 400 and unknown in response.json()["detail"]


def test_noisy_bell_has_some_wrong_parities(client):
    result = wait_final(client, submit(client, run_request(shots=3000)))
    shots = result["measurements"][0]["m"]
    wrong = sum(a != b for a, b in shots) / len(shots)
    assert 0.005 < wrong < 0.15


def long_circuit(count: int) -> dict:
    return {
        "name": "long",
        "instructions": [prx("QB1", 0.5, 0.0)] * count + [measure("QB1", key="m")],
    }


def test_duration_check_names_the_circuit_and_both_figures(client):
    t2 = builtin_calibration("adonis").qubit("QB1").t2
    response = client.post(
        "/jobs", json=run_request(long_circuit(4), max_circuit_duration_over_t2=0.01)
    )
    detail = response.json()["detail"]
    assert response.status_code == 400
    assert 'circuit 0 ("long")' in detail and f"{t2 * 1e6:.3f} µs on QB1" in detail
    assert "µs, longer than max_circuit_duration_over_t2 = 0.01" in detail
    assert "max_circuit_duration_over_t2=0 to turn the check off" in detail
    # The server default (1.0) rejects a circuit longer than T2; 0.0 disables the check.
    too_long = long_circuit(int(t2 / 40e-9) + 10)
    assert client.post("/jobs", json=run_request(too_long, shots=1)).status_code == 400
    ok = client.post("/jobs", json=run_request(too_long, shots=1, max_circuit_duration_over_t2=0.0))
    assert ok.status_code == 201


def test_heralding_drops_shots_on_the_noisy_server(client):
    result = wait_final(client, submit(client, run_request(shots=4000, heralding_mode="zeros")))
    kept = len(result["measurements"][0]["m"])
    assert 3000 < kept < 4000


@pytest.mark.parametrize(
    ("options", "body", "status", "phrase"),
    [
        ({"max_total_shots": 100}, run_request(bell(), bell(), shots=60), 400, "60 = 120"),
        ({"max_shots": 10}, run_request(shots=11), 400, "shots must be at most 10"),
        ({"max_circuits": 1}, run_request(bell(), bell()), 400, "at most 1 circuits"),
        ({"max_body_bytes": 100}, run_request(), 413, "larger than the limit"),
        ({}, run_request(max_circuit_duration_over_t2=-1), 400, "max_circuit_duration_over_t2"),
        ({}, run_request(max_circuit_duration_over_t2="x"), 400, "max_circuit_duration_over_t2"),
        ({}, run_request(heralding_mode="ones"), 400, "heralding_mode"),
        ({}, run_request(calibration_set_id=None, shots=0), 400, "shots"),
    ],
)
def test_limits_and_bad_requests_answer_4xx_with_detail(options, body, status, phrase):
    with (
        EmbeddedServer(noise="calibration", **options) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        response = http.post("/jobs", json=body)
    assert response.status_code == status
    assert phrase in response.json()["detail"]


def test_a_full_queue_answers_503_with_retry_after():
    with (
        EmbeddedServer(job_delay=2.0, max_queue=1, retry_after=3) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        first = http.post("/jobs", json=run_request())
        # Wait until the worker has taken the first job, so exactly one place is left in the queue.
        deadline = time.monotonic() + 5
        while "compile_start" not in http.get(f"/jobs/{first.json()['id']}").json()["metadata"].get(
            "timestamps", {}
        ):
            assert time.monotonic() < deadline, "the worker never started the first job"
            time.sleep(0.01)
        statuses = [first] + [http.post("/jobs", json=run_request()) for _ in range(3)]
        codes = [r.status_code for r in statuses]
        assert codes[:2] == [201, 201] and 503 in codes
        refused = statuses[codes.index(503)]
        assert refused.headers["Retry-After"] == "3"
        assert "queue is full" in refused.json()["detail"]


def test_jobs_survive_a_restart_with_a_state_dir(tmp_path):
    key = {"Idempotency-Key": "restart-key"}
    with (
        EmbeddedServer(seed=1, state_dir=tmp_path, job_delay=0.0) as first,
        httpx.Client(base_url=first.url) as http,
    ):
        done_id = http.post("/jobs", json=run_request(shots=20), headers=key).json()["id"]
        done = wait_final(http, done_id)
        counts = http.get(f"/jobs/{done_id}/counts").json()
    with (
        EmbeddedServer(seed=1, state_dir=tmp_path, job_delay=30.0) as second,
        httpx.Client(base_url=second.url) as http,
    ):
        pending_id = submit(http, run_request(shots=5))
    with (
        EmbeddedServer(seed=1, state_dir=tmp_path) as third,
        httpx.Client(base_url=third.url) as http,
    ):
        again = http.get(f"/jobs/{done_id}").json()
        assert again["measurements"] == done["measurements"]
        assert again["metadata"]["timestamps"] == done["metadata"]["timestamps"]
        assert http.get(f"/jobs/{done_id}/counts").json() == counts
        packed = http.get(f"/jobs/{done_id}", params={"measurements": "packed"}).json()
        assert packed["measurements_format"] == "packed"
        repeat = http.post("/jobs", json=run_request(shots=20), headers=key)
        assert repeat.status_code == 200 and repeat.json()["id"] == done_id
        rerun = wait_final(http, pending_id)
        assert rerun["status"] == "ready" and len(rerun["measurements"][0]["m"]) == 5
        assert any("restarted" in w for w in rerun["warnings"])


def test_worker_pool_runs_jobs_concurrently():
    with (
        EmbeddedServer(workers=3, job_delay=0.6) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        start = time.monotonic()
        ids = [submit(http, run_request()) for _ in range(3)]
        for job_id in ids:
            assert wait_final(http, job_id)["status"] == "ready"
        assert time.monotonic() - start < 1.6  # three 0.6 s jobs, not one after another


def test_serve_options_parse():
    args = build_parser().parse_args(
        [
            "serve",
            "--noise",
            "none",
            "--calibration",
            "adonis",
            "--state-dir",
            "/tmp/x",
            "--workers",
            "2",
            "--max-queue",
            "5",
        ]
    )
    assert (args.noise, args.calibration, args.state_dir, args.workers, args.max_queue) == (
        "none",
        ["adonis"],
        "/tmp/x",
        2,
        5,
    )
    assert build_parser().parse_args(["serve"]).noise == "calibration"
