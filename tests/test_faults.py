"""Fault injection: the client against the project's server through a faulty loopback proxy.

Every scenario states its expected outcome (recovered, or a documented error carrying the job id)
and counts jobs at the server: zero duplicated, zero lost. Sleeps go to a fake clock (instant) where
waiting is not the point; the monotonic clock is the real one plus the fake sleeps, so every
deadline still holds in real time. The summary table is printed at the end of the pytest run.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cirq
import pytest
from faults.proxy import (
    RESET_AFTER,
    RESET_BEFORE,
    TRUNCATE,
    Fault,
    FaultProxy,
    free_port,
    replace,
    respond,
    upstream_of,
)
from faults.report import REPORT, SecretScanner

from cirq_iqm_ext import Circuit, Instruction, IQMClient, Status
from cirq_iqm_ext.client.iqm_client import IQMServerWarning
from cirq_iqm_ext.client.retry import OUTAGE_MAX_BACKOFF, RetryPolicy
from cirq_iqm_ext.errors import (
    ClientAuthenticationError,
    IQMConnectionError,
    IQMError,
    JobNotFoundError,
    JobSubmissionUncertainError,
    ServerResponseError,
)
from cirq_iqm_ext.server import EmbeddedServer

pytestmark = pytest.mark.usefixtures("secret_scanner")

TOKEN = "fault-suite-static-token-8c1f2a"
PASSWORD = "fault-suite-password-77aa01"
POLICY = RetryPolicy(max_attempts=6, base_delay=0.05, max_delay=1.0, max_total_seconds=30.0)


class FakeClock:
    """Instant sleeps, recorded; monotonic time is real time plus the time slept."""

    def __init__(self, on_sleep: Callable[[float], None] | None = None):
        self.sleeps: list[float] = []
        self._slept = 0.0
        self._on_sleep = on_sleep
        self._lock = threading.Lock()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._slept += seconds
        if self._on_sleep is not None:
            self._on_sleep(seconds)

    def monotonic(self) -> float:
        return time.monotonic() + self._slept


def bell(name: str) -> Circuit:
    ry = {"angle_t": 0.25, "phase_t": 0.25}
    return Circuit(
        name,
        (
            Instruction("prx", ["QB1"], ry),
            Instruction("cz", ["QB1", "QB3"]),
            Instruction("measure", ["QB1", "QB3"], {"key": "m"}),
        ),
    )


def payload(name: str, shots: int = 10) -> dict[str, Any]:
    return {"circuits": [bell(name).to_dict()], "shots": shots}


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer("adonis", seed=11) as running:
        yield running


@pytest.fixture
def proxy(server: EmbeddedServer, secret_scanner: SecretScanner) -> Iterator[FaultProxy]:
    with FaultProxy(upstream_of(server.url)) as running:
        yield running
        secret_scanner.add_secret(*running.secrets)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_client(url: str, clock: FakeClock, **kwargs: Any) -> IQMClient:
    kwargs.setdefault("environ", {})
    kwargs.setdefault("retry_policy", POLICY)
    kwargs.setdefault("seconds_between_calls", 0.05)
    return IQMClient(url, sleep=clock.sleep, monotonic=clock.monotonic, **kwargs)


class Ledger:
    """Counts the server's jobs across a scenario: duplicated = created - expected."""

    def __init__(self, server: EmbeddedServer, scenario: str, fault: str):
        self.server, self.scenario, self.fault = server, scenario, fault
        self.before = len(server.app.store)
        self.submitted = self.completed = 0

    def created(self) -> int:
        return len(self.server.app.store) - self.before

    def close(self, outcome: str, *, expected_jobs: int, completed: int) -> None:
        created = self.created()
        duplicated = max(0, created - expected_jobs)
        lost = max(0, expected_jobs - completed)
        REPORT.outcome(self.scenario, self.fault, outcome)
        REPORT.account(
            submitted=expected_jobs, completed=completed, duplicated=duplicated, lost=lost
        )
        assert created == expected_jobs, f"{created} jobs at the server, expected {expected_jobs}"
        assert lost == 0


def run_job(client: IQMClient, name: str, **kwargs: Any) -> uuid.UUID:
    job_id = client.submit_payload(payload(name), **kwargs)
    result = client.wait_for_results(job_id, timeout_secs=30)
    assert result.status is Status.READY
    assert len(result.measurements[0]["m"]) == 10
    return job_id


def expect(scanner: SecretScanner, error_type: type[BaseException], call: Callable[[], Any]) -> Any:
    """Runs ``call``, which must raise ``error_type``; the error is scanned for secrets."""
    with pytest.raises(error_type) as info:
        call()
    scanner.exception(info.value)
    return info.value


# -------------------------------------------------------------------------------- connection level


