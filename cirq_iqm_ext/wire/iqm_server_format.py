"""Pure conversions between the v1 transfer format and the IQM Server API (PROTOCOL_IQM_SERVER.md).

Both halves of the project use these functions: the client's ``iqm-server`` profile converts what
the layers above it produce (v1 run requests, turns) into the IQM Server API and its answers back,
and the server's IQM Server API routes convert the other way round onto the one canonical job
store. Keeping them here, free of HTTP, makes the mapping of PROTOCOL_IQM_SERVER.md §9.1 one
table of small functions with golden tests.

Units: v1 ``prx`` and ``cc_prx`` arguments ``angle_t``/``phase_t`` are in full turns, the IQM
Server API's ``angle``/``phase`` in radians: ``angle = 2π·angle_t``. A ``cc_prx`` keeps its
``feedback_qubit`` and ``feedback_key``, a ``measure`` its optional ``feedback_key``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from cirq_iqm_ext.wire.jobs import MAX_ACTIVE_RESET_CYCLES
from cirq_iqm_ext.wire.models import (
    TIMESTAMP_KEYS,
    QuantumArchitectureSpecification,
    Status,
    canonical_instruction_name,
)

TAU = 2.0 * math.pi

#: Job statuses of the IQM Server API (§4.2).
WAITING, PROCESSING, COMPLETED, FAILED, CANCELLED = (
    "waiting",
    "processing",
    "completed",
    "failed",
    "cancelled",
)
TERMINAL_STATUSES = frozenset({COMPLETED, FAILED, CANCELLED})

#: Options of a job definition that v1 does not have, with the values v1 jobs get (§3.1, §9.1).
OPTION_DEFAULTS: dict[str, Any] = {
    "move_gate_validation": "strict",
    "move_gate_frame_tracking": "full",
    "active_reset_cycles": None,
    "dd_mode": "disabled",
    "dd_strategy": None,
}
_OPTION_ENUMS: dict[str, tuple[str, ...]] = {
    "heralding_mode": ("none", "zeros"),
    "move_gate_validation": ("strict", "allow_prx", "none"),
    "move_gate_frame_tracking": ("full", "no_detuning_correction", "none"),
    "dd_mode": ("disabled", "enabled"),
}
#: Deprecated option names (client 36 sends both; the new name wins).
_OPTION_ALIASES = {
    "move_validation_mode": "move_gate_validation",
    "move_gate_frame_tracking_mode": "move_gate_frame_tracking",
}

#: Operations of §3.3: locus length (``None``: one or more) and the exact argument names.
OPERATIONS: dict[str, tuple[int | None, tuple[str, ...]]] = {
    "prx": (1, ("angle", "phase")),
    "cz": (2, ()),
    "move": (2, ()),
    "measure": (None, ("key",)),
    "barrier": (None, ()),
    "delay": (None, ("duration",)),
    "cc_prx": (1, ("angle", "phase", "feedback_qubit", "feedback_key")),
    "reset": (None, ()),
}
_OPTIONAL_ARGS = {"measure": ("feedback_key",)}
_FLOAT_ARGS = frozenset({"angle", "phase", "duration"})
#: Operations whose angles are turns in v1 and radians here.
_TURN_ARGS = frozenset({"prx", "cc_prx"})

#: The IQM Server API timeline names of the v1 timestamps (§4.1).
TIMELINE_OF_TIMESTAMP: dict[str, str] = {
    "job_start": "created",
    "compile_start": "compilation_started",
    "compile_end": "compilation_ended",
    "execution_start": "execution_started",
    "execution_end": "execution_ended",
}
TIMESTAMP_OF_TIMELINE = {v: k for k, v in TIMELINE_OF_TIMESTAMP.items()}


class JobDefinitionError(ValueError):
    """A job definition breaks the rules of §3; ``error_code`` is that of §7.2."""

    def __init__(self, message: str, error_code: str = "invalid_request"):
        super().__init__(message)
        self.message = message
        self.error_code = error_code


# ------------------------------------------------------------------------------------ numbers


def turns_to_radians(turns: float) -> float:
    """``2π · turns``, always a float (official servers reject JSON ints for angles)."""
    return float(TAU * turns)


def radians_to_turns(radians: float) -> float:
    """``radians / 2π``."""
    return float(radians / TAU)


def _real(value: Any, what: str) -> float:
    """A finite JSON number as a float; ints are accepted as floats, booleans are not."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise JobDefinitionError(f"{what} must be a number, got {value!r}")
    try:
        value = float(value)
    except OverflowError:  # an int beyond the float range
        raise JobDefinitionError(
            f"{what} must be finite, got an int too large for a float"
        ) from None
    if not math.isfinite(value):
        raise JobDefinitionError(f"{what} must be finite, got {value!r}")
    return value


