"""From an unsuccessful HTTP answer to the package's exception (PROTOCOL.md §5), as pure functions.

:func:`error_for_status` decides on the status code, the endpoint and what the request was (a job
submission or not, about which job); :func:`detail_of` and :func:`json_of` read an answer's body.
Nothing here sends a request, so the whole map is testable as a table.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx

from cirq_iqm_ext.client.json_codec import loads
from cirq_iqm_ext.errors import (
    CircuitValidationError,
    ClientAuthenticationError,
    ClientConfigurationError,
    IQMConnectionError,
    IQMError,
    JobNotFoundError,
    JobSubmissionUncertainError,
    ServerResponseError,
)

#: Longest piece of an error body quoted in an exception message.
MAX_DETAIL_CHARS = 500


def detail_of(response: httpx.Response) -> str:
    """The human-readable text of an error answer (its ``message`` or ``detail``, else the body)."""
    try:
        data = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:MAX_DETAIL_CHARS] if text else response.reason_phrase
    # IQM Server API bodies carry "message" (and "detail" with the same text); v1 "detail".
    for field in ("message", "detail"):
        if isinstance(data, dict) and isinstance(data.get(field), str):
            return str(data[field])
    return str(data)[:MAX_DETAIL_CHARS]


def json_of(response: httpx.Response, endpoint: str, job_id: UUID | None = None) -> Any:
    """The answer's JSON.

    Raises:
        ServerResponseError: The body is not JSON.
    """
    try:
        return loads(response.content)
    except ValueError:
        raise ServerResponseError(
            f"The server's answer to {endpoint} is not JSON (HTTP {response.status_code}, "
            f"content-type {response.headers.get('content-type', 'none')!r})",
            endpoint=endpoint,
            status_code=response.status_code,
            job_id=job_id,
        ) from None


def error_for_status(
    code: int,
    detail: str,
    *,
    endpoint: str,
    url: str,
    job_id: UUID | None = None,
    submission: bool = False,
) -> IQMError | None:
    """The exception for an answer with status ``code`` (``None`` for a success, < 400).

    Args:
        code: The HTTP status.
        detail: The text of the answer (:func:`detail_of`).
        endpoint: ``"METHOD path"`` of the request, for the message.
        url: The server's base URL without credentials, for the message.
        job_id: The job the request was about, if any: a 404 then means the job is unknown.
        submission: Whether the request submitted a job: a 400 or 422 then means the circuits
            were refused, and a 5xx leaves the outcome uncertain.
    """
    if code < 400:
        return None
    if code in (401, 403):
        return ClientAuthenticationError(
            f"Authentication failed for {endpoint} (HTTP {code}): {detail}",
            status_code=code,
            detail=detail,
            job_id=job_id,
        )
    # 410: the project's server evicted the job (its retention bounds); the detail says when.
    if code in (404, 410) and job_id is not None:
        return JobNotFoundError(
            f"Job {job_id} not found on {url}: {detail}",
            job_id=job_id,
            status_code=code,
            detail=detail,
        )
    if code < 500:
        refused = code in (400, 422) and submission
        error_type: type[IQMError] = CircuitValidationError if refused else ClientConfigurationError
        return error_type(
            f"{endpoint} was refused (HTTP {code}): {detail}", status_code=code, detail=detail
        )
    if submission:
        return JobSubmissionUncertainError(
            f"{endpoint} failed on the server (HTTP {code}): {detail}; the server may have "
            "created the job. Check the jobs of your account before submitting again",
            status_code=code,
            detail=detail,
            url=url,
        )
    return IQMConnectionError(
        f"{endpoint} failed on the server (HTTP {code}): {detail}"
        + (f". Job {job_id} may still be running; fetch it later" if job_id else ""),
        url=url,
        status_code=code,
        detail=detail,
        job_id=job_id,
    )
