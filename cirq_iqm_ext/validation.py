"""Checks a run request against a quantum architecture, with the same messages on both sides.

The client calls :func:`validate_run_request` before it sends a job, and the project's server calls it
when it receives one, so a user sees the same message whichever side finds the problem, e.g.
``circuit 0 ("bell"), instruction 3: ('QB1', 'QB2') is not an allowed locus for cz``.
"""

from __future__ import annotations

from collections.abc import Mapping

from cirq_iqm_ext.errors import CircuitValidationError
from cirq_iqm_ext.models import (
    INSTRUCTION_SPECS,
    Circuit,
    QuantumArchitectureSpecification,
    RunRequest,
)

#: At most this many violations are spelled out in one error; the rest are counted.
MAX_REPORTED_VIOLATIONS = 10


class _ArchitectureIndex:
    """Loci of an architecture as sets, built once per architecture for fast membership tests."""

    def __init__(self, architecture: QuantumArchitectureSpecification):
        self.qubits = frozenset(architecture.qubits)
        self.operations = frozenset(architecture.operations)
        self.loci: dict[str, frozenset[tuple[str, ...]]] = {}
        for name, loci in architecture.operations.items():
            spec = INSTRUCTION_SPECS.get(name)
            allowed = set(loci)
            if spec is not None and spec.arity == 2 and not spec.directed:
                allowed |= {tuple(reversed(locus)) for locus in loci}
            self.loci[name] = frozenset(allowed)
        self.measurable = frozenset(q for locus in self.loci.get("measure", ()) for q in locus)


_INDEX_CACHE: dict[int, tuple[QuantumArchitectureSpecification, _ArchitectureIndex]] = {}


def _index_for(architecture: QuantumArchitectureSpecification) -> _ArchitectureIndex:
    cached = _INDEX_CACHE.get(id(architecture))
    if cached is not None and cached[0] is architecture:
        return cached[1]
    index = _ArchitectureIndex(architecture)
    if len(_INDEX_CACHE) > 64:
        _INDEX_CACHE.clear()
    _INDEX_CACHE[id(architecture)] = (architecture, index)
    return index


def circuit_violations(
    circuit: Circuit,
    circuit_index: int,
    architecture: QuantumArchitectureSpecification,
    qubit_mapping: Mapping[str, str] | None = None,
    *,
    allow_mid_circuit_measurement: bool = False,
) -> list[str]:
    """Lists every way ``circuit`` breaks the rules of PROTOCOL.md §3.2 on ``architecture``.

    Args:
        circuit: The circuit to check.
        circuit_index: Its position in the batch, used in the messages.
        architecture: What the quantum computer allows.
        qubit_mapping: Logical -> physical names; ``None`` means the circuit uses physical names.
        allow_mid_circuit_measurement: Allow operations after a measurement on the same qubit and
            more than one measurement of a qubit.

    Returns:
        One message per violation, in instruction order; empty when the circuit is valid.
    """
    index = _index_for(architecture)
    prefix = f'circuit {circuit_index} ("{circuit.name}")'
    violations: list[str] = []
    keys: set[str] = set()
    measured: set[str] = set()
    for position, instruction in enumerate(circuit.instructions):
        where = f"{prefix}, instruction {position}"
        name = instruction.name
        if qubit_mapping is None:
            locus = instruction.qubits
        else:
            locus = tuple(qubit_mapping.get(q, q) for q in instruction.qubits)
        unknown = [q for q in locus if q not in index.qubits]
        if unknown:
            violations.append(f"{where}: qubit(s) {unknown} do not exist on {architecture.name}")
            continue
        if name != "barrier" and name not in index.operations:
            violations.append(f"{where}: {name} is not supported by {architecture.name}")
            continue
        if name == "measure":
            not_measurable = [q for q in locus if q not in index.measurable]
            if not_measurable:
                violations.append(f"{where}: qubit(s) {not_measurable} cannot be measured")
            key = instruction.args["key"]
            if key in keys:
                violations.append(f"{where}: measurement key {key!r} is used more than once")
            keys.add(key)
        elif name != "barrier" and locus not in index.loci[name]:
            violations.append(f"{where}: {locus} is not an allowed locus for {name}")
        if not allow_mid_circuit_measurement and name != "barrier":
            after = [q for q in locus if q in measured]
            if after:
                what = "measured again" if name == "measure" else f"acted on by {name}"
                violations.append(
                    f"{where}: qubit(s) {after} are {what} after their measurement; this "
                    "architecture allows only terminal measurements"
                )
        if name == "measure":
            measured.update(locus)
    return violations


def validate_run_request(
    request: RunRequest,
    architecture: QuantumArchitectureSpecification,
    *,
    allow_mid_circuit_measurement: bool = False,
) -> None:
    """Checks every circuit of ``request`` against ``architecture``.

    Args:
        request: The run request to check.
        architecture: What the quantum computer allows.
        allow_mid_circuit_measurement: See :func:`circuit_violations`.

    Raises:
        CircuitValidationError: Listing every violation found (the first few spelled out), or naming
            physical qubits in the qubit mapping that do not exist.
    """
    mapping = request.qubit_mapping_dict
    violations: list[str] = []
    if mapping is not None:
        unknown = sorted(p for p in mapping.values() if p not in set(architecture.qubits))
        if unknown:
            violations.append(
                f"qubit_mapping maps to physical qubit(s) {unknown} that do not exist on "
                f"{architecture.name}; it has {', '.join(architecture.qubits)}"
            )
    for circuit_index, circuit in enumerate(request.circuits):
        violations.extend(
            circuit_violations(
                circuit,
                circuit_index,
                architecture,
                mapping,
                allow_mid_circuit_measurement=allow_mid_circuit_measurement,
            )
        )
    if violations:
        raise CircuitValidationError(format_violations(violations))


def format_violations(violations: list[str]) -> str:
    """Joins violation messages into one, spelling out at most :data:`MAX_REPORTED_VIOLATIONS`."""
    shown = violations[:MAX_REPORTED_VIOLATIONS]
    text = "; ".join(shown)
    if len(violations) > len(shown):
        text += f"; and {len(violations) - len(shown)} more violation(s)"
    return text
