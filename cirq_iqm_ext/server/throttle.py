"""Slowing down password guessing: failed logins per user name and per client address.

Each key (a user name, or a client address) may fail a few times for free; every further failure
blocks that key for twice as long as the one before, up to a ceiling. A blocked key gets 429 with
``Retry-After`` before its password is even looked at, so a blocked attempt costs nothing and
reveals nothing. User names are tracked whether or not such a user exists, so the answers
never tell existing from unknown names. Failures older than the forget window are forgotten, and
a login that succeeds clears its user name (not its address: one valid account must not clear the
way to guess others' passwords). At most ``max_keys`` keys are remembered, oldest dropped first.
"""

from __future__ import annotations

import collections
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Record:
    failures: int = 0
    last_failure: float = 0.0
    blocked_until: float = 0.0


@dataclass(frozen=True)
class ThrottlePolicy:
    """How many failures are free and how the blocks grow (seconds).

    Attributes:
        free_per_user: Failures of one user name before it is blocked.
        free_per_address: Failures from one client address before it is blocked.
        first_block: Length of the first block; each further failure doubles it.
        max_block: Longest block.
        forget_after: Failures older than this are forgotten.
        max_keys: Most keys remembered.
    """

    free_per_user: int = 5
    free_per_address: int = 20
    first_block: float = 1.0
    max_block: float = 60.0
    forget_after: float = 900.0
    max_keys: int = 10_000


class LoginThrottle:
    """Counts failed logins per user name and per client address (thread-safe).

    Args:
        clock: Current time in seconds (injectable for tests).
        policy: The limits.
    """

    def __init__(self, clock: Callable[[], float], policy: ThrottlePolicy | None = None):
        self._clock = clock
        self.policy = policy or ThrottlePolicy()
        self._records: collections.OrderedDict[tuple[str, str], _Record] = collections.OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, user: str, address: str) -> int:
        """Whole seconds until a login of ``user`` from ``address`` may be tried (0: now)."""
        now = self._clock()
        with self._lock:
            waits = [
                record.blocked_until - now
                for record in (self._records.get(key) for key in _keys(user, address))
                if record is not None
            ]
        longest = max(waits, default=0.0)
        return math.ceil(longest) if longest > 0 else 0

    def failed(self, user: str, address: str) -> None:
        """Records a failed login."""
        now = self._clock()
        policy = self.policy
        with self._lock:
            for key, free in zip(
                _keys(user, address), (policy.free_per_user, policy.free_per_address), strict=True
            ):
                record = self._records.pop(key, None) or _Record()
                if now - record.last_failure > policy.forget_after:
                    record.failures = 0
                record.failures += 1
                record.last_failure = now
                beyond = record.failures - free
                if beyond > 0:
                    block = min(policy.max_block, policy.first_block * 2.0 ** min(beyond - 1, 60))
                    record.blocked_until = now + block
                self._records[key] = record  # most recent last
            while len(self._records) > policy.max_keys:
                self._records.popitem(last=False)

    def succeeded(self, user: str) -> None:
        """Clears the failures of ``user`` after a correct password."""
        with self._lock:
            self._records.pop(("user", user), None)


def _keys(user: str, address: str) -> tuple[tuple[str, str], tuple[str, str]]:
    return ("user", user), ("address", address)
