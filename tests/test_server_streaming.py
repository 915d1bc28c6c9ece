"""Large results are streamed (issue 19, item 1) and need not echo the request (issue 18).

Over loopback: a large body goes out chunked as it is written, byte for byte what the lists
would give; another client's status poll is answered while a big result is still being sent;
``?request=omit`` leaves the echoed request out of a v1 result.
"""

from __future__ import annotations

import http.client
import json
import socket
import time

import httpx
import numpy as np
import pytest
from server_requests import bell_circuit, wait_ready

from cirq_iqm_ext.server import EmbeddedServer
from cirq_iqm_ext.server.result_json import (
    iter_bits_json,
    iter_body_with_measurements,
    iter_measurements_json,
)
from cirq_iqm_ext.wire.packed import unpack_measurements

SHOTS = 40_000
CIRCUITS = 50  # 2,000,000 shots of 2 qubits: 12 MB of JSON lists


@pytest.fixture(scope="module")
def big():
    """A server holding one large finished job: (server, job id, its measurements as lists)."""
    with EmbeddedServer("adonis", seed=5) as server:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            body = {
                "circuits": [bell_circuit(f"bell-{n}") for n in range(CIRCUITS)],
                "shots": SHOTS,
            }
            job_id = http.post("/jobs", json=body).json()["id"]
            wait_ready(http, job_id)
            packed = http.get(f"/jobs/{job_id}", params={"measurements": "packed"}).json()
            lists = [
                {k: v.tolist() for k, v in c.items()}
                for c in unpack_measurements(packed["measurements"])
            ]
        yield server, job_id, lists


def test_a_large_result_is_chunked_and_reads_the_same_in_every_format(big):
    server, job_id, lists = big
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for path, params in (
            (f"/jobs/{job_id}", {}),
            (f"/jobs/{job_id}", {"measurements": "packed"}),
            (f"/api/v1/jobs/{job_id}/artifacts/measurements", {}),
        ):
            response = http.get(path, params=params)
            assert response.status_code == 200
            assert response.headers.get("transfer-encoding") == "chunked", path
            assert "content-length" not in response.headers
            data = response.json()
            if isinstance(data, list):  # the IQM Server API artifact
                assert data == lists
            elif params:
                unpacked = unpack_measurements(data["measurements"])
                assert [{k: v.tolist() for k, v in c.items()} for c in unpacked] == lists
            else:
                assert data["measurements"] == lists
    shots = lists[0]["m"]
    assert len(lists) == CIRCUITS and len(shots) == SHOTS
    assert {tuple(s) for s in shots} == {(0, 0), (1, 0)}


def test_small_answers_keep_their_content_length(big):
    server, job_id, _ = big
    with httpx.Client(base_url=server.url, timeout=60) as http:
        response = http.get(f"/jobs/{job_id}/status")
        assert response.headers["content-length"] == str(len(response.content))


