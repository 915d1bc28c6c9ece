"""The IQM Server API (PROTOCOL_IQM_SERVER.md) on the project's server, next to CoCoS v1.

A thin router with request and response adapters over the app's one job store, worker, simulator,
calibration sets and validation: a job definition is converted to the canonical v1 run request
(turns, ``qubits``) by :mod:`cirq_iqm_ext.wire.iqm_server_format` and then takes exactly the
v1 path (limits, calibration set, :func:`~.validation.validate_run_request`, duration
check, idempotency, queue). Every answer is built from the store's v1 snapshots, so a job
submitted through one profile reads the same through the other (§9.2).

:func:`install` adds the routes to an :class:`~cirq_iqm_ext.server.app.IQMServerApp`: everything
under ``/api/v1/`` plus ``GET /about``. Errors on these routes carry the body of §7.1
(``message``, ``detail``, ``error_code``, ``source``); 422 is never used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from uuid import NAMESPACE_URL, UUID, uuid5

from cirq_iqm_ext._version import __version__
from cirq_iqm_ext.calibration import DEFAULT_IMPLEMENTATIONS, CalibrationSet
from cirq_iqm_ext.errors import ModelValidationError
from cirq_iqm_ext.server.app import AdmissionError, HTTPError, Request, Response
from cirq_iqm_ext.server.jobs import (
    JobFinishedError,
    UnknownJobError,
)
from cirq_iqm_ext.wire.channel_properties import (
    PROTOBUF_MEDIA_TYPE,
    encode_feedback_channels,
)
from cirq_iqm_ext.wire.iqm_server_format import (
    COMPLETED,
    JobDefinitionError,
    job_definition_from_run_request,
    job_definition_to_run_request,
    static_architecture_item,
    status_to_iqm_server,
    timeline_from_timestamps,
)
from cirq_iqm_ext.wire.models import RunRequest, Status
from cirq_iqm_ext.wire.protocol import COCOS_V1_HEADER, IDEMPOTENCY_KEY_HEADER

if TYPE_CHECKING:
    from cirq_iqm_ext.server.app import IQMServerApp

logger = logging.getLogger(__name__)

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
Handler = Callable[[Request], Response]
Route = tuple[tuple[str, ...], dict[str, Handler], bool]


def error(status: int, message: str, code: str | None = None, **kw: Any) -> HTTPError:
    """An error answer with the body of §7.1."""
    body = {
        "message": message,
        "detail": message,
        "error_code": code or ERROR_CODES.get(status),
        "source": SOURCE,
    }
    return HTTPError(status, message, body=body, **kw)


#: The §7.1 ``error_code`` of each way the shared submission path refuses a job.
ADMISSION_CODES = {
    "validation": "circuit_validation_error",
    "duration": "circuit_validation_error",
    "idempotency": "invalid_request",
}


class IQMServerAPI:
    """The routes of the IQM Server API over one :class:`IQMServerApp`.

    Args:
        app: The app whose store, worker, calibration sets and architecture are served.
    """

    def __init__(self, app: IQMServerApp):
        self.app = app
        name = app.architecture.name
        self.alias = name.lower()
        self.qc_id = uuid5(NAMESPACE_URL, f"cirq-iqm-ext/quantum-computer/{self.alias}")
        self.display_name = f"{name} (simulated)"
        self.dut_label = f"M000-{name}-sim"

    # ------------------------------------------------------------------ routing

    def routes(self) -> list[Route]:
        """The route table entries (``{x}`` matches one path segment)."""
        api = ("api", "v1")
        qc = (*api, "quantum-computers", "{qc}")
        cal = (*api, "calibration-sets", "{qc}", "{cs}")
        job = (*api, "jobs", "{id}")
        table: list[tuple[tuple[str, ...], dict[str, Handler], bool]] = [
            (("about",), {"GET": self._about}, False),
            ((*api, "about"), {"GET": self._about}, False),
            ((*api, "quantum-computers"), {"GET": self._quantum_computers}, True),
            ((*qc, "health"), {"GET": self._health}, True),
            ((*qc, "artifacts", "about"), {"GET": self._qc_about}, True),
            ((*qc, "artifacts", "duts"), {"GET": self._duts}, True),
            (
                (*qc, "artifacts", "static-quantum-architectures"),
                {"GET": self._sqa},
                True,
            ),
            (
                (*qc, "artifacts", "channel-properties"),
                {"GET": self._channel_properties},
                True,
            ),
            ((*cal, "dynamic-quantum-architecture"), {"GET": self._dqa}, True),
            (cal, {"GET": self._calibration_set}, True),
            ((*cal, "metrics"), {"GET": self._metrics}, True),
            ((*api, "jobs", "{qc}", "circuit"), {"POST": self._submit}, True),
            (job, {"GET": self._job, "DELETE": self._delete}, True),
            ((*job, "payload"), {"GET": self._payload}, True),
            ((*job, "cancel"), {"POST": self._cancel}, True),
            ((*job, "artifacts", "measurements"), {"GET": self._measurements}, True),
            ((*job, "artifacts", "measurement_counts"), {"GET": self._counts}, True),
        ]
        # Authentication is checked inside the guard, so that its errors get this API's body.
        return [
            (pattern, {m: self._guard(h, auth) for m, h in handlers.items()}, False)
            for pattern, handlers, auth in table
        ]

    def _guard(self, handler: Handler, needs_auth: bool) -> Handler:
        def guarded(request: Request) -> Response:
            try:
                if needs_auth:
                    self.app._authenticate(request)
                return handler(request)
            except HTTPError as failure:
                if "error_code" in failure.body:
                    raise
                raise error(failure.status, failure.detail, headers=failure.headers) from None

        return guarded

    # ------------------------------------------------------------------ lookups

    def _check_qc(self, request: Request) -> None:
        if request.params["qc"] != self.alias:
            raise error(404, f'Quantum computer "{request.params["qc"]}" not found')

    def _calibration(self, request: Request) -> CalibrationSet:
        self._check_qc(request)
        raw = request.params["cs"]
        if raw == "default":
            return self.app.default_calibration
        try:
            found = self.app.calibrations.get(UUID(raw))
        except ValueError:
            found = None
        if found is None:
            raise error(404, f"Calibration set {raw} not found")
        return found

    def _job_id(self, request: Request) -> UUID:
        try:
            return UUID(request.params["id"])
        except ValueError:
            raise error(404, "Job not found") from None

    def _result(self, job_id: UUID) -> dict[str, Any]:
        try:
            result = self.app.store.result_dict(job_id)
        except UnknownJobError:
            raise error(404, f"Job {job_id} not found") from None
        if result["status"] == Status.DELETED.value:  # §4.3: gone for this API
            raise error(404, f"Job {job_id} not found: it was deleted")
        return result

    # ------------------------------------------------------------------ about, QCs, architecture

    def _about(self, request: Request) -> Response:
        return 200, {"name": "cirq-iqm-ext server", "version": __version__}, []

    def _qc_about(self, request: Request) -> Response:
        self._check_qc(request)
        return (
            200,
            {
                "version": __version__,
                "software_versions": {"cirq-iqm-ext": __version__},
            },
            [],
        )

    def _health(self, request: Request) -> Response:
        self._check_qc(request)
        return 200, {"status": "ok"}, []

    def _quantum_computers(self, request: Request) -> Response:
        qc = {
            "id": str(self.qc_id),
            "alias": self.alias,
            "display_name": self.display_name,
            "proxy_path": None,  # explicit: "" or absent make client 36 rewrite its paths
        }
        # The v1 API serves the same (sole) quantum computer at the root: say so for "auto".
        return 200, {"quantum_computers": [qc]}, [(COCOS_V1_HEADER, "/")]

    def _duts(self, request: Request) -> Response:
        self._check_qc(request)
        return 200, [{"label": self.dut_label, "dut_type": "chip"}], []

    def _sqa(self, request: Request) -> Response:
        self._check_qc(request)
        return (
            200,
            [static_architecture_item(self.app.architecture, self.dut_label)],
            [],
        )

    def _channel_properties(self, request: Request) -> Response:
        # Client 36's get_feedback_groups() reads the fast-feedback sources of the drive
        # channels (protobuf); only the feedback routing is described, nothing pulse-level.
        self._check_qc(request)
        if not self.app.dynamic:
            raise error(404, "This server runs no dynamic circuits, so it has no feedback")
        resonators = set(self.app.architecture.computational_resonators)
        qubits = [q for q in self.app.architecture.qubits if q not in resonators]
        body = encode_feedback_channels(qubits, self.app.feedback_groups)
        return 200, body, [("Content-Type", PROTOBUF_MEDIA_TYPE)]

    def _dqa(self, request: Request) -> Response:
        calibration = self._calibration(request)
        body = calibration.dynamic_architecture(self.app.architecture)
        resonators = set(body["computational_resonators"])
        for gate in body["gates"].values():
            for implementation in gate["implementations"].values():
                # Client 36's MOVE transpiler wants qubit-resonator loci as (qubit, resonator).
                implementation["loci"] = [
                    sorted(locus, key=lambda c: c in resonators) if len(locus) == 2 else locus
                    for locus in implementation["loci"]
                ]
        return 200, body, []

    def _calibration_set(self, request: Request) -> Response:
        calibration = self._calibration(request)
        observations = []
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
        body = self._observation_set(calibration, "calibration-set", observations, None)
        return 200, body, []

    def _metrics(self, request: Request) -> Response:
        calibration = self._calibration(request)
        observations: list[tuple[str, float, str]] = []
        prx, cz = DEFAULT_IMPLEMENTATIONS["prx"], DEFAULT_IMPLEMENTATIONS["cz"]
        move, measure = (
            DEFAULT_IMPLEMENTATIONS["move"],
            DEFAULT_IMPLEMENTATIONS["measure"],
        )
        for name, qubit in calibration.qubits.items():
            observations.append((f"characterization.model.{name}.t1_time", qubit.t1, "s"))
            observations.append((f"characterization.model.{name}.t2_time", qubit.t2, "s"))
            if qubit.prx_fidelity is not None:
                observations.append(
                    (f"metrics.rb.prx.{prx}.{name}.fidelity", qubit.prx_fidelity, "")
                )
            if qubit.measurable:
                e01, e10 = (
                    qubit.readout_error_0_to_1 or 0.0,
                    qubit.readout_error_1_to_0 or 0.0,
                )
                ssro = f"metrics.ssro.measure.{measure}.{name}"
                observations.append((f"{ssro}.fidelity", 1.0 - (e01 + e10) / 2, ""))
                observations.append((f"{ssro}.error_0_to_1", e01, ""))
                observations.append((f"{ssro}.error_1_to_0", e10, ""))
        for locus, coupler in calibration.couplers.items():
            joined = "__".join(locus)
            if coupler.cz_fidelity is not None:
                observations.append(
                    (f"metrics.irb.cz.{cz}.{joined}.fidelity", coupler.cz_fidelity, "")
                )
            if coupler.move_fidelity is not None:
                observations.append(
                    (f"metrics.irb.move.{move}.{joined}.fidelity", coupler.move_fidelity, "")
                )
        body = self._observation_set(
            calibration, "quality-metric-set", observations, calibration.calibration_set_id
        )
        return 200, body, []

    def _observation_set(
        self,
        calibration: CalibrationSet,
        kind: str,
        observations: list[tuple[str, float, str]],
        describes: UUID | None,
    ) -> dict[str, Any]:
        stamp = "2026-01-01T00:00:00.000Z"  # simulated figures: a fixed, reproducible time
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
            "created_timestamp": stamp,
            "end_timestamp": stamp,
            "observations": [
                {
                    "observation_id": number,
                    "dut_field": field,
                    "value": float(value),
                    "unit": unit,
                    "uncertainty": None,
                    "invalid": False,
                    "created_timestamp": stamp,
                    "modified_timestamp": stamp,
                }
                for number, (field, value, unit) in enumerate(observations, start=1)
            ],
        }

    # ------------------------------------------------------------------ jobs

    def _submit(self, request: Request) -> Response:
        self._check_qc(request)
        app = self.app
        data = app._read_json(request)
        try:
            request_dict, options = job_definition_to_run_request(data)
        except JobDefinitionError as failure:
            raise error(400, failure.message, failure.error_code) from None
        try:
            run_request = RunRequest.from_dict(request_dict)
        except ModelValidationError as failure:
            raise error(400, str(failure), "circuit_validation_error") from None
        app._check_limits(run_request)
        cal_id = run_request.calibration_set_id or app.default_calibration.calibration_set_id
        calibration = app.calibrations.get(cal_id)
        if calibration is None:
            raise error(404, f"Calibration set {cal_id} not found")
        try:
            job, _ = app.admit(
                run_request,
                calibration,
                idempotency_key=request.header(IDEMPOTENCY_KEY_HEADER) or None,
                move_gate_validation=options["move_gate_validation"],
            )
        except AdmissionError as failure:
            raise error(
                failure.status,
                failure.detail,
                ADMISSION_CODES.get(failure.kind),
                headers=failure.headers,
            ) from None
        return 200, self.job_data(job.id), []

    def job_data(self, job_id: UUID) -> dict[str, Any]:
        """JobData (§4.1) of a stored job, whichever API submitted it.

        Raises:
            HTTPError: 404 for an unknown job.
        """
        result = self._result(job_id)
        metadata = result["metadata"]
        timestamps = metadata.get("timestamps") or {}
        status = status_to_iqm_server(result["status"], timestamps)
        compiled = "compile_end" in timestamps
        queue_position = None
        if status == "waiting":
            queue_position = self.app.worker.queued
        progress = None
        if status == "processing":
            total = len(metadata["request"].get("circuits") or [])
            done = total if "execution_end" in timestamps else 0
            progress = {"progress": {"circuits": {"value": done, "max_value": total}}}
        errors = []
        if status == "failed":
            errors.append(
                {
                    "message": result.get("message") or "The job failed",
                    "error_code": None,
                    "source": SOURCE,
                }
            )
        return {
            "id": str(job_id),
            "type": "circuit",
            "status": status,
            "queue_position": queue_position,
            "execution": progress,
            "compilation": (
                {"calibration_set_id": metadata["calibration_set_id"]} if compiled else None
            ),
            "messages": [{"source": SOURCE, "message": w} for w in result.get("warnings") or []],
            "errors": errors,
            "timeline": timeline_from_timestamps(timestamps, status, SOURCE),
            "artifacts": (
                [{"type": "measurements"}, {"type": "measurement_counts"}]
                if status == COMPLETED
                else []
            ),
        }

    def _job(self, request: Request) -> Response:
        return 200, self.job_data(self._job_id(request)), []

    def _payload(self, request: Request) -> Response:
        job_id = self._job_id(request)
        result = self._result(job_id)
        # The stored request carries the job's options (RunRequest fields), so this is the echo.
        return 200, job_definition_from_run_request(result["metadata"]["request"]), []

    def _completed(self, job_id: UUID) -> dict[str, Any]:
        result = self._result(job_id)
        if result["status"] != "ready":
            status = status_to_iqm_server(result["status"], result["metadata"].get("timestamps"))
            raise error(409, f"Job {job_id} is {status}: its artifacts are not available")
        return result

    def _measurements(self, request: Request) -> Response:
        job_id = self._job_id(request)
        return 200, self._completed(job_id)["measurements"], []

    def _counts(self, request: Request) -> Response:
        job_id = self._job_id(request)
        self._completed(job_id)
        counts = self.app.store.counts_dict(job_id)
        return 200, counts["counts_batch"], []

    def _cancel(self, request: Request) -> Response:
        job_id = self._job_id(request)
        self._result(job_id)  # 404 for an unknown or deleted job
        try:
            self.app.store.abort(job_id)
        except UnknownJobError:
            raise error(404, f"Job {job_id} not found") from None
        except JobFinishedError:
            pass  # a terminal job keeps its status; cancelling it still succeeds (§4.3)
        return 200, {}, []

    def _delete(self, request: Request) -> Response:
        job_id = self._job_id(request)
        self._result(job_id)  # 404 for an unknown or already deleted job (§4.3)
        try:
            self.app.store.delete(job_id)
        except UnknownJobError:
            raise error(404, f"Job {job_id} not found") from None
        return 200, {}, []


def install(app: IQMServerApp) -> IQMServerAPI:
    """Adds the IQM Server API routes to ``app`` (ahead of its own) and returns the router."""
    api = IQMServerAPI(app)
    app._routes[:0] = api.routes()
    return api
