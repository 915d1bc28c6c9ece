"""Unit tests of the protocol profiles: conversions (turns/radians, statuses, DQA, artifacts,
timelines), golden job definitions both ways, and ``auto`` detection over ``MockTransport``."""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

import httpx
import numpy as np
import pytest

from cirq_iqm_ext import IQMClient
from cirq_iqm_ext.client.iqm_client import IQMServerWarning
from cirq_iqm_ext.client.profiles.base import API_CHOICES
from cirq_iqm_ext.errors import (
    CircuitExecutionError,
    CircuitValidationError,
    ClientAuthenticationError,
    ClientConfigurationError,
    ServerResponseError,
)
from cirq_iqm_ext.wire.iqm_server_format import (
    JobDefinitionError,
    architecture_from_dqa,
    instruction_from_iqm_server,
    instruction_to_iqm_server,
    job_definition_from_run_request,
    job_definition_to_run_request,
    radians_to_turns,
    run_request_from_job_definition,
    run_request_to_job_definition,
    status_from_iqm_server,
    status_to_iqm_server,
    timeline_from_timestamps,
    timestamps_from_timeline,
    turns_to_radians,
)
from cirq_iqm_ext.wire.models import Circuit, Instruction, RunRequest, Status

CAL = "26c5e70f-bea0-43af-bd37-6212ec7d04cb"
HALF_PI = 1.5707963267948966

#: PROTOCOL_IQM_SERVER.md §3.4, as client 36 sends it.
GOLDEN_JOB_DEFINITION: dict[str, Any] = {
    "circuits": [
        {
            "name": "bell",
            "instructions": [
                {
                    "name": "prx",
                    "locus": ["QB1"],
                    "args": {"angle": HALF_PI, "phase": HALF_PI},
                    "implementation": None,
                },
                {"name": "move", "locus": ["QB2", "COMP_R"], "args": {}, "implementation": None},
                {"name": "cz", "locus": ["QB1", "COMP_R"], "args": {}, "implementation": None},
                {"name": "move", "locus": ["QB2", "COMP_R"], "args": {}, "implementation": None},
                {
                    "name": "measure",
                    "locus": ["QB1", "QB2"],
                    "args": {"key": "m"},
                    "implementation": None,
                },
            ],
            "metadata": None,
        }
    ],
    "calibration_set_id": CAL,
    "qubit_mapping": None,
    "shots": 100,
    "max_circuit_duration_over_t2": None,
    "heralding_mode": "none",
    "move_gate_validation": "strict",
    "move_gate_frame_tracking": "full",
    "active_reset_cycles": None,
    "dd_mode": "disabled",
    "dd_strategy": None,
    "move_validation_mode": "strict",
    "move_gate_frame_tracking_mode": "full",
}

#: The same job in v1 form (turns, ``qubits``), as the canonical store keeps it.
GOLDEN_RUN_REQUEST: dict[str, Any] = {
    "shots": 100,
    "heralding_mode": "none",
    "calibration_set_id": CAL,
    "circuits": [
        {
            "name": "bell",
            "instructions": [
                {"name": "prx", "qubits": ["QB1"], "args": {"angle_t": 0.25, "phase_t": 0.25}},
                {"name": "move", "qubits": ["QB2", "COMP_R"], "args": {}},
                {"name": "cz", "qubits": ["QB1", "COMP_R"], "args": {}},
                {"name": "move", "qubits": ["QB2", "COMP_R"], "args": {}},
                {"name": "measure", "qubits": ["QB1", "QB2"], "args": {"key": "m"}},
            ],
        }
    ],
}


# ------------------------------------------------------------------------------------ units


@pytest.mark.parametrize("turns", [0.0, 0.25, 0.5, -0.125, 1.0, 0.1])
def test_turns_and_radians_round_trip(turns):
    radians = turns_to_radians(turns)
    assert radians == pytest.approx(2 * math.pi * turns)
    assert type(radians) is float
    assert radians_to_turns(radians) == pytest.approx(turns, abs=1e-15)


