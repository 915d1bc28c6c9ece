"""IQMSampler end to end against the project's server over a real loopback socket."""

from __future__ import annotations

import io
import sys

import cirq
import httpx
import numpy as np
import pytest
import sympy
from profile_support import aborts, api, current_api, make_client, make_sampler, submissions  # noqa: F401

from cirq_iqm_ext import APITimeoutError, CircuitExecutionError
from cirq_iqm_ext.device.builtin import Adonis, Apollo
from cirq_iqm_ext.errors import CircuitValidationError, ClientConfigurationError
from cirq_iqm_ext.sampling.job import JobAbortedError
from cirq_iqm_ext.sampling.results import IQMResult
from cirq_iqm_ext.server import EmbeddedServer

THETA = sympy.Symbol("theta")
PHI = sympy.Symbol("phi")


@pytest.fixture(scope="module")
def server():
    with EmbeddedServer("apollo", seed=11) as running:
        yield running


@pytest.fixture
def sampler(server):
    with make_sampler(server.url, environ={}, progress=False) as iqm:
        yield iqm


def ghz(n: int) -> cirq.Circuit:
    q = cirq.LineQubit.range(n)
    return cirq.Circuit(
        cirq.H(q[0]), *(cirq.CNOT(q[i], q[i + 1]) for i in range(n - 1)), cirq.measure(*q, key="m")
    )


def test_run_on_logical_qubits_uses_a_qubit_mapping(server, sampler):
    result = sampler.run(ghz(4), repetitions=200)
    assert isinstance(result, IQMResult)
    assert set(result.histogram(key="m")) <= {0, 15}
    assert result.measurements["m"].shape == (200, 4)
    assert result.measurements["m"].dtype == np.int8
    assert set(result.initial_mapping) == {"q(0)", "q(1)", "q(2)", "q(3)"}
    assert result.job_id is not None and result.calibration_set_id is not None
    assert "job_end" in result.timestamps
    request = sampler.client.get_run(result.job_id).metadata.request
    assert request.qubit_mapping_dict is not None
    assert set(request.qubit_mapping_dict) >= {"q(0)", "q(1)", "q(2)", "q(3)"}


def rotation_circuit() -> cirq.Circuit:
    q = cirq.LineQubit.range(2)
    return cirq.Circuit(
        cirq.rx(THETA).on(q[0]),
        cirq.ry(PHI).on(q[1]),
        cirq.CZ(*q),
        cirq.measure(q[0], key="a"),
        cirq.measure(q[1], key="b"),
    )


@pytest.mark.parametrize(
    "sweep",
    [
        cirq.Linspace(THETA, 0, np.pi, 5) * cirq.Points(PHI, [0.0]),
        cirq.Points(THETA, [0.0, np.pi]) * cirq.Points(PHI, [0.0, np.pi]),
        cirq.Zip(cirq.Linspace(THETA, 0, np.pi, 3), cirq.Linspace(PHI, np.pi, 0, 3)),
        [{"theta": np.pi, "phi": 0.0}, {"theta": 0.0, "phi": np.pi}],
    ],
    ids=["linspace", "product", "zip", "dicts"],
)
def test_sweeps_are_one_job_with_one_result_per_point_in_order(server, sampler, sweep):
    before = submissions(server)
    results = sampler.run_sweep(rotation_circuit(), sweep, repetitions=400)
    assert submissions(server) == before + 1
    resolvers = list(cirq.to_resolvers(sweep))
    assert len(results) == len(resolvers)
    for result, resolver in zip(results, resolvers, strict=True):
        theta, phi = float(resolver.value_of(THETA)), float(resolver.value_of(PHI))
        assert result.params.value_of(THETA) == pytest.approx(theta)
        # P(1) = sin²(angle/2) for each qubit independently (CZ does not change Z populations).
        for key, angle in (("a", theta), ("b", phi)):
            observed = result.measurements[key].mean()
            assert observed == pytest.approx(np.sin(angle / 2) ** 2, abs=0.1)


def test_a_100_point_sweep_makes_exactly_one_post(server, sampler):
    before = submissions(server)
    results = sampler.run_sweep(
        rotation_circuit(),
        cirq.Linspace(THETA, 0, 1, 100) * cirq.Points(PHI, [0.5]),
        repetitions=10,
    )
    assert len(results) == 100
    assert submissions(server) == before + 1
    assert len({r.job_id for r in results}) == 1