# ------------------------------------------------------------------------------------ statuses


def status_from_iqm_server(status: str, compilation: Any = None) -> Status:
    """The v1 status of an IQM Server API job status (§9.1, client side).

    ``waiting`` is ``pending compilation`` until the job was compiled (``compilation`` set), then
    ``pending execution``. Unknown statuses become pseudo-members of :class:`Status` (pending).
    """
    if status == WAITING:
        return Status.PENDING_EXECUTION if compilation else Status.PENDING_COMPILATION
    return {
        PROCESSING: Status.PENDING_EXECUTION,
        COMPLETED: Status.READY,
        FAILED: Status.FAILED,
        CANCELLED: Status.ABORTED,
    }.get(status) or Status(status)


def status_to_iqm_server(status: Status | str, timestamps: Mapping[str, Any]) -> str:
    """The IQM Server API status of a v1 job state; the timestamps tell queued from running."""
    status = Status(status)
    if status == Status.PENDING_COMPILATION:
        return PROCESSING if "compile_start" in timestamps else WAITING
    if status == Status.PENDING_EXECUTION:
        return PROCESSING if "execution_start" in timestamps else WAITING
    mapped = {Status.READY: COMPLETED, Status.FAILED: FAILED, Status.ABORTED: CANCELLED}
    return mapped.get(status, status.value)


def timeline_from_timestamps(
    timestamps: Mapping[str, str], status: str, source: str = "iqm-server"
) -> list[dict[str, str]]:
    """The JobData ``timeline`` of v1 timestamps (``job_end`` becomes the terminal status)."""
    timeline = []
    for key in TIMESTAMP_KEYS:
        stamp = timestamps.get(key)
        if stamp is None:
            continue
        name = status if key == "job_end" else TIMELINE_OF_TIMESTAMP.get(key)
        if name is not None:
            timeline.append({"source": source, "status": name, "timestamp": stamp})
    return timeline


def timestamps_from_timeline(timeline: Any) -> dict[str, str]:
    """v1 timestamps from a JobData ``timeline``; entries of unknown statuses are ignored."""
    out: dict[str, str] = {}
    if not isinstance(timeline, list):
        return out
    for entry in timeline:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("timestamp"), str):
            continue
        status = entry.get("status")
        key = TIMESTAMP_OF_TIMELINE.get(status) if isinstance(status, str) else None
        if key is None and status in TERMINAL_STATUSES:
            key = "job_end"
        if key is not None:
            out[key] = entry["timestamp"]
    return {k: out[k] for k in TIMESTAMP_KEYS if k in out}


# ------------------------------------------------------------------------------------ instructions


def instruction_to_iqm_server(instruction: Mapping[str, Any]) -> dict[str, Any]:
    """A v1 instruction dict (``qubits``, turns) as the IQM Server API writes it (``locus``,
    radians, explicit ``implementation``)."""
    name = canonical_instruction_name(instruction["name"])
    args = dict(instruction.get("args") or {})
    if name in _TURN_ARGS:
        angles = {
            "angle": turns_to_radians(args.pop("angle_t")),
            "phase": turns_to_radians(args.pop("phase_t")),
        }
        args = {**angles, **args}  # cc_prx keeps feedback_qubit and feedback_key
    return {
        "name": name,
        "locus": list(instruction["qubits"]),
        "args": args,
        "implementation": instruction.get("implementation"),
    }


