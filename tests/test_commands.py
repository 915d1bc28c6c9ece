"""The client-side command line end to end, against the embedded server on loopback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import cirq
import pytest

from cirq_iqm_ext import IQMClient
from cirq_iqm_ext.cli.commands import COMMANDS, EXIT_FAILURE, EXIT_PENDING, EXIT_USAGE
from cirq_iqm_ext.cli.main import build_parser, main
from cirq_iqm_ext.server import EmbeddedServer

ROOT = Path(__file__).resolve().parents[1]
UNKNOWN_JOB = "00000000-0000-4000-8000-000000000000"
BELL_QASM = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0],q[1];
measure q -> c;
"""
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture(scope="module")
def server():
    with EmbeddedServer("adonis", seed=5) as running:
        yield running


@pytest.fixture(scope="module")
def slow_server():
    # Jobs stay pending long enough to be aborted or to run past a short --timeout.
    with EmbeddedServer("adonis", seed=5, job_delay=30.0) as running:
        yield running


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith("IQM_"):
            monkeypatch.delenv(name)


@pytest.fixture
def bell_file(tmp_path):
    path = tmp_path / "bell.qasm"
    path.write_text(BELL_QASM, encoding="utf-8")
    return path


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Runs the command line in-process; argparse's usage errors come back as exit status 2."""
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


# ------------------------------------------------------------------------------- architecture


def test_architecture_draws_the_coupling_map(server, capsys):
    code, out, err = cli(capsys, "architecture", "--url", server.url)
    assert code == 0, err
    assert "IQMDevice 'Adonis': 5 qubits, 4 couplings" in out
    assert "QB2 ─ QB3 ─ QB4" in out  # the star as a plus on the grid
    assert "cz (4 loci)" in out


def test_architecture_json_and_url_from_the_environment(server, capsys, monkeypatch):
    monkeypatch.setenv("IQM_SERVER_URL", server.url)
    code, out, _ = cli(capsys, "architecture", "--json")
    assert code == 0
    data = json.loads(out)["quantum_architecture"]
    assert data["name"] == "Adonis"
    assert data["qubits"] == ["QB1", "QB2", "QB3", "QB4", "QB5"]


