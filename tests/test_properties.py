"""Property and fuzz tests (Hypothesis, derandomised and bounded).

- The transfer-format models round-trip through JSON.
- Arbitrary JSON given to any model's ``from_dict``, or answered to the client by a server, only
  ever raises the package's documented exceptions (``ModelValidationError`` for the models, an
  ``IQMError`` subclass for the client).
- Random request bodies against the server always get a 2xx or a 4xx with a ``detail``, never 5xx.
"""

from __future__ import annotations

import contextlib
import json
import string
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from faults.report import REPORT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cirq_iqm_ext import IQMClient
from cirq_iqm_ext.client.retry import RetryPolicy, is_ambiguous, may_retry, retry_delay
from cirq_iqm_ext.errors import IQMError, ModelValidationError
from cirq_iqm_ext.server import create_app
from cirq_iqm_ext.wire.models import (
    Circuit,
    Instruction,
    Metadata,
    QuantumArchitectureSpecification,
    RunRequest,
    RunResult,
    RunStatus,
    Status,
    serialize_qubit_mapping,
)

pytestmark = pytest.mark.usefixtures("secret_scanner")

SETTINGS = settings(
    derandomize=True,
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
QUBITS = [f"QB{i}" for i in range(1, 6)]

# -------------------------------------------------------------------------------- strategies

names = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=8)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | finite | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=16,
)
#: Arbitrary JSON, including what json.loads accepts but strict JSON does not (NaN, Infinity).
any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)


@st.composite
def instructions(draw: st.DrawFn) -> Instruction:
    kind = draw(st.sampled_from(["prx", "cz", "measure", "barrier"]))
    if kind == "prx":
        return Instruction(
            "prx",
            [draw(st.sampled_from(QUBITS))],
            {"angle_t": draw(finite), "phase_t": draw(finite)},
        )
    size = 2 if kind == "cz" else draw(st.integers(1, 3))
    qubits = draw(st.lists(st.sampled_from(QUBITS), min_size=size, max_size=size, unique=True))
    return Instruction(kind, qubits, {"key": draw(names)} if kind == "measure" else {})


circuits = st.builds(
    Circuit,
    names,
    st.lists(instructions(), min_size=1, max_size=6).map(tuple),
    st.none() | st.dictionaries(st.text(max_size=6), json_values, max_size=3),
)


@st.composite
def run_requests(draw: st.DrawFn) -> RunRequest:
    batch = tuple(draw(st.lists(circuits, min_size=1, max_size=3)))
    used = sorted({q for c in batch for q in c.qubits})
    mapping = None
    if draw(st.booleans()):
        mapping = serialize_qubit_mapping({q: f"P{q}" for q in used})
    return RunRequest(
        circuits=batch,
        shots=draw(st.integers(1, 10**6)),
        qubit_mapping=mapping,
        calibration_set_id=draw(st.none() | st.uuids()),
        custom_settings=draw(
            st.none() | st.dictionaries(st.text(max_size=5), json_values, max_size=2)
        ),
        max_circuit_duration_over_t2=draw(st.none() | st.floats(0, 1e6)),
        heralding_mode=draw(st.sampled_from(["none", "zeros"])),  # type: ignore[arg-type]
    )


