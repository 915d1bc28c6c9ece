"""Transfer format: golden JSON both directions, validation messages, tolerance of newer servers."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

import numpy as np
import pytest

from cirq_iqm_ext.errors import ModelValidationError
from cirq_iqm_ext.wire.json import to_json_dict
from cirq_iqm_ext.wire.models import (
    Circuit,
    HeraldingMode,
    Instruction,
    QuantumArchitectureSpecification,
    RunRequest,
    RunResult,
    RunStatus,
    SingleQubitMapping,
    Status,
)

GOLDEN = Path(__file__).parent / "golden"


def load(name: str) -> dict:
    return json.loads((GOLDEN / name).read_text())


def bell_request() -> RunRequest:
    """The object form of golden/run_request.json, built by hand."""
    instructions = (
        Instruction("prx", ["alice"], {"angle_t": 0.25, "phase_t": 0.25}),
        Instruction("prx", ["bob"], {"angle_t": 0.25, "phase_t": 0.25}),
        Instruction("cz", ["alice", "bob"]),
        Instruction("prx", ["bob"], {"angle_t": 0.25, "phase_t": 0.75}, "drag_gaussian"),
        Instruction("barrier", ["alice", "bob"]),
        Instruction("measure", ["alice", "bob"], {"key": "m"}),
    )
    circuit = Circuit("bell", instructions, {"experiment": "bell", "angles": np.array([0.5, 1.0])})
    return RunRequest(
        circuits=(circuit,),
        shots=1000,
        qubit_mapping=(SingleQubitMapping("alice", "QB1"), SingleQubitMapping("bob", "QB3")),
        calibration_set_id=UUID("9ddb9586-8f27-49a9-90ed-41086b47f6bd"),
        custom_settings={"some_setting": 1},
        max_circuit_duration_over_t2=0.5,
        heralding_mode=HeraldingMode.ZEROS,
    )


def test_run_request_dumps_exactly_the_golden_json():
    assert bell_request().to_dict() == load("run_request.json")


def test_run_request_parses_the_golden_json():
    assert RunRequest.from_dict(load("run_request.json")) == bell_request()


@pytest.mark.parametrize(
    "name",
    ["run_request.json", "run_request_minimal.json"],
)
def test_run_request_round_trip(name: str):
    data = load(name)
    assert RunRequest.from_dict(data).to_dict() == data


@pytest.mark.parametrize("name", ["run_result.json", "run_result_failed.json"])
def test_run_result_round_trip(name: str):
    data = load(name)
    assert RunResult.from_dict(data).to_dict() == data


def test_run_result_fields():
    result = RunResult.from_dict(load("run_result.json"))
    assert result.status is Status.READY
    assert result.measurements == [{"m": [[0, 0], [1, 1], [1, 1]]}]
    assert result.metadata.calibration_set_id == UUID("9ddb9586-8f27-49a9-90ed-41086b47f6bd")
    assert result.metadata.request.shots == 3
    assert result.metadata.request.circuits[0].name == "bell"
    assert list(result.metadata.timestamps)[0] == "job_start"


def test_run_status_round_trip():
    data = load("run_status.json")
    status = RunStatus.from_dict(data)
    assert status == RunStatus(Status.PENDING_EXECUTION, "queued", ("calibration is 3 days old",))
    assert status.to_dict() == data


def test_static_architecture_round_trip():
    data = load("architecture_static.json")
    spec = QuantumArchitectureSpecification.from_dict(data)
    assert spec.to_dict() == data
    assert spec.name == "Adonis"
    assert spec.loci("cz")[2] == ("QB4", "QB3")
    # The unwrapped form parses to the same thing.
    assert QuantumArchitectureSpecification.from_dict(data["quantum_architecture"]) == spec


def test_list_form_architecture_with_deprecated_names():
    spec = QuantumArchitectureSpecification.from_dict(load("architecture_list_form.json"))
    assert spec.to_dict() == load("architecture_list_form_expected.json")


def test_dynamic_architecture():
    spec = QuantumArchitectureSpecification.from_dict(load("architecture_dynamic.json"))
    assert spec.to_dict() == load("architecture_dynamic_expected.json")
    assert spec.calibration_set_id == UUID("26c5e70f-bea0-43af-bd37-6212ec7d04cb")


def test_equivalent_operations_ignore_cz_direction():
    a = QuantumArchitectureSpecification("a", ("QB1", "QB2"), (), {"cz": (("QB1", "QB2"),)})
    b = QuantumArchitectureSpecification("b", ("QB1", "QB2"), (), {"cz": (("QB2", "QB1"),)})
    c = QuantumArchitectureSpecification("c", ("QB1", "QB2"), (), {"move": (("QB2", "QB1"),)})
    d = QuantumArchitectureSpecification("d", ("QB1", "QB2"), (), {"move": (("QB1", "QB2"),)})
    assert a.has_equivalent_operations(b)
    assert not c.has_equivalent_operations(d)


def test_deprecated_instruction_names_are_rewritten():
    inst = Instruction.from_dict(
        {"name": "phased_rx", "qubits": ["QB1"], "args": {"angle_t": 1, "phase_t": 0}}
    )
    assert inst.name == "prx"
    assert inst.args == {"angle_t": 1.0, "phase_t": 0.0}
    assert isinstance(inst.args["angle_t"], float)
    measure = Instruction.from_dict(
        {"name": "measurement", "qubits": ["QB1"], "args": {"key": "k"}}
    )
    assert measure.name == "measure"


def test_unknown_status_is_tolerated():
    status = RunStatus.from_dict({"status": "pending quantum magic", "new_field": 1})
    assert not status.status.is_known
    assert status.status.value == "pending quantum magic"
    assert not status.status.is_final
    assert Status("ready").is_known


def test_unknown_extra_fields_are_tolerated_and_kept_in_metadata():
    data = load("run_result.json")
    data["brand_new_field"] = {"x": 1}
    data["metadata"]["queue_position"] = 3
    result = RunResult.from_dict(data)
    assert result.metadata.extra == {"queue_position": 3}
    assert result.metadata.to_dict()["queue_position"] == 3


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Instruction("prx", ["QB1"], {"angle_t": 0.5}), "takes ['angle_t', 'phase_t']"),
        (
            lambda: Instruction("prx", ["QB1"], {"angle_t": "0.5", "phase_t": 0}),
            'Argument "angle_t" of the "prx" instruction must be int or float, got str',
        ),
        (
            lambda: Instruction("prx", ["QB1"], {"angle_t": True, "phase_t": 0}),
            "must be int or float, got bool",
        ),
        (
            lambda: Instruction("prx", ["QB1"], {"angle_t": float("nan"), "phase_t": 0}),
            "must be finite",
        ),
        (lambda: Instruction("prx", ["QB1", "QB2"], {"angle_t": 0, "phase_t": 0}), "acts on 1"),
        (lambda: Instruction("cz", ["QB1"]), 'The "cz" instruction acts on 2 qubit(s), but 1'),
        (lambda: Instruction("cz", ["QB1", "QB1"]), "lists a qubit more than once"),
        (lambda: Instruction("cz", ["QB1", "QB2"], {"x": 1}), "takes no arguments"),
        (lambda: Instruction("measure", ["QB1"], {"key": 3}), 'Argument "key"'),
        (lambda: Instruction("measure", [], {"key": "m"}), "needs at least one qubit"),
        (lambda: Instruction("hadamard", ["QB1"]), "Unknown instruction 'hadamard'"),
        (lambda: Instruction("cz", "QB1"), "needs a list of qubit names"),
        (lambda: Instruction("cz", ["QB1", 2]), "A qubit name"),
        (lambda: Instruction("cz", ["QB1", "QB2"], implementation=""), "empty implementation"),
        (lambda: Circuit("", (Instruction("cz", ["a", "b"]),)), "non-empty"),
        (lambda: Circuit("c", ()), "has no instructions"),
        (lambda: Circuit("c", ("cz",)), "not an Instruction"),  # type: ignore[arg-type]
        (
            lambda: Circuit("c", (Instruction("cz", ["a", "b"]),), {"f": object()}),
            "metadata of circuit 'c' is not JSON-serialisable",
        ),
        (
            lambda: Circuit("c", (Instruction("cz", ["a", "b"]),), {"f": float("inf")}),
            "not JSON-serialisable",
        ),
        (lambda: RunRequest((), shots=1), "at least one circuit"),
        (lambda: RunRequest((_circuit(),), shots=0), "shots must be a positive integer, got 0"),
        (lambda: RunRequest((_circuit(),), shots=2.5), "shots must be int"),  # type: ignore
        (
            lambda: RunRequest((_circuit(),), heralding_mode="ones"),  # type: ignore[arg-type]
            "heralding_mode must be 'none' or 'zeros'",
        ),
        (
            lambda: RunRequest((_circuit(),), calibration_set_id="nope"),  # type: ignore[arg-type]
            "calibration_set_id must be a UUID",
        ),
        (
            lambda: RunRequest((_circuit(),), max_circuit_duration_over_t2=-1.0),
            "finite number >= 0",
        ),
        (
            lambda: RunRequest(
                (_circuit(),),
                qubit_mapping=(SingleQubitMapping("a", "QB1"), SingleQubitMapping("b", "QB1")),
            ),
            "not injective: physical name(s) ['QB1']",
        ),
        (
            lambda: RunRequest((_circuit(),), qubit_mapping=(SingleQubitMapping("a", "QB1"),)),
            "uses qubit(s) ['b'] that the qubit_mapping does not map",
        ),
    ],
)
def test_bad_values_are_refused_with_clear_messages(build, message):
    with pytest.raises(ModelValidationError) as info:
        build()
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def _circuit() -> Circuit:
    return Circuit(
        "c", (Instruction("cz", ["a", "b"]), Instruction("measure", ["a"], {"key": "m"}))
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "must be a JSON object"),
        ({"shots": 1}, 'missing the field "circuits"'),
        ({"circuits": {}}, "must be a list"),
        ({"circuits": [{"name": "c"}]}, 'missing the field "instructions"'),
        ({"circuits": [{"name": "c", "instructions": [{"qubits": []}]}]}, '"name"'),
        ({"circuits": [{"name": "c", "instructions": "x"}]}, "must be a list"),
        ({"circuits": [1]}, "A circuit must be a JSON object"),
        (
            {
                "circuits": [
                    {
                        "name": "c",
                        "instructions": [{"name": "cz", "qubits": ["a", "b"], "args": []}],
                    }
                ]
            },
            'The "args" of an instruction must be an object',
        ),
        ({"circuits": [], "qubit_mapping": "x"}, "qubit_mapping must be a list"),
        ({"circuits": [], "qubit_mapping": [{"logical_name": "a"}]}, "'physical_name'"),
    ],
)
def test_malformed_json_is_refused(data, message):
    with pytest.raises(ModelValidationError) as info:
        RunRequest.from_dict(data)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, 'missing the field "status"'),
        ({"status": 3}, "must be str"),
        ({"status": "ready", "warnings": "x"}, '"warnings"'),
        ({"status": "ready", "message": 5}, '"message"'),
    ],
)
def test_malformed_status_is_refused(data, message):
    with pytest.raises(ModelValidationError) as info:
        RunStatus.from_dict(data)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"status": "ready", "metadata": {"request": {}}}, 'no "measurements"'),
        ({"status": "ready", "measurements": []}, 'missing the field "metadata"'),
        ({"status": "ready", "measurements": [], "metadata": {}}, '"request"'),
        ({"status": "ready", "measurements": [1], "metadata": {"request": {}}}, "entry 0"),
        (
            {"status": "ready", "measurements": [{"m": [1]}], "metadata": {"request": {}}},
            "key 'm'",
        ),
        (
            {"status": "ready", "measurements": [], "metadata": {"request": {}, "timestamps": 1}},
            "timestamps",
        ),
    ],
)
def test_malformed_result_is_refused(data, message):
    with pytest.raises(ModelValidationError) as info:
        RunResult.from_dict(data)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x"}, 'missing the field "qubits"'),
        ({"name": "x", "qubits": ["QB1"], "qubit_connectivity": [], "operations": 3}, "operations"),
        (
            {
                "name": "x",
                "qubits": ["QB1"],
                "qubit_connectivity": [["QB1", "QB9"]],
                "operations": {},
            },
            "unknown qubit(s) ['QB9']",
        ),
        (
            {"name": "x", "qubits": ["QB1", "QB1"], "qubit_connectivity": [], "operations": {}},
            "twice",
        ),
        ({"qubits": ["QB1"], "gates": {"prx": {}}}, 'has no "implementations"'),
    ],
)
def test_malformed_architecture_is_refused(data, message):
    with pytest.raises(ModelValidationError) as info:
        QuantumArchitectureSpecification.from_dict(data)
    assert message in str(info.value)


def test_to_json_dict_converts_numpy():
    converted = to_json_dict(
        {"a": np.int64(3), "b": np.array([[1, 2]]), "c": (np.float32(0.5),), "d": {"e": None}}
    )
    assert converted == {"a": 3, "b": [[1, 2]], "c": [0.5], "d": {"e": None}}
    assert json.dumps(converted)
    with pytest.raises(TypeError, match="JSON object keys must be strings"):
        to_json_dict({1: 2})  # type: ignore[dict-item]


# ----------------------------------------------------------------------------- delay (a wait)


def test_delay_takes_a_duration_in_seconds_on_one_or_more_qubits():
    one = Instruction("delay", ["QB1"], {"duration": 1.5e-6})
    assert one.to_dict() == {"name": "delay", "qubits": ["QB1"], "args": {"duration": 1.5e-6}}
    assert Instruction.from_dict(one.to_dict()) == one
    several = Instruction("delay", ("QB1", "QB2", "COMP_R"), {"duration": 0})
    assert several.args == {"duration": 0.0} and type(several.args["duration"]) is float
    request = RunRequest((Circuit("c", (several, Instruction("measure", ["QB1"], {"key": "m"}))),))
    assert RunRequest.from_dict(request.to_dict()) == request


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"duration": -1e-9}, 'Argument "duration" of the "delay" instruction must be >= 0'),
        ({"duration": True}, 'Argument "duration" of the "delay" instruction must be int or float'),
        ({"duration": "1e-6"}, 'Argument "duration" of the "delay" instruction must be int or'),
        ({"duration": float("nan")}, 'Argument "duration" of the "delay" instruction must be fin'),
        ({"duration": float("inf")}, 'Argument "duration" of the "delay" instruction must be fin'),
        ({"duration": 10**400}, '"duration" of the "delay" instruction must be finite, got an int'),
        ({}, "takes ['duration'], but got []"),
        ({"duration": 1e-6, "unit": "s"}, "takes ['duration'], but got ['duration', 'unit']"),
    ],
)
def test_bad_delay_durations_are_refused_naming_the_field(args, message):
    with pytest.raises(ModelValidationError) as info:
        Instruction("delay", ["QB1"], args)
    assert message in str(info.value)


def test_delay_needs_a_qubit_and_no_repeats():
    with pytest.raises(ModelValidationError, match="at least one qubit"):
        Instruction("delay", [], {"duration": 1e-6})
    with pytest.raises(ModelValidationError, match="more than once"):
        Instruction("delay", ["QB1", "QB1"], {"duration": 1e-6})


def test_huge_ints_elsewhere_are_refused_too():
    with pytest.raises(ModelValidationError, match='"angle_t" of the "prx" instruction'):
        Instruction("prx", ["QB1"], {"angle_t": 10**400, "phase_t": 0.0})
    with pytest.raises(ModelValidationError, match="max_circuit_duration_over_t2"):
        RunRequest((_circuit(),), max_circuit_duration_over_t2=10**400)


def test_delay_is_listed_without_loci_in_every_architecture_form():
    listed = QuantumArchitectureSpecification.from_dict(
        {
            "name": "Pair",
            "qubits": ["QB1", "QB2"],
            "qubit_connectivity": [["QB1", "QB2"]],
            "operations": ["prx", "cz", "measure", "barrier", "delay"],
        }
    )
    assert listed.operations["delay"] == () and listed.operations["barrier"] == ()
    dynamic = QuantumArchitectureSpecification.from_dict(
        {
            "qubits": ["QB1", "QB2"],
            "computational_resonators": [],
            "gates": {
                "prx": {"implementations": {"drag_gaussian": {"loci": [["QB1"], ["QB2"]]}}},
                "delay": {"implementations": {"wait": {"loci": [["QB1"], ["QB2"]]}}},
            },
        }
    )
    assert dynamic.operations["delay"] == ()
    assert dynamic.qubit_connectivity == ()
    assert (
        "delay"
        not in QuantumArchitectureSpecification.from_dict(
            load("architecture_static.json")
        ).operations
    )
