"""What the reliability suite did, for the summary table at the end of the run.

:data:`REPORT` is one process-wide record: faults injected per kind (counted by the proxy), the
outcome of every scenario, job accounting (submitted, completed, duplicated, lost) and the secret
scan. ``tests/conftest.py`` prints it from ``pytest_terminal_summary``.

:class:`SecretScanner` collects everything a test produces that a user could see or a log could
keep (log records at DEBUG, warnings, exception messages and tracebacks, reprs, captured output)
and counts occurrences of the secrets in use (tokens, passwords, refresh tokens).
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class SuiteReport:
    """Counters of the reliability suite; every method is thread-safe."""

    faults: Counter[str] = field(default_factory=Counter)
    outcomes: list[tuple[str, str, str]] = field(default_factory=list)
    jobs: Counter[str] = field(default_factory=Counter)
    secrets_found: int = 0
    texts_scanned: int = 0
    secrets_known: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_fault(self, name: str) -> None:
        """Counts one injected fault."""
        with self._lock:
            self.faults[name] += 1

    def outcome(self, scenario: str, fault: str, result: str) -> None:
        """Records what a scenario ended with (``recovered`` or the error type raised)."""
        with self._lock:
            self.outcomes.append((scenario, fault, result))

    def account(
        self, *, submitted: int, completed: int, duplicated: int, lost: int, orphaned: int = 0
    ) -> None:
        """Adds a scenario's job accounting (``orphaned``: jobs at the server no client knows)."""
        with self._lock:
            self.jobs["submitted"] += submitted
            self.jobs["completed"] += completed
            self.jobs["duplicated"] += duplicated
            self.jobs["lost"] += lost
            self.jobs["orphaned"] += orphaned

    def add_secrets(self, secrets: Iterable[str]) -> None:
        """Remembers secret values seen in use (to report how many were checked)."""
        with self._lock:
            self.secrets_known.update(s for s in secrets if s)

    def scanned(self, texts: int, found: int) -> None:
        """Adds the result of one scan."""
        with self._lock:
            self.texts_scanned += texts
            self.secrets_found += found

    @property
    def active(self) -> bool:
        """Whether the suite ran at all in this session."""
        return bool(self.outcomes or self.faults or self.texts_scanned)

    def lines(self) -> list[str]:
        """The summary table, as lines of text."""
        out = ["faults injected (through the loopback proxy):"]
        for name, count in sorted(self.faults.items()):
            out.append(f"  {name:<34} {count:>6}")
        out.append(f"  {'total':<34} {sum(self.faults.values()):>6}")
        out.append("scenario outcomes:")
        by_result: Counter[str] = Counter(r for _, _, r in self.outcomes)
        width = max((len(s) for s, _, _ in self.outcomes), default=10)
        for scenario, fault, result in self.outcomes:
            out.append(f"  {scenario:<{width}}  {fault:<26} -> {result}")
        out.append("  totals: " + ", ".join(f"{k} {v}" for k, v in sorted(by_result.items())))
        out.append(
            "jobs: submitted {submitted}, completed {completed}, duplicated {duplicated}, "
            "lost {lost}, orphaned {orphaned}".format(
                **{
                    k: self.jobs[k]
                    for k in ("submitted", "completed", "duplicated", "lost", "orphaned")
                }
            )
        )
        out.append(
            f"secrets found in output: {self.secrets_found} (scanned {self.texts_scanned} texts "
            f"for {len(self.secrets_known)} secret values)"
        )
        return out


REPORT = SuiteReport()


class _Collector(logging.Handler):
    def __init__(self, scanner: SecretScanner):
        super().__init__(logging.DEBUG)
        self._scanner = scanner
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._scanner.collect(self.format(record), repr(record.args))
        except Exception:  # a record that cannot be formatted is still scanned by its parts
            self._scanner.collect(str(record.msg), repr(record.args))


class SecretScanner:
    """Collects produced text and counts secrets in it.

    Args:
        secrets: Secret values to look for; more can be added with :meth:`add_secret`.
    """

    def __init__(self, secrets: Iterable[str] = ()):
        self._lock = threading.Lock()
        self._secrets: set[str] = {s for s in secrets if s}
        self._texts: list[str] = []
        self.handler = _Collector(self)

    def add_secret(self, *values: str | None) -> None:
        """Adds secret values to look for (empty and ``None`` are ignored)."""
        with self._lock:
            self._secrets.update(v for v in values if v)

    @property
    def secrets(self) -> frozenset[str]:
        """The secret values looked for."""
        with self._lock:
            return frozenset(self._secrets)

    def collect(self, *texts: object) -> None:
        """Adds produced texts (anything; converted with ``str``)."""
        with self._lock:
            self._texts.extend(str(t) for t in texts)

    def exception(self, error: BaseException) -> None:
        """Adds an exception's ``str``, ``repr`` and formatted traceback (with its chain)."""
        self.collect(str(error), repr(error), "".join(traceback.format_exception(error)))
        for name in ("message", "detail", "url", "endpoint", "idempotency_key"):
            if getattr(error, name, None) is not None:
                self.collect(getattr(error, name))

    def warnings(self, records: Iterable[object]) -> None:
        """Adds recorded warnings (``warnings.WarningMessage`` objects)."""
        for record in records:
            self.collect(str(getattr(record, "message", record)), repr(record))

    def findings(self) -> list[tuple[str, str]]:
        """``(secret prefix, text excerpt)`` of every text that contains a secret."""
        with self._lock:
            secrets, texts = set(self._secrets), list(self._texts)
        found = []
        for text in texts:
            for secret in secrets:
                index = text.find(secret)
                if index >= 0:
                    found.append((secret[:4] + "...", text[max(0, index - 60) : index]))
        return found

    def finish(self) -> list[tuple[str, str]]:
        """Scans, adds the result to :data:`REPORT` and returns the findings."""
        found = self.findings()
        with self._lock:
            count = len(self._texts)
        REPORT.add_secrets(self.secrets)
        REPORT.scanned(count, len(found))
        return found
