"""Hostile clients and bad luck (issue 19, the server's side), over loopback sockets only.

Each test names the item of the issue it covers and fails on the code before the fix.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sqlite3
import time
from typing import Any

import httpx
import numpy as np
import pytest
from server_requests import bell_body, wait_ready

from cirq_iqm_ext.server import EmbeddedServer, StateDirError
from cirq_iqm_ext.server.result_json import bits_json
from cirq_iqm_ext.wire.iqm_server_format import run_request_to_job_definition
from cirq_iqm_ext.wire.packed import unpack_measurements

#: A 400-digit integer: valid JSON, beyond the float range.
HUGE = "1" + "0" * 400
V1_JOBS = "/jobs"
IQM_JOBS = "/api/v1/jobs/adonis/circuit"


def iqm_body() -> dict[str, Any]:
    return run_request_to_job_definition(bell_body())


def with_raw(body: dict[str, Any], path: tuple[Any, ...], raw_number: str) -> bytes:
    """``body`` as JSON with the value at ``path`` replaced by the literal ``raw_number``."""
    target: Any = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = "@@NUMBER@@"
    return json.dumps(body).replace('"@@NUMBER@@"', raw_number).encode()


@pytest.fixture(scope="module")
def server():
    with EmbeddedServer("adonis", seed=1) as running:
        yield running


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield http


@pytest.fixture
def server_log(caplog):
    """The server's warnings and errors during a test."""
    caplog.set_level(logging.WARNING, logger="cirq_iqm_ext")
    return caplog


def server_errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("cirq_iqm_ext.server")]


# Item 3: bad numbers -------------------------------------------------------------------------

PRX = ("circuits", 0, "instructions", 0, "args")
V1_NUMBER_CASES = [
    (V1_JOBS, bell_body, (*PRX, "angle_t"), HUGE, "angle_t"),
    (V1_JOBS, bell_body, (*PRX, "phase_t"), f"-{HUGE}", "phase_t"),
    (V1_JOBS, bell_body, (*PRX, "angle_t"), "1.5e308", "angle_t"),
    (V1_JOBS, bell_body, (*PRX, "phase_t"), "1e300", "phase_t"),
    (V1_JOBS, bell_body, ("shots",), HUGE, "shots"),
    (V1_JOBS, bell_body, ("shots",), f"-{HUGE}", "shots"),
    (V1_JOBS, bell_body, ("max_circuit_duration_over_t2",), HUGE, "max_circuit_duration"),
    (V1_JOBS, bell_body, ("active_reset_cycles",), HUGE, "active_reset_cycles"),
    (V1_JOBS, bell_body, ("active_reset_cycles",), "-1", "active_reset_cycles"),
    (IQM_JOBS, iqm_body, (*PRX, "angle"), HUGE, '"angle"'),
    (IQM_JOBS, iqm_body, (*PRX, "phase"), f"-{HUGE}", '"phase"'),
    (IQM_JOBS, iqm_body, (*PRX, "angle"), "1.5e308", "(angle = 1.5e+308 rad)"),
    (IQM_JOBS, iqm_body, ("shots",), HUGE, "shots"),
    (IQM_JOBS, iqm_body, ("max_circuit_duration_over_t2",), HUGE, "max_circuit_duration"),
    (IQM_JOBS, iqm_body, ("active_reset_cycles",), HUGE, "active_reset_cycles"),
    (IQM_JOBS, iqm_body, ("active_reset_cycles",), "-3", "active_reset_cycles"),
]


@pytest.mark.parametrize(
    ("url", "make_body", "path", "number", "field"),
    V1_NUMBER_CASES,
    ids=[f"{c[0].split('/')[-1]}-{c[2][-1]}-{c[3][:6]}" for c in V1_NUMBER_CASES],
)
def test_out_of_range_numbers_are_400_naming_the_field(
    server, client, server_log, url, make_body, path, number, field
):
    jobs_before = len(server.app.store)
    response = client.post(
        url,
        content=with_raw(make_body(), path, number),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert field in detail, detail
    assert len(detail) < 300, "a huge number is described, not printed digit by digit"
    assert len(server.app.store) == jobs_before
    assert server_errors(server_log) == []


@pytest.mark.parametrize("turns", [1e6, -1e6, 12345.678])
def test_angles_up_to_the_bound_still_run(client, turns):
    body = bell_body()
    body["circuits"][0]["instructions"][0]["args"]["angle_t"] = turns
    response = client.post(V1_JOBS, json=body)
    assert response.status_code == 201, response.text


# Item 6: users are separate ------------------------------------------------------------------

TOKEN_PATH = "/realms/cortex/protocol/openid-connect/token"
USERS = {"alice": "alice-secret", "bob": "bob-secret"}


def login(http: httpx.Client, user: str, password: str | None = None) -> httpx.Response:
    form = {
        "grant_type": "password",
        "client_id": "iqm_client",
        "username": user,
        "password": USERS.get(user, "x") if password is None else password,
    }
    return http.post(TOKEN_PATH, data=form)


def bearer(http: httpx.Client, user: str) -> dict[str, str]:
    response = login(http, user)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="module")
