"""Every example runs against the embedded server, as `make demo` runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IQM_")}
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
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


UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def test_bell_prints_the_device_and_correlated_counts():
    out = run_example("bell.py")
    assert "IQMDevice 'Adonis': 5 qubits, 4 couplings" in out
    assert re.search(rf"^  job: {UUID}$", out, flags=re.MULTILINE)
    assert re.search(r"^    (00|11)\s+\d+\s+#+$", out, flags=re.MULTILINE)
    assert "P(00) + P(11) = 1.000" in out


def test_rabi_sweep_follows_cosine_and_saves_a_plot(tmp_path):
    output = tmp_path / "plots" / "rabi.png"
    out = run_example("rabi_sweep.py", "--output", str(output))
    assert "Rabi scan: 21 angles" in out
    deviation = float(re.search(r"largest deviation from cos\(theta\): ([\d.]+)", out).group(1))
    assert deviation < 0.2  # 400 shots: a few standard deviations of shot noise
    assert f"Saved the plot to {output}" in out
    assert output.read_bytes().startswith(b"\x89PNG") and output.stat().st_size > 10_000


def test_compile_qasmbench_validates_compiles_and_runs():
    out = run_example("compile_qasmbench.py")
    assert "Not runnable on Apollo as written" in out
    assert "qubit not on device" in out
    assert re.search(r"^Compiled for Apollo: \d+ native operations, \d+ cz", out, flags=re.M)
    assert re.search(rf"^Job {UUID}: most frequent outcomes", out, flags=re.MULTILINE)
    if (EXAMPLES.parents[1] / "shared" / "benchmarks" / "qasmbench" / "adder_n4.qasm").is_file():
        # The 4-qubit adder is deterministic: 1 + 1 with carry gives one outcome every shot.
        assert "adder_n4.qasm: 4 qubits" in out
        assert re.search(r"^  [01]{4}\s+1000$", out, flags=re.MULTILINE)


def test_compile_qasmbench_falls_back_to_an_embedded_program():
    out = run_example("compile_qasmbench.py", "--circuit", "no-such-file.qasm")
    assert "using an embedded GHZ program" in out
    counts = dict(re.findall(r"^  ([01]{3})\s+(\d+)$", out, flags=re.MULTILINE))
    assert set(counts) == {"000", "111"}


def test_noisy_local_simulation_agrees_with_the_noisy_server():
    out = run_example("noisy_local_vs_server.py")
    assert "P(000)+P(111) ideal (local): 1.000" in out
    noisy = float(re.search(r"P\(000\)\+P\(111\) noisy \(local\): ([\d.]+)", out).group(1))
    server = float(re.search(r"P\(000\)\+P\(111\) server: ([\d.]+)", out).group(1))
    assert 0.5 < noisy < 0.99 and 0.5 < server < 0.99  # noise is visible, but not everything
    distance = float(re.search(r"noisy local vs server: ([\d.]+)", out).group(1))
    assert distance < 0.06  # same physics, 2000 shots each


def test_jobs_later_fetches_the_job_by_id_with_a_second_sampler():
    out = run_example("jobs_later.py")
    job_id = re.search(rf"^Submitted job ({UUID}); status pending", out, flags=re.M).group(1)
    assert f"Fetched job {job_id} by id" in out
    assert f"Job {job_id} is ready: 5 results" in out
    p1 = [float(x) for x in re.findall(r"P\(1\)=([\d.]+)", out)]
    assert p1[0] == 0.0 and p1[-1] == 1.0 and p1 == sorted(p1)
