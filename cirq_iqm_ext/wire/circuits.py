"""Instructions and circuits of the transfer format (PROTOCOL.md §3), and the instruction set.

Every class parses from and dumps to exactly the JSON of the protocol (``from_dict`` /
``to_dict``) and validates on construction. Deprecated instruction names are rewritten on input.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cirq_iqm_ext.wire.fields import NUMBER, check_metadata, fail, require_type

#: Names that older servers and clients used, rewritten to the current ones on input.
DEPRECATED_INSTRUCTION_NAMES: dict[str, str] = {"phased_rx": "prx", "measurement": "measure"}


@dataclass(frozen=True)
class InstructionSpec:
    """What the protocol allows for one instruction name.

    Attributes:
        arity: Number of qubits, or ``None`` for "one or more".
        args: Argument names mapped to the accepted Python types.
        directed: Whether the order of a two-qubit locus matters.
        non_negative: Numeric arguments that must be ``>= 0`` (a ``delay``'s ``duration``).
        optional: Arguments that may be left out, with their accepted types (a ``measure``'s
            ``feedback_key``).
    """

    arity: int | None
    args: Mapping[str, tuple[type, ...]]
    directed: bool = False
    non_negative: frozenset[str] = frozenset()
    optional: Mapping[str, tuple[type, ...]] = field(default_factory=dict)


#: The instruction set of PROTOCOL.md §3.2, plus what PROTOCOL_IQM_SERVER.md §3.3 adds and only
#: servers that list it in their architecture execute: ``delay`` (a wait of ``duration`` seconds),
#: ``reset`` (to |0>), ``cc_prx`` (a prx applied when the earlier measurement with
#: ``feedback_key`` on ``feedback_qubit`` read 1; angles in full turns, as ``prx``) and a
#: ``measure``'s optional ``feedback_key``.
INSTRUCTION_SPECS: dict[str, InstructionSpec] = {
    "prx": InstructionSpec(1, {"angle_t": NUMBER, "phase_t": NUMBER}),
    "cz": InstructionSpec(2, {}),
    "measure": InstructionSpec(None, {"key": (str,)}, optional={"feedback_key": (str,)}),
    "cc_prx": InstructionSpec(
        1,
        {
            "angle_t": NUMBER,
            "phase_t": NUMBER,
            "feedback_qubit": (str,),
            "feedback_key": (str,),
        },
    ),
    "reset": InstructionSpec(None, {}),
    "barrier": InstructionSpec(None, {}),
    "move": InstructionSpec(2, {}, directed=True),
    "delay": InstructionSpec(None, {"duration": NUMBER}, non_negative=frozenset({"duration"})),
}

#: Operations that act on any existing component, so an architecture lists them without loci.
ANYWHERE_OPERATIONS = frozenset({"barrier", "delay"})


def canonical_instruction_name(name: str) -> str:
    """Returns the current name for ``name``, rewriting deprecated aliases."""
    return DEPRECATED_INSTRUCTION_NAMES.get(name, name)


class Instruction:
    """One native operation: ``{"name", "qubits", "args", "implementation"?}``.

    Args:
        name: Instruction name (``prx``, ``cz``, ``measure``, ``barrier``, ``move``, ``delay``;
            ``phased_rx`` and ``measurement`` are accepted and rewritten).
        qubits: Names of the qubits it acts on (logical or physical), in order.
        args: Arguments, exactly the names the instruction takes. Numbers are stored as floats.
        implementation: Optional name of a non-default implementation of the gate.

    Raises:
        ModelValidationError: Unknown name, wrong arity, repeated qubit, missing, unknown or
            mistyped arguments, a number that is not finite (or a negative ``duration``), or an
            empty implementation name.
    """

    __slots__ = ("args", "implementation", "name", "qubits")

    name: str
    qubits: tuple[str, ...]
    args: dict[str, Any]
    implementation: str | None

    def __init__(
        self,
        name: str,
        qubits: Sequence[str],
        args: Mapping[str, Any] | None = None,
        implementation: str | None = None,
    ):
        # Long on purpose: the hot path of a large batch (hundreds of thousands of these), where a
        # call per check would cost about a tenth of the parsing time.
        spec = INSTRUCTION_SPECS.get(name) if type(name) is str else None
        if spec is None:
            require_type(name, str, "instruction name")
            name = canonical_instruction_name(name)
            spec = INSTRUCTION_SPECS.get(name)
            if spec is None:
                known = ", ".join(sorted(INSTRUCTION_SPECS))
                raise fail(f"Unknown instruction {name!r}; the protocol knows {known}")
        if type(qubits) is not tuple:
            if isinstance(qubits, str) or not isinstance(qubits, Sequence):
                raise fail(f'The "{name}" instruction needs a list of qubit names, got {qubits!r}')
            qubits = tuple(qubits)
        for qubit in qubits:
            if type(qubit) is not str:
                require_type(qubit, str, f'A qubit name of the "{name}" instruction')
        if spec.arity is not None and len(qubits) != spec.arity:
            raise fail(
                f'The "{name}" instruction acts on {spec.arity} qubit(s), '
                f"but {len(qubits)} were given: {qubits}"
            )
        if not qubits:
            raise fail(f'The "{name}" instruction needs at least one qubit')
        if len(qubits) > 1 and len(set(qubits)) != len(qubits):
            raise fail(f'The "{name}" instruction lists a qubit more than once: {qubits}')
        args = dict(args) if args else {}
        if args.keys() != spec.args.keys() and not (
            spec.optional and spec.args.keys() <= args.keys() <= spec.args.keys() | spec.optional
        ):
            expected = sorted(spec.args) or "no arguments"
            if spec.optional:
                expected = f"{expected} (optionally {sorted(spec.optional)})"
            raise fail(f'The "{name}" instruction takes {expected}, but got {sorted(args)}')
        for arg_name, types in (*spec.args.items(), *spec.optional.items()):
            if arg_name not in args:
                continue
            value = args[arg_name]
            if types is NUMBER:
                if type(value) is not float:
                    what = f'Argument "{arg_name}" of the "{name}" instruction'
                    require_type(value, types, what)
                    try:
                        value = args[arg_name] = float(value)
                    except OverflowError:  # an int beyond the float range
                        raise fail(
                            f"{what} must be finite, got an int too large for a float"
                        ) from None
                if not math.isfinite(value):
                    raise fail(f'Argument "{arg_name}" of the "{name}" instruction must be finite')
                if value < 0 and arg_name in spec.non_negative:
                    raise fail(
                        f'Argument "{arg_name}" of the "{name}" instruction must be >= 0, '
                        f"got {value!r}"
                    )
            elif type(value) not in types:
                require_type(value, types, f'Argument "{arg_name}" of the "{name}" instruction')
        if implementation is not None:
            require_type(implementation, str, "implementation")
            if not implementation:
                raise fail(f'The "{name}" instruction has an empty implementation name')
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "qubits", qubits)
        object.__setattr__(self, "args", args)
        object.__setattr__(self, "implementation", implementation)

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("Instruction is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Instruction):
            return NotImplemented
        return (self.name, self.qubits, self.args, self.implementation) == (
            other.name,
            other.qubits,
            other.args,
            other.implementation,
        )

    def __hash__(self) -> int:
        return hash((self.name, self.qubits, tuple(sorted(self.args.items())), self.implementation))

    def __repr__(self) -> str:
        impl = f", implementation={self.implementation!r}" if self.implementation else ""
        return f"Instruction(name={self.name!r}, qubits={self.qubits!r}, args={self.args!r}{impl})"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Instruction:
        """Parses the JSON object of one instruction."""
        if not isinstance(data, Mapping):
            raise fail(f"An instruction must be a JSON object, got {type(data).__name__}")
        for required in ("name", "qubits"):
            if required not in data:
                raise fail(f'An instruction is missing the field "{required}": {dict(data)!r}')
        args = data.get("args", {})
        if not isinstance(args, Mapping):
            raise fail(f'The "args" of an instruction must be an object, got {args!r}')
        return cls(data["name"], data["qubits"], args, data.get("implementation"))

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this instruction."""
        out: dict[str, Any] = {
            "name": self.name,
            "qubits": list(self.qubits),
            "args": dict(self.args),
        }
        if self.implementation is not None:
            out["implementation"] = self.implementation
        return out


@dataclass(frozen=True)
class Circuit:
    """A named list of instructions with optional JSON metadata.

    Args:
        name: Non-empty name, used in error messages and results.
        instructions: At least one instruction.
        metadata: Optional JSON-serialisable dict (numpy values are converted).

    Raises:
        ModelValidationError: Empty name, no instructions, a non-instruction in the list, or
            metadata that is not JSON-serialisable.
    """

    name: str
    instructions: tuple[Instruction, ...]
    metadata: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        require_type(self.name, str, "A circuit name")
        if not self.name:
            raise fail("A circuit name must be a non-empty string")
        instructions = tuple(self.instructions)
        if not instructions:
            raise fail(f"Circuit {self.name!r} has no instructions; it needs at least one")
        for index, instruction in enumerate(instructions):
            if not isinstance(instruction, Instruction):
                raise fail(
                    f"Circuit {self.name!r}: instruction {index} is a "
                    f"{type(instruction).__name__}, not an Instruction"
                )
        object.__setattr__(self, "instructions", instructions)
        object.__setattr__(
            self, "metadata", check_metadata(self.metadata, f"circuit {self.name!r}")
        )

    @property
    def qubits(self) -> tuple[str, ...]:
        """The qubit names used, in order of first use."""
        return tuple(dict.fromkeys(q for inst in self.instructions for q in inst.qubits))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Circuit:
        """Parses the JSON object of one circuit."""
        if not isinstance(data, Mapping):
            raise fail(f"A circuit must be a JSON object, got {type(data).__name__}")
        for required in ("name", "instructions"):
            if required not in data:
                raise fail(f'A circuit is missing the field "{required}"')
        raw = data["instructions"]
        if not isinstance(raw, list):
            raise fail(f'The "instructions" of circuit {data["name"]!r} must be a list')
        return cls(data["name"], tuple(Instruction.from_dict(i) for i in raw), data.get("metadata"))

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this circuit."""
        out: dict[str, Any] = {
            "name": self.name,
            "instructions": [inst.to_dict() for inst in self.instructions],
        }
        if self.metadata is not None:
            out["metadata"] = self.metadata
        return out


@dataclass(frozen=True)
class SingleQubitMapping:
    """One entry of a run request's qubit mapping: a logical name mapped to a physical one."""

    logical_name: str
    physical_name: str

    def __post_init__(self) -> None:
        require_type(self.logical_name, str, "logical_name")
        require_type(self.physical_name, str, "physical_name")

    def to_dict(self) -> dict[str, str]:
        """The JSON object of this mapping entry."""
        return {"logical_name": self.logical_name, "physical_name": self.physical_name}


def serialize_qubit_mapping(mapping: Mapping[str, str]) -> tuple[SingleQubitMapping, ...]:
    """Turns a ``{logical: physical}`` dict into the protocol's list of mapping entries."""
    return tuple(SingleQubitMapping(k, v) for k, v in mapping.items())


__all__ = [
    "ANYWHERE_OPERATIONS",
    "DEPRECATED_INSTRUCTION_NAMES",
    "INSTRUCTION_SPECS",
    "Circuit",
    "Instruction",
    "InstructionSpec",
    "SingleQubitMapping",
    "canonical_instruction_name",
    "serialize_qubit_mapping",
]
