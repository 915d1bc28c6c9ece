"""The packed measurement encoding of the project's server, both directions.

A circuit's measurements map each key to ``{"shape": [shots, qubits], "bits": base64}``: the
row-major ``[shot][qubit]`` bits packed eight to a byte, most significant bit first
(``numpy.packbits``). It is an extension a client asks for (``?measurements=packed``); a result
sent this way says so in its ``measurements_format`` field.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import numpy as np

from cirq_iqm_ext.errors import ModelValidationError


def pack_bits(shots: Any) -> dict[str, Any]:
    """One key's ``[shot][qubit]`` bits (an array or nested lists of 0/1), packed."""
    array = np.asarray(shots, dtype=np.uint8)
    if array.ndim != 2:
        array = array.reshape(len(array), -1)
    return packed_entry(array.shape, np.packbits(array, axis=None).tobytes())


def packed_entry(shape: tuple[int, ...], packed: bytes) -> dict[str, Any]:
    """The wire form of bits already packed (``numpy.packbits`` of the row-major array)."""
    return {"shape": [int(n) for n in shape], "bits": base64.b64encode(packed).decode("ascii")}


def unpack_bits(packed: Mapping[str, Any]) -> np.ndarray:
    """One key's packed bits back to an ``int8`` array of shape ``[shots, qubits]``.

    Raises:
        KeyError, TypeError, ValueError, binascii.Error: The data is malformed.
    """
    shots, width = (int(n) for n in packed["shape"])
    if shots < 0 or width < 0:
        raise ValueError(f"negative shape {packed['shape']!r}")
    data = np.frombuffer(base64.b64decode(packed["bits"], validate=True), np.uint8)
    if len(data) != -(-shots * width // 8):
        # numpy would pad missing bytes with zeros: a truncated payload must not read as 0s.
        raise ValueError(f"{len(data)} bytes do not hold {shots} x {width} bits")
    bits = np.unpackbits(data, count=shots * width) if shots * width else data[:0]
    return bits.astype(np.int8).reshape(shots, width)


def unpack_measurements(raw: Any) -> list[dict[str, np.ndarray]]:
    """Decodes a result's packed ``measurements`` (one mapping per circuit) into arrays.

    Raises:
        ModelValidationError: The packed data is malformed (the message names circuit and key).
    """
    owner = 'The packed "measurements" of a job result'
    if not isinstance(raw, list):
        raise ModelValidationError(f"{owner} must be a list with one object per circuit")
    out = []
    for index, circuit in enumerate(raw):
        if not isinstance(circuit, Mapping):
            raise ModelValidationError(f"{owner}: entry {index} must be an object")
        arrays = {}
        for key, packed in circuit.items():
            try:
                arrays[key] = unpack_bits(packed)
            except (KeyError, TypeError, ValueError, binascii.Error):
                raise ModelValidationError(
                    f"{owner}: circuit {index}, key {key!r} is malformed"
                ) from None
        out.append(arrays)
    return out


__all__ = ["pack_bits", "packed_entry", "unpack_bits", "unpack_measurements"]
