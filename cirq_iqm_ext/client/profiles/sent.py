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
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from cirq_iqm_ext.client.json_codec import loads

#: How many jobs' requests a client keeps.
SENT_CACHE_SIZE = 64


class SentRequests:
    """The latest requests sent, by job id: as sent (bytes, decoded on first use) or as dicts."""

    def __init__(self, size: int = SENT_CACHE_SIZE):
        self._size = size
        self._sent: OrderedDict[UUID, bytes | Mapping[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, job_id: UUID, request: bytes | Mapping[str, Any]) -> None:
        """Keeps ``request`` for ``job_id``, forgetting the oldest beyond the size."""
        with self._lock:
            self._sent[job_id] = request
            self._sent.move_to_end(job_id)
            while len(self._sent) > self._size:
                self._sent.popitem(last=False)

    def __contains__(self, job_id: object) -> bool:
        with self._lock:
            return job_id in self._sent

    def get(self, job_id: UUID) -> dict[str, Any] | None:
        """The request sent for ``job_id`` as a dict, or ``None`` if it is not kept."""
        with self._lock:
            request = self._sent.get(job_id)
        if request is None:
            return None
        if isinstance(request, bytes):
            decoded = loads(request)
            if not isinstance(decoded, dict):  # never sent by this client: not usable
                return None
            self.remember(job_id, decoded)
            return decoded
        return dict(request)
