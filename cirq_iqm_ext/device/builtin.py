"""Built-in offline devices: IQM's public architectures, shipped with the package.

Each function returns a fresh :class:`~cirq_iqm_ext.IQMDevice`; no network is involved, so
they suit compiling and simulating offline. The data lives in ``cirq_iqm_ext/data/architectures/``.
They describe today's machines, which execute waits: every architecture lists ``delay`` (no loci:
any qubit), so ``cirq.wait`` is valid on them. A CoCoS v1 server has no ``delay``; a device built
from such a server's architecture rejects waits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from uuid import UUID

from cirq_iqm_ext.catalogue import builtin_architecture
from cirq_iqm_ext.device.iqm_device import IQMDevice
from cirq_iqm_ext.wire.models import QuantumArchitectureSpecification


def Adonis(calibration_set_id: UUID | str | None = None) -> IQMDevice:
    """IQM Adonis: 5 qubits in a star around QB3 (couplings 1-3, 2-3, 3-4, 3-5)."""
    return IQMDevice(builtin_architecture("adonis"), calibration_set_id)


def Apollo(calibration_set_id: UUID | str | None = None) -> IQMDevice:
    """IQM Apollo: 20 qubits on a square lattice (30 couplings)."""
    return IQMDevice(builtin_architecture("apollo"), calibration_set_id)


def Garnet(calibration_set_id: UUID | str | None = None) -> IQMDevice:
    """IQM Garnet: the Apollo topology (20 qubits, square lattice) under its product name."""
    return IQMDevice(builtin_architecture("garnet"), calibration_set_id)


def Aphrodite(calibration_set_id: UUID | str | None = None) -> IQMDevice:
    """IQM Aphrodite: 54 qubits on a square lattice of the same family as Apollo."""
    return IQMDevice(builtin_architecture("aphrodite"), calibration_set_id)


def Deneb(calibration_set_id: UUID | str | None = None) -> IQMDevice:
    """IQM Deneb: 6 qubits coupled through the computational resonator ``COMP_R``."""
    return IQMDevice(builtin_architecture("deneb"), calibration_set_id)


def star_architecture(
    n_qubits: int,
    *,
    resonator: str = "COMP_R",
    without_move: Iterable[int] = (),
    name: str | None = None,
) -> QuantumArchitectureSpecification:
    """A Deneb-like star architecture: ``QB1``...``QBn`` each coupled to one resonator.

    Built from Deneb's data: every qubit has ``prx``, ``measure``, ``reset`` and ``cc_prx``, and
    ``cz`` and ``move`` with the resonator, except ``move`` on the qubits listed in
    ``without_move``; ``barrier`` and ``delay`` act anywhere.

    Args:
        n_qubits: Number of qubits (at least 2).
        resonator: Name of the computational resonator.
        without_move: Qubit numbers with ``cz`` but no calibrated ``move`` (they can only be the
            gate side of a CZ).
        name: Architecture name (default ``"Star{n}"``).

    Raises:
        ValueError: Fewer than 2 qubits, or a ``without_move`` number out of range.
    """
    if isinstance(n_qubits, bool) or not isinstance(n_qubits, int):
        raise TypeError(f"n_qubits must be an int, got {type(n_qubits).__name__} {n_qubits!r}")
    if n_qubits < 2:
        raise ValueError(f"A star architecture needs at least 2 qubits, got {n_qubits}")
    skipped = set(without_move)
    bad = sorted(i for i in skipped if not 1 <= i <= n_qubits)
    if bad:
        raise ValueError(f"without_move names qubits {bad} outside 1..{n_qubits}")
    qubits = [f"QB{i}" for i in range(1, n_qubits + 1)]
    pairs = [[q, resonator] for q in qubits]
    data = {
        "name": name or f"Star{n_qubits}",
        "qubits": [resonator, *qubits],
        "qubit_connectivity": pairs,
        "operations": {
            "prx": [[q] for q in qubits],
            "cz": pairs,
            "move": [[f"QB{i}", resonator] for i in range(1, n_qubits + 1) if i not in skipped],
            "measure": [[q] for q in qubits],
            "barrier": [],
            "delay": [],
            "reset": [[q] for q in qubits],
            "cc_prx": [[q] for q in qubits],
        },
    }
    return QuantumArchitectureSpecification.from_dict({"quantum_architecture": data})


def star_device(
    n_qubits: int,
    *,
    resonator: str = "COMP_R",
    without_move: Iterable[int] = (),
    calibration_set_id: UUID | str | None = None,
) -> IQMDevice:
    """A star device of any size (see :func:`star_architecture`), e.g. ``star_device(12)``."""
    spec = star_architecture(n_qubits, resonator=resonator, without_move=without_move)
    return IQMDevice(spec, calibration_set_id)


#: Architecture name -> factory of the built-in device.
BUILTIN_DEVICES: dict[str, Callable[..., IQMDevice]] = {
    "Adonis": Adonis,
    "Apollo": Apollo,
    "Garnet": Garnet,
    "Aphrodite": Aphrodite,
    "Deneb": Deneb,
}

__all__ = [
    "BUILTIN_DEVICES",
    "Adonis",
    "Aphrodite",
    "Apollo",
    "Deneb",
    "Garnet",
    "star_architecture",
    "star_device",
]
