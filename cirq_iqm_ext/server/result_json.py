"""JSON of measurement results, written straight from the numpy arrays.

``json.dumps`` of nested lists costs seconds for a few million shots and holds the interpreter
the whole time (a status poll on another thread waits behind it); building the lists first
costs as much again and as much memory. A 0/1 array of shape ``(shots, qubits)`` has a fixed
text per row, so its JSON is laid out in one numpy buffer instead: the same bytes as
``json.dumps(array.tolist(), separators=(",", ":"))``, at memory speed, and nothing kept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

_OPEN, _CLOSE, _COMMA, _ZERO = (ord(c) for c in "[],0")


def bits_json(shots: Any) -> bytes:
    """The JSON of one key's measurements (``[[0,1],[1,1]]``), compact separators."""
    array = np.asarray(shots) if isinstance(shots, np.ndarray) else None
    if array is None or array.ndim != 2 or array.dtype.kind not in "biu":
        return json.dumps(_plain(shots), separators=(",", ":")).encode()
    count, width = array.shape
    if count == 0:
        return b"[]"
    if width and (array.min() < 0 or array.max() > 1):  # not bits: the general encoder
        return json.dumps(array.tolist(), separators=(",", ":")).encode()
    # Each row is "[d,d,...,d]," (2·width + 2 bytes; "[]," for no qubits); the last comma goes.
    row = max(2 * width + 2, 3)
    buffer = np.empty((count, row), dtype=np.uint8)
    buffer[:, 0] = _OPEN
    if width:
        buffer[:, 1 : 2 * width : 2] = array.astype(np.uint8) + _ZERO
        buffer[:, 2 : 2 * width : 2] = _COMMA
    buffer[:, row - 2] = _CLOSE
    buffer[:, row - 1] = _COMMA
    return b"[" + buffer.tobytes()[:-1] + b"]"


def measurements_json(measurements: Sequence[Mapping[str, Any]]) -> bytes:
    """The JSON of a job's measurements: a list of ``{key: [[bits]]}`` per circuit."""
    circuits = []
    for circuit in measurements:
        fields = [json.dumps(key).encode() + b":" + bits_json(v) for key, v in circuit.items()]
        circuits.append(b"{" + b",".join(fields) + b"}")
    return b"[" + b",".join(circuits) + b"]"


def body_with_measurements(
    body: Mapping[str, Any], measurements: Sequence[Mapping[str, Any]]
) -> bytes:
    """``body`` (without ``measurements``) as JSON with the measurements added last."""
    head = json.dumps({k: v for k, v in body.items() if k != "measurements"}, separators=(",", ":"))
    joiner = b"," if head != "{}" else b""
    return head[:-1].encode() + joiner + b'"measurements":' + measurements_json(measurements) + b"}"


def _plain(value: Any) -> Any:
    return value.tolist() if isinstance(value, np.ndarray) else value
