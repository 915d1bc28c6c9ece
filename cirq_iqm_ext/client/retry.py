"""Retry and polling schedules as small pure functions.

Two loops, two policies: a *retry* repeats one HTTP request that failed in a transient way
(connection error, 429, 502, 503, 504); *polling* repeats status requests while a job is not
finished. Both take their randomness and time from arguments, so tests pin them without a network
or a real clock.

Whether a failed request may be repeated at all is :func:`may_retry`: reads (``GET``) and ``abort``
always may; ``POST jobs`` creates a job, so it is repeated only when the failure proves that the
server did not act on it (the connection was never opened, or the server refused with 429/503), or
when the server deduplicates on the ``Idempotency-Key`` the request carries. Any other failure of a
submission is *ambiguous* (:func:`is_ambiguous`): the job may or may not exist.
"""

from __future__ import annotations

import email.utils
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

#: HTTP statuses that say "try again later" without the request having taken effect.
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
#: Of those, the ones that are an explicit refusal by the server: the request did not take effect.
REFUSAL_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long one request is retried.

    Attributes:
        max_attempts: Attempts in all, the first included.
        max_total_seconds: No new attempt starts after this much time since the first.
        base_delay: Backoff before the second attempt (before jitter), doubling each time.
        max_delay: Cap of one backoff.
        retry_after_cap: Cap on a server's ``Retry-After``; a longer one is not waited for.
        statuses: Response statuses that are retried.
        submission_connect_seconds: A job submission whose connection could not even be opened
            (refused, connect timeout: the request never left) is retried for this long, with
            backoff capped at :data:`OUTAGE_MAX_BACKOFF`, on top of ``max_attempts``: such a
            repeat cannot create a second job, and a restarting server comes back within it.
    """

    max_attempts: int = 5
    max_total_seconds: float = 60.0
    base_delay: float = 0.25
    max_delay: float = 8.0
    retry_after_cap: float = 60.0
    statuses: frozenset[int] = field(default=TRANSIENT_STATUSES)
    submission_connect_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        limits = (self.base_delay, self.max_delay, self.max_total_seconds)
        if min(*limits, self.submission_connect_seconds) < 0:
            raise ValueError("RetryPolicy delays and time limits must not be negative")


#: While a server cannot be reached (during a wait, or for a submission that never left), the
#: backoff starts here and doubles up to :data:`OUTAGE_MAX_BACKOFF`: a restarted server is found
#: again within a few seconds, and many waiting clients do not hammer it the moment it is back.
OUTAGE_FIRST_BACKOFF = 0.25
#: The longest sleep between two attempts to reach a server that is down.
OUTAGE_MAX_BACKOFF = 3.0


def outage_backoff(
    failures: int, uniform: Callable[[float, float], float] = random.uniform
) -> float:
    """The sleep after ``failures`` consecutive failures to reach the server (1-based).

    Drawn from ``[ceiling / 2, ceiling]`` ("equal jitter"): spread out, yet never so short that a
    long outage becomes a busy loop.
    """
    exponent = min(max(failures, 1) - 1, 62)
    ceiling = min(OUTAGE_MAX_BACKOFF, OUTAGE_FIRST_BACKOFF * math.pow(2.0, exponent))
    return uniform(ceiling / 2, ceiling)


def full_jitter(ceiling: float, uniform: Callable[[float, float], float] = random.uniform) -> float:
    """A delay drawn uniformly from ``[0, ceiling]`` (AWS's "full jitter")."""
    return uniform(0.0, ceiling)


def backoff_ceiling(attempt: int, policy: RetryPolicy) -> float:
    """The largest backoff after failed attempt number ``attempt`` (1-based), before jitter."""
    exponent = min(attempt - 1, 62)
    return min(policy.max_delay, policy.base_delay * math.pow(2.0, exponent))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header (delta seconds or an HTTP date).

    Returns:
        The delay in seconds (never negative), or ``None`` when the header is absent or unreadable.
    """
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        now = now or datetime.now(UTC)
        seconds = (when - now).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def retry_delay(
    attempt: int,
    elapsed: float,
    policy: RetryPolicy,
    *,
    retry_after: float | None = None,
    jitter: Callable[[float], float] = full_jitter,
) -> float | None:
    """Decides whether to retry after failed attempt ``attempt`` and how long to sleep first.

    Args:
        attempt: The number of the attempt that just failed (1-based).
        elapsed: Seconds since the first attempt started.
        policy: Limits and backoff parameters.
        retry_after: The server's ``Retry-After`` in seconds, if it sent one.
        jitter: Maps a ceiling to the actual delay; injectable so tests can pin it.

    Returns:
        Seconds to sleep before the next attempt, or ``None`` to give up.
    """
    if attempt >= policy.max_attempts:
        return None
    delay = jitter(backoff_ceiling(attempt, policy))
    if retry_after is not None:
        if retry_after > policy.retry_after_cap:
            return None
        # Never earlier than the server asked; a jittered backoff on top of a tiny Retry-After keeps
        # many clients told "0" from coming back all at the same instant.
        delay = max(retry_after, delay)
    if elapsed + delay > policy.max_total_seconds:
        return None
    return delay


def may_retry(
    *,
    status: int | None,
    request_sent: bool,
    idempotent: bool,
    policy: RetryPolicy,
) -> bool:
    """Whether a failed attempt may be repeated at all (:func:`retry_delay` decides when).

    Args:
        status: The HTTP status of the answer, or ``None`` when the attempt failed in transport.
        request_sent: Whether any of the request may have reached the server: ``False`` only when
            the connection could not be opened (connect error, connect or pool timeout).
        idempotent: Whether repeating the request is harmless: reads and ``abort``, and a job
            submission whose ``Idempotency-Key`` the server is known to deduplicate on.
        policy: The statuses worth retrying.

    Returns:
        True when a repeat is both useful (a transient failure) and safe (no duplicate effect).
    """
    if status is not None and status not in policy.statuses:
        return False
    if idempotent or not request_sent:
        return True
    return status in REFUSAL_STATUSES


def is_ambiguous(*, status: int | None, request_sent: bool, idempotent: bool) -> bool:
    """Whether a failed non-idempotent request may or may not have taken effect on the server.

    True for a transport failure after (part of) the request was sent, and for a 5xx other than
    503: a gateway answers 502/504 whether or not the server behind it acted, and a 500 may come
    after the job was stored. A definite answer (2xx, 4xx including 429, and 503, the documented
    "not accepted, come back later") is never ambiguous, nor is anything idempotent.
    """
    if idempotent or not request_sent:
        return False
    return status is None or (status >= 500 and status not in REFUSAL_STATUSES)


def poll_intervals(initial: float, maximum: float, factor: float = 1.5) -> Iterator[float]:
    """Intervals between status polls: start short, grow by ``factor`` up to ``maximum``.

    A short start keeps the latency low for quick jobs; the growth keeps long jobs from flooding the
    server with requests.
    """
    interval = min(initial, maximum)
    while True:
        yield interval
        interval = min(maximum, interval * factor)