def mutated(valid: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    """A valid dict with one field (at any depth) replaced by arbitrary JSON or removed."""

    @st.composite
    def mutate(draw: st.DrawFn) -> Any:
        data = draw(valid)
        node: Any = data
        for _ in range(draw(st.integers(0, 4))):
            if isinstance(node, dict) and node:
                child = node[draw(st.sampled_from(sorted(node)))]
            elif isinstance(node, list) and node:
                child = draw(st.sampled_from(node))
            else:
                break
            if not isinstance(child, dict | list) or not child:
                break
            node = child
        if isinstance(node, dict) and node:
            key = draw(st.sampled_from(sorted(node)))
            if draw(st.booleans()):
                del node[key]
            else:
                node[key] = draw(any_json)
        elif isinstance(node, list) and node:
            node[draw(st.integers(0, len(node) - 1))] = draw(any_json)
        return data

    return mutate()


def roundtrip(data: Any) -> Any:
    return json.loads(json.dumps(data))


# -------------------------------------------------------------------------------- round trips


@SETTINGS
@given(run_requests())
def test_run_request_round_trips_through_json(request):
    data = request.to_dict()
    assert RunRequest.from_dict(roundtrip(data)) == request
    assert RunRequest.from_dict(roundtrip(data)).to_dict() == roundtrip(data)


@SETTINGS
@given(
    st.sampled_from([s.value for s in Status]) | names,
    st.none() | st.text(max_size=20),
    st.lists(st.text(max_size=10), max_size=3),
)
def test_run_status_round_trips(status, message, warnings):
    data = {"status": status, "message": message, "warnings": warnings}
    parsed = RunStatus.from_dict(data)
    assert RunStatus.from_dict(roundtrip(parsed.to_dict())) == parsed
    assert parsed.status.value == status


# -------------------------------------------------------------------------------- garbage in

MODELS = [
    Instruction,
    Circuit,
    RunRequest,
    RunStatus,
    RunResult,
    Metadata,
    QuantumArchitectureSpecification,
]
valid_requests = run_requests().map(lambda r: roundtrip(r.to_dict()))


@SETTINGS
@given(st.sampled_from(MODELS), any_json | mutated(valid_requests))
def test_models_only_raise_model_validation_error(model, data):
    with contextlib.suppress(ModelValidationError):
        model.from_dict(data)


@SETTINGS
@given(mutated(valid_requests))
def test_mutated_requests_parse_or_raise_model_validation_error(data):
    try:
        request = RunRequest.from_dict(data)
    except ModelValidationError:
        return
    assert RunRequest.from_dict(roundtrip(request.to_dict())) == request


class Answers:
    """A MockTransport handler answering every request with the current JSON."""

    def __init__(self) -> None:
        self.body: bytes = b"{}"
        self.status = 200

    def __call__(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            self.status, content=self.body, headers={"Content-Type": "application/json"}
        )


@pytest.fixture(scope="module")
def fuzzed_client() -> Iterator[tuple[IQMClient, Answers]]:
    answers = Answers()
    client = IQMClient(
        "http://127.0.0.1:9",
        transport=httpx.MockTransport(answers),
        environ={},
        sleep=lambda s: None,
        retry_policy=RetryPolicy(max_attempts=2, base_delay=0),
    )
    yield client, answers
    client.close()


@SETTINGS
@given(
    any_json,
    st.sampled_from([200, 201, 400, 404, 409, 500, 502]),
    st.sampled_from(["status", "result", "submit", "architecture", "abort"]),
)
def test_client_only_raises_documented_errors_on_any_answer(fuzzed_client, data, status, call):
    client, answers = fuzzed_client
    answers.body = json.dumps(data).encode()
    answers.status = status
    client.clear_cache()  # so that "architecture" parses this answer, not a cached one
    job = uuid.UUID(int=7)
    actions = {
        "status": lambda: client.get_run_status(job),
        "result": lambda: client.get_run(job),
        "submit": lambda: client.submit_payload({"circuits": [], "shots": 1}),
        "architecture": client.get_quantum_architecture,
        "abort": lambda: client.abort_job(job),
    }
    try:
        with pytest.warns() if _has_warnings(data) else _nothing():
            actions[call]()
    except IQMError as error:
        assert error.job_id in (None, job)


def _has_warnings(data: Any) -> bool:
    return (
        isinstance(data, dict) and isinstance(data.get("warnings"), list) and bool(data["warnings"])
    )


class _nothing:  # noqa: N801 - a tiny context manager standing in for "no warnings expected"
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


# -------------------------------------------------------------------------------- the server


@pytest.fixture(scope="module")
def server_http() -> Iterator[httpx.Client]:
    app = create_app(max_shots=200, max_circuits=4, seed=1)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://server") as http:
        yield http
    app.close()
    REPORT.outcome(
        "fuzzed server requests", "random bodies", f"{sum(app.stats.values())} requests, no 5xx"
    )


def _check_answer(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text[:200]
    data = response.json()
    if response.status_code >= 400:
        assert isinstance(data["detail"], str) and data["detail"]
        assert "Traceback" not in response.text


server_bodies = st.one_of(
    any_json.map(lambda d: json.dumps(d).encode()),
    mutated(valid_requests).map(lambda d: json.dumps(d).encode()),
    valid_requests.map(lambda d: json.dumps(d).encode()),
    st.binary(max_size=200),
)


@SETTINGS
@given(server_bodies)
def test_server_answers_random_job_bodies_with_2xx_or_4xx(server_http, body):
    _check_answer(
        server_http.post("/jobs", content=body, headers={"Content-Type": "application/json"})
    )


@SETTINGS
@given(
    st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    st.lists(
        st.sampled_from(
            [
                "jobs",
                "status",
                "abort",
                "counts",
                "quantum-architecture",
                str(uuid.UUID(int=1)),
                "..",
                "%00",
                "health",
            ]
        ),
        max_size=4,
    ),
    st.dictionaries(
        st.sampled_from(["wait", "measurements"]), st.text(string.printable, max_size=6), max_size=2
    ),
)
def test_server_answers_random_requests_with_2xx_or_4xx(server_http, method, segments, query):
    _check_answer(server_http.request(method, "/" + "/".join(segments), params=query))


# -------------------------------------------------------------------------------- retry schedule

policies = st.builds(
    RetryPolicy,
    max_attempts=st.integers(1, 12),
    max_total_seconds=st.floats(0, 120),
    base_delay=st.floats(0, 2),
    max_delay=st.floats(0, 30),
    retry_after_cap=st.floats(0, 120),
)


@SETTINGS
@given(policies, st.lists(st.none() | st.floats(0, 200), min_size=12, max_size=12), st.floats(0, 1))
def test_retry_schedule_is_bounded_and_honours_retry_after(policy, retry_afters, fraction):
    elapsed, attempt = 0.0, 0
    for attempt, retry_after in enumerate(retry_afters, start=1):
        delay = retry_delay(
            attempt,
            elapsed,
            policy,
            retry_after=retry_after,
            jitter=lambda ceiling: ceiling * fraction,
        )
        if delay is None:
            break
        assert delay >= 0
        if retry_after is not None:
            assert retry_after <= delay <= max(retry_after, policy.max_delay)
            assert retry_after <= policy.retry_after_cap
        else:
            assert delay <= policy.max_delay
        elapsed += delay
    assert attempt <= policy.max_attempts
    assert elapsed <= policy.max_total_seconds


@SETTINGS
@given(
    st.none() | st.sampled_from([200, 201, 400, 401, 404, 409, 429, 500, 502, 503, 504]),
    st.booleans(),
    st.booleans(),
)
def test_a_submission_is_never_repeated_when_it_may_have_taken_effect(status, sent, idempotent):
    policy = RetryPolicy()
    retry = may_retry(status=status, request_sent=sent, idempotent=idempotent, policy=policy)
    ambiguous = is_ambiguous(status=status, request_sent=sent, idempotent=idempotent)
    assert not (retry and ambiguous)
    if not sent and (status is None or status in policy.statuses):
        assert retry  # never left this machine: always safe
    if status is not None and status not in policy.statuses:
        assert not retry
    if not idempotent and sent and status in (None, 500, 502, 504):
        assert ambiguous and not retry
