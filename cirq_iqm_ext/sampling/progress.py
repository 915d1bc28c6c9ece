"""Progress of a wait, shown to the person waiting: a line on a terminal, a live cell in Jupyter.

What is shown is what the server says: the job's state, its queue position and the circuits done
of the total where the server reports them (the IQM Server API does), and the seconds waited.
Nothing appears for waits shorter than :data:`PROGRESS_AFTER_SECONDS`, so quick jobs stay quiet
and the fast path pays nothing but a comparison per poll. Non-interactive runs (a script piped to
a file, CI) show nothing unless ``progress=True`` asks for it.

The notebook view is a plain display object updated in place (``IPython.display`` with a
``display_id``): no widgets, so it renders in JupyterLab, classic notebooks, VS Code and exported
HTML alike.
"""

from __future__ import annotations

import html
import sys
from typing import Any, Protocol, TextIO
from uuid import UUID

from cirq_iqm_ext.wire.models import RunStatus, Status

#: Progress is shown only for waits longer than this many seconds.
PROGRESS_AFTER_SECONDS = 3.0


class Progress(Protocol):
    """Something that shows how a wait goes."""

    def update(self, status: Status | RunStatus, waited: float) -> None:
        """Shows ``status`` after ``waited`` seconds (a callback of ``wait_for_results``)."""

    def finish(self) -> None:
        """Ends the display, if anything was shown."""


def describe(job_id: UUID, status: Status | RunStatus, waited: float) -> str:
    """One line: ``IQM job <id>: pending execution, 2 jobs ahead (12 s)``."""
    run = status if isinstance(status, RunStatus) else RunStatus(status)
    details = [run.status.value]
    if run.queue_position is not None and not run.status.is_final:
        ahead = run.queue_position
        details.append("next in the queue" if ahead == 0 else f"{ahead} job(s) ahead")
    if run.circuits_total:
        details.append(f"{run.circuits_done or 0}/{run.circuits_total} circuits")
    return f"IQM job {job_id}: {', '.join(details)} ({waited:.0f} s)"


class ProgressLine:
    """A single updating status line on a terminal (nothing when not a terminal or disabled).

    Args:
        job_id: The job waited for.
        enabled: ``True`` always, ``False`` never, ``None`` only when ``stream`` is a terminal.
        stream: Where to write (default ``sys.stderr``).
    """

    def __init__(self, job_id: UUID, enabled: bool | None, stream: TextIO | None = None):
        self._stream = stream or sys.stderr
        if enabled is None:
            enabled = hasattr(self._stream, "isatty") and self._stream.isatty()
        self._enabled = enabled
        self._job_id = job_id
        self._shown = False
        self._width = 0

    def update(self, status: Status | RunStatus, waited: float) -> None:
        """Rewrites the line with ``status`` after ``waited`` seconds."""
        if not self._enabled or waited < PROGRESS_AFTER_SECONDS:
            return
        text = describe(self._job_id, status, waited)
        # Pad over what a longer previous line left on the terminal.
        self._stream.write("\r" + text.ljust(self._width) + "   ")
        self._stream.flush()
        self._width = len(text)
        self._shown = True

    def finish(self) -> None:
        """Ends the line, if one was shown."""
        if self._shown:
            self._stream.write("\n")
            self._stream.flush()


class _View:
    """What the notebook shows: the line as text, and as HTML with a bar where counts exist."""

    def __init__(self, text: str, run: RunStatus) -> None:
        self.text = text
        self.run = run

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        bar = ""
        if self.run.circuits_total:
            bar = (
                f' <progress value="{self.run.circuits_done or 0}" '
                f'max="{self.run.circuits_total}"></progress>'
            )
        return (
            f'<div class="cirq-iqm-ext-progress"><code>{html.escape(self.text)}</code>{bar}</div>'
        )


class NotebookProgress:
    """A live output cell in Jupyter, updated in place (widget-free).

    Args:
        job_id: The job waited for.
        display: ``IPython.display.display`` (injectable for tests).
    """

    def __init__(self, job_id: UUID, display: Any) -> None:
        self._job_id = job_id
        self._display = display
        self._handle: Any = None
        self._last: tuple[Status | RunStatus, float] | None = None

    def update(self, status: Status | RunStatus, waited: float) -> None:
        """Shows or refreshes the cell after :data:`PROGRESS_AFTER_SECONDS`."""
        self._last = (status, waited)
        if waited < PROGRESS_AFTER_SECONDS:
            return
        view = self._view(status, waited)
        if self._handle is None:
            self._handle = self._display(view, display_id=True)
        else:
            self._handle.update(view)

    def finish(self) -> None:
        """Leaves the final state in the cell, if one was shown."""
        if self._handle is not None and self._last is not None:
            self._handle.update(self._view(*self._last))

    def _view(self, status: Status | RunStatus, waited: float) -> _View:
        run = status if isinstance(status, RunStatus) else RunStatus(status)
        return _View(describe(self._job_id, run, waited), run)


class _Silent:
    def update(self, status: Status | RunStatus, waited: float) -> None:
        pass

    def finish(self) -> None:
        pass


def _notebook_display() -> Any:
    """``IPython.display.display`` when running in a Jupyter kernel, else ``None``."""
    if "ipykernel" not in sys.modules:  # cheap test first: no kernel, no IPython import
        return None
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return None
    shell = get_ipython()
    return display if shell is not None and getattr(shell, "kernel", None) is not None else None


def progress_for(job_id: UUID, enabled: bool | None, stream: TextIO | None = None) -> Progress:
    """The right display for where the code runs.

    In a Jupyter kernel a live cell, on a terminal a status line, elsewhere nothing; ``enabled``
    ``True`` shows the line even on a non-terminal stream, ``False`` shows nothing anywhere.
    """
    if enabled is False:
        return _Silent()
    display = _notebook_display()
    if display is not None:
        return NotebookProgress(job_id, display)
    return ProgressLine(job_id, enabled, stream)


__all__ = [
    "PROGRESS_AFTER_SECONDS",
    "NotebookProgress",
    "Progress",
    "ProgressLine",
    "describe",
    "progress_for",
]
