"""The packed measurement codec: what the server packs, the client unpacks, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from cirq_iqm_ext.errors import ModelValidationError
from cirq_iqm_ext.wire.packed import pack_bits, unpack_bits, unpack_measurements


@pytest.mark.parametrize("shape", [(0, 3), (1, 1), (7, 1), (5, 3), (1000, 9), (3, 0), (64, 8)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pack_then_unpack_is_the_identity(shape, seed):
    bits = np.random.default_rng(seed).integers(0, 2, size=shape, dtype=np.int8)
    packed = pack_bits(bits)
    assert packed["shape"] == list(shape)
    back = unpack_bits(packed)
    assert back.dtype == np.int8
    np.testing.assert_array_equal(back, bits)


def test_nested_lists_pack_like_arrays_most_significant_bit_first():
    packed = pack_bits([[1, 0, 1], [1, 1, 1], [0, 0, 0]])
    # 101 111 000 -> 1011 1100 | 0(000 0000): two bytes, padded with zeros
    assert packed == {"shape": [3, 3], "bits": "vAA="}
    assert unpack_bits(packed).tolist() == [[1, 0, 1], [1, 1, 1], [0, 0, 0]]


def test_a_result_of_several_circuits_round_trips():
    rng = np.random.default_rng(5)
    circuits = [
        {"m": rng.integers(0, 2, (100, 2), dtype=np.int8), "z": rng.integers(0, 2, (100, 5))},
        {"m": rng.integers(0, 2, (100, 2), dtype=np.int8)},
    ]
    wire = [{key: pack_bits(v) for key, v in c.items()} for c in circuits]
    decoded = unpack_measurements(wire)
    for want, got in zip(circuits, decoded, strict=True):
        assert set(want) == set(got)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])


@pytest.mark.parametrize(
    "raw, fragment",
    [
        ({"m": {}}, "must be a list"),
        (["x"], "entry 0 must be an object"),
        ([{"m": {"shape": [2, 2]}}], "circuit 0, key 'm' is malformed"),
        ([{"m": {"shape": [2, 2], "bits": "!!"}}], "circuit 0, key 'm' is malformed"),
        ([{"m": {"shape": [9, 9], "bits": "AA=="}}], "circuit 0, key 'm' is malformed"),
        ([{"m": {"shape": [-1, 2], "bits": "AA=="}}], "circuit 0, key 'm' is malformed"),
    ],
)
def test_malformed_packed_data_names_circuit_and_key(raw, fragment):
    with pytest.raises(ModelValidationError, match=fragment):
        unpack_measurements(raw)
