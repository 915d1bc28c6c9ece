"""The archived ``cirq-iqm`` 14.x ``IQMSampler``, unchanged, against the project's server.

It imports only with ``cirq-core[contrib]==1.5.0``, so it lives in ``.venv-compat-cirq``
(``make compat-env``); ``tests/compat/cirq_iqm14_check.py`` drives it and prints a JSON report.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cirq_iqm_ext.server import EmbeddedServer

pytestmark = pytest.mark.compat

ROOT = Path(__file__).resolve().parents[1]
COMPAT_PYTHON = ROOT / ".venv-compat-cirq" / "bin" / "python"
SCRIPT = ROOT / "tests" / "compat" / "cirq_iqm14_check.py"


def test_cirq_iqm14_sampler_runs_bell_sweep_batch_and_abort():
    if not COMPAT_PYTHON.exists():
        pytest.fail(
            f"{COMPAT_PYTHON} does not exist: run `make compat-env` to create the environment "
            "with the archived cirq-iqm 14.x"
        )
    # The default server, which executes delay: it lists delay only to clients that ask for it,
    # so the archived adapter (which fails on an operation name it does not know) sees plain v1.
    with EmbeddedServer(seed=2, job_delay=1.0) as server:
        done = subprocess.run(
            [str(COMPAT_PYTHON), str(SCRIPT), server.url],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["bell_agree"] == 1.0
    assert report["sweep_means"] == [0.0, 1.0]
    assert report["batch_sizes"] == [1, 1]
    assert report["abort_status"].endswith("ABORTED")
