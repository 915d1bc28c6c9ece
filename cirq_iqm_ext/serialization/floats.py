"""Python's ``repr`` of many floats at once, the numbers of a large request body.

A run request of 1,000 circuits of 200 operations holds about 280,000 ``prx`` numbers, and
``repr`` of a float costs about half a microsecond: once the serialiser's largest cost.
``orjson`` (the optional ``fast`` extra) prints a list of floats more than ten times faster, with
the same shortest round-trip digits as ``repr``. Only the form can differ, for numbers that
``repr`` writes with an exponent (``1e-05``, ``1e+16``; orjson: ``0.00001``, ``1e16``) and for
``nan`` and infinities (orjson: ``null``): every such token has an ``e``, an ``n`` or ``0.0000``
in it, and those tokens (and a few harmless false alarms such as ``10.00001``) are printed with
``repr`` instead. The text therefore never depends on whether ``orjson`` is installed.
"""

from __future__ import annotations

from typing import Any

from cirq_iqm_ext._optional import optional_module

_orjson: Any = optional_module("orjson")

#: Whether the bulk path (``orjson``) is in use.
BULK = _orjson is not None
#: Below this many numbers, plain ``repr`` is as fast as the bulk path.
_BULK_FROM = 16
#: Marks of a token whose form may differ from ``repr`` (exponent, ``null``, below 1e-4):
#: ``e``, ``n`` and ``0.0000``, tested inline (a loop over them costs more than the test).
_SUSPECT = ("e", "n", "0.0000")


def careful_reprs(values: list[float]) -> list[str]:
    """``repr`` of each value: the reference the bulk path equals."""
    return list(map(repr, values))


def float_reprs(values: list[float]) -> list[str]:
    """``repr(v)`` for each float ``v``, in bulk (through ``orjson`` when installed).

    Args:
        values: Python floats (exactly ``float``, not numpy scalars or ints).

    Returns:
        The text of each value, identical to ``repr``.
    """
    if _orjson is None or len(values) < _BULK_FROM:
        return careful_reprs(values)
    text = _orjson.dumps(values).decode("ascii")
    texts = text[1:-1].split(",")
    if "e" in text or "n" in text or "0.0000" in text:  # rare: look token by token
        return [
            repr(value) if ("e" in token or "n" in token or "0.0000" in token) else token
            for token, value in zip(texts, values, strict=True)
        ]
    return texts
