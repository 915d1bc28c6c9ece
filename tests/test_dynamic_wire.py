"""Dynamic circuits on the wire: ``reset``, ``cc_prx`` and ``measure.feedback_key``.

Conversions between the v1 transfer format and the IQM Server API (golden), the feedback-group
codec of IQM's channel properties, the validation rules (each at the client, which posts nothing,
and the same 400 at the server through raw HTTP, in both profiles), what the server lists with and
without ``dynamic``, and ``IQMClient.get_feedback_groups()``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cirq_iqm_ext.client.iqm_client import IQMClient
from cirq_iqm_ext.errors import CircuitValidationError
from cirq_iqm_ext.server import EmbeddedServer, load_architecture
from cirq_iqm_ext.wire.channel_properties import (
    ChannelPropertiesError,
    decode_feedback_sources,
    encode_feedback_channels,
    feedback_groups_from_sources,
)
from cirq_iqm_ext.wire.iqm_server_format import (
    JobDefinitionError,
    instruction_from_iqm_server,
    instruction_to_iqm_server,
    job_definition_to_run_request,
    run_request_to_job_definition,
)
from cirq_iqm_ext.wire.models import (
    Circuit,
    Instruction,
    RunRequest,
)
from cirq_iqm_ext.wire.protocol import ARCHITECTURE_EXTENSIONS_QUERY
from cirq_iqm_ext.wire.validation import allows_dynamic_circuits, circuit_violations

SUBMIT_KEY = {"cocos-v1": "POST jobs", "iqm-server": "POST api/v1/jobs/{qc}/circuit"}
PROFILES = tuple(SUBMIT_KEY)
GROUPS = [["QB1", "QB2", "QB3"], ["QB4", "QB5"]]


# ------------------------------------------------------------------------------------ helpers


def measure(*qubits: str, key: str, feedback_key: str | None = None) -> dict[str, Any]:
    args: dict[str, Any] = {"key": key}
    if feedback_key is not None:
        args["feedback_key"] = feedback_key
    return {"name": "measure", "qubits": list(qubits), "args": args}


def cc_prx(qubit: str, source: str, key: str, angle_t: float = 0.5) -> dict[str, Any]:
    return {
        "name": "cc_prx",
        "qubits": [qubit],
        "args": {
            "angle_t": angle_t,
            "phase_t": 0.0,
            "feedback_qubit": source,
            "feedback_key": key,
        },
    }


def reset(*qubits: str) -> dict[str, Any]:
    return {"name": "reset", "qubits": list(qubits), "args": {}}


def prx(qubit: str, angle_t: float = 0.5) -> dict[str, Any]:
    return {
        "name": "prx",
        "qubits": [qubit],
        "args": {"angle_t": angle_t, "phase_t": 0.0},
    }


def v1_body(*instructions: dict[str, Any], shots: int = 5) -> dict[str, Any]:
    return {
        "circuits": [{"name": "dyn", "instructions": list(instructions)}],
        "shots": shots,
    }


def circuit(*instructions: dict[str, Any]) -> Circuit:
    return Circuit("dyn", tuple(Instruction.from_dict(i) for i in instructions))


@pytest.fixture(scope="module")
def adonis() -> Iterator[EmbeddedServer]:
    with EmbeddedServer("adonis", seed=3, feedback_groups=GROUPS) as server:
        yield server


@pytest.fixture(scope="module")
def deneb() -> Iterator[EmbeddedServer]:
    with EmbeddedServer("deneb", seed=3) as server:
        yield server


@pytest.fixture(scope="module")
def plain() -> Iterator[EmbeddedServer]:
    with EmbeddedServer("adonis", seed=3, dynamic=False) as server:
        yield server


def server_detail(server: EmbeddedServer, api: str, body: dict[str, Any]) -> str:
    """Posts ``body`` (v1 form) raw through one API; returns the 400's message."""
    with httpx.Client(base_url=server.url, timeout=10) as http:
        if api == "cocos-v1":
            response = http.post("/jobs", json=body)
        else:
            alias = server.app.iqm_server_api.alias
            definition = run_request_to_job_definition(body)
            response = http.post(f"/api/v1/jobs/{alias}/circuit", json=definition)
    assert response.status_code == 400, response.text
    data = response.json()
    if api == "iqm-server":
        assert data["error_code"] == "circuit_validation_error", data
        return str(data["message"])
    return str(data["detail"])


