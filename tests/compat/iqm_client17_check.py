"""Drives IQM's official ``iqm-client`` 17.x against a server and prints what it observed as JSON.

Run with the compatibility environment's interpreter (``.venv-compat/bin/python``), never with the
project's own: ``python iqm_client17_check.py URL``. Authentication comes from the environment the
way iqm-client reads it (``IQM_TOKEN``, or ``IQM_AUTH_SERVER`` + ``IQM_AUTH_USERNAME`` +
``IQM_AUTH_PASSWORD``). The server must run jobs with a delay of about a second so the abort step
catches a pending job. Exits 1 (after printing what it saw, with the error) when a step fails.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections import Counter
from typing import Any

os.environ.setdefault("IQM_CLIENT_SECONDS_BETWEEN_CALLS", "0.05")

from iqm.iqm_client import (  # the variable above must be set first
    Circuit,
    ClientAuthenticationError,
    ClientConfigurationError,
    Instruction,
    IQMClient,
    JobAbortionError,
    RunRequest,
)


def prx(qubit: str, angle_t: float, phase_t: float) -> Instruction:
    return Instruction(name="prx", qubits=(qubit,), args={"angle_t": angle_t, "phase_t": phase_t})


def bell_circuit() -> Circuit:
    """Hadamard-like RY(pi/2) on both, CZ, RY(-pi/2) on the target: (|00> + |11>)/sqrt(2)."""
    return Circuit(
        name="bell",
        instructions=(
            prx("alice", 0.25, 0.25),
            prx("bob", 0.25, 0.25),
            Instruction(name="cz", qubits=("alice", "bob"), args={}),
            prx("bob", 0.25, 0.75),
            Instruction(name="measure", qubits=("alice",), args={"key": "a"}),
            Instruction(name="measure", qubits=("bob",), args={"key": "b"}),
        ),
    )


def main(url: str) -> dict[str, Any]:
    out: dict[str, Any] = {"iqm_client_version": _version()}
    client = IQMClient(url, client_signature="cirq-iqm-ext compat check")

    architecture = client.get_quantum_architecture()
    out["architecture"] = {
        "name": architecture.name,
        "qubits": list(architecture.qubits),
        "operations": sorted(architecture.operations),
    }

    mapping = {"alice": "QB1", "bob": "QB3"}
    job_id = client.submit_circuits([bell_circuit()], qubit_mapping=mapping, shots=200)
    out["job_id"] = str(job_id)
    out["status_after_submit"] = client.get_run_status(job_id).status.value
    compiled = client.wait_for_compilation(job_id, timeout_secs=30)
    out["status_after_compilation"] = compiled.status.value
    result = client.wait_for_results(job_id, timeout_secs=30)
    out["status"] = result.status.value
    measurements = result.measurements or []
    out["shots_returned"] = [len(m["a"]) for m in measurements]
    counts = Counter(
        f"{a[0]}{b[0]}" for a, b in zip(measurements[0]["a"], measurements[0]["b"], strict=True)
    )
    out["counts"] = dict(counts)
    metadata = result.metadata
    out["metadata"] = {
        "request_shots": metadata.request.shots,
        "request_qubit_mapping": {
            m.logical_name: m.physical_name for m in metadata.request.qubit_mapping or []
        },
        "heralding_mode": metadata.request.heralding_mode.value,
        "calibration_set_id": str(metadata.calibration_set_id),
        "cocos_version": metadata.cocos_version,
        "timestamps": sorted(metadata.timestamps or {}),
    }

    try:
        client.abort_job(job_id)
        out["abort_finished"] = "accepted"
    except JobAbortionError as error:
        out["abort_finished"] = f"JobAbortionError: {error}"

    pending_id = client.submit_circuits([bell_circuit()], qubit_mapping=mapping, shots=10)
    client.abort_job(pending_id)
    out["abort_pending"] = "accepted"
    out["status_after_abort"] = client.get_run_status(pending_id).status.value
    aborted = client.wait_for_results(pending_id, timeout_secs=30)
    out["aborted_result_status"] = aborted.status.value

    # Bypass the client-side checks to see the server's own rejection.
    bad = RunRequest(
        circuits=[
            Circuit(
                name="bad", instructions=(Instruction(name="cz", qubits=("QB1", "QB2"), args={}),)
            )
        ],
        shots=1,
    )
    try:
        client.submit_run_request(bad)
        out["server_rejection"] = None
    except ClientConfigurationError as error:
        out["server_rejection"] = str(error)

    started = time.monotonic()
    batch_id = client.submit_circuits(
        [bell_circuit(), bell_circuit()], qubit_mapping=mapping, shots=50
    )
    batch = client.wait_for_results(batch_id, timeout_secs=30)
    out["batch_shots"] = [len(m["a"]) for m in batch.measurements or []]
    out["batch_seconds"] = round(time.monotonic() - started, 3)

    try:
        out["close_auth_session"] = client.close_auth_session()
    except ClientAuthenticationError as error:  # a static token is "externally managed"
        out["close_auth_session"] = f"ClientAuthenticationError: {error}"
    return out


def _version() -> str:
    from importlib.metadata import version

    return version("iqm-client")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: iqm_client17_check.py URL", file=sys.stderr)
        sys.exit(2)
    try:
        report = main(sys.argv[1])
        report["ok"] = True
        code = 0
    except Exception as error:  # every failure is reported as JSON
        report = {
            "ok": False,
            "error": f"{type(error).__name__}: {error}",
            "traceback": traceback.format_exc(),
        }
        code = 1
    print(json.dumps(report, indent=1, sort_keys=True))
    sys.exit(code)
