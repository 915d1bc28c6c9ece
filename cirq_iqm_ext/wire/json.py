"""Small helpers shared by the transfer format and its users."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def to_json_dict(data: Mapping[str, Any]) -> dict[str, Any]:
    """Returns a copy of ``data`` that ``json.dumps`` accepts.

    numpy arrays become (nested) lists, numpy scalars plain Python numbers, tuples lists; everything
    else must already be JSON-serialisable.

    Args:
        data: A dict with string keys, e.g. circuit metadata.

    Returns:
        The converted dict.

    Raises:
        TypeError: A key is not a string or a value cannot be represented in JSON.
    """
    return {_check_key(k): _convert(v) for k, v in data.items()}


def _check_key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"JSON object keys must be strings, got {type(key).__name__} {key!r}")
    return key


def _convert(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.ndarray):
        return _convert(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return to_json_dict(value)
    if isinstance(value, list | tuple):
        return [_convert(v) for v in value]
    raise TypeError(f"{type(value).__name__} value {value!r} cannot be represented in JSON")
