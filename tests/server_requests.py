"""Raw v1 requests for the server tests that speak HTTP themselves (no client in between)."""

from __future__ import annotations

from typing import Any

import httpx


def bell_circuit(name: str = "bell") -> dict[str, Any]:
    """A Bell-like circuit on Adonis's QB1 and QB3, as a v1 circuit object."""
    return {
        "name": name,
        "instructions": [
            {"name": "prx", "qubits": ["QB1"], "args": {"angle_t": 0.25, "phase_t": 0.25}},
            {"name": "cz", "qubits": ["QB1", "QB3"], "args": {}},
            {"name": "measure", "qubits": ["QB1", "QB3"], "args": {"key": "m"}},
        ],
    }


def bell_body(shots: int = 10) -> dict[str, Any]:
    """A v1 run request: one :func:`bell_circuit`."""
    return {"circuits": [bell_circuit()], "shots": shots}


def wait_ready(http: httpx.Client, job_id: str) -> None:
    """Long-polls until the job has finished: each poll answers on any change of status."""
    for _ in range(100):
        status = http.get(f"/jobs/{job_id}/status", params={"wait": 20}).json()["status"]
        if not status.startswith("pending"):
            break
    assert status == "ready", status
