"""Job retention: which finished jobs the store keeps, and what it remembers of those it evicted.

The store keeps finished jobs (``ready``, ``failed``, ``aborted``, ``deleted``) within three
bounds of a :class:`RetentionPolicy`: a number of jobs, bytes of measurement results and an age.
Beyond a bound the oldest finished jobs go first, those whose results a client has already
fetched before those nobody has read yet; the job that has just finished is never the one evicted
to make room for itself. Jobs still pending are never evicted (the queue bounds them).

An evicted job leaves a :class:`Tombstone` (when and why), so a late client is told that its job
expired rather than that it never existed; tombstones are bounded too, and the oldest are
forgotten first. Nothing here locks: :class:`~cirq_iqm_ext.server.jobs.JobStore` calls it under its
own lock.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from dataclasses import dataclass
from uuid import UUID

#: Finished jobs kept by default.
DEFAULT_RETAIN_JOBS = 10_000
#: Bytes of measurement results kept by default (a byte per measured qubit and shot): a
#: 100-point sweep at 10,000 shots of 20 qubits takes 20 MB of it.
DEFAULT_RETAIN_BYTES = 1 << 30
#: Seconds a finished job is kept by default (a week); ``0`` keeps jobs without an age limit.
DEFAULT_RETAIN_SECONDS = 7 * 24 * 3600.0
#: Tombstones kept per retained job (at least :data:`MIN_TOMBSTONES`).
TOMBSTONES_PER_JOB = 4
MIN_TOMBSTONES = 1000


@dataclass(frozen=True)
class RetentionPolicy:
    """The bounds on the finished jobs a server keeps.

    Attributes:
        max_jobs: Most finished jobs kept.
        max_bytes: Most bytes of measurement results kept.
        max_age: Seconds a job is kept after it finished (``0``: no age limit).
    """

    max_jobs: int = DEFAULT_RETAIN_JOBS
    max_bytes: int = DEFAULT_RETAIN_BYTES
    max_age: float = DEFAULT_RETAIN_SECONDS

    def __post_init__(self) -> None:
        if self.max_jobs < 1 or self.max_bytes < 0 or not 0 <= self.max_age < float("inf"):
            raise ValueError(
                "retention: keep at least 1 job, >= 0 bytes and a finite age >= 0 seconds "
                f"(got {self.max_jobs} jobs, {self.max_bytes} bytes, {self.max_age} s)"
            )

    @property
    def max_tombstones(self) -> int:
        """Most evicted jobs remembered (for the "expired" answer)."""
        return max(MIN_TOMBSTONES, TOMBSTONES_PER_JOB * self.max_jobs)


@dataclass(frozen=True)
class Tombstone:
    """What is left of an evicted job: when, why, and whose it was."""

    evicted_at: str
    reason: str
    owner: str | None


@dataclass
class _Entry:
    nbytes: int
    finished_at: float
    fetched: bool = False


class Retention:
    """The finished jobs in the order they finished, their sizes and whether they were read.

    Args:
        policy: The bounds.
    """

    def __init__(self, policy: RetentionPolicy):
        self.policy = policy
        self._finished: collections.OrderedDict[UUID, _Entry] = collections.OrderedDict()
        self.total_bytes = 0

    def __len__(self) -> int:
        return len(self._finished)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._finished

    def add(self, job_id: UUID, nbytes: int, finished_at: float, *, fetched: bool = False) -> None:
        """Records a job that finished (again: its size and state are replaced)."""
        self.remove(job_id)
        self._finished[job_id] = _Entry(nbytes, finished_at, fetched)
        self.total_bytes += nbytes

    def remove(self, job_id: UUID) -> None:
        """Forgets a job (evicted or discarded)."""
        entry = self._finished.pop(job_id, None)
        if entry is not None:
            self.total_bytes -= entry.nbytes

    def mark_fetched(self, job_id: UUID) -> None:
        """Notes that a client has read the job's results: it may go before unread ones."""
        entry = self._finished.get(job_id)
        if entry is not None:
            entry.fetched = True

    def expired(self, job_id: UUID, now: float) -> bool:
        """Whether a finished job is past the age limit."""
        entry = self._finished.get(job_id)
        age = self.policy.max_age
        return entry is not None and age > 0 and now - entry.finished_at > age

    def victims(self, now: float, keep: UUID | None = None) -> Iterator[tuple[UUID, str]]:
        """The jobs to evict now and why, one at a time (each is removed as it is yielded).

        Args:
            now: The current time (seconds since the epoch).
            keep: A job never chosen (the one that has just finished).
        """
        policy = self.policy
        if policy.max_age > 0:
            for job_id, entry in list(self._finished.items()):
                if now - entry.finished_at <= policy.max_age:
                    break
                if job_id != keep:
                    self.remove(job_id)
                    yield job_id, f"it had been finished for more than {_duration(policy.max_age)}"
        while len(self._finished) > policy.max_jobs:
            oldest = self._oldest(keep)
            if oldest is None:
                return
            self.remove(oldest)
            yield oldest, f"the server keeps at most {policy.max_jobs} finished jobs"
        while self.total_bytes > policy.max_bytes:
            oldest = self._oldest(keep, with_bytes=True)
            if oldest is None:
                return
            self.remove(oldest)
            yield oldest, f"the server keeps at most {_size(policy.max_bytes)} of results"

    def _oldest(self, keep: UUID | None, *, with_bytes: bool = False) -> UUID | None:
        """The oldest fetched job, else the oldest unread one (never ``keep``)."""
        fallback = None
        for job_id, entry in self._finished.items():
            if job_id == keep or (with_bytes and not entry.nbytes):
                continue
            if entry.fetched:
                return job_id
            if fallback is None:
                fallback = job_id
        return fallback


class Tombstones:
    """Evicted jobs remembered in eviction order, at most ``limit`` of them."""

    def __init__(self, limit: int):
        self.limit = limit
        self._items: collections.OrderedDict[UUID, Tombstone] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, job_id: UUID) -> Tombstone | None:
        """The tombstone of an evicted job, or ``None``."""
        return self._items.get(job_id)

    def add(self, job_id: UUID, tombstone: Tombstone) -> None:
        """Remembers an evicted job; forgets the oldest beyond the limit."""
        self._items.pop(job_id, None)
        self._items[job_id] = tombstone
        while len(self._items) > self.limit:
            self._items.popitem(last=False)


def expiry_message(job_id: UUID, tombstone: Tombstone) -> str:
    """The answer for an evicted job: that it expired, when and why, and what to do."""
    return (
        f"Job {job_id} has expired: the server evicted it at {tombstone.evicted_at} because "
        f"{tombstone.reason}. Fetch results sooner after a job finishes, or start the server "
        "with a longer retention (serve --retain-jobs, --retain-bytes, --retain-age)"
    )


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600)):
        if seconds >= 2 * size:
            return f"{seconds:g} s ({seconds / size:g} {unit})"
    return f"{seconds:g} s"


def _size(nbytes: int) -> str:
    if nbytes >= 1 << 20:
        return f"{nbytes / (1 << 20):.6g} MiB"
    return f"{nbytes} bytes"
