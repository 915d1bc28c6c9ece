"""A running job reports the circuits executed so far, on both APIs, over loopback.

The simulator is held inside one circuit (an event, not a timer), so the status answer is taken
at a known point of the run: three of five circuits done.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from cirq_iqm_ext.client.iqm_client import IQMClient
from cirq_iqm_ext.server import EmbeddedServer
from cirq_iqm_ext.wire.models import Circuit, Instruction, Status

CIRCUITS = 5
HELD_AT = 3  # the index of the circuit the simulator is held in: 0, 1 and 2 are done


def flip(name: str) -> Circuit:
    return Circuit(
        name,
        (
            Instruction("prx", ("QB1",), {"angle_t": 0.5, "phase_t": 0.0}),
            Instruction("measure", ("QB1",), {"key": "m"}),
        ),
    )


@pytest.fixture
def held_server():
    """A server whose simulator waits, in circuit :data:`HELD_AT`, until ``release`` is set."""
    entered, release = threading.Event(), threading.Event()
    with EmbeddedServer("adonis", seed=1) as server:
        (simulator,) = server.app.core.simulators
        run_circuit = simulator.run_circuit_arrays

        def held(*args: Any, **kwargs: Any) -> Any:
            if kwargs.get("circuit_index") == HELD_AT:
                entered.set()
                assert release.wait(60), "the test never released the simulator"
            return run_circuit(*args, **kwargs)

        simulator.run_circuit_arrays = held  # type: ignore[method-assign]
        try:
            yield server, entered, release
        finally:
            release.set()


@pytest.mark.parametrize("api", ["cocos-v1", "iqm-server"])
def test_a_running_job_reports_circuits_done(held_server, api):
    server, entered, release = held_server
    with IQMClient(server.url, api=api) as client:
        job_id = client.submit_circuits([flip(f"c{k}") for k in range(CIRCUITS)], shots=10)
        assert entered.wait(60)
        running = client.get_run_status(job_id)
        assert running.status is Status.PENDING_EXECUTION
        assert (running.circuits_done, running.circuits_total) == (HELD_AT, CIRCUITS)
        release.set()
        result = client.wait_for_results(job_id, timeout_secs=60)
        assert result.status is Status.READY and len(result.measurements) == CIRCUITS
        done = client.get_run_status(job_id)
        assert done.circuits_done is None and done.circuits_total is None  # only while running


def test_the_wire_forms_of_progress(held_server):
    server, entered, _ = held_server  # the fixture releases the simulator at the end
    with httpx.Client(base_url=server.url, timeout=30) as http:
        body = {"circuits": [flip(f"c{k}").to_dict() for k in range(CIRCUITS)], "shots": 10}
        job_id = http.post("/jobs", json=body).json()["id"]
        assert entered.wait(60)
        v1 = http.get(f"/jobs/{job_id}/status").json()
        assert v1["status"] == "pending execution"
        assert (v1["circuits_done"], v1["circuits_total"]) == (HELD_AT, CIRCUITS)
        job = http.get(f"/api/v1/jobs/{job_id}").json()
        assert job["status"] == "processing"
        circuits = job["execution"]["progress"]["circuits"]  # PROTOCOL_IQM_SERVER.md §4.1
        assert circuits == {"value": HELD_AT, "max_value": CIRCUITS}


@pytest.mark.parametrize("api", ["cocos-v1", "iqm-server"])
def test_a_queued_job_says_how_many_jobs_are_ahead(held_server, api):
    server, entered, release = held_server
    with IQMClient(server.url, api=api) as client:
        running = client.submit_circuits([flip(f"c{k}") for k in range(CIRCUITS)], shots=10)
        assert entered.wait(60)  # the one worker holds the first job
        queued = [client.submit_circuits([flip("q")], shots=10) for _ in range(3)]
        assert [client.get_run_status(j).queue_position for j in queued] == [0, 1, 2]
        assert client.get_run_status(running).queue_position is None  # it runs
        release.set()
        for job_id in (running, *queued):
            assert client.wait_for_results(job_id, timeout_secs=60).status is Status.READY
        assert client.get_run_status(queued[-1]).queue_position is None  # only while queued