def client_refusal(server: EmbeddedServer, api: str, body: dict[str, Any]) -> str:
    """Submits ``body`` through IQMClient; asserts it raised before posting anything."""
    request = RunRequest.from_dict(body)
    before = server.app.stats[SUBMIT_KEY[api]]
    with (
        IQMClient(server.url, api=api) as client,
        pytest.raises(CircuitValidationError) as info,
    ):
        client.submit_circuits(list(request.circuits), shots=request.shots)
    assert server.app.stats[SUBMIT_KEY[api]] == before, "the client posted an invalid job"
    return str(info.value)


def run(server: EmbeddedServer, api: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    request = RunRequest.from_dict(body)
    with IQMClient(server.url, api=api) as client:
        job_id = client.submit_circuits(list(request.circuits), shots=request.shots)
        result = client.wait_for_results(job_id, 30)
    assert result.measurements is not None
    return [{k: [list(map(int, s)) for s in v] for k, v in c.items()} for c in result.measurements]


# ------------------------------------------------------------------------------------ conversions


def test_cc_prx_measure_and_reset_convert_to_the_iqm_server_api_golden():
    v1 = [
        measure("QB1", key="m", feedback_key="f"),
        cc_prx("QB2", "QB1", "f", angle_t=0.25),
        reset("QB1", "QB2"),
    ]
    assert [instruction_to_iqm_server(i) for i in v1] == [
        {
            "name": "measure",
            "locus": ["QB1"],
            "args": {"key": "m", "feedback_key": "f"},
            "implementation": None,
        },
        {
            "name": "cc_prx",
            "locus": ["QB2"],
            "args": {
                "angle": math.pi / 2,
                "phase": 0.0,
                "feedback_qubit": "QB1",
                "feedback_key": "f",
            },
            "implementation": None,
        },
        {"name": "reset", "locus": ["QB1", "QB2"], "args": {}, "implementation": None},
    ]


def test_cc_prx_measure_and_reset_convert_from_the_iqm_server_api_golden():
    wire = [
        {
            "name": "measure",
            "locus": ["QB1"],
            "args": {"key": "m", "feedback_key": "f"},
        },
        {
            "name": "cc_prx",
            "locus": ["QB2"],
            "args": {
                "angle": math.pi,
                "phase": 0,
                "feedback_qubit": "QB1",
                "feedback_key": "f",
            },
        },
        {"name": "reset", "locus": ["QB3"], "args": {}, "implementation": None},
    ]
    converted = [instruction_from_iqm_server(i, "here") for i in wire]
    assert converted == [
        measure("QB1", key="m", feedback_key="f"),
        cc_prx("QB2", "QB1", "f", angle_t=0.5),
        reset("QB3"),
    ]
    assert isinstance(converted[1]["args"]["phase_t"], float)  # ints accepted as floats
    # Each parses into the canonical model, and back again unchanged.
    for item in converted:
        assert Instruction.from_dict(item).to_dict() == item


@pytest.mark.parametrize(
    ("instruction", "fragment"),
    [
        (
            {"name": "cc_prx", "locus": ["QB2"], "args": {"angle": 1.0, "phase": 0.0}},
            "arguments",
        ),
        ({"name": "reset", "locus": ["QB1"], "args": {"key": "x"}}, "arguments"),
        (
            {
                "name": "cc_prx",
                "locus": ["QB2"],
                "args": {
                    "angle": 1.0,
                    "phase": 0.0,
                    "feedback_qubit": 1,
                    "feedback_key": "f",
                },
            },
            "must be a string",
        ),
        ({"name": "cc_prx", "locus": ["QB1", "QB2"], "args": {}}, "acts on 1"),
    ],
)
def test_malformed_dynamic_instructions_are_refused_by_the_conversion(instruction, fragment):
    with pytest.raises(JobDefinitionError, match=fragment):
        instruction_from_iqm_server(instruction, "here")


def test_a_job_definition_with_feedback_round_trips():
    body = v1_body(measure("QB1", key="m", feedback_key="f"), cc_prx("QB1", "QB1", "f"))
    request, _ = job_definition_to_run_request(run_request_to_job_definition(body))
    assert request["circuits"] == body["circuits"]


# ------------------------------------------------------------------------------------ codec


def test_channel_properties_codec_round_trips_overlapping_groups():
    groups = [["QB1", "QB2"], ["QB2", "QB3"], ["QB4"]]
    data = encode_feedback_channels(["QB1", "QB2", "QB3", "QB4"], groups)
    sources = decode_feedback_sources(data)
    assert sources["QB2__drive.awg"] == ("PL-1__readout", "PL-2__readout")
    found = feedback_groups_from_sources(sources, ["QB1", "QB2", "QB3", "QB4"])
    assert found == (
        frozenset({"QB1", "QB2"}),
        frozenset({"QB2", "QB3"}),
        frozenset({"QB4"}),
    )
    # Channels of components that are not qubits are ignored, as client 36 ignores them.
    assert feedback_groups_from_sources(sources, ["QB1"]) == (frozenset({"QB1"}),)


def test_channel_properties_decoder_rejects_truncated_bytes():
    data = encode_feedback_channels(["QB1"], [["QB1"]])
    with pytest.raises(ChannelPropertiesError):
        decode_feedback_sources(data[:-3])


# ------------------------------------------------------------------------------------ validation


def test_allows_dynamic_circuits_follows_the_listed_operations():
    adonis = load_architecture("adonis")
    assert allows_dynamic_circuits(adonis)
    operations = {k: v for k, v in adonis.operations.items() if k not in ("reset", "cc_prx")}
    assert not allows_dynamic_circuits(
        type(adonis)(adonis.name, adonis.qubits, adonis.qubit_connectivity, operations)
    )


def test_cc_prx_counts_as_prx_in_allow_prx_sandwiches():
    deneb = load_architecture("deneb")
    move = {"name": "move", "qubits": ["QB2", "COMP_R"], "args": {}}
    sandwich = circuit(
        measure("QB2", key="m", feedback_key="f"), move, cc_prx("QB2", "QB2", "f"), move
    )
    kwargs: dict[str, Any] = {"allow_mid_circuit_measurement": True}
    assert circuit_violations(sandwich, 0, deneb, move_gate_validation="allow_prx", **kwargs) == []
    strict = circuit_violations(sandwich, 0, deneb, move_gate_validation="strict", **kwargs)
    assert len(strict) == 1 and "Instruction cc_prx acts on ('QB2',)" in strict[0]


def test_feedback_groups_restrict_cc_prx_in_validation():
    adonis = load_architecture("adonis")
    job = circuit(measure("QB1", key="m", feedback_key="f"), cc_prx("QB4", "QB1", "f"))
    groups = [frozenset(g) for g in GROUPS]
    kwargs: dict[str, Any] = {"allow_mid_circuit_measurement": True}
    assert circuit_violations(job, 0, adonis, **kwargs) == []
    (message,) = circuit_violations(job, 0, adonis, feedback_groups=groups, **kwargs)
    assert "cc_prx on QB4 cannot receive feedback from QB1" in message


def test_a_qubit_mapping_applies_to_the_feedback_qubit():
    adonis = load_architecture("adonis")
    job = circuit(measure("a", key="m", feedback_key="f"), cc_prx("b", "a", "f"))
    mapping = {"a": "QB1", "b": "QB4"}
    groups = [frozenset(g) for g in GROUPS]
    kwargs: dict[str, Any] = {
        "allow_mid_circuit_measurement": True,
        "feedback_groups": groups,
    }
    (message,) = circuit_violations(job, 0, adonis, mapping, **kwargs)
    assert "from QB1" in message
    assert circuit_violations(job, 0, adonis, {"a": "QB1", "b": "QB2"}, **kwargs) == []


#: (name, server fixture, v1 body, fragment of the message at both sides)
RULES = [
    (
        "cc_prx without an earlier feedback measurement",
        "adonis",
        v1_body(cc_prx("QB1", "QB2", "f"), measure("QB2", key="m", feedback_key="f")),
        "uses feedback_key 'f' with feedback_qubit 'QB2', but no earlier measure has "
        "feedback_key 'f'",
    ),
    (
        "feedback_qubit not in the measured locus",
        "adonis",
        v1_body(measure("QB1", key="m", feedback_key="f"), cc_prx("QB2", "QB3", "f")),
        "the measure with feedback_key 'f' acts on ('QB1',), not on QB3",
    ),
    (
        "repeated feedback key",
        "adonis",
        v1_body(
            measure("QB1", key="a", feedback_key="f"),
            measure("QB2", key="b", feedback_key="f"),
        ),
        "feedback key 'f' is used more than once",
    ),
    (
        "feedback across groups",
        "adonis",
        v1_body(measure("QB1", key="m", feedback_key="f"), cc_prx("QB5", "QB1", "f")),
        "cc_prx on QB5 cannot receive feedback from QB1",
    ),
    (
        "cc_prx on a resonator",
        "deneb",
        v1_body(measure("QB1", key="m", feedback_key="f"), cc_prx("COMP_R", "QB1", "f")),
        "('COMP_R',) is not an allowed locus for cc_prx",
    ),
    (
        "reset of a resonator",
        "deneb",
        v1_body(reset("QB1", "COMP_R"), measure("QB1", key="m")),
        "qubit(s) ['COMP_R'] cannot be reset: COMP_R is a computational resonator",
    ),
]


@pytest.mark.parametrize("api", PROFILES)
@pytest.mark.parametrize(("rule", "which", "body", "fragment"), RULES, ids=[r[0] for r in RULES])
def test_each_rule_is_checked_by_the_client_and_the_server(
    request, api, rule, which, body, fragment
):
    server = request.getfixturevalue(which)
    assert fragment in client_refusal(server, api, body)
    assert fragment in server_detail(server, api, body)


@pytest.mark.parametrize("api", PROFILES)
def test_the_same_message_at_client_and_server(adonis, api):
    body = RULES[0][2]
    client_text = client_refusal(adonis, api, body)
    server_text = server_detail(adonis, api, body)
    assert server_text in client_text


@pytest.mark.parametrize("api", PROFILES)
def test_a_dynamic_circuit_runs_with_feedback_and_reset(adonis, api):
    # X, measure 1, feedback X back to 0 on the same qubit; QB2 flipped and reset reads 0.
    body = v1_body(
        prx("QB1"),
        measure("QB1", key="first", feedback_key="f"),
        cc_prx("QB1", "QB1", "f"),
        prx("QB2"),
        reset("QB2"),
        measure("QB1", "QB2", key="last"),
        shots=20,
    )
    (measured,) = run(adonis, api, body)
    assert measured["first"] == [[1]] * 20
    assert measured["last"] == [[0, 0]] * 20


@pytest.mark.parametrize("api", PROFILES)
def test_measuring_a_qubit_twice_is_allowed_where_dynamic_circuits_are(adonis, plain, api):
    body = v1_body(prx("QB1"), measure("QB1", key="a"), measure("QB1", key="b"), shots=4)
    (measured,) = run(adonis, api, body)
    assert measured == {"a": [[1]] * 4, "b": [[1]] * 4}
    if api == "cocos-v1":  # the IQM Server API always allows mid-circuit measurement
        assert "after their measurement" in client_refusal(plain, api, body)
    assert "after their measurement" in server_detail(plain, api, body)


# ------------------------------------------------------------------------------------ dynamic=False


@pytest.mark.parametrize("api", PROFILES)
@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (
            v1_body(reset("QB1"), measure("QB1", key="m")),
            "reset (to |0>) is not supported",
        ),
        (
            v1_body(measure("QB1", key="m", feedback_key="f"), cc_prx("QB1", "QB1", "f")),
            "cc_prx (a classically controlled prx) is not supported",
        ),
    ],
)
def test_a_server_without_dynamic_circuits_refuses_them(plain, api, body, fragment):
    assert fragment in client_refusal(plain, api, body)
    detail = server_detail(plain, api, body)
    assert fragment in detail and "runs no dynamic circuits" in detail


