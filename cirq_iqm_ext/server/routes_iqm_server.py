"""The IQM Server API (PROTOCOL_IQM_SERVER.md) over a :class:`~cirq_iqm_ext.server.core.ServerCore`.

Request and response adapters over the one core that CoCoS v1 serves too: a job definition is
converted to the canonical v1 run request (turns, ``qubits``) by
:mod:`cirq_iqm_ext.wire.iqm_server_format` and then takes exactly the v1 path
(:meth:`~cirq_iqm_ext.server.core.ServerCore.submit`: limits, calibration set, validation,
duration, idempotency, queue). Every answer is built from the core's job snapshots, so a job
submitted through one API reads the same through the other (§9.2).

The routes are everything under ``/api/v1/`` plus ``GET /about``. Errors carry the body of §7.1
(``message``, ``detail``, ``error_code``, ``source``); 422 is never used.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from cirq_iqm_ext._version import __version__
from cirq_iqm_ext.calibration import DEFAULT_IMPLEMENTATIONS, CalibrationSet
from cirq_iqm_ext.errors import ModelValidationError
from cirq_iqm_ext.server.admission import AdmissionError
from cirq_iqm_ext.server.auth import Authenticator, identity_of
from cirq_iqm_ext.server.core import ServerCore, UnknownCalibrationError
from cirq_iqm_ext.server.framework import (
    Handler,
    HTTPError,
    Request,
    Response,
    Router,
    Streamed,
    parse_json,
    read_body,
)
from cirq_iqm_ext.server.jobs import ExpiredJobError, JobFinishedError, UnknownJobError
from cirq_iqm_ext.server.result_json import iter_measurements_json
from cirq_iqm_ext.server.retention import expiry_message
from cirq_iqm_ext.wire.channel_properties import PROTOBUF_MEDIA_TYPE, encode_feedback_channels
from cirq_iqm_ext.wire.iqm_server_format import (
    COMPLETED,
    JobDefinitionError,
    job_definition_from_run_request,
    job_definition_to_run_request,
    static_architecture_item,
    status_to_iqm_server,
    timeline_from_timestamps,
)
from cirq_iqm_ext.wire.job_data import COMPLETED_ARTIFACTS, JobData, Progress
from cirq_iqm_ext.wire.models import RunRequest, RunResult, Status
from cirq_iqm_ext.wire.protocol import (
    COCOS_V1_HEADER,
    IDEMPOTENCY_KEY_HEADER,
    IDEMPOTENCY_SUPPORT_HEADER,
    IDEMPOTENCY_SUPPORT_VALUE,
)

logger = logging.getLogger(__name__)

_DEDUPLICATES = (IDEMPOTENCY_SUPPORT_HEADER, IDEMPOTENCY_SUPPORT_VALUE)

SOURCE = "iqm-server"
#: ``error_code`` of §7.2 by HTTP status (400 may also be ``circuit_validation_error``).
ERROR_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "not_found",
    409: "artifact_not_available",
    411: "invalid_request",
    413: "payload_too_large",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}
#: The §7.1 ``error_code`` of each way the shared submission path refuses a job.
ADMISSION_CODES = {
    "validation": "circuit_validation_error",
    "duration": "circuit_validation_error",
    "idempotency": "invalid_request",
}
#: Simulated figures carry a fixed, reproducible time.
OBSERVATION_TIME = "2026-01-01T00:00:00.000Z"
#: One observation of a calibration or quality-metric set: field, value and unit.
Observation = tuple[str, float, str]


def error(status: int, message: str, code: str | None = None, **kw: Any) -> HTTPError:
    """An error answer with the body of §7.1."""
    body = {
        "message": message,
        "detail": message,
        "error_code": code or ERROR_CODES.get(status),
        "source": SOURCE,
    }
    return HTTPError(status, message, body=body, **kw)


class IQMServerRoutes:
    """The handlers of the IQM Server API; the one quantum computer is the core's architecture.

    Args:
        core: What is served.
        auth: Checks the bearer token of the protected routes.
    """

    def __init__(self, core: ServerCore, auth: Authenticator):
        self.core = core
        self.auth = auth
        name = core.architecture.name
        self.alias = name.lower()
        self.qc_id = uuid5(NAMESPACE_URL, f"cirq-iqm-ext/quantum-computer/{self.alias}")
        self.display_name = f"{name} (simulated)"
        self.dut_label = f"M000-{name}-sim"

    # ------------------------------------------------------------------ routing

    def add_to(self, router: Router) -> None:
        """Registers the routes on ``router`` (``{x}`` matches one path segment)."""
        qc = "api/v1/quantum-computers/{qc}"
        cal = "api/v1/calibration-sets/{qc}/{cs}"
        job = "api/v1/jobs/{id}"
        table: list[tuple[str, str, Handler, bool]] = [
            ("GET", "about", self.about, False),
            ("GET", "api/v1/about", self.about, False),
            ("GET", "api/v1/quantum-computers", self.quantum_computers, True),
            ("GET", f"{qc}/health", self.health, True),
            ("GET", f"{qc}/artifacts/about", self.qc_about, True),
            ("GET", f"{qc}/artifacts/duts", self.duts, True),
            ("GET", f"{qc}/artifacts/static-quantum-architectures", self.sqa, True),
            ("GET", f"{qc}/artifacts/channel-properties", self.channel_properties, True),
            ("GET", f"{cal}/dynamic-quantum-architecture", self.dqa, True),
            ("GET", cal, self.calibration_set, True),
            ("GET", f"{cal}/metrics", self.metrics, True),
            ("POST", "api/v1/jobs/{qc}/circuit", self.submit, True),
            ("GET", job, self.job, True),
            ("DELETE", job, self.delete, True),
            ("GET", f"{job}/payload", self.payload, True),
            ("POST", f"{job}/cancel", self.cancel, True),
            ("GET", f"{job}/artifacts/measurements", self.measurements, True),
            ("GET", f"{job}/artifacts/measurement_counts", self.counts, True),
        ]
        for method, pattern, handler, needs_auth in table:
            router.add(method, pattern, self._guard(handler, needs_auth))

    def _guard(self, handler: Handler, needs_auth: bool) -> Handler:
        # Authentication is checked inside the guard, so that its errors get this API's body.
        def guarded(request: Request) -> Response:
            try:
                if needs_auth:
                    self.auth.check(request)
                response = handler(request)
            except HTTPError as failure:
                if "error_code" in failure.body:
                    raise
                raise error(failure.status, failure.detail, headers=failure.headers) from None
            # Every answer says that POST jobs deduplicates on Idempotency-Key, so a client knows
            # it before its first submission and can resend an ambiguous one with its key.
            return Response(response.status, response.body, [*response.headers, _DEDUPLICATES])

        return guarded

    # ------------------------------------------------------------------ lookups

    def _check_qc(self, request: Request) -> None:
        if request.params["qc"] != self.alias:
            raise error(404, f'Quantum computer "{request.params["qc"]}" not found')

    def _calibration(self, request: Request) -> CalibrationSet:
        self._check_qc(request)
        raw = request.params["cs"]
        found = self.core.calibration(raw, alias="default")
        if found is None:
            raise error(404, f"Calibration set {raw} not found")
        return found

    def _result(self, job_id: UUID, *, measurements: bool = False) -> RunResult:
        # Measurements only for the one route that sends them: status answers stay cheap.
        try:
            result = self.core.result(job_id, measurements=measurements)
        except ExpiredJobError as expired:
            raise _expired(expired) from None
        except UnknownJobError:
            raise error(404, f"Job {job_id} not found") from None
        if result.status == Status.DELETED:  # §4.3: gone for this API
            raise error(404, f"Job {job_id} not found: it was deleted")
        return result

    # ------------------------------------------------------------------ about, QCs, architecture

    def about(self, request: Request) -> Response:
        """``GET about``."""
        return Response(200, {"name": "cirq-iqm-ext server", "version": __version__})

    def qc_about(self, request: Request) -> Response:
        """``GET .../artifacts/about``: software versions."""
        self._check_qc(request)
        body = {"version": __version__, "software_versions": {"cirq-iqm-ext": __version__}}
        return Response(200, body)

    def health(self, request: Request) -> Response:
        """``GET .../health``."""
        self._check_qc(request)
        return Response(200, {"status": "ok"})

    def quantum_computers(self, request: Request) -> Response:
        """``GET api/v1/quantum-computers``: the one simulated quantum computer."""
        qc = {
            "id": str(self.qc_id),
            "alias": self.alias,
            "display_name": self.display_name,
            "proxy_path": None,  # explicit: "" or absent make client 36 rewrite its paths
        }
        # The v1 API serves the same (sole) quantum computer at the root: say so for "auto".
        return Response(200, {"quantum_computers": [qc]}, [(COCOS_V1_HEADER, "/")])

    def duts(self, request: Request) -> Response:
        """``GET .../artifacts/duts``."""
        self._check_qc(request)
        return Response(200, [{"label": self.dut_label, "dut_type": "chip"}])

    def sqa(self, request: Request) -> Response:
        """``GET .../artifacts/static-quantum-architectures``."""
        self._check_qc(request)
        return Response(200, [static_architecture_item(self.core.architecture, self.dut_label)])

    def channel_properties(self, request: Request) -> Response:
        """``GET .../artifacts/channel-properties``: the feedback routing (protobuf).

        Client 36's ``get_feedback_groups()`` reads the fast-feedback sources of the drive
        channels; only the feedback routing is described, nothing pulse-level.
        """
        self._check_qc(request)
        if not self.core.dynamic:
            raise error(404, "This server runs no dynamic circuits, so it has no feedback")
        architecture = self.core.architecture
        resonators = set(architecture.computational_resonators)
        qubits = [q for q in architecture.qubits if q not in resonators]
        body = encode_feedback_channels(qubits, self.core.feedback_groups)
        return Response(200, body, [("Content-Type", PROTOBUF_MEDIA_TYPE)])

    def dqa(self, request: Request) -> Response:
        """``GET .../dynamic-quantum-architecture`` of a calibration set."""
        calibration = self._calibration(request)
        body = calibration.dynamic_architecture(self.core.architecture)
        resonators = set(body["computational_resonators"])
        for gate in body["gates"].values():
            for implementation in gate["implementations"].values():
                # Client 36's MOVE transpiler wants qubit-resonator loci as (qubit, resonator).
                implementation["loci"] = [
                    sorted(locus, key=lambda c: c in resonators) if len(locus) == 2 else locus
                    for locus in implementation["loci"]
                ]
        return Response(200, body)

    def calibration_set(self, request: Request) -> Response:
        """``GET api/v1/calibration-sets/{qc}/{cs}``: the gate durations as observations."""
        calibration = self._calibration(request)
        body = self._observation_set(
            calibration, "calibration-set", _duration_observations(calibration), None
        )
        return Response(200, body)

    def metrics(self, request: Request) -> Response:
        """``GET .../metrics``: coherence times and fidelities as a quality-metric set."""
        calibration = self._calibration(request)
        body = self._observation_set(
            calibration,
            "quality-metric-set",
            _metric_observations(calibration),
            calibration.calibration_set_id,
        )
        return Response(200, body)

    def _observation_set(
        self,
        calibration: CalibrationSet,
        kind: str,
        observations: list[Observation],
        describes: UUID | None,
    ) -> dict[str, Any]:
        set_id = (
            calibration.calibration_set_id
            if kind == "calibration-set"
            else uuid5(calibration.calibration_set_id, kind)
        )
        return {
            "observation_set_id": str(set_id),
            "observation_set_type": kind,
            "describes_id": None if describes is None else str(describes),
            "invalid": False,
            "dut_label": self.dut_label,
            "created_timestamp": OBSERVATION_TIME,
            "end_timestamp": OBSERVATION_TIME,
            "observations": [
                {
                    "observation_id": number,
                    "dut_field": field,
                    "value": float(value),
                    "unit": unit,
                    "uncertainty": None,
                    "invalid": False,
                    "created_timestamp": OBSERVATION_TIME,
                    "modified_timestamp": OBSERVATION_TIME,
                }
                for number, (field, value, unit) in enumerate(observations, start=1)
            ],
        }

    def _job_id(self, request: Request) -> UUID:
        """The job id of the path, when the caller may see that job (else 404, as unknown)."""
        job_id = _parse_job_id(request)
        try:
            self.core.check_owner(job_id, identity_of(request))
        except ExpiredJobError as expired:
            raise _expired(expired) from None
        except UnknownJobError:
            raise error(404, f"Job {job_id} not found") from None
        return job_id

    # ------------------------------------------------------------------ jobs

    def submit(self, request: Request) -> Response:
        """``POST api/v1/jobs/{qc}/circuit``: JobData of the new (or repeated) job."""
        self._check_qc(request)
        raw = read_body(request, self.core.limits.max_body_bytes)
        data = parse_json(raw)
        try:
            request_dict, options = job_definition_to_run_request(data)
        except JobDefinitionError as failure:
            raise error(400, failure.message, failure.error_code) from None
        try:
            run_request = RunRequest.from_dict(request_dict)
        except ModelValidationError as failure:
            raise error(400, str(failure), "circuit_validation_error") from None
        try:
            job, _ = self.core.submit(
                run_request,
                idempotency_key=request.header(IDEMPOTENCY_KEY_HEADER) or None,
                owner=identity_of(request),
                move_gate_validation=options["move_gate_validation"],
                body=raw,
            )
        except UnknownCalibrationError as failure:
            raise error(404, f"Calibration set {failure.calibration_set_id} not found") from None
        except AdmissionError as failure:
            code = ADMISSION_CODES.get(failure.kind)
            raise error(failure.status, failure.detail, code, headers=failure.headers) from None
        return Response(200, self.job_data(job.id))

    def job_data(self, job_id: UUID) -> dict[str, Any]:
        """JobData (§4.1) of a stored job, whichever API submitted it.

        Raises:
            HTTPError: 404 for an unknown or deleted job.
        """
        result = self._result(job_id)
        timestamps = result.metadata.timestamps
        status = status_to_iqm_server(result.status.value, timestamps)
        calibration = result.metadata.calibration_set_id
        return JobData(
            id=str(job_id),
            status=status,
            # 0 for a waiting job a worker has just taken off the queue.
            queue_position=(self.core.queue_position(job_id) or 0) if status == "waiting" else None,
            progress={"circuits": self._progress(job_id, result)} if status == "processing" else {},
            calibration_set_id=(str(calibration) if "compile_end" in timestamps else None),
            messages=result.warnings,
            errors=(result.message or "The job failed",) if status == "failed" else (),
            timeline=tuple(timeline_from_timestamps(timestamps, status, SOURCE)),
            artifacts=COMPLETED_ARTIFACTS if status == COMPLETED else (),
            source=SOURCE,
        ).to_dict()

    def _progress(self, job_id: UUID, result: RunResult) -> Progress:
        """The circuits of a processing job executed so far (all of them once it has run)."""
        total = len(result.metadata.request_dict.get("circuits") or [])
        if "execution_end" in result.metadata.timestamps:
            return Progress(total, total)
        counted = self.core.progress(job_id)
        return Progress(counted[0] if counted else 0, total)

    def job(self, request: Request) -> Response:
        """``GET api/v1/jobs/{id}``: JobData."""
        return Response(200, self.job_data(self._job_id(request)))

    def payload(self, request: Request) -> Response:
        """``GET .../payload``: the job definition, echoed from the stored request."""
        result = self._result(self._job_id(request))
        # The stored request carries the job's options (RunRequest fields), so this is the echo.
        return Response(200, job_definition_from_run_request(result.metadata.request_dict))

    def _completed(self, job_id: UUID, *, measurements: bool = False) -> RunResult:
        result = self._result(job_id, measurements=measurements)
        if result.status != Status.READY:
            status = status_to_iqm_server(result.status.value, result.metadata.timestamps)
            raise error(409, f"Job {job_id} is {status}: its artifacts are not available")
        return result

    def measurements(self, request: Request) -> Response:
        """``GET .../artifacts/measurements``: 409 until the job is completed."""
        job_id = self._job_id(request)
        self._completed(job_id)
        try:
            arrays = self.core.measurement_arrays(job_id)
        except UnknownJobError:  # evicted meanwhile
            arrays = None
        if arrays is None:  # deleted, aborted or evicted meanwhile: answer what it is now
            self._completed(job_id)
            raise error(404, f"Job {job_id} not found")
        # Written from the arrays (no lists) and streamed a piece at a time.
        return Response(200, Streamed(iter_measurements_json(arrays)))

    def counts(self, request: Request) -> Response:
        """``GET .../artifacts/measurement_counts``: 409 until the job is completed."""
        job_id = self._job_id(request)
        self._completed(job_id)
        return Response(200, self.core.counts_dict(job_id)["counts_batch"])

    def cancel(self, request: Request) -> Response:
        """``POST .../cancel``: succeeds for a terminal job too, which keeps its status (§4.3)."""
        job_id = self._job_id(request)
        self._result(job_id)  # 404 for an unknown or deleted job
        try:
            self.core.abort(job_id)
        except UnknownJobError:
            raise error(404, f"Job {job_id} not found") from None
        except JobFinishedError:
            pass
        return Response(200, {})

    def delete(self, request: Request) -> Response:
        """``DELETE api/v1/jobs/{id}``: 404 for an unknown or already deleted job (§4.3)."""
        job_id = self._job_id(request)
        self._result(job_id)
        try:
            self.core.delete(job_id)
        except UnknownJobError:
            raise error(404, f"Job {job_id} not found") from None
        return Response(200, {})


def _expired(expired: ExpiredJobError) -> HTTPError:
    """404 (§7.2 has no 410; client 36 reads 410 as an internal error) saying it expired."""
    return error(404, expiry_message(expired.job_id, expired.tombstone))


def _parse_job_id(request: Request) -> UUID:
    try:
        return UUID(request.params["id"])
    except ValueError:
        raise error(404, "Job not found") from None


def _duration_observations(calibration: CalibrationSet) -> list[Observation]:
    """The gate durations of a calibration set, as IQM names them."""
    observations: list[Observation] = []
    for name, qubit in calibration.qubits.items():
        if qubit.prx_duration is not None:
            impl = DEFAULT_IMPLEMENTATIONS["prx"]
            observations.append((f"gates.prx.{impl}.{name}.duration", qubit.prx_duration, "s"))
        if qubit.measurable:
            impl = DEFAULT_IMPLEMENTATIONS["measure"]
            observations.append(
                (f"gates.measure.{impl}.{name}.duration", calibration.measure_duration, "s")
            )
    for locus, coupler in calibration.couplers.items():
        for gate in ("cz", "move"):
            duration = getattr(coupler, f"{gate}_duration")
            if duration is not None:
                impl = DEFAULT_IMPLEMENTATIONS[gate]
                joined = "__".join(locus)
                observations.append((f"gates.{gate}.{impl}.{joined}.duration", duration, "s"))
    return observations


def _metric_observations(calibration: CalibrationSet) -> list[Observation]:
    """Coherence times, gate fidelities and readout errors, as IQM names them."""
    prx, cz = DEFAULT_IMPLEMENTATIONS["prx"], DEFAULT_IMPLEMENTATIONS["cz"]
    move, measure = DEFAULT_IMPLEMENTATIONS["move"], DEFAULT_IMPLEMENTATIONS["measure"]
    observations: list[Observation] = []
    for name, qubit in calibration.qubits.items():
        observations.append((f"characterization.model.{name}.t1_time", qubit.t1, "s"))
        observations.append((f"characterization.model.{name}.t2_time", qubit.t2, "s"))
        if qubit.prx_fidelity is not None:
            observations.append((f"metrics.rb.prx.{prx}.{name}.fidelity", qubit.prx_fidelity, ""))
        if qubit.measurable:
            e01, e10 = qubit.readout_error_0_to_1 or 0.0, qubit.readout_error_1_to_0 or 0.0
            ssro = f"metrics.ssro.measure.{measure}.{name}"
            observations.append((f"{ssro}.fidelity", 1.0 - (e01 + e10) / 2, ""))
            observations.append((f"{ssro}.error_0_to_1", e01, ""))
            observations.append((f"{ssro}.error_1_to_0", e10, ""))
    for locus, coupler in calibration.couplers.items():
        joined = "__".join(locus)
        if coupler.cz_fidelity is not None:
            observations.append((f"metrics.irb.cz.{cz}.{joined}.fidelity", coupler.cz_fidelity, ""))
        if coupler.move_fidelity is not None:
            observations.append(
                (f"metrics.irb.move.{move}.{joined}.fidelity", coupler.move_fidelity, "")
            )
    return observations