def users_server():
    with EmbeddedServer("adonis", seed=1, auth_users=USERS, token="shared", job_delay=2.0) as s:
        yield s


def submit_as(http, headers, api: str, key: str | None = None) -> str:
    extra = {"Idempotency-Key": key} if key else {}
    if api == "v1":
        response = http.post(V1_JOBS, json=bell_body(), headers={**headers, **extra})
        assert response.status_code in (200, 201), response.text
    else:
        response = http.post(IQM_JOBS, json=iqm_body(), headers={**headers, **extra})
        assert response.status_code == 200, response.text
    return response.json()["id"]


V1_READS = [("GET", "/jobs/{id}"), ("GET", "/jobs/{id}/status"), ("GET", "/jobs/{id}/counts")]
IQM_READS = [
    ("GET", "/api/v1/jobs/{id}"),
    ("GET", "/api/v1/jobs/{id}/payload"),
    ("GET", "/api/v1/jobs/{id}/artifacts/measurements"),
    ("GET", "/api/v1/jobs/{id}/artifacts/measurement_counts"),
]
WRITES = [
    ("POST", "/jobs/{id}/abort"),
    ("POST", "/api/v1/jobs/{id}/cancel"),
    ("DELETE", "/jobs/{id}"),
    ("DELETE", "/api/v1/jobs/{id}"),
]


@pytest.mark.parametrize("api", ["v1", "iqm-server"])
def test_another_user_gets_404_for_everything_about_a_job(users_server, api):
    with httpx.Client(base_url=users_server.url, timeout=10) as http:
        alice, bob = bearer(http, "alice"), bearer(http, "bob")
        shared = {"Authorization": "Bearer shared"}
        job_id = submit_as(http, alice, api)
        for intruder in (bob, shared):
            for method, path in V1_READS + IQM_READS + WRITES:
                response = http.request(method, path.format(id=job_id), headers=intruder)
                assert response.status_code == 404, (method, path, response.text)
        # The job is untouched: still pending for its owner, who can abort it.
        assert (
            http.get(f"/jobs/{job_id}/status", headers=alice).json()["status"].startswith("pending")
        )
        assert http.post(f"/jobs/{job_id}/abort", headers=alice).status_code == 200
        assert http.get(f"/jobs/{job_id}/status", headers=alice).json()["status"] == "aborted"


def test_the_static_token_is_one_shared_identity(users_server):
    with httpx.Client(base_url=users_server.url, timeout=10) as http:
        shared = {"Authorization": "Bearer shared"}
        job_id = submit_as(http, shared, "v1")
        # Anyone with the token (another connection, the same token) sees the job.
        with httpx.Client(base_url=users_server.url, timeout=10) as other:
            assert other.get(f"/jobs/{job_id}/status", headers=shared).status_code == 200
        assert http.get(f"/jobs/{job_id}/status", headers=bearer(http, "alice")).status_code == 404
        assert http.delete(f"/jobs/{job_id}", headers=shared).status_code == 200


def test_idempotency_keys_are_separate_per_user(users_server):
    with httpx.Client(base_url=users_server.url, timeout=10) as http:
        alice, bob = bearer(http, "alice"), bearer(http, "bob")
        first = submit_as(http, alice, "v1", key="same-key")
        assert submit_as(http, alice, "v1", key="same-key") == first
        response = http.post(
            V1_JOBS, json=bell_body(), headers={**bob, "Idempotency-Key": "same-key"}
        )
        assert response.status_code == 201, "bob's key must not find alice's job"
        assert response.json()["id"] != first


