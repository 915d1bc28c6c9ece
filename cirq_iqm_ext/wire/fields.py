"""Field checks the transfer-format models share: types, UUIDs, JSON metadata.

Every failure is a :class:`~cirq_iqm_ext.ModelValidationError` whose message names the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from cirq_iqm_ext.errors import ModelValidationError
from cirq_iqm_ext.wire.json import to_json_dict

#: The types a numeric field accepts (a bool is not one of them, see :func:`require_type`).
NUMBER = (int, float)


def fail(message: str) -> ModelValidationError:
    """The error for an invalid field, so that call sites read ``raise fail(...)``."""
    return ModelValidationError(message)


def require_type(value: Any, types: type | tuple[type, ...], what: str) -> None:
    """Raises unless ``value`` is one of ``types``; a bool counts only where ``bool`` is listed."""
    options = types if isinstance(types, tuple) else (types,)
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in options):
        expected = " or ".join(t.__name__ for t in options)
        raise fail(f"{what} must be {expected}, got {type(value).__name__} {value!r}")


def parse_uuid(value: Any, what: str) -> UUID | None:
    """``value`` as a UUID (``None`` stays ``None``).

    Raises:
        ModelValidationError: ``value`` is not a UUID; the message names ``what``.
    """
    if value is None or isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise fail(f"{what} must be a UUID, got {value!r}") from None


def check_metadata(metadata: Any, owner: str) -> dict[str, Any] | None:
    """``metadata`` converted to plain JSON (``None`` stays ``None``); ``owner`` names it."""
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise fail(f"The metadata of {owner} must be a dict, got {type(metadata).__name__}")
    try:
        converted = to_json_dict(metadata)
        json.dumps(converted, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise fail(
            f"The metadata of {owner} is not JSON-serialisable ({error}); use only dicts, lists, "
            "strings, finite numbers, booleans, None, numpy arrays and numpy scalars"
        ) from None
    return converted


__all__ = ["NUMBER", "check_metadata", "fail", "parse_uuid", "require_type"]
