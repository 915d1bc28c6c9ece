"""Dynamic circuits through IQMSampler over loopback, in both protocol profiles: mid-circuit
measurement, reset, feed-forward (cc_prx), repeated keys."""

from __future__ import annotations

import math

import cirq
import numpy as np
import pytest
from profile_support import api, make_sampler, submissions  # noqa: F401

from cirq_iqm_ext.device.iqm_device import DeviceValidationError
from cirq_iqm_ext.server import EmbeddedServer
from cirq_iqm_ext.ui.display import result_text

SHOTS = 400


@pytest.fixture(scope="module")
def server():
    with EmbeddedServer("garnet", seed=11) as running:  # exact simulation
        yield running


def _binomial_ok(count: int, shots: int, p: float, sigmas: float = 5.0) -> bool:
    sd = math.sqrt(max(p * (1 - p), 1e-12) / shots)
    return abs(count / shots - p) <= sigmas * sd + 1.0 / shots


def test_a_fed_forward_bit_decides_the_pulse_on_every_shot(server):
    a, b = cirq.LineQubit.range(2)
    circuit = cirq.Circuit(
        cirq.H(a),
        cirq.measure(a, key="k"),
        cirq.X(b).with_classical_controls("k"),
        cirq.measure(b, key="m"),
    )
    with make_sampler(server.url) as sampler:
        [request] = sampler.create_run_requests(circuit, repetitions=SHOTS)
        result = sampler.run(circuit, repetitions=SHOTS)
    names = [i.name for i in request.circuits[0].instructions]
    assert "cc_prx" in names and names.index("measure") < names.index("cc_prx")
    k, m = result.measurements["k"][:, 0], result.measurements["m"][:, 0]
    assert np.array_equal(k, m)
    assert _binomial_ok(int(k.sum()), SHOTS, 0.5)


def test_reset_after_x_gives_zero(server):
    q = cirq.LineQubit(0)
    circuit = cirq.Circuit(cirq.X(q), cirq.reset(q), cirq.measure(q, key="m"))
    with make_sampler(server.url) as sampler:
        assert sampler.run(circuit, repetitions=SHOTS).histogram(key="m") == {0: SHOTS}


def test_measure_then_h_then_measure(server):
    q = cirq.LineQubit(0)
    circuit = cirq.Circuit(
        cirq.X(q), cirq.measure(q, key="first"), cirq.H(q), cirq.measure(q, key="second")
    )
    with make_sampler(server.url) as sampler:
        result = sampler.run(circuit, repetitions=SHOTS)
    assert result.histogram(key="first") == {1: SHOTS}
    assert _binomial_ok(int(result.measurements["second"].sum()), SHOTS, 0.5)


@pytest.mark.parametrize("theta", [0.0, 0.7, np.pi / 2, 2.4, np.pi])
def test_teleportation_with_feed_forward(server, theta):
    msg, alice, bob = cirq.LineQubit.range(3)
    circuit = cirq.Circuit(
        cirq.ry(theta).on(msg),
        cirq.H(alice),
        cirq.CNOT(alice, bob),
        cirq.CNOT(msg, alice),
        cirq.H(msg),
        cirq.measure(msg, key="m_msg"),
        cirq.measure(alice, key="m_alice"),
        cirq.X(bob).with_classical_controls("m_alice"),
        cirq.Z(bob).with_classical_controls("m_msg"),  # compiled into conditional pulses
        cirq.measure(bob, key="out"),
    )
    with make_sampler(server.url) as sampler:
        result = sampler.run(circuit, repetitions=SHOTS)
    ones = int(result.measurements["out"].sum())
    assert _binomial_ok(ones, SHOTS, math.sin(theta / 2) ** 2)
    # Both Bell-measurement bits are random: the corrections really are exercised.
    for key in ("m_msg", "m_alice"):
        assert _binomial_ok(int(result.measurements[key].sum()), SHOTS, 0.5)


def test_repeated_keys_come_back_as_cirq_records(server):
    q = cirq.LineQubit(0)
    circuit = cirq.Circuit(
        cirq.measure(q, key="k"), cirq.X(q), cirq.measure(q, key="k"), cirq.measure(q, key="z")
    )
    with make_sampler(server.url) as sampler:
        result = sampler.run(circuit, repetitions=20)
    local = cirq.Simulator().run(circuit, repetitions=20)
    assert result.records["k"].shape == local.records["k"].shape == (20, 2, 1)
    assert (result.records["k"][:, 0, 0] == 0).all() and (result.records["k"][:, 1, 0] == 1).all()
    assert (result.records["z"][:, 0, 0] == 1).all()  # Cirq keeps every key as records then
    assert "keys=['k', 'z']" in repr(result)
    assert "k:\n    01       20" in result_text(result)  # both measurements of k, in time order
    restored = cirq.read_json(
        json_text=cirq.to_json(result),
        resolvers=[__import__("cirq_iqm_ext").json_resolver, *cirq.DEFAULT_RESOLVERS],
    )
    assert np.array_equal(restored.records["k"], result.records["k"])


def test_feed_forward_errors_are_caught_before_anything_is_posted(server):
    a, b = cirq.LineQubit.range(2)
    before = submissions(server)
    early = cirq.Circuit(
        cirq.X(b).with_classical_controls("k"), cirq.measure(a, key="k"), cirq.measure(b, key="m")
    )
    wide = cirq.Circuit(
        cirq.measure(a, b, key="k"), cirq.X(b).with_classical_controls("k"), cirq.measure(b)
    )
    with make_sampler(server.url) as sampler:
        with pytest.raises(DeviceValidationError, match="no earlier measurement"):
            sampler.run(early)
        with pytest.raises(DeviceValidationError, match="single-qubit measurement"):
            sampler.run(wide)
    assert submissions(server) == before


def test_a_server_without_dynamic_circuits_refuses_them_before_posting():
    q = cirq.LineQubit(0)
    with EmbeddedServer("garnet", dynamic=False) as cocos_like:
        with make_sampler(cocos_like.url) as sampler:
            circuit = cirq.Circuit(cirq.X(q), cirq.reset(q), cirq.measure(q, key="m"))
            with pytest.raises(DeviceValidationError, match="reset"):
                sampler.run(circuit)
        assert submissions(cocos_like) == 0


def test_feed_forward_across_feedback_groups_is_refused_before_posting():
    qb = {n: cirq.NamedQubit(f"QB{n}") for n in (1, 2, 3)}
    groups = [["QB1", "QB2"], ["QB3", "QB4", "QB5"]]
    with EmbeddedServer("adonis", feedback_groups=groups) as grouped:
        with make_sampler(grouped.url) as sampler:
            inside = cirq.Circuit(
                cirq.measure(qb[1], key="k"),
                cirq.X(qb[2]).with_classical_controls("k"),
                cirq.measure(qb[2], key="m"),
            )
            assert sampler.run(inside, repetitions=10).histogram(key="m") == {0: 10}
            across = cirq.Circuit(
                cirq.measure(qb[1], key="k"),
                cirq.X(qb[3]).with_classical_controls("k"),
                cirq.measure(qb[3], key="m"),
            )
            with pytest.raises(DeviceValidationError, match="different feedback groups"):
                sampler.run(across, repetitions=10)
        assert submissions(grouped) == 1
