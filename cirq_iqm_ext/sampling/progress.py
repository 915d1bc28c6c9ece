"""Progress of a wait, shown to the person waiting (a single updating line on a terminal)."""

from __future__ import annotations

import sys
from typing import TextIO
from uuid import UUID

from cirq_iqm_ext.wire.models import Status

#: Progress is shown only for waits longer than this many seconds.
PROGRESS_AFTER_SECONDS = 3.0


class ProgressLine:
    """A single updating status line on a terminal (nothing when not a terminal or disabled)."""

    def __init__(self, job_id: UUID, enabled: bool | None, stream: TextIO | None = None):
        self._stream = stream or sys.stderr
        if enabled is None:
            enabled = hasattr(self._stream, "isatty") and self._stream.isatty()
        self._enabled = enabled
        self._job_id = job_id
        self._shown = False

    def update(self, status: Status, waited: float) -> None:
        """Shows ``status`` after ``waited`` seconds (a status callback of ``wait_for_results``)."""
        if not self._enabled or waited < PROGRESS_AFTER_SECONDS:
            return
        self._stream.write(f"\rIQM job {self._job_id}: {status.value} ({waited:.0f} s)   ")
        self._stream.flush()
        self._shown = True

    def finish(self) -> None:
        """Ends the line, if one was shown."""
        if self._shown:
            self._stream.write("\n")
            self._stream.flush()


__all__ = ["PROGRESS_AFTER_SECONDS", "ProgressLine"]
