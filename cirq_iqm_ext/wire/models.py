"""The transfer format: the JSON objects of IQM's job API as Python objects.

Every class parses from and dumps to exactly the JSON of ``PROTOCOL.md`` (``from_dict`` /
``to_dict``) and validates on construction, raising
:class:`~cirq_iqm_ext.ModelValidationError` with a message that names the offending field.
Parsing tolerates what newer servers add: unknown fields are ignored (and kept where a round trip
needs them) and unknown job statuses become pseudo-members of :class:`Status` instead of errors.
Deprecated instruction names are rewritten on input.

Nothing here does HTTP or knows about Cirq.
"""

from __future__ import annotations

import enum
import json
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from uuid import UUID

import numpy as np

from cirq_iqm_ext.errors import ModelValidationError
from cirq_iqm_ext.wire.json import to_json_dict
from cirq_iqm_ext.wire.packed import unpack_measurements
from cirq_iqm_ext.wire.protocol import (
    MEASUREMENTS_FORMAT_FIELD,
    PACKED_FORMAT,
)

#: Job options of the IQM Server API (PROTOCOL_IQM_SERVER.md §3.1) that a :class:`RunRequest`
#: may carry, with their allowed values (``None``: any of the type the option takes).
MOVE_GATE_FRAME_TRACKING_MODES = ("full", "no_detuning_correction", "none")
DD_MODES = ("disabled", "enabled")
#: The option fields of :class:`RunRequest`, with the values that mean "as a v1 job".
JOB_OPTION_DEFAULTS: dict[str, Any] = {
    "move_gate_validation": "strict",
    "move_gate_frame_tracking": "full",
    "active_reset_cycles": None,
    "dd_mode": "disabled",
    "dd_strategy": None,
    "use_timeslot": False,
}

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


_NUMBER = (int, float)

#: The instruction set of PROTOCOL.md §3.2, plus what PROTOCOL_IQM_SERVER.md §3.3 adds and only
#: servers that list it in their architecture execute: ``delay`` (a wait of ``duration`` seconds),
#: ``reset`` (to |0>), ``cc_prx`` (a prx applied when the earlier measurement with
#: ``feedback_key`` on ``feedback_qubit`` read 1; angles in full turns, as ``prx``) and a
#: ``measure``'s optional ``feedback_key``.
INSTRUCTION_SPECS: dict[str, InstructionSpec] = {
    "prx": InstructionSpec(1, {"angle_t": _NUMBER, "phase_t": _NUMBER}),
    "cz": InstructionSpec(2, {}),
    "measure": InstructionSpec(None, {"key": (str,)}, optional={"feedback_key": (str,)}),
    "cc_prx": InstructionSpec(
        1,
        {
            "angle_t": _NUMBER,
            "phase_t": _NUMBER,
            "feedback_qubit": (str,),
            "feedback_key": (str,),
        },
    ),
    "reset": InstructionSpec(None, {}),
    "barrier": InstructionSpec(None, {}),
    "move": InstructionSpec(2, {}, directed=True),
    "delay": InstructionSpec(None, {"duration": _NUMBER}, non_negative=frozenset({"duration"})),
}

#: Operations that act on any existing component, so an architecture lists them without loci.
ANYWHERE_OPERATIONS = frozenset({"barrier", "delay"})


def canonical_instruction_name(name: str) -> str:
    """Returns the current name for ``name``, rewriting deprecated aliases."""
    return DEPRECATED_INSTRUCTION_NAMES.get(name, name)


def _fail(message: str) -> ModelValidationError:
    return ModelValidationError(message)