def test_job_owners_survive_a_restart(tmp_path):
    options = {"auth_users": USERS, "state_dir": tmp_path, "job_delay": 30.0}
    with EmbeddedServer("adonis", seed=1, **options) as first:
        with httpx.Client(base_url=first.url, timeout=10) as http:
            job_id = submit_as(http, bearer(http, "alice"), "v1")
    with EmbeddedServer("adonis", seed=1, **options) as second:
        with httpx.Client(base_url=second.url, timeout=10) as http:
            path = f"/jobs/{job_id}/status"
            assert http.get(path, headers=bearer(http, "bob")).status_code == 404
            assert http.get(path, headers=bearer(http, "alice")).status_code == 200


# Item 8: strict tokens -----------------------------------------------------------------------


def altered_tokens(token: str) -> list[str]:
    header, payload, signature = token.split(".")
    return [
        f"{token}!!",
        f"{token}==",
        f"{token}=",
        f"{header}.{payload}.{signature[:10]}%%{signature[10:]}",
        f"{header}.{payload}.{signature[:10]} {signature[10:]}",
        f"{header}.{payload}.{signature[:10]}+/{signature[10:]}",
        f"{header}.{payload}==.{signature}",
        f"{header}!!.{payload}.{signature}",
        f"{header}.{payload}.{signature}A",
    ]


def test_altered_tokens_are_refused(users_server):
    with httpx.Client(base_url=users_server.url, timeout=10) as http:
        token = login(http, "alice").json()["access_token"]
        assert http.get("/quantum-architecture", headers={"Authorization": f"Bearer {token}"})
        for altered in altered_tokens(token):
            response = http.get(
                "/quantum-architecture", headers={"Authorization": f"Bearer {altered}"}
            )
            assert response.status_code == 401, altered


def test_altered_refresh_tokens_are_refused(users_server):
    with httpx.Client(base_url=users_server.url, timeout=10) as http:
        refresh = login(http, "bob").json()["refresh_token"]
        for altered in altered_tokens(refresh):
            form = {"grant_type": "refresh_token", "client_id": "iqm_client"}
            response = http.post(TOKEN_PATH, data={**form, "refresh_token": altered})
            assert response.status_code == 400, altered
        form = {"grant_type": "refresh_token", "client_id": "iqm_client", "refresh_token": refresh}
        assert http.post(TOKEN_PATH, data=form).status_code == 200


# Item 7: brute-force throttling --------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def throttled():
    clock = FakeClock()
    with EmbeddedServer("adonis", seed=1, auth_users=USERS, clock=clock) as running:
        with httpx.Client(base_url=running.url, timeout=10) as http:
            yield http, clock


def statuses(http: httpx.Client, user: str, count: int) -> list[int]:
    return [login(http, user, "wrong").status_code for _ in range(count)]


def test_failed_logins_are_slowed_exponentially_per_user(throttled):
    http, clock = throttled
    assert statuses(http, "alice", 5) == [401] * 5
    assert statuses(http, "alice", 1) == [401]  # the sixth failure starts the first block
    blocked = login(http, "alice")  # even the right password waits now
    assert blocked.status_code == 429, blocked.text
    assert blocked.headers["Retry-After"] == "1"
    assert "Too many failed logins" in blocked.json()["detail"]
    retry_afters = []
    for _ in range(4):
        clock.now += 61
        assert statuses(http, "alice", 1) == [401]
        retry_afters.append(int(login(http, "alice").headers["Retry-After"]))
    assert retry_afters == [2, 4, 8, 16]
    clock.now += 17
    assert login(http, "alice").status_code == 200  # the block is over; success clears it
    assert statuses(http, "alice", 1) == [401]
    assert login(http, "alice").status_code == 200


def test_unknown_and_known_users_are_answered_alike(throttled):
    http, _ = throttled
    known = [*statuses(http, "bob", 6), login(http, "bob", "wrong").status_code]
    unknown = [*statuses(http, "mallory", 6), login(http, "mallory", "wrong").status_code]
    assert known == unknown == [401] * 6 + [429]
    assert login(http, "alice").status_code == 200  # other users are not affected


def test_failed_logins_are_slowed_per_client_address(throttled):
    http, _ = throttled
    # Spread over many names (each below its own limit), the address still gets blocked.
    results = [login(http, f"user{n}", "wrong").status_code for n in range(21)]
    assert results == [401] * 21
    response = login(http, "someone-new", "wrong")
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1


# Item 11: parsing and log hygiene ------------------------------------------------------------


