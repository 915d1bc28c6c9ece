"""The run requests a client sent, kept by job id, so that results need not echo them back.

A result's metadata carries the request (the sampler rebuilds its results from the circuits'
names, metadata and shots). The client sent it and can keep it: then the server need not send it
back (the project's server leaves it out on ``?request=omit``; the IQM Server API never echoes
it, and its ``payload`` endpoint need not be asked). Only the latest jobs are kept; a job fetched
by id from another process, or after many others, gets its request from the server.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any
from uuid import UUID

from cirq_iqm_ext.client.json_codec import loads

#: How many jobs' requests a client keeps, and how many bytes of them at most (the memory of a
#: client stays bounded whatever it submits; a request over the budget is simply not kept).
SENT_CACHE_SIZE = 64
SENT_CACHE_BYTES = 64 << 20


class SentRequests:
    """The latest requests sent, by job id, as the bytes that were sent (decoded when used)."""

    def __init__(self, size: int = SENT_CACHE_SIZE, max_bytes: int = SENT_CACHE_BYTES):
        self._size = size
        self._max_bytes = max_bytes
        self._bytes = 0
        self._sent: OrderedDict[UUID, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, job_id: UUID, request: bytes) -> None:
        """Keeps ``request`` for ``job_id``, forgetting the oldest beyond the count or bytes."""
        with self._lock:
            self._forget(job_id)
            if len(request) > self._max_bytes:
                return
            self._sent[job_id] = request
            self._bytes += len(request)
            while len(self._sent) > self._size or self._bytes > self._max_bytes:
                self._forget(next(iter(self._sent)))

    def _forget(self, job_id: UUID) -> None:
        request = self._sent.pop(job_id, None)
        if request is not None:
            self._bytes -= len(request)

    def __contains__(self, job_id: object) -> bool:
        with self._lock:
            return job_id in self._sent

    def __len__(self) -> int:
        with self._lock:
            return len(self._sent)

    @property
    def nbytes(self) -> int:
        """Bytes of requests kept."""
        with self._lock:
            return self._bytes

    def get(self, job_id: UUID) -> dict[str, Any] | None:
        """The request sent for ``job_id`` as a dict, or ``None`` if it is not kept."""
        with self._lock:
            request = self._sent.get(job_id)
        if request is None:
            return None
        decoded = loads(request)
        return decoded if isinstance(decoded, dict) else None  # not a request: not usable