def _require_type(value: Any, types: type | tuple[type, ...], what: str) -> None:
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
        expected = " or ".join(t.__name__ for t in _as_tuple(types))
        raise _fail(f"{what} must be {expected}, got {type(value).__name__} {value!r}")


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


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
        # Written for speed: a large batch builds hundreds of thousands of these.
        spec = INSTRUCTION_SPECS.get(name) if type(name) is str else None
        if spec is None:
            _require_type(name, str, "instruction name")
            name = canonical_instruction_name(name)
            spec = INSTRUCTION_SPECS.get(name)
            if spec is None:
                known = ", ".join(sorted(INSTRUCTION_SPECS))
                raise _fail(f"Unknown instruction {name!r}; the protocol knows {known}")
        if type(qubits) is not tuple:
            if isinstance(qubits, str) or not isinstance(qubits, Sequence):
                raise _fail(f'The "{name}" instruction needs a list of qubit names, got {qubits!r}')
            qubits = tuple(qubits)
        for qubit in qubits:
            if type(qubit) is not str:
                _require_type(qubit, str, f'A qubit name of the "{name}" instruction')
        if spec.arity is not None and len(qubits) != spec.arity:
            raise _fail(
                f'The "{name}" instruction acts on {spec.arity} qubit(s), '
                f"but {len(qubits)} were given: {qubits}"
            )
        if not qubits:
            raise _fail(f'The "{name}" instruction needs at least one qubit')
        if len(qubits) > 1 and len(set(qubits)) != len(qubits):
            raise _fail(f'The "{name}" instruction lists a qubit more than once: {qubits}')
        args = dict(args) if args else {}
        if args.keys() != spec.args.keys() and not (
            spec.optional and spec.args.keys() <= args.keys() <= spec.args.keys() | spec.optional
        ):
            expected = sorted(spec.args) or "no arguments"
            if spec.optional:
                expected = f"{expected} (optionally {sorted(spec.optional)})"
            raise _fail(f'The "{name}" instruction takes {expected}, but got {sorted(args)}')
        for arg_name, types in (*spec.args.items(), *spec.optional.items()):
            if arg_name not in args:
                continue
            value = args[arg_name]
            if types is _NUMBER:
                if type(value) is not float:
                    what = f'Argument "{arg_name}" of the "{name}" instruction'
                    _require_type(value, types, what)
                    try:
                        value = args[arg_name] = float(value)
                    except OverflowError:  # an int beyond the float range
                        raise _fail(
                            f"{what} must be finite, got an int too large for a float"
                        ) from None
                if not math.isfinite(value):
                    raise _fail(f'Argument "{arg_name}" of the "{name}" instruction must be finite')
                if value < 0 and arg_name in spec.non_negative:
                    raise _fail(
                        f'Argument "{arg_name}" of the "{name}" instruction must be >= 0, '
                        f"got {value!r}"
                    )
            elif type(value) not in types:
                _require_type(value, types, f'Argument "{arg_name}" of the "{name}" instruction')
        if implementation is not None:
            _require_type(implementation, str, "implementation")
            if not implementation:
                raise _fail(f'The "{name}" instruction has an empty implementation name')
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
            raise _fail(f"An instruction must be a JSON object, got {type(data).__name__}")
        for required in ("name", "qubits"):
            if required not in data:
                raise _fail(f'An instruction is missing the field "{required}": {dict(data)!r}')
        args = data.get("args", {})
        if not isinstance(args, Mapping):
            raise _fail(f'The "args" of an instruction must be an object, got {args!r}')
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