def test_connection_refused_is_bounded_and_names_the_url(clock, secret_scanner):
    url = f"http://127.0.0.1:{free_port()}"
    with make_client(url, clock, api="cocos-v1") as client:  # no profile probe: v1 URLs
        error = expect(secret_scanner, IQMConnectionError, client.get_quantum_architecture)
        assert error.attempts == POLICY.max_attempts
        assert f"{url}/quantum-architecture" in str(error)
        assert len(clock.sleeps) == POLICY.max_attempts - 1
        submit = expect(
            secret_scanner, IQMConnectionError, lambda: client.submit_payload(payload("refused"))
        )
    assert not isinstance(submit, JobSubmissionUncertainError)  # it never left this machine
    assert "did not accept the job" in str(submit)
    # Before submitting, the client asked for the architecture once more (to learn whether the
    # server deduplicates); then the submission that never left had a budget of its own.
    submission_sleeps = clock.sleeps[2 * (POLICY.max_attempts - 1) :]
    budget = POLICY.submission_connect_seconds
    assert budget - OUTAGE_MAX_BACKOFF - 1.0 < sum(submission_sleeps) <= budget
    assert max(submission_sleeps) <= OUTAGE_MAX_BACKOFF
    assert submit.attempts == len(submission_sleeps) + 1 > POLICY.max_attempts
    REPORT.count_fault("connection refused")
    REPORT.outcome("refused, server never comes up", "connection refused", "IQMConnectionError")


def test_connection_refused_then_server_comes_up_recovers(server, secret_scanner):
    proxy = FaultProxy(upstream_of(server.url), port=free_port())
    started: list[bool] = []

    def bring_up(_: float) -> None:
        if not started:
            started.append(True)
            proxy.start()

    ledger = Ledger(server, "refused until the first retry", "connection refused")
    clock = FakeClock(on_sleep=bring_up)
    try:
        with make_client(proxy.url, clock) as client:
            REPORT.count_fault("connection refused")
            run_job(client, "refused-then-up")
    finally:
        proxy.stop()
        secret_scanner.add_secret(*proxy.secrets)
    assert len(clock.sleeps) >= 1
    ledger.close("recovered", expected_jobs=1, completed=1)


@pytest.mark.parametrize("dedup", [False, True], ids=["no-dedup", "dedup"])
@pytest.mark.parametrize(
    "fault",
    [
        RESET_BEFORE,
        RESET_AFTER,
        TRUNCATE,
        respond(502),
        respond(504),
        Fault("delay", delay=0.6, label="slow > timeout"),
    ],
    ids=lambda f: f.name,
)
def test_ambiguous_submission(server, proxy, clock, secret_scanner, fault, dedup):
    """A submission whose outcome is unknown is repeated only when the server deduplicates; else
    the error says the job may exist and the key to find it with; never a second job."""
    ledger = Ledger(server, f"POST jobs, idempotent_submissions={dedup}", fault.name)
    proxy.inject("POST", r"/jobs$", fault)
    name = f"ambiguous-{fault.name}-{dedup}"
    with make_client(proxy.url, clock, idempotent_submissions=dedup, timeout=0.3) as client:
        if dedup:
            run_job(client, name)
            assert proxy.seen.count("POST /jobs") == 2
            ledger.close("recovered (same Idempotency-Key)", expected_jobs=1, completed=1)
            return
        error = expect(
            secret_scanner,
            JobSubmissionUncertainError,
            lambda: client.submit_payload(payload(name)),
        )
        assert "may have created the job" in str(error)
        assert error.idempotency_key and error.idempotency_key in str(error)
        assert proxy.seen.count("POST /jobs") == 1  # not repeated blindly
        if fault.kind == "delay":
            time.sleep(fault.delay)  # let the held answer pass before counting
        # The documented way out: submit again with the error's key; no second job appears.
        job_id = run_job(client, name, idempotency_key=error.idempotency_key)
    assert job_id is not None
    ledger.close("JobSubmissionUncertainError, then found by key", expected_jobs=1, completed=1)


@pytest.mark.parametrize(
    "fault",
    [RESET_BEFORE, RESET_AFTER, TRUNCATE, Fault("delay", delay=0.6, label="slow > timeout")],
    ids=lambda f: f.name,
)
def test_reads_recover_from_transport_faults(server, proxy, clock, fault):
    ledger = Ledger(server, "GET status/result", fault.name)
    proxy.inject("GET", r"/jobs/[^/]+(/status)?$", fault, times=2)
    with make_client(proxy.url, clock, timeout=0.3) as client:
        run_job(client, f"read-{fault.name}")
    assert proxy.injected[fault.name] == 2
    ledger.close("recovered", expected_jobs=1, completed=1)


# -------------------------------------------------------------------------------- HTTP statuses


@pytest.mark.parametrize("status", [502, 503, 504])
def test_bursts_of_gateway_errors_are_retried(server, proxy, clock, status):
    ledger = Ledger(server, "burst of 3 on every endpoint", f"respond {status}")
    detail = json.dumps({"detail": "upstream trouble"})
    for method, path in [
        ("GET", r"quantum-architecture"),
        ("GET", r"/status$"),
        ("GET", r"/jobs/[^/]+$"),
    ]:
        proxy.inject(method, path, respond(status, detail), times=3)
    if status == 503:  # the only one a submission may repeat without knowing the server dedups
        proxy.inject("POST", r"/jobs$", respond(503, detail, Retry_After="1"), times=3)
    with make_client(proxy.url, clock) as client:
        client.get_quantum_architecture()
        run_job(client, f"burst-{status}")
    assert proxy.injected[f"respond {status}"] == (12 if status == 503 else 9)
    if status == 503:
        assert sum(s >= 1.0 for s in clock.sleeps) >= 3  # Retry-After honoured
    ledger.close("recovered", expected_jobs=1, completed=1)