def test_client_always_sends_float_angles():
    out = instruction_to_iqm_server(
        {"name": "prx", "qubits": ["QB1"], "args": {"angle_t": 0, "phase_t": 0}}
    )
    assert out == {
        "name": "prx",
        "locus": ["QB1"],
        "args": {"angle": 0.0, "phase": 0.0},
        "implementation": None,
    }
    assert json.dumps(out["args"]) == '{"angle": 0.0, "phase": 0.0}'


def test_server_accepts_int_angles_and_rejects_bools_and_non_finite():
    where = "circuit 0, instruction 0"
    ok = instruction_from_iqm_server(
        {"name": "prx", "locus": ["QB1"], "args": {"angle": 0, "phase": 0}}, where
    )
    assert ok["args"] == {"angle_t": 0.0, "phase_t": 0.0}
    for bad in (True, "1.0", float("nan"), float("inf")):
        with pytest.raises(JobDefinitionError, match="angle"):
            instruction_from_iqm_server(
                {"name": "prx", "locus": ["QB1"], "args": {"angle": bad, "phase": 0.0}}, where
            )


@pytest.mark.parametrize(
    ("instruction", "code", "message"),
    [
        (
            {"name": "foo", "locus": ["QB1"], "args": {}},
            "circuit_validation_error",
            "Unknown quantum operation 'foo'.",
        ),
        (
            {"name": "prx", "locus": ["QB1"], "args": {"angle_t": 0.1, "phase_t": 0.0}},
            "circuit_validation_error",
            "takes the arguments",
        ),
        ({"name": "cz", "locus": ["QB1"], "args": {}}, "circuit_validation_error", "acts on 2"),
        (
            {"name": "cz", "locus": ["QB1", "QB1"], "args": {}},
            "circuit_validation_error",
            "repeats",
        ),
        (
            {"name": "cz", "locus": ["QB1", "QB2"], "qubits": ["QB1", "QB2"]},
            "invalid_request",
            "not both",
        ),
    ],
)
def test_static_instruction_checks(instruction, code, message):
    with pytest.raises(JobDefinitionError, match=message) as info:
        instruction_from_iqm_server(instruction, "circuit 0, instruction 0")
    assert info.value.error_code == code


def test_legacy_qubits_field_and_feedback_key_are_accepted():
    legacy = instruction_from_iqm_server(
        {"name": "measure", "qubits": ["QB1"], "args": {"key": "m", "feedback_key": "f"}}, "x"
    )
    assert legacy == {
        "name": "measure",
        "qubits": ["QB1"],
        "args": {"key": "m", "feedback_key": "f"},
    }


# -------------------- job definitions


def test_golden_run_request_to_job_definition():
    assert run_request_to_job_definition(GOLDEN_RUN_REQUEST) == GOLDEN_JOB_DEFINITION


def test_golden_job_definition_to_run_request():
    request, options = job_definition_to_run_request(GOLDEN_JOB_DEFINITION)
    assert request == GOLDEN_RUN_REQUEST
    assert options["move_gate_validation"] == "strict" and options["dd_mode"] == "disabled"
    RunRequest.from_dict(request)  # valid v1


def test_echo_round_trip_keeps_options_and_metadata():
    definition = json.loads(json.dumps(GOLDEN_JOB_DEFINITION))
    definition["circuits"][0]["metadata"] = {"k": [1, 2]}
    definition["move_gate_validation"] = "allow_prx"
    request, options = job_definition_to_run_request(definition)
    echoed = job_definition_from_run_request(request, options)
    assert echoed["move_gate_validation"] == echoed["move_validation_mode"] == "allow_prx"
    assert echoed["circuits"][0]["metadata"] == {"k": [1, 2]}
    assert run_request_from_job_definition(echoed)["circuits"] == request["circuits"]


