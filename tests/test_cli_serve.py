"""``python -m cirq_iqm_ext serve`` as a user runs it: one line, serve, stop cleanly on a signal."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from cirq_iqm_ext.cli.main import build_parser, main
from cirq_iqm_ext.server.config import ServerConfig
from cirq_iqm_ext.server.core import ServerCore

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^Serving IQM API on (http://127\.0\.0\.1:(\d+))$")
SECRET = "cli-secret-token-42"


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "cirq_iqm_ext", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
        cwd=ROOT,
    )


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serve_prints_one_line_serves_and_exits_0_on_signal(signum):
    env = {"IQM_SERVER_TOKEN": SECRET}
    process = start("--seed", "3", "--architecture", "Garnet", env=env)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().rstrip("\n")
        match = LINE.match(line)
        assert match, line
        url = match.group(1)
        assert int(match.group(2)) > 0
        assert httpx.get(f"{url}/health", timeout=5).json() == {"status": "ok"}
        assert httpx.get(f"{url}/quantum-architecture", timeout=5).status_code == 401
        arch = httpx.get(
            f"{url}/quantum-architecture", headers={"Authorization": f"Bearer {SECRET}"}, timeout=5
        ).json()
        assert arch["quantum_architecture"]["name"] == "Garnet"
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert stdout == ""  # nothing after the one line
    assert "Traceback" not in stderr
    assert SECRET not in line + stdout + stderr


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["serve", "--architecture", "nonesuch"], "adonis, aphrodite, apollo, deneb, garnet"),
        (["serve", "--port", "70000"], "invalid port"),
        (["serve", "--port", "http"], "invalid port"),
        (["serve", "--seed", "x"], "--seed"),
        (["serve", "--job-delay", "-1"], "--job-delay"),
        (["serve", "--auth-user", "alice"], "NAME:PASSWORD"),
        (["serve", "--bogus"], "unrecognized arguments"),
        (["nonesuch"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_options_exit_2_with_a_clear_message(capsys, argv, fragment):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert fragment in capsys.readouterr().err


def test_auth_user_password_is_never_echoed(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--auth-user", ":hunter2-secret"])
    assert "hunter2-secret" not in capsys.readouterr().err


def test_parser_options_and_repeatable_auth_users():
    args = build_parser().parse_args(
        ["serve", "--auth-user", "a:pw1", "--auth-user", "b:p:w2", "--job-delay", "0.5"]
    )
    assert args.auth_user == [("a", "pw1"), ("b", "p:w2")]
    assert args.job_delay == 0.5
    assert args.host == "127.0.0.1"
    assert args.port == 0
    assert args.architecture == "adonis"
    assert args.token is None


def test_a_port_in_use_is_exit_1_with_a_message(capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_a_locked_state_dir_is_exit_1_with_one_line(tmp_path, capsys):
    from cirq_iqm_ext.server import EmbeddedServer

    with EmbeddedServer("adonis", state_dir=str(tmp_path)):
        assert main(["serve", "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cirq-iqm-ext serve: ")
    assert str(tmp_path) in err and "Traceback" not in err


def test_a_state_dir_that_is_a_file_is_exit_1_with_one_line(tmp_path, capsys):
    file = tmp_path / "not-a-dir"
    file.write_text("x")
    assert main(["serve", "--state-dir", str(file)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "file" in err and "Traceback" not in err


def test_connection_limits_reach_the_server():
    args = build_parser().parse_args(
        ["serve", "--max-connections", "8", "--connection-timeout", "2.5"]
    )
    assert (args.max_connections, args.connection_timeout) == (8, 2.5)
    for bad in (["--max-connections", "0"], ["--connection-timeout", "-1"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["serve", *bad])


def test_retention_options_are_parsed_and_checked(capsys):
    args = build_parser().parse_args(
        ["serve", "--retain-jobs", "50", "--retain-bytes", "512M", "--retain-age", "3600"]
    )
    assert (args.retain_jobs, args.retain_bytes, args.retain_age) == (50, 512 << 20, 3600.0)
    assert build_parser().parse_args(["serve", "--retain-bytes", "2GiB"]).retain_bytes == 2 << 30
    assert build_parser().parse_args(["serve", "--retain-bytes", "1000"]).retain_bytes == 1000
    for bad, fragment in (
        (["--retain-jobs", "0"], "--retain-jobs"),
        (["--retain-bytes", "lots"], "not a size"),
        (["--retain-bytes", "-1M"], "--retain-bytes"),
        (["--retain-age", "-5"], "--retain-age"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args(["serve", *bad])
        assert exit_info.value.code == 2
        assert fragment in capsys.readouterr().err


def test_serve_engine_flag_reaches_the_simulators_and_bad_engines_are_refused(monkeypatch):
    args = build_parser().parse_args(["serve", "--engine", "numpy"])
    assert args.engine == "numpy"
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(["serve", "--engine", "gpu"])
    assert refused.value.code == 2
    monkeypatch.setenv("CIRQ_IQM_EXT_ENGINE", "warp-drive")
    process = start()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "CIRQ_IQM_EXT_ENGINE='warp-drive' is not a simulation engine" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("engine", ["numpy", "auto"])
def test_server_config_engine_is_the_simulators_engine(engine):
    core = ServerCore(ServerConfig(seed=3, workers=2, engine=engine))
    try:
        assert [simulator.engine for simulator in core.simulators] == [engine, engine]
    finally:
        core.store.close()