def test_endless_503_gives_up_within_budget(server, proxy, clock, secret_scanner):
    ledger = Ledger(server, "503 forever on POST jobs", "respond 503")
    proxy.inject("POST", r"/jobs$", respond(503, '{"detail":"queue full"}'), times=100)
    with make_client(proxy.url, clock) as client:
        error = expect(
            secret_scanner, IQMConnectionError, lambda: client.submit_payload(payload("never"))
        )
    assert not isinstance(error, JobSubmissionUncertainError)
    assert error.attempts == POLICY.max_attempts and "did not accept the job" in str(error)
    assert sum(clock.sleeps) <= POLICY.max_total_seconds
    ledger.close("IQMConnectionError (no job created)", expected_jobs=0, completed=0)


@pytest.mark.parametrize("retry_after", [None, "2", "3600"])
def test_429(server, proxy, clock, secret_scanner, retry_after):
    label = f"429 Retry-After {retry_after}" if retry_after else "429 without Retry-After"
    ledger = Ledger(server, "rate limited submission", label)
    headers = {"Retry_After": retry_after} if retry_after else {}
    proxy.inject(
        "POST", r"/jobs$", respond(429, '{"detail":"slow down"}', label=label, **headers), times=2
    )
    with make_client(proxy.url, clock) as client:
        if retry_after == "3600":  # longer than the cap: give up at once and say why
            error = expect(
                secret_scanner,
                IQMConnectionError,
                lambda: client.submit_payload(payload("limited")),
            )
            assert "retry after 3600 s" in str(error) and clock.sleeps == []
            ledger.close("IQMConnectionError (no job created)", expected_jobs=0, completed=0)
            return
        run_job(client, f"limited-{retry_after}")
    if retry_after:
        assert clock.sleeps[:2] == [2.0, 2.0]  # honoured (never earlier)
    else:
        assert all(0 <= s <= 1.0 for s in clock.sleeps[:2])  # jittered backoff
    ledger.close("recovered", expected_jobs=1, completed=1)


# -------------------------------------------------------------------------------- bad answers


def test_non_json_200(server, proxy, clock, secret_scanner):
    ledger = Ledger(server, "non-JSON 200 on status and on POST jobs", "replace 200 (HTML)")
    html = "<html>maintenance</html>"
    with make_client(proxy.url, clock) as client:
        job_id = client.submit_payload(payload("nonjson-status"))
        proxy.inject("GET", r"/status$", replace(200, html, "replace 200 (HTML)"))
        error = expect(
            secret_scanner,
            ServerResponseError,
            lambda: client.wait_for_results(job_id, timeout_secs=30),
        )
        assert error.job_id == job_id and "is not JSON" in str(error)
        assert f"GET jobs/{job_id}/status" in str(error)
        assert client.wait_for_results(job_id, timeout_secs=30).status is Status.READY
        # On a submission the job was created but its id is unreadable: the key finds it.
        proxy.inject("POST", r"/jobs$", replace(200, html, "replace 200 (HTML)"))
        key = str(uuid.uuid4())
        error = expect(
            secret_scanner,
            ServerResponseError,
            lambda: client.submit_payload(payload("nonjson-post"), idempotency_key=key),
        )
        assert key in str(error)
        run_job(client, "nonjson-post", idempotency_key=key)
    ledger.close(
        "ServerResponseError with job id / key, then recovered", expected_jobs=2, completed=2
    )


@pytest.mark.parametrize(
    ("path", "body", "missing"),
    [
        (r"/status$", '{"message": "hi"}', "status"),
        (r"/jobs/[^/]+$", '{"status": "ready", "measurements": [{"m": "zero"}]}', "m"),
        (r"/jobs/[^/]+$", "[1, 2, 3]", ""),
    ],
)
def test_json_missing_required_fields(server, proxy, clock, secret_scanner, path, body, missing):
    ledger = Ledger(server, f"malformed JSON on {path}", "replace 200 (bad JSON)")
    with make_client(proxy.url, clock) as client:
        job_id = client.submit_payload(payload("missing-fields"))
        proxy.inject("GET", path, replace(200, body, "replace 200 (bad JSON)"))
        error = expect(
            secret_scanner,
            ServerResponseError,
            lambda: client.wait_for_results(job_id, timeout_secs=30),
        )
        assert error.job_id == job_id and str(job_id) in str(error)
        assert missing in str(error)
        assert client.get_run(job_id).status is Status.READY
    ledger.close("ServerResponseError with job id, then recovered", expected_jobs=1, completed=1)


def test_unknown_status_is_pending_with_one_warning(server, proxy, clock, secret_scanner):
    ledger = Ledger(server, "unknown status twice", "replace 200 (unknown status)")
    proxy.inject(
        "GET",
        r"/status$",
        replace(200, '{"status": "teleporting"}', "replace 200 (unknown status)"),
        times=2,
    )
    with make_client(proxy.url, clock) as client, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_job(client, "unknown-status")
    secret_scanner.warnings(caught)
    texts = [str(w.message) for w in caught if issubclass(w.category, IQMServerWarning)]
    assert len(texts) == 1 and "'teleporting'" in texts[0]
    ledger.close("recovered (warned once)", expected_jobs=1, completed=1)


