"""``IQMClient.delete_job`` and the server's ``DELETE jobs/{id}`` in both APIs.

The IQM Server API (E8) cancels the job if needed and removes it: afterwards every ``jobs/{id}``
path answers 404. The project's v1 server offers the same as an extension, after which the job
reads as ``deleted`` (PROTOCOL_IQM_SERVER.md §9.1); a real CoCoS v1 server has no such endpoint.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from cirq_iqm_ext.client.iqm_client import IQMClient
from cirq_iqm_ext.errors import ClientConfigurationError, JobNotFoundError
from cirq_iqm_ext.server import EmbeddedServer
from cirq_iqm_ext.wire.models import Circuit, Instruction, Status

PROFILES = ("cocos-v1", "iqm-server")


def circuit() -> Circuit:
    return Circuit(
        "one",
        (
            Instruction("prx", ("QB1",), {"angle_t": 0.5, "phase_t": 0.0}),
            Instruction("measure", ("QB1",), {"key": "m"}),
        ),
    )


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer("adonis", seed=4) as running:
        yield running


@pytest.fixture(scope="module")
def slow() -> Iterator[EmbeddedServer]:
    with EmbeddedServer("adonis", seed=4, job_delay=30.0) as running:
        yield running


def test_v1_delete_leaves_the_status_deleted(server):
    with IQMClient(server.url, api="cocos-v1") as client:
        job_id = client.submit_circuits([circuit()], shots=3)
        client.wait_for_results(job_id, 30)
        client.delete_job(job_id)
        assert client.get_run_status(job_id).status == Status.DELETED
        result = client.get_run(job_id)
        assert result.status == Status.DELETED and result.measurements is None
        client.delete_job(job_id)  # deleting again changes nothing
    assert server.app.stats["DELETE jobs/{id}"] == 2


def test_iqm_server_delete_makes_the_job_disappear(server):
    with IQMClient(server.url, api="iqm-server") as client:
        job_id = client.submit_circuits([circuit()], shots=3)
        client.wait_for_results(job_id, 30)
        client.delete_job(job_id)
        for read in (client.get_run_status, client.get_run, client.get_run_counts):
            with pytest.raises(JobNotFoundError, match=str(job_id)):
                read(job_id)
        with pytest.raises(JobNotFoundError, match="deleted"):
            client.delete_job(job_id)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for path in (
            "",
            "/payload",
            "/artifacts/measurements",
            "/artifacts/measurement_counts",
        ):
            response = http.get(f"/api/v1/jobs/{job_id}{path}")
            assert response.status_code == 404, path
            assert response.json()["error_code"] == "not_found"
        assert http.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 404
        # The v1 view of the same store still names the job, as deleted.
        assert http.get(f"/jobs/{job_id}/status").json()["status"] == "deleted"


@pytest.mark.parametrize("api", PROFILES)
def test_deleting_a_pending_job_stops_it(slow, api):
    with IQMClient(slow.url, api=api) as client:
        job_id = client.submit_circuits([circuit()], shots=3)
        client.delete_job(job_id)
    job = slow.app.store.get_job(job_id)
    assert job.status == Status.DELETED and job.measurements is None
    assert job.wake.is_set()  # a worker waiting through the job delay gives up at once


@pytest.mark.parametrize("api", PROFILES)
def test_deleting_an_unknown_job_is_job_not_found(server, api):
    unknown = uuid.uuid4()
    with (
        IQMClient(server.url, api=api) as client,
        pytest.raises(JobNotFoundError) as info,
    ):
        client.delete_job(unknown)
    assert str(unknown) in str(info.value)


def test_a_server_without_delete_is_a_configuration_error():
    def no_delete(request: httpx.Request) -> httpx.Response:
        return httpx.Response(405, json={"detail": "Method Not Allowed"})

    job_id = uuid.uuid4()
    transport = httpx.MockTransport(no_delete)
    with (
        IQMClient("https://cocos.example", api="cocos-v1", transport=transport) as client,
        pytest.raises(ClientConfigurationError, match="does not support deleting jobs"),
    ):
        client.delete_job(job_id)


def test_the_store_keeps_deleted_jobs_deleted_across_a_restart(tmp_path):
    with EmbeddedServer("adonis", seed=1, state_dir=tmp_path) as first:
        with IQMClient(first.url, api="cocos-v1") as client:
            job_id = client.submit_circuits([circuit()], shots=2)
            client.wait_for_results(job_id, 30)
            client.delete_job(job_id)
    with EmbeddedServer("adonis", seed=1, state_dir=tmp_path) as second:
        assert second.app.store.get_job(job_id).status == Status.DELETED
        with IQMClient(second.url, api="iqm-server") as client:
            with pytest.raises(JobNotFoundError):
                client.get_run_status(job_id)
