"""Tests of the IQM device model and its validation."""

from __future__ import annotations

import uuid

import cirq
import networkx as nx
import pytest
import sympy

import cirq_iqm_ext
import cirq_iqm_ext.device.builtin
import cirq_iqm_ext.device.iqm_device
from cirq_iqm_ext import json_resolver
from cirq_iqm_ext.device.builtin import Adonis, Aphrodite, Apollo, Deneb, Garnet
from cirq_iqm_ext.device.iqm_device import DeviceValidationError, IQMDevice, IQMDeviceMetadata
from cirq_iqm_ext.errors import CircuitValidationError, IQMError
from cirq_iqm_ext.wire.models import QuantumArchitectureSpecification

QB = cirq.NamedQubit
REPR_SETUP = "import cirq\nimport cirq_iqm_ext\n"

APOLLO_EDGES = [
    (1, 2),
    (1, 4),
    (2, 5),
    (3, 4),
    (3, 8),
    (4, 5),
    (4, 9),
    (5, 6),
    (5, 10),
    (6, 7),
    (6, 11),
    (7, 12),
    (8, 9),
    (8, 13),
    (9, 10),
    (9, 14),
    (10, 11),
    (10, 15),
    (11, 12),
    (11, 16),
    (12, 17),
    (13, 14),
    (14, 15),
    (14, 18),
    (15, 16),
    (15, 19),
    (16, 17),
    (16, 20),
    (18, 19),
    (19, 20),
]

SMALL = {
    "name": "Tiny",
    "qubits": ["QB1", "QB2", "QB3"],
    "qubit_connectivity": [["QB1", "QB2"], ["QB2", "QB3"]],
    "operations": {
        "prx": [["QB1"], ["QB2"], ["QB3"]],
        "cz": [["QB1", "QB2"], ["QB2", "QB3"]],
        "measure": [["QB1"], ["QB2"]],
        "barrier": [],
    },
}


def _edges(device: IQMDevice) -> set[frozenset[str]]:
    return {frozenset(q.name for q in e) for e in device.metadata.nx_graph.edges}


@pytest.mark.parametrize(
    "factory, n_qubits, n_edges",
    [(Adonis, 5, 4), (Apollo, 20, 30), (Garnet, 20, 30), (Aphrodite, 54, 90), (Deneb, 7, 6)],
)
def test_builtin_devices_have_the_public_topologies(factory, n_qubits, n_edges):
    device = factory()
    assert len(device.qubits) == n_qubits
    assert device.metadata.nx_graph.number_of_edges() == n_edges
    assert isinstance(device.metadata, IQMDeviceMetadata)
    assert not device.metadata.nx_graph.is_directed()
    assert device.name == factory.__name__
    assert nx.is_connected(device.metadata.nx_graph)


def test_apollo_edges_match_the_protocol_document():
    expected = {frozenset((f"QB{a}", f"QB{b}")) for a, b in APOLLO_EDGES}
    assert _edges(Apollo()) == expected
    assert _edges(Garnet()) == expected


def test_adonis_is_a_star_around_qb3():
    assert _edges(Adonis()) == {frozenset(("QB3", f"QB{i}")) for i in (1, 2, 4, 5)}


def test_qubits_are_in_natural_order_and_named():
    device = Apollo()
    assert device.qubit_names[:3] == ("QB1", "QB2", "QB3")
    assert device.qubit_names.index("QB2") < device.qubit_names.index("QB10")
    assert device.qubits == tuple(QB(n) for n in device.qubit_names)
    assert device.qubit("QB7") == QB("QB7")
    with pytest.raises(ValueError, match="'QB99'"):
        device.qubit("QB99")


def test_metadata_gateset_and_loci():
    device = Adonis()
    meta = device.metadata
    assert meta.architecture_name == "Adonis"
    assert meta.loci["cz"][0] == (QB("QB1"), QB("QB3"))
    assert device.loci("prx") == tuple((QB(f"QB{i}"),) for i in range(1, 6))
    assert device.loci("move") == ()
    gs = meta.gateset
    assert cirq.PhasedXPowGate(phase_exponent=0.1, exponent=0.3) in gs
    assert cirq.X**0.5 in gs and cirq.Y in gs
    assert cirq.CZ in gs and cirq.CZ**0.5 not in gs
    assert cirq.MeasurementGate(1, "m") in gs
    assert cirq.H not in gs
    assert device.measurable_qubits == frozenset(device.qubits)


@pytest.mark.parametrize(
    "data",
    [
        {"quantum_architecture": SMALL},
        SMALL,
        {**SMALL, "operations": ["prx", "cz", "measurement", "barrier"]},
    ],
)
def test_from_architecture_accepts_static_forms(data):
    device = IQMDevice.from_architecture(data)
    assert device.name == "Tiny"
    assert _edges(device) == {frozenset(("QB1", "QB2")), frozenset(("QB2", "QB3"))}
    device.validate_operation(cirq.CZ(QB("QB3"), QB("QB2")))


