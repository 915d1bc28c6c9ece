"""Qubit names as the protocol writes them, and the one order they are listed in."""

from __future__ import annotations

import re
from typing import Any

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key of a qubit or resonator name, numbers by value: ``QB2`` before ``QB10``.

    Text and number parts alternate in the key (text first), so any two names compare.
    """
    return tuple(int(part) if i % 2 else part for i, part in enumerate(_DIGITS.split(name)))


__all__ = ["natural_key"]