def test_a_run_request_from_the_transfer_format_converts():
    circuit = Circuit(
        "c",
        (
            Instruction("prx", ["a"], {"angle_t": 0.5, "phase_t": 0.0}),
            Instruction("measure", ["a"], {"key": "m"}),
        ),
    )
    request = RunRequest((circuit,), shots=3, qubit_mapping=None)
    definition = run_request_to_job_definition(request.to_dict(), uuid.UUID(CAL))
    assert definition["calibration_set_id"] == CAL
    assert definition["circuits"][0]["instructions"][0]["args"] == {"angle": math.pi, "phase": 0.0}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"shots": True}, "shots must be a positive integer"),
        ({"shots": 0}, "shots must be a positive integer"),
        ({"dd_mode": "sometimes"}, "dd_mode must be one of"),
        ({"heralding_mode": "ones"}, "heralding_mode must be one of"),
        ({"move_gate_validation": "none"}, "Unable to perform full MOVE gate frame tracking"),
        ({"circuits": ["QIR text"]}, "QIR programs are not supported"),
        ({"circuits": []}, "non-empty list"),
        ({"calibration_set_id": "nope"}, "calibration_set_id must be a UUID"),
        (
            {
                "qubit_mapping": [
                    {"logical_name": "a", "physical_name": "QB1"},
                    {"logical_name": "b", "physical_name": "QB1"},
                ]
            },
            "Multiple logical qubits map to the same physical qubit.",
        ),
    ],
)
def test_job_definition_errors(change, message):
    definition = {**GOLDEN_JOB_DEFINITION, "move_validation_mode": None, **change}
    with pytest.raises(JobDefinitionError, match=message):
        job_definition_to_run_request(definition)


def test_duplicate_keys_are_a_circuit_validation_error():
    definition = json.loads(json.dumps(GOLDEN_JOB_DEFINITION))
    definition["circuits"][0]["instructions"].append(
        {"name": "measure", "locus": ["QB3"], "args": {"key": "m"}, "implementation": None}
    )
    with pytest.raises(JobDefinitionError, match="'m' is used more than once") as info:
        job_definition_to_run_request(definition)
    assert info.value.error_code == "circuit_validation_error"


# ------------------------------------------------------------------------------------ statuses


@pytest.mark.parametrize(
    ("status", "compilation", "expected"),
    [
        ("waiting", None, Status.PENDING_COMPILATION),
        ("waiting", {"calibration_set_id": CAL}, Status.PENDING_EXECUTION),
        ("processing", None, Status.PENDING_EXECUTION),
        ("completed", None, Status.READY),
        ("failed", None, Status.FAILED),
        ("cancelled", None, Status.ABORTED),
    ],
)
def test_status_from_iqm_server(status, compilation, expected):
    assert status_from_iqm_server(status, compilation) is expected


def test_unknown_status_stays_pending():
    status = status_from_iqm_server("pondering")
    assert not status.is_known and not status.is_final


@pytest.mark.parametrize(
    ("status", "stamps", "expected"),
    [
        ("pending compilation", {}, "waiting"),
        ("pending compilation", {"compile_start": "t"}, "processing"),
        ("pending execution", {"compile_end": "t"}, "waiting"),
        ("pending execution", {"execution_start": "t"}, "processing"),
        ("ready", {}, "completed"),
        ("failed", {}, "failed"),
        ("aborted", {}, "cancelled"),
    ],
)
def test_status_to_iqm_server(status, stamps, expected):
    assert status_to_iqm_server(status, stamps) == expected


def test_timeline_round_trip():
    stamps = {
        k: f"2026-01-01T00:00:0{i}.000Z"
        for i, k in enumerate(
            [
                "job_start",
                "compile_start",
                "compile_end",
                "submit_start",
                "submit_end",
                "execution_start",
                "execution_end",
                "job_end",
            ]
        )
    }
    timeline = timeline_from_timestamps(stamps, "completed")
    assert [e["status"] for e in timeline] == [
        "created",
        "compilation_started",
        "compilation_ended",
        "execution_started",
        "execution_ended",
        "completed",
    ]
    back = timestamps_from_timeline(
        [*timeline, {"status": "something_new", "timestamp": "x"}, "junk"]
    )
    assert back == {k: v for k, v in stamps.items() if not k.startswith("submit")}


