"""JSON of measurement results, written straight from the numpy arrays.

``json.dumps`` of nested lists costs seconds for a few million shots and holds the interpreter
the whole time (a status poll on another thread waits behind it); building the lists first
costs as much again and as much memory. A 0/1 array of shape ``(shots, qubits)`` has a fixed
text per row, so its JSON is laid out in one numpy buffer instead: the same bytes as
``json.dumps(array.tolist(), separators=(",", ":"))``, at memory speed, and nothing kept.
The ``iter_*`` functions give the same bytes in pieces, so a large body is streamed (and a piece
at a time held in memory) instead of built whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

_OPEN, _CLOSE, _COMMA, _ZERO = (ord(c) for c in "[],0")


#: Rows of one key's measurements written per piece of a streamed body (~1 MB of JSON at
#: 40 qubits): each piece is one short numpy call, so other threads get the interpreter often.
ROWS_PER_PIECE = 1 << 14


def bits_json(shots: Any) -> bytes:
    """The JSON of one key's measurements (``[[0,1],[1,1]]``), compact separators."""
    return b"".join(iter_bits_json(shots, rows_per_piece=1 << 62))


def iter_bits_json(shots: Any, rows_per_piece: int = ROWS_PER_PIECE) -> Iterator[bytes]:
    """:func:`bits_json` in pieces of at most ``rows_per_piece`` rows, to stream."""
    array = np.asarray(shots) if isinstance(shots, np.ndarray) else None
    if array is None or array.ndim != 2 or array.dtype.kind not in "biu":
        yield json.dumps(_plain(shots), separators=(",", ":")).encode()
        return
    count, width = array.shape
    if count == 0:
        yield b"[]"
        return
    if width and (array.min() < 0 or array.max() > 1):  # not bits: the general encoder
        yield json.dumps(array.tolist(), separators=(",", ":")).encode()
        return
    for start in range(0, count, rows_per_piece):
        piece = _rows_json(array[start : start + rows_per_piece])
        first, last = start == 0, start + rows_per_piece >= count
        # Rows end with a comma; the list's last row must not.
        yield (b"[" if first else b"") + (piece[:-1] + b"]" if last else piece)


def _rows_json(array: np.ndarray) -> bytes:
    """``[d,...,d],`` for every row of a 0/1 array, laid out in one numpy buffer."""
    count, width = array.shape
    # Each row is "[d,d,...,d]," (2·width + 2 bytes; "[]," for no qubits).
    row = max(2 * width + 2, 3)
    buffer = np.empty((count, row), dtype=np.uint8)
    buffer[:, 0] = _OPEN
    if width:
        buffer[:, 1 : 2 * width : 2] = array.astype(np.uint8) + _ZERO
        buffer[:, 2 : 2 * width : 2] = _COMMA
    buffer[:, row - 2] = _CLOSE
    buffer[:, row - 1] = _COMMA
    return buffer.tobytes()


def measurements_json(measurements: Sequence[Mapping[str, Any]]) -> bytes:
    """The JSON of a job's measurements: a list of ``{key: [[bits]]}`` per circuit."""
    return b"".join(iter_measurements_json(measurements))


def iter_measurements_json(
    measurements: Sequence[Mapping[str, Any]], rows_per_piece: int = ROWS_PER_PIECE
) -> Iterator[bytes]:
    """:func:`measurements_json` in pieces (a key's rows at a time), to stream."""
    yield b"["
    for number, circuit in enumerate(measurements):
        yield b"{" if number == 0 else b",{"
        for field, (key, shots) in enumerate(circuit.items()):
            yield (b"," if field else b"") + json.dumps(key).encode() + b":"
            yield from iter_bits_json(shots, rows_per_piece)
        yield b"}"
    yield b"]"


def body_with_measurements(
    body: Mapping[str, Any], measurements: Sequence[Mapping[str, Any]]
) -> bytes:
    """``body`` (without ``measurements``) as JSON with the measurements added last."""
    return b"".join(iter_body_with_measurements(body, measurements))


def iter_body_with_measurements(
    body: Mapping[str, Any],
    measurements: Sequence[Mapping[str, Any]],
    rows_per_piece: int = ROWS_PER_PIECE,
) -> Iterator[bytes]:
    """:func:`body_with_measurements` in pieces, to stream."""
    head = json.dumps({k: v for k, v in body.items() if k != "measurements"}, separators=(",", ":"))
    joiner = b"," if head != "{}" else b""
    yield head[:-1].encode() + joiner + b'"measurements":'
    yield from iter_measurements_json(measurements, rows_per_piece)
    yield b"}"


def _plain(value: Any) -> Any:
    return value.tolist() if isinstance(value, np.ndarray) else value