def test_404_for_a_job(server, proxy, clock, secret_scanner):
    ledger = Ledger(server, "404 for an unknown and a known job", "respond 404")
    unknown = uuid.uuid4()
    with make_client(proxy.url, clock) as client:
        error = expect(secret_scanner, JobNotFoundError, lambda: client.get_run(unknown))
        assert error.job_id == unknown and str(unknown) in str(error)
        job_id = client.submit_payload(payload("404"))
        proxy.inject("GET", r"/status$", respond(404, '{"detail": "Job not found"}'))
        error = expect(
            secret_scanner,
            JobNotFoundError,
            lambda: client.wait_for_results(job_id, timeout_secs=30),
        )
        assert error.job_id == job_id
        assert client.wait_for_results(job_id, timeout_secs=30).status is Status.READY
    ledger.close("JobNotFoundError with job id", expected_jobs=1, completed=1)


# -------------------------------------------------------------------------------- authentication


def test_401_after_token_expiry_mid_wait(secret_scanner):
    """The server's clock jumps past the access token's expiry while the client waits: the next
    poll gets 401, the client refreshes once (refresh grant) and carries on."""
    offset = [0.0]

    def server_clock() -> float:
        return time.time() + offset[0]

    with (
        EmbeddedServer(
            "adonis", seed=3, auth_users={"alice": PASSWORD}, job_delay=0.6, clock=server_clock
        ) as srv,
        FaultProxy(upstream_of(srv.url)) as proxy,
    ):
        polls = [0]

        def expire_on_second_poll(request: Any) -> None:
            if request.path.endswith("/status"):
                polls[0] += 1
                if polls[0] == 2:
                    offset[0] = 400.0  # past the 300 s access token, within the refresh one
                    REPORT.count_fault("token expiry (server clock +400 s)")

        proxy.on_request = expire_on_second_poll
        ledger = Ledger(srv, "401 after token expiry mid-wait", "token expiry")
        secret_scanner.add_secret(PASSWORD)
        with make_client(
            proxy.url,
            FakeClock(),
            auth_server_url=proxy.url,
            username="alice",
            password=PASSWORD,
        ) as client:
            run_job(client, "expiry")
            secret_scanner.collect(repr(client))
        secret_scanner.add_secret(*proxy.secrets)
        grants = srv.app.stats["POST realms/cortex/protocol/openid-connect/token"]
        assert grants == 2  # the login and exactly one refresh
        ledger.close("recovered (one forced refresh)", expected_jobs=1, completed=1)


def test_401_that_persists_is_an_auth_error_with_the_job_id(secret_scanner):
    with (
        EmbeddedServer("adonis", seed=3, token=TOKEN) as srv,
        FaultProxy(upstream_of(srv.url)) as proxy,
    ):
        secret_scanner.add_secret(TOKEN)
        ledger = Ledger(srv, "401 twice on a status poll (token revoked)", "respond 401")
        with make_client(proxy.url, FakeClock(), token=TOKEN) as client:
            job_id = client.submit_payload(payload("revoked"))
            proxy.inject("GET", r"/status$", respond(401, '{"detail": "token revoked"}'), times=2)
            error = expect(
                secret_scanner,
                ClientAuthenticationError,
                lambda: client.wait_for_results(job_id, timeout_secs=30),
            )
            assert error.job_id == job_id and "token revoked" in str(error)
            assert client.wait_for_results(job_id, timeout_secs=30).status is Status.READY
        secret_scanner.add_secret(*proxy.secrets)
        ledger.close("ClientAuthenticationError with job id", expected_jobs=1, completed=1)


# -------------------------------------------------------------------------------- server restarts


def _restart(server: EmbeddedServer, **config: Any) -> EmbeddedServer:
    port = server.port
    server.stop()
    return EmbeddedServer("adonis", port=port, **config).start()


def test_server_restart_without_state_loses_jobs_with_a_clear_error(clock, secret_scanner):
    srv = EmbeddedServer("adonis", seed=5, job_delay=30.0).start()
    try:
        with FaultProxy(upstream_of(srv.url)) as proxy, make_client(proxy.url, clock) as client:
            job_id = client.submit_payload(payload("restart-memory"))
            client.get_run_status(job_id)
            srv = _restart(srv, seed=5)
            REPORT.count_fault("server killed and restarted (no state dir)")
            error = expect(
                secret_scanner,
                JobNotFoundError,
                lambda: client.wait_for_results(job_id, timeout_secs=30),
            )
            assert error.job_id == job_id
            run_job(client, "after-restart")  # the pool recovered from the dead connections
    finally:
        srv.stop()
    REPORT.outcome("restart, in-memory server", "server killed", "JobNotFoundError with job id")


