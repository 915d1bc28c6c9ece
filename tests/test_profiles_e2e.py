"""The client and the sampler end to end over both protocol profiles, on a real loopback socket.

Every scenario runs once with ``api="cocos-v1"`` and once with ``api="iqm-server"`` against the
project's server, which serves both APIs from one job store; a job submitted through one profile
is read through the other, and the same seed gives the same results through either.
"""

from __future__ import annotations

import uuid

import cirq
import numpy as np
import pytest
import sympy

from cirq_iqm_ext import (
    APITimeoutError,
    Circuit,
    CircuitValidationError,
    ClientConfigurationError,
    Instruction,
    IQMClient,
    JobNotFoundError,
    Status,
)
from cirq_iqm_ext.sampling.sampler import IQMSampler
from cirq_iqm_ext.server import EmbeddedServer

APIS = ["cocos-v1", "iqm-server"]
THETA = sympy.Symbol("theta")


def bell(control: str = "QB1", target: str = "QB3") -> Circuit:
    ry = {"angle_t": 0.25, "phase_t": 0.25}
    return Circuit(
        "bell",
        (
            Instruction("prx", [control], ry),
            Instruction("prx", [target], ry),
            Instruction("cz", [control, target]),
            Instruction("prx", [target], {"angle_t": 0.25, "phase_t": 0.75}),
            Instruction("measure", [control], {"key": "a"}),
            Instruction("measure", [target], {"key": "b"}),
        ),
        {"note": "kept"},
    )


@pytest.fixture(scope="module")
def server():
    with EmbeddedServer("adonis", seed=7) as running:
        yield running


@pytest.fixture(scope="module")
def slow_server():
    with EmbeddedServer("adonis", seed=7, job_delay=30.0) as running:
        yield running


@pytest.fixture(params=APIS)
def api(request) -> str:
    return request.param


@pytest.fixture
def client(server, api):
    with IQMClient(server.url, api=api, environ={}) as iqm:
        yield iqm


def test_bell_job_round_trip(client, api):
    assert client.api == api
    job_id = client.submit_circuits([bell()], shots=300)
    result = client.wait_for_results(job_id, timeout_secs=30)
    assert result.status is Status.READY
    a, b = (np.asarray(result.measurements[0][k]) for k in ("a", "b"))
    assert a.shape == b.shape == (300, 1)
    assert np.array_equal(a, b)  # a Bell pair
    request = result.metadata.request
    assert request.shots == 300
    assert request.circuits[0] == bell()  # echoed in v1 form and turns, metadata included
    assert result.metadata.calibration_set_id is not None
    assert {"job_start", "compile_start", "execution_end", "job_end"} <= set(
        result.metadata.timestamps
    )
    counts = client.get_run_counts(job_id)
    assert counts["status"] == "ready"
    assert counts["counts_batch"][0]["measurement_keys"] == ["a", "b"]
    assert set(counts["counts_batch"][0]["counts"]) <= {"00", "11"}
    assert sum(counts["counts_batch"][0]["counts"].values()) == 300
    assert client.get_run_status(job_id).status is Status.READY


def test_architecture_is_the_same_through_both_profiles(server):
    with (
        IQMClient(server.url, api="cocos-v1", environ={}) as v1,
        IQMClient(server.url, api="iqm-server", environ={}) as new,
    ):
        old_arch, new_arch = v1.get_quantum_architecture(), new.get_quantum_architecture()
        assert new_arch.name == old_arch.name == "Adonis"
        assert set(new_arch.qubits) == set(old_arch.qubits)
        assert new_arch.has_equivalent_operations(old_arch)
        dynamic = new.get_dynamic_quantum_architecture(new_arch.calibration_set_id)
        assert dynamic.calibration_set_id == new_arch.calibration_set_id


def test_server_side_validation_error(client):
    request = client.create_run_request([bell("QB1", "QB2")])  # QB1-QB2 is not coupled
    with pytest.raises(CircuitValidationError, match=r"circuit 0 \(\"bell\"\), instruction 2"):
        client.submit_run_request(request)


def test_unknown_job(client):
    with pytest.raises(JobNotFoundError, match="not found"):
        client.get_run(uuid.uuid4())


