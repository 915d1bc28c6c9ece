"""What the server serves of the configured architecture: ``delay`` and dynamic-circuit variants,
and the feedback groups of ``cc_prx``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from cirq_iqm_ext.wire.models import QuantumArchitectureSpecification
from cirq_iqm_ext.wire.validation import DYNAMIC_OPERATIONS, architecture_resonators


def with_delay(
    architecture: QuantumArchitectureSpecification, delay: bool
) -> QuantumArchitectureSpecification:
    """``architecture`` listing ``delay`` (any component) exactly when the server executes it."""
    if ("delay" in architecture.operations) == delay:
        return architecture
    operations = {k: v for k, v in architecture.operations.items() if k != "delay"}
    if delay:
        operations["delay"] = ()
    return dataclasses.replace(architecture, operations=operations)


def without_dynamic(
    architecture: QuantumArchitectureSpecification,
) -> QuantumArchitectureSpecification:
    """``architecture`` without ``reset`` and ``cc_prx``, as a CoCoS v1 server lists it."""
    if not any(name in architecture.operations for name in DYNAMIC_OPERATIONS):
        return architecture
    operations = {k: v for k, v in architecture.operations.items() if k not in DYNAMIC_OPERATIONS}
    return dataclasses.replace(architecture, operations=operations)


def served_architecture(
    architecture: QuantumArchitectureSpecification, *, delay: bool, dynamic: bool
) -> QuantumArchitectureSpecification:
    """What the server serves: listing ``delay`` exactly when it executes it, and ``reset`` and
    ``cc_prx`` (where the architecture has them) only when it runs dynamic circuits."""
    architecture = with_delay(architecture, delay)
    return architecture if dynamic else without_dynamic(architecture)


def architecture_variant(
    architecture: QuantumArchitectureSpecification, delay: bool, dynamic: bool
) -> QuantumArchitectureSpecification:
    """What a v1 client that asked for these extensions sees of the served architecture."""
    if not delay:
        architecture = with_delay(architecture, False)
    return architecture if dynamic else without_dynamic(architecture)


def computational_qubits(architecture: QuantumArchitectureSpecification) -> list[str]:
    """The architecture's qubits without its computational resonators."""
    resonators = set(architecture_resonators(architecture))
    return [q for q in architecture.qubits if q not in resonators]


def feedback_groups(
    architecture: QuantumArchitectureSpecification,
    groups: Sequence[Iterable[str]] | None,
) -> tuple[frozenset[str], ...]:
    """The configured feedback groups, checked; ``None``: one group of every qubit.

    Raises:
        TypeError: ``groups`` is a string or holds strings instead of lists of names.
        ValueError: A group is empty or names qubits the architecture does not have.
    """
    qubits = computational_qubits(architecture)
    if groups is None:
        return (frozenset(qubits),)
    if isinstance(groups, str | bytes):
        raise TypeError("feedback_groups must be a list of lists of qubit names, not a string")
    out = []
    for group in groups:
        if isinstance(group, str | bytes):
            raise TypeError(
                f"feedback_groups must be a list of lists of qubit names, got the string {group!r}"
            )
        names = frozenset(group)
        unknown = sorted(names - set(qubits))
        if unknown or not names:
            raise ValueError(
                f"feedback group {sorted(names)} names no qubits or unknown ones {unknown}; "
                f"the qubits of {architecture.name} are {', '.join(qubits)}"
            )
        out.append(names)
    return tuple(out)