# ------------------------------------------------------------------------------------ architecture

DQA = {
    "calibration_set_id": CAL,
    "qubits": ["QB1", "QB2", "QB3"],
    "computational_resonators": ["COMP_R"],
    "gates": {
        "prx": {
            "implementations": {"drag_gaussian": {"loci": [["QB1"], ["QB2"], ["QB3"]]}},
            "default_implementation": "drag_gaussian",
            "override_default_implementation": {},
        },
        "measure": {
            "implementations": {"constant": {"loci": [["QB1"], ["QB2"], ["QB3"]]}},
            "default_implementation": "constant",
            "override_default_implementation": {},
        },
        "cz": {
            "implementations": {
                "tgss": {"loci": [["QB1", "COMP_R"], ["QB2", "COMP_R"]]},
                "slow": {"loci": [["QB3", "COMP_R"], ["QB1", "COMP_R"]]},
            },
            "default_implementation": "tgss",
            "override_default_implementation": {},
        },
        "move": {
            "implementations": {"tgss_crf": {"loci": [["QB1", "COMP_R"], ["QB2", "COMP_R"]]}},
            "default_implementation": "tgss_crf",
            "override_default_implementation": {},
        },
    },
}


def test_architecture_from_dqa():
    spec = architecture_from_dqa(DQA, "Deneb")
    assert spec.name == "Deneb"
    assert spec.qubits == ("QB1", "QB2", "QB3", "COMP_R")
    assert spec.computational_resonators == ("COMP_R",)
    assert spec.calibration_set_id == uuid.UUID(CAL)
    assert spec.operations["cz"] == (
        ("QB1", "COMP_R"),
        ("QB2", "COMP_R"),
        ("QB3", "COMP_R"),
    )  # union
    assert spec.operations["barrier"] == ()
    assert set(spec.qubit_connectivity) == {("QB1", "COMP_R"), ("QB2", "COMP_R"), ("QB3", "COMP_R")}


# -------------------- client over MockTransport

JOB = uuid.UUID("3c3fcb6a-2a57-4e2f-9d0c-0d2a5c1b8a11")
QCS = {
    "quantum_computers": [
        {
            "id": str(uuid.uuid4()),
            "alias": "deneb",
            "display_name": "Deneb (simulated)",
            "proxy_path": None,
        }
    ]
}