def test_abort_and_timeout_on_a_pending_job(slow_server, api):
    with IQMClient(slow_server.url, api=api, environ={}) as client:
        job_id = client.submit_circuits([bell()], shots=10)
        with pytest.raises(APITimeoutError, match="still"):
            client.wait_for_results(job_id, timeout_secs=0.2)
        # Compiling is "processing" in the IQM Server API, which v1 calls "pending execution".
        assert client.get_run_status(job_id).status in (
            Status.PENDING_COMPILATION,
            Status.PENDING_EXECUTION,
        )
        client.abort_job(job_id)
        assert client.get_run_status(job_id).status is Status.ABORTED
        assert client.get_run_counts(job_id)["counts_batch"] is None


def test_a_job_reads_the_same_through_the_other_profile(server):
    with (
        IQMClient(server.url, api="cocos-v1", environ={}) as v1,
        IQMClient(server.url, api="iqm-server", environ={}) as new,
    ):
        for submitter, reader in ((v1, new), (new, v1)):
            job_id = submitter.submit_circuits([bell()], shots=50)
            mine = submitter.wait_for_results(job_id, timeout_secs=30)
            theirs = reader.wait_for_results(job_id, timeout_secs=30)
            for key in ("a", "b"):
                assert np.array_equal(
                    np.asarray(mine.measurements[0][key]), np.asarray(theirs.measurements[0][key])
                )
            assert theirs.metadata.request.circuits == mine.metadata.request.circuits
            assert theirs.metadata.calibration_set_id == mine.metadata.calibration_set_id
            assert (
                reader.get_run_counts(job_id)["counts_batch"]
                == (submitter.get_run_counts(job_id)["counts_batch"])
            )


def _sampler_results(api: str) -> tuple[list[np.ndarray], np.ndarray]:
    with (
        EmbeddedServer("adonis", seed=3) as server,
        IQMSampler(server.url, api=api, environ={}, progress=False, seed=1) as sampler,
    ):
        q = cirq.LineQubit.range(3)
        ghz = cirq.Circuit(
            cirq.H(q[0]), cirq.CNOT(q[0], q[1]), cirq.CNOT(q[1], q[2]), cirq.measure(*q, key="m")
        )
        rotation = cirq.Circuit(cirq.rx(THETA).on(q[0]), cirq.measure(q[0], key="x"))
        sweep = sampler.run_sweep(rotation, cirq.Linspace(THETA, 0, np.pi, 3), repetitions=100)
        assert [r.params.value_of(THETA) for r in sweep] == [0.0, np.pi / 2, np.pi]
        assert sweep[0].job_id is not None and sweep[0].calibration_set_id is not None
        one = sampler.run(ghz, repetitions=200)
        assert set(one.histogram(key="m")) <= {0, 7}
        return [r.measurements["x"] for r in sweep], one.measurements["m"]


def test_sampler_gives_identical_results_through_both_profiles():
    (v1_sweep, v1_ghz), (new_sweep, new_ghz) = map(_sampler_results, APIS)
    assert v1_sweep[0].sum() == 0 and v1_sweep[2].sum() == 100
    for old, new in zip(v1_sweep, new_sweep, strict=True):
        assert np.array_equal(old, new)
    assert np.array_equal(v1_ghz, new_ghz)
    assert v1_ghz.dtype == new_ghz.dtype


def test_auto_detection_and_environment(server):
    with IQMClient(server.url, environ={}) as auto:
        assert "api='auto'" in repr(auto)  # no request before first use
        assert auto.api == "cocos-v1"  # the server serves both and says so: v1's extras win
        assert "api='cocos-v1'" in repr(auto)
    env = {"IQM_SERVER_URL": server.url, "IQM_QUANTUM_COMPUTER": "adonis"}
    with IQMClient(environ=env) as auto:
        assert auto.api == "iqm-server"  # asked for a quantum computer by alias
        assert repr(auto).startswith(
            f"IQMClient({server.url!r}, api='iqm-server', quantum_computer='adonis'"
        )
        job_id = auto.submit_circuits([bell()], shots=20)
        assert auto.wait_for_results(job_id, timeout_secs=30).status is Status.READY
    with (
        IQMClient(server.url, quantum_computer="deneb", environ={}) as wrong,
        pytest.raises(ClientConfigurationError, match=r'"deneb" does not exist.*adonis'),
    ):
        _ = wrong.api
    with pytest.raises(ClientConfigurationError, match="IQM_SERVER_URL"):
        IQMClient(environ={})
