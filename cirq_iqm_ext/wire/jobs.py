"""Jobs in the transfer format: run requests, statuses, metadata and results (PROTOCOL.md §4).

Parsing tolerates what newer servers add: unknown fields are ignored (and kept where a round trip
needs them) and unknown job statuses become pseudo-members of :class:`Status` instead of errors.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from uuid import UUID

import numpy as np

from cirq_iqm_ext.wire.circuits import Circuit, SingleQubitMapping
from cirq_iqm_ext.wire.fields import NUMBER, check_metadata, fail, parse_uuid, require_type
from cirq_iqm_ext.wire.packed import unpack_measurements
from cirq_iqm_ext.wire.protocol import (
    MEASUREMENTS_FORMAT_FIELD,
    PACKED_FORMAT,
    REQUEST_OMITTED_FIELD,
)

#: Job options of the IQM Server API (PROTOCOL_IQM_SERVER.md §3.1) that a :class:`RunRequest`
#: may carry, with their allowed values (``None``: any of the type the option takes).
MOVE_GATE_FRAME_TRACKING_MODES = ("full", "no_detuning_correction", "none")
DD_MODES = ("disabled", "enabled")
#: Largest ``active_reset_cycles`` (a 32-bit count, as IQM's servers store it).
MAX_ACTIVE_RESET_CYCLES = 2**31 - 1
#: The option fields of :class:`RunRequest`, with the values that mean "as a v1 job".
JOB_OPTION_DEFAULTS: dict[str, Any] = {
    "move_gate_validation": "strict",
    "move_gate_frame_tracking": "full",
    "active_reset_cycles": None,
    "dd_mode": "disabled",
    "dd_strategy": None,
    "use_timeslot": False,
}


class HeraldingMode(str, enum.Enum):
    """Whether the server post-selects shots on an all-zero pre-circuit measurement."""

    NONE = "none"
    ZEROS = "zeros"


def _short(number: int) -> str:
    """An integer for a message: a huge one by its digit count, not all its digits."""
    text = str(number)
    return text if len(text) <= 24 else f"an integer of {len(text.lstrip('-'))} digits"


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
            raise fail(
                f"{name} must be one of {', '.join(map(repr, allowed))} (or null), got {value!r}"
            )
    cycles = values["active_reset_cycles"]
    if cycles is not None and (isinstance(cycles, bool) or not isinstance(cycles, int)):
        raise fail(f"active_reset_cycles must be an integer or null, got {cycles!r}")
    if cycles is not None and not 0 <= cycles <= MAX_ACTIVE_RESET_CYCLES:
        raise fail(
            f"active_reset_cycles must be between 0 and {MAX_ACTIVE_RESET_CYCLES}, "
            f"got {_short(cycles)}"
        )
    strategy = values["dd_strategy"]
    if strategy is not None:
        if not isinstance(strategy, Mapping):
            raise fail(f"dd_strategy must be an object or null, got {strategy!r}")
        values["dd_strategy"] = check_metadata(strategy, "dd_strategy")
    if not isinstance(values["use_timeslot"], bool):
        raise fail(f"use_timeslot must be true or false, got {values['use_timeslot']!r}")
    if (values["move_gate_frame_tracking"] or "full") == "full" and (
        values["move_gate_validation"] == "none"
    ):
        raise fail(
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
            raise fail("A run request needs at least one circuit")
        for index, circuit in enumerate(circuits):
            if not isinstance(circuit, Circuit):
                raise fail(f"Circuit {index} is a {type(circuit).__name__}, not a Circuit")
        object.__setattr__(self, "circuits", circuits)
        require_type(self.shots, int, "shots")
        if self.shots < 1:
            raise fail(f"shots must be a positive integer, got {_short(self.shots)}")
        if self.qubit_mapping is not None:
            self._check_mapping(circuits)
        object.__setattr__(
            self, "calibration_set_id", parse_uuid(self.calibration_set_id, "calibration_set_id")
        )
        if self.custom_settings is not None:
            object.__setattr__(
                self, "custom_settings", check_metadata(self.custom_settings, "custom_settings")
            )
        ratio = self.max_circuit_duration_over_t2
        if ratio is not None:
            require_type(ratio, NUMBER, "max_circuit_duration_over_t2")
            try:
                ratio = float(ratio)
            except OverflowError:  # an int beyond the float range
                raise fail(
                    "max_circuit_duration_over_t2 must be a finite number >= 0, "
                    "got an int too large for a float"
                ) from None
            if not math.isfinite(ratio) or ratio < 0:
                raise fail(
                    f"max_circuit_duration_over_t2 must be a finite number >= 0, got {ratio!r}"
                )
            object.__setattr__(self, "max_circuit_duration_over_t2", ratio)
        try:
            object.__setattr__(self, "heralding_mode", HeraldingMode(self.heralding_mode))
        except ValueError:
            raise fail(
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
                raise fail(f"qubit_mapping entries must be SingleQubitMapping, got {entry!r}")
        logical = [m.logical_name for m in mapping]
        physical = [m.physical_name for m in mapping]
        for names, what in ((logical, "logical"), (physical, "physical")):
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise fail(
                    f"qubit_mapping is not injective: {what} name(s) {repeated} appear more "
                    "than once"
                )
        known = set(logical)
        for index, circuit in enumerate(circuits):
            missing = [q for q in circuit.qubits if q not in known]
            if missing:
                raise fail(
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
            raise fail(f"A run request must be a JSON object, got {type(data).__name__}")
        if "circuits" not in data:
            raise fail('A run request is missing the field "circuits"')
        raw_circuits = data["circuits"]
        if not isinstance(raw_circuits, list):
            raise fail('The "circuits" of a run request must be a list')
        mapping = data.get("qubit_mapping")
        if mapping is not None:
            if not isinstance(mapping, list) or not all(isinstance(m, Mapping) for m in mapping):
                raise fail("qubit_mapping must be a list of {logical_name, physical_name} objects")
            try:
                mapping = tuple(
                    SingleQubitMapping(m["logical_name"], m["physical_name"]) for m in mapping
                )
            except KeyError as missing:
                raise fail(f"a qubit_mapping entry is missing the field {missing}") from None
        custom = data.get("custom_settings")
        if custom is not None and not isinstance(custom, Mapping):
            raise fail("custom_settings must be an object")
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
        raise fail(f'{owner} is missing the field "status"')
    value = data["status"]
    require_type(value, str, f"The status of {owner}")
    return Status(value)


def _parse_warnings(data: Mapping[str, Any], owner: str) -> tuple[str, ...]:
    raw = data.get("warnings") or ()
    if not isinstance(raw, list | tuple) or not all(isinstance(w, str) for w in raw):
        raise fail(f'The "warnings" of {owner} must be a list of strings')
    return tuple(raw)


def _parse_message(data: Mapping[str, Any], owner: str) -> str | None:
    message = data.get("message")
    if message is not None and not isinstance(message, str):
        raise fail(f'The "message" of {owner} must be a string or null')
    return message


@dataclass(frozen=True)
class RunStatus:
    """The answer of ``GET jobs/{id}/status``.

    ``queue_position`` (jobs ahead while it waits) and ``circuits_done`` / ``circuits_total``
    (while it runs) are what a server says of its progress, where it says it (the IQM Server API
    does); ``None`` otherwise. v1 carries them as optional fields of the same names.
    """

    status: Status
    message: str | None = None
    warnings: tuple[str, ...] = ()
    queue_position: int | None = None
    circuits_done: int | None = None
    circuits_total: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunStatus:
        """Parses a status answer; unknown statuses and extra fields are tolerated."""
        if not isinstance(data, Mapping):
            raise fail(f"A job status must be a JSON object, got {type(data).__name__}")
        owner = "the job status"
        return cls(
            _parse_status(data, owner),
            _parse_message(data, owner),
            _parse_warnings(data, owner),
            *(_progress_count(data.get(name)) for name in _PROGRESS_FIELDS),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this status."""
        out: dict[str, Any] = {"status": self.status.value}
        if self.message is not None:
            out["message"] = self.message
        if self.warnings:
            out["warnings"] = list(self.warnings)
        for name in _PROGRESS_FIELDS:
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


