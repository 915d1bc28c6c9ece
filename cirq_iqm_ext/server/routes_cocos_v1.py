"""The CoCoS v1 job API (PROTOCOL.md §2) over a :class:`~cirq_iqm_ext.server.core.ServerCore`.

The five core endpoints plus ``GET health``, ``GET info/client-libraries``, ``GET
jobs/{id}/counts``, ``DELETE jobs/{id}`` and the optional calibration and feedback endpoints.
Errors carry a ``detail``. Two extensions are asked for in the query: ``?wait=S`` on a status
request holds the answer until the status changes (long polling), and ``?measurements=packed``
on a result sends the bits packed eight to a byte.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from cirq_iqm_ext.calibration import CalibrationSet
from cirq_iqm_ext.errors import ModelValidationError
from cirq_iqm_ext.server.auth import Authenticator, identity_of
from cirq_iqm_ext.server.core import ServerCore, UnknownCalibrationError
from cirq_iqm_ext.server.framework import (
    HTTPError,
    Request,
    Response,
    Router,
    Streamed,
    parse_json,
    read_body,
)
from cirq_iqm_ext.server.jobs import ExpiredJobError, JobFinishedError, UnknownJobError
from cirq_iqm_ext.server.result_json import iter_body_with_measurements
from cirq_iqm_ext.server.retention import expiry_message
from cirq_iqm_ext.wire.models import RunRequest
from cirq_iqm_ext.wire.protocol import (
    ARCHITECTURE_EXTENSIONS_QUERY,
    IDEMPOTENCY_KEY_HEADER,
    IDEMPOTENCY_SUPPORT_HEADER,
    IDEMPOTENCY_SUPPORT_VALUE,
    LONG_POLL_HEADER,
    LONG_POLL_QUERY,
    MEASUREMENTS_FORMAT_FIELD,
    MEASUREMENTS_QUERY,
    PACKED_FORMAT,
    REQUEST_ECHO_QUERY,
    REQUEST_OMITTED_FIELD,
)

logger = logging.getLogger(__name__)

JSON_TYPE = ("Content-Type", "application/json")

#: Client library versions this server is known to work with (``GET info/client-libraries``).
CLIENT_LIBRARIES = {
    "iqm-client": {"min": "17.0", "max": "18.0"},
    "cirq-iqm": {"min": "14.0", "max": "15.0"},
    "cirq-iqm-ext": {"min": "0.1", "max": "1.0"},
}
#: Tells clients that ``POST jobs`` deduplicates on ``Idempotency-Key``, so an ambiguous
#: submission (connection lost before the answer) may be retried with the same key.
IDEMPOTENCY_HEADER = (IDEMPOTENCY_SUPPORT_HEADER, IDEMPOTENCY_SUPPORT_VALUE)
#: Longest a status request is held with ``?wait=`` (long polling).
MAX_LONG_POLL_SECONDS = 20.0
#: Malformed input the transfer format did not anticipate: still the client's fault (400).
_UNANTICIPATED = (TypeError, ValueError, KeyError, AttributeError, RecursionError)


class CocosV1Routes:
    """The handlers of the CoCoS v1 API.

    Args:
        core: What is served.
        auth: Checks the bearer token of the protected routes.
        base: The base path, as sent in ``Location`` headers (``""`` or e.g. ``"/cocos"``).
    """

    def __init__(self, core: ServerCore, auth: Authenticator, base: str = ""):
        self.core = core
        self.auth = auth
        self.base = base

    def add_to(self, router: Router) -> None:
        """Registers the routes on ``router``."""
        protect = self.auth.protect
        router.add("GET", "health", self.health)
        router.add("GET", "info/client-libraries", self.client_libraries)
        router.add("GET", "quantum-architecture", protect(self.architecture))
        router.add("GET", "calibration/metrics/{cal}", protect(self.metrics))
        router.add("GET", "api/v1/calibration/{cal}/gates", protect(self.dynamic_architecture))
        router.add("POST", "jobs", protect(self.submit))
        router.add("GET", "jobs/{id}", protect(self.result))
        router.add("DELETE", "jobs/{id}", protect(self.delete))
        router.add("GET", "feedback-groups", protect(self.feedback_groups))
        router.add("GET", "jobs/{id}/status", protect(self.status))
        router.add("GET", "jobs/{id}/counts", protect(self.counts))
        router.add("POST", "jobs/{id}/abort", protect(self.abort))

    # Server and architecture ----------------------------------------------------------------------

    def health(self, request: Request) -> Response:
        """``GET health``."""
        return Response(200, {"status": "ok"}, [IDEMPOTENCY_HEADER])

    def client_libraries(self, request: Request) -> Response:
        """``GET info/client-libraries``."""
        return Response(200, CLIENT_LIBRARIES)

    def architecture(self, request: Request) -> Response:
        """``GET quantum-architecture[?extensions=delay,dynamic]``."""
        # A comma-separated set; unknown members are ignored.
        (query_name,) = ARCHITECTURE_EXTENSIONS_QUERY
        asked = {part.strip() for part in (request.query(query_name) or "").split(",")}
        body = self.core.architecture_dict(delay="delay" in asked, dynamic="dynamic" in asked)
        return Response(200, body, [IDEMPOTENCY_HEADER])

    def feedback_groups(self, request: Request) -> Response:
        """``GET feedback-groups``: an extension (CoCoS v1 has no ``cc_prx``)."""
        if not self.core.dynamic:
            raise HTTPError(404, "This server runs no dynamic circuits, so it has no feedback")
        groups = [sorted(group) for group in self.core.feedback_groups]
        return Response(200, {"feedback_groups": groups})

    def metrics(self, request: Request) -> Response:
        """``GET calibration/metrics/{id|latest}``."""
        return Response(200, self._calibration(request, "latest").metrics())

    def dynamic_architecture(self, request: Request) -> Response:
        """``GET api/v1/calibration/{id|default}/gates``."""
        calibration = self._calibration(request, "default")
        return Response(200, calibration.dynamic_architecture(self.core.architecture))

    def _calibration(self, request: Request, alias: str) -> CalibrationSet:
        raw = request.params["cal"]
        calibration = self.core.calibration(raw, alias=alias)
        if calibration is None:
            raise HTTPError(404, f"Calibration set {raw} not found; use {alias!r} or a known id")
        return calibration

    def _job_id(self, request: Request) -> UUID:
        """The job id of the path, when the caller may see that job (else 404, as unknown)."""
        job_id = _parse_job_id(request)
        try:
            self.core.check_owner(job_id, identity_of(request))
        except ExpiredJobError as expired:
            raise _gone(expired) from None
        except UnknownJobError:
            raise HTTPError(404, "Job not found") from None
        return job_id

    # Jobs -----------------------------------------------------------------------------------------

    def submit(self, request: Request) -> Response:
        """``POST jobs``: 201 with the new job's id, 200 for an idempotent repeat."""
        raw = read_body(request, self.core.limits.max_body_bytes)
        data = parse_json(raw)
        try:
            run_request = RunRequest.from_dict(data)
        except ModelValidationError as error:
            raise HTTPError(400, str(error)) from None
        except _UNANTICIPATED as error:
            logger.warning("Run request rejected by an unexpected %s", type(error).__name__)
            raise HTTPError(400, f"Invalid run request: {type(error).__name__}: {error}") from None
        warnings = []
        if run_request.custom_settings:
            warnings.append("custom_settings are ignored by this server")
        try:
            job, created = self.core.submit(
                run_request,
                idempotency_key=request.header(IDEMPOTENCY_KEY_HEADER) or None,
                owner=identity_of(request),
                warnings=warnings,
                body=raw,
            )
        except UnknownCalibrationError as error:
            known = ", ".join(str(c) for c in self.core.calibrations)
            raise HTTPError(
                400,
                f"Unknown calibration set id {error.calibration_set_id}; this server has {known}",
            ) from None
        return Response(
            201 if created else 200,
            {"id": str(job.id)},
            [("Location", f"{self.base}/jobs/{job.id}"), IDEMPOTENCY_HEADER],
        )

    def status(self, request: Request) -> Response:
        """``GET jobs/{id}/status[?wait=S]``."""
        wait = request.query_float(LONG_POLL_QUERY, 0.0, MAX_LONG_POLL_SECONDS)
        try:
            body = self.core.status_dict(self._job_id(request), wait=wait)
        except UnknownJobError:
            raise HTTPError(404, "Job not found") from None
        return Response(200, body, [(LONG_POLL_HEADER, f"{MAX_LONG_POLL_SECONDS:g}")])

    def result(self, request: Request) -> Response:
        """``GET jobs/{id}[?measurements=packed][&request=omit]``."""
        job_id = self._job_id(request)
        (query_name,) = MEASUREMENTS_QUERY
        packed = request.query(query_name) == MEASUREMENTS_QUERY[query_name]
        ((echo_name, omit_value),) = REQUEST_ECHO_QUERY.items()
        omit = request.query(echo_name) == omit_value
        try:
            # Lists are never built: packed bits, or JSON written from the arrays, streamed.
            body = self._result_body(job_id, omit)
            if "measurements" not in body:  # not ready
                return Response(200, body)
            if packed:
                bits = self.core.packed_measurements(job_id)
                if bits is not None:
                    body[MEASUREMENTS_FORMAT_FIELD] = PACKED_FORMAT
                    return Response(200, Streamed(iter_body_with_measurements(body, bits)))
            else:
                arrays = self.core.measurement_arrays(job_id)
                if arrays is not None:
                    return Response(200, Streamed(iter_body_with_measurements(body, arrays)))
            # Deleted meanwhile: answer what it is now.
            return Response(200, self._result_body(job_id, omit))
        except ExpiredJobError as expired:
            raise _gone(expired) from None
        except UnknownJobError:
            raise HTTPError(404, "Job not found") from None

    def _result_body(self, job_id: UUID, omit_request: bool) -> dict[str, Any]:
        """The result body without measurements, and without the echoed request if asked."""
        body = self.core.result_dict(job_id, measurements=False)
        if omit_request:
            metadata = body["metadata"]
            del metadata["request"]
            metadata[REQUEST_OMITTED_FIELD] = True
        return body

    def counts(self, request: Request) -> Response:
        """``GET jobs/{id}/counts``."""
        try:
            return Response(200, self.core.counts_dict(self._job_id(request)))
        except UnknownJobError:
            raise HTTPError(404, "Job not found") from None

    def delete(self, request: Request) -> Response:
        """``DELETE jobs/{id}``: an extension of v1 (IQM Server API E8).

        Cancels, then drops the request's results; the job then reads as ``deleted``
        (PROTOCOL_IQM_SERVER.md §9.1).
        """
        try:
            self.core.delete(self._job_id(request))
        except UnknownJobError:
            raise HTTPError(404, "Job not found") from None
        return Response(200, {})

    def abort(self, request: Request) -> Response:
        """``POST jobs/{id}/abort``: 409 for a job that has finished."""
        try:
            self.core.abort(self._job_id(request))
        except UnknownJobError:
            raise HTTPError(404, "Job not found") from None
        except JobFinishedError as error:
            raise HTTPError(409, str(error)) from None
        return Response(200, {})


def _gone(expired: ExpiredJobError) -> HTTPError:
    """410 for a job evicted under the retention policy, saying when and why."""
    return HTTPError(410, expiry_message(expired.job_id, expired.tombstone))


def _parse_job_id(request: Request) -> UUID:
    try:
        return UUID(request.params["id"])
    except ValueError:
        raise HTTPError(404, "Job not found") from None