def test_from_architecture_accepts_the_dynamic_form():
    cal = "26c5e70f-bea0-43af-bd37-6212ec7d04cb"
    data = {
        "calibration_set_id": cal,
        "qubits": ["QB1", "QB2", "QB3"],
        "computational_resonators": [],
        "gates": {
            "prx": {"implementations": {"drag": {"loci": [["QB1"], ["QB2"], ["QB3"]]}}},
            "cz": {"implementations": {"tgss": {"loci": [["QB1", "QB2"], ["QB2", "QB3"]]}}},
            "measure": {"implementations": {"constant": {"loci": [["QB1"], ["QB2"], ["QB3"]]}}},
        },
    }
    device = IQMDevice.from_architecture(data)
    assert device.calibration_set_id == uuid.UUID(cal)
    assert device.metadata.calibration_set_id == uuid.UUID(cal)
    assert _edges(device) == {frozenset(("QB1", "QB2")), frozenset(("QB2", "QB3"))}


def test_constructor_needs_a_specification():
    with pytest.raises(TypeError, match="from_architecture"):
        IQMDevice({"name": "x"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'not-a-uuid'"):
        Adonis("not-a-uuid")


@pytest.mark.parametrize(
    "device",
    [
        Adonis(),
        Apollo("9ddb9586-8f27-49a9-90ed-41086b47f6bd"),
        Deneb(),
        IQMDevice.from_architecture(SMALL),
        IQMDevice.from_architecture(SMALL, mid_circuit_measurement=True),
    ],
)
def test_repr_is_evaluable_and_json_round_trips(device):
    cirq.testing.assert_equivalent_repr(device, setup_code=REPR_SETUP)
    text = cirq.to_json(device)
    assert '"cirq_type": "cirq_iqm_ext.IQMDevice"' in text
    back = cirq.read_json(
        json_text=text, resolvers=[cirq_iqm_ext.json_resolver, *cirq.DEFAULT_RESOLVERS]
    )
    assert back == device and hash(back) == hash(device)


def test_builtin_repr_is_short():
    assert repr(Apollo()) == "cirq_iqm_ext.Apollo()"
    assert repr(Garnet()) == "cirq_iqm_ext.Garnet()"
    assert Garnet() != Apollo()


def test_str_draws_the_coupling_map():
    text = str(Adonis())
    assert "Adonis" in text and "5 qubits" in text and "4 couplings" in text
    assert "QB3 ── QB1 QB2 QB4 QB5" in text
    assert "QB1 ── QB3" in text


def test_json_resolver_ignores_other_types():
    assert json_resolver("cirq.X") is None
    assert json_resolver("cirq_iqm_ext.IQMDevice") is IQMDevice
    import importlib

    module = importlib.import_module("cirq_iqm_ext.json_resolver")
    # The submodule itself works as a resolver too (it shadows the function once imported).
    assert module("cirq_iqm_ext.IQMDevice") is IQMDevice
    assert module.json_resolver("cirq.X") is None


# ------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    "op",
    [
        cirq.PhasedXPowGate(phase_exponent=0.25, exponent=0.5).on(QB("QB1")),
        cirq.X(QB("QB2")) ** 0.3,
        cirq.Y(QB("QB4")),
        cirq.PhasedXPowGate(phase_exponent=sympy.Symbol("p"), exponent=sympy.Symbol("e")).on(
            QB("QB1")
        ),
        cirq.CZ(QB("QB1"), QB("QB3")),
        cirq.CZ(QB("QB3"), QB("QB1")),
        cirq.measure(QB("QB1"), QB("QB5"), key="m"),
        cirq.GlobalPhaseGate(1j).on(),
        cirq.X(QB("QB1")).with_tags("tag"),
    ],
)
def test_native_operations_are_valid(op):
    Adonis().validate_operation(op)


@pytest.mark.parametrize(
    "op, message",
    [
        (cirq.H(QB("QB1")), "unsupported gate cirq.H"),
        (cirq.X(QB("QB9")), "qubit not on device: cirq.NamedQubit('QB9')"),
        (cirq.X(cirq.LineQubit(0)), "qubit not on device: cirq.LineQubit(0)"),
        (cirq.CZ(QB("QB1"), QB("QB2")), "is not coupled for cz"),
        (cirq.CZ(QB("QB1"), QB("QB3")) ** 0.5, "only cz with exponent exactly 1"),
        (
            cirq.CZPowGate(exponent=sympy.Symbol("t")).on(QB("QB1"), QB("QB3")),
            "unresolved symbol where a number is needed",
        ),
        (cirq.CNOT(QB("QB1"), QB("QB3")), "unsupported gate cirq.CNOT"),
        (
            cirq.CircuitOperation(cirq.FrozenCircuit(cirq.X(QB("QB1")))),
            "unsupported operation type CircuitOperation",
        ),
    ],
)
def test_invalid_operations_are_named_with_the_reason(op, message):
    with pytest.raises(DeviceValidationError, match="Operation not valid") as info:
        Adonis().validate_operation(op)
    assert message in str(info.value)
    assert repr(op) in str(info.value)


def test_validation_error_is_in_the_exception_tree():
    assert issubclass(DeviceValidationError, CircuitValidationError)
    assert issubclass(DeviceValidationError, ValueError)
    assert issubclass(DeviceValidationError, IQMError)


def test_measure_only_on_measurable_qubits():
    device = IQMDevice.from_architecture(SMALL)
    device.validate_operation(cirq.measure(QB("QB1"), QB("QB2"), key="m"))
    with pytest.raises(DeviceValidationError, match="measure is not allowed on cirq.NamedQubit"):
        device.validate_operation(cirq.measure(QB("QB3"), key="m"))


def test_validate_circuit_reports_every_violation_with_its_moment():
    q1, q2, q3 = QB("QB1"), QB("QB2"), QB("QB3")
    circuit = cirq.Circuit(
        cirq.Moment(cirq.H(q1)),  # 0: not native
        cirq.Moment(cirq.CZ(q1, q2)),  # 1: not coupled
        cirq.Moment(cirq.measure(q1, key="a"), cirq.measure(q2, key="a")),  # 2: a repeated key
        cirq.Moment(cirq.X(q1)),  # 3: after measurement
        cirq.Moment(cirq.X(QB("QB42"))),  # 4: not on device
        cirq.Moment(cirq.CZ(q1, q3)),  # 5: after measurement, but the pair is fine
    )
    # A v1-only device (no dynamic circuits): nothing may follow a measurement.
    device = IQMDevice(Adonis().architecture, mid_circuit_measurement=False)
    assert "mid_circuit_measurement=False" in repr(device)
    with pytest.raises(DeviceValidationError) as info:
        device.validate_circuit(circuit)
    err = info.value
    assert len(err.violations) == 5
    text = str(err)
    assert "5 violations" in text
    assert "moment 0: cirq.H(cirq.NamedQubit('QB1')): unsupported gate" in text
    assert "moment 1: cirq.CZ(cirq.NamedQubit('QB1'), cirq.NamedQubit('QB2')): qubit pair" in text
    assert "moment 2: " not in text  # Cirq's repeated keys are allowed (records per instance)
    assert "moment 3: " in text and "after its measurement in moment 2" in text
    assert "moment 4: " in text and "qubit not on device: cirq.NamedQubit('QB42')" in text
    assert "moment 5: " in text
    # The built-in device runs dynamic circuits: only the non-native and the unknown remain.
    with pytest.raises(DeviceValidationError) as info:
        Adonis().validate_circuit(circuit)
    assert len(info.value.violations) == 3


def test_validate_circuit_accepts_a_native_circuit():
    q1, q3 = QB("QB1"), QB("QB3")
    circuit = cirq.Circuit(
        cirq.PhasedXPowGate(phase_exponent=0.5, exponent=0.5).on(q1),
        cirq.CZ(q3, q1),
        cirq.measure(q1, q3, key="m"),
    )
    Adonis().validate_circuit(circuit)


def test_mid_circuit_measurement_is_allowed_when_the_device_says_so():
    q1 = QB("QB1")
    circuit = cirq.Circuit(cirq.measure(q1, key="a"), cirq.X(q1), cirq.measure(q1, key="b"))
    v1_only = IQMDevice.from_architecture(Adonis().architecture, mid_circuit_measurement=False)
    with pytest.raises(DeviceValidationError, match="after its measurement"):
        v1_only.validate_circuit(circuit)
    assert Adonis().mid_circuit_measurement  # it lists reset and cc_prx: a dynamic machine
    Adonis().validate_circuit(circuit)
    spec = Adonis().architecture.to_dict()["quantum_architecture"]
    plain = {k: v for k, v in spec["operations"].items() if k not in ("reset", "cc_prx")}
    without = IQMDevice.from_architecture({**spec, "operations": plain})
    assert not without.mid_circuit_measurement
    with pytest.raises(DeviceValidationError, match="after its measurement"):
        without.validate_circuit(circuit)


def test_many_violations_are_counted_beyond_the_shown_ones():
    circuit = cirq.Circuit(cirq.H(QB("QB1")) for _ in range(30))
    with pytest.raises(DeviceValidationError, match="and 10 more") as info:
        Adonis().validate_circuit(circuit)
    assert len(info.value.violations) == 30


def test_deneb_resonator_loci():
    device = Deneb()
    resonator = device.qubit("COMP_R")
    assert device.resonators == (resonator,)
    device.validate_operation(cirq.CZ(QB("QB1"), resonator))
    with pytest.raises(DeviceValidationError, match="prx is not allowed"):
        device.validate_operation(cirq.X(resonator))
    with pytest.raises(DeviceValidationError, match="not coupled"):
        device.validate_operation(cirq.CZ(QB("QB1"), QB("QB2")))


def test_architecture_is_kept():
    spec = QuantumArchitectureSpecification.from_dict(SMALL)
    device = IQMDevice(spec)
    assert device.architecture is spec
    assert device.cz_pairs == ((QB("QB1"), QB("QB2")), (QB("QB2"), QB("QB3")))
    assert cirq_iqm_ext.device.builtin.BUILTIN_DEVICES["Adonis"] is Adonis
    assert cirq_iqm_ext.device.iqm_device.MAX_REPORTED_VIOLATIONS == 20
