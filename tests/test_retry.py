"""The retry decision and the polling schedule, as pure functions with pinned jitter and clock."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime

import pytest

from cirq_iqm_ext.client.polling import through_outages
from cirq_iqm_ext.client.retry import (
    OUTAGE_MAX_BACKOFF,
    RetryPolicy,
    backoff_ceiling,
    full_jitter,
    outage_backoff,
    parse_retry_after,
    poll_intervals,
    retry_delay,
)
from cirq_iqm_ext.errors import IQMConnectionError, JobNotFoundError


def no_jitter(ceiling: float) -> float:
    return ceiling


def test_backoff_doubles_up_to_the_cap():
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0)
    assert [backoff_ceiling(n, policy) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff_ceiling(10_000, policy) == 3.0  # no overflow on absurd attempt numbers


def test_full_jitter_stays_within_the_ceiling():
    draws = [full_jitter(2.0) for _ in range(200)]
    assert all(0.0 <= d <= 2.0 for d in draws)
    assert len(set(draws)) > 100  # it is random, not a constant
    assert full_jitter(2.0, uniform=lambda a, b: b) == 2.0


def test_attempts_are_bounded():
    policy = RetryPolicy(max_attempts=3, base_delay=0.1)
    assert retry_delay(1, 0.0, policy, jitter=no_jitter) == pytest.approx(0.1)
    assert retry_delay(2, 0.0, policy, jitter=no_jitter) == pytest.approx(0.2)
    assert retry_delay(3, 0.0, policy, jitter=no_jitter) is None


def test_total_time_is_bounded():
    policy = RetryPolicy(max_attempts=100, max_total_seconds=5.0, base_delay=1.0, max_delay=1.0)
    assert retry_delay(1, 3.9, policy, jitter=no_jitter) == 1.0
    assert retry_delay(1, 4.5, policy, jitter=no_jitter) is None


def test_retry_after_is_honoured_up_to_the_cap():
    policy = RetryPolicy(retry_after_cap=10.0, max_total_seconds=100.0)
    assert retry_delay(1, 0.0, policy, retry_after=7.0, jitter=no_jitter) == 7.0
    assert retry_delay(1, 0.0, policy, retry_after=11.0, jitter=no_jitter) is None


def test_a_whole_schedule_never_exceeds_its_budget():
    policy = RetryPolicy(max_attempts=8, max_total_seconds=4.0, base_delay=0.5, max_delay=2.0)
    elapsed = 0.0
    for attempt in itertools.count(1):
        delay = retry_delay(attempt, elapsed, policy, jitter=no_jitter)
        if delay is None:
            break
        elapsed += delay
    assert elapsed <= 4.0
    assert attempt <= 8


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("3", 3.0),
        (" 2.5 ", 2.5),
        ("-4", 0.0),
        ("soon", None),
        ("inf", None),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(header, expected):
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert parse_retry_after(header, now=now) == expected


def test_poll_intervals_grow_to_the_configured_maximum():
    intervals = list(itertools.islice(poll_intervals(0.02, 1.0), 14))
    assert intervals[0] == 0.02
    assert all(b >= a for a, b in itertools.pairwise(intervals))
    assert intervals[-1] == 1.0
    assert next(poll_intervals(5.0, 1.0)) == 1.0


def test_policy_rejects_nonsense():
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(base_delay=-1)


def test_outage_backoff_doubles_to_a_cap_of_a_few_seconds_with_equal_jitter():
    ceilings = [outage_backoff(n, uniform=lambda a, b: b) for n in range(1, 8)]
    assert ceilings == [0.25, 0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert OUTAGE_MAX_BACKOFF == 3.0
    assert outage_backoff(3, uniform=lambda a, b: a) == 0.5  # never below half the ceiling
    assert outage_backoff(10_000) <= OUTAGE_MAX_BACKOFF


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_through_outages_retries_connection_errors_until_it_gets_through():
    clock, job = _Clock(), uuid.uuid4()
    failures = iter([IQMConnectionError("refused")] * 6)

    def request() -> str:
        error = next(failures, None)
        if error is not None:
            raise error
        return "answer"

    got = through_outages(
        request,
        job_id=job,
        deadline=100.0,
        timeout_secs=100.0,
        monotonic=lambda: clock.now,
        sleep=clock.sleep,
    )
    assert got == "answer"
    assert len(clock.sleeps) == 6
    assert all(0.125 <= s <= OUTAGE_MAX_BACKOFF for s in clock.sleeps)


def test_through_outages_gives_up_at_the_deadline_and_passes_other_errors_at_once():
    clock, job = _Clock(), uuid.uuid4()

    def down() -> None:
        raise IQMConnectionError("refused", url="http://127.0.0.1:1/x", attempts=5)

    with pytest.raises(IQMConnectionError) as info:
        through_outages(
            down,
            job_id=job,
            deadline=20.0,
            timeout_secs=20.0,
            monotonic=lambda: clock.now,
            sleep=clock.sleep,
        )
    assert clock.now == pytest.approx(20.0)  # slept exactly up to the deadline, not past it
    assert info.value.job_id == job and "timeout of 20 s" in str(info.value)

    def unknown() -> None:
        raise JobNotFoundError("gone", job_id=job)

    clock.sleeps.clear()
    with pytest.raises(JobNotFoundError):
        through_outages(
            unknown,
            job_id=job,
            deadline=100.0,
            timeout_secs=100.0,
            monotonic=lambda: clock.now,
            sleep=clock.sleep,
        )
    assert clock.sleeps == []
