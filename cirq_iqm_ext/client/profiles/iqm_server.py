"""The ``iqm-server`` profile: the IQM Server API of PROTOCOL_IQM_SERVER.md (clients 33-36).

Paths live under ``<root>/api/v1/``, a quantum computer is chosen by alias (§1.2), jobs are
submitted to ``jobs/{qc}/circuit`` and read back from ``jobs/{id}`` plus separate artifacts.
Everything is converted at this edge (:mod:`.iqm_server_format`): run requests from v1 form and
turns to a job definition in radians, JobData statuses to v1 statuses, the dynamic architecture
of a calibration set to a :class:`~cirq_iqm_ext.QuantumArchitectureSpecification`, and the
artifacts plus the echoed job definition (``jobs/{id}/payload``) to a v1
:class:`~cirq_iqm_ext.RunResult`, so the sampler's result reconstruction works unchanged.

The default calibration set is resolved once (``default`` → its concrete id) and sent with every
job, and dynamic architectures are cached per calibration set (§9.3). Status requests are plain
polls: long polling and packed measurements are extensions of the project's v1 server only.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any
from uuid import UUID

import numpy as np

from cirq_iqm_ext.client.json_codec import decode_measurements, loads
from cirq_iqm_ext.client.profiles.base import Submission, Wire
from cirq_iqm_ext.client.profiles.cocos_v1 import abort_job, delete_job, job_id_of
from cirq_iqm_ext.errors import (
    ClientConfigurationError,
    ModelValidationError,
    ServerResponseError,
)
from cirq_iqm_ext.wire.channel_properties import (
    PROTOBUF_MEDIA_TYPE,
    ChannelPropertiesError,
    decode_feedback_sources,
    feedback_groups_from_sources,
)
from cirq_iqm_ext.wire.iqm_server_format import (
    COMPLETED,
    architecture_from_dqa,
    counts_batch_items,
    metrics_from_observation_set,
    run_request_from_job_definition,
    run_request_to_job_definition,
    status_from_iqm_server,
    timestamps_from_timeline,
)
from cirq_iqm_ext.wire.job_data import JobData
from cirq_iqm_ext.wire.models import (
    Metadata,
    QuantumArchitectureSpecification,
    RunResult,
    RunStatus,
)
from cirq_iqm_ext.wire.protocol import PROBE_PATH

logger = logging.getLogger(__name__)

API = "api/v1"
#: Echoed job definitions kept per job (they never change); older ones are dropped first.
PAYLOAD_CACHE_SIZE = 64


class IQMServerProfile:
    """The IQM Server API behind the client's operations.

    Args:
        wire: The client's request sender and error mapping.
        quantum_computer: Alias of the quantum computer (``None``: the server's only one).
    """

    name = "iqm-server"

    def __init__(self, wire: Wire, *, quantum_computer: str | None = None):
        self._wire = wire
        self._requested_qc = quantum_computer
        self._qc: dict[str, Any] | None = None
        self._default_cs: UUID | None = None
        self._dqa: dict[UUID, QuantumArchitectureSpecification] = {}
        self._payloads: OrderedDict[UUID, dict[str, Any]] = OrderedDict()
        self._lock = threading.RLock()

    @property
    def quantum_computer(self) -> str | None:
        """The chosen quantum computer's alias, once known (else the one asked for, if any)."""
        return self._qc["alias"] if self._qc else self._requested_qc

    # ------------------------------------------------------------------ helpers

    def _get(
        self, path: str, job_id: UUID | None = None, params: Mapping[str, str] | None = None
    ) -> tuple[Any, str]:
        endpoint = f"GET {path}"
        response = self._wire.request("GET", f"{API}/{path}", params=params, job_id=job_id)
        self._wire.check(response, endpoint, job_id=job_id)
        return self._wire.json(response, endpoint, job_id), endpoint

    def remember_quantum_computers(self, data: Mapping[str, Any], endpoint: str) -> None:
        """Chooses the quantum computer from an answer of ``GET quantum-computers`` (§1.2).

        Raises:
            ClientConfigurationError: The requested alias is not listed, or none was requested
                and the server has several.
            ServerResponseError: The answer is malformed.
        """
        listed = data.get("quantum_computers")
        if not isinstance(listed, list) or not all(
            isinstance(qc, Mapping) and isinstance(qc.get("alias"), str) for qc in listed
        ):
            raise ServerResponseError(
                f'The answer to {endpoint} has no list of "quantum_computers" with aliases',
                endpoint=endpoint,
            )
        aliases = [qc["alias"] for qc in listed]
        if self._requested_qc is not None:
            if self._requested_qc not in aliases:
                raise ClientConfigurationError(
                    f'Quantum computer "{self._requested_qc}" does not exist. Available quantum '
                    f"computers are: {', '.join(aliases) or 'none'}"
                )
            chosen = listed[aliases.index(self._requested_qc)]
        elif len(listed) == 1:
            chosen = listed[0]
        else:
            raise ClientConfigurationError(
                "Quantum computer not selected. Pass quantum_computer= or set "
                f"IQM_QUANTUM_COMPUTER to one of: {', '.join(aliases) or 'none'}"
            )
        self._qc = dict(chosen)

    def _alias(self) -> str:
        with self._lock:
            if self._qc is None:
                data, endpoint = self._get(PROBE_PATH.removeprefix(f"{API}/"))
                if not isinstance(data, Mapping):
                    raise ServerResponseError(
                        f"The answer to {endpoint} is not an object", endpoint=endpoint
                    )
                self.remember_quantum_computers(data, endpoint)
            assert self._qc is not None
            return str(self._qc["alias"])

    def _architecture_name(self) -> str:
        # The DQA has no name; the QC's display name (without a note in brackets) stands in.
        self._alias()
        assert self._qc is not None
        display = self._qc.get("display_name")
        if isinstance(display, str) and display.strip():
            return display.split(" (")[0].strip()
        return str(self._qc["alias"])

    def default_calibration_set_id(self) -> UUID:
        """The default calibration set's concrete id, resolved once (``default`` → its id)."""
        with self._lock:
            if self._default_cs is None:
                self.dynamic_architecture(None)
            assert self._default_cs is not None
            return self._default_cs

    # ------------------------------------------------------------------ architecture

    def architecture(self) -> QuantumArchitectureSpecification:
        """The DQA of the default calibration set as a v1 architecture."""
        return self.dynamic_architecture(None)

    def dynamic_architecture(
        self, calibration_set_id: UUID | None
    ) -> QuantumArchitectureSpecification:
        """``GET calibration-sets/{qc}/{cs}/dynamic-quantum-architecture``, cached per set."""
        with self._lock:
            cs = calibration_set_id if calibration_set_id is not None else self._default_cs
            if cs is not None and cs in self._dqa:
                return self._dqa[cs]
            alias = self._alias()
            path = f"calibration-sets/{alias}/{cs or 'default'}/dynamic-quantum-architecture"
            data, endpoint = self._get(path)
            try:
                spec = architecture_from_dqa(data, self._architecture_name())
            except (ModelValidationError, TypeError, AttributeError) as error:
                raise ServerResponseError(
                    f"The dynamic architecture from {endpoint} is malformed: {error}",
                    endpoint=endpoint,
                ) from None
            if spec.calibration_set_id is None:
                raise ServerResponseError(
                    f'The dynamic architecture from {endpoint} has no "calibration_set_id"',
                    endpoint=endpoint,
                )
            if calibration_set_id is None and self._default_cs is None:
                self._default_cs = spec.calibration_set_id
            self._dqa[spec.calibration_set_id] = spec
            return spec

    # ------------------------------------------------------------------ jobs

    def submit(self, payload: Mapping[str, Any] | bytes, idempotency_key: str) -> UUID:
        """``POST jobs/{qc}/circuit`` with the run request converted to a job definition."""
        request = loads(payload) if isinstance(payload, bytes) else payload
        if request.get("custom_settings"):
            warnings.warn(
                "custom_settings are not part of the IQM Server API and were not sent",
                UserWarning,
                stacklevel=4,
            )
        cal = None if request.get("calibration_set_id") else self.default_calibration_set_id()
        body = run_request_to_job_definition(request, cal)
        # As client 36: the queue is a query parameter of the submission, not a job field.
        timeslot = request.get("use_timeslot")
        if timeslot is not None and not isinstance(timeslot, bool):
            raise ClientConfigurationError(f"use_timeslot must be true or false, got {timeslot!r}")
        path = f"jobs/{self._alias()}/circuit"
        endpoint = f"POST {path}"
        response = self._wire.request(
            "POST",
            f"{API}/{path}",
            json_body=body,
            params={"use_timeslot": "true" if timeslot else "false"},
            submission=Submission(idempotency_key),
        )
        self._wire.check(response, endpoint, submission=True)
        job_id = job_id_of(self._wire, response, endpoint, idempotency_key)
        # The result needs the request in v1 form; this client sent it, so it is not fetched
        # back from jobs/{id}/payload. Read back from what was sent, as the echo would be.
        self._remember_payload(job_id, run_request_from_job_definition(body))
        return job_id

    def _remember_payload(self, job_id: UUID, request: dict[str, Any]) -> None:
        with self._lock:
            self._payloads[job_id] = request
            self._payloads.move_to_end(job_id)
            while len(self._payloads) > PAYLOAD_CACHE_SIZE:
                self._payloads.popitem(last=False)

    def _job_data(self, job_id: UUID) -> tuple[dict[str, Any], str]:
        data, endpoint = self._get(f"jobs/{job_id}", job_id)
        if not isinstance(data, Mapping) or not isinstance(data.get("status"), str):
            raise ServerResponseError(
                f'The answer to {endpoint} has no "status"', endpoint=endpoint, job_id=job_id
            )
        return dict(data), endpoint

    @staticmethod
    def _run_status(data: Mapping[str, Any]) -> RunStatus:
        """JobData (parsed once) as a v1 status: state, errors, messages and progress."""
        job = JobData.from_dict(data)
        circuits = job.progress.get("circuits")
        return RunStatus(
            status_from_iqm_server(job.status, data.get("compilation")),
            "; ".join(job.errors) or None,
            job.messages,
            queue_position=job.queue_position,
            circuits_done=None if circuits is None else circuits.done,
            circuits_total=None if circuits is None else circuits.total,
        )

    def status(self, job_id: UUID, wait: float) -> tuple[RunStatus, bool]:
        """``GET jobs/{id}`` as a v1 status (no long polling in this API), with its progress."""
        data, _ = self._job_data(job_id)
        return self._run_status(data), False

    def _payload(self, job_id: UUID) -> dict[str, Any]:
        with self._lock:
            cached = self._payloads.get(job_id)
            if cached is not None:
                self._payloads.move_to_end(job_id)
                return cached
        data, endpoint = self._get(f"jobs/{job_id}/payload", job_id)
        if not isinstance(data, Mapping) or not isinstance(data.get("circuits"), list):
            raise ServerResponseError(
                f'The answer to {endpoint} has no "circuits"', endpoint=endpoint, job_id=job_id
            )
        request = run_request_from_job_definition(data)
        self._remember_payload(job_id, request)
        return request

    def result(self, job_id: UUID) -> RunResult:
        """JobData, the echoed job definition and, once completed, the measurements artifact."""
        data, endpoint = self._job_data(job_id)
        run_status = self._run_status(data)
        status, message, messages = run_status.status, run_status.message, run_status.warnings
        measurements = None
        if data["status"] == COMPLETED:
            measurements = self._measurements(job_id)
        compilation = data.get("compilation")
        cal = compilation.get("calibration_set_id") if isinstance(compilation, Mapping) else None
        try:
            metadata = Metadata.from_dict(
                {
                    "request": self._payload(job_id),
                    "calibration_set_id": cal,
                    "timestamps": timestamps_from_timeline(data.get("timeline")),
                }
            )
            return RunResult(status, metadata, measurements, message, messages)
        except ModelValidationError as error:
            raise ServerResponseError(
                f"Malformed answer to {endpoint}: {error}", endpoint=endpoint, job_id=job_id
            ) from None

    def _measurements(self, job_id: UUID) -> list[dict[str, Any]]:
        """The ``measurements`` artifact, decoded straight into ``int8`` arrays."""
        path = f"jobs/{job_id}/artifacts/measurements"
        endpoint = f"GET {path}"
        response = self._wire.request("GET", f"{API}/{path}", job_id=job_id)
        self._wire.check(response, endpoint, job_id=job_id)
        try:
            raw = decode_measurements(response.content)
        except ValueError:
            raw = self._wire.json(response, endpoint, job_id)  # raises, naming the endpoint
        if not isinstance(raw, list) or not all(
            isinstance(circuit, Mapping)
            and all(isinstance(shots, (np.ndarray, list)) for shots in circuit.values())
            for circuit in raw
        ):
            raise ServerResponseError(
                f"The answer to {endpoint} is not a list of objects mapping keys to shots",
                endpoint=endpoint,
                job_id=job_id,
            )
        return raw

    def metrics(self, calibration_set_id: UUID | None) -> dict[str, Any]:
        """``GET calibration-sets/{qc}/{cs}/metrics``, converted to v1's metrics form."""
        which = "default" if calibration_set_id is None else str(calibration_set_id)
        data, endpoint = self._get(f"calibration-sets/{self._alias()}/{which}/metrics")
        try:
            return metrics_from_observation_set(data)
        except ValueError as error:
            raise ServerResponseError(
                f"Malformed answer to {endpoint}: {error}", endpoint=endpoint
            ) from None

    def counts(self, job_id: UUID) -> dict[str, Any]:
        """JobData's status plus, once completed, the ``measurement_counts`` artifact."""
        data, _ = self._job_data(job_id)
        run_status = self._run_status(data)
        status, messages = run_status.status, run_status.warnings
        out: dict[str, Any] = {"status": status.value, "counts_batch": None}
        if data["status"] == COMPLETED:
            raw, endpoint = self._get(f"jobs/{job_id}/artifacts/measurement_counts", job_id)
            try:
                out["counts_batch"] = counts_batch_items(raw)
            except ValueError as error:
                raise ServerResponseError(
                    f"Malformed answer to {endpoint}: {error}", endpoint=endpoint, job_id=job_id
                ) from None
        if messages:
            out["warnings"] = list(messages)
        return out

    def abort(self, job_id: UUID) -> None:
        """``POST jobs/{id}/cancel``; a finished job keeps its status and this succeeds (§4.3)."""
        abort_job(self._wire, f"{API}/jobs/{job_id}/cancel", job_id)

    def delete(self, job_id: UUID) -> None:
        """``DELETE jobs/{id}`` (E8): cancels if needed and removes the job; then it is 404."""
        delete_job(self._wire, f"{API}/jobs/{job_id}", job_id)
        with self._lock:
            self._payloads.pop(job_id, None)

    def feedback_groups(self) -> tuple[frozenset[str], ...] | None:
        """The feedback groups from ``quantum-computers/{qc}/artifacts/channel-properties``.

        Read as client 36's ``get_feedback_groups()`` reads them: the qubits whose drive
        channels share a fast-feedback source form a group. ``None`` when the server has no
        channel properties (404).
        """
        path = f"quantum-computers/{self._alias()}/artifacts/channel-properties"
        endpoint = f"GET {path}"
        response = self._wire.request(
            "GET", f"{API}/{path}", extra_headers={"Accept": PROTOBUF_MEDIA_TYPE}
        )
        if response.status_code == 404:
            return None
        self._wire.check(response, endpoint)
        try:
            sources = decode_feedback_sources(response.content)
        except ChannelPropertiesError as error:
            raise ServerResponseError(
                f"The channel properties from {endpoint} are malformed: {error}",
                endpoint=endpoint,
            ) from None
        architecture = self.architecture()
        resonators = set(architecture.computational_resonators)
        qubits = [q for q in architecture.qubits if q not in resonators]
        return feedback_groups_from_sources(sources, qubits)
