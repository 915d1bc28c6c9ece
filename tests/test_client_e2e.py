"""IQMClient against the project's own server over a real loopback socket."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter

import pytest
from profile_support import aborts, api, current_api, make_client, make_sampler, submissions  # noqa: F401

from cirq_iqm_ext import (
    Circuit,
    CircuitValidationError,
    ClientAuthenticationError,
    Instruction,
    JobAbortionError,
    JobNotFoundError,
    ModelValidationError,
    Status,
)
from cirq_iqm_ext.server import EmbeddedServer
from cirq_iqm_ext.wire.models import TIMESTAMP_KEYS

PASSWORD = "correct-horse-battery-staple"
TOKEN = "static-secret-token-123"


def bell(control: str = "QB1", target: str = "QB3", key: str = "m") -> Circuit:
    ry = {"angle_t": 0.25, "phase_t": 0.25}
    return Circuit(
        "bell",
        (
            Instruction("prx", [control], ry),
            Instruction("prx", [target], ry),
            Instruction("cz", [control, target]),
            Instruction("prx", [target], {"angle_t": 0.25, "phase_t": 0.75}),
            Instruction("measure", [control, target], {"key": key}),
        ),
    )


def counts_of(shots: list[list[int]]) -> Counter[str]:
    return Counter("".join(map(str, shot)) for shot in shots)


@pytest.fixture(scope="module")
def server():
    with EmbeddedServer("adonis", seed=7) as running:
        yield running


@pytest.fixture(scope="module")
def slow_server():
    with EmbeddedServer("adonis", seed=7, job_delay=30.0) as running:
        yield running


@pytest.fixture
def client(server):
    with make_client(server.url, environ={}) as iqm:
        yield iqm


def test_bell_circuit_counts_only_00_and_11(client):
    job_id = client.submit_circuits([bell()], shots=500)
    result = client.wait_for_results(job_id, timeout_secs=30)
    assert result.status is Status.READY
    counts = counts_of(result.measurements[0]["m"])
    assert set(counts) == {"00", "11"}
    assert sum(counts.values()) == 500
    assert min(counts.values()) > 150  # both outcomes, roughly balanced
    assert result.metadata.request.shots == 500
    # v1 reports every step; the IQM Server API's timeline has no submit step. Same order.
    stamps = list(result.metadata.timestamps)
    assert stamps == [key for key in TIMESTAMP_KEYS if key in stamps]
    assert {"job_start", "execution_start", "execution_end", "job_end"} <= set(stamps)


def test_status_and_result_of_a_batch_with_a_qubit_mapping(client):
    circuits = [
        bell("a", "b", key="first"),
        Circuit(
            "x",
            (
                Instruction("prx", ["a"], {"angle_t": 0.5, "phase_t": 0.0}),
                Instruction("measure", ["a"], {"key": "x"}),
            ),
        ),
    ]
    job_id = client.submit_circuits(circuits, shots=50, qubit_mapping={"a": "QB3", "b": "QB5"})
    assert client.get_run_status(job_id).status.value in {
        "pending compilation",
        "pending execution",
        "ready",
    }
    result = client.wait_for_results(job_id)
    assert set(counts_of(result.measurements[0]["first"])) <= {"00", "11"}
    assert counts_of(result.measurements[1]["x"]) == Counter({"1": 50})
    assert result.metadata.request.qubit_mapping_dict == {"a": "QB3", "b": "QB5"}


def test_architecture_matches_the_server(client, server):
    spec = client.get_quantum_architecture()
    assert spec.qubits == server.app.architecture.qubits
    assert spec.has_equivalent_operations(server.app.architecture)
    assert len(spec.loci("cz")) == 4


def test_abort_a_pending_job_then_abort_again_is_refused(slow_server):
    with make_client(slow_server.url, environ={}) as client:
        job_id = client.submit_circuits([bell()], shots=10)
        client.abort_job(job_id)
        result = client.wait_for_results(job_id, timeout_secs=10)
        assert result.status is Status.ABORTED
        if current_api() == "iqm-server":
            client.abort_job(job_id)  # that API answers 200 for a finished job (its §4.3)
            return
        with pytest.raises(JobAbortionError) as info:
            client.abort_job(job_id)
        assert str(job_id) in str(info.value)


def test_unknown_job_is_not_found(client):
    missing = uuid.uuid4()
    with pytest.raises(JobNotFoundError, match=str(missing)):
        client.get_run(missing)
    with pytest.raises(JobNotFoundError):
        client.abort_job(missing)


@pytest.mark.parametrize(
    ("submit", "error"),
    [
        (lambda c: c.submit_circuits([bell("QB1", "QB2")]), CircuitValidationError),
        (lambda c: c.submit_circuits([bell("QB1", "QB9")]), CircuitValidationError),
        (lambda c: c.submit_circuits([bell()], shots=0), ModelValidationError),
        (
            lambda c: c.submit_circuits(
                [
                    Circuit(
                        "c",
                        (
                            Instruction("measure", ["QB1"], {"key": "k"}),
                            Instruction("measure", ["QB3"], {"key": "k"}),
                        ),
                    )
                ]
            ),
            CircuitValidationError,
        ),
    ],
)
def test_bad_input_never_reaches_the_server_as_a_job(server, client, submit, error):
    before = submissions(server)
    with pytest.raises(error):
        submit(client)
    assert submissions(server) == before


def test_server_refuses_what_the_client_would_refuse_with_the_same_message(server):
    with make_client(server.url, environ={}) as client:
        request = client.create_run_request([bell("QB1", "QB2")])
        with pytest.raises(CircuitValidationError) as remote:
            client.submit_run_request(request)  # no client-side check: the server finds it
        with pytest.raises(CircuitValidationError) as local:
            client.submit_run_request(request, validate=True)
    expected = "circuit 0 (\"bell\"), instruction 2: ('QB1', 'QB2') is not an allowed locus for cz"
    assert expected in str(remote.value)
    assert expected in str(local.value)


# ---------------------------------------------------------------- authentication, end to end


@pytest.fixture(scope="module")
def token_server():
    with EmbeddedServer("adonis", seed=1, token=TOKEN) as running:
        yield running


def test_static_token(token_server):
    with make_client(token_server.url, token=TOKEN, environ={}) as client:
        job_id = client.submit_circuits([bell()], shots=5)
        assert client.wait_for_results(job_id).status is Status.READY
    with make_client(token_server.url, environ={"IQM_TOKEN": TOKEN}) as client:
        assert client.get_quantum_architecture().name == "Adonis"


def test_missing_or_wrong_token_is_refused(token_server):
    for kwargs in ({}, {"token": "wrong-token"}):
        with make_client(token_server.url, environ={}, **kwargs) as client:
            with pytest.raises(ClientAuthenticationError) as info:
                client.get_quantum_architecture()
            assert TOKEN not in str(info.value)
            assert "wrong-token" not in str(info.value)


def test_tokens_file(token_server, tmp_path):
    path = tmp_path / "tokens.json"
    path.write_text(
        json.dumps(
            {
                "pid": None,
                "timestamp": "2024-01-01T00:00:00",
                "refresh_status": "SUCCESS",
                "access_token": TOKEN,
                "refresh_token": "unused",
                "auth_server_url": token_server.url,
            }
        )
    )
    path.chmod(0o600)
    with make_client(token_server.url, tokens_file=str(path), environ={}) as client:
        job_id = client.submit_circuits([bell()], shots=5)
        assert client.wait_for_results(job_id).status is Status.READY
    with make_client(token_server.url, environ={"IQM_TOKENS_FILE": str(path)}) as client:
        assert client.get_quantum_architecture().name == "Adonis"


@pytest.fixture(scope="module")
def oidc_server():
    with EmbeddedServer(
        "adonis", seed=1, auth_users={"alice": PASSWORD}, token_lifetime=61.0
    ) as running:
        yield running


def test_password_login_runs_a_job_and_logs_out(oidc_server):
    with make_client(
        oidc_server.url,
        auth_server_url=oidc_server.url,
        username="alice",
        password=PASSWORD,
        environ={},
    ) as client:
        job_id = client.submit_circuits([bell()], shots=5)
        assert client.wait_for_results(job_id).status is Status.READY
        assert client.close_auth_session() is True
        assert PASSWORD not in repr(client)
    env = {
        "IQM_AUTH_SERVER": oidc_server.url,
        "IQM_AUTH_USERNAME": "alice",
        "IQM_AUTH_PASSWORD": PASSWORD,
    }
    with make_client(oidc_server.url, environ=env) as client:
        assert client.get_quantum_architecture().name == "Adonis"


@pytest.mark.parametrize("api", ["cocos-v1"], indirect=True)  # reads v1's architecture cache
def test_expired_token_is_refreshed(oidc_server):
    # Tokens live 61 s (expiry rounded up to whole seconds), so with the 60 s margin a token is
    # renewed at most 2 s after it was issued.
    with make_client(
        oidc_server.url,
        auth_server_url=oidc_server.url,
        username="alice",
        password=PASSWORD,
        environ={},
    ) as client:
        client.get_quantum_architecture()
        before = oidc_server.app.stats["POST realms/cortex/protocol/openid-connect/token"]
        time.sleep(2.1)
        client.clear_cache()  # force a second protected request
        client.get_quantum_architecture()
        after = oidc_server.app.stats["POST realms/cortex/protocol/openid-connect/token"]
    assert after > before  # renewed before use, not after a refused request


def test_wrong_password_is_refused_without_leaking(oidc_server):
    with (
        make_client(
            oidc_server.url,
            auth_server_url=oidc_server.url,
            username="alice",
            password="not-" + PASSWORD,
            environ={},
        ) as client,
        pytest.raises(ClientAuthenticationError) as info,
    ):
        client.get_quantum_architecture()
    assert "alice" in str(info.value)
    assert PASSWORD not in str(info.value)


def test_ipv6_loopback():
    with (
        EmbeddedServer("adonis", host="::1", seed=3) as server,
        make_client(server.url, environ={}) as client,
    ):
        assert server.url.startswith("http://[::1]:")
        job_id = client.submit_circuits([bell()], shots=20)
        assert set(counts_of(client.wait_for_results(job_id).measurements[0]["m"])) <= {"00", "11"}


def test_an_evicted_job_is_not_found_and_says_it_expired():
    # One finished job kept: the second job's completion evicts the first (issue 19).
    with EmbeddedServer("adonis", seed=7, retain_jobs=1) as small, make_client(small.url) as iqm:
        first = iqm.submit_circuits([bell()], shots=20)
        iqm.wait_for_results(first, timeout_secs=30)
        second = iqm.submit_circuits([bell()], shots=20)
        iqm.wait_for_results(second, timeout_secs=30)
        iqm.clear_cache()  # the client may hold the first result; ask the server again
        for read in (iqm.get_run, iqm.get_run_status):
            with pytest.raises(JobNotFoundError, match="has expired") as info:
                read(first)
            assert info.value.job_id == first and "--retain-jobs" in str(info.value)
        started = time.monotonic()
        with pytest.raises(JobNotFoundError, match="has expired"):
            iqm.wait_for_results(first, timeout_secs=60)
        assert time.monotonic() - started < 30  # an expired job ends the wait, never retried
