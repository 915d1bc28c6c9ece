"""The HTTP layer's own header reader and single-send answers, the idempotency header, the clock."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from cirq_iqm_ext.server import EmbeddedServer

BELL = {
    "name": "bell",
    "instructions": [
        {"name": "prx", "qubits": ["QB1"], "args": {"angle_t": 0.25, "phase_t": 0.25}},
        {"name": "measure", "qubits": ["QB1"], "args": {"key": "m"}},
    ],
}


@pytest.fixture(scope="module")
def server():
    with EmbeddedServer(seed=1) as running:
        yield running


def exchange(port: int, raw: bytes) -> tuple[bytes, bytes]:
    """Sends raw bytes, half-closes, returns (head, body) of everything the server sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        for _ in range(1000):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


def test_idempotency_header_on_submit_architecture_and_health(server):
    with httpx.Client(base_url=server.url) as http:
        for response in (
            http.post("/jobs", json={"circuits": [BELL], "shots": 2}),
            http.get("/quantum-architecture"),
            http.get("/health"),
        ):
            assert response.status_code in (200, 201)
            assert response.headers["IQM-Idempotency-Keys"] == "1"


def test_keep_alive_requests_answer_in_order_with_date_and_length(server):
    request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    head, body = exchange(server.port, request * 3)
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"\r\nDate: " in head and b"\r\nContent-Length: 15" in head
    assert body.count(b'{"status":"ok"}') == 3


def test_folded_and_repeated_headers_reach_the_app(server):
    raw = (
        b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Idempotency-Key: folded\r\n  key\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
    )
    body = json.dumps({"circuits": [BELL], "shots": 2}).encode()
    head, first = exchange(server.port, raw % len(body) + body)
    assert head.startswith(b"HTTP/1.1 201"), head
    with httpx.Client(base_url=server.url) as http:
        again = http.post(
            "/jobs",
            json={"circuits": [BELL], "shots": 2},
            headers={"Idempotency-Key": "folded key"},
        )
    assert again.status_code == 200 and again.json()["id"] == json.loads(first)["id"]


def test_too_many_headers_is_431_with_a_detail(server):
    fields = b"".join(b"X-%d: y\r\n" % i for i in range(150))
    head, body = exchange(server.port, b"GET /health HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
    assert head.startswith(b"HTTP/1.1 431")
    assert json.loads(body)["detail"]


def test_head_answers_without_a_body(server):
    head, body = exchange(server.port, b"HEAD /health HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert head.startswith((b"HTTP/1.1 405", b"HTTP/1.1 404"))
    assert body == b""


def test_http_2_and_bad_versions_are_refused(server):
    head, _ = exchange(server.port, b"GET /health HTTP/2.0\r\n\r\n")
    assert head.startswith((b"HTTP/1.1 505", b"HTTP/1.0 505"))
    head, _ = exchange(server.port, b"GET /health HTTP/x.y\r\n\r\n")
    assert b" 400 " in head.split(b"\r\n")[0]


def test_token_issuer_clock_comes_from_the_config():
    now = [1_000_000.0]
    server = EmbeddedServer(auth_users={"u": "p"}, clock=lambda: now[0])
    with server as running, httpx.Client(base_url=running.url) as http:
        tokens = http.post(
            "/realms/cortex/protocol/openid-connect/token",
            data={
                "client_id": "iqm_client",
                "grant_type": "password",
                "username": "u",
                "password": "p",
            },
        ).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert http.get("/quantum-architecture", headers=headers).status_code == 200
        now[0] += 10_000
        assert http.get("/quantum-architecture", headers=headers).status_code == 401