def test_a_server_without_dynamic_circuits_lists_them_nowhere(plain):
    with httpx.Client(base_url=plain.url, timeout=10) as http:
        asked = http.get("/quantum-architecture", params=ARCHITECTURE_EXTENSIONS_QUERY).json()
        assert {"reset", "cc_prx"}.isdisjoint(asked["quantum_architecture"]["operations"])
        assert "delay" in asked["quantum_architecture"]["operations"]
        gates = http.get("/api/v1/calibration/default/gates").json()["gates"]
        dqa = http.get("/api/v1/calibration-sets/adonis/default/dynamic-quantum-architecture")
        for listed in (gates, dqa.json()["gates"]):
            assert {"reset", "cc_prx"}.isdisjoint(listed)
        assert http.get("/feedback-groups").status_code == 404
        properties = http.get("/api/v1/quantum-computers/adonis/artifacts/channel-properties")
        assert properties.status_code == 404
    for api in PROFILES:
        with IQMClient(plain.url, api=api) as client:
            assert client.get_feedback_groups() is None


# ------------------------------------------------------------------------------------ listings


@pytest.mark.parametrize(
    ("extensions", "expected"),
    [
        (None, set()),
        ("delay", {"delay"}),
        ("dynamic", {"reset", "cc_prx"}),
        ("delay,dynamic", {"delay", "reset", "cc_prx"}),
        ("dynamic, delay,unknown", {"delay", "reset", "cc_prx"}),
    ],
)
def test_v1_architecture_lists_extensions_only_when_asked(adonis, extensions, expected):
    params = None if extensions is None else {"extensions": extensions}
    with httpx.Client(base_url=adonis.url, timeout=10) as http:
        operations = http.get("/quantum-architecture", params=params).json()
    listed = set(operations["quantum_architecture"]["operations"])
    assert listed - {"prx", "cz", "measure", "barrier"} == expected


