"""The server's job store and the background worker that runs the jobs.

A job moves ``pending compilation`` → ``pending execution`` → ``ready`` | ``failed`` | ``aborted``,
and any job can be ``deleted`` (its results are dropped; v1 reads it as ``deleted``).
The :class:`JobStore` holds every job behind one lock and hands out JSON-ready snapshots, so HTTP
threads never see a half-updated job. Measurements are kept as numpy arrays; the JSON of a
result is written from them when a client asks (the packed format is cached within a budget).
With a ``state_path`` the store also writes every job and ``Idempotency-Key`` to SQLite, so a
restarted server still answers for the jobs it accepted. Finished jobs are kept within the
bounds of a :class:`~.retention.RetentionPolicy` (count, bytes, age); an evicted job leaves
memory and the database and answers :class:`ExpiredJobError`. The :class:`Worker` runs jobs on
a pool of threads fed by a bounded queue in submission order (like a quantum computer's queue),
and records timestamps on the way.

Nothing here knows about HTTP; the WSGI app turns the store's answers and errors into responses.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID, uuid4

import numpy as np

from cirq_iqm_ext.server.packed_results import PackedCircuit
from cirq_iqm_ext.server.retention import Retention, RetentionPolicy, Tombstone, Tombstones
from cirq_iqm_ext.server.state_dir import StateDirError, prepare_state_dir
from cirq_iqm_ext.wire.models import Metadata, RunRequest, RunResult, RunStatus, Status
from cirq_iqm_ext.wire.packed import pack_bits  # noqa: F401  (still importable from here, as in 0.x)

logger = logging.getLogger(__name__)

#: One circuit's measurements: key -> [shot][qubit] of 0/1 (a list or a 2-D numpy array).
MeasurementDict = dict[str, Any]

_FINAL = frozenset({Status.READY, Status.FAILED, Status.ABORTED, Status.DELETED})


def utc_timestamp(moment: datetime | None = None) -> str:
    """ISO 8601 UTC with milliseconds and a ``Z``, e.g. ``2024-06-11T10:00:00.000Z``."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def request_fingerprint(request: bytes | dict[str, Any]) -> str:
    """A digest that tells "same body" from "different body" (idempotency).

    Given the raw request body, its bytes are hashed (a retry resends the same bytes; hashing
    them costs ~0.1 ms per 100 circuits where canonical JSON of the parsed request cost ~5 ms);
    given a request dict (no body at hand), its canonical JSON is. Different digests are not yet
    a conflict: :meth:`JobStore.create` then compares the parsed requests.
    """
    if isinstance(request, bytes):
        return hashlib.sha256(b"body\n" + request).hexdigest()
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class Executor(Protocol):
    """What the worker needs from a simulator: run a request, return measurements per circuit."""

    def run(
        self, request: RunRequest, progress: Callable[[int], None] | None = None
    ) -> list[MeasurementDict]:
        """Runs every circuit of ``request``, calling ``progress(circuits done)`` as it goes."""
        ...


class QueueFullError(RuntimeError):
    """The worker's queue is full; the client should retry later."""


class UnknownJobError(LookupError):
    """No job has this id."""


class ExpiredJobError(UnknownJobError):
    """The job existed but was evicted under the retention policy.

    Attributes:
        job_id: The job.
        tombstone: When and why it was evicted.
    """

    def __init__(self, job_id: UUID, tombstone: Tombstone):
        super().__init__(str(job_id))
        self.job_id = job_id
        self.tombstone = tombstone


class JobFinishedError(RuntimeError):
    """The job is already ``ready``, ``failed`` or ``aborted`` and cannot be aborted."""


class IdempotencyConflictError(ValueError):
    """An ``Idempotency-Key`` was reused with a different request body."""


@dataclass
class Job:
    """One job's full state. Mutated only by :class:`JobStore` under its lock."""

    id: UUID
    #: The parsed request while the job may still run; dropped when it finishes (the dict
    #: stays), since a retained job's parsed request costs as much memory again.
    parsed_request: RunRequest | None
    request_dict: dict[str, Any]
    calibration_set_id: UUID
    status: Status = Status.PENDING_COMPILATION
    timestamps: dict[str, str] = field(default_factory=dict)
    #: Kept packed, eight bits to a byte (a retained result's size decides how many fit).
    measurements: list[PackedCircuit] | None = None
    message: str | None = None
    warnings: list[str] = field(default_factory=list)
    #: The identity that submitted the job (``None``: submitted without authentication, so
    #: everyone's).
    owner: str | None = None
    #: Circuits executed so far while the job runs (the progress a status reports).
    circuits_done: int = 0
    # Set on abort (or worker shutdown): a worker waiting through the job delay wakes up at once.
    wake: threading.Event = field(default_factory=threading.Event)

    @property
    def is_final(self) -> bool:
        """Whether the job can no longer change."""
        return self.status in _FINAL

    @property
    def request(self) -> RunRequest:
        """The run request (parsed again from :attr:`request_dict` once the job finished)."""
        if self.parsed_request is not None:
            return self.parsed_request
        return RunRequest.from_dict(self.request_dict)


