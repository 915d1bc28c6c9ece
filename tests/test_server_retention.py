"""Job retention (issue 19, item 1): bounded by count, bytes and age, over loopback.

An evicted job answers that it expired, when and why (v1: 410; IQM Server API: 404 with the
same message, since §7.2 has no 410), and leaves the state dir as well as memory.
"""

from __future__ import annotations

import sqlite3
import threading
from uuid import UUID

import httpx
import pytest
from server_requests import bell_body, wait_ready

from cirq_iqm_ext.server import EmbeddedServer
from cirq_iqm_ext.server.retention import (
    DEFAULT_RETAIN_BYTES,
    DEFAULT_RETAIN_JOBS,
    Retention,
    RetentionPolicy,
)


def run_job(http: httpx.Client, *, shots: int = 10, fetch: bool = True) -> str:
    job_id = http.post("/jobs", json=bell_body(shots)).json()["id"]
    wait_ready(http, job_id)
    if fetch:
        assert len(http.get(f"/jobs/{job_id}").json()["measurements"][0]["m"]) == shots
    return job_id


def assert_expired(http: httpx.Client, job_id: str, because: str) -> None:
    """Every job route of both profiles says the job expired, when and why."""
    v1 = [
        http.get(f"/jobs/{job_id}"),
        http.get(f"/jobs/{job_id}", params={"measurements": "packed"}),
        http.get(f"/jobs/{job_id}/status"),
        http.get(f"/jobs/{job_id}/counts"),
        http.post(f"/jobs/{job_id}/abort"),
        http.delete(f"/jobs/{job_id}"),
    ]
    for response in v1:
        assert response.status_code == 410, (response.request.url, response.text)
        detail = response.json()["detail"]
        assert f"Job {job_id} has expired" in detail and because in detail
        assert "evicted it at 20" in detail and "--retain-" in detail
    iqm = [
        http.get(f"/api/v1/jobs/{job_id}"),
        http.get(f"/api/v1/jobs/{job_id}/artifacts/measurements"),
        http.get(f"/api/v1/jobs/{job_id}/payload"),
        http.post(f"/api/v1/jobs/{job_id}/cancel"),
    ]
    for response in iqm:
        assert response.status_code == 404, (response.request.url, response.text)
        body = response.json()
        assert body["error_code"] == "not_found"
        assert f"Job {job_id} has expired" in body["message"] and because in body["message"]


def test_the_oldest_finished_jobs_expire_beyond_the_count():
    with EmbeddedServer("adonis", seed=1, retain_jobs=3) as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            ids = [run_job(http) for _ in range(5)]
            for job_id in ids[:2]:
                assert_expired(http, job_id, "the server keeps at most 3 finished jobs")
            for job_id in ids[2:]:
                assert http.get(f"/jobs/{job_id}").json()["status"] == "ready"
                assert http.get(f"/api/v1/jobs/{job_id}").json()["status"] == "completed"
        assert len(server.app.store) == 3


def test_fetched_jobs_go_before_unread_ones():
    with EmbeddedServer("adonis", seed=1, retain_jobs=2) as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            unread = run_job(http, fetch=False)
            fetched = run_job(http)
            newest = run_job(http, fetch=False)
            assert http.get(f"/jobs/{fetched}").status_code == 410
            for job_id in (unread, newest):
                assert len(http.get(f"/jobs/{job_id}").json()["measurements"][0]["m"]) == 10


def test_results_beyond_the_byte_budget_expire_but_the_newest_job_stays():
    # 1000 shots x 2 qubits: 2000 bits, kept packed in 250 bytes per job; the budget holds one
    # and a half.
    with EmbeddedServer("adonis", seed=1, retain_bytes=375) as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            first = run_job(http, shots=1000)
            second = run_job(http, shots=1000)
            assert_expired(http, first, "the server keeps at most 375 bytes of results")
            assert http.get(f"/jobs/{second}").json()["status"] == "ready"
            huge = run_job(http, shots=5000)  # alone beyond the budget: still kept
            assert http.get(f"/jobs/{second}").status_code == 410
            assert len(http.get(f"/jobs/{huge}").json()["measurements"][0]["m"]) == 5000
        assert server.app.store.retention.total_bytes == 10_000 // 8


class FakeClock:
    def __init__(self) -> None:
        self.now = 1.8e9
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now


