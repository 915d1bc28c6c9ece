"""Calibration sets: built-in data, the JSON format, and the §4.2 / §4.3 payloads."""

from __future__ import annotations

import json

import pytest

from cirq_iqm_ext.calibration import (
    BUILTIN_CALIBRATIONS,
    CalibrationError,
    CalibrationSet,
    builtin_calibration,
    generate_calibration,
    load_calibration,
)
from cirq_iqm_ext.errors import IQMError, ModelValidationError
from cirq_iqm_ext.server import load_architecture
from cirq_iqm_ext.wire.models import QuantumArchitectureSpecification


@pytest.mark.parametrize("name", sorted(BUILTIN_CALIBRATIONS))
def test_builtin_sets_cover_their_architecture_with_realistic_figures(name):
    calibration = builtin_calibration(name)
    architecture = load_architecture(name)
    assert calibration.name == architecture.name
    resonators = set(architecture.computational_resonators)
    for qubit in architecture.qubits:
        figures = calibration.qubit(qubit)
        assert 10e-6 < figures.t1 < 100e-6
        assert 10e-6 < figures.t2 <= 2 * figures.t1
        if qubit in resonators:
            continue
        assert 0.997 < figures.prx_fidelity < 1
        assert 20e-9 <= figures.prx_duration <= 40e-9
        assert 0.005 < figures.readout_error_0_to_1 < figures.readout_error_1_to_0 < 0.06
    for op in ("prx", "cz", "measure", "move"):
        for locus in architecture.loci(op):
            fidelity, duration = calibration.gate(op, locus)
            assert 0.98 < fidelity <= 1
            if op == "cz":
                assert 40e-9 <= duration <= 80e-9
    assert calibration.measure_duration == pytest.approx(1.5e-6)


def test_json_round_trip_and_file_loading(tmp_path):
    original = builtin_calibration("adonis")
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(original.to_dict()))
    loaded = load_calibration(str(path))
    assert loaded == original
    assert CalibrationSet.from_dict(original.to_dict()).to_dict() == original.to_dict()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"qubits": {}}, "non-empty"),
        ({"qubits": {"QB1": {"t1": 1e-5}}}, 'missing "t2"'),
        ({"qubits": {"QB1": {"t1": 1e-5, "t2": 3e-5}}}, "cannot exceed 2 * T1"),
        ({"qubits": {"QB1": {"t1": 1e-5, "t2": 1e-5, "colour": 1}}}, "unknown field"),
        ({"qubits": {"QB1": {"t1": -1, "t2": 1e-5}}}, "positive"),
        ({"qubits": {"QB1": {"t1": 1e-5, "t2": 1e-5, "prx_fidelity": 0.9}}}, "both prx"),
        ({"couplers": {"QB1": {}}}, "two names"),
        ({"couplers": {"QB1,QB9": {}}}, "without figures"),
        ({"calibration_set_id": "nope"}, "UUID"),
    ],
)
def test_malformed_sets_are_rejected_with_a_clear_message(change, message):
    data = {"qubits": {"QB1": {"t1": 1e-5, "t2": 1e-5}}, **change}
    with pytest.raises(CalibrationError, match=message.replace("*", r"\*")):
        CalibrationSet.from_dict(data)


def test_load_calibration_errors_name_the_input(tmp_path):
    with pytest.raises(ValueError, match="Unknown calibration 'nowhere'"):
        load_calibration("nowhere")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="Cannot load the calibration file"):
        load_calibration(str(bad))


def test_metrics_payload_has_string_values_and_units():
    calibration = builtin_calibration("adonis")
    body = calibration.metrics()
    assert body["calibration_set_id"] == str(calibration.calibration_set_id)
    metrics = body["metrics"]
    assert metrics["QB1.t1_time"] == {"value": repr(calibration.qubit("QB1").t1), "unit": "s"}
    assert (
        float(metrics["QB1,QB3.cz.fidelity"]["value"])
        == calibration.coupler("QB1", "QB3").cz_fidelity
    )
    for key in (
        "QB2.t2_time",
        "QB3.prx.fidelity",
        "QB4.readout.error_0_to_1",
        "QB5.readout.error_1_to_0",
        "QB1.prx.duration",
        "QB1,QB3.cz.duration",
    ):
        assert isinstance(metrics[key]["value"], str)


def test_dynamic_architecture_lists_only_calibrated_loci_and_parses_back():
    architecture = load_architecture("adonis")
    data = builtin_calibration("adonis").to_dict()
    del data["couplers"]["QB1,QB3"]
    del data["qubits"]["QB5"]["prx_fidelity"], data["qubits"]["QB5"]["prx_duration"]
    body = CalibrationSet.from_dict(data).dynamic_architecture(architecture)
    assert body["gates"]["cz"]["default_implementation"] == "tgss"
    cz_loci = body["gates"]["cz"]["implementations"]["tgss"]["loci"]
    assert ["QB1", "QB3"] not in cz_loci and len(cz_loci) == 3
    parsed = QuantumArchitectureSpecification.from_dict(body)
    assert ("QB5",) not in parsed.loci("prx")
    assert ("QB5",) in parsed.loci("measure")
    assert str(parsed.calibration_set_id) == data["calibration_set_id"]


def test_deneb_resonator_has_coherence_but_no_single_qubit_figures():
    architecture = load_architecture("deneb")
    body = builtin_calibration("deneb").dynamic_architecture(architecture)
    assert body["computational_resonators"] == ["COMP_R"]
    assert "COMP_R" not in body["qubits"]
    assert "move" in body["gates"]


def test_generated_sets_are_reproducible():
    architecture = load_architecture("apollo")
    assert generate_calibration(architecture, seed=3) == generate_calibration(architecture, seed=3)
    assert generate_calibration(architecture, seed=3) != generate_calibration(architecture, seed=4)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nonexistent", "Unknown calibration 'nonexistent': use one of adonis"),
        (42, "The calibration must be a CalibrationSet, a built-in name, the path of a JSON"),
    ],
)
def test_a_bad_calibration_spec_is_an_iqm_error_naming_it(spec, message):
    with pytest.raises(CalibrationError) as refused:
        load_calibration(spec)
    assert message in str(refused.value)
    assert isinstance(refused.value, IQMError) and isinstance(refused.value, ValueError)


def test_a_calibration_file_that_is_not_json_is_an_iqm_error(tmp_path):
    path = tmp_path / "set.json"
    path.write_text("not json")
    with pytest.raises(CalibrationError, match=f"Cannot load the calibration file '{path}'"):
        load_calibration(path)


@pytest.mark.parametrize("spec", ["nope", 3.5])
def test_a_bad_architecture_spec_is_an_iqm_error(spec):
    with pytest.raises(ModelValidationError, match=repr(spec)) as refused:
        load_architecture(spec)
    assert isinstance(refused.value, IQMError) and isinstance(refused.value, ValueError)
