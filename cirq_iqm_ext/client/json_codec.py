"""JSON decoding on the client's hot path: a fast codec when installed, measurements into numpy.

:func:`loads` uses ``orjson`` when it is installed (the optional ``fast`` extra) and the standard
library otherwise; both give the same Python objects for the JSON that servers send.

:func:`decode_measurements` reads a measurements answer (a list with one object per circuit,
mapping each key to a list of shots, each a list of 0/1) straight into ``int8`` arrays of shape
``(shots, width)``: each key's shot lists are checked byte by byte with numpy (brackets, commas
and digits exactly where a regular 0/1 array puts them) instead of becoming Python lists first.
Anything else (other values, ragged shots, odd keys) falls back to the general JSON path, so the
result never depends on which path ran.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from cirq_iqm_ext._optional import optional_module

_orjson: Any = optional_module("orjson")

#: Whether the fast JSON codec (``orjson``) is in use.
FAST_CODEC = _orjson is not None


def stdlib_loads(content: bytes | str) -> Any:
    """Decodes JSON with the standard library."""
    return json.loads(content)


def _fast_loads(content: bytes | str) -> Any:
    assert _orjson is not None
    return _orjson.loads(content)


#: Decodes JSON text: ``orjson`` when installed, else the standard library.
loads: Callable[[bytes | str], Any] = _fast_loads if FAST_CODEC else stdlib_loads

# One key (a JSON string) and its value when that is an array of arrays of digits.
_KEY_AND_BITS = re.compile(rb'"((?:[^"\\]|\\.)*)"\s*:\s*(\[[\[\]0-9,\s]*\])')
_WHITESPACE = b" \t\r\n"
_OPEN, _CLOSE, _COMMA, _ZERO = (ord(c) for c in "[],0")


def _bits(segment: bytes) -> np.ndarray | None:
    """``[[0,1],[1,1]]`` as an ``int8`` array, or ``None`` unless it is exactly such an array."""
    compact = segment.translate(None, _WHITESPACE)
    if len(compact) < 4 or compact[:2] != b"[[" or compact[-2:] != b"]]":
        return None
    width = (compact.find(b"]") - 1) // 2
    row = 2 * width + 2  # "[d,d,...,d]," with the separating comma
    rows = compact[1:-1] + b","
    if width < 1 or len(rows) % row:
        return None
    grid = np.frombuffer(rows, dtype=np.uint8).reshape(-1, row)
    digits = grid[:, 1 : 2 * width : 2] - np.uint8(_ZERO)  # below '0' wraps round, so > 1
    regular = (
        bool((grid[:, 0] == _OPEN).all())
        and bool((grid[:, 2 : 2 * width : 2] == _COMMA).all())
        and bool((grid[:, 2 * width] == _CLOSE).all())
        and bool((grid[:, 2 * width + 1] == _COMMA).all())
        and bool((digits <= 1).all())
    )
    return digits.astype(np.int8) if regular else None


def _fast_measurements(content: bytes) -> list[dict[str, np.ndarray]] | None:
    matches = list(_KEY_AND_BITS.finditer(content))
    arrays: list[np.ndarray] = []
    for match in matches:
        array = _bits(match.group(2))
        if array is None:
            return None
        arrays.append(array)
    if not matches:
        return None
    # What is left with every array replaced by 0 must be the list of objects it seems to be,
    # with exactly the keys found, in order: then no match began inside a string.
    pieces, end = [], 0
    for match in matches:
        pieces += [content[end : match.start(2)], b"0"]
        end = match.end(2)
    skeleton = stdlib_loads(b"".join([*pieces, content[end:]]))
    keys = [stdlib_loads(b'"' + match.group(1) + b'"') for match in matches]
    if not isinstance(skeleton, list) or not all(isinstance(c, dict) for c in skeleton):
        return None
    if [k for c in skeleton for k in c] != keys or any(
        type(v) is not int or v != 0 for c in skeleton for v in c.values()
    ):
        return None
    found = iter(arrays)
    return [{key: next(found) for key in circuit} for circuit in skeleton]


def _general_measurements(raw: Any) -> list[dict[str, Any]]:
    """Any measurements list: keys whose shots form a regular integer array become one."""
    if not isinstance(raw, list):
        return raw  # the caller's validation names the problem
    out = []
    for circuit in raw:
        if not isinstance(circuit, dict):
            return raw
        converted: dict[str, Any] = {}
        for key, shots in circuit.items():
            converted[key] = shots
            if isinstance(shots, list) and shots and all(isinstance(s, list) for s in shots):
                widths = {len(s) for s in shots}
                values = [v for s in shots for v in s]
                regular = len(widths) == 1 and widths != {0}
                if regular and all(type(v) is int and v in (0, 1) for v in values):
                    converted[key] = np.array(values, dtype=np.int8).reshape(len(shots), -1)
        out.append(converted)
    return out


def decode_measurements(content: bytes) -> Any:
    """A measurements answer with each key's 0/1 shots as an ``int8`` ``(shots, width)`` array.

    Keys whose shots are not a regular 0/1 array (none, ragged, other values) keep the lists
    the JSON has, for the caller's validation to judge; a body that is not such a list at all is
    returned as decoded.

    Raises:
        ValueError: The body is not JSON.
    """
    fast = _fast_measurements(content)
    if fast is not None:
        return fast
    return _general_measurements(loads(content))


__all__ = ["FAST_CODEC", "decode_measurements", "loads", "stdlib_loads"]
