"""Job options of the IQM Server API (PROTOCOL_IQM_SERVER.md §3.1) end to end.

``move_gate_validation``, ``move_gate_frame_tracking``, ``active_reset_cycles``, ``dd_mode`` and
``dd_strategy`` are optional :class:`~cirq_iqm_ext.RunRequest` fields; ``use_timeslot`` is a
query parameter of the submission. The ``iqm-server`` profile sends them, the server validates,
records and echoes them (E6) and hands them to the simulator; the ``cocos-v1`` profile refuses any
non-default value before posting.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cirq_iqm_ext.client.iqm_client import IQMClient
from cirq_iqm_ext.errors import ClientConfigurationError, ModelValidationError
from cirq_iqm_ext.server import EmbeddedServer
from cirq_iqm_ext.wire.iqm_server_format import OPTION_DEFAULTS
from cirq_iqm_ext.wire.models import Circuit, Instruction, RunRequest

V1_SUBMIT = "POST jobs"
API_SUBMIT = "POST api/v1/jobs/{qc}/circuit"
OPTIONS: dict[str, Any] = {
    "move_gate_validation": "allow_prx",
    "move_gate_frame_tracking": "no_detuning_correction",
    "active_reset_cycles": 2,
    "dd_mode": "enabled",
    "dd_strategy": {"gate_sequences": [[9, "XYXYYXYX", "asap"]]},
}


def bell() -> Circuit:
    return Circuit(
        "bell",
        (
            Instruction("prx", ("QB1",), {"angle_t": 0.5, "phase_t": 0.0}),
            Instruction("measure", ("QB1", "QB3"), {"key": "m"}),
        ),
    )


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer("adonis", seed=2) as running:
        yield running


def test_run_request_options_round_trip_and_unset_ones_are_left_out():
    request = RunRequest((bell(),), shots=3, **OPTIONS, use_timeslot=True)
    data = request.to_dict()
    assert {k: data[k] for k in OPTIONS} == OPTIONS and data["use_timeslot"] is True
    assert RunRequest.from_dict(data) == request
    plain = RunRequest((bell(),)).to_dict()
    assert set(plain) == {"circuits", "shots", "heralding_mode"}


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        (
            "move_gate_validation",
            "lenient",
            "move_gate_validation must be one of 'strict'",
        ),
        ("move_gate_frame_tracking", "half", "'no_detuning_correction'"),
        ("dd_mode", True, "dd_mode must be one of 'disabled', 'enabled'"),
        ("active_reset_cycles", 1.5, "active_reset_cycles must be an integer or null"),
        ("active_reset_cycles", True, "active_reset_cycles must be an integer or null"),
        ("dd_strategy", [1, 2], "dd_strategy must be an object or null"),
        ("use_timeslot", "yes", "use_timeslot must be true or false"),
    ],
)
def test_bad_option_values_name_the_field_and_the_allowed_values(field, value, fragment):
    with pytest.raises(ModelValidationError, match=fragment):
        RunRequest((bell(),), **{field: value})


def test_full_frame_tracking_needs_move_validation():
    message = "Unable to perform full MOVE gate frame tracking if MOVE gate validation is not"
    with pytest.raises(ModelValidationError, match=message):
        RunRequest((bell(),), move_gate_validation="none")
    RunRequest((bell(),), move_gate_validation="none", move_gate_frame_tracking="none")


def test_iqm_server_profile_sends_records_and_echoes_the_options(server):
    with IQMClient(server.url, api="iqm-server") as client:
        job_id = client.submit_circuits([bell()], shots=4, **OPTIONS)
        with pytest.warns(UserWarning, match="Dynamical decoupling .* is recorded but not applied"):
            result = client.wait_for_results(job_id, 30)
    echoed = result.metadata.request
    assert {k: getattr(echoed, k) for k in OPTIONS} == OPTIONS
    with httpx.Client(base_url=server.url, timeout=10) as http:
        payload = http.get(f"/api/v1/jobs/{job_id}/payload").json()
        assert {k: payload[k] for k in OPTIONS} == OPTIONS
        assert payload["move_validation_mode"] == "allow_prx"
        assert payload["move_gate_frame_tracking_mode"] == "no_detuning_correction"
        job = http.get(f"/api/v1/jobs/{job_id}").json()
        assert any("not applied" in m["message"] for m in job["messages"])
    # The simulator reads the options from the stored request.
    stored = server.app.store.get_job(job_id).request
    assert stored.active_reset_cycles == 2 and stored.move_gate_validation == "allow_prx"


def test_defaults_are_sent_as_client_36_sends_them(server):
    with IQMClient(server.url, api="iqm-server") as client:
        job_id = client.submit_circuits([bell()], shots=2)
        client.wait_for_results(job_id, 30)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        payload = http.get(f"/api/v1/jobs/{job_id}/payload").json()
    assert {k: payload[k] for k in OPTION_DEFAULTS} == OPTION_DEFAULTS
    assert "use_timeslot" not in payload


def test_sampler_payload_options_travel_as_top_level_fields(server):
    payload = RunRequest((bell(),), shots=2, active_reset_cycles=0).to_dict()
    with IQMClient(server.url, api="iqm-server") as client:
        job_id = client.submit_payload(json.dumps(payload).encode())
        client.wait_for_results(job_id, 30)
    assert server.app.store.get_job(job_id).request.active_reset_cycles == 0


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"move_gate_validation": "allow_prx"}, "move_gate_validation='allow_prx'"),
        ({"active_reset_cycles": 1}, "active_reset_cycles=1"),
        ({"dd_mode": "enabled"}, "dd_mode='enabled'"),
        ({"use_timeslot": True}, "use_timeslot=True"),
    ],
)
def test_cocos_v1_refuses_options_before_posting(server, options, named):
    before = server.app.stats[V1_SUBMIT]
    with IQMClient(server.url, api="cocos-v1") as client:
        with pytest.raises(ClientConfigurationError, match="needs the IQM Server API") as info:
            client.submit_circuits([bell()], **options)
        assert named in str(info.value) and 'api="iqm-server"' in str(info.value)
        payload = RunRequest((bell(),), **options).to_dict()
        for sent in (payload, json.dumps(payload).encode()):
            with pytest.raises(ClientConfigurationError, match="needs the IQM Server API"):
                client.submit_payload(sent)
    assert server.app.stats[V1_SUBMIT] == before


def test_cocos_v1_drops_options_at_their_v1_values(server):
    payload = {
        **RunRequest((bell(),), shots=2).to_dict(),
        **OPTION_DEFAULTS,
        "use_timeslot": False,
    }
    with IQMClient(server.url, api="cocos-v1") as client:
        job_id = client.submit_payload(json.dumps(payload).encode())
        result = client.wait_for_results(job_id, 30)
    echoed = server.app.store.get_job(job_id).request_dict
    assert not set(OPTION_DEFAULTS) & set(echoed)
    assert result.metadata.request.move_gate_validation is None


@pytest.mark.parametrize("timeslot", [False, True])
def test_use_timeslot_is_a_query_parameter_as_client_36_sends_it(server, timeslot):
    seen: list[httpx.Request] = []

    def forward(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        with httpx.Client(base_url=server.url, timeout=10) as http:
            answer = http.request(
                request.method,
                request.url.path,
                params=request.url.params,
                content=request.content,
                headers={"Content-Type": "application/json"},
            )
        return httpx.Response(answer.status_code, content=answer.content, headers=answer.headers)

    with IQMClient(server.url, api="iqm-server", transport=httpx.MockTransport(forward)) as c:
        c.submit_circuits([bell()], use_timeslot=timeslot)
    (post,) = [r for r in seen if r.method == "POST"]
    assert post.url.params["use_timeslot"] == ("true" if timeslot else "false")
    assert "use_timeslot" not in json.loads(post.content)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"move_gate_validation": "loose"}, "move_gate_validation must be one of"),
        ({"dd_mode": "on"}, "dd_mode must be one of"),
        (
            {"active_reset_cycles": "2"},
            "active_reset_cycles must be an integer or null",
        ),
        ({"dd_strategy": "fast"}, "dd_strategy must be an object or null"),
        (
            {"move_gate_validation": "none", "move_validation_mode": "none"},
            "Unable to perform full MOVE gate frame tracking",
        ),
    ],
)
@pytest.mark.parametrize("api", ["v1", "iqm-server"])
def test_the_server_refuses_bad_options_in_both_apis(server, api, changes, fragment):
    with httpx.Client(base_url=server.url, timeout=10) as http:
        if api == "v1":
            body = {**RunRequest((bell(),)).to_dict(), **changes}
            body.pop("move_validation_mode", None)
            response = http.post("/jobs", json=body)
            text = response.json()["detail"]
        else:
            from cirq_iqm_ext.wire.iqm_server_format import (
                run_request_to_job_definition,
            )

            body = {
                **run_request_to_job_definition(RunRequest((bell(),)).to_dict()),
                **changes,
            }
            response = http.post("/api/v1/jobs/adonis/circuit", json=body)
            assert response.json()["error_code"] == "invalid_request"
            text = response.json()["message"]
    assert response.status_code == 400, response.text
    assert fragment in text


def test_the_v1_api_of_the_server_honours_move_gate_validation():
    move = {"name": "move", "qubits": ["QB2", "COMP_R"], "args": {}}
    body = {
        "circuits": [
            {
                "name": "parked",
                "instructions": [
                    move,
                    {
                        "name": "prx",
                        "qubits": ["QB2"],
                        "args": {"angle_t": 0.5, "phase_t": 0},
                    },
                    move,
                    {"name": "measure", "qubits": ["QB2"], "args": {"key": "m"}},
                ],
            }
        ],
        "shots": 3,
    }
    with (
        EmbeddedServer("deneb", seed=1) as deneb,
        httpx.Client(base_url=deneb.url) as http,
    ):
        refused = http.post("/jobs", json=body)
        assert refused.status_code == 400 and "while the state(s)" in refused.json()["detail"]
        accepted = http.post("/jobs", json={**body, "move_gate_validation": "allow_prx"})
        assert accepted.status_code == 201, accepted.text
