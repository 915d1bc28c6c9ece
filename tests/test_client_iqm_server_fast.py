"""Issue 18 item 1: the client on the IQM Server API does no needless work.

No re-download of the job payload it sent, a polling schedule never busier than IQM's client 36
(which polls at once, then every ``polling_interval`` = 1 s), measurements decoded straight into
numpy arrays, and an optional fast JSON codec that gives the same results as the standard library.
Everything end to end runs against the project's server on loopback.
"""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
from recording_transport import RecordingTransport

from cirq_iqm_ext import Circuit, Instruction, IQMClient, Status
from cirq_iqm_ext.client import json_codec, status_errors
from cirq_iqm_ext.client.polling import PollSchedule, wait_while
from cirq_iqm_ext.server import EmbeddedServer


def bell(name: str) -> Circuit:
    ry = {"angle_t": 0.25, "phase_t": 0.25}
    return Circuit(
        name,
        (
            Instruction("prx", ["QB1"], ry),
            Instruction("cz", ["QB1", "QB3"]),
            Instruction("measure", ["QB1"], {"key": "a"}),
            Instruction("measure", ["QB1", "QB3"], {"key": "b"}),
        ),
        {"note": "kept"},
    )


@pytest.fixture(scope="module")
def server():
    with EmbeddedServer("adonis", seed=3) as running:
        yield running


# ------------------------------------------------------------------------------ payload cache


def test_the_payload_the_client_sent_is_not_downloaded_again(server):
    transport = RecordingTransport()
    with IQMClient(server.url, api="iqm-server", environ={}, transport=transport) as client:
        job_id = client.submit_circuits([bell("one"), bell("two")], shots=50)
        result = client.wait_for_results(job_id, timeout_secs=30)
    assert result.status is Status.READY
    assert not [p for p in transport.paths if p.endswith("/payload")]
    # What the client kept is what the server echoes (a fresh client must download it).
    fresh_transport = RecordingTransport()
    with IQMClient(server.url, api="iqm-server", environ={}, transport=fresh_transport) as fresh:
        echoed = fresh.get_run(job_id)
    assert [p for p in fresh_transport.paths if p.endswith("/payload")]
    assert result.metadata.request_dict == echoed.metadata.request_dict


# ------------------------------------------------------------------------------ polling


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.polls: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


@pytest.mark.parametrize("finish_at", [0.05, 0.9, 1.2, 4.5, 12.3])
def test_paced_polling_is_never_busier_than_iqm_client_and_wakes_within_one_interval(finish_at):
    clock = FakeClock()

    def poll(hold: float) -> tuple[Status, bool]:
        clock.polls.append(clock.now)
        clock.now += 0.004  # the request's own round trip
        done = clock.now >= finish_at
        return (Status.READY if done else Status.PENDING_EXECUTION), False

    schedule = PollSchedule(max_interval=1.0, request_timeout=120.0, pace=1.0)
    wait_while(
        uuid.uuid4(),
        poll,
        frozenset({Status.PENDING_EXECUTION}),
        what="finish",
        timeout_secs=60,
        schedule=schedule,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
    )
    # IQM's job tracker has made poll number k at (k - 1) s at the earliest: never fewer.
    for number, at in enumerate(clock.polls, start=1):
        assert at >= (number - 1) * 1.0 - 1e-9
    assert clock.polls[-1] - finish_at < 1.0 + 0.01  # woke within one interval of completion


def test_the_iqm_server_profile_paces_its_polls_and_v1_does_not(server):
    with IQMClient(server.url, api="iqm-server", environ={}) as client:
        assert client._schedule().pace == client.settings.seconds_between_calls
    with IQMClient(server.url, api="cocos-v1", environ={}) as client:
        assert client._schedule().pace is None


# ------------------------------------------------------------------------------ decoding


def reference(content: bytes) -> list[dict[str, object]]:
    """The standard library's reading, with regular 0/1 shot lists as int8 arrays."""
    out = []
    for circuit in json.loads(content):
        row = {}
        for key, shots in circuit.items():
            row[key] = shots
            if shots and len({len(s) for s in shots}) == 1 and len(shots[0]) > 0:
                flat = [v for s in shots for v in s]
                if all(type(v) is int and v in (0, 1) for v in flat):
                    row[key] = np.array(shots, dtype=np.int8)
        out.append(row)
    return out


def same(decoded: object, expected: list[dict[str, object]]) -> bool:
    assert isinstance(decoded, list) and len(decoded) == len(expected)
    for got, want in zip(decoded, expected, strict=True):
        assert list(got) == list(want)
        for key, value in want.items():
            if isinstance(value, np.ndarray):
                assert isinstance(got[key], np.ndarray) and got[key].dtype == np.int8
                assert got[key].shape == value.shape and np.array_equal(got[key], value)
            else:
                assert got[key] == value and not isinstance(got[key], np.ndarray)
    return True


BODIES = [
    b'[{"a":[[0],[1],[1]],"b":[[0,1],[1,1],[1,0]]},{"m":[[1,0,1]]}]',
    b'[ {"a" : [ [0 , 1] ,\n [1,1] ] } ]',  # whitespace anywhere
    b'[{"a":[[0,1],[1]]}]',  # ragged: stays lists
    b'[{"a":[[0,2],[1,1]]}]',  # not a bit: stays lists
    b'[{"a":[[0,10],[1,1]]}]',  # a two-digit number must not become two bits
    b'[{"a":[]}]',  # no shots
    b'[{"a":[[],[]]}]',  # zero-width shots
    b'[{"k\\":[[1]],\\"x":[[0,1]]}]',  # a key that looks like an array inside a string
    b'[{"\\u00e9":[[1,1]]},{}]',
    b'[{"a":[[0,1]],"a2":[[1,0]]},{"a":[[1,1]]}]',
]


