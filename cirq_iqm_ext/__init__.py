"""cirq_iqm_ext: run Cirq programs on IQM quantum computers.

The top level exports the public API. Importing it is cheap: the parts that pull in heavy
dependencies (the HTTP client, the compiler, the sampler, the server) are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cirq_iqm_ext._version import __version__
from cirq_iqm_ext.errors import (
    APITimeoutError,
    CircuitExecutionError,
    CircuitValidationError,
    ClientAuthenticationError,
    ClientConfigurationError,
    CompilationError,
    IQMConnectionError,
    IQMError,
    JobAbortionError,
    JobError,
    JobNotFoundError,
    JobSubmissionUncertainError,
    ModelValidationError,
    ServerResponseError,
)
from cirq_iqm_ext.models import (
    Circuit,
    HeraldingMode,
    Instruction,
    QuantumArchitectureSpecification,
    RunRequest,
    RunResult,
    RunStatus,
    SingleQubitMapping,
    Status,
)

if TYPE_CHECKING:
    from cirq_iqm_ext.barriers import IQMBarrierGate, barrier
    from cirq_iqm_ext.client import IQMClient, IQMServerWarning
    from cirq_iqm_ext.device import DeviceValidationError, IQMDevice, IQMDeviceMetadata
    from cirq_iqm_ext.devices import Adonis, Aphrodite, Apollo, Deneb, Garnet, star_device
    from cirq_iqm_ext.job import IQMJob, JobAbortedError
    from cirq_iqm_ext.json_resolver import json_resolver
    from cirq_iqm_ext.move import IQMMoveGate
    from cirq_iqm_ext.noise import IQMNoiseModel, local_sampler
    from cirq_iqm_ext.qasm import circuit_from_qasm
    from cirq_iqm_ext.results import IQMResult
    from cirq_iqm_ext.sampler import CalibrationDriftWarning, IQMSampler
    from cirq_iqm_ext.serialize import serialize_circuit
    from cirq_iqm_ext.transpiler import TranspileResult, transpile

#: Public name -> the module that defines it, imported when the name is first used.
_LAZY: dict[str, str] = {
    "IQMBarrierGate": "cirq_iqm_ext.barriers",
    "barrier": "cirq_iqm_ext.barriers",
    "IQMClient": "cirq_iqm_ext.client",
    "IQMServerWarning": "cirq_iqm_ext.client",
    "IQMDevice": "cirq_iqm_ext.device",
    "IQMDeviceMetadata": "cirq_iqm_ext.device",
    "DeviceValidationError": "cirq_iqm_ext.device",
    "Adonis": "cirq_iqm_ext.devices",
    "Apollo": "cirq_iqm_ext.devices",
    "Garnet": "cirq_iqm_ext.devices",
    "Aphrodite": "cirq_iqm_ext.devices",
    "Deneb": "cirq_iqm_ext.devices",
    "star_device": "cirq_iqm_ext.devices",
    "IQMMoveGate": "cirq_iqm_ext.move",
    "IQMJob": "cirq_iqm_ext.job",
    "JobAbortedError": "cirq_iqm_ext.job",
    "json_resolver": "cirq_iqm_ext.json_resolver",
    "IQMNoiseModel": "cirq_iqm_ext.noise",
    "local_sampler": "cirq_iqm_ext.noise",
    "circuit_from_qasm": "cirq_iqm_ext.qasm",
    "IQMResult": "cirq_iqm_ext.results",
    "IQMSampler": "cirq_iqm_ext.sampler",
    "CalibrationDriftWarning": "cirq_iqm_ext.sampler",
    "serialize_circuit": "cirq_iqm_ext.serialize",
    "TranspileResult": "cirq_iqm_ext.transpiler",
    "transpile": "cirq_iqm_ext.transpiler",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cirq_iqm_ext' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "APITimeoutError",
    "Adonis",
    "Aphrodite",
    "Apollo",
    "CalibrationDriftWarning",
    "Circuit",
    "CircuitExecutionError",
    "CircuitValidationError",
    "ClientAuthenticationError",
    "ClientConfigurationError",
    "CompilationError",
    "Deneb",
    "DeviceValidationError",
    "Garnet",
    "HeraldingMode",
    "IQMBarrierGate",
    "IQMClient",
    "IQMConnectionError",
    "IQMDevice",
    "IQMDeviceMetadata",
    "IQMError",
    "IQMJob",
    "IQMMoveGate",
    "IQMNoiseModel",
    "IQMResult",
    "IQMSampler",
    "IQMServerWarning",
    "Instruction",
    "JobAbortedError",
    "JobAbortionError",
    "JobError",
    "JobNotFoundError",
    "JobSubmissionUncertainError",
    "ModelValidationError",
    "QuantumArchitectureSpecification",
    "RunRequest",
    "RunResult",
    "RunStatus",
    "ServerResponseError",
    "SingleQubitMapping",
    "Status",
    "TranspileResult",
    "__version__",
    "barrier",
    "circuit_from_qasm",
    "json_resolver",
    "local_sampler",
    "serialize_circuit",
    "star_device",
    "transpile",
]
