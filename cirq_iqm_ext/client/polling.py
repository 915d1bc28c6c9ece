"""Waiting for a job: status polls on a growing schedule, long polls where the server holds them.

:func:`wait_while` repeats one status request until the job leaves the statuses being waited
through, or raises :class:`~cirq_iqm_ext.APITimeoutError` at the deadline. A wait outlasts
outages: when a request fails after its own retries (the server refuses connections while it
restarts, or answers 5xx), :func:`through_outages` tries again with jittered backoff capped at
a few seconds until the wait's own deadline, not the retry budget of one request. The request,
the clock and the sleep come from arguments, so tests drive it with no network and no real time.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from uuid import UUID

from cirq_iqm_ext.client.retry import outage_backoff, poll_intervals
from cirq_iqm_ext.client.server_warnings import IQMServerWarning
from cirq_iqm_ext.errors import APITimeoutError, IQMConnectionError, JobSubmissionUncertainError
from cirq_iqm_ext.wire.models import Status

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

#: The first status poll comes this soon, so short jobs return quickly; later polls slow down.
FIRST_POLL_SECONDS = 0.02
#: Longest a long-polling status request asks the server to hold its answer.
LONG_POLL_SECONDS = 10.0

#: What a server says of a running job's progress: (circuits done, circuits in all).
Progress = tuple[int, int]

#: One status request: ``poll(hold)`` -> (status, whether the server long-polls) or (status,
#: long-polls, progress or ``None``). ``hold`` is how long the server may keep the answer back
#: waiting for a change (0: answer at once).
StatusPoll = Callable[[float], tuple[Status, bool] | tuple[Status, bool, Progress | None]]

#: Far from the estimated end, a sleep lasts this share of the time left, so that the client
#: estimates again, more precisely, shortly before the end.
ESTIMATE_SHARE = 0.9


@dataclass
class CompletionEstimate:
    """When a running job will likely be done, from the progress its status polls report.

    The rate is measured on this client's clock between the first poll that saw some progress
    and the latest one (server clocks may differ); all circuits done means the result is being
    written, so the job is done in moments.
    """

    first: tuple[float, int] | None = None

    def update(self, now: float, progress: Progress | None) -> float | None:
        """Seconds left after a poll at ``now`` that reported ``progress``; ``None``: unknown."""
        if progress is None:
            return None
        done, total = progress
        if total <= 0 or done < 0:
            return None
        if done >= total:
            return 0.0
        if self.first is None or done < self.first[1]:
            self.first = (now, done)
            return None
        started, done_then = self.first
        if done == done_then or now <= started:
            return None
        return (total - done) * (now - started) / (done - done_then)


@dataclass(frozen=True)
class PollSchedule:
    """How often to poll and how long to let the server hold a status request.

    Attributes:
        max_interval: The longest sleep between two polls (``seconds_between_calls``).
        request_timeout: The client's per-request timeout; a hold takes at most half of it.
        first_interval: The first sleep; each later one is 1.5 times longer, up to the maximum.
        long_poll_seconds: The longest hold asked for.
        pace: ``None``, or a pace never to be busier than: poll number ``k`` (1-based) comes no
            earlier than ``(k - 1) * pace`` s after the wait began. IQM's client 36 polls once
            at once and then every 1 s (``polling_interval`` of its job tracker), so with
            ``pace=1`` this client never has made more status requests than it at any moment.
    """

    max_interval: float
    request_timeout: float
    first_interval: float = FIRST_POLL_SECONDS
    long_poll_seconds: float = LONG_POLL_SECONDS
    pace: float | None = None

    def sleep_before_next(
        self,
        interval: float,
        polls: int,
        elapsed: float,
        left: float | None = None,
        near: int = 0,
    ) -> float:
        """The sleep before the next plain poll, after ``polls`` polls and ``elapsed`` s.

        Args:
            interval: The sleep of the growing schedule.
            polls: Polls made so far.
            elapsed: Seconds since the wait began.
            left: The estimated seconds until the job is done (:class:`CompletionEstimate`),
                or ``None``. Far from done (``left >= interval``), the client sleeps until
                shortly before then, up to ``long_poll_seconds`` (saving polls), to estimate
                again; near it, it wakes just after the estimated end, and then again after
                ``first_interval`` growing with ``near``, the polls made near the end. With a
                ``pace`` the polls saved earlier are the only ones it may spend sooner.
            near: Consecutive polls so far whose estimate was within ``interval``.
        """
        wanted = interval
        if left is not None:
            if left >= interval:
                wanted = min(max(interval, ESTIMATE_SHARE * left), self.long_poll_seconds)
            else:  # aim just past the estimated end: a poll before it would be spent in vain
                soon = min(interval, self.first_interval * 1.5**near)
                wanted = left + self.first_interval if near == 0 else soon
        if self.pace is None:
            return wanted
        return max(wanted, polls * self.pace - elapsed)

    def hold(self, remaining: float) -> float:
        """How long the next long poll may hold, with ``remaining`` s left before the deadline."""
        return min(self.long_poll_seconds, self.request_timeout / 2, remaining)


def wait_while(
    job_id: UUID,
    poll: StatusPoll,
    waiting_for: frozenset[Status],
    *,
    what: str,
    timeout_secs: float,
    schedule: PollSchedule,
    monotonic: Callable[[], float],
    sleep: Callable[[float], None],
    status_callback: Callable[[Status, float], None] | None = None,
) -> Status:
    """Polls while the job's status is in ``waiting_for`` (or unknown to this version).

    Args:
        job_id: The job, for messages.
        poll: One status request.
        waiting_for: The statuses to wait through.
        what: What the job should do, for the timeout message (``"finish"``).
        timeout_secs: How long to wait at most.
        schedule: Poll intervals and long-poll holds.
        monotonic: The clock for the deadline.
        sleep: Sleeps between plain polls (not after a long poll, which has waited already).
        status_callback: Called after each poll with the status and the seconds waited so far.

    Returns:
        The first known status outside ``waiting_for``.

    Raises:
        APITimeoutError: Still waiting at the deadline; the job keeps running on the server.
    """
    started = monotonic()
    deadline = started + timeout_secs
    warned_unknown: set[str] = set()
    long_poll = False
    estimate = CompletionEstimate()
    near = 0
    intervals = poll_intervals(schedule.first_interval, schedule.max_interval)
    for polls, interval in enumerate(intervals, start=1):
        # Where the server can hold a status request until the job changes, ask it to: the
        # answer then comes the moment the job is done, with no polling delay.
        hold = schedule.hold(deadline - monotonic())
        asked = hold if long_poll else 0.0
        answer = through_outages(
            functools.partial(poll, asked),
            job_id=job_id,
            deadline=deadline,
            timeout_secs=timeout_secs,
            monotonic=monotonic,
            sleep=sleep,
        )
        status, long_poll = answer[0], answer[1]
        left = estimate.update(monotonic(), answer[2] if len(answer) > 2 else None)
        if status_callback is not None:
            status_callback(status, monotonic() - started)
        if not status.is_known:
            _warn_unknown_once(job_id, status, warned_unknown)
        elif status not in waiting_for:
            return status
        remaining = deadline - monotonic()
        if remaining <= 0:
            raise APITimeoutError(
                f"Job {job_id} did not {what} within {timeout_secs:g} s; it is still "
                f"{status.value} on the server. Fetch it later with "
                f"get_run({str(job_id)!r}) or wait_for_results({str(job_id)!r})",
                job_id=job_id,
            )
        if not long_poll:
            elapsed = monotonic() - started
            pause = schedule.sleep_before_next(interval, polls, elapsed, left, near)
            near = near + 1 if left is not None and left < interval else 0
            sleep(min(pause, remaining))
    raise AssertionError("poll_intervals() never ends")  # pragma: no cover


def through_outages(
    request: Callable[[], _T],
    *,
    job_id: UUID,
    deadline: float,
    timeout_secs: float,
    monotonic: Callable[[], float],
    sleep: Callable[[float], None],
) -> _T:
    """Runs ``request`` (one read of a wait) until it gets through or the wait's deadline passes.

    An :class:`~cirq_iqm_ext.IQMConnectionError` (the server unreachable, or a 5xx, after the
    request's own retries) is not the end of a wait: the job lives on the server, which may just
    be restarting. Other errors (job not found, authentication, a malformed answer) are final.

    Raises:
        IQMConnectionError: Still failing at the deadline; it says for how long and that the job
            is unaffected on the server.
    """
    failures = 0
    outage_started = 0.0
    while True:
        try:
            return request()
        except JobSubmissionUncertainError:
            raise  # not a read: never repeated here
        except IQMConnectionError as error:
            failures += 1
            now = monotonic()
            if failures == 1:
                outage_started = now
            remaining = deadline - now
            if remaining <= 0:
                raise _outage_error(error, job_id, now - outage_started, timeout_secs) from error
            delay = min(outage_backoff(failures), remaining)
            logger.warning(
                "Job %s: the server cannot be reached (%s); still waiting, next try in %.2f s",
                job_id,
                error.message,
                delay,
            )
            sleep(delay)


def _outage_error(
    error: IQMConnectionError, job_id: UUID, outage: float, timeout_secs: float
) -> IQMConnectionError:
    return IQMConnectionError(
        f"Waiting for job {job_id} ended at its timeout of {timeout_secs:g} s while the server "
        f"could not be reached (for the last {outage:.1f} s; last failure: {error.message}). "
        f"The job is unaffected on the server; fetch it later with get_run({str(job_id)!r}) "
        f"or wait_for_results({str(job_id)!r})",
        url=error.url,
        attempts=error.attempts,
        status_code=error.status_code,
        detail=error.detail,
        job_id=job_id,
    )


def _warn_unknown_once(job_id: UUID, status: Status, warned: set[str]) -> None:
    if status.value in warned:
        return
    warned.add(status.value)
    warnings.warn(
        f"Job {job_id} has the status {status.value!r}, which this version of "
        "cirq-iqm-ext does not know; treating it as still pending",
        IQMServerWarning,
        # _warn_unknown_once, wait_while, the client's wait method, then the user's code.
        stacklevel=4,
    )