def raw_exchange(port: int, raw: bytes, timeout: float = 5.0) -> bytes:
    """Sends raw bytes, half-closes and returns everything the server sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        # The server may have answered and hung up already (a 503 when it is full).
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        return read_all(sock)


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def post_with_length(lengths: list[str], body: bytes) -> bytes:
    fields = "".join(f"Content-Length: {length}\r\n" for length in lengths)
    head = f"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{fields}\r\n"
    return head.encode() + body


@pytest.mark.parametrize(
    "lengths",
    [["+{n}"], ["{n}_0"], ["4_2"], [" -{n}"], ["0x10"], ["{n}", "{n}0"], ["{n}, 1"], ["١٢"]],
    ids=["plus", "underscore", "underscore-short", "negative", "hex", "differ", "folded", "arabic"],
)
def test_content_length_must_be_plain_digits_and_agree(server, lengths):
    body = json.dumps(bell_body()).encode()
    jobs_before = len(server.app.store)
    reply = raw_exchange(
        server.port, post_with_length([x.format(n=len(body)) for x in lengths], body)
    )
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    detail = json.loads(reply.partition(b"\r\n\r\n")[2])["detail"]
    assert "Content-Length" in detail, detail  # refused for its framing, not a short body
    assert len(server.app.store) == jobs_before


def test_repeated_equal_content_lengths_are_accepted(server):
    body = json.dumps(bell_body()).encode()
    reply = raw_exchange(server.port, post_with_length([str(len(body))] * 2, body))
    assert reply.startswith(b"HTTP/1.1 201"), reply[:200]


@pytest.fixture
def quick_server():
    with EmbeddedServer("adonis", seed=1, connection_timeout=0.5, max_connections=8) as running:
        yield running


def test_a_body_shorter_than_its_length_gives_one_log_line(quick_server, server_log):
    head = b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 426\r\n\r\n"
    with socket.create_connection(("127.0.0.1", quick_server.port), timeout=5) as sock:
        sock.sendall(head + b'{"circuits": [')
        reply = read_all(sock)  # the client goes quiet; the server answers and hangs up
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    records = [r for r in server_log.records if r.name.startswith("cirq_iqm_ext")]
    assert len(records) == 1, [r.getMessage() for r in records]
    assert records[0].exc_info is None and "14 of 426 bytes" in records[0].getMessage()


def test_deleting_pending_and_running_jobs_logs_nothing(server_log):
    with EmbeddedServer("adonis", seed=1, job_delay=0.4) as running:
        with httpx.Client(base_url=running.url, timeout=10) as http:
            ids = [http.post(V1_JOBS, json=bell_body()).json()["id"] for _ in range(3)]
            time.sleep(0.1)  # the first is in a worker's hands, the others queued
            for job_id in ids:
                assert http.delete(f"/jobs/{job_id}").status_code == 200
            time.sleep(0.6)
            for job_id in ids:
                assert http.get(f"/jobs/{job_id}/status").json()["status"] == "deleted"
    assert server_errors(server_log) == []


@pytest.mark.parametrize(("options", "warned"), [({}, True), ({"token": "t"}, False)])
def test_listening_beyond_loopback_without_a_token_warns(server_log, options, warned):
    with EmbeddedServer("adonis", host="0.0.0.0", **options):
        pass
    messages = [m for m in server_errors(server_log) if "without a token" in m]
    assert bool(messages) == warned, messages


def test_loopback_without_a_token_does_not_warn(server_log):
    with EmbeddedServer("adonis", host="127.0.0.1"):
        pass
    assert server_errors(server_log) == []


# Item 2: connections -------------------------------------------------------------------------


def test_trickled_bytes_do_not_hold_a_connection(quick_server):
    """The deadline is per request, not per read: a byte every 0.2 s is cut off at 0.5 s."""
    with socket.create_connection(("127.0.0.1", quick_server.port), timeout=5) as sock:
        started = time.monotonic()
        closed_after = None
        for byte in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed_after = time.monotonic() - started
                break
            time.sleep(0.2)
            sock.setblocking(False)
            try:
                if sock.recv(1) == b"":
                    closed_after = time.monotonic() - started
                    break
            except BlockingIOError:
                pass
            except OSError:
                closed_after = time.monotonic() - started
                break
            finally:
                sock.setblocking(True)
    assert closed_after is not None, "the server kept a trickling connection for 8 s"
    assert closed_after < 3.0


def wait_until_busy(server: EmbeddedServer) -> None:
    """Waits (up to 30 s) until one of the server's connections is inside the app — an event to
    wait for, not a sleep, so a loaded machine cannot make the test race ahead of it."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        connections = list(server._server._connections.values())  # type: ignore[union-attr]
        if any(c.state == 2 for c in connections):  # http._BUSY
            return
        time.sleep(0.01)
    raise AssertionError("no connection became busy within 30 s")


