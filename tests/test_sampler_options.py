"""Job options, calibration drift and device refresh of IQMSampler, end to end over loopback."""

from __future__ import annotations

import uuid
import warnings

import cirq
import pytest

from cirq_iqm_ext import CalibrationDriftWarning, IQMSampler
from cirq_iqm_ext.device.builtin import Garnet
from cirq_iqm_ext.errors import ClientConfigurationError
from cirq_iqm_ext.server import EmbeddedServer

Q = cirq.LineQubit(0)
FLIP = cirq.Circuit(cirq.X(Q), cirq.measure(Q, key="m"))


@pytest.fixture(scope="module")
def server():
    with EmbeddedServer("garnet", seed=4) as running:
        yield running


def test_job_options_reach_the_iqm_server_api(server):
    with IQMSampler(
        server.url,
        api="iqm-server",
        quantum_computer="garnet",
        active_reset_cycles=2,
        move_gate_validation="allow_prx",
        move_gate_frame_tracking="no_detuning_correction",
    ) as sampler:
        [request] = sampler.create_run_requests(FLIP, repetitions=5)
        result = sampler.run(FLIP, repetitions=5)
    assert request.active_reset_cycles == 2
    assert request.move_gate_validation == "allow_prx"
    assert result.histogram(key="m") == {1: 5}


def test_options_v1_cannot_carry_are_refused_before_posting(server):
    before = server.app.stats["POST jobs"]
    with IQMSampler(server.url, api="cocos-v1", dd_mode="enabled") as sampler:
        with pytest.raises(ClientConfigurationError, match="needs the IQM Server API"):
            sampler.run(FLIP, repetitions=5)
    assert server.app.stats["POST jobs"] == before


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("move_gate_validation", "loose", "move_gate_validation must be one of"),
        ("dd_mode", "on", "dd_mode must be one of"),
        ("active_reset_cycles", "2", "active_reset_cycles must be"),
        ("use_timeslot", "yes", "use_timeslot must be"),
        ("dd_strategy", "x", "dd_strategy must be"),
    ],
)
def test_bad_option_values_are_named(server, option, value, message):
    with pytest.raises(ClientConfigurationError, match=message):
        IQMSampler(server.url, **{option: value})


def test_full_frame_tracking_needs_move_validation(server):
    with pytest.raises(ClientConfigurationError, match="full MOVE gate frame tracking"):
        IQMSampler(server.url, move_gate_frame_tracking="full", move_gate_validation="none")


def test_calibration_drift_warns_once_naming_both_sets(server):
    stale = uuid.UUID(int=7)
    with IQMSampler(server.url, device=Garnet(calibration_set_id=stale)) as sampler:
        with pytest.warns(CalibrationDriftWarning, match=str(stale)) as caught:
            result = sampler.run(FLIP, repetitions=3)
        served = result.calibration_set_id
        assert served is not None and served != stale
        assert str(served) in str(caught[0].message)
        with warnings.catch_warnings():
            warnings.simplefilter("error", CalibrationDriftWarning)
            sampler.run(FLIP, repetitions=3)  # once per pair of sets


def test_refresh_device_recompiles_for_the_current_set(server):
    with IQMSampler(server.url) as sampler:
        first = sampler.device
        sampler.run(FLIP, repetitions=2)
        assert sampler.refresh_device() is not first
        with warnings.catch_warnings():
            warnings.simplefilter("error", CalibrationDriftWarning)
            assert sampler.run(FLIP, repetitions=2).histogram(key="m") == {1: 2}


def test_an_unclosed_sampler_releases_its_connections_when_collected(server):
    import gc

    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        sampler = IQMSampler(server.url)
        assert sampler.run(FLIP, repetitions=2).histogram(key="m") == {1: 2}
        del sampler
        gc.collect()


def test_a_ready_client_is_shared_and_left_open(server):
    from cirq_iqm_ext import IQMClient

    with IQMClient(server.url) as client:
        first = IQMSampler(client=client)
        second = IQMSampler(client=client, optimization_level=1)
        assert first.client is client and second.client is client
        assert first.run(FLIP, repetitions=7).histogram(key="m") == {1: 7}
        first.close()  # the client belongs to its maker: still usable
        assert second.run(FLIP, repetitions=3).histogram(key="m") == {1: 3}
        assert client.get_quantum_architecture().name == "Garnet"
        second.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "needs the server's URL"),
        ({"client": "http://127.0.0.1:1"}, "client must be an IQMClient"),
        ({"url": "http://127.0.0.1:1", "client": True}, "client must be an IQMClient"),
    ],
)
def test_a_sampler_without_a_way_to_the_server_says_what_to_give(kwargs, message):
    with pytest.raises(ClientConfigurationError, match=message):
        IQMSampler(**kwargs)


def test_client_and_client_settings_together_are_refused(server):
    from cirq_iqm_ext import IQMClient

    with IQMClient(server.url) as client:
        with pytest.raises(ClientConfigurationError, match="not both .*url, timeout"):
            IQMSampler(server.url, client=client, timeout=3)


@pytest.mark.parametrize("api", ["iqm-server", "cocos-v1"])
def test_a_fetched_device_reprs_as_what_it_is(server, api):
    import cirq_iqm_ext

    options = {"quantum_computer": "garnet"} if api == "iqm-server" else {}
    with IQMSampler(server.url, api=api, **options) as sampler:
        device = sampler.device
        text = repr(device)
    if api == "iqm-server":  # its calibration set is part of what it is
        assert device.calibration_set_id is not None
        assert f"calibration_set_id='{device.calibration_set_id}'" in text
    assert not text.startswith("cirq_iqm_ext.Garnet()")
    rebuilt = eval(text, {"cirq_iqm_ext": cirq_iqm_ext})
    assert rebuilt == device
    assert rebuilt.calibration_set_id == device.calibration_set_id
