"""JSON text of many floats at once, the numbers of a large request body.

A run request of 1,000 circuits of 200 operations holds about 280,000 ``prx`` numbers, and
``repr`` of a float costs about half a microsecond: once the serialiser's largest cost.
``orjson`` (the optional ``fast`` extra) prints a list of floats more than ten times faster, with
the same shortest round-trip digits as ``repr``. Only the form can differ, for numbers that
``repr`` writes with an exponent (``1e-05``, ``1e+16``; orjson: ``0.00001``, ``7.9e-6``) and for
``nan`` and infinities (orjson: ``null``): every such token has an ``e``, an ``n`` or ``0.0000``
in it, and those tokens (and a few harmless false alarms such as ``10.00001``) are printed with
``repr`` instead. The text therefore never depends on whether ``orjson`` is installed.

``nan`` and infinities have no JSON text: they are refused (:class:`NonFiniteNumberError`).
"""

from __future__ import annotations

import math
from typing import Any

from cirq_iqm_ext._optional import optional_module

_orjson: Any = optional_module("orjson")

#: Whether the bulk path (``orjson``) is in use.
BULK = _orjson is not None
#: Below this many numbers, plain ``repr`` is as fast as the bulk path.
_BULK_FROM = 16


class NonFiniteNumberError(ValueError):
    """A number to send is ``nan`` or infinite, which JSON cannot carry.

    Attributes:
        index: The position of the first such number in the list given.
    """

    def __init__(self, index: int, value: float):
        super().__init__(f"number {index} is {value!r}, which JSON cannot carry")
        self.index = index


def _first_non_finite(values: list[float]) -> NonFiniteNumberError:
    index = next(i for i, v in enumerate(values) if not math.isfinite(v))
    return NonFiniteNumberError(index, values[index])


def careful_reprs(values: list[float]) -> list[str]:
    """``repr`` of each value: the reference the bulk path equals.

    Raises:
        NonFiniteNumberError: A value is ``nan`` or infinite.
    """
    texts = list(map(repr, values))
    if "n" in "".join(texts):  # only nan and inf: a finite float's repr has no "n"
        raise _first_non_finite(values)
    return texts


def float_reprs(values: list[float]) -> list[str]:
    """``repr(v)`` for each float ``v``, in bulk (through ``orjson`` when installed).

    Args:
        values: Python floats (exactly ``float``, not numpy scalars or ints).

    Returns:
        The text of each value, identical to ``repr``.

    Raises:
        NonFiniteNumberError: A value is ``nan`` or infinite.
    """
    if _orjson is None or len(values) < _BULK_FROM:
        return careful_reprs(values)
    text = _orjson.dumps(values).decode("ascii")
    texts = text[1:-1].split(",")
    if "e" in text or "n" in text or "0.0000" in text:  # rare: look token by token
        if "null" in text:
            raise _first_non_finite(values)
        return [
            repr(value) if ("e" in token or "n" in token or "0.0000" in token) else token
            for token, value in zip(texts, values, strict=True)
        ]
    return texts