def test_server_restart_with_state_dir_keeps_the_job(tmp_path, clock, secret_scanner):
    """PROTOCOL/issue 5: a server restarted with the same ``--state-dir`` still answers for the
    jobs it accepted (unfinished ones re-run or failed with a clear message)."""
    srv = EmbeddedServer("adonis", seed=5, job_delay=0.5, state_dir=str(tmp_path)).start()
    try:
        with FaultProxy(upstream_of(srv.url)) as proxy, make_client(proxy.url, clock) as client:
            key = str(uuid.uuid4())
            job_id = client.submit_payload(payload("restart-state"), idempotency_key=key)
            srv = _restart(srv, seed=5, job_delay=0.5, state_dir=str(tmp_path))
            REPORT.count_fault("server killed and restarted (state dir)")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = client.wait_for_results(job_id, timeout_secs=30)
            secret_scanner.warnings(caught)
            assert result.status in (Status.READY, Status.FAILED)
            assert all("restarted" in str(w.message) for w in caught)  # re-run, and said so
            # The Idempotency-Key survives the restart too: a repeat finds the same job.
            assert client.submit_payload(payload("restart-state"), idempotency_key=key) == job_id
            assert len(srv.app.store) == 1  # the job, once
    finally:
        srv.stop()
    REPORT.outcome("restart with state dir", "server killed", f"recovered ({result.status})")
    REPORT.account(submitted=1, completed=1, duplicated=0, lost=0)


class Outage:
    """Stops a server now and restarts it (same port, same state dir) once the client has slept
    ``down_for`` seconds on the fake clock, from inside the client's own sleep."""

    def __init__(self, server: EmbeddedServer, down_for: float, **config: Any):
        self.server, self.down_for, self.config = server, down_for, config
        self.port = server.port
        self.slept = 0.0
        self.sleeps: list[float] = []
        self.restarted = False
        server.stop()

    def on_sleep(self, seconds: float) -> None:
        if self.restarted:
            return
        self.sleeps.append(seconds)
        self.slept += seconds
        if self.slept >= self.down_for:
            self.server = EmbeddedServer("adonis", port=self.port, **self.config).start()
            self.restarted = True


#: A request's own retry budget (default policy: 5 attempts, backoff 0.25 s doubling) is at most
#: 0.25 + 0.5 + 1 + 2 = 3.75 s of sleep; the outages below last well beyond it.
DOWN_FOR = 6.5


def test_a_wait_outlasts_a_server_restart(tmp_path, secret_scanner):
    """Issue 19 item 4: ``wait_for_results(timeout_secs=120)`` keeps trying while the server is
    down (connection refused) for longer than one request's retry budget, with backoff capped
    at a few seconds, and returns the result once the server is back on its state dir."""
    config = {"seed": 5, "job_delay": 0.3, "state_dir": str(tmp_path)}
    srv = EmbeddedServer("adonis", **config).start()
    outage: Outage | None = None
    try:
        clock = FakeClock(on_sleep=lambda s: outage.on_sleep(s) if outage else None)
        with IQMClient(
            srv.url, api="cocos-v1", environ={}, sleep=clock.sleep, monotonic=clock.monotonic
        ) as client:  # the default retry policy
            job_id = client.submit_payload(payload("outlast-restart"))
            outage = Outage(srv, DOWN_FOR, **config)
            REPORT.count_fault("server stopped, restarted after 6.5 s (state dir)")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = client.wait_for_results(job_id, timeout_secs=120)
            secret_scanner.warnings(caught)
        assert outage.restarted
        assert result.status is Status.READY
        assert len(result.measurements[0]["m"]) == 10
        assert outage.slept >= DOWN_FOR
        assert max(outage.sleeps) <= OUTAGE_MAX_BACKOFF
        assert len(outage.server.app.store) == 1
    finally:
        (outage.server if outage else srv).stop()
    REPORT.outcome("wait through a 6.5 s outage", "connection refused", "recovered")
    REPORT.account(submitted=1, completed=1, duplicated=0, lost=0)


def test_a_submission_outlasts_a_server_restart(tmp_path, secret_scanner):
    """A submission whose connection is refused (it never left) is retried within a budget of
    its own, so a restart of the server does not fail it; exactly one job is created."""
    config = {"seed": 6, "job_delay": 0.0, "state_dir": str(tmp_path)}
    srv = EmbeddedServer("adonis", **config).start()
    outage: Outage | None = None
    try:
        clock = FakeClock(on_sleep=lambda s: outage.on_sleep(s) if outage else None)
        with IQMClient(
            srv.url, api="cocos-v1", environ={}, sleep=clock.sleep, monotonic=clock.monotonic
        ) as client:
            client.get_quantum_architecture()
            outage = Outage(srv, DOWN_FOR, **config)
            job_id = client.submit_payload(payload("submit-through-restart"))
            result = client.wait_for_results(job_id, timeout_secs=30)
        assert outage.restarted and result.status is Status.READY
        assert len(outage.server.app.store) == 1
        assert max(outage.sleeps) <= OUTAGE_MAX_BACKOFF
    finally:
        (outage.server if outage else srv).stop()
    REPORT.outcome("submission through a 6.5 s outage", "connection refused", "recovered")
    REPORT.account(submitted=1, completed=1, duplicated=0, lost=0)