#: The optional progress fields of a status, in the order of :class:`RunStatus`.
_PROGRESS_FIELDS = ("queue_position", "circuits_done", "circuits_total")


def _progress_count(value: Any) -> int | None:
    """A server's progress hint as a count; anything else is no hint (never an error)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


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
        """The run request, parsed (and validated) on first access.

        Raises:
            ModelValidationError: The server left the request out (``request_omitted``).
        """
        if not self.request_dict and self.extra.get(REQUEST_OMITTED_FIELD) is True:
            raise fail(
                "The server left the request out of this result (request_omitted); fetch the "
                "result without ?request=omit to have it echoed"
            )
        return RunRequest.from_dict(self.request_dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Metadata:
        """Parses result metadata; extra fields are kept in :attr:`extra`."""
        if not isinstance(data, Mapping):
            raise fail(f"Job metadata must be a JSON object, got {type(data).__name__}")
        request = data.get("request")
        if request is None and data.get(REQUEST_OMITTED_FIELD) is True:
            request = {}  # left out on the client's request (it kept its own copy)
        if not isinstance(request, Mapping):
            raise fail('Job metadata is missing the object "request"')
        timestamps = data.get("timestamps") or {}
        if not isinstance(timestamps, Mapping) or not all(
            isinstance(v, str) for v in timestamps.values()
        ):
            raise fail('The "timestamps" of job metadata must map names to ISO 8601 strings')
        version = data.get("cocos_version")
        if version is not None and not isinstance(version, str):
            raise fail('"cocos_version" must be a string')
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
        if self.request_dict or self.extra.get(REQUEST_OMITTED_FIELD) is not True:
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
        raise fail(f"{owner} must be a list with one object per circuit")
    for index, circuit in enumerate(raw):
        if not isinstance(circuit, Mapping):
            raise fail(f"{owner}: entry {index} must be an object mapping keys to shot lists")
        for key, shots in circuit.items():
            if not isinstance(shots, list) or not all(isinstance(s, list) for s in shots):
                raise fail(f"{owner}: circuit {index}, key {key!r} must be a list of shot lists")
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
            raise fail(f"A job result must be a JSON object, got {type(data).__name__}")
        owner = "the job result"
        status = _parse_status(data, owner)
        if "metadata" not in data:
            raise fail('The job result is missing the field "metadata"')
        measurements = data.get("measurements")
        if measurements is not None and data.get(MEASUREMENTS_FORMAT_FIELD) == PACKED_FORMAT:
            measurements = unpack_measurements(measurements)
        elif measurements is not None:
            measurements = _check_measurements(measurements)
        elif status == Status.READY:
            raise fail('The job result is "ready" but has no "measurements"')
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


__all__ = [
    "DD_MODES",
    "JOB_OPTION_DEFAULTS",
    "MOVE_GATE_FRAME_TRACKING_MODES",
    "TIMESTAMP_KEYS",
    "CircuitMeasurementResults",
    "HeraldingMode",
    "Metadata",
    "RunRequest",
    "RunResult",
    "RunStatus",
    "Status",
    "check_job_options",
]
