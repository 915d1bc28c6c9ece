"""IQM's official ``iqm-client`` 36.x and its Cirq adapter, unchanged, against the project's server.

The official client lives in its own virtual environment (``make compat-env`` creates
``.venv-compat36`` with ``iqm-client[cirq]==36.*``). ``tests/compat/iqm_client36_check.py``
drives it over the IQM Server API (PROTOCOL_IQM_SERVER.md) and prints what it saw as JSON; this
test starts the servers and checks that report.
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
COMPAT_PYTHON = ROOT / ".venv-compat36" / "bin" / "python"
SCRIPT = ROOT / "tests" / "compat" / "iqm_client36_check.py"
TOKEN = "compat36-static-token"


def _env(extra: dict[str, str]) -> dict[str, str]:
    # The official client reads IQM_* variables; keep the outer environment's out of it.
    keep = {k: v for k, v in os.environ.items() if not k.startswith("IQM_")}
    return {**keep, **extra}


@pytest.fixture(scope="module")
def reports() -> dict[str, dict[str, Any]]:
    """Runs the check against two servers at once: no auth and a static token."""
    if not COMPAT_PYTHON.exists():
        pytest.fail(
            f"{COMPAT_PYTHON} does not exist: run `make compat-env` to create the environment "
            "with IQM's official iqm-client[cirq] 36.x"
        )
    servers = {
        "no_auth": EmbeddedServer(seed=5, job_delay=0.6),
        "token": EmbeddedServer(seed=5, job_delay=0.6, token=TOKEN),
    }
    envs = {"no_auth": _env({}), "token": _env({"IQM_TOKEN": TOKEN})}
    for server in servers.values():
        server.start()
    try:
        processes = {
            name: subprocess.Popen(
                [str(COMPAT_PYTHON), str(SCRIPT), server.url],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=envs[name],
            )
            for name, server in servers.items()
        }
        outputs = {}
        try:
            for name, process in processes.items():
                outputs[name] = (process.communicate(timeout=180), process.returncode)
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.kill()
                    process.communicate()
    finally:
        for server in servers.values():
            server.stop()
    parsed = {}
    for name, ((stdout, stderr), code) in outputs.items():
        try:
            parsed[name] = json.loads(stdout)
        except json.JSONDecodeError:
            pytest.fail(f"{name}: the check printed no JSON (exit {code}):\n{stdout}\n{stderr}")
        assert code == 0, f"{name}: {parsed[name].get('traceback') or parsed[name]}\n{stderr}"
    return parsed


@pytest.mark.parametrize("name", ["no_auth", "token"])
def test_official_client_36_lists_and_reads_the_architecture(reports, name):
    report = reports[name]
    assert report["iqm_client_version"].startswith("36.")
    assert report["quantum_computer"] == "adonis"
    assert report["health"] == {"status": "ok"}
    assert report["dqa"]["qubits"] == ["QB1", "QB2", "QB3", "QB4", "QB5"]
    assert report["dqa"]["gates"] == [
        "cc_prx",
        "cz",
        "delay",
        "measure",
        "prx",
        "reset",
    ]
    assert report["dqa_by_id_matches"] is True
    assert report["static"]["qubits"] == report["dqa"]["qubits"]
    assert report["metrics"] == "ObservationFinder"


@pytest.mark.parametrize("name", ["no_auth", "token"])
def test_official_client_36_runs_waits_counts_and_cancels(reports, name):
    report = reports[name]
    assert report["job_status"] == "completed"
    assert set(report["bell_counts"]) == {"00", "11"}
    assert sum(report["bell_counts"].values()) == 200
    assert report["counts"]["keys"] == ["a", "b"]
    assert report["counts"]["counts"] == report["bell_counts"]
    assert report["payload_circuits"] == 1
    assert report["cancelled_status"] == "cancelled"
    assert report["cancel_again_ok"] is True
    assert report["deleted_gone"] == "NotFoundError"


@pytest.mark.parametrize("name", ["no_auth", "token"])
def test_official_cirq_adapter_36_runs_a_circuit_and_a_sweep(reports, name):
    report = reports[name]
    assert set(report["cirq_counts"]) == {"00", "11"}
    assert sum(report["cirq_counts"].values()) == 100
    assert report["sweep_ones"] == [0, 50]


@pytest.mark.parametrize("name", ["no_auth", "token"])
def test_official_client_36_sends_a_delay_and_gets_results(reports, name):
    report = reports[name]
    # delay is listed on every qubit (implementation "wait"); the client accepts it and sends it.
    assert report["delay_dqa_loci"] == [[q] for q in report["dqa"]["qubits"]]
    assert report["delay_status"] == "completed"
    assert report["delay_ones"] == 40  # noiseless server: the flipped qubit stays 1
    assert report["delay_payload"] == {
        "name": "delay",
        "locus": report["delay_payload"]["locus"],
        "args": {"duration": 2e-6},
    }
    assert len(report["delay_payload"]["locus"]) == 2


@pytest.mark.parametrize("name", ["no_auth", "token"])
def test_official_client_36_reads_feedback_groups_and_dynamic_gates(reports, name):
    report = reports[name]
    qubits = report["dqa"]["qubits"]
    # One group of all qubits: the server's default (ServerConfig(feedback_groups=None)).
    assert report["feedback_groups"] == [sorted(qubits)]
    loci = [[q] for q in qubits]
    assert report["dynamic_dqa_loci"] == {"reset": loci, "cc_prx": loci}


@pytest.mark.parametrize("name", ["no_auth", "token"])
def test_official_cirq_adapter_36_runs_reset_and_a_classically_controlled_x(reports, name):
    report = reports[name]
    assert report["reset_ones"] == {"before": 30, "after": 0}
    assert report["cc_x_ones"] == {"f": 30, "target": 30}
    names = [op["name"] for op in report["cc_x_payload"]]
    assert names == ["prx", "measure", "cc_prx", "measure"]
    measure, cc_prx = report["cc_x_payload"][1], report["cc_x_payload"][2]
    assert measure["args"]["feedback_key"] == "f"
    assert cc_prx["args"]["feedback_key"] == "f"
    assert cc_prx["args"]["feedback_qubit"] == measure["locus"][0]
