"""cirq_iqm_ext: run Cirq programs on IQM quantum computers.

The top level exports the public API. Importing it is cheap: the parts that pull in heavy
dependencies (the HTTP client, the compiler, the sampler, the server) are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cirq_iqm_ext import _compat
from cirq_iqm_ext._version import __version__
from cirq_iqm_ext.errors import (
    APITimeoutError,
    CircuitExecutionError,
    CircuitValidationError,
    ClientAuthenticationError,
    ClientConfigurationError,
    CompilationError,
    DeviceValidationError,
    IQMConnectionError,
    IQMError,
    JobAbortedError,
    JobAbortionError,
    JobError,
    JobNotFoundError,
    JobSubmissionUncertainError,
    ModelValidationError,
    ServerResponseError,
)
from cirq_iqm_ext.wire.models import (
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
    from cirq_iqm_ext.client.iqm_client import IQMClient, IQMServerWarning
    from cirq_iqm_ext.compiler.qasm import circuit_from_qasm
    from cirq_iqm_ext.compiler.transpiler import TranspileResult, transpile
    from cirq_iqm_ext.device.barriers import IQMBarrierGate, barrier
    from cirq_iqm_ext.device.builtin import Adonis, Aphrodite, Apollo, Deneb, Garnet, star_device
    from cirq_iqm_ext.device.iqm_device import IQMDevice, IQMDeviceMetadata
    from cirq_iqm_ext.device.move_gate import IQMMoveGate
    from cirq_iqm_ext.json_resolver import json_resolver
    from cirq_iqm_ext.sampling.job import IQMJob
    from cirq_iqm_ext.sampling.local import local_sampler
    from cirq_iqm_ext.sampling.results import IQMResult
    from cirq_iqm_ext.sampling.sampler import CalibrationDriftWarning, IQMSampler
    from cirq_iqm_ext.serialization.serialize import serialize_circuit
    from cirq_iqm_ext.simulation.noise import IQMNoiseModel

#: Public name -> the module that defines it, imported when the name is first used.
_LAZY: dict[str, str] = {
    "IQMBarrierGate": "cirq_iqm_ext.device.barriers",
    "barrier": "cirq_iqm_ext.device.barriers",
    "IQMClient": "cirq_iqm_ext.client.iqm_client",
    "IQMServerWarning": "cirq_iqm_ext.client.iqm_client",
    "IQMDevice": "cirq_iqm_ext.device.iqm_device",
    "IQMDeviceMetadata": "cirq_iqm_ext.device.iqm_device",
    "Adonis": "cirq_iqm_ext.device.builtin",
    "Apollo": "cirq_iqm_ext.device.builtin",
    "Garnet": "cirq_iqm_ext.device.builtin",
    "Aphrodite": "cirq_iqm_ext.device.builtin",
    "Deneb": "cirq_iqm_ext.device.builtin",
    "star_device": "cirq_iqm_ext.device.builtin",
    "IQMMoveGate": "cirq_iqm_ext.device.move_gate",
    "IQMJob": "cirq_iqm_ext.sampling.job",
    "json_resolver": "cirq_iqm_ext.json_resolver",
    "IQMNoiseModel": "cirq_iqm_ext.simulation.noise",
    "local_sampler": "cirq_iqm_ext.sampling.local",
    "circuit_from_qasm": "cirq_iqm_ext.compiler.qasm",
    "IQMResult": "cirq_iqm_ext.sampling.results",
    "IQMSampler": "cirq_iqm_ext.sampling.sampler",
    "CalibrationDriftWarning": "cirq_iqm_ext.sampling.sampler",
    "serialize_circuit": "cirq_iqm_ext.serialization.serialize",
    "TranspileResult": "cirq_iqm_ext.compiler.transpiler",
    "transpile": "cirq_iqm_ext.compiler.transpiler",
}


_compat.install()


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        moved = _compat.old_submodule(name)  # e.g. ``cirq_iqm_ext.devices.Garnet()`` in old reprs
        if moved is None:
            raise AttributeError(f"module 'cirq_iqm_ext' has no attribute {name!r}")
        return moved
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
