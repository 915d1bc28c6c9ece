"""Built-in offline devices: IQM's public architectures, shipped with the package.

Each function returns a fresh :class:`~cirq_iqm_ext.device.IQMDevice`; no network is involved, so
they suit compiling and simulating offline. The data lives in ``cirq_iqm_ext/data/architectures/``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from importlib import resources
from uuid import UUID

from cirq_iqm_ext.device import IQMDevice
from cirq_iqm_ext.models import QuantumArchitectureSpecification


@functools.cache
def _load(file_name: str) -> QuantumArchitectureSpecification:
    text = (
        resources.files("cirq_iqm_ext")
        .joinpath("data", "architectures", file_name)
        .read_text(encoding="utf-8")
    )
    return QuantumArchitectureSpecification.from_dict(json.loads(text))


def _renamed(spec: QuantumArchitectureSpecification, name: str) -> QuantumArchitectureSpecification:
    data = spec.to_dict()
    data["quantum_architecture"]["name"] = name
    return QuantumArchitectureSpecification.from_dict(data)


def Adonis(calibration_set_id: UUID | str | None = None) -> IQMDevice:
    """IQM Adonis: 5 qubits in a star around QB3 (couplings 1-3, 2-3, 3-4, 3-5)."""
    return IQMDevice(_load("adonis.json"), calibration_set_id)


def Apollo(calibration_set_id: UUID | str | None = None) -> IQMDevice:
    """IQM Apollo: 20 qubits on a square lattice (30 couplings)."""
    return IQMDevice(_load("apollo.json"), calibration_set_id)


@functools.cache
def _garnet_spec() -> QuantumArchitectureSpecification:
    return _renamed(_load("apollo.json"), "Garnet")


def Garnet(calibration_set_id: UUID | str | None = None) -> IQMDevice:
    """IQM Garnet: the Apollo topology (20 qubits, square lattice) under its product name."""
    return IQMDevice(_garnet_spec(), calibration_set_id)


def Aphrodite(calibration_set_id: UUID | str | None = None) -> IQMDevice:
    """IQM Aphrodite: 54 qubits on a square lattice of the same family as Apollo."""
    return IQMDevice(_load("aphrodite.json"), calibration_set_id)


def Deneb(calibration_set_id: UUID | str | None = None) -> IQMDevice:
    """IQM Deneb: 6 qubits coupled through the computational resonator ``COMP_R``."""
    return IQMDevice(_load("deneb.json"), calibration_set_id)


#: Architecture name -> factory of the built-in device.
BUILTIN_DEVICES: dict[str, Callable[..., IQMDevice]] = {
    "Adonis": Adonis,
    "Apollo": Apollo,
    "Garnet": Garnet,
    "Aphrodite": Aphrodite,
    "Deneb": Deneb,
}

__all__ = ["BUILTIN_DEVICES", "Adonis", "Aphrodite", "Apollo", "Deneb", "Garnet"]
