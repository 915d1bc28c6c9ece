"""The server keeps finished results packed, eight bits to a byte, and answers the same bytes."""

from __future__ import annotations

import json
from uuid import UUID

import httpx
import numpy as np
import pytest
from server_requests import bell_body, wait_ready

from cirq_iqm_ext.server import EmbeddedServer
from cirq_iqm_ext.server.packed_results import PackedCircuit
from cirq_iqm_ext.server.result_json import measurements_json
from cirq_iqm_ext.wire.packed import pack_bits, unpack_bits


def _random_circuit(rng: np.random.Generator) -> dict[str, np.ndarray]:
    # Shapes that are and are not a multiple of 8 bits, an empty key and a zero-width one.
    return {
        "m": rng.integers(0, 2, size=(int(rng.integers(1, 300)), int(rng.integers(1, 21)))).astype(
            np.uint8
        ),
        "one": rng.integers(0, 2, size=(7, 1)).astype(np.uint8),
        "none": np.zeros((0, 3), dtype=np.uint8),
        "narrow": np.zeros((5, 0), dtype=np.uint8),
    }


@pytest.mark.parametrize("seed", range(5))
def test_a_packed_circuit_gives_back_every_bit(seed):
    rng = np.random.default_rng(seed)
    arrays = _random_circuit(rng)
    kept = PackedCircuit(arrays)
    assert list(kept) == list(arrays) and len(kept) == len(arrays)
    for key, array in arrays.items():
        assert kept[key].shape == array.shape and kept[key].dtype == np.uint8
        assert np.array_equal(kept[key], array)
        assert kept.wire(key) == pack_bits(array)  # the packed answer, without repacking
        assert np.array_equal(unpack_bits(kept.wire(key)), array)
    assert measurements_json([kept]) == measurements_json([arrays])
    assert kept.nbytes == sum(-(-a.size // 8) for a in arrays.values())


def test_lists_and_values_that_are_not_bits_are_kept_as_they_are():
    kept = PackedCircuit({"lists": [[0, 1], [1, 1]], "counts": np.array([[0, 2], [3, 1]])})
    assert kept["lists"].tolist() == [[0, 1], [1, 1]]
    # Packing would read 2 and 3 as 1: such values stay unpacked.
    assert kept["counts"].tolist() == [[0, 2], [3, 1]]


def test_a_large_result_is_kept_in_an_eighth_of_the_bytes_and_answered_the_same():
    body = bell_body()
    body["shots"] = 20_000
    with (
        EmbeddedServer("adonis", seed=5) as server,
        httpx.Client(base_url=server.url, timeout=60) as http,
    ):
        job_id = http.post("/jobs", json=body).json()["id"]
        wait_ready(http, job_id)
        lists = http.get(f"/jobs/{job_id}").json()["measurements"]
        packed = http.get(f"/jobs/{job_id}", params={"measurements": "packed"}).json()
        kept = server.app.core.store.measurement_arrays(UUID(job_id))
    assert [{k: unpack_bits(v).tolist() for k, v in c.items()} for c in packed["measurements"]] == (
        lists
    )
    assert [{k: v.tolist() for k, v in c.items()} for c in kept] == lists
    bits = sum(np.asarray(v).size for c in lists for v in c.values())
    assert sum(c.nbytes for c in kept) == sum(
        -(-np.asarray(v).size // 8) for c in lists for v in c.values()
    )
    assert sum(c.nbytes for c in kept) < bits / 7.9


def test_a_restarted_server_answers_a_kept_result_bit_for_bit(tmp_path):
    body = bell_body()
    body["shots"] = 999  # not a multiple of 8 bits per key
    with (
        EmbeddedServer("adonis", seed=2, state_dir=tmp_path) as first,
        httpx.Client(base_url=first.url, timeout=30) as http,
    ):
        job_id = http.post("/jobs", json=body).json()["id"]
        wait_ready(http, job_id)
        before = http.get(f"/jobs/{job_id}").content
    with (
        EmbeddedServer("adonis", seed=2, state_dir=tmp_path) as second,
        httpx.Client(base_url=second.url, timeout=30) as http,
    ):
        after = http.get(f"/jobs/{job_id}").content
    assert json.loads(after)["measurements"] == json.loads(before)["measurements"]


def _old_format_blob(circuits: list[dict[str, np.ndarray]]) -> bytes:
    """A result as versions before packed keeping stored it: one uint8 array per key, compressed."""
    import io

    arrays = {
        f"c{c}_{n}": a for c, circuit in enumerate(circuits) for n, a in enumerate(circuit.values())
    }
    index = [list(circuit) for circuit in circuits]
    arrays["index"] = np.frombuffer(json.dumps(index).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def test_a_stored_result_reloads_bit_for_bit_in_either_format():
    from cirq_iqm_ext.server.jobs import _dump_measurements, _load_measurements

    rng = np.random.default_rng(11)
    circuits = [_random_circuit(rng) for _ in range(3)]
    circuits[1]["counts"] = np.array([[0, 2], [3, 1]])  # not bits: stored as they are
    kept = [PackedCircuit(c) for c in circuits]
    for blob in (_dump_measurements(kept), _old_format_blob(circuits)):
        loaded = _load_measurements(blob)
        assert [list(c) for c in loaded] == [list(c) for c in circuits]
        for before, after in zip(circuits, loaded, strict=True):
            for key, array in before.items():
                assert np.array_equal(after[key], array), key
    # The packed file is about the size of the packed bits, not of one byte per bit.
    assert len(_dump_measurements(kept)) < sum(c.nbytes for c in kept) + 4096


def test_packed_bytes_that_do_not_hold_their_shape_are_refused():
    kept = PackedCircuit({"m": np.ones((10, 3), dtype=np.uint8)})
    ((key, packed, shape),) = kept.stored()
    with pytest.raises(ValueError, match="do not hold 10 x 3 bits"):
        PackedCircuit.from_stored([(key, packed[:-1], shape)])