def test_finished_jobs_expire_after_the_age_limit_even_unread():
    clock = FakeClock()
    with EmbeddedServer("adonis", seed=1, retain_seconds=60, clock=clock) as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            old = run_job(http, fetch=False)
            clock.now += 30
            young = run_job(http, fetch=False)
            clock.now += 31  # old: 61 s since it finished; young: 31 s
            assert_expired(http, old, "it had been finished for more than 60 s")
            assert http.get(f"/jobs/{young}").json()["status"] == "ready"
            clock.now += 30
            assert http.get(f"/jobs/{young}/status").status_code == 410


def test_pending_jobs_never_expire():
    clock = FakeClock()
    with EmbeddedServer(
        "adonis", seed=1, retain_jobs=1, retain_seconds=1, job_delay=60, clock=clock
    ) as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            ids = [http.post("/jobs", json=bell_body()).json()["id"] for _ in range(3)]
            clock.now += 3600
            for job_id in ids:
                assert http.get(f"/jobs/{job_id}/status").json()["status"].startswith("pending")


def test_evicted_jobs_leave_the_state_dir_and_still_answer_expired_after_a_restart(tmp_path):
    with EmbeddedServer("adonis", seed=1, state_dir=tmp_path, retain_jobs=2) as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            keyed_post = http.post("/jobs", json=bell_body(), headers={"Idempotency-Key": "k1"})
            keyed = keyed_post.json()["id"]
            wait_ready(http, keyed)
            assert http.get(f"/jobs/{keyed}").json()["status"] == "ready"
            ids = [keyed] + [run_job(http) for _ in range(5)]
    with sqlite3.connect(tmp_path / "jobs.sqlite3") as db:
        rows = {row[0] for row in db.execute("SELECT id FROM jobs")}
        keys = db.execute("SELECT COUNT(*) FROM idempotency").fetchone()[0]
        evicted = {row[0] for row in db.execute("SELECT id FROM evicted")}
    assert rows == set(ids[-2:]) and keys == 0 and evicted == set(ids[:-2])
    with EmbeddedServer("adonis", seed=1, state_dir=tmp_path, retain_jobs=2) as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            assert_expired(http, ids[0], "the server keeps at most 2 finished jobs")
            for job_id in ids[-2:]:
                assert http.get(f"/jobs/{job_id}").json()["status"] == "ready"
            # The key went with its job: the same key now makes a new job.
            again = http.post("/jobs", json=bell_body(), headers={"Idempotency-Key": "k1"})
            assert again.status_code == 201 and again.json()["id"] != keyed


def test_a_lower_retention_applies_to_the_jobs_of_a_state_dir_at_start(tmp_path):
    with EmbeddedServer("adonis", seed=1, state_dir=tmp_path) as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            ids = [run_job(http) for _ in range(4)]
    with EmbeddedServer("adonis", seed=1, state_dir=tmp_path, retain_jobs=1) as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            assert [http.get(f"/jobs/{j}").status_code for j in ids] == [410, 410, 410, 200]


def test_another_users_evicted_job_is_just_not_found():
    users = {"alice": "pw-alice", "bob": "pw-bob"}
    with EmbeddedServer("adonis", seed=1, auth_users=users, retain_jobs=1) as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            tokens = {}
            for name, password in users.items():
                answer = http.post(
                    "/realms/cortex/protocol/openid-connect/token",
                    data={
                        "grant_type": "password",
                        "client_id": "iqm_client",
                        "username": name,
                        "password": password,
                    },
                )
                assert answer.status_code == 200, answer.text
                tokens[name] = {"Authorization": f"Bearer {answer.json()['access_token']}"}
            http.headers.update(tokens["alice"])
            first = run_job(http)
            run_job(http)
            assert http.get(f"/jobs/{first}", headers=tokens["alice"]).status_code == 410
            as_bob = http.get(f"/jobs/{first}", headers=tokens["bob"])
            assert as_bob.status_code == 404 and "expired" not in as_bob.text


def test_the_defaults_keep_ordinary_work():
    # A 100-point sweep at 10,000 shots on the largest built-in device (54 qubits), ten times.
    sweep_bytes = 100 * 10_000 * 54
    assert 10 * sweep_bytes <= DEFAULT_RETAIN_BYTES and DEFAULT_RETAIN_JOBS >= 1000
    retention = Retention(RetentionPolicy())
    for number in range(10):
        retention.add(UUID(int=number), sweep_bytes, 1.8e9 + number)
    assert list(retention.victims(1.8e9 + 3600)) == []


@pytest.mark.parametrize(
    "bad", [{"max_jobs": 0}, {"max_bytes": -1}, {"max_age": -1.0}, {"max_age": float("inf")}]
)
def test_bad_retention_settings_are_refused(bad):
    with pytest.raises(ValueError, match="retention"):
        RetentionPolicy(**bad)
