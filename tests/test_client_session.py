"""The parts under ``IQMClient``, each on its own: the status -> exception map, the bearer auth's
refresh on 401, the session's retries and learnt capabilities, the wait loop and the settings.

These run without a server: ``httpx.MockTransport`` answers, and clocks are fakes.
"""

from __future__ import annotations

import ast
import uuid
from pathlib import Path

import httpx
import pytest

from cirq_iqm_ext.client import polling
from cirq_iqm_ext.client.auth import BearerAuth
from cirq_iqm_ext.client.polling import PollSchedule, wait_while
from cirq_iqm_ext.client.profiles.base import Submission
from cirq_iqm_ext.client.profiles.choice import choose_profile
from cirq_iqm_ext.client.retry import RetryPolicy
from cirq_iqm_ext.client.server_warnings import IQMServerWarning
from cirq_iqm_ext.client.session import Session
from cirq_iqm_ext.client.settings import (
    IQM_SERVER_REQUESTS_TIMEOUT,
    ClientSettings,
    check_credential_transport,
    resolve_settings,
)
from cirq_iqm_ext.client.status_errors import detail_of, error_for_status, json_of
from cirq_iqm_ext.errors import (
    APITimeoutError,
    CircuitValidationError,
    ClientAuthenticationError,
    ClientConfigurationError,
    IQMConnectionError,
    JobNotFoundError,
    JobSubmissionUncertainError,
    ServerResponseError,
)
from cirq_iqm_ext.wire.models import Status
from cirq_iqm_ext.wire.protocol import IDEMPOTENCY_KEY_HEADER, IDEMPOTENCY_SUPPORT_HEADER

JOB = uuid.UUID(int=42)
URL = "http://127.0.0.1:9"

# ------------------------------------------------------------------ status -> exception


@pytest.mark.parametrize(
    ("code", "job_id", "submission", "expected"),
    [
        (200, None, False, None),
        (201, None, True, None),
        (302, JOB, False, None),
        (400, None, False, ClientConfigurationError),
        (400, None, True, CircuitValidationError),
        (422, None, True, CircuitValidationError),
        (409, None, True, ClientConfigurationError),
        (401, None, False, ClientAuthenticationError),
        (403, JOB, True, ClientAuthenticationError),
        (404, JOB, False, JobNotFoundError),
        (404, None, False, ClientConfigurationError),
        (429, None, False, ClientConfigurationError),
        (500, JOB, False, IQMConnectionError),
        (502, None, True, JobSubmissionUncertainError),
        (503, None, False, IQMConnectionError),
    ],
)
def test_status_map(code, job_id, submission, expected):
    error = error_for_status(
        code, "why", endpoint="GET x", url=URL, job_id=job_id, submission=submission
    )
    if expected is None:
        assert error is None
        return
    assert type(error) is expected
    assert error.status_code == code
    assert "why" in str(error)
    if expected is JobNotFoundError:
        assert error.job_id == job_id
        assert URL in str(error)


def test_status_map_says_a_job_may_still_run():
    error = error_for_status(500, "boom", endpoint=f"GET jobs/{JOB}", url=URL, job_id=JOB)
    assert isinstance(error, IQMConnectionError)
    assert error.job_id == JOB
    assert "may still be running" in str(error)


@pytest.mark.parametrize(
    ("response", "detail"),
    [
        (httpx.Response(400, json={"message": "m", "detail": "d"}), "m"),
        (httpx.Response(400, json={"detail": "d"}), "d"),
        (httpx.Response(400, json=[1, 2]), "[1, 2]"),
        (httpx.Response(400, content=b"  plain text  "), "plain text"),
        (httpx.Response(400, content=b""), "Bad Request"),
        (httpx.Response(500, content=b"x" * 900), "x" * 500),
    ],
)
def test_detail_of(response, detail):
    assert detail_of(response) == detail


def test_json_of_refuses_a_body_that_is_not_json():
    response = httpx.Response(200, content=b"<html>", headers={"content-type": "text/html"})
    with pytest.raises(ServerResponseError, match="not JSON") as info:
        json_of(response, "GET x", JOB)
    assert info.value.job_id == JOB
    assert json_of(httpx.Response(200, json={"a": 1}), "GET x") == {"a": 1}


# ------------------------------------------------------------------ bearer auth


