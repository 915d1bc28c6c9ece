"""IQMClient error paths that need a misbehaving server, through a recording in-process transport.

The happy paths and every authentication way run against the project's real server over loopback
in ``test_client_e2e.py``; this file covers answers a correct server never gives.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from cirq_iqm_ext.client.iqm_client import IQMClient, IQMServerWarning
from cirq_iqm_ext.client.retry import RetryPolicy
from cirq_iqm_ext.errors import (
    APITimeoutError,
    CircuitExecutionError,
    CircuitValidationError,
    ClientAuthenticationError,
    ClientConfigurationError,
    IQMConnectionError,
    JobAbortionError,
    JobNotFoundError,
    JobSubmissionUncertainError,
    ModelValidationError,
    ServerResponseError,
)
from cirq_iqm_ext.wire.models import Circuit, Instruction

GOLDEN = Path(__file__).parent / "golden"
ARCHITECTURE = json.loads((GOLDEN / "architecture_static.json").read_text())
RESULT = json.loads((GOLDEN / "run_result.json").read_text())
JOB = uuid.UUID("3c3fcb6a-2a57-4e2f-9d0c-0d2a5c1b8a11")
SECRET = "very-secret-token-value"

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """Answers requests with per-route handlers and records every request it sees."""

    def __init__(self, routes: dict[str, Handler | list[Handler]]):
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path.removeprefix("/api")
        route = self.routes.get(f"{request.method} {path}")
        if route is None:
            return httpx.Response(404, json={"detail": "no route"})
        if isinstance(route, list):
            handler = route.pop(0) if len(route) > 1 else route[0]
            return handler(request)
        return route(request)

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.url.path.endswith(path))


def reply(status: int, body: object = None, **headers: str) -> Handler:
    def handler(_request: httpx.Request) -> httpx.Response:
        if isinstance(body, str | bytes):
            return httpx.Response(status, content=body, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    return handler


def raise_error(error: type[Exception]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error("injected", request=request)  # type: ignore[call-arg]

    return handler


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def make_client(recorder: Recorder, clock: FakeClock | None = None, **kwargs) -> IQMClient:
    clock = clock or FakeClock()
    kwargs.setdefault("environ", {})
    return IQMClient(
        "http://127.0.0.1:9/api/",
        transport=httpx.MockTransport(recorder),
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        retry_policy=RetryPolicy(max_attempts=4, base_delay=0.01, max_total_seconds=10),
        **kwargs,
    )


def bell(**overrides) -> Circuit:
    instructions = overrides.pop("instructions", None) or (
        Instruction("prx", ["QB1"], {"angle_t": 0.25, "phase_t": 0.25}),
        Instruction("cz", ["QB1", "QB3"]),
        Instruction("measure", ["QB1", "QB3"], {"key": "m"}),
    )
    return Circuit("bell", tuple(instructions), overrides.pop("metadata", None))


def architecture_only() -> Recorder:
    return Recorder(
        {
            "GET /quantum-architecture": reply(200, ARCHITECTURE),
            "POST /jobs": reply(201, {"id": str(JOB)}),
        }
    )


@pytest.mark.parametrize(
    ("submit", "error", "message"),
    [
        (
            lambda c: c.submit_circuits(
                [
                    bell(
                        instructions=[
                            Instruction("prx", ["QB1"], {"angle_t": 0.25, "phase_t": 0.0}),
                            Instruction("measure", ["QB7"], {"key": "m"}),
                        ]
                    )
                ]
            ),
            CircuitValidationError,
            "circuit 0 (\"bell\"), instruction 1: qubit(s) ['QB7'] do not exist on Adonis",
        ),
        (
            lambda c: c.submit_circuits(
                [
                    bell(
                        instructions=[
                            Instruction("cz", ["QB1", "QB2"]),
                            Instruction("measure", ["QB1"], {"key": "m"}),
                        ]
                    )
                ]
            ),
            CircuitValidationError,
            "circuit 0 (\"bell\"), instruction 0: ('QB1', 'QB2') is not an allowed locus for cz",
        ),
        (
            lambda c: c.submit_circuits(
                [
                    bell(
                        instructions=[
                            Instruction("measure", ["QB1"], {"key": "m"}),
                            Instruction("measure", ["QB3"], {"key": "m"}),
                        ]
                    )
                ]
            ),
            CircuitValidationError,
            "measurement key 'm' is used more than once",
        ),
        (
            lambda c: c.submit_circuits(
                [
                    bell(
                        instructions=[
                            Instruction("measure", ["QB1"], {"key": "m"}),
                            Instruction("prx", ["QB1"], {"angle_t": 0.5, "phase_t": 0.0}),
                        ]
                    )
                ]
            ),
            CircuitValidationError,
            "acted on by prx after their measurement",
        ),
        (
            lambda c: c.submit_circuits([bell()], qubit_mapping={"QB1": "QB1", "QB3": "QB9"}),
            CircuitValidationError,
            "physical qubit(s) ['QB9'] that do not exist",
        ),
        (
            lambda c: c.submit_circuits([bell()], shots=0),
            ModelValidationError,
            "shots must be a positive integer, got 0",
        ),
        (
            lambda c: c.submit_circuits([bell()], heralding_mode="all"),
            ModelValidationError,
            "heralding_mode",
        ),
        (
            lambda c: c.submit_circuits([bell()], qubit_mapping={"QB1": "QB1"}),
            ModelValidationError,
            "does not map",
        ),
    ],
)
def test_bad_input_is_refused_before_any_job_is_posted(submit, error, message):
    recorder = architecture_only()
    with make_client(recorder) as client, pytest.raises(error) as info:
        submit(client)
    assert message in str(info.value)
    assert recorder.count("POST", "/jobs") == 0


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: bell(instructions=[Instruction("prx", ["QB1"], {"angle": 0.5})]),
            "takes ['angle_t', 'phase_t']",
        ),
        (lambda: bell(metadata={"f": lambda: 1}), "not JSON-serialisable"),
    ],
)
def test_bad_circuits_fail_before_any_request(build, message):
    with pytest.raises(ModelValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        build()


def test_submit_sends_the_request_with_idempotency_key_and_user_agent():
    recorder = architecture_only()
    with make_client(recorder, client_signature="my-lab 1.0") as client:
        job_id = client.submit_circuits([bell()], shots=10, calibration_set_id=str(JOB))
    assert job_id == JOB
    post = [r for r in recorder.requests if r.method == "POST"][0]
    body = json.loads(post.content)
    assert body["shots"] == 10
    assert body["calibration_set_id"] == str(JOB)
    assert "qubit_mapping" not in body  # null fields are left out
    uuid.UUID(post.headers["Idempotency-Key"])
    agent = post.headers["User-Agent"]
    assert ", python 3." in agent and ", cirq-iqm-ext " in agent and agent.endswith(", my-lab 1.0")
    assert "Authorization" not in post.headers


def test_architecture_is_fetched_once():
    recorder = architecture_only()
    with make_client(recorder) as client:
        first = client.get_quantum_architecture()
        client.submit_circuits([bell()])
        assert client.get_quantum_architecture() is first
    assert recorder.count("GET", "/quantum-architecture") == 1


def test_job_not_found_names_the_job():
    recorder = Recorder({f"GET /jobs/{JOB}/status": reply(404, {"detail": "Job not found"})})
    with make_client(recorder) as client, pytest.raises(JobNotFoundError) as info:
        client.get_run_status(JOB)
    assert str(JOB) in str(info.value)
    assert info.value.job_id == JOB


def test_failed_job_raises_with_id_and_message():
    failed = json.loads((GOLDEN / "run_result_failed.json").read_text())
    recorder = Recorder({f"GET /jobs/{JOB}": reply(200, failed)})
    with make_client(recorder) as client, pytest.raises(CircuitExecutionError) as info:
        with pytest.warns(IQMServerWarning, match="something odd"):
            client.get_run(JOB)
    assert str(JOB) in str(info.value)
    assert "too long for the coherence time" in str(info.value)


def test_waiting_past_the_deadline_says_the_job_still_runs():
    clock = FakeClock()
    recorder = Recorder({f"GET /jobs/{JOB}/status": reply(200, {"status": "pending execution"})})
    with make_client(recorder, clock) as client, pytest.raises(APITimeoutError) as info:
        client.wait_for_results(JOB, timeout_secs=5)
    assert info.value.job_id == JOB
    assert "still pending execution" in str(info.value)
    assert f"wait_for_results('{JOB}')" in str(info.value)
    assert clock.now == pytest.approx(5.0)
    # Polling backs off: intervals never shrink and stay within the configured maximum.
    assert clock.sleeps == sorted(clock.sleeps[:-1]) + clock.sleeps[-1:]
    assert max(clock.sleeps) <= 1.0


def test_unknown_status_is_treated_as_pending_with_one_warning():
    statuses = [reply(200, {"status": "pending teleportation"})] * 3 + [
        reply(200, {"status": "ready"})
    ]
    recorder = Recorder(
        {f"GET /jobs/{JOB}/status": statuses, f"GET /jobs/{JOB}": reply(200, RESULT)}
    )
    with make_client(recorder) as client:
        with pytest.warns(IQMServerWarning, match="pending teleportation") as record:
            result = client.wait_for_results(JOB)
    assert result.measurements == RESULT["measurements"]
    assert len([w for w in record if "teleportation" in str(w.message)]) == 1


def test_wait_for_compilation_returns_once_past_compilation():
    statuses = [
        reply(200, {"status": "pending compilation"}),
        reply(200, {"status": "pending execution"}),
    ]
    pending = dict(RESULT, status="pending execution", measurements=None)
    recorder = Recorder(
        {f"GET /jobs/{JOB}/status": statuses, f"GET /jobs/{JOB}": reply(200, pending)}
    )
    with make_client(recorder) as client:
        assert client.wait_for_compilation(JOB).status.value == "pending execution"


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        (reply(200, "<html>oops</html>", **{"content-type": "text/html"}), "is not JSON"),
        (reply(200, {"measurements": []}), 'missing the field "status"'),
        (reply(200, {"status": "ready", "metadata": {"request": {}}}), 'no "measurements"'),
    ],
)
def test_malformed_answers_raise_server_response_error(handler, message):
    recorder = Recorder({f"GET /jobs/{JOB}": handler})
    with make_client(recorder) as client, pytest.raises(ServerResponseError) as info:
        client.get_run(JOB)
    assert message in str(info.value)
    assert f"GET jobs/{JOB}" in str(info.value)


def test_transient_errors_on_get_are_retried():
    statuses = [
        reply(502, "bad gateway"),
        raise_error(httpx.ReadTimeout),
        reply(429, {"detail": "slow down"}, **{"Retry-After": "0.5"}),
        reply(200, {"status": "ready"}),
    ]
    clock = FakeClock()
    recorder = Recorder({f"GET /jobs/{JOB}/status": statuses})
    with make_client(recorder, clock) as client:
        assert client.get_run_status(JOB).status.value == "ready"
    assert recorder.count("GET", "/status") == 4
    assert 0.5 in clock.sleeps


def test_retries_are_bounded_and_name_the_url_without_credentials():
    recorder = Recorder({})
    client = IQMClient(
        "http://user:pw@127.0.0.1:9/",
        transport=httpx.MockTransport(raise_error(httpx.ConnectError)),
        sleep=lambda s: None,
        environ={},
        api="cocos-v1",
        retry_policy=RetryPolicy(max_attempts=3, base_delay=0),
    )
    with pytest.raises(IQMConnectionError) as info:
        client.get_quantum_architecture()
    assert info.value.attempts == 3
    assert "http://127.0.0.1:9/quantum-architecture" in str(info.value)
    assert "pw" not in str(info.value)
    assert recorder.requests == []


def test_post_is_retried_when_it_never_reached_the_server():
    recorder = Recorder(
        {
            "POST /jobs": [
                raise_error(httpx.ConnectError),
                reply(503, {"detail": "busy"}, **{"Retry-After": "0"}),
                reply(201, {"id": str(JOB)}),
            ]
        }
    )
    with make_client(recorder) as client:
        assert client.submit_run_request(client.create_run_request([bell()])) == JOB
    keys = {r.headers["Idempotency-Key"] for r in recorder.requests if r.method == "POST"}
    assert len(keys) == 1  # the same key on every attempt of one submission


@pytest.mark.parametrize(
    "handler",
    [
        raise_error(httpx.ReadTimeout),
        raise_error(httpx.RemoteProtocolError),
        reply(502, "bad gateway"),
        reply(504, "gateway timeout"),
    ],
)
def test_ambiguous_post_failure_is_not_repeated(handler):
    recorder = Recorder({"POST /jobs": handler})
    with make_client(recorder) as client, pytest.raises(JobSubmissionUncertainError) as info:
        client.submit_run_request(client.create_run_request([bell()]))
    assert "may have created the job" in str(info.value)
    assert recorder.count("POST", "/jobs") == 1


def test_post_without_id_is_a_server_response_error():
    recorder = Recorder({"POST /jobs": reply(201, {"job": "x"})})
    with (
        make_client(recorder) as client,
        pytest.raises(ServerResponseError, match='no valid job "id"'),
    ):
        client.submit_run_request(client.create_run_request([bell()]))


def test_server_side_validation_error_is_reported_verbatim():
    detail = 'circuit 0 ("bell"), instruction 1: something the server dislikes'
    recorder = Recorder({"POST /jobs": reply(400, {"detail": detail})})
    with make_client(recorder) as client, pytest.raises(CircuitValidationError) as info:
        client.submit_run_request(client.create_run_request([bell()]))
    assert detail in str(info.value)
    assert info.value.status_code == 400


def test_401_forces_one_token_refresh_then_fails_without_leaking(tmp_path):
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"access_token": SECRET}))
    tokens.chmod(0o600)
    recorder = Recorder({"GET /quantum-architecture": reply(401, {"detail": "token expired"})})
    with make_client(recorder, tokens_file=str(tokens)) as client:
        with pytest.raises(ClientAuthenticationError) as info:
            client.get_quantum_architecture()
        assert SECRET not in repr(client)
    assert recorder.count("GET", "/quantum-architecture") == 2
    assert "token expired" in str(info.value)
    assert SECRET not in str(info.value)
    assert recorder.requests[0].headers["Authorization"] == f"Bearer {SECRET}"


def test_abort_refused_and_not_found():
    recorder = Recorder(
        {
            f"POST /jobs/{JOB}/abort": [
                reply(409, {"detail": "Job already finished"}),
                reply(404, {"detail": "Job not found"}),
            ]
        }
    )
    with make_client(recorder) as client:
        with pytest.raises(JobAbortionError) as info:
            client.abort_job(JOB)
        assert "Job already finished" in str(info.value) and str(JOB) in str(info.value)
        with pytest.raises(JobNotFoundError):
            client.abort_job(JOB)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "ftp://127.0.0.1"}, "must start with http:// or https://"),
        ({"url": "http://example.com", "token": SECRET}, "Refusing to send a bearer token"),
        (
            {"url": "http://127.0.0.1", "environ": {"IQM_CLIENT_REQUESTS_TIMEOUT": "soon"}},
            "IQM_CLIENT_REQUESTS_TIMEOUT must be a number",
        ),
        (
            {"url": "http://127.0.0.1", "token": SECRET, "environ": {"IQM_TOKEN": SECRET}},
            "do not mix",
        ),
        (
            {"url": "http://127.0.0.1", "tokens_file": "/nonexistent/tokens.json"},
            "Cannot read the tokens file /nonexistent/tokens.json",
        ),
    ],
)
def test_bad_configuration(kwargs, message):
    kwargs.setdefault("environ", {})
    with pytest.raises(ClientConfigurationError) as info:
        IQMClient(**kwargs)
    assert message in str(info.value)
    assert SECRET not in str(info.value)


def test_bad_job_id():
    with make_client(Recorder({})) as client, pytest.raises(ClientConfigurationError, match="UUID"):
        client.get_run("not-a-uuid")


def test_environment_timeouts_are_honoured():
    clock = FakeClock()
    recorder = Recorder({f"GET /jobs/{JOB}/status": reply(200, {"status": "pending execution"})})
    client = IQMClient(
        "http://127.0.0.1:1",
        transport=httpx.MockTransport(recorder),
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        environ={"IQM_CLIENT_REQUESTS_TIMEOUT": "7", "IQM_CLIENT_SECONDS_BETWEEN_CALLS": "0.3"},
    )
    assert client.settings.timeout == 7.0
    assert client.settings.seconds_between_calls == 0.3
    with pytest.raises(APITimeoutError):
        client.wait_for_results(JOB, timeout_secs=3)
    # The timeout reaches every request, and polls slow down to the configured interval only.
    assert recorder.requests[-1].extensions["timeout"]["read"] == 7.0
    assert max(clock.sleeps) == pytest.approx(0.3)
    client.close()
    with pytest.raises(ClientConfigurationError, match="closed"):
        client.get_quantum_architecture()
