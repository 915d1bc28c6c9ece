"""The package builds and installs cleanly, with its data, as `make demo` installs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALARMING = re.compile(r"would be ignored|Traceback|^ERROR|error:", re.IGNORECASE | re.MULTILINE)


def test_the_wheel_builds_without_alarming_lines_and_carries_its_data(tmp_path: Path):
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "wheel"),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    log = built.stdout + built.stderr
    assert built.returncode == 0, log[-3000:]
    assert not ALARMING.search(log), ALARMING.search(log)
    [wheel] = (tmp_path / "wheel").glob("*.whl")
    target = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert installed.returncode == 0 and not ALARMING.search(installed.stderr), installed.stderr
    # The installed copy (not this checkout) loads every built-in architecture and calibration.
    check = (
        "import cirq_iqm_ext, cirq_iqm_ext.device.builtin as d, cirq_iqm_ext.calibration as c\n"
        f"assert cirq_iqm_ext.__file__.startswith({str(target)!r}), cirq_iqm_ext.__file__\n"
        "assert all(len(f().qubits) for f in d.BUILTIN_DEVICES.values())\n"
        "assert all(c.builtin_calibration(n) for n in c.BUILTIN_CALIBRATIONS)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    ran = subprocess.run(
        [sys.executable, "-c", check],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
