"""Issue 18: on the IQM Server API the client wakes sooner when the server says the job is
nearly done, and is still never busier than IQM's client 36 (a poll at once, then one every
``polling_interval``).

A scripted status poll on a fake clock stands in for the server here: the project's server
reports its progress only as "none" or "all circuits" (it simulates a batch at once), so the
rate estimate cannot be driven through it; the end-to-end tests cover the real answers.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from cirq_iqm_ext import Status
from cirq_iqm_ext.client.polling import CompletionEstimate, PollSchedule, Progress, wait_while


class Job:
    """A job of ``circuits`` circuits done at an even rate between ``start`` and ``finish``."""

    def __init__(self, start: float, finish: float, circuits: int = 100, reports: bool = True):
        self.start, self.finish, self.circuits, self.reports = start, finish, circuits, reports
        self.now = 0.0
        self.polls: list[float] = []

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds

    def monotonic(self) -> float:
        return self.now

    def poll(self, hold: float) -> tuple[Status, bool, Progress | None]:
        self.polls.append(self.now)
        self.now += 0.004  # the request's own round trip
        if self.now >= self.finish:
            return Status.READY, False, None
        if self.now < self.start:
            return Status.PENDING_EXECUTION, False, None
        share = (self.now - self.start) / (self.finish - self.start)
        done = int(share * self.circuits)
        return Status.PENDING_EXECUTION, False, (done, self.circuits) if self.reports else None

    def wait(self, interval: float = 1.0, pace: float | None = 1.0) -> None:
        wait_while(
            uuid.uuid4(),
            self.poll,
            frozenset({Status.PENDING_EXECUTION}),
            what="finish",
            timeout_secs=120,
            schedule=PollSchedule(max_interval=interval, request_timeout=120.0, pace=pace),
            monotonic=self.monotonic,
            sleep=self.sleep,
        )


def never_busier_than_iqm(polls: list[float], pace: float) -> bool:
    """IQM's job tracker has made poll number k by (k - 1) * pace: this client never more."""
    return all(at >= (k - 1) * pace - 1e-9 for k, at in enumerate(polls, start=1))


@pytest.mark.parametrize("start", [0.05, 0.3, 2.0])
def test_progress_wakes_the_client_sooner_with_fewer_polls_within_iqms_pace(start):
    late_guided, late_blind, polls_guided, polls_blind = [], [], 0, 0
    for finish in np.linspace(start + 1.5, 40.0, 60):
        guided, blind = Job(start, finish), Job(start, finish, reports=False)
        guided.wait()
        blind.wait()
        assert never_busier_than_iqm(guided.polls, 1.0)
        assert never_busier_than_iqm(blind.polls, 1.0)
        assert guided.polls[-1] - finish < 1.0 + 0.01  # never later than one interval
        late_guided.append(guided.polls[-1] - finish)
        late_blind.append(blind.polls[-1] - finish)
        polls_guided += len(guided.polls)
        polls_blind += len(blind.polls)
    # Polls saved while far from the end are spent just after it: sooner and fewer.
    assert np.mean(late_guided) < 0.6 * np.mean(late_blind)
    assert polls_guided < 0.5 * polls_blind


def test_a_job_stuck_at_all_circuits_done_is_not_polled_in_a_busy_loop():
    class Stuck(Job):
        def poll(self, hold: float) -> tuple[Status, bool, Progress | None]:
            self.polls.append(self.now)
            self.now += 0.004
            if self.now >= self.finish:
                return Status.READY, False, None
            return Status.PENDING_EXECUTION, False, (100, 100)  # writing the result, slowly

    job = Stuck(0.0, 20.0)
    job.wait(interval=1.0, pace=None)  # no pace (v1 without long polling): the schedule only
    # The "nearly done" polls grow back to the interval: about 20 polls in 20 s, not 1,000.
    assert len(job.polls) < 40
    assert job.polls[-1] - 20.0 < 1.0 + 0.01


def test_the_estimate_is_the_measured_rate_and_unknown_without_two_readings():
    estimate = CompletionEstimate()
    assert estimate.update(1.0, None) is None
    assert estimate.update(1.0, (10, 100)) is None  # one reading: no rate yet
    assert estimate.update(2.0, (10, 100)) is None  # no progress since: no rate
    assert estimate.update(3.0, (30, 100)) == pytest.approx(7.0)  # 10 circuits/s, 70 to go
    assert estimate.update(3.5, (100, 100)) == 0.0  # all done: the result is being written
    assert estimate.update(4.0, (5, 0)) is None  # nonsense from a server is no estimate