class Fake:
    """An IQM Server API stand-in that records requests."""

    def __init__(self, status: str = "completed", **overrides: Any):
        self.requests: list[httpx.Request] = []
        self.status = status
        self.routes: dict[str, Any] = {
            "GET /api/v1/quantum-computers": (200, QCS),
            "GET /api/v1/calibration-sets/deneb/default/dynamic-quantum-architecture": (200, DQA),
            "POST /api/v1/jobs/deneb/circuit": (
                200,
                {"id": str(JOB), "type": "circuit", "status": "waiting"},
            ),
            f"GET /api/v1/jobs/{JOB}": (200, self.job_data()),
            f"GET /api/v1/jobs/{JOB}/payload": (200, GOLDEN_JOB_DEFINITION),
            f"GET /api/v1/jobs/{JOB}/artifacts/measurements": (200, [{"m": [[0, 1], [1, 0]]}]),
            f"GET /api/v1/jobs/{JOB}/artifacts/measurement_counts": (
                200,
                [{"measurement_keys": ["m"], "counts": {"01": 1, "10": 1}}],
            ),
            f"POST /api/v1/jobs/{JOB}/cancel": (200, {}),
            **overrides,
        }

    def job_data(self) -> dict[str, Any]:
        return {
            "id": str(JOB),
            "type": "circuit",
            "status": self.status,
            "queue_position": None,
            "compilation": {"calibration_set_id": CAL},
            "messages": [{"source": "s", "message": "be careful"}],
            "errors": [{"message": "it broke", "error_code": None, "source": "s"}]
            if self.status == "failed"
            else [],
            "timeline": [
                {"source": "s", "status": "created", "timestamp": "2026-01-01T00:00:00.000Z"}
            ],
            "artifacts": [],
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status, body = self.routes.get(
            f"{request.method} {request.url.path}",
            (404, {"message": "nope", "detail": "nope", "error_code": "not_found"}),
        )
        return httpx.Response(status, json=body)


def make(fake: Fake, url: str = "http://127.0.0.1:9", **kwargs: Any) -> IQMClient:
    kwargs.setdefault("environ", {})
    return IQMClient(url, transport=httpx.MockTransport(fake), sleep=lambda s: None, **kwargs)


def test_auto_detects_iqm_server_lazily_and_converts_everything(recwarn):
    fake = Fake()
    client = make(fake)
    assert fake.requests == [] and "api='auto'" in repr(client)
    arch = client.get_quantum_architecture()
    assert client.api == "iqm-server" and arch.name == "Deneb"
    assert "api='iqm-server', quantum_computer='deneb'" in repr(client)
    circuit = Circuit(
        "c",
        (
            Instruction("prx", ["QB1"], {"angle_t": 0.25, "phase_t": 0.0}),
            Instruction("measure", ["QB1"], {"key": "m"}),
        ),
    )
    assert client.submit_circuits([circuit], shots=2) == JOB
    posted = json.loads(fake.requests[-1].content)
    assert fake.requests[-1].url.params["use_timeslot"] == "false"
    assert "Idempotency-Key" in fake.requests[-1].headers
    assert posted["calibration_set_id"] == CAL  # the concrete default, resolved once
    assert posted["circuits"][0]["instructions"][0] == {
        "name": "prx",
        "locus": ["QB1"],
        "args": {"angle": HALF_PI, "phase": 0.0},
        "implementation": None,
    }
    result = client.wait_for_results(JOB)
    assert result.status is Status.READY and result.measurements is not None
    [measured] = result.measurements  # decoded straight into an int8 array
    assert list(measured) == ["m"] and measured["m"].dtype == np.int8
    assert measured["m"].tolist() == [[0, 1], [1, 0]]
    # The request this client sent is kept, not downloaded again from jobs/{id}/payload ...
    assert not [r for r in fake.requests if r.url.path.endswith("/payload")]
    assert result.metadata.request_dict["shots"] == 2
    assert result.metadata.request_dict["circuits"] == [circuit.to_dict()]
    # ... while a client that did not send the job reads the server's echo of it.
    assert make(fake).get_run(JOB).metadata.request_dict == {**GOLDEN_RUN_REQUEST}
    assert result.metadata.calibration_set_id == uuid.UUID(CAL)
    assert result.metadata.timestamps == {"job_start": "2026-01-01T00:00:00.000Z"}
    assert result.warnings == ("be careful",)
    assert client.get_run_counts(JOB) == {
        "status": "ready",
        "counts_batch": [{"measurement_keys": ["m"], "counts": {"01": 1, "10": 1}}],
        "warnings": ["be careful"],
    }
    client.abort_job(JOB)  # 200 even for a finished job
    assert sum(r.url.path.endswith("dynamic-quantum-architecture") for r in fake.requests) == 1


def test_failed_job_raises_with_the_errors():
    client = make(Fake(status="failed"), api="iqm-server")
    with (
        pytest.warns(IQMServerWarning, match="be careful"),
        pytest.raises(CircuitExecutionError, match="it broke"),
    ):
        client.get_run(JOB)


def test_auto_falls_back_to_v1_on_404_and_skips_the_probe_for_a_path():
    v1 = Fake(**{"GET /api/v1/quantum-computers": (404, {"detail": "Not found"})})
    assert make(v1).api == "cocos-v1"
    with_path = Fake()
    assert make(with_path, "http://127.0.0.1:9/cocos").api == "cocos-v1"
    assert with_path.requests == []


def test_auto_raises_instead_of_guessing():
    refused = Fake(
        **{"GET /api/v1/quantum-computers": (401, {"message": "who are you", "detail": "x"})}
    )
    with pytest.raises(ClientAuthenticationError, match="who are you"):
        _ = make(refused).api
    odd = Fake(**{"GET /api/v1/quantum-computers": (200, {"something": []})})
    with pytest.raises(ServerResponseError, match="Cannot tell which API"):
        _ = make(odd).api


def test_quantum_computer_selection():
    two = {
        "quantum_computers": [
            *QCS["quantum_computers"],
            {"id": "x", "alias": "garnet", "display_name": "G", "proxy_path": None},
        ]
    }
    with pytest.raises(ClientConfigurationError, match="Quantum computer not selected"):
        _ = make(Fake(**{"GET /api/v1/quantum-computers": (200, two)})).api
    with pytest.raises(
        ClientConfigurationError,
        match=r'"x" does not exist\. Available quantum computers are: deneb',
    ):
        make(Fake(), quantum_computer="x").get_quantum_architecture()


def test_iqm_server_validation_errors_on_submit():
    rejected = Fake(
        **{
            "POST /api/v1/jobs/deneb/circuit": (
                400,
                {
                    "message": "circuit 0: bad",
                    "detail": "circuit 0: bad",
                    "error_code": "circuit_validation_error",
                },
            )
        }
    )
    client = make(rejected, api="iqm-server")
    with pytest.raises(CircuitValidationError, match="circuit 0: bad"):
        client.submit_payload(GOLDEN_RUN_REQUEST)


def test_configuration_errors():
    with pytest.raises(ClientConfigurationError, match="api must be one of"):
        IQMClient("http://127.0.0.1:9", api="v2", environ={})
    with pytest.raises(ClientConfigurationError, match="Plain http is allowed only"):
        IQMClient("http://example.com", api="iqm-server", environ={})
    assert API_CHOICES == ("auto", "cocos-v1", "iqm-server")


def test_architecture_from_dqa_carries_delay_without_loci():
    with_delay = {
        **DQA,
        "gates": {
            **DQA["gates"],
            "delay": {
                "implementations": {"wait": {"loci": [["QB1"], ["QB2"], ["QB3"]]}},
                "default_implementation": "wait",
                "override_default_implementation": {},
            },
        },
    }
    spec = architecture_from_dqa(with_delay, "Deneb")
    assert spec.operations["delay"] == ()  # like barrier: any existing component
    assert set(spec.qubit_connectivity) == {("QB1", "COMP_R"), ("QB2", "COMP_R"), ("QB3", "COMP_R")}
    assert "delay" not in architecture_from_dqa(DQA, "Deneb").operations


def test_delay_instructions_convert_both_ways_and_bad_durations_are_refused():
    v1 = {"name": "delay", "qubits": ["QB1", "QB2"], "args": {"duration": 2e-6}}
    wire = instruction_to_iqm_server(v1)
    assert wire == {
        "name": "delay",
        "locus": ["QB1", "QB2"],
        "args": {"duration": 2e-6},
        "implementation": None,
    }
    assert instruction_from_iqm_server(wire, "here") == v1
    assert instruction_from_iqm_server({**wire, "args": {"duration": 0}}, "here")["args"] == {
        "duration": 0.0
    }
    for duration, code, phrase in [
        (-1.0, "circuit_validation_error", ">= 0 seconds"),
        (True, "invalid_request", "must be a number"),
        (10**400, "invalid_request", "too large"),
        (math.inf, "invalid_request", "finite"),
    ]:
        with pytest.raises(JobDefinitionError) as info:
            instruction_from_iqm_server({**wire, "args": {"duration": duration}}, "here")
        assert info.value.error_code == code
        assert '"duration"' in info.value.message and phrase in info.value.message