@pytest.mark.parametrize("api", ["cocos-v1", "iqm-server"])
def test_both_protocol_profiles_from_the_command_line(server, capsys, tmp_path, api):
    code, out, err = cli(capsys, "architecture", "--url", server.url, "--api", api)
    assert code == 0, err
    assert "5 qubits, 4 couplings" in out
    qasm = tmp_path / "x.qasm"
    qasm.write_text(
        'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\ncreg c[1];\n'
        "x q[0];\nmeasure q[0] -> c[0];\n"
    )
    code, out, err = cli(
        capsys, "run", str(qasm), "--url", server.url, "--api", api, "--shots", "20", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["counts"] == {"1": 20}


def test_calibration_metrics_are_the_same_through_both_profiles(server, capsys):
    tables = {}
    for api in ("cocos-v1", "iqm-server"):
        code, out, err = cli(capsys, "calibration", "--url", server.url, "--api", api, "--json")
        assert code == 0, err
        tables[api] = json.loads(out)
    v1, new = tables["cocos-v1"], tables["iqm-server"]
    assert new["calibration_set_id"] == v1["calibration_set_id"]
    for name in ("QB1.t1_time", "QB3.t2_time", "QB2.prx.fidelity", "QB1.readout.error_0_to_1"):
        assert float(new["metrics"][name]["value"]) == pytest.approx(
            float(v1["metrics"][name]["value"])
        )
    cz = [k for k in v1["metrics"] if k.endswith(".cz.fidelity")]
    assert cz and all(k in new["metrics"] for k in cz)


# ------------------------------------------------------------------------------- calibration


def test_calibration_table_and_json(server, capsys):
    code, out, err = cli(capsys, "calibration", "--url", server.url)
    assert code == 0, err
    assert re.search(rf"^calibration set {UUID_RE}$", out, flags=re.MULTILINE)
    for column in ("T1", "T2", "prx fidelity", "readout 0→1", "cz fidelity"):
        assert column in out
    for name in ("QB1", "QB5", "QB1,QB3", "median"):
        assert re.search(rf"^{re.escape(name)}\s", out, flags=re.MULTILINE), name

    code, out, _ = cli(capsys, "calibration", "--url", server.url, "--json")
    assert code == 0
    data = json.loads(out)
    assert "QB1.t1_time" in data["metrics"]
    set_id = data["calibration_set_id"]

    code, out, _ = cli(capsys, "calibration", "--url", server.url, "--id", set_id, "--json")
    assert code == 0 and json.loads(out)["calibration_set_id"] == set_id


def test_calibration_of_an_unknown_set_is_a_one_line_error(server, capsys):
    code, out, err = cli(capsys, "calibration", "--url", server.url, "--id", UNKNOWN_JOB)
    assert code == EXIT_FAILURE
    assert out == ""
    assert err.startswith("cirq-iqm-ext calibration: error:") and err.count("\n") == 1


# ---------------------------------------------------------------------------------------- run


def test_run_qasm_prints_counts_job_and_calibration_set(server, bell_file, capsys):
    code, out, err = cli(capsys, "run", str(bell_file), "--shots", "200", "--url", server.url)
    assert code == 0, err
    assert re.search(rf"^job\s+{UUID_RE}$", out, flags=re.MULTILINE)
    assert re.search(rf"^calibration set {UUID_RE}$", out, flags=re.MULTILINE)
    assert re.search(r"^shots\s+200$", out, flags=re.MULTILINE)
    assert "counts (c_0 c_1):" in out
    counts = {bits: int(n) for bits, n in re.findall(r"^  ([01]+)\s+(\d+)", out, flags=re.M)}
    assert set(counts) <= {"00", "11"} and sum(counts.values()) == 200


def test_run_optimization_level_is_passed_to_the_sampler(server, tmp_path, capsys):
    path = tmp_path / "cancels.qasm"
    path.write_text(
        'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\n'
        + "cz q[0],q[1];\n" * 4
        + "measure q -> c;\n"
    )
    sent = {}
    for level in ("0", "2"):
        code, out, err = cli(
            capsys, "run", str(path), "--optimization-level", level, "--json", "--url", server.url
        )
        assert code == 0, err
        record = json.loads(out)
        assert record["counts"] == {"00": 1000}
        with IQMClient(server.url) as client:
            request = client.get_run(UUID(record["job_id"])).metadata.request
        sent[level] = [i.name for i in request.circuits[0].instructions].count("cz")
    assert sent == {"0": 4, "2": 0}  # four CZs cancel only when optimisation is asked for
    code, _, err = cli(capsys, "run", str(path), "--optimization-level", "7", "--url", server.url)
    assert code != 0 and "--optimization-level" in err


def test_run_cirq_json_as_json_output(server, tmp_path, capsys):
    q = cirq.LineQubit.range(2)
    circuit = cirq.Circuit(cirq.X(q[0]), cirq.measure(*q, key="m"))
    path = tmp_path / "circuit.json"
    cirq.to_json(circuit, path)
    code, out, err = cli(capsys, "run", str(path), "--shots", "20", "--json", "--url", server.url)
    assert code == 0, err
    record = json.loads(out)
    assert record["counts"] == {"10": 20}
    assert record["measurement_keys"] == ["m"]
    assert record["shots"] == 20
    UUID(record["job_id"])
    UUID(record["calibration_set_id"])
    assert set(record["initial_mapping"]) == {"q(0)", "q(1)"}
    assert "job_end" in record["timestamps"]


def test_run_from_stdin_without_measurements_measures_everything(server, capsys, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO(BELL_QASM.replace("measure q -> c;\n", "")))
    code, out, err = cli(capsys, "run", "-", "--shots", "10", "--url", server.url)
    assert code == 0, err
    assert "measuring every qubit under the key 'm'" in err
    assert "counts (m):" in out


def test_run_no_wait_then_status_and_result_by_id(server, bell_file, capsys):
    code, out, _ = cli(
        capsys, "run", str(bell_file), "--shots", "50", "--no-wait", "--url", server.url
    )
    assert code == 0
    job_id = out.strip()
    UUID(job_id)

    code, out, _ = cli(capsys, "result", job_id, "--url", server.url, "--json")
    assert code == 0
    record = json.loads(out)
    assert record["job_id"] == job_id and sum(record["counts"].values()) == 50

    code, out, _ = cli(capsys, "status", job_id, "--url", server.url)
    assert code == 0 and out == f"{job_id}: ready\n"
    code, out, _ = cli(capsys, "status", job_id, "--url", server.url, "--json")
    assert json.loads(out)["status"] == "ready"

    code, out, err = cli(capsys, "result", job_id, "--url", server.url)
    assert code == 0 and f"job             {job_id}" in out

    # A finished job cannot be aborted: the server's refusal, one line, exit 1.
    code, out, err = cli(capsys, "abort", job_id, "--url", server.url)
    assert code == EXIT_FAILURE and out == ""
    assert err.startswith("cirq-iqm-ext abort: error:") and job_id in err


def test_run_no_compile_of_a_logical_circuit_explains(server, bell_file, capsys):
    code, out, err = cli(capsys, "run", str(bell_file), "--no-compile", "--url", server.url)
    assert code == EXIT_FAILURE and out == ""
    assert "cirq-iqm-ext run: error:" in err and "q_0" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("OPENQASM 2.0;\nqreg q[1];\nfoo q[0];\n", "Invalid OpenQASM"),
        ('{"cirq_type": "LineQubit", "x": 0}', "not a circuit"),
        ('{"cirq_type": "NoSuchThing"}', "not a Cirq JSON circuit"),
    ],
)
def test_run_of_a_bad_file_is_a_usage_error(server, tmp_path, capsys, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content, encoding="utf-8")
    code, out, err = cli(capsys, "run", str(path), "--url", server.url)
    assert code == EXIT_USAGE and out == ""
    assert message in err