def test_a_wait_during_an_endless_outage_ends_at_its_own_timeout(secret_scanner):
    srv = EmbeddedServer("adonis", seed=7, job_delay=30.0).start()
    clock = FakeClock()
    try:
        with IQMClient(
            srv.url, api="cocos-v1", environ={}, sleep=clock.sleep, monotonic=clock.monotonic
        ) as client:
            job_id = client.submit_payload(payload("endless-outage"))
            srv.stop()
            started = clock.monotonic()
            error = expect(
                secret_scanner,
                IQMConnectionError,
                lambda: client.wait_for_results(job_id, timeout_secs=40),
            )
            waited = clock.monotonic() - started
    finally:
        srv.stop()
    assert 40 <= waited < 40 + 10  # the wait's timeout, not a request's retry budget (~4 s)
    assert error.job_id == job_id
    assert "timeout of 40 s" in str(error) and str(job_id) in str(error)
    REPORT.outcome("wait, server never back", "connection refused", "IQMConnectionError at timeout")


def test_5xx_during_a_wait_is_not_fatal(server, proxy, clock):
    """A 500 on status polls and on the result fetch (not retried by one request) is tried
    again by the wait until it gets through."""
    ledger = Ledger(server, "500 on status and result during a wait", "respond 500")
    with make_client(proxy.url, clock, api="cocos-v1") as client:
        job_id = client.submit_payload(payload("five-hundreds"))
        proxy.inject("GET", r"/jobs/[^/]+/status$", respond(500), times=4)
        proxy.inject("GET", r"/jobs/[^/]+$", respond(500), times=3)
        result = client.wait_for_results(job_id, timeout_secs=30)
    assert result.status is Status.READY
    assert proxy.injected[respond(500).name] == 7
    ledger.close("recovered", expected_jobs=1, completed=1)


# -------------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_during_a_wait_aborts_the_job_once(secret_scanner, capsys):
    """A real SIGINT arrives while the sampler blocks in a long-polling status request."""
    from cirq_iqm_ext import IQMSampler

    with (
        EmbeddedServer("adonis", seed=9, job_delay=30.0) as srv,
        FaultProxy(upstream_of(srv.url)) as proxy,
    ):
        ledger = Ledger(srv, "Ctrl-C during a long poll", "SIGINT")
        sampler = IQMSampler(proxy.url, environ={}, progress=False)
        q1, q3 = cirq.NamedQubit("QB1"), cirq.NamedQubit("QB3")
        circuit = cirq.Circuit(cirq.H(q1), cirq.CNOT(q1, q3), cirq.measure(q1, q3, key="m"))
        main = threading.main_thread().ident
        assert main is not None
        timers: list[threading.Timer] = []

        def interrupt_during_long_poll(request: Any) -> None:
            if "wait=" in request.target and not timers:  # the main thread now blocks in recv
                timers.append(threading.Timer(0.2, signal.pthread_kill, (main, signal.SIGINT)))
                timers[0].start()
                REPORT.count_fault("SIGINT")

        proxy.on_request = interrupt_during_long_poll
        try:
            with pytest.raises(KeyboardInterrupt):
                sampler.run(circuit, repetitions=5)
        finally:
            for timer in timers:
                timer.join()
        aborts = [k for k in srv.app.stats if k.endswith("abort")]
        assert sum(srv.app.stats[k] for k in aborts) == 1
        (job_id,) = [uuid.UUID(p.split("/")[2]) for p in proxy.seen if p.endswith("/abort")]
        assert sampler.client.get_run_status(job_id).status is Status.ABORTED  # pool still fine
        sampler.close()
        err = capsys.readouterr().err
        secret_scanner.collect(err)
        assert f"aborted IQM job {job_id}" in err
        ledger.close("KeyboardInterrupt, job aborted once", expected_jobs=1, completed=1)


# -------------------------------------------------------------------------------- load


LOAD_FAULTS = [
    RESET_BEFORE,
    RESET_AFTER,
    TRUNCATE,
    respond(502),
    respond(503, Retry_After="0"),
    respond(504),
    respond(429),
    respond(429, Retry_After="0.05", label="429 + Retry-After"),
    Fault("delay", delay=1.5, label="slow > timeout"),
]


def test_load_50_clients_20_jobs_5_percent_faults(secret_scanner):
    """1,000 jobs from 50 concurrent clients through the proxy with 5% of requests faulted:
    every job is accounted for exactly once."""
    clients, jobs_each = 50, 20
    policy = RetryPolicy(max_attempts=8, base_delay=0.02, max_delay=0.2, max_total_seconds=30)
    with (
        EmbeddedServer("adonis", seed=21, token=TOKEN) as srv,
        FaultProxy(upstream_of(srv.url)) as proxy,
    ):
        secret_scanner.add_secret(TOKEN)
        proxy.inject_randomly(0.05, LOAD_FAULTS, seed=2024)
        errors: list[BaseException] = []

        def worker(index: int) -> list[tuple[str, uuid.UUID]]:
            done = []
            with IQMClient(
                proxy.url,
                token=TOKEN,
                environ={},
                retry_policy=policy,
                timeout=1.0,
                seconds_between_calls=0.05,
                idempotent_submissions=True,
            ) as client:
                for j in range(jobs_each):
                    name = f"load-{index}-{j}"
                    try:
                        job_id = client.submit_payload(payload(name, shots=4))
                        result = client.wait_for_results(job_id, timeout_secs=60)
                    except IQMError as error:  # counted as lost below
                        errors.append(error)
                        secret_scanner.exception(error)
                        continue
                    assert result.status is Status.READY
                    done.append((name, job_id))
            return done

        started = time.monotonic()
        with ThreadPoolExecutor(clients) as pool:
            finished = [pair for part in pool.map(worker, range(clients)) for pair in part]
        elapsed = time.monotonic() - started
        secret_scanner.add_secret(*proxy.secrets)
        store = srv.app.store
        names = [store.get_job(job_id).request.circuits[0].name for _, job_id in finished]
        assert names == [name for name, _ in finished]  # each id is that client's own job
        expected = clients * jobs_each
        duplicated = len(store) - len(set(names))
        lost = expected - len(set(names))
        REPORT.outcome(
            f"load: {clients} clients x {jobs_each} jobs in {elapsed:.1f} s",
            "5% random faults",
            f"{len(finished)} completed, {len(errors)} errors",
        )
        REPORT.account(
            submitted=expected, completed=len(finished), duplicated=duplicated, lost=lost
        )
        assert errors == []
        assert duplicated == 0 and lost == 0
        assert sum(proxy.injected.values()) > 0.03 * len(proxy.seen)


