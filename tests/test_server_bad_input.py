"""Malformed requests get a 4xx with a ``detail``, never a 5xx, a traceback or a job."""

from __future__ import annotations

import copy
import json
import logging
import socket
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_requests import bell_body

from cirq_iqm_ext.server import EmbeddedServer, ServerConfig, create_app


@pytest.fixture(scope="module")
def server():
    with EmbeddedServer("adonis", seed=1, max_body_bytes=64 * 1024) as running:
        yield running


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield http


@pytest.fixture(autouse=True)
def _no_server_errors(caplog):
    """Fails a test when anything reached the catch-all or an unanticipated parsing path."""
    caplog.set_level(logging.WARNING, logger="cirq_iqm_ext.server")
    yield
    bad = [r for r in caplog.records if r.name.startswith("cirq_iqm_ext.server")]
    assert bad == [], [r.getMessage() for r in bad]


@pytest.fixture(scope="module")
def wsgi_app():
    app = create_app(ServerConfig(seed=1))
    yield app
    app.close()


def assert_client_error(response: httpx.Response, status: int = 400, *fragments: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    assert "Traceback" not in response.text
    for fragment in fragments:
        assert fragment in body["detail"], body["detail"]
    return body["detail"]


def mutate(path: list[Any], value: Any = None, *, delete: bool = False) -> dict[str, Any]:
    body = bell_body()
    target: Any = body
    for step in path[:-1]:
        target = target[step]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


INSTR = ["circuits", 0, "instructions"]

CASES: list[tuple[str, dict[str, Any], str]] = [
    ("missing circuits", mutate(["circuits"], delete=True), '"circuits"'),
    ("circuits not a list", mutate(["circuits"], {"a": 1}), "circuits"),
    ("empty circuits", mutate(["circuits"], []), "at least one circuit"),
    ("circuit not an object", mutate(["circuits", 0], "bell"), "JSON object"),
    ("circuit without name", mutate(["circuits", 0, "name"], delete=True), '"name"'),
    ("circuit name a number", mutate(["circuits", 0, "name"], 3), "circuit name"),
    ("empty circuit name", mutate(["circuits", 0, "name"], ""), "non-empty"),
    ("missing instructions", mutate([*INSTR], delete=True), '"instructions"'),
    ("instructions not a list", mutate([*INSTR], "x"), "must be a list"),
    ("no instructions", mutate([*INSTR], []), "at least one"),
    ("instruction not an object", mutate([*INSTR, 0], 5), "JSON object"),
    ("instruction without name", mutate([*INSTR, 0, "name"], delete=True), '"name"'),
    ("instruction name a list", mutate([*INSTR, 0, "name"], ["prx"]), "instruction name"),
    ("unknown instruction", mutate([*INSTR, 0, "name"], "h"), "Unknown instruction 'h'"),
    ("qubits missing", mutate([*INSTR, 0, "qubits"], delete=True), '"qubits"'),
    ("qubits a string", mutate([*INSTR, 0, "qubits"], "QB1"), "list of qubit names"),
    ("qubit a number", mutate([*INSTR, 0, "qubits"], [1]), "qubit name"),
    ("args not an object", mutate([*INSTR, 0, "args"], [0.25, 0.25]), '"args"'),
    ("missing arg", mutate([*INSTR, 0, "args"], {"angle_t": 0.25}), "takes"),
    ("extra arg", mutate([*INSTR, 1, "args"], {"x": 1}), "takes"),
    ("arg a string", mutate([*INSTR, 0, "args", "angle_t"], "0.25"), "angle_t"),
    ("arg a bool", mutate([*INSTR, 0, "args", "phase_t"], True), "phase_t"),
    ("key not a string", mutate([*INSTR, 2, "args", "key"], 7), "key"),
    ("wrong arity", mutate([*INSTR, 1, "qubits"], ["QB1"]), "acts on 2"),
    ("repeated qubit", mutate([*INSTR, 1, "qubits"], ["QB1", "QB1"]), "more than once"),
    ("bad locus", mutate([*INSTR, 1, "qubits"], ["QB1", "QB2"]), "not an allowed locus for cz"),
    ("unknown qubit", mutate([*INSTR, 0, "qubits"], ["QB9"]), "do not exist"),
    ("empty implementation", mutate([*INSTR, 0, "implementation"], ""), "implementation"),
    ("metadata a list", mutate(["circuits", 0, "metadata"], [1]), "metadata"),
    ("shots zero", mutate(["shots"], 0), "positive"),
    ("shots negative", mutate(["shots"], -5), "positive"),
    ("shots a float", mutate(["shots"], 10.0), "shots"),
    ("shots a string", mutate(["shots"], "10"), "shots"),
    ("shots too many", mutate(["shots"], 10**9), "at most"),
    ("mapping not a list", mutate(["qubit_mapping"], {"a": "QB1"}), "qubit_mapping"),
    (
        "mapping entry missing field",
        mutate(["qubit_mapping"], [{"logical_name": "QB1"}]),
        "physical_name",
    ),
    (
        "mapping not injective",
        mutate(
            ["qubit_mapping"],
            [
                {"logical_name": "QB1", "physical_name": "QB1"},
                {"logical_name": "QB3", "physical_name": "QB1"},
            ],
        ),
        "not injective",
    ),
    (
        "mapping misses a qubit",
        mutate(["qubit_mapping"], [{"logical_name": "QB1", "physical_name": "QB1"}]),
        "does not map",
    ),
    (
        "mapping to an unknown qubit",
        mutate(
            ["qubit_mapping"],
            [
                {"logical_name": "QB1", "physical_name": "QB1"},
                {"logical_name": "QB3", "physical_name": "QB77"},
            ],
        ),
        "QB77",
    ),
    ("calibration set not a uuid", mutate(["calibration_set_id"], "latest"), "UUID"),
    ("heralding mode unknown", mutate(["heralding_mode"], "ones"), "heralding_mode"),
    ("custom settings a string", mutate(["custom_settings"], "x"), "custom_settings"),
    ("duration ratio negative", mutate(["max_circuit_duration_over_t2"], -1), "max_circuit"),
    ("duration ratio a string", mutate(["max_circuit_duration_over_t2"], "1"), "max_circuit"),
]


@pytest.mark.parametrize(("body", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_wrong_fields_are_400_with_a_detail(server, client, body, fragment):
    jobs_before = len(server.app.store)
    assert_client_error(client.post("/jobs", json=body), 400, fragment)
    assert len(server.app.store) == jobs_before


def test_repeated_measurement_key_and_action_after_measurement():
    # Without dynamic circuits (as CoCoS v1) only terminal measurements are allowed.
    body = bell_body()
    instructions = body["circuits"][0]["instructions"]
    instructions[2]["qubits"] = ["QB1"]
    instructions.append({"name": "measure", "qubits": ["QB3"], "args": {"key": "m"}})
    instructions.append({"name": "prx", "qubits": ["QB1"], "args": {"angle_t": 1, "phase_t": 0}})
    with (
        EmbeddedServer("adonis", seed=1, dynamic=False) as plain,
        httpx.Client(base_url=plain.url, timeout=10) as http,
    ):
        detail = assert_client_error(http.post("/jobs", json=body), 400)
    assert 'circuit 0 ("bell"), instruction 3' in detail
    assert "'m' is used more than once" in detail
    assert "instruction 4" in detail and "after their measurement" in detail


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{", "not valid JSON"),
        (b"{'circuits': []}", "not valid JSON"),
        (b'{"circuits": [], }', "not valid JSON"),
        (b'{"shots": NaN, "circuits": []}', "NaN is not allowed"),
        (b'{"shots": Infinity}', "Infinity is not allowed"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"", "empty"),
        (b"   ", "empty"),
        (b"[" * 100_000 + b"]" * 100_000, ""),
        (b'{"shots": 1' + b"0" * 5000 + b"}", "not valid JSON"),
        (b"[]", "JSON object"),
        (b'"jobs"', "JSON object"),
        (b"42", "JSON object"),
        (b"null", "JSON object"),
    ],
)
def test_malformed_json_is_400(wsgi_app, raw, fragment):
    # In-process app with the default 20 MiB limit, for the 200 kB deep-nesting body.
    with httpx.Client(transport=httpx.WSGITransport(app=wsgi_app), base_url="http://x") as http:
        response = http.post("/jobs", content=raw, headers={"Content-Type": "application/json"})
    assert_client_error(response, 400, fragment)


@pytest.mark.parametrize("depth", [100, 900, 5000])
def test_deeply_nested_settings_are_accepted_or_400_never_500(wsgi_app, depth):
    raw = json.dumps(bell_body())[:-1] + ', "custom_settings": '
    raw += '{"a":' * depth + "1" + "}" * depth + "}"
    with httpx.Client(transport=httpx.WSGITransport(app=wsgi_app), base_url="http://x") as http:
        response = http.post("/jobs", content=raw.encode())
    assert response.status_code in (201, 400), response.text


def test_oversize_body_is_413_before_reading(server, client):
    body = bell_body()
    body["circuits"][0]["metadata"] = {"padding": "x" * (80 * 1024)}
    response = client.post("/jobs", json=body)
    assert_client_error(response, 413, "larger than the limit of 65536 bytes")


def test_oversize_content_length_is_refused_without_reading_the_body(server):
    # Claim 30 MiB but send nothing: the answer must come at once, from the header alone.
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 31457280\r\n\r\n"
        )
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert b"connection: close" in head.lower()
    assert "31457280" in json.loads(payload)["detail"]


def test_default_body_limit_is_20_mib():
    assert ServerConfig().max_body_bytes == 20 * 1024 * 1024


@pytest.mark.parametrize(
    ("headers", "status", "fragment"),
    [
        ({"Content-Length": "abc"}, 400, "Content-Length"),
        ({"Content-Length": "-1"}, 400, "Content-Length"),
        ({"Transfer-Encoding": "chunked"}, 411, "Chunked"),
    ],
)
def test_bad_framing_headers(server, headers, status, fragment):
    lines = [b"POST /jobs HTTP/1.1", b"Host: x"]
    lines += [f"{k}: {v}".encode() for k, v in headers.items()]
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status}".encode()), head
    assert fragment in json.loads(payload)["detail"]