def instruction_from_iqm_server(data: Any, where: str) -> dict[str, Any]:
    """An IQM Server API instruction as a v1 instruction dict (turns, ``qubits``).

    Checks §3.2-3.3 statically (the checks against the architecture come later): a known name,
    the locus, exactly the argument names, numbers that are finite (ints accepted as floats).

    Args:
        data: The instruction's JSON object.
        where: ``circuit 0 ("bell"), instruction 3``, for messages.

    Raises:
        JobDefinitionError: ``invalid_request`` for a malformed object, ``circuit_validation_error``
            for an instruction the rules of §3.3 forbid.
    """
    name, locus, args, implementation = _instruction_fields(data, where)
    _check_locus(name, locus, where)
    converted = _converted_args(name, args, where)
    out: dict[str, Any] = {"name": name, "qubits": list(locus), "args": converted}
    if implementation is not None:
        out["implementation"] = implementation
    return out


def _instruction_fields(
    data: Any, where: str
) -> tuple[str, list[str], Mapping[str, Any], str | None]:
    """The instruction's name, locus, args and implementation, each of the right JSON type."""
    if not isinstance(data, Mapping):
        raise JobDefinitionError(f"{where}: an instruction must be an object, got {data!r}")
    name = data.get("name")
    if not isinstance(name, str):
        raise JobDefinitionError(f'{where}: "name" must be a string, got {name!r}')
    if "locus" in data and "qubits" in data:
        raise JobDefinitionError(f'{where}: give either "locus" or "qubits", not both')
    locus = data.get("locus", data.get("qubits"))
    if not isinstance(locus, list) or not all(isinstance(c, str) for c in locus):
        raise JobDefinitionError(f'{where}: "locus" must be a list of component names')
    args = data.get("args") or {}
    if not isinstance(args, Mapping):
        raise JobDefinitionError(f'{where}: "args" must be an object, got {args!r}')
    implementation = data.get("implementation")
    if implementation is not None and (not isinstance(implementation, str) or not implementation):
        raise JobDefinitionError(f'{where}: "implementation" must be a non-empty string or null')
    if name not in OPERATIONS:
        raise JobDefinitionError(
            f"{where}: Unknown quantum operation {name!r}.", "circuit_validation_error"
        )
    return name, locus, args, implementation


def _check_locus(name: str, locus: list[str], where: str) -> None:
    arity, _ = OPERATIONS[name]
    if not locus or (arity is not None and len(locus) != arity):
        size = "one or more" if arity is None else str(arity)
        raise JobDefinitionError(
            f"{where}: {name!r} acts on {size} component(s), got {tuple(locus)}",
            "circuit_validation_error",
        )
    if len(set(locus)) != len(locus):
        raise JobDefinitionError(
            f"{where}: the locus {tuple(locus)} repeats a component", "circuit_validation_error"
        )


