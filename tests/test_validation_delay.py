"""Validation of ``delay`` (a wait) against architectures that list it or not, and the built-in
devices that describe today's machines (which list it)."""

from __future__ import annotations

import dataclasses

import cirq
import pytest

from cirq_iqm_ext import devices
from cirq_iqm_ext.device.iqm_device import IQMDevice
from cirq_iqm_ext.errors import CircuitValidationError
from cirq_iqm_ext.json_resolver import json_resolver
from cirq_iqm_ext.server import load_architecture
from cirq_iqm_ext.wire.models import (
    Circuit,
    Instruction,
    QuantumArchitectureSpecification,
    RunRequest,
)
from cirq_iqm_ext.wire.validation import circuit_violations, validate_run_request

ADONIS = devices.Adonis().architecture
WITHOUT_DELAY = dataclasses.replace(
    ADONIS, operations={k: v for k, v in ADONIS.operations.items() if k != "delay"}
)
UNSUPPORTED = (
    'circuit 0 ("c"), instruction 2: delay (a wait) is not supported by Adonis: this server does '
    "not execute waits; a CoCoS v1 server has no delay instruction — use the IQM Server API "
    'profile (api="iqm-server") of a server that lists delay, or remove the wait'
)


def prx(qubit: str) -> Instruction:
    return Instruction("prx", [qubit], {"angle_t": 0.5, "phase_t": 0.0})


def delay(*qubits: str, duration: float = 1e-6) -> Instruction:
    return Instruction("delay", qubits, {"duration": duration})


def measure(*qubits: str, key: str = "m") -> Instruction:
    return Instruction("measure", qubits, {"key": key})


def circuit(*instructions: Instruction) -> Circuit:
    return Circuit("c", instructions)


def test_delay_is_valid_on_any_existing_qubits_where_the_architecture_lists_it():
    assert ADONIS.operations["delay"] == ()
    c = circuit(prx("QB1"), delay("QB1", "QB2", "QB5"), delay("QB4", duration=0.0), measure("QB1"))
    assert circuit_violations(c, 0, ADONIS) == []


def test_delay_without_delay_in_the_architecture_says_what_to_do():
    c = circuit(prx("QB1"), prx("QB2"), delay("QB1"), measure("QB1"))
    assert circuit_violations(c, 0, WITHOUT_DELAY) == [UNSUPPORTED]
    with pytest.raises(CircuitValidationError) as info:
        validate_run_request(RunRequest((c,)), WITHOUT_DELAY)
    assert str(info.value) == UNSUPPORTED


def test_a_delay_on_a_missing_qubit_is_named_first():
    c = circuit(prx("QB1"), delay("QB1", "QB9"), measure("QB1"))
    for architecture in (ADONIS, WITHOUT_DELAY):
        assert circuit_violations(c, 0, architecture) == [
            "circuit 0 (\"c\"), instruction 1: qubit(s) ['QB9'] do not exist on Adonis"
        ]


def test_a_delay_through_the_qubit_mapping():
    c = circuit(prx("alice"), delay("alice", "bob"), measure("alice"))
    request = RunRequest.from_dict(
        {
            **RunRequest((c,)).to_dict(),
            "qubit_mapping": [
                {"logical_name": "alice", "physical_name": "QB1"},
                {"logical_name": "bob", "physical_name": "QB2"},
            ],
        }
    )
    validate_run_request(request, ADONIS)


def test_a_delay_after_a_measurement_breaks_the_terminal_measurement_rule():
    c = circuit(prx("QB1"), measure("QB1"), delay("QB1"))
    [violation] = circuit_violations(c, 0, ADONIS)
    assert violation == (
        "circuit 0 (\"c\"), instruction 2: qubit(s) ['QB1'] are acted on by delay after their "
        "measurement; this architecture allows only terminal measurements"
    )
    assert circuit_violations(c, 0, ADONIS, allow_mid_circuit_measurement=True) == []
    # A barrier may follow a measurement, and so may a delay on another qubit.
    fine = circuit(prx("QB1"), measure("QB1"), Instruction("barrier", ["QB1"]), delay("QB2"))
    assert circuit_violations(fine, 0, ADONIS) == []


def test_a_delay_on_a_parked_qubit_breaks_a_move_sandwich_like_official_client_36():
    deneb = devices.Deneb().architecture
    assert deneb.operations["delay"] == ()
    move = Instruction("move", ["QB2", "COMP_R"])
    parked = circuit(prx("QB2"), move, delay("QB2"), move, measure("QB2"))
    [violation] = circuit_violations(parked, 0, deneb)
    assert "Instruction delay acts on ('QB2',) while the state(s) of {'QB2'}" in violation
    # The resonator itself, or another qubit, may wait meanwhile.
    fine = circuit(prx("QB2"), move, delay("COMP_R", "QB1"), move, measure("QB2"))
    assert circuit_violations(fine, 0, deneb) == []


# ------------------------------------------------------------------------------ built-in devices


@pytest.mark.parametrize("factory", sorted(devices.BUILTIN_DEVICES.values(), key=repr))
def test_builtin_devices_list_delay_and_round_trip(factory):
    device = factory()
    assert "delay" in device.architecture.operations
    assert device.architecture.operations["delay"] == ()
    assert device.supports_delay
    assert device == factory()
    cirq.testing.assert_equivalent_repr(
        device,
        setup_code="import cirq\nimport cirq_iqm_ext\n",
    )
    text = cirq.to_json(device)
    resolvers = [json_resolver, *cirq.DEFAULT_RESOLVERS]
    assert cirq.read_json(json_text=text, resolvers=resolvers) == device


def test_devices_differ_by_delay_and_star_architectures_list_it():
    assert IQMDevice(WITHOUT_DELAY) != devices.Adonis()
    assert not IQMDevice(WITHOUT_DELAY).supports_delay
    assert devices.star_architecture(4).operations["delay"] == ()
    # The server loads the same data.
    assert load_architecture("garnet").operations["delay"] == ()
    assert isinstance(load_architecture("deneb"), QuantumArchitectureSpecification)


def test_device_accepts_a_wait_where_delay_is_listed():
    q = cirq.NamedQubit("QB1")
    wait = cirq.Circuit(cirq.X(q), cirq.wait(q, micros=2), cirq.measure(q, key="m"))
    devices.Adonis().validate_circuit(wait)
    with pytest.raises(CircuitValidationError, match="delay"):
        IQMDevice(WITHOUT_DELAY).validate_circuit(wait)