def test_max_circuits_per_job_splits_and_keeps_order(server):
    with make_sampler(server.url, environ={}, max_circuits_per_job=3, progress=False) as sampler:
        before = submissions(server)
        sweep = cirq.Points(THETA, [0.0, np.pi] * 4) * cirq.Points(PHI, [0.0])
        results = sampler.run_sweep(rotation_circuit(), sweep, repetitions=50)
    assert submissions(server) == before + 3
    assert [int(r.measurements["a"].mean().round()) for r in results] == [0, 1] * 4
    assert len({r.job_id for r in results}) == 3


def test_run_batch_with_mixed_repetitions(server, sampler):
    before = submissions(server)
    results = sampler.run_batch(
        [ghz(3), rotation_circuit(), ghz(2)],
        [None, cirq.Points(THETA, [0.0, np.pi]) * cirq.Points(PHI, [0.0]), None],
        repetitions=[30, 40, 30],
    )
    assert submissions(server) == before + 2  # one job per repetition count
    assert [len(r) for r in results] == [1, 2, 1]
    assert results[0][0].repetitions == 30 and results[1][1].repetitions == 40
    assert set(results[0][0].histogram(key="m")) <= {0, 7}
    assert set(results[2][0].histogram(key="m")) <= {0, 3}
    assert results[1][1].measurements["a"].mean() == 1.0


def test_compile_once_per_program(sampler):
    program = rotation_circuit()
    first = sampler.prepare(program)
    assert sampler.prepare(program) is first
    assert sampler.prepare(program.copy()) is first  # equal programs share the cache entry


def test_native_program_on_device_qubits_with_compile_false(server):
    q1, q2 = cirq.NamedQubit("QB1"), cirq.NamedQubit("QB2")
    native = cirq.Circuit(
        cirq.PhasedXPowGate(exponent=1.0, phase_exponent=0.0).on(q1),
        cirq.CZ(q1, q2),
        cirq.measure(q1, q2, key="m"),
    )
    with make_sampler(server.url, environ={}, compile=False, progress=False) as sampler:
        result = sampler.run(native, repetitions=20)
        assert result.histogram(key="m") == {2: 20}
        with pytest.raises(CircuitValidationError):
            sampler.run(cirq.Circuit(cirq.H(q1), cirq.measure(q1, key="m")))
        with pytest.raises(ClientConfigurationError, match="compile=True"):
            sampler.run(ghz(2))


def test_inverted_measurements_are_flipped_back(sampler):
    q = cirq.LineQubit.range(2)
    circuit = cirq.Circuit(cirq.X(q[0]), cirq.measure(*q, key="m", invert_mask=(True, True)))
    assert sampler.run(circuit, repetitions=10).histogram(key="m") == {1: 10}


@pytest.mark.parametrize("seed", range(4))
def test_histograms_match_the_exact_distribution(sampler, seed):
    qubits = cirq.LineQubit.range(4)
    circuit = cirq.testing.random_circuit(qubits, n_moments=8, op_density=0.8, random_state=seed)
    circuit.append(cirq.measure(*qubits, key="m"))
    shots = 4000
    result = sampler.run(circuit, repetitions=shots)
    probabilities = np.abs(cirq.final_state_vector(circuit[:-1], qubit_order=qubits)) ** 2
    observed = (
        np.bincount(
            [int("".join(map(str, row)), 2) for row in result.measurements["m"]], minlength=16
        )
        / shots
    )
    tvd = 0.5 * np.abs(observed - probabilities).sum()
    # E[TVD] <= sqrt(K / N) / 2 for K outcomes; allow a generous 2x margin.
    assert tvd < np.sqrt(16 / shots)


def test_sample_and_expectation_values_come_for_free(sampler):
    q = cirq.LineQubit(0)
    circuit = cirq.Circuit(cirq.ry(THETA).on(q))
    values = sampler.sample_expectation_values(
        circuit, [cirq.Z(q)], num_samples=2000, params=cirq.Points(THETA, [0.0, np.pi])
    )
    assert values[0][0] == pytest.approx(1.0, abs=0.05)
    assert values[1][0] == pytest.approx(-1.0, abs=0.05)
    frame = sampler.sample(rotation_circuit(), repetitions=5, params={"theta": np.pi, "phi": 0.0})
    assert list(frame["a"]) == [1] * 5


