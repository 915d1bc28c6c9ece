"""The one exception tree of cirq_iqm_ext.

Every error the package raises on purpose derives from :class:`IQMError`. Errors about bad user
input also derive from :class:`ValueError`, errors about waiting from :class:`TimeoutError`, and
network failures from :class:`ConnectionError`, so callers can catch them the way they catch the
standard ones.

Context sits in attributes (``job_id``, ``status_code``, ``detail``, ``url``) so code can act on it
without parsing messages. No message ever contains a token or a password.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID


class IQMError(Exception):
    """Base class of every error raised by cirq_iqm_ext.

    Args:
        message: Human-readable explanation.
        status_code: HTTP status of the response that caused the error, if any.
        detail: The server's ``detail`` text, if any.
        job_id: The job the error is about, if any.
        url: The URL that was tried (never with credentials), for network errors.
        attempts: How many attempts were made, for network errors.
        endpoint: The request (e.g. ``GET jobs/{id}``) whose answer was malformed.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        detail: str | None = None,
        job_id: UUID | str | None = None,
        url: str | None = None,
        attempts: int = 0,
        endpoint: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.detail = detail
        self.job_id = job_id
        self.url = url
        self.attempts = attempts
        self.endpoint = endpoint


class ClientConfigurationError(IQMError, ValueError):
    """The client was configured wrongly, or the server refused a request as malformed (4xx)."""


class ClientAuthenticationError(IQMError):
    """Authentication failed: no valid token, a refused login, or a 401/403 from the server."""


class ModelValidationError(IQMError, ValueError):
    """A transfer-format object (instruction, circuit, run request, ...) got bad values."""


class CircuitValidationError(IQMError, ValueError):
    """A circuit does not fit the quantum architecture it is meant to run on."""


class CompilationError(IQMError, ValueError):
    """The compiler cannot compile a circuit for the device: an operation it cannot decompose,
    more qubits than the device offers, or a bad ``initial_mapping`` / ``qubit_subset``."""


class ServerResponseError(IQMError):
    """The server answered with something that is not the documented protocol (see ``endpoint``)."""


class IQMConnectionError(IQMError, ConnectionError):
    """The server could not be reached, even after retrying (see ``url`` and ``attempts``)."""


class JobError(IQMError):
    """An error about one job; ``job_id`` names it (``None`` when the server never gave an id)."""


class JobSubmissionUncertainError(JobError, IQMConnectionError):
    """A job submission failed in a way that leaves open whether the server created the job.

    ``job_id`` is ``None`` (the server's answer, if any, never arrived). ``idempotency_key`` is the
    key the submission carried: submitting the same request again with that key (e.g.
    ``client.submit_payload(payload, idempotency_key=error.idempotency_key)``) returns the job the
    first attempt created, on a server that deduplicates on the key, instead of creating a second.

    Args:
        message: Human-readable explanation.
        idempotency_key: The ``Idempotency-Key`` header of the uncertain submission.
        **kwargs: Context attributes of :class:`IQMError`.
    """

    def __init__(self, message: str, *, idempotency_key: str | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.idempotency_key = idempotency_key


class JobNotFoundError(JobError, LookupError):
    """The server does not know the job id."""


class CircuitExecutionError(JobError):
    """The job failed on the server; the server's message says why."""


class JobAbortionError(JobError):
    """The server refused to abort the job."""


class APITimeoutError(JobError, TimeoutError):
    """Waiting for a job took longer than allowed. The job itself still runs on the server."""


class CalibrationError(IQMError, ValueError):
    """A calibration set is malformed: a missing or out-of-range figure, an unknown field."""


class DeviceValidationError(CircuitValidationError):
    """A circuit or operation cannot run on an :class:`~cirq_iqm_ext.IQMDevice`.

    Args:
        message: Human-readable explanation listing the violations.
        violations: One line per violation, e.g. ``"moment 2: cirq.CZ(...): ... not coupled"``.
    """

    def __init__(self, message: str, violations: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.violations = tuple(violations)


class SerializationError(CircuitValidationError):
    """A circuit contains an operation that has no IQM instruction (compile it first), or a
    number JSON cannot carry (``nan`` or infinite)."""


class JobAbortedError(JobError):
    """The job was aborted before it finished, so it has no results."""
