"""The main job: a Bell circuit on an IQM quantum computer, through IQMClient and IQMSampler.

1. The Bell circuit in IQM's native instructions, submitted with the REST client: counts and the
   job's timestamps.
2. The same physics written in plain Cirq, run with ``IQMSampler`` (compiled for the device on the
   way), and a 50-point parameter sweep that goes to the quantum computer as one job.

By default this starts the embedded IQM-compatible server on a free loopback port, so it runs
without an IQM account (``make demo``). Set ``IQM_SERVER_URL`` (and one way of authentication, see
the README) to run the same code against a real IQM quantum computer.
"""

from __future__ import annotations

import os
from collections import Counter
from contextlib import ExitStack

import cirq
import numpy as np
import sympy

from cirq_iqm_ext import Circuit, Instruction, IQMClient, IQMSampler
from cirq_iqm_ext.server import EmbeddedServer

SHOTS = 1000
SWEEP_POINTS = 50


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


def bar(count: int, total: int) -> str:
    """A text histogram bar."""
    return "#" * round(40 * count / total)


def run_with_client(url: str) -> None:
    """Submits the native Bell circuit, waits for it, prints the counts and the timestamps."""
    with IQMClient(url) as client:
        architecture = client.get_quantum_architecture()
        control, target = architecture.loci("cz")[0]
        print(
            f"Architecture {architecture.name}: {len(architecture.qubits)} qubits; "
            f"Bell pair on {control}-{target}"
        )

        job_id = client.submit_circuits([bell_circuit(control, target)], shots=SHOTS)
        print(f"Submitted job {job_id}")
        result = client.wait_for_results(job_id, timeout_secs=120)
        assert result.measurements is not None
        counts = Counter("".join(map(str, shot)) for shot in result.measurements[0]["m"])
        print(
            f"Status: {result.status.value}; calibration set {result.metadata.calibration_set_id}"
        )
        print("Counts:")
        for bits, count in sorted(counts.items()):
            print(f"  {bits}: {count:5d}  {bar(count, SHOTS)}")
        print("Timestamps:")
        for name, stamp in result.metadata.timestamps.items():
            print(f"  {name:<16} {stamp}")


def run_with_sampler(url: str) -> None:
    """A Bell circuit in plain Cirq and a 50-point sweep through IQMSampler."""
    alice, bob = cirq.LineQubit.range(2)
    bell = cirq.Circuit(cirq.H(alice), cirq.CNOT(alice, bob), cirq.measure(alice, bob, key="m"))
    with IQMSampler(url) as sampler:
        result = sampler.run(bell, repetitions=SHOTS)
        print(f"\nIQMSampler on {sampler.device.name}: Bell circuit, job {result.job_id}")
        print(f"  qubits: {result.initial_mapping}")
        for value, count in sorted(result.histogram(key="m").items()):
            print(f"  {value:02b}: {count:5d}  {bar(count, SHOTS)}")

        theta = sympy.Symbol("theta")
        rabi = cirq.Circuit(cirq.rx(theta).on(alice), cirq.measure(alice, key="m"))
        sweep = cirq.Linspace(theta, 0.0, 2 * np.pi, SWEEP_POINTS)
        results = sampler.run_sweep(rabi, sweep, repetitions=200)
        jobs = {r.job_id for r in results}
        print(f"Rabi sweep: {len(results)} points in {len(jobs)} job(s); P(1) by angle:")
        for r in results[:: SWEEP_POINTS // 10]:
            p1 = float(r.measurements["m"].mean())
            print(
                f"  theta={float(r.params.value_of(theta)):5.2f}  P(1)={p1:4.2f}  "
                f"{bar(round(p1 * 100), 100)}"
            )


def main() -> None:
    """Runs both parts against IQM_SERVER_URL, or against the embedded server by default."""
    with ExitStack() as stack:
        url = os.environ.get("IQM_SERVER_URL")
        if not url:
            server = stack.enter_context(EmbeddedServer("adonis", seed=2024))
            url = server.url
            print(f"Started the embedded IQM-compatible server at {url}")
        run_with_client(url)
        run_with_sampler(url)
    if os.environ.get("IQM_SERVER_URL") is None:
        print("Stopped the embedded server.")


if __name__ == "__main__":
    main()