def test_http_1_0_gets_a_large_result_until_the_connection_closes(big):
    server, job_id, lists = big
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(f"GET /jobs/{job_id} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        received = bytearray()
        while chunk := sock.recv(1 << 20):
            received += chunk
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head and b"Connection: close" in head
    assert json.loads(body)["measurements"] == lists


def is_busy(server: EmbeddedServer, client: socket.socket) -> bool:
    """Whether the server's thread for ``client`` is inside the app or sending its answer."""
    connections = list(server._server._connections.values())  # type: ignore[union-attr]
    mine = [c for c in connections if _peer(c.sock) == client.getsockname()]
    return len(mine) == 1 and mine[0].state == 2


def _peer(sock: socket.socket) -> object:
    """A server-side socket's peer; ``None`` once it is closed (another client's connection may
    close while the list is read)."""
    try:
        return sock.getpeername()
    except OSError:
        return None


def test_a_status_poll_is_answered_while_a_big_result_is_being_sent(big):
    server, job_id, lists = big
    # Client A asks for the 12 MB result through a tiny receive window and stops reading after
    # the first bytes: the server's thread for A is left mid-body, blocked in send.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(60)
    sock.connect(("127.0.0.1", server.port))
    fetch = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    fetch.sock = sock
    try:
        fetch.request("GET", f"/jobs/{job_id}")
        response = fetch.getresponse()
        assert response.status == 200 and response.getheader("Transfer-Encoding") == "chunked"
        first = response.read(1000)
        assert first.startswith(b'{"status":"ready"')
        deadline = time.monotonic() + 30
        while not is_busy(server, sock) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert is_busy(server, sock)  # A's answer is still being sent
        # Client B polls the status (both profiles) meanwhile: answered, A still unfinished.
        with httpx.Client(base_url=server.url, timeout=30) as poller:
            assert poller.get(f"/jobs/{job_id}/status").json() == {"status": "ready"}
            assert poller.get(f"/api/v1/jobs/{job_id}").json()["status"] == "completed"
        assert is_busy(server, sock)
        # A reads the rest: the whole body arrives intact.
        body = first + response.read()
    finally:
        fetch.close()  # also on failure, so no unclosed socket spills into the next test
    assert json.loads(body)["measurements"] == lists


def test_a_result_can_leave_out_the_echoed_request(big):
    server, job_id, _ = big
    with httpx.Client(base_url=server.url, timeout=60) as http:
        full = http.get(f"/jobs/{job_id}", params={"measurements": "packed"}).json()
        lean = http.get(
            f"/jobs/{job_id}", params={"measurements": "packed", "request": "omit"}
        ).json()
        lists = http.get(f"/jobs/{job_id}", params={"request": "omit"}).json()
    # By default the request is echoed (PROTOCOL.md §3.4; IQM's client 17 needs it).
    request = full["metadata"]["request"]
    assert request["shots"] == SHOTS and len(request["circuits"]) == CIRCUITS
    assert "request_omitted" not in full["metadata"]
    for answer in (lean, lists):
        metadata = answer["metadata"]
        assert "request" not in metadata and metadata["request_omitted"] is True
        assert metadata["timestamps"] == full["metadata"]["timestamps"]
        assert metadata["calibration_set_id"] == full["metadata"]["calibration_set_id"]
    assert lean["measurements"] == full["measurements"]
    lean_size = len(json.dumps(lean)) - len(json.dumps(lean["measurements"]))
    full_size = len(json.dumps(full)) - len(json.dumps(full["measurements"]))
    assert full_size - lean_size >= len(json.dumps(request)) - 100


def test_a_pending_result_can_leave_out_the_request_too():
    with EmbeddedServer("adonis", seed=1, job_delay=60) as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            job_id = http.post(
                "/jobs", json={"circuits": [bell_circuit("bell-0")], "shots": 5}
            ).json()
            answer = http.get(f"/jobs/{job_id['id']}", params={"request": "omit"}).json()
    assert answer["status"] == "pending compilation" and "measurements" not in answer
    assert "request" not in answer["metadata"] and answer["metadata"]["request_omitted"]


@pytest.mark.parametrize("rows", [1, 3, 7, 1 << 14])
def test_pieces_join_to_the_whole(rows):
    rng = np.random.default_rng(3)
    measurements = [
        {"a": rng.integers(0, 2, (20, 3), dtype=np.uint8), "b": rng.integers(0, 2, (5, 1))},
        {},
        {"c": np.zeros((0, 2), np.uint8)},
    ]
    plain = [{k: v.tolist() for k, v in c.items()} for c in measurements]
    compact = (",", ":")
    assert (
        b"".join(iter_measurements_json(measurements, rows))
        == json.dumps(plain, separators=compact).encode()
    )
    assert (
        b"".join(iter_bits_json(measurements[0]["a"], rows))
        == json.dumps(plain[0]["a"], separators=compact).encode()
    )
    head = {"status": "ready", "measurements": None, "metadata": {"x": 1}}
    expected = {"status": "ready", "metadata": {"x": 1}, "measurements": plain}
    joined = b"".join(iter_body_with_measurements(head, measurements, rows))
    assert joined == json.dumps(expected, separators=compact).encode()
