"""The main job: a Bell circuit on an IQM quantum computer, through IQMClient.

By default this starts the embedded IQM-compatible server on a free loopback port, so it runs without
an IQM account (``make demo``). Set ``IQM_SERVER_URL`` (and one way of authentication, see the README)
to run the same code against a real IQM quantum computer.
"""

from __future__ import annotations

import os
from collections import Counter
from contextlib import ExitStack

from cirq_iqm_ext import Circuit, Instruction, IQMClient
from cirq_iqm_ext.server import EmbeddedServer

SHOTS = 1000


def bell_circuit(control: str, target: str) -> Circuit:
    """A Bell pair in IQM's native gates: H on both, CZ, H on the target (H ≈ RY(π/2) here)."""
    ry_half_pi = {"angle_t": 0.25, "phase_t": 0.25}  # quarter turn about Y
    return Circuit(
        name="bell",
        instructions=(
            Instruction("prx", [control], ry_half_pi),
            Instruction("prx", [target], ry_half_pi),
            Instruction("cz", [control, target]),
            Instruction("prx", [target], {"angle_t": 0.25, "phase_t": 0.75}),  # RY(-π/2)
            Instruction("measure", [control, target], {"key": "m"}),
        ),
    )


def main() -> None:
    """Submits the Bell circuit, waits for it and prints the counts and the job's timestamps."""
    with ExitStack() as stack:
        url = os.environ.get("IQM_SERVER_URL")
        if not url:
            server = stack.enter_context(EmbeddedServer("adonis", seed=2024))
            url = server.url
            print(f"Started the embedded IQM-compatible server at {url}")
        client = stack.enter_context(IQMClient(url))
        architecture = client.get_quantum_architecture()
        control, target = architecture.loci("cz")[0]
        print(f"Architecture {architecture.name}: {len(architecture.qubits)} qubits; "
              f"Bell pair on {control}-{target}")

        job_id = client.submit_circuits([bell_circuit(control, target)], shots=SHOTS)
        print(f"Submitted job {job_id}")
        result = client.wait_for_results(job_id, timeout_secs=120)
        assert result.measurements is not None
        counts = Counter("".join(map(str, shot)) for shot in result.measurements[0]["m"])
        print(f"Status: {result.status.value}; calibration set {result.metadata.calibration_set_id}")
        print("Counts:")
        for bits, count in sorted(counts.items()):
            print(f"  {bits}: {count:5d}  {'#' * round(40 * count / SHOTS)}")
        print("Timestamps:")
        for name, stamp in result.metadata.timestamps.items():
            print(f"  {name:<16} {stamp}")
    if os.environ.get("IQM_SERVER_URL") is None:
        print("Stopped the embedded server.")


if __name__ == "__main__":
    main()
