"""Shared pytest configuration. Each section belongs to one part of the suite; keep them apart."""

from __future__ import annotations

# ==================================================================================================
# Reliability and security suite (issue 6): the secret scanner fixture and the summary table.
# Used by tests/test_faults.py, tests/test_security.py and tests/test_properties.py.
# ==================================================================================================
import logging
from collections.abc import Iterator

import pytest
from faults.report import REPORT, SecretScanner


@pytest.fixture
def secret_scanner(capsys: pytest.CaptureFixture[str]) -> Iterator[SecretScanner]:
    """Collects every log record (at DEBUG), plus what the test hands it, and fails the test when
    any registered secret appears in any of it."""
    scanner = SecretScanner()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(scanner.handler)
    root.setLevel(logging.DEBUG)
    try:
        yield scanner
    finally:
        root.removeHandler(scanner.handler)
        root.setLevel(previous)
    captured = capsys.readouterr()
    scanner.collect(captured.out, captured.err)
    found = scanner.finish()
    assert not found, f"secrets leaked into output (secret prefix, preceding text): {found[:5]}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Prints the reliability suite's summary table when any of it ran."""
    if not REPORT.active:
        return
    terminalreporter.write_sep("=", "reliability and security suite (issue 6)")
    for line in REPORT.lines():
        terminalreporter.write_line(line)


# ==================================================================================================
# (end of the issue 6 section)
# ==================================================================================================