@pytest.mark.parametrize("body", BODIES)
def test_measurements_decode_into_arrays_exactly_as_the_standard_library_reads_them(body):
    assert same(json_codec.decode_measurements(body), reference(body))


def test_regular_measurements_take_the_vectorised_path():
    rng = np.random.default_rng(5)
    bits = rng.integers(0, 2, size=(1000, 7))
    body = json.dumps([{"m": bits.tolist(), "n": bits[:, :1].tolist()}]).encode()
    fast = json_codec._fast_measurements(body)
    assert fast is not None
    assert np.array_equal(fast[0]["m"], bits) and np.array_equal(fast[0]["n"], bits[:, :1])


def test_the_fast_codec_and_the_standard_library_give_identical_results(server, monkeypatch):
    pytest.importorskip("orjson")
    assert json_codec.FAST_CODEC
    with IQMClient(server.url, api="iqm-server", environ={}) as client:
        job_id = client.submit_circuits([bell("x"), bell("y")], shots=200)
        fast = client.wait_for_results(job_id, timeout_secs=30)
        fast_arch = client.get_quantum_architecture()
    monkeypatch.setattr(json_codec, "loads", json_codec.stdlib_loads)
    monkeypatch.setattr(status_errors, "loads", json_codec.stdlib_loads)
    monkeypatch.setattr(json_codec, "_fast_measurements", lambda content: None)
    with IQMClient(server.url, api="iqm-server", environ={}) as client:
        slow = client.get_run(job_id)
        slow_arch = client.get_quantum_architecture()
    assert fast_arch == slow_arch
    assert fast.metadata.request_dict == slow.metadata.request_dict
    assert fast.measurements is not None and slow.measurements is not None
    for got, want in zip(fast.measurements, slow.measurements, strict=True):
        assert list(got) == list(want) == ["a", "b"]
        for key in got:
            assert isinstance(got[key], np.ndarray) and isinstance(want[key], np.ndarray)
            assert got[key].tobytes() == want[key].tobytes() and got[key].shape == (
                200,
                len({"a": [1], "b": [1, 3]}[key]),
            )


# ------------------------------------------------------------------------------ echo reading


def _random_iqm_server_instruction(rng: np.random.Generator) -> object:
    """Well-formed common instructions and every kind of oddity next to them."""
    qubits = ["QB1", "QB2", "QB3"]
    angle = float(rng.uniform(-7, 7))
    kind = int(rng.integers(14))
    if kind < 4:
        return {"name": "prx", "locus": ["QB2"], "args": {"angle": angle, "phase": -angle / 3}}
    if kind < 6:
        return {"name": "cz", "locus": ["QB1", "QB3"], "args": {}, "implementation": None}
    if kind < 8:
        return {"name": "measure", "locus": qubits[: int(rng.integers(1, 4))], "args": {"key": "m"}}
    odd: list[object] = [
        {"name": "prx", "locus": ["QB2"], "args": {"angle": 1, "phase": 0.5}},  # an int angle
        {"name": "prx", "locus": ["QB2"], "args": {"angle": 0.1, "phase": 0.2}, "qubits": ["a"]},
        {"name": "prx", "locus": ["QB1", "QB2"], "args": {"angle": 0.1, "phase": 0.2}},
        {"name": "cz", "locus": ["QB1", "QB1"], "args": {}},
        {"name": "cz", "locus": ["QB1", "QB2"], "args": {}, "implementation": "tgss"},
        {"name": "measure", "locus": ["QB1"], "args": {"key": "k", "feedback_key": "k"}},
        {"name": "measure", "locus": ["QB1", "QB1"], "args": {"key": "k"}},
        {
            "name": "cc_prx",
            "locus": ["QB1"],
            "args": {"angle": 0.3, "phase": 0.1, "feedback_qubit": "QB2", "feedback_key": "f"},
        },
        {"name": "delay", "locus": ["QB1"], "args": {"duration": 1e-7}},
        {"name": "prx", "locus": ["QB2"], "args": {"angle": float("nan"), "phase": 0.0}},
        {"name": "teleport", "locus": ["QB2"], "args": {}},
    ]
    return odd[int(rng.integers(len(odd)))]


def test_reading_an_echo_the_short_way_gives_what_the_careful_reader_gives():
    from cirq_iqm_ext.wire.iqm_server_format import (
        JobDefinitionError,
        common_instruction_from_iqm_server,
        instruction_from_iqm_server,
    )

    rng = np.random.default_rng(11)
    short = 0
    for _ in range(2000):
        instruction = _random_iqm_server_instruction(rng)
        quick = common_instruction_from_iqm_server(instruction)
        if quick is None:
            continue
        short += 1
        assert quick == instruction_from_iqm_server(instruction, "here")
        # Same values and the same key order, so the JSON text matches too.
        assert json.dumps(quick) == json.dumps(instruction_from_iqm_server(instruction, "here"))
    assert short > 1000  # the short way is the common one
    # An oddity is left to the careful reader, which may refuse it.
    cz_twice = {"name": "cz", "locus": ["QB1", "QB1"], "args": {}}
    assert common_instruction_from_iqm_server(cz_twice) is None
    with pytest.raises(JobDefinitionError):
        instruction_from_iqm_server(cz_twice, "here")
