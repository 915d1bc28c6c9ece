"""The IQM Server API's JobData (PROTOCOL_IQM_SERVER.md §4.1): what a server says about one job.

The server builds its answers from :class:`JobData`, and the client's ``iqm-server`` profile reads
them with :meth:`JobData.from_dict`, so the fields exist in one place. Reading is lenient where
servers differ (messages and errors as objects or strings, unknown fields ignored); writing gives
exactly the fields of §4.1 in their documented order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cirq_iqm_ext.errors import ModelValidationError

#: The artifacts of a completed job (§5).
COMPLETED_ARTIFACTS = ("measurements", "measurement_counts")


@dataclass(frozen=True)
class Progress:
    """How far a processing job is: ``done`` of ``total`` items (the label ``circuits``)."""

    done: int
    total: int


@dataclass(frozen=True)
class JobData:
    """One job as the IQM Server API describes it.

    Attributes:
        id: The job id (a UUID string).
        status: ``waiting``, ``processing``, ``completed``, ``failed``, ``cancelled`` or one a newer
            server added.
        queue_position: Jobs ahead of this one while it waits (0: next), if the server says.
        progress: Label (``circuits``) -> progress while it is processed, if the server says.
        calibration_set_id: The calibration set it was compiled with, once compiled.
        messages: Informational messages (v1's warnings).
        errors: Why it failed.
        timeline: The free-form log of §4.1, as sent.
        artifacts: Names of the artifacts that can be fetched.
        source: The ``source`` written into messages and errors.
    """

    id: str
    status: str
    queue_position: int | None = None
    progress: Mapping[str, Progress] = field(default_factory=dict)
    calibration_set_id: str | None = None
    messages: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    timeline: tuple[Mapping[str, Any], ...] = ()
    artifacts: tuple[str, ...] = ()
    source: str = "iqm-server"

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of §4.1."""
        return {
            "id": self.id,
            "type": "circuit",
            "status": self.status,
            "queue_position": self.queue_position,
            "execution": (
                {
                    "progress": {
                        label: {"value": p.done, "max_value": p.total}
                        for label, p in self.progress.items()
                    }
                }
                if self.progress
                else None
            ),
            "compilation": (
                None
                if self.calibration_set_id is None
                else {"calibration_set_id": self.calibration_set_id}
            ),
            "messages": [{"source": self.source, "message": m} for m in self.messages],
            "errors": [
                {"message": m, "error_code": None, "source": self.source} for m in self.errors
            ],
            "timeline": [dict(entry) for entry in self.timeline],
            "artifacts": [{"type": name} for name in self.artifacts],
        }

    @classmethod
    def from_dict(cls, data: Any) -> JobData:
        """Reads a server's JobData; only ``id`` and ``status`` are required.

        Raises:
            ModelValidationError: Not an object, or ``status`` is not a string.
        """
        if not isinstance(data, Mapping):
            raise ModelValidationError(f"A JobData must be an object, got {type(data).__name__}")
        status = data.get("status")
        if not isinstance(status, str):
            raise ModelValidationError(f'A JobData needs a string "status", got {status!r}')
        compilation = data.get("compilation")
        calibration = (
            compilation.get("calibration_set_id") if isinstance(compilation, Mapping) else None
        )
        timeline = data.get("timeline")
        return cls(
            id=str(data.get("id", "")),
            status=status,
            queue_position=_count(data.get("queue_position")),
            progress=_progress(data.get("execution")),
            calibration_set_id=None if calibration is None else str(calibration),
            messages=_texts(data.get("messages")),
            errors=_texts(data.get("errors")),
            timeline=tuple(timeline) if isinstance(timeline, list) else (),
            artifacts=tuple(
                str(a.get("type")) for a in data.get("artifacts") or () if isinstance(a, Mapping)
            ),
        )


def _count(value: Any) -> int | None:
    """A non-negative JSON integer, else ``None`` (a server's hint, never worth an error)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _progress(execution: Any) -> dict[str, Progress]:
    raw = execution.get("progress") if isinstance(execution, Mapping) else None
    if not isinstance(raw, Mapping):
        return {}
    out = {}
    for label, entry in raw.items():
        if isinstance(entry, Mapping):
            done, total = _count(entry.get("value")), _count(entry.get("max_value"))
            if done is not None and total is not None:
                out[str(label)] = Progress(done, total)
    return out


def _texts(entries: Any) -> tuple[str, ...]:
    """Messages or errors as text: objects give their ``message``, anything else its string."""
    if not isinstance(entries, Sequence) or isinstance(entries, str):
        return ()
    return tuple(str(e.get("message", e)) if isinstance(e, Mapping) else str(e) for e in entries)


__all__ = ["COMPLETED_ARTIFACTS", "JobData", "Progress"]