def test_garbage_request_line_gets_a_json_400(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") or head.startswith(b"HTTP/1.0 400")
    assert json.loads(payload)["detail"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 404),
        ("GET", "/job", 404),
        ("GET", "/jobs/x/y/z", 404),
        ("GET", "/realms/cortex/protocol/openid-connect/token", 404),  # no users configured
        ("GET", "/jobs", 405),
        ("PUT", "/jobs", 405),
        ("DELETE", "/jobs/3f2b4bba-8f0b-4c1f-9d7e-2f1a4c1b0a11/status", 405),
        ("POST", "/quantum-architecture", 405),
        ("GET", "/jobs/3f2b4bba-8f0b-4c1f-9d7e-2f1a4c1b0a11/abort", 405),
        ("PATCH", "/health", 405),
        ("BREW", "/health", 405),
    ],
)
def test_unknown_path_404_and_wrong_method_405(client, method, path, status):
    response = client.request(method, path)
    assert_client_error(response, status)
    if status == 405:
        assert response.headers["allow"]


def test_bad_requests_never_create_jobs_and_keep_the_connection_usable(server, client):
    for body in (b"{", b"[]", json.dumps(mutate(["shots"], 0)).encode()):
        assert client.post("/jobs", content=body).status_code == 400
    assert client.get("/health").status_code == 200