class CountingProvider:
    """Hands out ``t0``, then ``t1`` after each forced refresh."""

    def __init__(self) -> None:
        self.generation = 0
        self.forced = 0

    def get_token(self, *, force_refresh: bool = False) -> str:
        if force_refresh:
            self.forced += 1
            self.generation += 1
        return f"t{self.generation}"

    def close(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "CountingProvider()"


def _server_accepting(*tokens: str) -> tuple[httpx.Client, list[str]]:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization", ""))
        accepted = {f"Bearer {t}" for t in tokens}
        return httpx.Response(200 if seen[-1] in accepted else 401, json={})

    return httpx.Client(transport=httpx.MockTransport(answer)), seen


def test_bearer_auth_adds_the_token():
    http, seen = _server_accepting("t0")
    provider = CountingProvider()
    assert http.get(f"{URL}/x", auth=BearerAuth(provider)).status_code == 200
    assert seen == ["Bearer t0"]
    assert provider.forced == 0


def test_bearer_auth_refreshes_once_on_401_and_repeats():
    http, seen = _server_accepting("t1")
    provider = CountingProvider()
    assert http.get(f"{URL}/x", auth=BearerAuth(provider)).status_code == 200
    assert seen == ["Bearer t0", "Bearer t1"]
    assert provider.forced == 1


def test_bearer_auth_gives_up_after_one_refresh():
    http, seen = _server_accepting()
    provider = CountingProvider()
    auth = BearerAuth(provider)
    assert http.get(f"{URL}/x", auth=auth).status_code == 401
    assert seen == ["Bearer t0", "Bearer t1"]
    # The same logical request (another attempt with the same auth) gets no second refresh.
    assert http.get(f"{URL}/x", auth=auth).status_code == 401
    assert provider.forced == 1
    assert "t0" not in repr(auth) and "CountingProvider" in repr(auth)


def test_session_maps_a_persistent_401_to_an_auth_error():
    session = _session(lambda request: httpx.Response(401, json={"detail": "revoked"}), token="t0")
    response = session.request("GET", "quantum-architecture")
    with pytest.raises(ClientAuthenticationError, match="revoked"):
        session.check(response, "GET quantum-architecture")


# ------------------------------------------------------------------ session


def _settings(**overrides: object) -> ClientSettings:
    values: dict = {
        "url": URL,
        "display_url": URL,
        "api": "cocos-v1",
        "quantum_computer": None,
        "timeout": 5.0,
        "seconds_between_calls": 1.0,
        "retry_policy": RetryPolicy(max_attempts=4, base_delay=0.01, max_total_seconds=10),
        "idempotent_submissions": None,
        "user_agent": "test",
    }
    values.update(overrides)
    return ClientSettings(**values)


def _session(handler, token: str | None = None, **overrides: object) -> Session:
    return Session(
        _settings(**overrides),
        {"token": token} if token else {},
        transport=httpx.MockTransport(handler),
        sleep=lambda seconds: None,
        monotonic=lambda: 0.0,
    )


def test_a_submission_carries_its_key_on_every_attempt():
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503 if len(seen) < 3 else 201, json={"id": str(JOB)})

    session = _session(answer)
    response = session.request("POST", "jobs", json_body={}, submission=Submission("k-1"))
    assert response.status_code == 201
    assert [r.headers[IDEMPOTENCY_KEY_HEADER] for r in seen] == ["k-1"] * 3
    reads = _session(lambda request: httpx.Response(200, json={}))
    assert IDEMPOTENCY_KEY_HEADER not in reads.request("GET", "x").request.headers


def test_an_ambiguous_submission_is_repeated_only_once_the_server_deduplicates():
    posts = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal posts
        if request.method == "GET":
            return httpx.Response(200, json={}, headers={IDEMPOTENCY_SUPPORT_HEADER: "1"})
        posts += 1
        return httpx.Response(502 if posts < 3 else 201, json={"id": str(JOB)})

    session = _session(answer)
    assert not session.server_deduplicates
    with pytest.raises(JobSubmissionUncertainError) as info:
        session.request("POST", "jobs", submission=Submission("k-2"))
    assert info.value.idempotency_key == "k-2"
    # A probe's headers say nothing about jobs; any other answer is taken at its word.
    session.request("GET", "probe", capabilities=False)
    assert not session.server_deduplicates
    session.request("GET", "jobs/x/status")
    assert session.server_deduplicates
    assert session.request("POST", "jobs", submission=Submission("k-2")).status_code == 201
    assert posts == 3


def test_the_user_can_distrust_deduplication():
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(504, json={}, headers={IDEMPOTENCY_SUPPORT_HEADER: "1"})

    session = _session(answer, idempotent_submissions=False)
    with pytest.raises(JobSubmissionUncertainError):
        session.request("POST", "jobs", submission=Submission("k-3"))
    assert not session.server_deduplicates


def test_reads_retry_transport_errors_then_name_the_job():
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("lost", request=request)

    session = _session(answer)
    with pytest.raises(IQMConnectionError) as info:
        session.request("GET", f"jobs/{JOB}", job_id=JOB)
    assert info.value.attempts == 4
    assert info.value.job_id == JOB
    assert "unaffected on the server" in str(info.value)


def test_a_closed_session_refuses_requests():
    session = _session(lambda request: httpx.Response(200, json={}))
    session.close()
    with pytest.raises(ClientConfigurationError, match="closed"):
        session.request("GET", "x")


# ------------------------------------------------------------------ polling


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_wait_while_long_polls_without_sleeping():
    clock = Clock()
    holds: list[float] = []
    answers = iter([Status.PENDING_EXECUTION, Status.PENDING_EXECUTION, Status.READY])

    def poll(hold: float) -> tuple[Status, bool]:
        holds.append(hold)
        clock.now += hold
        return next(answers), True

    schedule = PollSchedule(max_interval=1.0, request_timeout=8.0)
    waiting = frozenset({Status.PENDING_EXECUTION})
    status = wait_while(
        JOB,
        poll,
        waiting,
        what="finish",
        timeout_secs=60,
        schedule=schedule,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
    )
    assert status is Status.READY
    assert holds == [0.0, 4.0, 4.0]  # the first poll learns the server holds; then half the timeout
    assert clock.sleeps == []


