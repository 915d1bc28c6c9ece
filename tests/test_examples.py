"""Every example runs against the embedded server, as `make demo` runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IQM_")}
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def test_demo_prints_bell_counts_timestamps_and_a_one_job_sweep():
    out = run_example("demo.py")
    assert "Started the embedded IQM-compatible server at http://127.0.0.1:" in out
    counts = dict(re.findall(r"^  (00|01|10|11):\s+(\d+)", out, flags=re.MULTILINE))
    assert set(counts) == {"00", "11"}
    for stamp in ("job_start", "execution_end", "job_end"):
        assert re.search(rf"^  {stamp}\s+\d{{4}}-\d\d-\d\dT", out, flags=re.MULTILINE)
    assert "Rabi sweep: 50 points in 1 job(s)" in out
    assert "Stopped the embedded server." in out
