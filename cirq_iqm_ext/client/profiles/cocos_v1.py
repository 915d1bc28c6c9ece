"""The ``cocos-v1`` profile: the CoCoS v1 job API of PROTOCOL.md, one base URL per quantum computer.

Its wire format is the package's own transfer format, so this profile only names paths and parses
answers. It also uses the project server's extensions where the server offers them: long polling
(``?wait=`` after an ``IQM-Long-Poll`` header) and packed measurements (``?measurements=packed``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from cirq_iqm_ext.client.profiles.base import Submission, Wire
from cirq_iqm_ext.client.profiles.sent import SentRequests
from cirq_iqm_ext.errors import (
    ClientConfigurationError,
    JobAbortionError,
    ModelValidationError,
    ServerResponseError,
)
from cirq_iqm_ext.wire.models import (
    JOB_OPTION_DEFAULTS,
    QuantumArchitectureSpecification,
    RunResult,
    RunStatus,
)
from cirq_iqm_ext.wire.protocol import (
    ARCHITECTURE_EXTENSIONS_QUERY,
    LONG_POLL_HEADER,
    LONG_POLL_QUERY,
    MEASUREMENTS_QUERY,
    REQUEST_ECHO_QUERY,
    REQUEST_OMITTED_FIELD,
)


class CocosV1Profile:
    """PROTOCOL.md: ``quantum-architecture``, ``jobs``, ``jobs/{id}/status``, ``jobs/{id}``, ...

    Args:
        wire: The client's request sender and error mapping.
    """

    name = "cocos-v1"

    def __init__(self, wire: Wire):
        self._wire = wire
        self._sent = SentRequests()

    @property
    def quantum_computer(self) -> str | None:
        """CoCoS v1 serves one quantum computer and names none."""
        return None

    def _get(
        self, path: str, params: Mapping[str, str] | None = None, job_id: UUID | None = None
    ) -> tuple[Any, str, Any]:
        endpoint = f"GET {path}"
        response = self._wire.request("GET", path, params=params, job_id=job_id)
        self._wire.check(response, endpoint, job_id=job_id)
        return self._wire.json(response, endpoint, job_id), endpoint, response

    def architecture(self) -> QuantumArchitectureSpecification:
        """``GET quantum-architecture``, asking for ``delay`` to be listed where it runs."""
        data, endpoint, _ = self._get("quantum-architecture", ARCHITECTURE_EXTENSIONS_QUERY)
        return _parse_architecture(data, endpoint)

    def dynamic_architecture(
        self, calibration_set_id: UUID | None
    ) -> QuantumArchitectureSpecification:
        """``GET api/v1/calibration/{id|default}/gates`` (an optional extra of PROTOCOL.md §2)."""
        cal = "default" if calibration_set_id is None else str(calibration_set_id)
        data, endpoint, _ = self._get(f"api/v1/calibration/{cal}/gates")
        return _parse_architecture(data, endpoint)

    def submit(self, payload: Mapping[str, Any] | bytes, idempotency_key: str) -> UUID:
        """``POST jobs`` with the run request as it is (job options at their v1 values dropped).

        Raises:
            ClientConfigurationError: The request sets an IQM Server API job option to anything
                but what v1 jobs get (nothing is posted).
        """
        payload = without_v1_options(payload)
        # Encoded here (not by httpx) so that the bytes sent are the bytes kept.
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        endpoint = "POST jobs"
        response = self._wire.request(
            "POST",
            "jobs",
            content=body,
            submission=Submission(idempotency_key),
            extra_headers={"Content-Type": "application/json"},
        )
        self._wire.check(response, endpoint, submission=True)
        job_id = job_id_of(self._wire, response, endpoint, idempotency_key)
        self._sent.remember(job_id, body)  # so that its result need not echo it
        return job_id

    def status(self, job_id: UUID, wait: float) -> tuple[RunStatus, bool]:
        """``GET jobs/{id}/status``, long-polled with ``?wait=`` where the server offers it."""
        params = {LONG_POLL_QUERY: f"{wait:.3f}"} if wait > 0 else None
        data, endpoint, response = self._get(f"jobs/{job_id}/status", params, job_id)
        try:
            status = RunStatus.from_dict(data)
        except ModelValidationError as error:
            raise ServerResponseError(
                f"Malformed answer to {endpoint}: {error}", endpoint=endpoint, job_id=job_id
            ) from None
        return status, LONG_POLL_HEADER in response.headers

    def result(self, job_id: UUID) -> RunResult:
        """``GET jobs/{id}``, asking for packed measurements."""
        # Servers that know the packed format answer with it (much smaller and faster to parse);
        # the others ignore the parameter and send the lists of PROTOCOL.md §3.4. Likewise a
        # request this client sent is not asked back (the others echo it all the same).
        sent = self._sent.get(job_id)
        query = MEASUREMENTS_QUERY if sent is None else {**MEASUREMENTS_QUERY, **REQUEST_ECHO_QUERY}
        data, endpoint, _ = self._get(f"jobs/{job_id}", query, job_id)
        if sent is not None:
            data = _with_request(data, sent)
        try:
            return RunResult.from_dict(data)
        except ModelValidationError as error:
            raise ServerResponseError(
                f"Malformed answer to {endpoint}: {error}", endpoint=endpoint, job_id=job_id
            ) from None

    def counts(self, job_id: UUID) -> dict[str, Any]:
        """``GET jobs/{id}/counts`` (an optional extra)."""
        data, endpoint, _ = self._get(f"jobs/{job_id}/counts", None, job_id)
        if not isinstance(data, dict) or "status" not in data:
            raise ServerResponseError(
                f'The answer to {endpoint} has no "status"', endpoint=endpoint, job_id=job_id
            )
        return data

    def metrics(self, calibration_set_id: UUID | None) -> dict[str, Any]:
        """``GET calibration/metrics/{id|latest}`` (an optional extra)."""
        which = "latest" if calibration_set_id is None else str(calibration_set_id)
        data, endpoint, _ = self._get(f"calibration/metrics/{which}")
        if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
            raise ServerResponseError(
                f'The answer to {endpoint} has no "metrics" object', endpoint=endpoint
            )
        return data

    def abort(self, job_id: UUID) -> None:
        """``POST jobs/{id}/abort``; 409 (already finished) raises :class:`JobAbortionError`."""
        path = f"jobs/{job_id}/abort"
        abort_job(self._wire, path, job_id)

    def delete(self, job_id: UUID) -> None:
        """``DELETE jobs/{id}`` (the project server's extension; its status becomes ``deleted``)."""
        delete_job(self._wire, f"jobs/{job_id}", job_id)

    def feedback_groups(self) -> tuple[frozenset[str], ...] | None:
        """``GET feedback-groups`` (the project server's extension); ``None`` where absent."""
        endpoint = "GET feedback-groups"
        response = self._wire.request("GET", "feedback-groups")
        if response.status_code in (404, 405):
            return None  # CoCoS v1 has no cc_prx, so no feedback routing to describe
        self._wire.check(response, endpoint)
        data = self._wire.json(response, endpoint)
        groups = data.get("feedback_groups") if isinstance(data, Mapping) else None
        if not isinstance(groups, list) or not all(
            isinstance(g, list) and all(isinstance(q, str) for q in g) for g in groups
        ):
            raise ServerResponseError(
                f'The answer to {endpoint} has no "feedback_groups" list of qubit lists',
                endpoint=endpoint,
            )
        return tuple(frozenset(g) for g in groups)


def _non_v1_options(request: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: request[name]
        for name, default in JOB_OPTION_DEFAULTS.items()
        if request.get(name) is not None and request[name] != default
    }


def without_v1_options(payload: Mapping[str, Any] | bytes) -> Mapping[str, Any] | bytes:
    """``payload`` without job options at their v1 values, refusing any other value.

    CoCoS v1 has none of the IQM Server API's job options (PROTOCOL_IQM_SERVER.md §3.1): its
    jobs always run with strict MOVE validation, full frame tracking, reset by waiting, no
    dynamical decoupling and the on-demand queue.

    Raises:
        ClientConfigurationError: An option is set to another value.
    """
    if isinstance(payload, bytes):
        # The sampler's fast path: parse only a payload that names an option at all.
        if not any(f'"{name}"'.encode() in payload for name in JOB_OPTION_DEFAULTS):
            return payload
        request = json.loads(payload)
    else:
        request = payload
    if not isinstance(request, Mapping) or not any(k in request for k in JOB_OPTION_DEFAULTS):
        return payload
    refused = _non_v1_options(request)
    if refused:
        given = ", ".join(f"{k}={v!r}" for k, v in refused.items())
        raise ClientConfigurationError(
            f"{given}: this job option needs the IQM Server API, and this client speaks CoCoS "
            "v1, whose jobs always run with move_gate_validation='strict', "
            "move_gate_frame_tracking='full', active_reset_cycles=None, dd_mode='disabled', "
            'dd_strategy=None and use_timeslot=False; use IQMClient(url, api="iqm-server") '
            "with a server that speaks it, or leave the option at that value"
        )
    stripped = {k: v for k, v in request.items() if k not in JOB_OPTION_DEFAULTS}
    if isinstance(payload, bytes):
        return json.dumps(stripped, separators=(",", ":")).encode()
    return stripped


def delete_job(wire: Wire, path: str, job_id: UUID) -> None:
    """Sends ``DELETE`` for a job and maps the answer.

    Raises:
        JobNotFoundError: 404 (unknown or already deleted job).
        ClientConfigurationError: The server does not delete jobs (405).
        ClientAuthenticationError: 401 or 403.
    """
    endpoint = f"DELETE {path}"
    response = wire.request("DELETE", path, job_id=job_id)
    if response.status_code == 405:
        raise ClientConfigurationError(
            f"The server does not support deleting jobs ({endpoint} answered HTTP 405); "
            f"job {job_id} is unchanged (abort it with abort_job() instead)"
        )
    wire.check(response, endpoint, job_id=job_id)


def abort_job(wire: Wire, path: str, job_id: UUID) -> None:
    """Posts an abort or cancel request and maps a refusal to :class:`JobAbortionError`.

    Raises:
        JobNotFoundError: 404.
        ClientAuthenticationError: 401 or 403.
        JobAbortionError: Any other answer that is not a success.
    """
    endpoint = f"POST {path}"
    response = wire.request("POST", path, job_id=job_id)
    if response.status_code == 404:
        wire.check(response, endpoint, job_id=job_id)
    if response.status_code in (401, 403):
        wire.check(response, endpoint)
    if response.status_code >= 300:
        detail = wire.detail(response)
        raise JobAbortionError(
            f"Aborting job {job_id} failed (HTTP {response.status_code}): {detail}",
            job_id=job_id,
            status_code=response.status_code,
            detail=detail,
        )


def job_id_of(wire: Wire, response: Any, endpoint: str, key: str) -> UUID:
    """The ``id`` of a submission's answer; a malformed answer says the job may exist."""
    hint = (
        f"; the server may have created the job: submit again with idempotency_key={key!r} "
        "to get its id from a server that deduplicates"
    )
    try:
        data = wire.json(response, endpoint)
    except ServerResponseError as error:
        raise ServerResponseError(
            error.message + hint, endpoint=endpoint, status_code=response.status_code
        ) from None
    try:
        return UUID(str(data["id"]))
    except (KeyError, TypeError, ValueError):
        raise ServerResponseError(
            f'The answer to {endpoint} has no valid job "id": {str(data)[:200]}' + hint,
            endpoint=endpoint,
        ) from None


def _parse_architecture(data: Any, endpoint: str) -> QuantumArchitectureSpecification:
    try:
        return QuantumArchitectureSpecification.from_dict(data)
    except ModelValidationError as error:
        raise ServerResponseError(
            f"The architecture from {endpoint} is malformed: {error}", endpoint=endpoint
        ) from None


def _with_request(data: Any, sent: dict[str, Any]) -> Any:
    """A result whose metadata says the request was left out, with the request that was sent."""
    metadata = data.get("metadata") if isinstance(data, Mapping) else None
    if not isinstance(metadata, Mapping) or metadata.get(REQUEST_OMITTED_FIELD) is not True:
        return data
    if "request" in metadata:
        return data
    echoed = {k: v for k, v in metadata.items() if k != REQUEST_OMITTED_FIELD}
    echoed["request"] = sent
    return {**data, "metadata": echoed}