def test_run_of_a_missing_file(server, capsys, tmp_path):
    code, _, err = cli(capsys, "run", str(tmp_path / "nope.qasm"), "--url", server.url)
    assert code == EXIT_USAGE
    assert "cannot read" in err and "No such file" in err


# ------------------------------------------------------------------------- abort and timeouts


def test_abort_a_pending_job_and_result_says_aborted(slow_server, bell_file, capsys):
    url = slow_server.url
    code, out, _ = cli(capsys, "run", str(bell_file), "--no-wait", "--url", url)
    job_id = out.strip()
    code, out, _ = cli(capsys, "status", job_id, "--url", url)
    assert code == 0 and "pending" in out

    # Waiting past --timeout: exit 3 and a message saying the job still runs.
    code, out, err = cli(capsys, "result", job_id, "--timeout", "0.2", "--url", url)
    assert code == EXIT_PENDING and out == ""
    assert job_id in err and "still" in err

    code, out, _ = cli(capsys, "abort", job_id, "--url", url, "--json")
    assert code == 0 and json.loads(out) == {"job_id": job_id, "aborted": True}
    code, out, _ = cli(capsys, "status", job_id, "--url", url)
    assert out.startswith(f"{job_id}: aborted")
    code, out, err = cli(capsys, "result", job_id, "--url", url)
    assert code == EXIT_FAILURE and "aborted" in err


# ------------------------------------------------------------------------------ usage errors