# -------------------------------------------------------------------------------- decisions


def test_an_advertised_dedup_makes_ambiguous_submissions_repeatable(secret_scanner):
    """Without ``idempotent_submissions``, a brand-new client learns whether the server
    deduplicates before its first ``POST jobs`` (from the architecture it needs anyway), so the
    very first ambiguous submission is repeated with its key (``IQM-Idempotency-Keys`` seen)."""
    import httpx

    from cirq_iqm_ext.wire.protocol import IDEMPOTENCY_SUPPORT_HEADER as IDEMPOTENCY_HEADER

    posts: list[str] = []
    gets: list[str] = []
    job = uuid.uuid4()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            gets.append(request.url.path)
            return httpx.Response(
                404, json={"detail": "nothing"}, headers={IDEMPOTENCY_HEADER: "1"}
            )
        posts.append(request.headers["Idempotency-Key"])
        if len(posts) == 1:  # the first attempt's answer is lost
            raise httpx.ReadError("connection reset by peer", request=request)
        return httpx.Response(201, json={"id": str(job)})

    clock = FakeClock()
    transport = httpx.MockTransport(handler)
    with make_client("http://127.0.0.1:9", clock, api="cocos-v1", transport=transport) as client:
        assert client.submit_payload(payload("x")) == job
    assert gets == ["/quantum-architecture"]  # asked once, before the submission
    assert len(posts) == 2 and posts[0] == posts[1]  # repeated with the same key
    REPORT.outcome("advertised dedup (MockTransport)", "ReadError on POST", "recovered at once")


def test_a_server_without_dedup_makes_the_first_ambiguous_submission_uncertain(secret_scanner):
    """A server that answers without the header does not deduplicate: the ambiguous first
    submission is not repeated blindly, the error carries the key."""
    import httpx

    posts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(404, json={"detail": "nothing"})
        posts.append(request.headers["Idempotency-Key"])
        raise httpx.ReadError("connection reset by peer", request=request)

    clock = FakeClock()
    transport = httpx.MockTransport(handler)
    with make_client("http://127.0.0.1:9", clock, api="cocos-v1", transport=transport) as client:
        error = expect(
            secret_scanner, JobSubmissionUncertainError, lambda: client.submit_payload(payload("y"))
        )
    assert posts == [error.idempotency_key]


@pytest.mark.parametrize("fault", [RESET_AFTER, TRUNCATE, respond(502)], ids=lambda f: f.name)
def test_first_request_of_a_new_client_is_an_ambiguous_submission(server, proxy, fault):
    """Issue 19 item 5: the first request of a brand-new client (default settings) is
    ``POST jobs`` and its answer is lost after the server acted: exactly one job, and the client
    has its id (it learnt that the server deduplicates before it submitted)."""
    ledger = Ledger(server, "first request of a new client is POST jobs", fault.name)
    proxy.inject("POST", r"/jobs$", fault)
    clock = FakeClock()
    with make_client(proxy.url, clock, timeout=5.0) as client:
        job_id = run_job(client, f"first-request-{fault.name}")
    assert proxy.seen.count("POST /jobs") == 2
    assert (
        server.app.store.get_job(job_id).request.circuits[0].name == f"first-request-{fault.name}"
    )
    ledger.close("recovered (dedup known before the first POST)", expected_jobs=1, completed=1)


@pytest.mark.parametrize("fault", [RESET_AFTER, respond(502)], ids=lambda f: f.name)
def test_first_submission_on_the_iqm_server_api_is_deduplicated(server, proxy, fault):
    """The same on the IQM Server API: its answers say that ``POST jobs`` deduplicates, so a
    brand-new client's lost first answer is resent with its key and makes one job."""
    ledger = Ledger(server, "first submission on the IQM Server API", fault.name)
    proxy.inject("POST", r"/api/v1/jobs/adonis/circuit$", fault)
    clock = FakeClock()
    with make_client(
        proxy.url, clock, timeout=5.0, api="iqm-server", quantum_computer="adonis"
    ) as client:
        circuit = Circuit("first-iqm", (Instruction("measure", ("QB1",), {"key": "m"}),))
        job_id = client.submit_circuits([circuit], shots=10)
        result = client.wait_for_results(job_id, timeout_secs=30)
    assert result.status is Status.READY
    posts = [line for line in proxy.seen if line.startswith("POST /api/v1/jobs")]
    assert len(posts) == 2, proxy.seen
    ledger.close("recovered (dedup known before the first POST)", expected_jobs=1, completed=1)


