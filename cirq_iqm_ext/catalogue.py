"""The built-in catalogue: IQM's public architectures and their calibration sets, shipped as data.

One loader for everything under ``cirq_iqm_ext/data/``: the built-in devices, the server's
``--architecture`` names and the built-in calibration sets all read through here, so a name means
the same thing everywhere. No Cirq, no HTTP: the catalogue sits just above the wire format.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any, TypeVar

from cirq_iqm_ext.errors import ModelValidationError
from cirq_iqm_ext.wire.models import QuantumArchitectureSpecification

T = TypeVar("T")

#: Built-in architecture name (lower case) -> (data file, name to report). Garnet has Apollo's
#: topology under its product name.
BUILTIN_ARCHITECTURES: dict[str, tuple[str, str | None]] = {
    "adonis": ("adonis.json", None),
    "aphrodite": ("aphrodite.json", None),
    "apollo": ("apollo.json", None),
    "deneb": ("deneb.json", None),
    "garnet": ("apollo.json", "Garnet"),
}

#: Built-in architecture name (lower case) -> calibration data file.
BUILTIN_CALIBRATIONS: dict[str, str] = {
    "adonis": "adonis.json",
    "apollo": "apollo.json",
    "garnet": "garnet.json",
    "aphrodite": "aphrodite.json",
    "deneb": "deneb.json",
}


@functools.cache
def _read(folder: str, file_name: str) -> dict[str, Any]:
    text = resources.files("cirq_iqm_ext").joinpath("data", folder, file_name)
    return json.loads(text.read_text(encoding="utf-8"))


def builtin_architecture(name: str) -> QuantumArchitectureSpecification:
    """The shipped architecture of a built-in device (case-insensitive name).

    Raises:
        ValueError: No built-in architecture has that name (the message lists them).
    """
    entry = BUILTIN_ARCHITECTURES.get(name.lower())
    if entry is None:
        names = ", ".join(sorted(BUILTIN_ARCHITECTURES))
        raise ValueError(f"No built-in architecture {name!r}; there are {names}")
    return _builtin_architecture(*entry)


@functools.cache
def _builtin_architecture(file_name: str, rename: str | None) -> QuantumArchitectureSpecification:
    data = copy.deepcopy(_read("architectures", file_name))
    if rename is not None:
        data["quantum_architecture"]["name"] = rename
    return QuantumArchitectureSpecification.from_dict(data)


def builtin_calibration_data(name: str) -> dict[str, Any]:
    """The shipped calibration set of a built-in architecture as parsed JSON (a fresh copy).

    Raises:
        ValueError: No built-in set has that name (the message lists them).
    """
    file_name = BUILTIN_CALIBRATIONS.get(name.lower())
    if file_name is None:
        names = ", ".join(sorted(BUILTIN_CALIBRATIONS))
        raise ValueError(f"No built-in calibration set {name!r}; there are {names}")
    return copy.deepcopy(_read("calibration", file_name))


def resolve(
    spec: Any,
    model: type[T],
    parse: Callable[[Mapping[str, Any]], T],
    *,
    what: str,
    builtin_names: Iterable[str],
    builtin: Callable[[str], T],
    errors: tuple[type[Exception], ...],
) -> T:
    """A built-in name (case-insensitive), a JSON file path or a parsed dict, as a ``model``.

    The one way the package reads "a name or a file" (``--architecture``, ``--calibration``).

    Args:
        spec: The name, path or dict; an object of the model's type is returned as it is.
        model: The class to build.
        parse: Builds it from parsed JSON (its ``from_dict``).
        what: What it is, for messages (``"architecture"``).
        builtin_names: The valid built-in names (lower case).
        builtin: Loads a built-in by name.
        errors: What ``parse`` raises for bad content; the first is also what this raises (an
            ``IQMError`` that is a ``ValueError``).

    Raises:
        errors[0]: Not a name, path, dict or ``model``; an unknown name (the message lists the
            valid ones), an unreadable file, or a file that is not a valid ``what``.
    """
    if isinstance(spec, model):
        return spec
    if isinstance(spec, Mapping):
        return parse(spec)
    failure = errors[0]
    if not isinstance(spec, str | PathLike):
        raise failure(
            f"The {what} must be a {model.__name__}, a built-in name, the path of a JSON file "
            f"or a parsed dict, not {type(spec).__name__} {spec!r}"
        )
    text = str(spec)
    names = sorted(builtin_names)
    if text.lower() in names:
        return builtin(text)
    path = Path(text)
    if not path.is_file():
        raise failure(
            f"Unknown {what} {text!r}: use one of {', '.join(names)}, or the path of a JSON file"
        )
    caught: tuple[type[Exception], ...] = (OSError, UnicodeDecodeError, ValueError, *errors)
    try:
        return parse(json.loads(path.read_text(encoding="utf-8")))
    except caught as error:
        raise failure(f"Cannot load the {what} file {text!r}: {error}") from None


def load_architecture(
    spec: str | Path | Mapping[str, Any] | QuantumArchitectureSpecification,
) -> QuantumArchitectureSpecification:
    """Resolves a built-in name (case-insensitive), a JSON file path, or an architecture dict.

    Args:
        spec: ``"adonis"``, ``"apollo"``, ``"garnet"``, ``"aphrodite"``, ``"deneb"``, the path of a
            JSON file with a static architecture, a parsed dict, or an architecture object.

    Returns:
        The architecture.

    Raises:
        ModelValidationError: Unknown name (the message lists the valid ones), unreadable file, or
            a file that is not a valid architecture (a ``ValueError`` too).
    """
    return resolve(
        spec,
        QuantumArchitectureSpecification,
        QuantumArchitectureSpecification.from_dict,
        what="architecture",
        builtin_names=BUILTIN_ARCHITECTURES,
        builtin=builtin_architecture,
        errors=(ModelValidationError,),
    )


__all__ = [
    "BUILTIN_ARCHITECTURES",
    "BUILTIN_CALIBRATIONS",
    "builtin_architecture",
    "builtin_calibration_data",
    "load_architecture",
    "resolve",
]