@pytest.mark.parametrize("command", ["architecture", "calibration", "status", "result", "abort"])
def test_no_server_url_is_a_usage_error(command, capsys):
    argv = [command] + ([UNKNOWN_JOB] if command in ("status", "result", "abort") else [])
    code, out, err = cli(capsys, *argv)
    assert code == EXIT_USAGE and out == ""
    assert "--url" in err and "IQM_SERVER_URL" in err


def test_bad_job_id_and_bad_shots_are_usage_errors(capsys):
    code, _, err = cli(capsys, "status", "not-a-uuid", "--url", "http://127.0.0.1:9")
    assert code == EXIT_USAGE and "not a job id" in err
    code, _, err = cli(capsys, "run", "x.qasm", "--shots", "0", "--url", "http://127.0.0.1:9")
    assert code == EXIT_USAGE and "must be at least 1" in err


def test_unknown_job_and_unreachable_server_are_one_line_errors(server, capsys, monkeypatch):
    code, out, err = cli(capsys, "status", UNKNOWN_JOB, "--url", server.url)
    assert code == EXIT_FAILURE and out == ""
    expected = f"Job {UNKNOWN_JOB} not found on {server.url}: Job not found"
    assert err == f"cirq-iqm-ext status: error: {expected}\n"

    monkeypatch.setenv("IQM_CLIENT_REQUESTS_TIMEOUT", "1")
    code, _, err = cli(capsys, "architecture", "--url", "http://127.0.0.1:9")
    assert code == EXIT_FAILURE
    assert err.startswith("cirq-iqm-ext architecture: error:") and "127.0.0.1:9" in err
    assert err.count("\n") == 1


def test_bad_url_and_bad_auth_environment_are_errors_not_tracebacks(capsys, monkeypatch):
    code, _, err = cli(capsys, "architecture", "--url", "ftp://example.com")
    assert code == EXIT_FAILURE and "http://" in err
    monkeypatch.setenv("IQM_TOKEN", "secret-value-123")
    monkeypatch.setenv("IQM_TOKENS_FILE", "/nonexistent/tokens.json")
    code, _, err = cli(capsys, "architecture", "--url", "http://127.0.0.1:9")
    assert code == EXIT_FAILURE and "secret-value-123" not in err


def test_authentication_from_the_environment(capsys, monkeypatch):
    with EmbeddedServer("adonis", token="cli-token-1") as secured:
        code, _, err = cli(capsys, "architecture", "--url", secured.url)
        assert code == EXIT_FAILURE and "Authentication failed" in err
        monkeypatch.setenv("IQM_TOKEN", "cli-token-1")
        code, out, err = cli(capsys, "architecture", "--url", secured.url)
        assert code == 0, err
        assert "cli-token-1" not in out + err


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command, capsys):
    code, out, _ = cli(capsys, command, "--help")
    assert code == 0
    assert out.startswith(f"usage: cirq-iqm-ext {command}")
    assert "--url" in out and "IQM_SERVER_URL" in out and "exit status" in out


def test_commands_are_registered_next_to_serve():
    help_text = build_parser().format_help()
    for command in ["serve", *COMMANDS]:
        assert command in help_text


# ------------------------------------------------------------------------- a real subprocess


def test_python_m_cirq_iqm_ext_run_and_status_in_a_subprocess(server, bell_file):
    env = {k: v for k, v in os.environ.items() if not k.startswith("IQM_")}
    env.update(PYTHONPATH=str(ROOT), IQM_SERVER_URL=server.url)
    completed = subprocess.run(
        [sys.executable, "-m", "cirq_iqm_ext", "run", str(bell_file), "--shots", "30", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    record = json.loads(completed.stdout)
    assert sum(record["counts"].values()) == 30

    completed = subprocess.run(
        [sys.executable, "-m", "cirq_iqm_ext", "status", "not-a-uuid"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert completed.returncode == EXIT_USAGE
    assert "not a job id" in completed.stderr and "Traceback" not in completed.stderr