def _converted_args(name: str, args: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Exactly the operation's argument names; numbers finite; angles in turns."""
    _, arg_names = OPERATIONS[name]
    allowed = set(arg_names) | set(_OPTIONAL_ARGS.get(name, ()))
    if not set(arg_names) <= set(args) <= allowed:
        raise JobDefinitionError(
            f"{where}: {name!r} takes the arguments {sorted(arg_names)}, got {sorted(args)}",
            "circuit_validation_error",
        )
    converted: dict[str, Any] = {}
    for arg, value in args.items():
        if arg in _FLOAT_ARGS:
            converted[arg] = _real(value, f'{where}: argument "{arg}"')
        elif not isinstance(value, str):
            raise JobDefinitionError(f'{where}: argument "{arg}" must be a string, got {value!r}')
        else:
            converted[arg] = value
    if name == "delay" and converted["duration"] < 0:
        raise JobDefinitionError(
            f"{where}: argument \"duration\" of 'delay' must be >= 0 seconds, "
            f"got {converted['duration']!r}",
            "circuit_validation_error",
        )
    if name in _TURN_ARGS:
        turns = {
            "angle_t": radians_to_turns(converted.pop("angle")),
            "phase_t": radians_to_turns(converted.pop("phase")),
        }
        converted = {**turns, **converted}
    return converted


# ---------------------------------------------------------------------------- job definition


def run_request_to_job_definition(
    request: Mapping[str, Any], calibration_set_id: UUID | str | None = None
) -> dict[str, Any]:
    """A v1 run request dict as the job definition client 36 would send (§3.4, every field).

    Args:
        request: The v1 run request (``RunRequest.to_dict()`` or the sampler's JSON, parsed).
        calibration_set_id: Used when the request names none (the client's resolved default).

    Returns:
        The job definition; ``custom_settings`` is dropped (this API has none), and so is
        ``use_timeslot`` (a query parameter of the submission). The job options the request
        sets replace those of :data:`OPTION_DEFAULTS`.
    """
    circuits = [
        {
            "name": circuit["name"],
            "instructions": [instruction_to_iqm_server(i) for i in circuit["instructions"]],
            "metadata": circuit.get("metadata"),
        }
        for circuit in request["circuits"]
    ]
    cal = request.get("calibration_set_id") or calibration_set_id
    mapping = request.get("qubit_mapping")
    if isinstance(mapping, Mapping):
        mapping = [{"logical_name": k, "physical_name": v} for k, v in mapping.items()]
    out: dict[str, Any] = {
        "circuits": circuits,
        "calibration_set_id": None if cal is None else str(cal),
        "qubit_mapping": mapping,
        "shots": request.get("shots", 1),
        "max_circuit_duration_over_t2": request.get("max_circuit_duration_over_t2"),
        "heralding_mode": request.get("heralding_mode", "none"),
    }
    options = {
        name: default if request.get(name) is None else request[name]
        for name, default in OPTION_DEFAULTS.items()
    }
    out.update(options)
    # Client 36 sends the deprecated names too; servers of its time read them.
    out["move_validation_mode"] = options["move_gate_validation"]
    out["move_gate_frame_tracking_mode"] = options["move_gate_frame_tracking"]
    return out


def job_definition_to_run_request(data: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A job definition (§3) as a v1 run request dict plus the options v1 has no field for.

    Runs the checks of §7.3 steps 1-3 that need no architecture, in that order.

    Returns:
        ``(v1 request dict, options)``; the options are those of :data:`OPTION_DEFAULTS`, every
        one set (defaults filled in). The request dict carries the options that differ from the
        defaults as its own fields (:class:`~cirq_iqm_ext.RunRequest` options).

    Raises:
        JobDefinitionError: The definition is malformed (``invalid_request``) or breaks a rule of
            §3.2-3.3 (``circuit_validation_error``).
    """
    if not isinstance(data, Mapping):
        raise JobDefinitionError("The job definition must be a JSON object")
    options = dict(OPTION_DEFAULTS)
    for old, new in _OPTION_ALIASES.items():
        if data.get(old) is not None:
            options[new] = data[old]
    for name in OPTION_DEFAULTS:
        if data.get(name) is not None:
            options[name] = data[name]
    for name, allowed in _OPTION_ENUMS.items():
        value = options[name] if name in options else (data.get(name) or "none")
        if value not in allowed:
            raise JobDefinitionError(f"{name} must be one of {list(allowed)}, got {value!r}")
    cycles = options["active_reset_cycles"]
    if cycles is not None and (isinstance(cycles, bool) or not isinstance(cycles, int)):
        raise JobDefinitionError(f"active_reset_cycles must be an integer or null, got {cycles!r}")
    if cycles is not None and not 0 <= cycles <= MAX_ACTIVE_RESET_CYCLES:
        shown = cycles if len(str(cycles)) <= 24 else f"an integer of {len(str(cycles))} digits"
        raise JobDefinitionError(
            f"active_reset_cycles must be between 0 and {MAX_ACTIVE_RESET_CYCLES}, got {shown}"
        )
    if options["dd_strategy"] is not None and not isinstance(options["dd_strategy"], Mapping):
        raise JobDefinitionError("dd_strategy must be an object or null")
    if options["move_gate_frame_tracking"] == "full" and options["move_gate_validation"] == "none":
        raise JobDefinitionError(
            "Unable to perform full MOVE gate frame tracking if MOVE gate validation is not "
            '"strict" or "allow_prx".'
        )
    shots = data.get("shots", 1)
    if shots is None:
        shots = 1
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
        raise JobDefinitionError(f"shots must be a positive integer, got {shots!r}")
    request: dict[str, Any] = {"shots": shots}
    ratio = data.get("max_circuit_duration_over_t2")
    if ratio is not None:
        ratio = _real(ratio, "max_circuit_duration_over_t2")
        if ratio < 0:
            raise JobDefinitionError("max_circuit_duration_over_t2 must be >= 0")
        request["max_circuit_duration_over_t2"] = ratio
    request["heralding_mode"] = data.get("heralding_mode") or "none"
    cal = data.get("calibration_set_id")
    if cal is not None:
        try:
            request["calibration_set_id"] = str(UUID(str(cal)))
        except ValueError:
            raise JobDefinitionError(
                f"calibration_set_id must be a UUID or null, got {cal!r}"
            ) from None
    mapping = data.get("qubit_mapping")
    if mapping is not None:
        request["qubit_mapping"] = _mapping_entries(mapping)
    raw_circuits = data.get("circuits")
    if not isinstance(raw_circuits, list) or not raw_circuits:
        raise JobDefinitionError('"circuits" must be a non-empty list')
    request["circuits"] = [_circuit(c, index) for index, c in enumerate(raw_circuits)]
    for name, default in OPTION_DEFAULTS.items():
        if options[name] != default:
            request[name] = options[name]
    return request, options


def _mapping_entries(mapping: Any) -> list[dict[str, str]]:
    if isinstance(mapping, Mapping):
        entries = [{"logical_name": k, "physical_name": v} for k, v in mapping.items()]
    elif isinstance(mapping, list) and all(isinstance(e, Mapping) for e in mapping):
        entries = [
            {"logical_name": e.get("logical_name"), "physical_name": e.get("physical_name")}
            for e in mapping
        ]
    else:
        raise JobDefinitionError("qubit_mapping must be a list of {logical_name, physical_name}")
    for entry in entries:
        if not all(isinstance(v, str) for v in entry.values()):
            raise JobDefinitionError(f"qubit_mapping entries must name strings, got {entry!r}")
    physical = [e["physical_name"] for e in entries]
    if len(set(physical)) != len(physical):
        raise JobDefinitionError(
            "Multiple logical qubits map to the same physical qubit.", "circuit_validation_error"
        )
    return entries


def _circuit(data: Any, index: int) -> dict[str, Any]:
    if isinstance(data, str):
        raise JobDefinitionError("QIR programs are not supported")
    if not isinstance(data, Mapping):
        raise JobDefinitionError(f"circuit {index} must be an object")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise JobDefinitionError(
            f"circuit {index}: the name must be a non-empty string", "circuit_validation_error"
        )
    prefix = f'circuit {index} ("{name}")'
    raw = data.get("instructions")
    if not isinstance(raw, list) or not raw:
        raise JobDefinitionError(
            f"{prefix}: needs at least one instruction", "circuit_validation_error"
        )
    metadata = data.get("metadata")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise JobDefinitionError(f"{prefix}: metadata must be an object or null")
    instructions = []
    for position, inst in enumerate(raw):
        # Well-formed common instructions the short way (the same dict); the rest, checked.
        common = common_instruction_from_iqm_server(inst)
        if common is None:
            common = instruction_from_iqm_server(inst, f"{prefix}, instruction {position}")
        instructions.append(common)
    for arg in ("key", "feedback_key"):
        seen: set[str] = set()
        for position, inst in enumerate(raw):
            value = (inst.get("args") or {}).get(arg) if inst.get("name") == "measure" else None
            if value is None:
                continue
            if value in seen:
                # The same words as the shared validation, which v1 jobs and clients get.
                what = "measurement key" if arg == "key" else "feedback key"
                raise JobDefinitionError(
                    f"{prefix}, instruction {position}: {what} {value!r} is used more than once",
                    "circuit_validation_error",
                )
            seen.add(value)
    out: dict[str, Any] = {"name": name, "instructions": instructions}
    if metadata is not None:
        out["metadata"] = dict(metadata)
    return out


def job_definition_from_run_request(
    request: Mapping[str, Any], options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The job definition the server echoes (E6) for a stored v1 request and its options.

    The request's own option fields count; ``options`` (if given) override them.
    """
    out = run_request_to_job_definition(request)
    merged = {name: out[name] for name in OPTION_DEFAULTS}
    merged.update(options or {})
    out.update(merged)
    out["move_validation_mode"] = merged["move_gate_validation"]
    out["move_gate_frame_tracking_mode"] = merged["move_gate_frame_tracking"]
    return out


def common_instruction_from_iqm_server(inst: Any) -> dict[str, Any] | None:
    """A well-formed ``prx``, ``cz`` or ``measure`` (the bulk of a batch) as a v1 instruction
    dict, the same as :func:`instruction_from_iqm_server` gives, with its checks done inline;
    ``None`` for anything else, which takes the careful path."""
    if type(inst) is not dict or "qubits" in inst or inst.get("implementation") is not None:
        return None
    name, locus, args = inst.get("name"), inst.get("locus"), inst.get("args")
    if type(locus) is not list or not all(type(c) is str for c in locus):
        return None
    if args is None:
        args = {}
    elif type(args) is not dict:
        return None
    if name == "prx" and len(locus) == 1 and args.keys() == {"angle", "phase"}:
        angle, phase = args["angle"], args["phase"]
        if type(angle) is float and type(phase) is float and math.isfinite(angle + phase):
            turns = {"angle_t": radians_to_turns(angle), "phase_t": radians_to_turns(phase)}
            return {"name": name, "qubits": [locus[0]], "args": turns}
    elif name == "cz" and len(locus) == 2 and locus[0] != locus[1] and not args:
        return {"name": name, "qubits": list(locus), "args": {}}
    elif (
        name == "measure"
        and locus
        and args.keys() == {"key"}
        and type(args["key"]) is str
        and len(set(locus)) == len(locus)
    ):
        return {"name": name, "qubits": list(locus), "args": {"key": args["key"]}}
    return None


def run_request_from_job_definition(data: Mapping[str, Any]) -> dict[str, Any]:
    """A job definition echoed by a server (E6) as a v1 request dict, for result metadata.

    Lenient: this reads what a server already accepted, so it never rejects an instruction that
    v1 does not know; such an instruction keeps its name and ``locus`` as ``qubits``.
    """
    circuits = []
    for index, circuit in enumerate(data.get("circuits") or []):
        instructions = []
        for position, inst in enumerate(circuit.get("instructions") or []):
            common = common_instruction_from_iqm_server(inst)
            if common is not None:
                instructions.append(common)
                continue
            try:
                instructions.append(
                    instruction_from_iqm_server(inst, f"circuit {index}, instruction {position}")
                )
            except JobDefinitionError:
                instructions.append(
                    {
                        "name": inst.get("name"),
                        "qubits": list(inst.get("locus") or inst.get("qubits") or []),
                        "args": dict(inst.get("args") or {}),
                    }
                )
        out_circuit: dict[str, Any] = {"name": circuit.get("name"), "instructions": instructions}
        if circuit.get("metadata") is not None:
            out_circuit["metadata"] = circuit["metadata"]
        circuits.append(out_circuit)
    request: dict[str, Any] = {"circuits": circuits, "shots": data.get("shots", 1)}
    for name in ("qubit_mapping", "calibration_set_id", "max_circuit_duration_over_t2"):
        if data.get(name) is not None:
            request[name] = data[name]
    request["heralding_mode"] = data.get("heralding_mode") or "none"
    for name, default in OPTION_DEFAULTS.items():
        value = data.get(name)
        if value is not None and value != default:
            request[name] = value
    return request


# ------------------------------------------------------------------------------------ architecture


def architecture_from_dqa(
    dqa: Mapping[str, Any], name: str = "dynamic"
) -> QuantumArchitectureSpecification:
    """A v1 architecture from a dynamic quantum architecture (§9.1).

    ``qubits`` are the qubits and resonators, ``operations[g]`` the union of g's loci (plus
    ``barrier`` anywhere), ``qubit_connectivity`` every two-component locus. A ``delay`` the DQA
    lists (the server executes waits) is carried over without loci: like ``barrier``, it acts on
    any existing component.

    Raises:
        ModelValidationError: The DQA is malformed.
    """
    spec = QuantumArchitectureSpecification.from_dict({**dqa, "name": name})
    operations = dict(spec.operations)
    operations.setdefault("barrier", ())
    if "delay" in operations:
        operations["delay"] = ()
    return QuantumArchitectureSpecification(
        name=spec.name,
        qubits=spec.qubits,
        qubit_connectivity=spec.qubit_connectivity,
        operations=operations,
        computational_resonators=spec.computational_resonators,
        calibration_set_id=spec.calibration_set_id,
    )


def static_architecture_item(
    architecture: QuantumArchitectureSpecification, dut_label: str
) -> dict[str, Any]:
    """One item of E12: qubits, resonators and the coupler graph, qubit first in a pair."""
    resonators = set(architecture.computational_resonators)
    return {
        "dut_label": dut_label,
        "qubits": [q for q in architecture.qubits if q not in resonators],
        "computational_resonators": list(architecture.computational_resonators),
        "connectivity": [
            sorted(pair, key=lambda c: c in resonators) for pair in architecture.qubit_connectivity
        ],
    }


def counts_batch_items(items: Any) -> list[dict[str, Any]]:
    """Checks the E5 answer's shape and returns it as v1 ``counts_batch`` items (same form)."""
    if not isinstance(items, list) or not all(
        isinstance(i, Mapping) and isinstance(i.get("counts"), Mapping) for i in items
    ):
        raise ValueError("measurement_counts must be a list of {measurement_keys, counts}")
    return [
        {"measurement_keys": list(i.get("measurement_keys") or []), "counts": dict(i["counts"])}
        for i in items
    ]


#: Quality-metric ``dut_field`` patterns (PROTOCOL_IQM_SERVER.md §6.4) and their v1 names (§4.3).
_METRIC_NAMES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^characterization\.model\.([^.]+)\.(t1_time|t2_time)$"), r"\1.\2"),
    (re.compile(r"^metrics\.rb\.prx\.[^.]+\.([^.]+)\.fidelity$"), r"\1.prx.fidelity"),
    (
        re.compile(r"^metrics\.ssro\.measure\.[^.]+\.([^.]+)\.(error_0_to_1|error_1_to_0)$"),
        r"\1.readout.\2",
    ),
    (re.compile(r"^metrics\.irb\.(cz|move)\.[^.]+\.([^.]+)\.fidelity$"), r"\2.\1.fidelity"),
)


def metrics_from_observation_set(data: Any) -> dict[str, Any]:
    """A quality-metric set (E11) as the v1 metrics answer (PROTOCOL.md §4.3).

    Loci joined with ``__`` become comma-joined; values become strings, as v1 sends them.
    Observations without a v1 counterpart are left out.

    Raises:
        ValueError: ``data`` is not an observation set.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("observations"), list):
        raise ValueError('a quality-metric set needs a list of "observations"')
    metrics: dict[str, dict[str, str]] = {}
    for observation in data["observations"]:
        if not isinstance(observation, Mapping) or observation.get("invalid"):
            continue
        field, value = observation.get("dut_field"), observation.get("value")
        if (
            not isinstance(field, str)
            or isinstance(value, bool)
            or not isinstance(value, int | float)
        ):
            continue
        for pattern, template in _METRIC_NAMES:
            if pattern.match(field):
                name = pattern.sub(template, field)
                locus, _, rest = name.partition(".")
                name = f"{locus.replace('__', ',')}.{rest}"
                metrics[name] = {
                    "value": repr(float(value)),
                    "unit": str(observation.get("unit", "")),
                }
                break
    return {"calibration_set_id": data.get("describes_id"), "metrics": metrics}