class JobStore:
    """Thread-safe job store, in memory and optionally mirrored to SQLite.

    Args:
        cocos_version: Reported in every job's metadata.
        state_path: SQLite file to persist jobs and idempotency keys in (``None``: memory only).
            Jobs found there are loaded at once; :meth:`unfinished` lists those to run again.
        retention: Which finished jobs are kept (see :mod:`.retention`); evicted jobs leave
            memory and the database, and answer :class:`ExpiredJobError`.
        clock: Seconds since the epoch, for the age limit (injectable for tests).
    """

    def __init__(
        self,
        cocos_version: str,
        state_path: str | Path | None = None,
        *,
        retention: RetentionPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self._lock = threading.Lock()
        self._clock = clock
        self.retention = Retention(retention or RetentionPolicy())
        self._tombstones = Tombstones(self.retention.policy.max_tombstones)
        # Idempotency key of each job that has one, to forget it with the job.
        self._key_of: dict[UUID, str] = {}
        # Notified on every status change, for long-polling status requests.
        self._changed = threading.Condition(self._lock)
        self._jobs: dict[UUID, Job] = {}
        self._released = False
        self._idempotency: dict[str, tuple[str, UUID]] = {}
        self._cocos_version = cocos_version
        self._db: sqlite3.Connection | None = None
        if state_path is not None:
            self._open(Path(state_path))

    # Persistence --------------------------------------------------------------------------------

    def _open(self, path: Path) -> None:
        prepare_state_dir(path.parent)
        try:
            self._db = _connect(path)
            self._load(path)
        except sqlite3.Error as error:
            if self._db is not None:
                self._db.close()
                self._db = None
            what = "a directory" if path.is_dir() else f"not a usable job database ({error})"
            raise StateDirError(
                f"The job database {path} is {what}; move it aside to start with an empty one"
            ) from None

    def _load(self, path: Path) -> None:
        """Loads every job row; a row that cannot be read is quarantined, not fatal."""
        assert self._db is not None
        db = self._db
        rows = db.execute(
            "SELECT id, request, calibration_set_id, status, timestamps, message, warnings, "
            "measurements, owner FROM jobs ORDER BY seq"
        ).fetchall()
        for row in rows:
            try:
                job = _job_from_row(row)
            except Exception as error:  # anything a damaged row raises: keep the others
                self._quarantine(path, row[0], f"{type(error).__name__}: {error}")
                continue
            self._jobs[job.id] = job
        for key, fingerprint, job_id in db.execute(
            "SELECT key, fingerprint, job_id FROM idempotency"
        ).fetchall():
            try:
                known = UUID(str(job_id))
            except ValueError:
                continue
            if known in self._jobs:
                self._idempotency[key] = (fingerprint, known)
                self._key_of[known] = key
        limit = self._tombstones.limit
        for job_id, owner, when, reason in db.execute(
            "SELECT id, owner, evicted_at, reason FROM evicted ORDER BY seq DESC LIMIT ?", (limit,)
        ).fetchall()[::-1]:
            with contextlib.suppress(ValueError, TypeError):
                self._tombstones.add(UUID(str(job_id)), Tombstone(str(when), str(reason), owner))
        for job in self._jobs.values():
            if job.is_final:
                self._retain(job, _finished_at(job, self._clock()))
        self._evict()

    def _quarantine(self, path: Path, job_id: Any, reason: str) -> None:
        """Moves a job row that cannot be loaded into the ``quarantine`` table, and says so."""
        assert self._db is not None
        reason = reason.splitlines()[0][:300] if reason else "unreadable"
        logger.warning(
            "Job %s in %s cannot be loaded (%s); moved to its quarantine table",
            job_id,
            path,
            reason,
        )
        self._db.execute(
            "INSERT INTO quarantine SELECT *, ?, ? FROM jobs WHERE id IS ?",
            (reason, utc_timestamp(), job_id),
        )
        self._db.execute("DELETE FROM jobs WHERE id IS ?", (job_id,))

    def _save(self, job: Job, *, blob: bytes | None = None, new: bool = False) -> None:
        """Writes a job's row (call with the lock held); the request only when ``new``, the
        measurements when ``blob`` (:func:`_dump_measurements`, made before taking the lock)."""
        if self._db is None:
            return
        if not new:  # the request never changes: do not serialise it again
            self._db.execute(
                "UPDATE jobs SET status=?, timestamps=?, message=?, warnings=?, "
                "measurements=COALESCE(?, measurements) WHERE id=?",
                (
                    job.status.value,
                    json.dumps(job.timestamps),
                    job.message,
                    json.dumps(job.warnings),
                    blob,
                    str(job.id),
                ),
            )
            return
        self._db.execute(
            "INSERT INTO jobs (id, seq, request, calibration_set_id, status, timestamps, message, "
            "warnings, measurements, owner) VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM "
            "jobs), ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET status=excluded.status, "
            "timestamps=excluded.timestamps, message=excluded.message, "
            "warnings=excluded.warnings, measurements=COALESCE(excluded.measurements, "
            "jobs.measurements)",
            (
                str(job.id),
                json.dumps(job.request_dict, separators=(",", ":")),
                str(job.calibration_set_id),
                job.status.value,
                json.dumps(job.timestamps),
                job.message,
                json.dumps(job.warnings),
                blob,
                job.owner,
            ),
        )

    def unfinished(self) -> list[UUID]:
        """Ids of loaded jobs that had not finished, oldest first; they restart from the queue."""
        with self._lock:
            out = []
            for job in self._jobs.values():
                if not job.is_final:
                    job.status = Status.PENDING_COMPILATION
                    job.warnings.append(
                        "The server restarted while this job was pending; it was run again"
                    )
                    self._save(job)
                    out.append(job.id)
            return out

    def fail_unfinished(self, job_id: UUID, message: str) -> None:
        """Marks a job that cannot be queued again as failed with ``message``."""
        self.finish(job_id, error=message)

    def discard(self, job_id: UUID) -> None:
        """Forgets a job that was never queued (the queue was full), with its idempotency key."""
        with self._lock:
            self._forget(job_id)

    def _forget(self, job_id: UUID) -> None:
        """Drops a job from memory and the database, with its key (call with the lock held)."""
        self._jobs.pop(job_id, None)
        self.retention.remove(job_id)
        key = self._key_of.pop(job_id, None)
        if key is not None:
            self._idempotency.pop(key, None)
        if self._db is not None:
            self._db.execute("DELETE FROM idempotency WHERE job_id = ?", (str(job_id),))
            self._db.execute("DELETE FROM jobs WHERE id = ?", (str(job_id),))

    def _retain(self, job: Job, finished_at: float | None = None) -> None:
        """Counts a finished job against the retention bounds (call with the lock held)."""
        nbytes = sum(circuit.nbytes for circuit in job.measurements or ())
        when = self._clock() if finished_at is None else finished_at
        job.parsed_request = None  # it will not run again (a worker still running holds its own)
        self.retention.add(job.id, nbytes, when, fetched=job.status == Status.DELETED)

    def _evict(self, keep: UUID | None = None) -> None:
        """Evicts what the retention bounds say, leaving tombstones (call with the lock held)."""
        now = self._clock()
        for job_id, reason in self.retention.victims(now, keep):
            job = self._jobs.get(job_id)
            when = utc_timestamp(datetime.fromtimestamp(now, UTC))
            tombstone = Tombstone(when, reason, job.owner if job else None)
            self._forget(job_id)
            self._tombstones.add(job_id, tombstone)
            logger.info("Evicted job %s: %s", job_id, reason)
            if self._db is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO evicted (id, owner, evicted_at, reason) "
                    "VALUES (?, ?, ?, ?)",
                    (str(job_id), tombstone.owner, tombstone.evicted_at, reason),
                )
                self._db.execute(
                    "DELETE FROM evicted WHERE seq <= (SELECT MAX(seq) FROM evicted) - ?",
                    (self._tombstones.limit,),
                )

    def delete(self, job_id: UUID) -> bool:
        """Deletes a job: aborts it if it has not finished, then drops its results.

        The job keeps its request for the record but no results; v1 answers ``deleted`` for it
        (PROTOCOL_IQM_SERVER.md §9.1) and the IQM Server API 404.

        Returns:
            ``False`` when the job had been deleted before (nothing changed).

        Raises:
            UnknownJobError: Unknown id.
        """
        with self._lock:
            job = self._get(job_id)
            if job.status == Status.DELETED:
                return False
            now = utc_timestamp()
            if not job.is_final:
                job.message = "Job was deleted by the user before it finished"
                job.timestamps["job_end"] = now
            job.status = Status.DELETED
            job.measurements = None
            job.wake.set()
            self._save(job)
            if self._db is not None:
                self._db.execute("UPDATE jobs SET measurements = NULL WHERE id = ?", (str(job_id),))
            self._retain(job)
            self._evict(keep=job_id)
            self._changed.notify_all()
            return True

    def is_deleted(self, job_id: UUID) -> bool:
        """Whether the job was deleted.

        Raises:
            UnknownJobError: Unknown id.
        """
        with self._lock:
            return self._get(job_id).status == Status.DELETED

    def close(self) -> None:
        """Closes the SQLite connection, if any."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)

    def create(
        self,
        request: RunRequest,
        calibration_set_id: UUID,
        *,
        idempotency_key: str | None = None,
        warnings: list[str] | None = None,
        owner: str | None = None,
        body: bytes | None = None,
    ) -> tuple[Job, bool]:
        """Stores a new job, or returns the job an earlier request with the same key created.

        Args:
            request: The parsed and validated request.
            calibration_set_id: The calibration set the job runs with.
            idempotency_key: The client's ``Idempotency-Key`` header, if any; keys are separate
                per owner, so one user's key never finds another user's job.
            warnings: Warnings to report with the job.
            owner: The identity submitting the job (``None``: everyone's).
            body: The raw request body, fingerprinted for idempotency (else the request).

        Returns:
            The job and whether it was created now (``False`` for an idempotent repeat).

        Raises:
            IdempotencyConflictError: The key was used before with a different request body.
        """
        request_dict = request.to_dict()
        fingerprint = request_fingerprint(body if body is not None else request_dict)
        stored_key = idempotency_key
        if idempotency_key is not None and owner is not None:
            # A header value holds no newline, so the owner's prefix cannot be forged.
            stored_key = f"{owner}\n{idempotency_key}"
        with self._lock:
            if stored_key is not None and stored_key in self._idempotency:
                previous_fingerprint, job_id = self._idempotency[stored_key]
                # Other bytes may still be the same request (a client that serialises anew,
                # or a fingerprint of an earlier scheme): then the parsed requests are equal.
                previous = self._jobs[job_id]
                if previous_fingerprint != fingerprint and previous.request_dict != request_dict:
                    raise IdempotencyConflictError(
                        f"Idempotency-Key {idempotency_key!r} was already used for job {job_id} "
                        "with a different request body; use a new key for a new job"
                    )
                return self._jobs[job_id], False
            job = Job(
                id=uuid4(),
                parsed_request=request,
                request_dict=request_dict,
                calibration_set_id=calibration_set_id,
                warnings=list(warnings or ()),
                owner=owner,
            )
            job.timestamps["job_start"] = utc_timestamp()
            self._evict()  # the age limit, checked on every submission
            self._jobs[job.id] = job
            self._save(job, new=True)
            if stored_key is not None:
                self._idempotency[stored_key] = (fingerprint, job.id)
                self._key_of[job.id] = stored_key
                if self._db is not None:
                    self._db.execute(
                        "INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?)",
                        (stored_key, fingerprint, str(job.id)),
                    )
            return job, True

    def check_owner(self, job_id: UUID, identity: str | None) -> None:
        """Passes when ``identity`` may see the job: its owner, or anyone for an unowned job.

        An unknown id passes too: the lookup that follows answers for it.

        Raises:
            UnknownJobError: The job belongs to someone else (the answer an unknown id gets, so
                nobody learns which ids exist).
        """
        with self._lock:
            try:
                job: Job | None = self._get(job_id)
            except ExpiredJobError as expired:
                owner = expired.tombstone.owner
                if owner is not None and owner != identity:
                    raise UnknownJobError(str(job_id)) from None
                raise
            except UnknownJobError:
                job = None
        if job is not None and job.owner is not None and job.owner != identity:
            raise UnknownJobError(str(job_id))

    def expiry(self, job_id: UUID) -> Tombstone | None:
        """When and why a job was evicted, if it was (and is still remembered)."""
        with self._lock:
            return self._tombstones.get(job_id)

    def _get(self, job_id: UUID) -> Job:
        """The job (call with the lock held); a job past the age limit is evicted first.

        Raises:
            ExpiredJobError: Evicted under the retention policy.
            UnknownJobError: Unknown id.
        """
        job = self._jobs.get(job_id)
        if job is not None and self.retention.expired(job_id, self._clock()):
            self._evict()
            job = self._jobs.get(job_id)
        if job is None:
            tombstone = self._tombstones.get(job_id)
            if tombstone is not None:
                raise ExpiredJobError(job_id, tombstone)
            raise UnknownJobError(str(job_id))
        return job

    def status_dict(self, job_id: UUID, wait: float = 0.0) -> dict[str, Any]:
        """The body of ``GET jobs/{id}/status``.

        Args:
            job_id: The job.
            wait: Long polling: hold the answer up to this many seconds while the job is pending
                and its status has not changed since the request arrived.

        Raises:
            UnknownJobError: Unknown id.
        """
        with self._lock:
            job = self._get(job_id)
            if wait > 0 and not job.is_final:
                seen = job.status
                self._changed.wait_for(lambda: job.status != seen or self._released, timeout=wait)
            done, total = self._progress(job) or (None, None)
            status = RunStatus(job.status, job.message, tuple(job.warnings))
            return replace(status, circuits_done=done, circuits_total=total).to_dict()

    def progress(self, job_id: UUID) -> tuple[int, int] | None:
        """(circuits done, circuits in all) while the job executes; else ``None``.

        Raises:
            UnknownJobError: Unknown id.
        """
        with self._lock:
            return self._progress(self._get(job_id))

    def note_progress(self, job_id: UUID, done: int) -> None:
        """Records that ``done`` circuits of a running job have been executed."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None and not job.is_final:
                job.circuits_done = done

    @staticmethod
    def _progress(job: Job) -> tuple[int, int] | None:
        executing = job.status is Status.PENDING_EXECUTION and "execution_start" in job.timestamps
        if not executing:
            return None
        return job.circuits_done, len(job.request_dict.get("circuits") or ())

    def run_result(self, job_id: UUID, *, measurements: bool = True) -> RunResult:
        """A snapshot of a job as the result model; measurements (JSON lists) only when ready.

        The snapshot is taken under the store lock; the lists are built after releasing it
        (the arrays are never mutated), so a large result never holds up other requests.

        Args:
            job_id: The job.
            measurements: ``False`` leaves the measurements out (``None``) even when ready, for
                status answers and packed results that do not need the lists.

        Raises:
            UnknownJobError: Unknown id.
        """
        with self._lock:
            job = self._get(job_id)
            metadata = Metadata(
                request_dict=job.request_dict,
                calibration_set_id=job.calibration_set_id,
                cocos_version=self._cocos_version,
                timestamps=dict(job.timestamps),
            )
            status, message, warnings = job.status, job.message, tuple(job.warnings)
            arrays = job.measurements if measurements and status == Status.READY else None
        lists = None
        if arrays is not None:
            lists = [{key: _tolist(shots) for key, shots in circuit.items()} for circuit in arrays]
        return RunResult(
            status=status,
            metadata=metadata,
            measurements=lists,
            message=message,
            warnings=warnings,
        )

    def result_dict(self, job_id: UUID, *, measurements: bool = True) -> dict[str, Any]:
        """The body of ``GET jobs/{id}`` (PROTOCOL.md §3.4).

        Args:
            job_id: The job.
            measurements: ``False`` leaves ``measurements`` ``None`` (the caller adds them packed).

        Raises:
            UnknownJobError: Unknown id.
        """
        result = self.run_result(job_id, measurements=measurements)
        out = result.to_dict()
        if result.status != Status.READY:
            del out["measurements"]  # a v1 server sends measurements only with a ready job
        return out

    def release_waiters(self) -> None:
        """Answers every held status request now (the server is shutting down)."""
        with self._lock:
            self._released = True
            self._changed.notify_all()

    def packed_measurements(self, job_id: UUID) -> list[dict[str, Any]] | None:
        """The measurements of a ready job in the packed format.

        Each circuit maps a key to ``{"shape": [shots, qubits], "bits": base64}``, where ``bits``
        are the row-major 0/1 values packed eight to a byte, most significant bit first
        (``numpy.packbits``): base64 of the bits as kept, written off the lock, and not kept
        (JSON lists are never kept either). ``None`` while the job is not ready.

        Raises:
            UnknownJobError: Unknown id.
        """
        with self._lock:
            job = self._get(job_id)
            if job.status != Status.READY or job.measurements is None:
                return None
            self.retention.mark_fetched(job_id)
            measurements = job.measurements
        return [{key: circuit.wire(key) for key in circuit} for circuit in measurements]

    def measurement_arrays(self, job_id: UUID) -> list[PackedCircuit] | None:
        """A ready job's measurements as stored (never mutated; each key's array is unpacked when
        read), else ``None``.

        Raises:
            UnknownJobError: Unknown id.
        """
        with self._lock:
            job = self._get(job_id)
            if job.status != Status.READY:
                return None
            self.retention.mark_fetched(job_id)
            return job.measurements

    def counts_dict(self, job_id: UUID) -> dict[str, Any]:
        """The body of ``GET jobs/{id}/counts``: per circuit, bitstring counts over all keys.

        Raises:
            UnknownJobError: Unknown id.
        """
        with self._lock:
            job = self._get(job_id)
            status = job.status
            measurements = job.measurements if status == Status.READY else None
            if measurements is not None:
                self.retention.mark_fetched(job_id)
            out: dict[str, Any] = {"status": status.value}
            if job.warnings:
                out["warnings"] = list(job.warnings)
        if measurements is None:
            out["counts_batch"] = None
            return out
        out["counts_batch"] = [_counts(circuit) for circuit in measurements]
        return out

    def abort(self, job_id: UUID) -> None:
        """Aborts a job that has not finished.

        Raises:
            UnknownJobError: Unknown id.
            JobFinishedError: The job is ready, failed or aborted already.
        """
        with self._lock:
            job = self._get(job_id)
            if job.is_final:
                raise JobFinishedError(
                    f"Job {job_id} cannot be aborted: it is already {job.status.value}"
                )
            job.status = Status.ABORTED
            job.message = "Job was aborted by the user"
            job.timestamps["job_end"] = utc_timestamp()
            job.wake.set()
            self._save(job)
            self._retain(job)
            self._evict(keep=job_id)
            self._changed.notify_all()

    # The worker's side --------------------------------------------------------------------------

    def get_job(self, job_id: UUID) -> Job:
        """The job object itself, for the worker (read its immutable request only).

        Raises:
            UnknownJobError: Unknown id.
        """
        with self._lock:
            return self._get(job_id)

    def advance(self, job_id: UUID, status: Status | None = None, *stamps: str) -> bool:
        """Records timestamps and optionally a new pending status, unless the job has finished.

        Returns:
            ``False`` when the job was aborted meanwhile, so the worker stops working on it.
        """
        with self._lock:
            job = self._get(job_id)
            if job.is_final:
                return False
            now = utc_timestamp()
            for stamp in stamps:
                job.timestamps[stamp] = now
            if status is not None and status != job.status:
                job.status = status
                self._changed.notify_all()
            self._save(job)
            return True

    def finish(
        self,
        job_id: UUID,
        *,
        measurements: list[MeasurementDict] | None = None,
        error: str | None = None,
    ) -> bool:
        """Marks a job ``ready`` (with measurements) or ``failed`` (with an error message).

        Returns:
            ``False`` when the job had been aborted meanwhile; its result is then discarded.
        """
        kept = None if measurements is None else [PackedCircuit(c) for c in measurements]
        # Written off the lock: a large result must not hold up status requests meanwhile.
        blob = _dump_measurements(kept) if self._db is not None and kept else None
        with self._lock:
            job = self._get(job_id)
            if job.is_final:
                return False
            now = utc_timestamp()
            if "execution_start" in job.timestamps:
                job.timestamps["execution_end"] = now
            job.timestamps["job_end"] = now
            if error is None:
                job.status = Status.READY
                job.measurements = kept
            else:
                job.status = Status.FAILED
                job.message = error
            self._save(job, blob=blob)
            self._retain(job)
            self._evict(keep=job_id)
            self._changed.notify_all()
            return True


def _tolist(shots: Any) -> list[list[int]]:
    return shots.tolist() if isinstance(shots, np.ndarray) else shots


def _counts(circuit: Mapping[str, Any]) -> dict[str, Any]:
    keys = list(circuit)
    counts: dict[str, int] = {}
    if keys:
        columns = [
            np.asarray(circuit[key], dtype=np.uint8).reshape(len(circuit[key]), -1) for key in keys
        ]
        bits = np.concatenate(columns, axis=1) if columns else np.zeros((0, 0), np.uint8)
        if len(bits):
            rows, tally = np.unique(bits, axis=0, return_counts=True)
            for row, count in zip(rows, tally, strict=True):
                counts["".join("1" if b else "0" for b in row)] = int(count)
    return {"measurement_keys": keys, "counts": counts}


def _dump_measurements(measurements: Sequence[PackedCircuit]) -> bytes:
    """npz bytes of the results as kept: arrays ``c{circuit}_{n}`` (packed bits, or the values
    of a key that are not bits) and a JSON ``index`` ``{"packed": 1, "circuits": [[[key, shape
    or null], ...], ...]}``. Packed bits hardly compress, so the file is not compressed."""
    arrays: dict[str, np.ndarray] = {}
    circuits = []
    for c, circuit in enumerate(measurements):
        entries = []
        for n, (key, array, shape) in enumerate(circuit.stored()):
            entries.append([key, None if shape is None else list(shape)])
            arrays[f"c{c}_{n}"] = array
        circuits.append(entries)
    index = {"packed": 1, "circuits": circuits}
    arrays["index"] = np.frombuffer(json.dumps(index).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def _load_measurements(blob: bytes) -> list[PackedCircuit]:
    """What :func:`_dump_measurements` wrote, or the unpacked form earlier versions wrote (an
    ``index`` of key lists, one ``[shots, qubits]`` array per key)."""
    with np.load(io.BytesIO(blob)) as data:
        index = json.loads(bytes(data["index"]).decode())
        if isinstance(index, list):  # written before results were kept packed
            return [
                PackedCircuit({key: data[f"c{c}_{n}"] for n, key in enumerate(keys)})
                for c, keys in enumerate(index)
            ]
        return [
            PackedCircuit.from_stored(
                (key, data[f"c{c}_{n}"], None if shape is None else (shape[0], shape[1]))
                for n, (key, shape) in enumerate(entries)
            )
            for c, entries in enumerate(index["circuits"])
        ]


def _connect(path: Path) -> sqlite3.Connection:
    """The job database at ``path`` with its tables (created when missing).

    Raises:
        sqlite3.Error: The file is not a database, is a directory, or cannot be written.
    """
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, seq INTEGER, request TEXT, "
            "calibration_set_id TEXT, status TEXT, timestamps TEXT, message TEXT, warnings TEXT, "
            "measurements BLOB, owner TEXT)"
        )
        columns = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
        if "owner" not in columns:  # a database of an earlier version: its jobs are everyone's
            db.execute("ALTER TABLE jobs ADD COLUMN owner TEXT")
        db.execute(
            "CREATE TABLE IF NOT EXISTS idempotency (key TEXT PRIMARY KEY, fingerprint TEXT, "
            "job_id TEXT)"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS evicted (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
            "id TEXT UNIQUE, owner TEXT, evicted_at TEXT, reason TEXT)"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS quarantine (id TEXT, seq INTEGER, request TEXT, "
            "calibration_set_id TEXT, status TEXT, timestamps TEXT, message TEXT, warnings TEXT, "
            "measurements BLOB, owner TEXT, reason TEXT, quarantined_at TEXT)"
        )
    except sqlite3.Error:
        db.close()
        raise
    return db


def _finished_at(job: Job, default: float) -> float:
    """When a loaded job finished (its ``job_end``), in seconds since the epoch."""
    try:
        return datetime.fromisoformat(job.timestamps["job_end"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return default


def _job_from_row(row: Sequence[Any]) -> Job:
    """A job from its database row.

    Raises:
        Exception: Whatever a damaged row makes the parsers raise.
    """
    job_id, request, cal_id, status, stamps, message, warnings, blob, owner = row
    request_dict = json.loads(request)
    timestamps, warning_list = json.loads(stamps), json.loads(warnings)
    if not isinstance(timestamps, dict) or not isinstance(warning_list, list):
        raise ValueError("timestamps or warnings are not what a job stores")
    return Job(
        id=UUID(job_id),
        parsed_request=RunRequest.from_dict(request_dict),  # also checks the row
        request_dict=request_dict,
        calibration_set_id=UUID(cal_id),
        status=Status(status),
        timestamps=timestamps,
        message=message if message is None else str(message),
        warnings=[str(w) for w in warning_list],
        measurements=_load_measurements(blob) if blob is not None else None,
        owner=owner if owner is None else str(owner),
    )


class Worker:
    """A pool of background threads that run jobs from a bounded queue, in submission order.

    Args:
        store: Where the jobs live.
        executor: Runs a request (the simulator); or one executor per thread (a sequence), since a
            simulator's random generator must not be shared between threads.
        job_delay: Seconds each job waits in each pending state, so tests can watch and abort.
        sleep: Waits up to the given seconds or until the event is set (injectable for tests).
        max_queue: Most jobs waiting to run; :meth:`submit` raises :class:`QueueFullError` beyond
            (``0``: unbounded).
    """

    def __init__(
        self,
        store: JobStore,
        executor: Executor | Sequence[Executor],
        *,
        job_delay: float = 0.0,
        sleep: Callable[[threading.Event, float], None] | None = None,
        max_queue: int = 0,
    ):
        self._store = store
        self._executors = list(executor) if isinstance(executor, Sequence) else [executor]
        self._executor = self._executors[0]
        self._job_delay = max(0.0, float(job_delay))
        self._sleep = sleep or (lambda event, seconds: event.wait(seconds) and None)
        self._queue: queue.Queue[UUID | None] = queue.Queue(max(0, max_queue))
        # The queued job ids in order (a dict keeps insertion order), for queue positions.
        self._waiting: dict[UUID, None] = {}
        self._waiting_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._current: dict[int, Job] = {}

    @property
    def queued(self) -> int:
        """Jobs waiting in the queue (approximate)."""
        return self._queue.qsize()

    def queue_position(self, job_id: UUID) -> int | None:
        """How many queued jobs will run before ``job_id``; ``None`` unless it is queued."""
        with self._waiting_lock:
            for position, waiting in enumerate(self._waiting):
                if waiting == job_id:
                    return position
        return None

    def start(self) -> None:
        """Starts the worker threads (idempotent)."""
        if self._threads:
            return
        for number, executor in enumerate(self._executors):
            thread = threading.Thread(
                target=self._loop,
                args=(executor,),
                name=f"cirq-iqm-ext-worker-{number}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stops the workers after the jobs they are running and joins their threads."""
        self._stopping.set()
        for job in list(self._current.values()):
            job.wake.set()  # cut a job delay short; the job stays pending
        # Wake every thread even when the queue is full: drop what is waiting (it stays pending).
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        with self._waiting_lock:
            self._waiting.clear()
        for _ in self._threads:
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                break
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    def submit(self, job_id: UUID) -> None:
        """Queues a job for execution.

        Raises:
            QueueFullError: The queue holds ``max_queue`` jobs already.
        """
        with self._waiting_lock:
            self._waiting[job_id] = None
        try:
            self._queue.put_nowait(job_id)
        except queue.Full:
            with self._waiting_lock:
                self._waiting.pop(job_id, None)
            raise QueueFullError(
                f"The job queue is full ({self._queue.maxsize} jobs waiting); retry later"
            ) from None

    def _loop(self, executor: Executor) -> None:
        while not self._stopping.is_set():
            job_id = self._queue.get()
            if job_id is not None:
                with self._waiting_lock:
                    self._waiting.pop(job_id, None)
            if job_id is None or self._stopping.is_set():
                break
            try:
                self.process(job_id, executor)
            except Exception:  # the worker must survive anything one job does
                logger.exception("Unexpected error while processing job %s", job_id)

    def process(self, job_id: UUID, executor: Executor | None = None) -> None:
        """Runs one job through its states; called by a worker thread."""
        store = self._store
        job = store.get_job(job_id)
        ident = threading.get_ident()
        self._current[ident] = job
        try:
            self._process(job, executor or self._executor)
        finally:
            self._current.pop(ident, None)

    def _process(self, job: Job, executor: Executor) -> None:
        store, job_id = self._store, job.id
        request = job.request  # held here: the job drops its parsed request when it finishes
        if not store.advance(job_id, None, "compile_start") or not self._pause(job):
            return
        if not store.advance(job_id, Status.PENDING_EXECUTION, "compile_end", "submit_start"):
            return
        if not self._pause(job):
            return
        if not store.advance(job_id, None, "submit_end", "execution_start"):
            return
        try:
            measurements = executor.run(
                request, progress=functools.partial(store.note_progress, job_id)
            )
        except Exception as error:  # a failing simulation fails the job, not the server
            logger.exception("Job %s failed in the simulator", job_id)
            store.finish(job_id, error=f"Execution failed: {error}")
            return
        store.finish(job_id, measurements=measurements)

    def _pause(self, job: Job) -> bool:
        """Waits half the job delay; ``False`` when the worker is stopping."""
        if self._job_delay:
            self._sleep(job.wake, self._job_delay / 2)
        return not self._stopping.is_set()
