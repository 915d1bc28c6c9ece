"""Architectures in the transfer format: qubits, couplings and the loci of each operation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from cirq_iqm_ext.wire.circuits import (
    ANYWHERE_OPERATIONS,
    INSTRUCTION_SPECS,
    InstructionSpec,
    canonical_instruction_name,
)
from cirq_iqm_ext.wire.fields import fail, parse_uuid, require_type

Locus = tuple[str, ...]


def _parse_locus_list(raw: Any, what: str) -> tuple[Locus, ...]:
    if not isinstance(raw, list | tuple):
        raise fail(f"{what} must be a list of loci")
    loci = []
    for locus in raw:
        if not isinstance(locus, list | tuple) or not all(isinstance(q, str) for q in locus):
            raise fail(f"{what}: each locus must be a list of qubit names, got {locus!r}")
        loci.append(tuple(locus))
    return tuple(loci)


@dataclass(frozen=True)
class QuantumArchitectureSpecification:
    """A quantum computer's qubits, couplings and the loci where each operation may act.

    ``operations`` always holds the dict form (name -> allowed loci) with current names; the older
    list form and the dynamic architecture are converted when parsed (:meth:`from_dict`).

    Attributes:
        name: Architecture name, e.g. ``"Adonis"``.
        qubits: Qubit (and computational resonator) names.
        qubit_connectivity: Coupled pairs.
        operations: Operation name -> allowed loci. ``barrier`` and ``delay`` (a wait, listed only
            by servers that execute it) have no loci: they act on any existing component.
        computational_resonators: Names of computational resonators among ``qubits``.
        calibration_set_id: The calibration set the architecture belongs to, when known.
    """

    name: str
    qubits: tuple[str, ...]
    qubit_connectivity: tuple[tuple[str, ...], ...]
    operations: dict[str, tuple[Locus, ...]]
    computational_resonators: tuple[str, ...] = ()
    calibration_set_id: UUID | None = None

    def __post_init__(self) -> None:
        require_type(self.name, str, "The architecture name")
        qubits = tuple(self.qubits)
        if len(set(qubits)) != len(qubits):
            raise fail(f"The architecture {self.name!r} lists a qubit twice: {qubits}")
        object.__setattr__(self, "qubits", qubits)
        known = set(qubits)
        pairs = tuple(tuple(p) for p in self.qubit_connectivity)
        operations = {
            canonical_instruction_name(k): tuple(map(tuple, v)) for k, v in self.operations.items()
        }
        for what, loci in [("qubit_connectivity", pairs), *operations.items()]:
            for locus in loci:
                unknown = [q for q in locus if q not in known]
                if unknown:
                    raise fail(
                        f"{what} of architecture {self.name!r} names unknown qubit(s) {unknown}"
                    )
        object.__setattr__(self, "qubit_connectivity", pairs)
        object.__setattr__(self, "operations", operations)
        object.__setattr__(self, "computational_resonators", tuple(self.computational_resonators))
        object.__setattr__(
            self, "calibration_set_id", parse_uuid(self.calibration_set_id, "calibration_set_id")
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantumArchitectureSpecification:
        """Parses a static architecture (wrapped or not) or a dynamic one (``gates`` field).

        Raises:
            ModelValidationError: A required field is missing or malformed.
        """
        if not isinstance(data, Mapping):
            raise fail(f"An architecture must be a JSON object, got {type(data).__name__}")
        if "quantum_architecture" in data:
            data = data["quantum_architecture"]
            if not isinstance(data, Mapping):
                raise fail('"quantum_architecture" must be a JSON object')
        if "gates" in data:
            return cls._from_dynamic(data)
        for required in ("name", "qubits", "qubit_connectivity", "operations"):
            if required not in data:
                raise fail(f'The architecture is missing the field "{required}"')
        qubits = data["qubits"]
        if not isinstance(qubits, list) or not all(isinstance(q, str) for q in qubits):
            raise fail("The architecture's qubits must be a list of names")
        pairs = _parse_locus_list(data["qubit_connectivity"], "qubit_connectivity")
        raw_ops = data["operations"]
        operations: dict[str, tuple[Locus, ...]] = {}
        if isinstance(raw_ops, list):
            # The older list form: two-qubit gates on every coupled pair, the rest on every qubit.
            for op in raw_ops:
                require_type(op, str, "An operation name")
                name = canonical_instruction_name(op)
                spec = INSTRUCTION_SPECS.get(name)
                if spec is not None and spec.arity == 2:
                    operations[name] = pairs
                elif name in ANYWHERE_OPERATIONS:
                    operations[name] = ()
                else:
                    operations[name] = tuple((q,) for q in qubits)
        elif isinstance(raw_ops, Mapping):
            for op, loci in raw_ops.items():
                operations[canonical_instruction_name(op)] = _parse_locus_list(
                    loci, f"the loci of {op!r}"
                )
        else:
            raise fail("The architecture's operations must be a list of names or a dict of loci")
        # Resonators may be listed beside the qubits, or among them under opaque names: then they
        # are the components of two-qubit loci with no single-qubit operation (STAR_MOVE.md §1).
        listed = data.get("computational_resonators") or []
        if not isinstance(listed, list) or not all(isinstance(r, str) for r in listed):
            raise fail('"computational_resonators" must be a list of names')
        single = {
            q for name in ("prx", "measure") for locus in operations.get(name, ()) for q in locus
        }
        paired = {q for name in ("cz", "move") for locus in operations.get(name, ()) for q in locus}
        inferred = paired - single if single else set()
        all_names = [*qubits, *(r for r in listed if r not in qubits)]
        resonators = tuple(q for q in all_names if q in set(listed) | inferred)
        return cls(data["name"], tuple(all_names), pairs, operations, resonators)

    @classmethod
    def _from_dynamic(cls, data: Mapping[str, Any]) -> QuantumArchitectureSpecification:
        qubits = data.get("qubits")
        if not isinstance(qubits, list) or not all(isinstance(q, str) for q in qubits):
            raise fail('The dynamic architecture is missing the list "qubits"')
        resonators = data.get("computational_resonators") or []
        if not isinstance(resonators, list) or not all(isinstance(r, str) for r in resonators):
            raise fail('"computational_resonators" must be a list of names')
        gates = data["gates"]
        if not isinstance(gates, Mapping):
            raise fail('"gates" of the dynamic architecture must be an object')
        operations: dict[str, tuple[Locus, ...]] = {}
        for gate_name, gate in gates.items():
            impls = gate.get("implementations") if isinstance(gate, Mapping) else None
            if not isinstance(impls, Mapping):
                raise fail(
                    f'Gate {gate_name!r} of the dynamic architecture has no "implementations"'
                )
            loci: dict[Locus, None] = {}
            for impl_name, impl in impls.items():
                if not isinstance(impl, Mapping) or "loci" not in impl:
                    raise fail(f'Implementation {impl_name!r} of {gate_name!r} has no "loci"')
                loci.update(dict.fromkeys(_parse_locus_list(impl["loci"], f"{gate_name} loci")))
            name = canonical_instruction_name(gate_name)
            # A DQA lists delay on its qubits; like barrier, it acts on any existing component.
            operations[name] = () if name in ANYWHERE_OPERATIONS else tuple(loci)
        pairs = tuple(
            dict.fromkeys(
                locus
                for name, loci in operations.items()
                if INSTRUCTION_SPECS.get(name, InstructionSpec(1, {})).arity == 2
                for locus in loci
            )
        )
        all_qubits = tuple(dict.fromkeys([*qubits, *resonators]))
        return cls(
            name=str(data.get("name", "dynamic")),
            qubits=all_qubits,
            qubit_connectivity=pairs,
            operations=operations,
            computational_resonators=tuple(resonators),
            calibration_set_id=data.get("calibration_set_id"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The static form, wrapped as ``GET quantum-architecture`` answers it."""
        return {
            "quantum_architecture": {
                "name": self.name,
                "qubits": list(self.qubits),
                "qubit_connectivity": [list(p) for p in self.qubit_connectivity],
                "operations": {k: [list(locus) for locus in v] for k, v in self.operations.items()},
            }
        }

    def loci(self, operation: str) -> tuple[Locus, ...]:
        """The allowed loci of ``operation`` (empty when it is not supported)."""
        return self.operations.get(canonical_instruction_name(operation), ())

    def has_equivalent_operations(self, other: QuantumArchitectureSpecification) -> bool:
        """Whether both allow the same operations on the same loci (two-qubit loci unordered)."""
        return _normalised_ops(self.operations) == _normalised_ops(other.operations)


def _normalised_ops(operations: Mapping[str, Iterable[Locus]]) -> dict[str, frozenset[Any]]:
    out: dict[str, frozenset[Any]] = {}
    for name, loci in operations.items():
        directed = INSTRUCTION_SPECS.get(name, InstructionSpec(None, {})).directed
        out[name] = frozenset(tuple(l) if directed else frozenset(l) for l in loci)
    return out


__all__ = [
    "Locus",
    "QuantumArchitectureSpecification",
]
