"""The built-in catalogue: IQM's public architectures and their calibration sets, shipped as data.

One loader for everything under ``cirq_iqm_ext/data/``: the built-in devices, the server's
``--architecture`` names and the built-in calibration sets all read through here, so a name means
the same thing everywhere. No Cirq, no HTTP: the catalogue sits just above the wire format.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from cirq_iqm_ext.errors import ModelValidationError
from cirq_iqm_ext.wire.models import QuantumArchitectureSpecification

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
        ValueError: Unknown name (the message lists the valid ones), unreadable file, or a file that
            is not a valid architecture.
    """
    if isinstance(spec, QuantumArchitectureSpecification):
        return spec
    if isinstance(spec, Mapping):
        return QuantumArchitectureSpecification.from_dict(spec)
    text = str(spec)
    if text.lower() in BUILTIN_ARCHITECTURES:
        return builtin_architecture(text)
    path = Path(text)
    if not path.is_file():
        names = ", ".join(sorted(BUILTIN_ARCHITECTURES))
        raise ValueError(
            f"Unknown architecture {text!r}: use one of {names}, or the path of a JSON file"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return QuantumArchitectureSpecification.from_dict(data)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ModelValidationError) as error:
        raise ValueError(f"Cannot load the architecture file {text!r}: {error}") from None


__all__ = [
    "BUILTIN_ARCHITECTURES",
    "BUILTIN_CALIBRATIONS",
    "builtin_architecture",
    "builtin_calibration_data",
    "load_architecture",
]