_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
_json = st.recursive(
    _json_leaf,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_paths = st.sampled_from(
    [
        ["shots"],
        ["circuits"],
        ["circuits", 0],
        ["circuits", 0, "name"],
        ["circuits", 0, "metadata"],
        [*INSTR],
        [*INSTR, 0],
        [*INSTR, 0, "name"],
        [*INSTR, 0, "qubits"],
        [*INSTR, 0, "qubits", 0],
        [*INSTR, 0, "args"],
        [*INSTR, 0, "args", "angle_t"],
        [*INSTR, 1, "qubits"],
        [*INSTR, 2, "args"],
        [*INSTR, 2, "args", "key"],
        [*INSTR, 0, "implementation"],
        ["qubit_mapping"],
        ["calibration_set_id"],
        ["custom_settings"],
        ["max_circuit_duration_over_t2"],
        ["heralding_mode"],
    ]
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(path=_paths, value=_json)
def test_fuzzed_fields_never_give_a_5xx(wsgi_app, path, value):
    body = copy.deepcopy(bell_body())
    body["qubit_mapping"] = None
    target: Any = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    before = wsgi_app.stats["POST jobs"]
    with httpx.Client(transport=httpx.WSGITransport(app=wsgi_app), base_url="http://x") as http:
        response = http.post("/jobs", json=body)
    assert response.status_code in (201, 400), response.text
    assert response.status_code == 201 or response.json()["detail"]
    assert wsgi_app.stats["POST jobs"] == before + 1
