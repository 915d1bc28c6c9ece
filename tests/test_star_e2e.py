"""Star architectures end to end: the sampler compiles for Deneb, sends ``move``, the server runs
it."""

from __future__ import annotations

import cirq
import httpx
import numpy as np
import pytest
import sympy

from cirq_iqm_ext.device.move_gate import MOVE
from cirq_iqm_ext.errors import CircuitValidationError
from cirq_iqm_ext.sampling.sampler import IQMSampler
from cirq_iqm_ext.server import EmbeddedServer
from cirq_iqm_ext.wire.models import Circuit, Instruction

R = cirq.NamedQubit("COMP_R")
QB = {i: cirq.NamedQubit(f"QB{i}") for i in range(1, 7)}


@pytest.fixture(scope="module")
def server():
    with EmbeddedServer("deneb", seed=5) as running:
        yield running


@pytest.fixture
def sampler(server):
    with IQMSampler(server.url, environ={}, progress=False) as iqm:
        yield iqm


def ghz(n: int) -> cirq.Circuit:
    q = cirq.LineQubit.range(n)
    return cirq.Circuit(
        cirq.H(q[0]), *(cirq.CNOT(q[0], q[i]) for i in range(1, n)), cirq.measure(*q, key="m")
    )


def test_ghz_compiles_with_moves_and_runs(sampler):
    result = sampler.run(ghz(5), repetitions=300)
    histogram = result.histogram(key="m")
    assert set(histogram) <= {0, 31} and min(histogram[0], histogram[31]) > 90
    request = sampler.client.get_run(result.job_id).metadata.request
    names = [i.name for i in request.circuits[0].instructions]
    assert names.count("move") >= 2 and names.count("move") % 2 == 0
    assert "COMP_R" in request.qubit_mapping_dict.values()


def test_parameter_sweep_on_deneb(sampler):
    theta = sympy.Symbol("theta")
    a, b = cirq.LineQubit.range(2)
    circuit = cirq.Circuit(cirq.rx(theta).on(a), cirq.CNOT(a, b), cirq.measure(a, b, key="m"))
    results = sampler.run_sweep(circuit, cirq.Points("theta", [0.0, np.pi]), repetitions=100)
    assert set(results[0].histogram(key="m")) == {0}
    assert set(results[1].histogram(key="m")) == {3}


def test_explicit_sandwich_runs_without_compilation(server):
    circuit = cirq.Circuit(
        [cirq.X(QB[2]), MOVE(QB[2], R), cirq.CZ(QB[1], R), MOVE(QB[2], R)],
        cirq.measure(QB[1], QB[2], key="m"),
        strategy=cirq.InsertStrategy.NEW,
    )
    with IQMSampler(server.url, environ={}, progress=False, compile=False) as iqm:
        result = iqm.run(circuit, repetitions=50)
    assert set(result.histogram(key="m")) == {1}  # QB1 = 0, QB2 = 1


def _phase_dependent() -> Circuit:
    # prx on the parked QB2 touches its physical |0>; the result would depend on the MOVE phase.
    return Circuit(
        "bad",
        (
            Instruction("move", ("QB2", "COMP_R")),
            Instruction("prx", ("QB2",), {"angle_t": 0.5, "phase_t": 0.0}),
            Instruction("cz", ("QB1", "COMP_R")),
            Instruction("move", ("QB2", "COMP_R")),
            Instruction("measure", ("QB1", "QB2"), {"key": "m"}),
        ),
    )


def test_phase_dependent_circuit_is_rejected_by_client_and_server(server, sampler):
    expected = (
        "circuit 0 (\"bad\"), instruction 1: Instruction prx acts on ('QB2',) while the state(s) "
        "of {'QB2'} are in a resonator. Current resonator occupation: {'COMP_R': 'QB2'}."
    )
    with pytest.raises(CircuitValidationError) as info:
        sampler.client.submit_circuits([_phase_dependent()], shots=10)
    assert expected in str(info.value)
    with httpx.Client(base_url=server.url) as raw:
        response = raw.post("/jobs", json={"circuits": [_phase_dependent().to_dict()], "shots": 10})
    assert response.status_code == 400
    assert response.json()["detail"] == expected


def test_unclosed_sandwich_is_rejected_by_the_server(server):
    body = {
        "circuits": [
            {
                "name": "open",
                "instructions": [
                    {"name": "move", "qubits": ["QB2", "COMP_R"], "args": {}},
                    {"name": "cz", "qubits": ["QB1", "COMP_R"], "args": {}},
                ],
            }
        ],
        "shots": 10,
    }
    with httpx.Client(base_url=server.url) as raw:
        response = raw.post("/jobs", json=body)
    assert response.status_code == 400
    assert "Circuit ends while qubit state(s) are still in a resonator" in response.text


def test_star_device_through_the_iqm_server_profile():
    q = cirq.LineQubit.range(3)
    ghz = cirq.Circuit(
        cirq.H(q[0]), cirq.CNOT(q[0], q[1]), cirq.CNOT(q[1], q[2]), cirq.measure(*q, key="m")
    )
    with EmbeddedServer("deneb", seed=4) as server:
        with IQMSampler(
            server.url, environ={}, api="iqm-server", quantum_computer="deneb", progress=False
        ) as sampler:
            assert sampler.client.api == "iqm-server"
            assert sampler.device.resonators  # the resonator comes through the DQA
            result = sampler.run(ghz, repetitions=100)
    assert set(result.histogram(key="m")) <= {0, 7}
