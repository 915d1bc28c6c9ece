"""Progress of a wait: its words, on a pseudo-terminal, in a (simulated) notebook, and silence."""

from __future__ import annotations

import io
import os
import pty
import sys
import uuid

import cirq
import pytest

from cirq_iqm_ext import IQMSampler
from cirq_iqm_ext.sampling import progress as progress_module
from cirq_iqm_ext.sampling.progress import (
    PROGRESS_AFTER_SECONDS,
    NotebookProgress,
    ProgressLine,
    describe,
    progress_for,
)
from cirq_iqm_ext.server import EmbeddedServer
from cirq_iqm_ext.wire.models import RunStatus, Status

JOB = uuid.UUID("0b0e5a3c-0000-4000-8000-000000000001")
LATER = PROGRESS_AFTER_SECONDS + 2


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (Status.PENDING_COMPILATION, "pending compilation (5 s)"),
        (RunStatus(Status.PENDING_EXECUTION, queue_position=0), "next in the queue"),
        (RunStatus(Status.PENDING_EXECUTION, queue_position=3), "3 job(s) ahead"),
        (
            RunStatus(Status.PENDING_EXECUTION, circuits_done=40, circuits_total=100),
            "pending execution, 40/100 circuits (5 s)",
        ),
        (RunStatus(Status.READY, queue_position=2), "ready (5 s)"),
    ],
)
def test_the_line_says_what_the_server_says(status, expected):
    text = describe(JOB, status, 5.0)
    assert text.startswith(f"IQM job {JOB}: ")
    assert text.endswith(expected) or expected in text


def _pty_stream() -> tuple[io.TextIOWrapper, int]:
    leader, follower = pty.openpty()
    return os.fdopen(follower, "w", encoding="utf-8"), leader


def test_a_terminal_gets_the_line_unasked():
    stream, leader = _pty_stream()
    try:
        line = ProgressLine(JOB, None, stream)
        line.update(RunStatus(Status.PENDING_EXECUTION, queue_position=1), 1.0)  # too early
        line.update(RunStatus(Status.PENDING_EXECUTION, queue_position=1), LATER)
        line.update(RunStatus(Status.READY), LATER + 1)
        line.finish()
        written = os.read(leader, 4096).decode()
    finally:
        stream.close()
        os.close(leader)
    assert written.count("IQM job") == 2
    assert "1 job(s) ahead" in written
    assert written.rstrip().endswith(f"ready ({LATER + 1:.0f} s)")


def test_a_pipe_gets_nothing_unless_asked():
    quiet, loud = io.StringIO(), io.StringIO()
    for stream, enabled in ((quiet, None), (loud, True)):
        line = progress_for(JOB, enabled, stream)
        line.update(Status.PENDING_EXECUTION, LATER)
        line.finish()
    assert quiet.getvalue() == ""
    assert "pending execution" in loud.getvalue()
    muted = progress_for(JOB, False, loud)
    muted.update(Status.PENDING_EXECUTION, LATER)
    assert loud.getvalue().count("IQM job") == 1


class _FakeHandle:
    def __init__(self, shown: list) -> None:
        self.shown = shown

    def update(self, view) -> None:
        self.shown.append(view)


def test_a_notebook_gets_one_cell_updated_in_place():
    shown: list = []
    calls: list = []

    def display(view, display_id):
        calls.append(display_id)
        shown.append(view)
        return _FakeHandle(shown)

    cell = NotebookProgress(JOB, display)
    cell.update(RunStatus(Status.PENDING_EXECUTION, queue_position=2), 1.0)  # too early
    assert calls == []
    cell.update(RunStatus(Status.PENDING_EXECUTION, queue_position=2), LATER)
    cell.update(RunStatus(Status.PENDING_EXECUTION, circuits_done=3, circuits_total=10), LATER)
    cell.update(RunStatus(Status.READY), LATER + 1)
    cell.finish()
    assert calls == [True]  # one cell, made once, then updated
    assert "2 job(s) ahead" in repr(shown[0])
    assert '<progress value="3" max="10">' in shown[1]._repr_html_()
    assert repr(shown[-1]).endswith(f"ready ({LATER + 1:.0f} s)")
    assert "<code>" in shown[-1]._repr_html_()


def test_outside_a_kernel_no_ipython_is_imported(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    assert progress_module._notebook_display() is None
    assert isinstance(progress_for(JOB, True, io.StringIO()), ProgressLine)


def test_a_slow_job_shows_its_queue_position_on_a_terminal(monkeypatch):
    # Two jobs on one worker, each 4 s in each pending state: the second waits behind the first.
    circuit = cirq.Circuit(cirq.X(cirq.LineQubit(0)), cirq.measure(cirq.LineQubit(0), key="m"))
    stream, leader = _pty_stream()
    monkeypatch.setattr(sys, "stderr", stream)
    try:
        with (
            EmbeddedServer("adonis", seed=1, job_delay=8.0) as server,
            IQMSampler(server.url, api="iqm-server", quantum_computer="adonis") as sampler,
        ):
            first = sampler.submit(circuit, repetitions=5)
            second = sampler.submit(circuit, repetitions=5)
            second.result()
            first.result()
        stream.flush()
        written = os.read(leader, 65536).decode()
    finally:
        stream.close()
        os.close(leader)
    assert f"IQM job {second.job_id}: pending" in written
    assert "next in the queue" in written
    assert "ready" in written
