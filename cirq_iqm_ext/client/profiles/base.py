"""Protocol profiles: how ``IQMClient``'s operations map onto one wire API.

A profile turns the client's profile-independent operations (architecture, submit, status, result,
counts, abort, delete, feedback groups) into paths, request bodies and response parsing of one
API, and converts units, statuses, architectures and results at that edge, so that nothing above
the client knows which API is in use. Two profiles exist:

- ``cocos-v1`` (:mod:`.cocos_v1`): the CoCoS v1 job API of PROTOCOL.md;
- ``iqm-server`` (:mod:`.iqm_server`): the IQM Server API of PROTOCOL_IQM_SERVER.md.

Profiles do no HTTP of their own: they send through a :class:`Wire`, the client's retry loop,
authentication and error mapping, so retries, idempotency keys and auth behave the same in both.
:mod:`.choice` picks one by name or from what a server answers (``api="auto"``); this module
imports neither profile, so the profiles can import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import httpx

from cirq_iqm_ext.wire.models import QuantumArchitectureSpecification, RunResult, RunStatus

#: Values of ``IQMClient(api=...)``.
API_CHOICES = ("auto", "cocos-v1", "iqm-server")


@dataclass(frozen=True)
class Submission:
    """Marks a request as a job submission: it creates a job, so it is not idempotent.

    The wire sends ``idempotency_key`` as the ``Idempotency-Key`` header on every attempt, and
    repeats the request only when that cannot create a second job (PROTOCOL.md §5).

    Attributes:
        idempotency_key: The key of this submission, the same on every attempt.
    """

    idempotency_key: str


class Wire(Protocol):
    """What a profile needs from the client: one logical request, and the error mapping."""

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        submission: Submission | None = None,
        extra_headers: Mapping[str, str] | None = None,
        job_id: UUID | None = None,
        capabilities: bool = True,
    ) -> httpx.Response:
        """Sends one request with the client's retries and auth (``path``: relative to the URL).

        ``submission``: the request submits a job (see :class:`Submission`); any other request
        is idempotent and retried freely. ``capabilities=False``: the answer says nothing about
        what the server offers for jobs (e.g. the probe of
        :func:`~cirq_iqm_ext.client.profiles.choice.detect_profile`), so its headers are not
        taken as such.
        """
        ...

    def check(
        self,
        response: httpx.Response,
        endpoint: str,
        *,
        job_id: UUID | None = None,
        submission: bool = False,
    ) -> None:
        """Raises the package's exception for an unsuccessful answer (PROTOCOL.md §5)."""
        ...

    def json(self, response: httpx.Response, endpoint: str, job_id: UUID | None = None) -> Any:
        """The answer's JSON, or :class:`~cirq_iqm_ext.ServerResponseError`."""
        ...

    def detail(self, response: httpx.Response) -> str:
        """The human-readable text of an error answer."""
        ...


class Profile(Protocol):
    """One wire API behind the client's operations. Results are always in v1 form and units."""

    #: ``"cocos-v1"`` or ``"iqm-server"``.
    name: str

    @property
    def quantum_computer(self) -> str | None:
        """The quantum computer's alias where the API names one (``None`` for CoCoS v1)."""
        ...

    def architecture(self) -> QuantumArchitectureSpecification:
        """The architecture jobs are validated against (of the default calibration set)."""
        ...

    def dynamic_architecture(
        self, calibration_set_id: UUID | None
    ) -> QuantumArchitectureSpecification:
        """What one calibration set (``None``: the default) has calibrated."""
        ...

    def submit(self, payload: Mapping[str, Any] | bytes, idempotency_key: str) -> UUID:
        """Posts a v1 run request (a dict or its JSON text) and returns the new job's id."""
        ...

    def status(self, job_id: UUID, wait: float) -> tuple[RunStatus, bool]:
        """The job's status, holding up to ``wait`` s where the server long-polls.

        Returns:
            The status and whether the server long-polls (so the caller need not sleep).
        """
        ...

    def result(self, job_id: UUID) -> RunResult:
        """The job's result with the request echoed in ``metadata`` (v1 form)."""
        ...

    def counts(self, job_id: UUID) -> dict[str, Any]:
        """``{"status": v1 status, "counts_batch": [...] or None, "warnings"?: [...]}``."""
        ...

    def metrics(self, calibration_set_id: UUID | None) -> dict[str, Any]:
        """Quality metrics of a calibration set (``None``: the current one), in v1's form:
        ``{"calibration_set_id", "metrics": {"QB1.t1_time": {"value", "unit"}, ...}}``."""
        ...

    def abort(self, job_id: UUID) -> None:
        """Asks the server to stop the job."""
        ...

    def delete(self, job_id: UUID) -> None:
        """Asks the server to cancel the job if needed and remove it."""
        ...

    def feedback_groups(self) -> tuple[frozenset[str], ...] | None:
        """Groups of qubits whose ``cc_prx`` can use each other's measurements, or ``None``
        when the server does not say (then no restriction is known)."""
        ...


__all__ = ["API_CHOICES", "Profile", "Submission", "Wire"]