def _check_metadata(metadata: Any, owner: str) -> dict[str, Any] | None:
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise _fail(f"The metadata of {owner} must be a dict, got {type(metadata).__name__}")
    try:
        converted = to_json_dict(metadata)
        json.dumps(converted, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise _fail(
            f"The metadata of {owner} is not JSON-serialisable ({error}); use only dicts, lists, "
            "strings, finite numbers, booleans, None, numpy arrays and numpy scalars"
        ) from None
    return converted


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
        _require_type(self.name, str, "A circuit name")
        if not self.name:
            raise _fail("A circuit name must be a non-empty string")
        instructions = tuple(self.instructions)
        if not instructions:
            raise _fail(f"Circuit {self.name!r} has no instructions; it needs at least one")
        for index, instruction in enumerate(instructions):
            if not isinstance(instruction, Instruction):
                raise _fail(
                    f"Circuit {self.name!r}: instruction {index} is a "
                    f"{type(instruction).__name__}, not an Instruction"
                )
        object.__setattr__(self, "instructions", instructions)
        object.__setattr__(
            self, "metadata", _check_metadata(self.metadata, f"circuit {self.name!r}")
        )

    @property
    def qubits(self) -> tuple[str, ...]:
        """The qubit names used, in order of first use."""
        return tuple(dict.fromkeys(q for inst in self.instructions for q in inst.qubits))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Circuit:
        """Parses the JSON object of one circuit."""
        if not isinstance(data, Mapping):
            raise _fail(f"A circuit must be a JSON object, got {type(data).__name__}")
        for required in ("name", "instructions"):
            if required not in data:
                raise _fail(f'A circuit is missing the field "{required}"')
        raw = data["instructions"]
        if not isinstance(raw, list):
            raise _fail(f'The "instructions" of circuit {data["name"]!r} must be a list')
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
        _require_type(self.logical_name, str, "logical_name")
        _require_type(self.physical_name, str, "physical_name")

    def to_dict(self) -> dict[str, str]:
        """The JSON object of this mapping entry."""
        return {"logical_name": self.logical_name, "physical_name": self.physical_name}


def serialize_qubit_mapping(mapping: Mapping[str, str]) -> tuple[SingleQubitMapping, ...]:
    """Turns a ``{logical: physical}`` dict into the protocol's list of mapping entries."""
    return tuple(SingleQubitMapping(k, v) for k, v in mapping.items())


class HeraldingMode(str, enum.Enum):
    """Whether the server post-selects shots on an all-zero pre-circuit measurement."""

    NONE = "none"
    ZEROS = "zeros"


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
        raise _fail(f"{what} must be a UUID, got {value!r}") from None


def check_job_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The IQM Server API job options (the names of :data:`JOB_OPTION_DEFAULTS`; absent means
    ``None``), checked: enum values and types, and full MOVE frame tracking only with MOVE
    validation. Shared by :class:`RunRequest` and the sampler's constructor.

    Returns:
        Every option by name (``dd_strategy`` as a JSON-safe copy, ``use_timeslot`` a bool).

    Raises:
        ModelValidationError: An option of the wrong type or value, naming it and what it takes.
    """
    values = {name: options.get(name) for name in JOB_OPTION_DEFAULTS}
    if values["use_timeslot"] is None:
        values["use_timeslot"] = False
    for name, allowed in (
        ("move_gate_validation", ("strict", "allow_prx", "none")),
        ("move_gate_frame_tracking", MOVE_GATE_FRAME_TRACKING_MODES),
        ("dd_mode", DD_MODES),
    ):
        value = values[name]
        if value is not None and (not isinstance(value, str) or value not in allowed):
            raise _fail(
                f"{name} must be one of {', '.join(map(repr, allowed))} (or null), got {value!r}"
            )
    cycles = values["active_reset_cycles"]
    if cycles is not None and (isinstance(cycles, bool) or not isinstance(cycles, int)):
        raise _fail(f"active_reset_cycles must be an integer or null, got {cycles!r}")
    strategy = values["dd_strategy"]
    if strategy is not None:
        if not isinstance(strategy, Mapping):
            raise _fail(f"dd_strategy must be an object or null, got {strategy!r}")
        values["dd_strategy"] = _check_metadata(strategy, "dd_strategy")
    if not isinstance(values["use_timeslot"], bool):
        raise _fail(f"use_timeslot must be true or false, got {values['use_timeslot']!r}")
    if (values["move_gate_frame_tracking"] or "full") == "full" and (
        values["move_gate_validation"] == "none"
    ):
        raise _fail(
            "Unable to perform full MOVE gate frame tracking if MOVE gate validation is not "
            '"strict" or "allow_prx".'
        )
    return values


@dataclass(frozen=True)
class RunRequest:
    """The body of ``POST jobs``: a batch of circuits and how to run them.

    Raises:
        ModelValidationError: No circuits, shots not a positive int, a qubit mapping that is not
            injective or is missing a qubit, a bad calibration set id, an unknown heralding mode or
            a non-finite duration ratio, or a job option of the wrong type or value.

    The job options of the IQM Server API (PROTOCOL_IQM_SERVER.md §3.1) are optional fields here;
    ``None`` (or ``False``) means "not set", i.e. what a v1 job gets. ``use_timeslot`` is not part
    of a job definition: the ``iqm-server`` profile sends it as the query parameter of the
    submission, as IQM's client does.

    Attributes:
        move_gate_validation: ``"strict"``, ``"allow_prx"`` or ``"none"`` (STAR_MOVE.md §6).
        move_gate_frame_tracking: ``"full"``, ``"no_detuning_correction"`` or ``"none"``.
        active_reset_cycles: Active resets at the start of each circuit (``None``: reset by
            waiting; below 1: no initial reset).
        dd_mode: Dynamical decoupling, ``"disabled"`` or ``"enabled"``.
        dd_strategy: The DD sequences as an object (``None``: the server's default).
        use_timeslot: Submit to the timeslot queue instead of the on-demand one.
    """

    circuits: tuple[Circuit, ...]
    shots: int = 1
    qubit_mapping: tuple[SingleQubitMapping, ...] | None = None
    calibration_set_id: UUID | None = None
    custom_settings: dict[str, Any] | None = None
    max_circuit_duration_over_t2: float | None = None
    heralding_mode: HeraldingMode = HeraldingMode.NONE
    move_gate_validation: str | None = None
    move_gate_frame_tracking: str | None = None
    active_reset_cycles: int | None = None
    dd_mode: str | None = None
    dd_strategy: dict[str, Any] | None = None
    use_timeslot: bool = False

    def __post_init__(self) -> None:
        circuits = tuple(self.circuits)
        if not circuits:
            raise _fail("A run request needs at least one circuit")
        for index, circuit in enumerate(circuits):
            if not isinstance(circuit, Circuit):
                raise _fail(f"Circuit {index} is a {type(circuit).__name__}, not a Circuit")
        object.__setattr__(self, "circuits", circuits)
        _require_type(self.shots, int, "shots")
        if self.shots < 1:
            raise _fail(f"shots must be a positive integer, got {self.shots}")
        if self.qubit_mapping is not None:
            self._check_mapping(circuits)
        object.__setattr__(
            self, "calibration_set_id", parse_uuid(self.calibration_set_id, "calibration_set_id")
        )
        if self.custom_settings is not None:
            object.__setattr__(
                self, "custom_settings", _check_metadata(self.custom_settings, "custom_settings")
            )
        ratio = self.max_circuit_duration_over_t2
        if ratio is not None:
            _require_type(ratio, _NUMBER, "max_circuit_duration_over_t2")
            try:
                ratio = float(ratio)
            except OverflowError:  # an int beyond the float range
                ratio = math.inf
            if not math.isfinite(ratio) or ratio < 0:
                raise _fail(
                    f"max_circuit_duration_over_t2 must be a finite number >= 0, got {ratio!r}"
                )
            object.__setattr__(self, "max_circuit_duration_over_t2", ratio)
        try:
            object.__setattr__(self, "heralding_mode", HeraldingMode(self.heralding_mode))
        except ValueError:
            raise _fail(
                f"heralding_mode must be 'none' or 'zeros', got {self.heralding_mode!r}"
            ) from None
        self._check_options()

    def _check_options(self) -> None:
        checked = check_job_options({name: getattr(self, name) for name in JOB_OPTION_DEFAULTS})
        object.__setattr__(self, "dd_strategy", checked["dd_strategy"])

    @property
    def options(self) -> dict[str, Any]:
        """The job options that are set (not ``None``/``False``), by field name."""
        # Identity, not equality: active_reset_cycles=0 is set (0 == False).
        return {
            name: getattr(self, name)
            for name in JOB_OPTION_DEFAULTS
            if getattr(self, name) is not None and getattr(self, name) is not False
        }

    def _check_mapping(self, circuits: tuple[Circuit, ...]) -> None:
        mapping = tuple(self.qubit_mapping or ())
        for entry in mapping:
            if not isinstance(entry, SingleQubitMapping):
                raise _fail(f"qubit_mapping entries must be SingleQubitMapping, got {entry!r}")
        logical = [m.logical_name for m in mapping]
        physical = [m.physical_name for m in mapping]
        for names, what in ((logical, "logical"), (physical, "physical")):
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise _fail(
                    f"qubit_mapping is not injective: {what} name(s) {repeated} appear more "
                    "than once"
                )
        known = set(logical)
        for index, circuit in enumerate(circuits):
            missing = [q for q in circuit.qubits if q not in known]
            if missing:
                raise _fail(
                    f'circuit {index} ("{circuit.name}") uses qubit(s) {missing} that the '
                    "qubit_mapping does not map; add them to the mapping"
                )
        object.__setattr__(self, "qubit_mapping", mapping)

    @property
    def qubit_mapping_dict(self) -> dict[str, str] | None:
        """The qubit mapping as ``{logical: physical}``, or ``None``."""
        if self.qubit_mapping is None:
            return None
        return {m.logical_name: m.physical_name for m in self.qubit_mapping}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRequest:
        """Parses the JSON body of ``POST jobs``."""
        if not isinstance(data, Mapping):
            raise _fail(f"A run request must be a JSON object, got {type(data).__name__}")
        if "circuits" not in data:
            raise _fail('A run request is missing the field "circuits"')
        raw_circuits = data["circuits"]
        if not isinstance(raw_circuits, list):
            raise _fail('The "circuits" of a run request must be a list')
        mapping = data.get("qubit_mapping")
        if mapping is not None:
            if not isinstance(mapping, list) or not all(isinstance(m, Mapping) for m in mapping):
                raise _fail("qubit_mapping must be a list of {logical_name, physical_name} objects")
            try:
                mapping = tuple(
                    SingleQubitMapping(m["logical_name"], m["physical_name"]) for m in mapping
                )
            except KeyError as missing:
                raise _fail(f"a qubit_mapping entry is missing the field {missing}") from None
        custom = data.get("custom_settings")
        if custom is not None and not isinstance(custom, Mapping):
            raise _fail("custom_settings must be an object")
        return cls(
            circuits=tuple(Circuit.from_dict(c) for c in raw_circuits),
            shots=data.get("shots", 1),
            qubit_mapping=mapping,
            calibration_set_id=data.get("calibration_set_id"),
            custom_settings=None if custom is None else dict(custom),
            max_circuit_duration_over_t2=data.get("max_circuit_duration_over_t2"),
            heralding_mode=data.get("heralding_mode") or HeraldingMode.NONE,
            move_gate_validation=data.get("move_gate_validation"),
            move_gate_frame_tracking=data.get("move_gate_frame_tracking"),
            active_reset_cycles=data.get("active_reset_cycles"),
            dd_mode=data.get("dd_mode"),
            dd_strategy=data.get("dd_strategy"),
            use_timeslot=data.get("use_timeslot") or False,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON body for ``POST jobs`` (null fields and unset options left out)."""
        out: dict[str, Any] = {
            "circuits": [c.to_dict() for c in self.circuits],
            "shots": self.shots,
        }
        if self.qubit_mapping is not None:
            out["qubit_mapping"] = [m.to_dict() for m in self.qubit_mapping]
        if self.calibration_set_id is not None:
            out["calibration_set_id"] = str(self.calibration_set_id)
        if self.custom_settings is not None:
            out["custom_settings"] = self.custom_settings
        if self.max_circuit_duration_over_t2 is not None:
            out["max_circuit_duration_over_t2"] = self.max_circuit_duration_over_t2
        out["heralding_mode"] = self.heralding_mode.value
        out.update(self.options)
        return out


class Status(str, enum.Enum):
    """Job status. Unknown values from newer servers become pseudo-members (``is_known`` False)."""

    PENDING_COMPILATION = "pending compilation"
    PENDING_EXECUTION = "pending execution"
    READY = "ready"
    FAILED = "failed"
    ABORTED = "aborted"
    PENDING_DELETION = "pending deletion"
    DELETION_FAILED = "deletion failed"
    DELETED = "deleted"

    @classmethod
    def _missing_(cls, value: object) -> Status | None:
        if not isinstance(value, str):
            return None
        pseudo = str.__new__(cls, value)
        pseudo._name_ = "UNKNOWN"
        pseudo._value_ = value
        return pseudo

    @property
    def is_known(self) -> bool:
        """Whether this status is one this package knows (not a newer server's invention)."""
        return self._value_ in _KNOWN_STATUS_VALUES

    @property
    def is_final(self) -> bool:
        """Whether the job can no longer change: ready, failed, aborted or deleted."""
        return self in _FINAL_STATUSES

    def __str__(self) -> str:
        return str(self._value_)


_KNOWN_STATUS_VALUES = frozenset(s.value for s in Status)
_FINAL_STATUSES = frozenset(
    {Status.READY, Status.FAILED, Status.ABORTED, Status.DELETED, Status.DELETION_FAILED}
)


def _parse_status(data: Mapping[str, Any], owner: str) -> Status:
    if "status" not in data:
        raise _fail(f'{owner} is missing the field "status"')
    value = data["status"]
    _require_type(value, str, f"The status of {owner}")
    return Status(value)


def _parse_warnings(data: Mapping[str, Any], owner: str) -> tuple[str, ...]:
    raw = data.get("warnings") or ()
    if not isinstance(raw, list | tuple) or not all(isinstance(w, str) for w in raw):
        raise _fail(f'The "warnings" of {owner} must be a list of strings')
    return tuple(raw)


def _parse_message(data: Mapping[str, Any], owner: str) -> str | None:
    message = data.get("message")
    if message is not None and not isinstance(message, str):
        raise _fail(f'The "message" of {owner} must be a string or null')
    return message


@dataclass(frozen=True)
class RunStatus:
    """The answer of ``GET jobs/{id}/status``."""

    status: Status
    message: str | None = None
    warnings: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunStatus:
        """Parses a status answer; unknown statuses and extra fields are tolerated."""
        if not isinstance(data, Mapping):
            raise _fail(f"A job status must be a JSON object, got {type(data).__name__}")
        owner = "the job status"
        return cls(
            _parse_status(data, owner), _parse_message(data, owner), _parse_warnings(data, owner)
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this status."""
        out: dict[str, Any] = {"status": self.status.value}
        if self.message is not None:
            out["message"] = self.message
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


#: The timestamps of a job, in the order a job reaches them.
TIMESTAMP_KEYS: tuple[str, ...] = (
    "job_start",
    "compile_start",
    "compile_end",
    "submit_start",
    "submit_end",
    "execution_start",
    "execution_end",
    "job_end",
)


@dataclass(frozen=True)
class Metadata:
    """The ``metadata`` of a job result: the request as the server saw it, and what happened.

    The request is kept as the raw dict and parsed only when :attr:`request` is read, so reading a
    large result stays cheap and a newer server's request fields never break result parsing.
    """

    request_dict: dict[str, Any]
    calibration_set_id: UUID | None = None
    cocos_version: str | None = None
    timestamps: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def request(self) -> RunRequest:
        """The run request, parsed (and validated) on first access."""
        return RunRequest.from_dict(self.request_dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Metadata:
        """Parses result metadata; extra fields are kept in :attr:`extra`."""
        if not isinstance(data, Mapping):
            raise _fail(f"Job metadata must be a JSON object, got {type(data).__name__}")
        request = data.get("request")
        if not isinstance(request, Mapping):
            raise _fail('Job metadata is missing the object "request"')
        timestamps = data.get("timestamps") or {}
        if not isinstance(timestamps, Mapping) or not all(
            isinstance(v, str) for v in timestamps.values()
        ):
            raise _fail('The "timestamps" of job metadata must map names to ISO 8601 strings')
        version = data.get("cocos_version")
        if version is not None and not isinstance(version, str):
            raise _fail('"cocos_version" must be a string')
        known = {"request", "calibration_set_id", "cocos_version", "timestamps"}
        return cls(
            request_dict=dict(request),
            calibration_set_id=parse_uuid(data.get("calibration_set_id"), "calibration_set_id"),
            cocos_version=version,
            timestamps=dict(timestamps),
            extra={k: v for k, v in data.items() if k not in known},
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this metadata."""
        out: dict[str, Any] = dict(self.extra)
        out["request"] = self.request_dict
        if self.calibration_set_id is not None:
            out["calibration_set_id"] = str(self.calibration_set_id)
        if self.cocos_version is not None:
            out["cocos_version"] = self.cocos_version
        if self.timestamps:
            out["timestamps"] = dict(self.timestamps)
        return out


#: One circuit's measurements: key -> [shot][qubit] of 0/1 (an int8 array when sent packed).
CircuitMeasurementResults = dict[str, Any]


def _check_measurements(raw: Any) -> list[CircuitMeasurementResults]:
    owner = 'The "measurements" of a job result'
    if not isinstance(raw, list):
        raise _fail(f"{owner} must be a list with one object per circuit")
    for index, circuit in enumerate(raw):
        if not isinstance(circuit, Mapping):
            raise _fail(f"{owner}: entry {index} must be an object mapping keys to shot lists")
        for key, shots in circuit.items():
            if not isinstance(shots, list) or not all(isinstance(s, list) for s in shots):
                raise _fail(f"{owner}: circuit {index}, key {key!r} must be a list of shot lists")
    return raw


@dataclass(frozen=True)
class RunResult:
    """The answer of ``GET jobs/{id}``: status, measurements when ready, and metadata."""

    status: Status
    metadata: Metadata
    measurements: list[CircuitMeasurementResults] | None = None
    message: str | None = None
    warnings: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunResult:
        """Parses a job result; unknown statuses and extra fields are tolerated."""
        if not isinstance(data, Mapping):
            raise _fail(f"A job result must be a JSON object, got {type(data).__name__}")
        owner = "the job result"
        status = _parse_status(data, owner)
        if "metadata" not in data:
            raise _fail('The job result is missing the field "metadata"')
        measurements = data.get("measurements")
        if measurements is not None and data.get(MEASUREMENTS_FORMAT_FIELD) == PACKED_FORMAT:
            measurements = unpack_measurements(measurements)
        elif measurements is not None:
            measurements = _check_measurements(measurements)
        elif status == Status.READY:
            raise _fail('The job result is "ready" but has no "measurements"')
        return cls(
            status=status,
            metadata=Metadata.from_dict(data["metadata"]),
            measurements=measurements,
            message=_parse_message(data, owner),
            warnings=_parse_warnings(data, owner),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this result."""
        measurements = self.measurements
        if measurements is not None:
            measurements = [
                {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in circuit.items()}
                for circuit in measurements
            ]
        return {
            "status": self.status.value,
            "measurements": measurements,
            "message": self.message,
            "warnings": list(self.warnings),
            "metadata": self.metadata.to_dict(),
        }


Locus = tuple[str, ...]


def _parse_locus_list(raw: Any, what: str) -> tuple[Locus, ...]:
    if not isinstance(raw, list | tuple):
        raise _fail(f"{what} must be a list of loci")
    loci = []
    for locus in raw:
        if not isinstance(locus, list | tuple) or not all(isinstance(q, str) for q in locus):
            raise _fail(f"{what}: each locus must be a list of qubit names, got {locus!r}")
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
        _require_type(self.name, str, "The architecture name")
        qubits = tuple(self.qubits)
        if len(set(qubits)) != len(qubits):
            raise _fail(f"The architecture {self.name!r} lists a qubit twice: {qubits}")
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
                    raise _fail(
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
            raise _fail(f"An architecture must be a JSON object, got {type(data).__name__}")
        if "quantum_architecture" in data:
            data = data["quantum_architecture"]
            if not isinstance(data, Mapping):
                raise _fail('"quantum_architecture" must be a JSON object')
        if "gates" in data:
            return cls._from_dynamic(data)
        for required in ("name", "qubits", "qubit_connectivity", "operations"):
            if required not in data:
                raise _fail(f'The architecture is missing the field "{required}"')
        qubits = data["qubits"]
        if not isinstance(qubits, list) or not all(isinstance(q, str) for q in qubits):
            raise _fail("The architecture's qubits must be a list of names")
        pairs = _parse_locus_list(data["qubit_connectivity"], "qubit_connectivity")
        raw_ops = data["operations"]
        operations: dict[str, tuple[Locus, ...]] = {}
        if isinstance(raw_ops, list):
            # The older list form: two-qubit gates on every coupled pair, the rest on every qubit.
            for op in raw_ops:
                _require_type(op, str, "An operation name")
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
            raise _fail("The architecture's operations must be a list of names or a dict of loci")
        # Resonators may be listed beside the qubits, or among them under opaque names: then they
        # are the components of two-qubit loci with no single-qubit operation (STAR_MOVE.md §1).
        listed = data.get("computational_resonators") or []
        if not isinstance(listed, list) or not all(isinstance(r, str) for r in listed):
            raise _fail('"computational_resonators" must be a list of names')
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
            raise _fail('The dynamic architecture is missing the list "qubits"')
        resonators = data.get("computational_resonators") or []
        if not isinstance(resonators, list) or not all(isinstance(r, str) for r in resonators):
            raise _fail('"computational_resonators" must be a list of names')
        gates = data["gates"]
        if not isinstance(gates, Mapping):
            raise _fail('"gates" of the dynamic architecture must be an object')
        operations: dict[str, tuple[Locus, ...]] = {}
        for gate_name, gate in gates.items():
            impls = gate.get("implementations") if isinstance(gate, Mapping) else None
            if not isinstance(impls, Mapping):
                raise _fail(
                    f'Gate {gate_name!r} of the dynamic architecture has no "implementations"'
                )
            loci: dict[Locus, None] = {}
            for impl_name, impl in impls.items():
                if not isinstance(impl, Mapping) or "loci" not in impl:
                    raise _fail(f'Implementation {impl_name!r} of {gate_name!r} has no "loci"')
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


def is_number(value: Any) -> bool:
    """Whether ``value`` is a real number (not a bool)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
