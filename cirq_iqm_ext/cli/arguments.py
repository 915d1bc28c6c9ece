"""Argument types of the command line: each parses one value or says what is wrong with it."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from uuid import UUID


def uuid_of(what: str) -> Callable[[str], UUID]:
    """An argument type reading a UUID; ``what`` names it in the error."""

    def parse(text: str) -> UUID:
        try:
            return UUID(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {what} (a UUID): {text!r}") from None

    return parse


job_id = uuid_of("a job id")


def positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """A finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def port(text: str) -> int:
    """A TCP port, 0 for any free one."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: not an integer") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {port}: must be 0..65535 (0 = any free)")
    return port


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


#: Suffixes of :func:`byte_size` (binary: ``1M`` is 1 MiB).
_SIZE_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def byte_size(text: str) -> int:
    """A number of bytes >= 0, optionally with a binary suffix: ``500M``, ``2G``, ``1048576``."""
    raw = text.strip().upper().removesuffix("IB").removesuffix("B")
    suffix = raw[-1:] if raw[-1:] in _SIZE_SUFFIXES else ""
    digits = raw[: len(raw) - len(suffix)]
    try:
        value = float(digits)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a size: {text!r} (use bytes or a suffix K, M, G, e.g. 512M)"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a size >= 0, got {text!r}")
    return int(value * _SIZE_SUFFIXES[suffix])


def user(text: str) -> tuple[str, str]:
    """``NAME:PASSWORD``; the error never echoes the argument (it holds a password)."""
    name, sep, password = text.partition(":")
    if not sep or not name or not password:
        # Never echo the argument: it holds a password.
        raise argparse.ArgumentTypeError(
            "expected NAME:PASSWORD with a non-empty name and password"
        )
    return name, password


__all__ = [
    "byte_size",
    "job_id",
    "non_negative_float",
    "port",
    "positive_float",
    "positive_int",
    "user",
    "uuid_of",
]