def test_the_plain_v1_architecture_is_what_iqm_clients_expect(adonis):
    with httpx.Client(base_url=adonis.url, timeout=10) as http:
        plain = http.get("/quantum-architecture").json()["quantum_architecture"]
    assert list(plain["operations"]) == ["prx", "cz", "measure", "barrier"]


def test_the_dqa_lists_reset_and_cc_prx_on_qubits_only(deneb):
    qubits = [[f"QB{i}"] for i in range(1, 7)]
    with httpx.Client(base_url=deneb.url, timeout=10) as http:
        for path in (
            "/api/v1/calibration-sets/deneb/default/dynamic-quantum-architecture",
            "/api/v1/calibration/default/gates",
        ):
            gates = http.get(path).json()["gates"]
            assert gates["reset"]["implementations"] == {"reset_conditional": {"loci": qubits}}
            assert gates["reset"]["default_implementation"] == "reset_conditional"
            assert gates["cc_prx"]["implementations"] == {"prx_composite": {"loci": qubits}}
            assert gates["cc_prx"]["override_default_implementation"] == {}


# ------------------------------------------------------------------------------------ groups


@pytest.mark.parametrize("api", PROFILES)
def test_get_feedback_groups_reads_the_configured_groups(adonis, api):
    with IQMClient(adonis.url, api=api) as client:
        groups = client.get_feedback_groups()
        assert groups == (frozenset(GROUPS[0]), frozenset(GROUPS[1]))
        requests = sum(adonis.app.stats.values())
        assert client.get_feedback_groups() is groups  # cached
        assert sum(adonis.app.stats.values()) == requests


@pytest.mark.parametrize("api", PROFILES)
def test_default_feedback_groups_are_one_group_of_every_qubit(deneb, api):
    with IQMClient(deneb.url, api=api) as client:
        assert client.get_feedback_groups() == (frozenset(f"QB{i}" for i in range(1, 7)),)


def test_unknown_feedback_group_qubits_are_a_configuration_error():
    with pytest.raises(ValueError, match="unknown ones \\['COMP_R'\\]"):
        EmbeddedServer("deneb", feedback_groups=[["QB1", "COMP_R"]]).start()
