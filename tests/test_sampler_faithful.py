"""The sampler runs the circuit it is given, end to end over loopback, in both protocol profiles."""

from __future__ import annotations

import cirq
import numpy as np
import pytest
import sympy
from profile_support import api, make_sampler, submissions  # noqa: F401

from cirq_iqm_ext import IQMError, barrier
from cirq_iqm_ext.device.iqm_device import DeviceValidationError
from cirq_iqm_ext.errors import ClientConfigurationError
from cirq_iqm_ext.server import EmbeddedServer

QB = {i: cirq.NamedQubit(f"QB{i}") for i in range(1, 21)}


@pytest.fixture(scope="module")
def garnet():
    with EmbeddedServer("garnet", seed=3) as server:
        yield server


def _instructions(sampler, circuit, sweep=None):
    [request] = sampler.create_run_requests(circuit, sweep, repetitions=10)
    return request.circuits[0].instructions


def test_the_default_translates_without_optimising(garnet):
    a, b = cirq.LineQubit.range(2)
    xeb_like = cirq.Circuit(
        [
            (
                cirq.PhasedXZGate(x_exponent=0.5, z_exponent=0.0, axis_phase_exponent=0.25 * k).on(
                    a
                ),
                cirq.Y(b) ** 0.5,
                cirq.CZ(a, b),
            )
            for k in range(20)
        ],
        cirq.measure(a, b, key="m"),
    )
    with make_sampler(garnet.url) as sampler:
        assert "optimization_level=0" in repr(sampler)
        names = [i.name for i in _instructions(sampler, xeb_like)]
    assert names.count("cz") == 20 and names.count("prx") == 40
    with make_sampler(garnet.url, optimization_level=2) as sampler:
        optimised = [i.name for i in _instructions(sampler, xeb_like)]
    assert optimised.count("cz") < 20  # level 2 may resynthesise: only when asked


def test_waits_and_barriers_reach_the_server_and_are_executed(garnet):
    q = cirq.LineQubit(0)
    t = sympy.Symbol("t")
    circuit = cirq.Circuit(cirq.X(q), barrier(q), cirq.wait(q, nanos=t), cirq.measure(q, key="m"))
    with make_sampler(garnet.url) as sampler:
        names = [i.name for i in _instructions(sampler, circuit, {"t": 100.0})]
        assert names == ["prx", "barrier", "delay", "measure"]
        results = sampler.run_sweep(circuit, cirq.Points("t", [0.0, 1e3]), repetitions=20)
    assert [r.histogram(key="m") for r in results] == [{1: 20}, {1: 20}]  # noiseless server


def test_a_circuit_on_device_qubits_runs_on_those_qubits(garnet):
    circuit = cirq.Circuit(
        cirq.H(QB[19]), cirq.CZ(QB[19], QB[20]), cirq.measure(QB[19], QB[20], key="m")
    )
    for level in (0, 2):
        with make_sampler(garnet.url, optimization_level=level) as sampler:
            used = {q for i in _instructions(sampler, circuit) for q in i.qubits}
            [request] = sampler.create_run_requests(circuit, repetitions=10)
            result = sampler.run(circuit, repetitions=50)
        mapped = {m.logical_name: m.physical_name for m in request.qubit_mapping or ()}
        assert {mapped.get(q, q) for q in used} == {"QB19", "QB20"}
        assert result.initial_mapping == {"QB19": "QB19", "QB20": "QB20"}


def test_bad_qubits_and_unsupported_waits_are_refused_before_anything_is_posted(garnet):
    before = submissions(garnet)
    with make_sampler(garnet.url) as sampler:
        with pytest.raises(DeviceValidationError, match="QB99"):
            sampler.run(cirq.Circuit(cirq.measure(cirq.NamedQubit("QB99"), key="m")))
    assert submissions(garnet) == before
    with EmbeddedServer("garnet", delay=False) as cocos_like:
        with make_sampler(cocos_like.url) as sampler:
            q = cirq.LineQubit(0)
            wait = cirq.Circuit(cirq.X(q), cirq.wait(q, micros=5), cirq.measure(q, key="m"))
            with pytest.raises(DeviceValidationError, match="waits are not supported"):
                sampler.run(wait, repetitions=10)
        with make_sampler(cocos_like.url, compile=False) as sampler:
            native = cirq.Circuit(cirq.wait(QB[1], micros=1), cirq.measure(QB[1], key="m"))
            with pytest.raises(DeviceValidationError, match="waits are not supported"):
                sampler.run(native)
        assert submissions(cocos_like) == 0


def test_hand_written_pulses_run_with_compile_false(garnet):
    circuit = cirq.Circuit(
        cirq.Z(QB[1]) ** 0.5,
        cirq.PhasedXZGate(x_exponent=1.0, z_exponent=0.3, axis_phase_exponent=0.2).on(QB[1]),
        cirq.X(QB[2]) ** 0.5,
        cirq.rz(np.pi).on(QB[2]),  # virtual: turns the next half pulse back (else QB2 ends in |1>)
        cirq.X(QB[2]) ** 0.5,
        cirq.CZ(QB[1], QB[2]),
        cirq.wait(QB[1], QB[2], nanos=40),
        barrier(QB[1], QB[2]),
        cirq.measure(QB[1], QB[2], key="m"),
    )
    with make_sampler(garnet.url, compile=False) as sampler:
        names = [i.name for i in _instructions(sampler, circuit)]
        result = sampler.run(circuit, repetitions=20)
    assert names == ["prx", "prx", "prx", "cz", "delay", "barrier", "measure"]
    assert result.histogram(key="m") == {0b10: 20}  # QB1 flipped, QB2 back to |0>


def test_numpy_numbers_are_accepted_and_bad_options_named(garnet):
    q = cirq.LineQubit(0)
    circuit = cirq.Circuit(cirq.X(q), cirq.measure(q, key="m"))
    with make_sampler(garnet.url, optimization_level=np.int64(1)) as sampler:
        result = sampler.run(circuit, repetitions=np.int64(7))
    assert result.histogram(key="m") == {1: 7}
    with pytest.raises(ClientConfigurationError, match="optimization_level"):
        make_sampler(garnet.url, optimization_level=5)
    with make_sampler(garnet.url) as sampler, pytest.raises(IQMError, match="no value"):
        sampler.run(cirq.Circuit(cirq.X(q) ** sympy.Symbol("s"), cirq.measure(q, key="m")))