def test_run_batch_async_overlaps_under_duet(sampler):
    import duet

    async def both():
        return await duet.pstarmap_async(
            sampler.run_sweep_async,
            [(ghz(2), None, 10), (ghz(3), None, 10)],
        )

    results = duet.run(both)
    assert [len(r) for r in results] == [1, 1]
    assert set(results[1][0].histogram(key="m")) <= {0, 7}


def test_results_round_trip_through_cirq_json(sampler):
    from cirq_iqm_ext.json_resolver import json_resolver

    result = sampler.run(ghz(2), repetitions=16)
    text = cirq.to_json(result)
    back = cirq.read_json(json_text=text, resolvers=[json_resolver, *cirq.DEFAULT_RESOLVERS])
    assert back == result
    assert back.job_id == result.job_id


def test_resume_by_job_id_from_another_sampler(server, sampler):
    job = sampler.submit(
        rotation_circuit(), cirq.Points(THETA, [np.pi]) * cirq.Points(PHI, [0]), repetitions=25
    )
    with make_sampler(server.url, environ={}, progress=False) as other:
        results = other.get_job(job.job_id).result()
    assert len(results) == 1
    assert results[0].params.value_of(THETA) == pytest.approx(np.pi)
    assert results[0].measurements["a"].mean() == 1.0
    assert results[0].initial_mapping == job.result()[0].initial_mapping


def test_failed_job_raises_with_the_job_id():
    with (
        EmbeddedServer("apollo", seed=1, max_block_qubits=2) as small,
        make_sampler(small.url, environ={}, progress=False) as sampler,
    ):
        with pytest.raises(CircuitExecutionError) as info:
            sampler.run(ghz(3), repetitions=5)
    assert info.value.job_id is not None
    assert str(info.value.job_id) in str(info.value)


@pytest.fixture(scope="module")
def slow_server():
    with EmbeddedServer("adonis", seed=1, job_delay=30.0) as running:
        yield running


def test_aborted_job_and_timed_out_wait(slow_server):
    with make_sampler(
        slow_server.url, environ={}, run_sweep_timeout=0.3, progress=False
    ) as sampler:
        with pytest.raises(APITimeoutError) as info:
            sampler.run(ghz(2), repetitions=5)
        assert "still" in str(info.value)
        job = sampler.get_job(info.value.job_id)
        job.abort()
        with pytest.raises(JobAbortedError, match=str(info.value.job_id)):
            job.result(timeout=5)


class InterruptingTransport(httpx.BaseTransport):
    """A real HTTP transport that raises KeyboardInterrupt on the second status poll."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.polls = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        # A status poll: v1's jobs/{id}/status, or the IQM Server API's GET jobs/{id}.
        if path.endswith("/status") or (request.method == "GET" and "/api/v1/jobs/" in path):
            self.polls += 1
            if self.polls == 2:
                raise KeyboardInterrupt
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_ctrl_c_while_waiting_aborts_the_job_once(slow_server, monkeypatch):
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    with make_sampler(
        slow_server.url, environ={}, transport=InterruptingTransport(), progress=False
    ) as sampler:
        before = aborts(slow_server)
        with pytest.raises(KeyboardInterrupt):
            sampler.run(ghz(2), repetitions=5)
        assert aborts(slow_server) == before + 1
    assert "Interrupted: aborted IQM job" in stderr.getvalue()


def test_bad_arguments(sampler):
    with pytest.raises(ClientConfigurationError, match="repetitions must be a positive integer"):
        sampler.run(ghz(2), repetitions=0)
    with pytest.raises(ValueError, match="no value"):
        sampler.run(rotation_circuit(), repetitions=1)
    with pytest.raises(ClientConfigurationError, match="max_circuits_per_job"):
        make_sampler("http://127.0.0.1:1", max_circuits_per_job=0, environ={})
    with pytest.raises(ClientConfigurationError, match="heralding_mode"):
        make_sampler("http://127.0.0.1:1", heralding_mode="ones", environ={})


def test_device_is_fetched_lazily_and_given_devices_are_used(server):
    sampler = make_sampler("http://127.0.0.1:1", environ={})  # nothing listens: no request made
    sampler.close()
    with make_sampler(server.url, environ={}, device=Apollo(), progress=False) as given:
        assert given.device.name == "Apollo"
        assert set(given.run(ghz(2), repetitions=8).histogram(key="m")) <= {0, 3}
    assert Adonis().name == "Adonis"