# -------------------------------------------------------------------------------- kill under load


class ServeProcess:
    """``cirq-iqm-ext serve`` in its own process on a fixed port and state dir, to SIGKILL."""

    def __init__(self, port: int, state_dir: str) -> None:
        self.argv = [
            sys.executable,
            "-m",
            "cirq_iqm_ext",
            "serve",
            "--port",
            str(port),
            "--state-dir",
            state_dir,
            "--seed",
            "3",
            "--noise",
            "none",
            "--job-delay",
            "0.02",  # one worker: 200 jobs queue up, so some are pending at the kill
        ]
        self.process = self._start()

    def _start(self) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert process.stdout is not None
        line = process.stdout.readline()  # "Serving IQM API on http://127.0.0.1:PORT"
        assert line.startswith("Serving IQM API on"), line
        return process

    def _reap(self) -> None:
        self.process.wait(30)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def kill_and_restart(self, down_for: float) -> None:
        self.process.send_signal(signal.SIGKILL)
        self._reap()
        time.sleep(down_for)
        self.process = self._start()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self._reap()
        except subprocess.TimeoutExpired:
            self.process.kill()
            self._reap()


def jobs_in_state_dir(state_dir: str) -> dict[str, str]:
    """Job id -> circuit name of every job the server's database holds."""
    with contextlib.closing(sqlite3.connect(f"{state_dir}/jobs.sqlite3")) as db:
        rows = db.execute("SELECT id, request FROM jobs").fetchall()
    return {job_id: json.loads(request)["circuits"][0]["name"] for job_id, request in rows}


def test_load_20_clients_10_jobs_faults_and_a_sigkill_restart(tmp_path, secret_scanner):
    """Issue 19: 200 jobs from 20 clients through 5% injected faults, and the server SIGKILLed
    and restarted on its state dir mid-run: every job a client was told about ends with its
    results, no job at the server is unknown to its client, none is duplicated."""
    clients, jobs_each = 20, 10
    expected = clients * jobs_each
    # Long enough a budget for a submission to outlast the restart (a few seconds).
    policy = RetryPolicy(max_attempts=60, base_delay=0.05, max_delay=0.5, max_total_seconds=45)
    port, state_dir = free_port(), str(tmp_path)
    server = ServeProcess(port, state_dir)
    told: dict[str, uuid.UUID] = {}  # circuit name -> the job id its client was given
    done: dict[str, uuid.UUID] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()
    killed = threading.Event()

    def worker(index: int) -> None:
        with (
            warnings.catch_warnings(),  # re-run jobs say so as warnings: expected here
            IQMClient(
                proxy.url,
                environ={},
                retry_policy=policy,
                timeout=2.0,
                seconds_between_calls=0.05,
                idempotent_submissions=True,
            ) as client,
        ):
            warnings.simplefilter("ignore")
            for j in range(jobs_each):
                name = f"kill-{index}-{j}"
                try:
                    job_id = client.submit_payload(payload(name, shots=4))
                    with lock:
                        told[name] = job_id
                    result = client.wait_for_results(job_id, timeout_secs=60)
                except IQMError as error:
                    errors.append(error)
                    secret_scanner.exception(error)
                    continue
                assert result.status is Status.READY and len(result.measurements[0]["m"]) == 4
                with lock:
                    done[name] = job_id

    def killer() -> None:
        while len(told) < expected // 3:
            time.sleep(0.01)
        server.kill_and_restart(down_for=0.5)
        REPORT.count_fault("server SIGKILLed and restarted (state dir)")
        killed.set()

    started = time.monotonic()
    with FaultProxy(("127.0.0.1", port)) as proxy:
        proxy.inject_randomly(0.05, LOAD_FAULTS, seed=1919)
        kill_thread = threading.Thread(target=killer, daemon=True)
        kill_thread.start()
        try:
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(worker, range(clients)))
        finally:
            kill_thread.join(60)
            server.stop()
        secret_scanner.add_secret(*proxy.secrets)
        faulted = sum(proxy.injected.values())
        seen = len(proxy.seen)
    elapsed = time.monotonic() - started
    at_server = jobs_in_state_dir(state_dir)
    names = list(at_server.values())
    duplicated = len(names) - len(set(names))
    known_ids = {str(job_id) for job_id in told.values()}
    orphaned = sum(job_id not in known_ids for job_id in at_server)
    lost = sum(name not in done for name in told)
    REPORT.outcome(
        f"load + SIGKILL: {clients} clients x {jobs_each} jobs in {elapsed:.1f} s",
        "5% faults, 1 SIGKILL restart",
        f"{len(done)} completed, {len(errors)} errors, {orphaned} orphaned",
    )
    REPORT.account(
        submitted=expected, completed=len(done), duplicated=duplicated, lost=lost, orphaned=orphaned
    )
    assert killed.is_set()
    assert errors == []
    assert len(told) == expected and lost == 0
    assert orphaned == 0 and duplicated == 0 and len(at_server) == expected
    assert all(at_server[str(job_id)] == name for name, job_id in told.items())
    assert faulted > 0.03 * seen