def test_wait_while_sleeps_on_a_growing_schedule_until_the_deadline():
    clock = Clock()
    seen: list[tuple[Status, float]] = []
    with pytest.raises(APITimeoutError, match="did not finish within 2 s") as info:
        wait_while(
            JOB,
            lambda hold: (Status.PENDING_EXECUTION, False),
            frozenset({Status.PENDING_EXECUTION}),
            what="finish",
            timeout_secs=2,
            schedule=PollSchedule(max_interval=0.5, request_timeout=60),
            monotonic=clock.monotonic,
            sleep=clock.sleep,
            status_callback=lambda status, waited: seen.append((status, waited)),
        )
    assert info.value.job_id == JOB
    assert clock.sleeps[0] == polling.FIRST_POLL_SECONDS
    assert max(clock.sleeps) == 0.5
    assert clock.now == pytest.approx(2.0)
    assert [waited for _, waited in seen] == sorted(waited for _, waited in seen)


def test_wait_while_warns_once_per_unknown_status():
    answers = iter([Status("pending teleportation")] * 3 + [Status.READY])
    with pytest.warns(IQMServerWarning, match="teleportation") as record:
        wait_while(
            JOB,
            lambda hold: (next(answers), False),
            frozenset({Status.PENDING_EXECUTION}),
            what="finish",
            timeout_secs=60,
            schedule=PollSchedule(max_interval=0.1, request_timeout=60),
            monotonic=lambda: 0.0,
            sleep=lambda seconds: None,
        )
    assert len(record) == 1


# ------------------------------------------------------------------ settings and choice


def _resolve(url: str | None = URL, environ: dict | None = None, **overrides: object):
    arguments: dict = {
        "api": "auto",
        "quantum_computer": None,
        "timeout": None,
        "seconds_between_calls": None,
        "retry_policy": None,
        "idempotent_submissions": None,
        "client_signature": None,
    }
    arguments.update(overrides)
    return resolve_settings(url, environ=environ or {}, **arguments)


def test_settings_come_from_the_environment_when_not_given():
    environ = {
        "IQM_SERVER_URL": "https://user:pw@example.com/qc/",
        "IQM_QUANTUM_COMPUTER": "deneb",
        "IQM_CLIENT_SECONDS_BETWEEN_CALLS": "0.5",
    }
    settings = _resolve(None, environ, api="iqm-server", client_signature="mine")
    assert settings.url == "https://user:pw@example.com/qc"
    assert settings.display_url == "https://example.com/qc"
    assert settings.quantum_computer == "deneb"
    assert settings.timeout == IQM_SERVER_REQUESTS_TIMEOUT
    assert settings.seconds_between_calls == 0.5
    assert settings.has_path
    assert settings.user_agent.endswith(", mine")
    assert "pw" not in repr(settings)


@pytest.mark.parametrize(
    ("url", "environ", "overrides", "message"),
    [
        (URL, {}, {"api": "v2"}, "api must be one of"),
        (None, {}, {}, "No server URL"),
        ("ftp://example.com", {}, {}, "must start with http"),
        ("http://example.com", {}, {"api": "iqm-server"}, "Plain http is allowed only"),
        (URL, {"IQM_CLIENT_REQUESTS_TIMEOUT": "soon"}, {}, "number of seconds"),
        (URL, {"IQM_CLIENT_SECONDS_BETWEEN_CALLS": "0"}, {}, "must be positive"),
    ],
)
def test_bad_settings_are_refused(url, environ, overrides, message):
    with pytest.raises(ClientConfigurationError, match=message):
        _resolve(url, environ, **overrides)


def test_secrets_travel_over_plain_http_only_to_this_machine():
    check_credential_transport("http://localhost:8000", {"token": "t"})
    check_credential_transport("http://example.com", {})
    with pytest.raises(ClientConfigurationError, match="bearer token over plain http"):
        check_credential_transport("http://example.com", {"token": "t"})
    with pytest.raises(ClientConfigurationError, match="password to the auth server"):
        check_credential_transport(
            "https://example.com",
            {"auth_server_url": "http://auth.example.com", "username": "u", "password": "p"},
        )


def test_auto_with_a_path_needs_no_probe():
    session = _session(lambda request: pytest.fail("no request expected"))
    assert choose_profile("auto", session, url_has_path=True).name == "cocos-v1"
    assert choose_profile("iqm-server", session, quantum_computer="qc").name == "iqm-server"


def test_profiles_base_imports_neither_profile():
    base = Path(__file__).parents[1] / "cirq_iqm_ext" / "client" / "profiles" / "base.py"
    imported = {
        node.module
        for node in ast.walk(ast.parse(base.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert not any(name.startswith("cirq_iqm_ext.client.profiles.") for name in imported)
