"""The transfer format in one import: the JSON objects of IQM's job API as Python objects.

The models live in :mod:`.circuits` (instructions, circuits), :mod:`.jobs` (run requests,
statuses, metadata, results) and :mod:`.architecture`; this module gathers them, as the package
always offered them here. Nothing here does HTTP or knows about Cirq.
"""

from __future__ import annotations

from cirq_iqm_ext.wire.architecture import (
    Locus,
    QuantumArchitectureSpecification,
)
from cirq_iqm_ext.wire.circuits import (
    ANYWHERE_OPERATIONS,
    DEPRECATED_INSTRUCTION_NAMES,
    INSTRUCTION_SPECS,
    Circuit,
    Instruction,
    InstructionSpec,
    SingleQubitMapping,
    canonical_instruction_name,
    serialize_qubit_mapping,
)
from cirq_iqm_ext.wire.fields import parse_uuid
from cirq_iqm_ext.wire.jobs import (
    DD_MODES,
    JOB_OPTION_DEFAULTS,
    MOVE_GATE_FRAME_TRACKING_MODES,
    TIMESTAMP_KEYS,
    CircuitMeasurementResults,
    HeraldingMode,
    Metadata,
    RunRequest,
    RunResult,
    RunStatus,
    Status,
    check_job_options,
)
from cirq_iqm_ext.wire.packed import unpack_measurements
from cirq_iqm_ext.wire.protocol import ARCHITECTURE_EXTENSIONS_QUERY

__all__ = [
    "ANYWHERE_OPERATIONS",
    "ARCHITECTURE_EXTENSIONS_QUERY",
    "DD_MODES",
    "DEPRECATED_INSTRUCTION_NAMES",
    "INSTRUCTION_SPECS",
    "JOB_OPTION_DEFAULTS",
    "MOVE_GATE_FRAME_TRACKING_MODES",
    "TIMESTAMP_KEYS",
    "Circuit",
    "CircuitMeasurementResults",
    "HeraldingMode",
    "Instruction",
    "InstructionSpec",
    "Locus",
    "Metadata",
    "QuantumArchitectureSpecification",
    "RunRequest",
    "RunResult",
    "RunStatus",
    "SingleQubitMapping",
    "Status",
    "canonical_instruction_name",
    "check_job_options",
    "parse_uuid",
    "serialize_qubit_mapping",
    "unpack_measurements",
]
