"""Issue 18: a client that kept the request it sent does not ask the server to echo it back.

The v1 profile asks for results with ``?request=omit`` when it still holds the request; the
project's server then leaves ``metadata.request`` out and says so (``request_omitted``), and the
client puts back what it sent. A client that did not send the job gets the echo as before.
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from recording_transport import RecordingTransport

from cirq_iqm_ext import Circuit, Instruction, IQMClient, Status
from cirq_iqm_ext.client.profiles.sent import SentRequests
from cirq_iqm_ext.errors import ModelValidationError
from cirq_iqm_ext.server import EmbeddedServer
from cirq_iqm_ext.wire.models import Metadata
from cirq_iqm_ext.wire.protocol import REQUEST_ECHO_QUERY, REQUEST_OMITTED_FIELD


def circuit(name: str) -> Circuit:
    return Circuit(
        name,
        (
            Instruction("prx", ["QB1"], {"angle_t": 0.25, "phase_t": 0.0}),
            Instruction("measure", ["QB1"], {"key": "m"}),
        ),
        {"point": name},
    )


@pytest.fixture(scope="module")
def server():
    with EmbeddedServer("adonis", seed=5) as running:
        yield running


def test_the_sender_does_not_ask_for_its_request_back_and_gets_the_same_result(server):
    ((name, value),) = REQUEST_ECHO_QUERY.items()
    transport = RecordingTransport()
    with IQMClient(server.url, api="cocos-v1", environ={}, transport=transport) as sender:
        job_id = sender.submit_circuits([circuit("a"), circuit("b")], shots=20)
        kept = sender.wait_for_results(job_id, timeout_secs=30)
    results = [a for a in transport.asked if a.startswith(f"GET /jobs/{job_id}?")]
    assert results and all(f"{name}={value}" in a for a in results)
    with IQMClient(server.url, api="cocos-v1", environ={}, transport=RecordingTransport()) as other:
        echoed = other.get_run(job_id)
    assert kept.status is echoed.status is Status.READY
    assert kept.metadata.request_dict["circuits"] == echoed.metadata.request_dict["circuits"]
    assert kept.metadata.request_dict["shots"] == echoed.metadata.request_dict["shots"] == 20
    assert REQUEST_OMITTED_FIELD not in kept.metadata.extra
    assert kept.metadata.request.circuits[1].metadata == {"point": "b"}


def test_the_server_leaves_the_request_out_when_asked(server):
    with IQMClient(server.url, api="cocos-v1", environ={}) as client:
        job_id = client.submit_circuits([circuit("a")], shots=10)
        client.wait_for_results(job_id, timeout_secs=30)
    params = {"measurements": "packed", **REQUEST_ECHO_QUERY}
    omitted = httpx.get(f"{server.url}/jobs/{job_id}", params=params).json()
    echoed = httpx.get(f"{server.url}/jobs/{job_id}").json()
    assert "request" not in omitted["metadata"] and omitted["metadata"][REQUEST_OMITTED_FIELD]
    assert json.dumps(echoed["metadata"]["request"])  # the echo, for everyone else


def test_metadata_without_the_request_only_when_the_server_says_it_left_it_out():
    metadata = Metadata.from_dict({REQUEST_OMITTED_FIELD: True, "timestamps": {}})
    assert metadata.request_dict == {}
    assert REQUEST_OMITTED_FIELD in metadata.to_dict() and "request" not in metadata.to_dict()
    with pytest.raises(ModelValidationError, match="left the request out"):
        _ = metadata.request
    with pytest.raises(ModelValidationError, match='missing the object "request"'):
        Metadata.from_dict({"timestamps": {}})
    with pytest.raises(ModelValidationError, match='missing the object "request"'):
        Metadata.from_dict({REQUEST_OMITTED_FIELD: "yes"})


def test_the_kept_requests_stay_within_their_count_and_bytes():
    kept = SentRequests(size=3, max_bytes=100)
    ids = [uuid.uuid4() for _ in range(5)]
    for job_id in ids:
        kept.remember(job_id, b'{"shots": 1, "pad": "' + b"x" * 10 + b'"}')  # 33 bytes
    assert len(kept) == 3 and ids[0] not in kept and ids[4] in kept  # the oldest go first
    kept.remember(ids[0], b'{"pad": "' + b"y" * 80 + b'"}')  # 91 bytes: the rest must make room
    assert len(kept) == 1 and kept.nbytes == 91 and kept.get(ids[0]) == {"pad": "y" * 80}
    kept.remember(ids[1], b"z" * 101)  # over the whole budget: not kept, nothing else lost
    assert ids[1] not in kept and ids[0] in kept
    assert kept.get(uuid.uuid4()) is None