def wait_until_no_connections(server: EmbeddedServer) -> None:
    """Waits (up to 30 s) until the server has let go of every connection: a connection whose
    client has hung up counts against the cap until its thread has seen the hang-up, and it can
    still look busy just after its answer went out (the thread is behind its client)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not server._server._connections:  # type: ignore[union-attr]
            return
        time.sleep(0.01)
    raise AssertionError("the server still held a connection after 30 s")


def idle_connections(port: int, count: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]


def test_a_flood_of_idle_connections_does_not_lock_others_out():
    with EmbeddedServer("adonis", seed=1, max_connections=8) as running:
        flood = idle_connections(running.port, 40)  # far beyond the cap, never sending a byte
        try:
            with httpx.Client(base_url=running.url, timeout=5) as http:
                for _ in range(5):
                    assert http.get("/health").status_code == 200
            server = running._server
            assert server is not None and server.shed_count >= 32
            with server._connections_lock:
                live = [c for c in server._connections.values() if not c.shed]
            assert len(live) <= 8
        finally:
            for sock in flood:
                sock.close()


def test_idle_keep_alive_connections_are_shed_before_busy_ones():
    with EmbeddedServer("adonis", seed=1, max_connections=2, job_delay=30.0) as running:
        with httpx.Client(base_url=running.url, timeout=10) as submitter:
            job_id = submitter.post(V1_JOBS, json=bell_body()).json()["id"]
        wait_until_no_connections(running)
        long_poll = socket.create_connection(("127.0.0.1", running.port), timeout=10)
        long_poll.sendall(f"GET /jobs/{job_id}/status?wait=5 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        wait_until_busy(running)  # the long poll is now busy in the app
        idle = idle_connections(running.port, 1)[0]
        time.sleep(0.1)
        with httpx.Client(base_url=running.url, timeout=5) as http:
            assert http.get("/health").status_code == 200  # the idle one made room
        assert idle.recv(1) == b""  # shed
        assert long_poll.recv(65536).startswith(b"HTTP/1.1 200")  # the busy one was kept
        long_poll.close()
        idle.close()


def test_when_every_connection_is_busy_a_newcomer_gets_503():
    with EmbeddedServer("adonis", seed=1, max_connections=1, job_delay=30.0) as running:
        with httpx.Client(base_url=running.url, timeout=10) as submitter:
            job_id = submitter.post(V1_JOBS, json=bell_body()).json()["id"]
        wait_until_no_connections(running)
        with socket.create_connection(("127.0.0.1", running.port), timeout=10) as busy:
            busy.sendall(f"GET /jobs/{job_id}/status?wait=5 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            wait_until_busy(running)
            reply = raw_exchange(running.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert reply.startswith(b"HTTP/1.1 503"), reply[:100]
            assert b"Retry-After: 1" in reply and b"too many connections" in reply
            assert busy.recv(65536).startswith(b"HTTP/1.1 200")


def test_connection_knobs_are_checked():
    with pytest.raises(ValueError, match="max_connections"):
        EmbeddedServer("adonis", max_connections=0).start()


# Items 9 and 10: the state dir ---------------------------------------------------------------


def test_a_second_server_on_the_same_state_dir_is_refused(tmp_path):
    with EmbeddedServer("adonis", seed=1, state_dir=tmp_path):
        with pytest.raises(StateDirError) as refused:
            EmbeddedServer("adonis", seed=1, state_dir=tmp_path).start()
        message = str(refused.value)
        assert str(tmp_path) in message and f"pid {os.getpid()}" in message
        assert "\n" not in message
    # Released on stop: the directory can be used again.
    with EmbeddedServer("adonis", seed=1, state_dir=tmp_path) as again:
        assert again.port > 0


def test_a_state_dir_that_is_a_file_says_so(tmp_path):
    path = tmp_path / "state"
    path.write_text("not a directory")
    with pytest.raises(StateDirError, match="is a file, not a directory"):
        EmbeddedServer("adonis", state_dir=path).start()


@pytest.mark.parametrize("damage", ["garbage", "directory"])
def test_a_damaged_database_is_one_line_naming_it(tmp_path, damage):
    database = tmp_path / "jobs.sqlite3"
    if damage == "garbage":
        database.write_bytes(b"this is no database\x00" * 200)
    else:
        database.mkdir()
    with pytest.raises(StateDirError) as refused:
        EmbeddedServer("adonis", state_dir=tmp_path).start()
    message = str(refused.value)
    assert str(database) in message and "move it aside" in message and "\n" not in message
    if damage == "directory":
        assert "is a directory" in message
    # The failed start released the lock: a good database in its place works.
    if damage == "garbage":
        database.unlink()
    else:
        database.rmdir()
    with EmbeddedServer("adonis", state_dir=tmp_path):
        pass


def test_a_bad_row_is_quarantined_and_the_good_jobs_are_served(tmp_path, server_log):
    with EmbeddedServer("adonis", seed=1, state_dir=tmp_path) as first:
        with httpx.Client(base_url=first.url, timeout=10) as http:
            ids = [http.post(V1_JOBS, json=bell_body()).json()["id"] for _ in range(3)]
            for job_id in ids:
                wait_ready(http, job_id)
    database = tmp_path / "jobs.sqlite3"
    with sqlite3.connect(database) as db:
        db.execute("UPDATE jobs SET request = ? WHERE id = ?", ('{"shots": "many"}', ids[1]))
    with EmbeddedServer("adonis", seed=1, state_dir=tmp_path) as second:
        with httpx.Client(base_url=second.url, timeout=10) as http:
            for job_id in (ids[0], ids[2]):
                assert http.get(f"/jobs/{job_id}").json()["status"] == "ready"
            assert http.get(f"/jobs/{ids[1]}").status_code == 404
    warnings = [m for m in server_errors(server_log) if "quarantine" in m]
    assert len(warnings) == 1 and ids[1] in warnings[0]
    with sqlite3.connect(database) as db:
        quarantined = db.execute("SELECT id, reason FROM quarantine").fetchall()
        remaining = {row[0] for row in db.execute("SELECT id FROM jobs")}
    assert [row[0] for row in quarantined] == [ids[1]] and "circuits" in quarantined[0][1]
    assert remaining == {ids[0], ids[2]}


# Item 1: big results without stalls or leaks -------------------------------------------------


@pytest.mark.parametrize(
    "shape", [(0, 3), (1, 1), (7, 0), (5, 3), (1000, 8), (3, 1)], ids=lambda s: f"{s[0]}x{s[1]}"
)
@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.bool_])
def test_bits_json_is_exactly_what_json_dumps_writes(shape, dtype):
    array = np.random.default_rng(7).integers(0, 2, size=shape).astype(dtype)
    expected = json.dumps(array.astype(int).tolist(), separators=(",", ":")).encode()
    assert bits_json(array) == expected


def test_bits_json_falls_back_for_anything_but_bits():
    for value in (np.array([[0, 2], [1, 1]]), [[0, 1]], np.zeros((2, 2, 2), int)):
        expected = json.dumps(np.asarray(value).tolist(), separators=(",", ":")).encode()
        assert bits_json(value) == expected


def test_results_read_the_same_in_every_format_and_nothing_is_kept():
    with EmbeddedServer("adonis", seed=3) as running:
        with httpx.Client(base_url=running.url, timeout=30) as http:
            body = bell_body()
            body["shots"] = 4000
            ids = [http.post(V1_JOBS, json=body).json()["id"] for _ in range(6)]
            for job_id in ids:
                wait_ready(http, job_id)
                lists = http.get(f"/jobs/{job_id}").json()["measurements"]
                packed = http.get(f"/jobs/{job_id}", params={"measurements": "packed"}).json()
                artifact = http.get(f"/api/v1/jobs/{job_id}/artifacts/measurements").json()
                shots = lists[0]["m"]
                assert len(shots) == 4000 and {tuple(s) for s in shots} == {(0, 0), (1, 0)}
                assert artifact == lists
                unpacked = unpack_measurements(packed["measurements"])
                assert [{k: v.tolist() for k, v in c.items()} for c in unpacked] == lists
            store = running.app.store
            assert not hasattr(store, "_lists") and not hasattr(store, "_packed")
