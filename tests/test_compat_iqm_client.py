"""IQM's official ``iqm-client`` 17.8, unchanged, against the project's server.

The official client lives in its own virtual environment (``make compat-env`` creates
``.venv-compat``), since it pins its own dependencies. ``tests/compat/iqm_client17_check.py`` drives
it and prints what it saw as JSON; this test starts the servers and checks that report.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cirq_iqm_ext.server import EmbeddedServer

pytestmark = pytest.mark.compat

ROOT = Path(__file__).resolve().parents[1]
COMPAT_PYTHON = ROOT / ".venv-compat" / "bin" / "python"
SCRIPT = ROOT / "tests" / "compat" / "iqm_client17_check.py"
TOKEN = "compat-static-token"
USER, PASSWORD = "compat-user", "compat-password"


def _env(extra: dict[str, str]) -> dict[str, str]:
    # iqm-client reads these at import or construction; keep the outer environment out of it.
    keep = {k: v for k, v in os.environ.items() if not k.startswith("IQM_")}
    return {**keep, "IQM_CLIENT_SECONDS_BETWEEN_CALLS": "0.05", **extra}


@pytest.fixture(scope="module")
def reports() -> dict[str, dict[str, Any]]:
    """Runs the check against three servers at once: no auth, static token, password login."""
    if not COMPAT_PYTHON.exists():
        pytest.fail(
            f"{COMPAT_PYTHON} does not exist: run `make compat-env` to create the environment "
            "with IQM's official iqm-client 17.8"
        )
    servers = {
        "no_auth": EmbeddedServer(seed=5, job_delay=0.4),
        "token": EmbeddedServer(seed=5, job_delay=0.4, token=TOKEN),
        "password": EmbeddedServer(seed=5, job_delay=0.4, auth_users={USER: PASSWORD}),
    }
    for server in servers.values():
        server.start()
    try:
        envs = {
            "no_auth": _env({}),
            "token": _env({"IQM_TOKEN": TOKEN}),
            "password": _env(
                {
                    "IQM_AUTH_SERVER": servers["password"].url,
                    "IQM_AUTH_USERNAME": USER,
                    "IQM_AUTH_PASSWORD": PASSWORD,
                }
            ),
        }
        processes = {
            name: subprocess.Popen(
                [str(COMPAT_PYTHON), str(SCRIPT), servers[name].url],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=envs[name],
            )
            for name in servers
        }
        outputs = {}
        try:
            for name, process in processes.items():
                outputs[name] = process.communicate(timeout=120)
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.kill()
                    process.communicate()
        out: dict[str, dict[str, Any]] = {}
        for name, (stdout, stderr) in outputs.items():
            code = processes[name].returncode
            try:
                report = json.loads(stdout)
            except json.JSONDecodeError:
                pytest.fail(f"{name}: no JSON report; exit {code}\n{stdout}\n{stderr}")
            assert code == 0, f"{name}: {json.dumps(report, indent=1)}\n{stderr}"
            report["_stats"] = dict(servers[name].app.stats)
            out[name] = report
        return out
    finally:
        for server in servers.values():
            server.stop()


@pytest.mark.parametrize("mode", ["no_auth", "token", "password"])
def test_official_client_fetches_submits_waits_and_aborts(reports, mode):
    report = reports[mode]
    assert report["ok"] is True
    assert report["iqm_client_version"] == "17.8"
    assert report["architecture"] == {
        "name": "Adonis",
        "qubits": ["QB1", "QB2", "QB3", "QB4", "QB5"],
        "operations": ["barrier", "cz", "measure", "prx"],
    }
    assert report["status_after_submit"] in ("pending compilation", "pending execution")
    assert report["status_after_compilation"] in ("pending execution", "ready")
    assert report["status"] == "ready"
    assert report["shots_returned"] == [200]
    assert set(report["counts"]) == {"00", "11"}
    assert sum(report["counts"].values()) == 200
    metadata = report["metadata"]
    assert metadata["request_shots"] == 200
    assert metadata["request_qubit_mapping"] == {"alice": "QB1", "bob": "QB3"}
    assert metadata["heralding_mode"] == "none"
    assert len(metadata["timestamps"]) == 8
    assert report["abort_finished"].startswith("JobAbortionError")
    assert "already ready" in report["abort_finished"]
    assert report["abort_pending"] == "accepted"
    assert report["status_after_abort"] == "aborted"
    assert report["aborted_result_status"] == "aborted"
    assert "('QB1', 'QB2') is not an allowed locus for cz" in report["server_rejection"]
    assert report["batch_shots"] == [50, 50]
    assert report["_stats"]["POST jobs"] == 4
    assert report["_stats"]["GET quantum-architecture"] == 1  # the client caches it


def test_password_login_session_is_closed_by_the_official_client(reports):
    assert reports["password"]["close_auth_session"] is True
    assert reports["no_auth"]["close_auth_session"] is False
    # iqm-client 17 refuses to "close" a static token it did not obtain itself.
    assert "externally managed" in reports["token"]["close_auth_session"]
