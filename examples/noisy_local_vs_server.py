"""Noisy local simulation versus the server: the same GHZ circuit, the same calibration figures.

``cirq_iqm_ext.local_sampler`` simulates a device on this machine with a noise model built
from a calibration set (T1/T2 relaxation, gate infidelities, readout errors). The embedded server,
started with ``noise="calibration"``, simulates with the same physics, so the two histograms agree
within shot noise; an ideal (noiseless) simulation shows what the noise costs.

    python examples/noisy_local_vs_server.py

With ``IQM_SERVER_URL`` set the server is a real quantum computer and the local model uses the
built-in calibration of the device's architecture, so expect the two to differ more.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from contextlib import ExitStack

import cirq

from cirq_iqm_ext import IQMSampler, local_sampler, transpile
from cirq_iqm_ext.server import EmbeddedServer

SHOTS = 2000


def server_url(stack: ExitStack, architecture: str = "adonis") -> str:
    """``IQM_SERVER_URL``, or an embedded server with calibration noise, stopped by ``stack``."""
    url = os.environ.get("IQM_SERVER_URL")
    if url:
        return url
    server = stack.enter_context(EmbeddedServer(architecture, seed=3, noise="calibration"))
    print(f"Started the embedded IQM-compatible server (with noise) at {server.url}")
    return server.url


def distribution(result: cirq.Result) -> dict[str, float]:
    """Outcome probabilities of the key ``m``, as bitstrings."""
    rows = Counter("".join(map(str, row)) for row in result.measurements["m"])
    return {bits: n / result.repetitions for bits, n in rows.items()}


def total_variation(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Half the L1 distance between two distributions (0 = identical, 1 = disjoint)."""
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


def main() -> None:
    """Runs a 3-qubit GHZ circuit three ways and compares the histograms."""
    a, b, c = cirq.LineQubit.range(3)
    ghz = cirq.Circuit(cirq.H(a), cirq.CNOT(a, b), cirq.CNOT(b, c), cirq.measure(a, b, c, key="m"))
    with ExitStack() as stack:
        sampler = stack.enter_context(IQMSampler(server_url(stack), compile=False, progress=False))
        device = sampler.device
        # Compile once, so all three runs execute exactly the same native circuit.
        native = transpile(ghz, device).circuit
        print(f"GHZ on {device.name}: {sum(1 for _ in native.all_operations())} native operations")

        runs = {
            "ideal (local)": local_sampler(device, noise=False, seed=1).run(
                native, repetitions=SHOTS
            ),
            "noisy (local)": local_sampler(device, seed=1).run(native, repetitions=SHOTS),
            "server": sampler.run(native, repetitions=SHOTS),
        }
    distributions = {name: distribution(result) for name, result in runs.items()}
    outcomes = sorted(set().union(*distributions.values()))
    print("outcome " + "".join(f"{name:>15}" for name in distributions))
    for bits in outcomes:
        print(f"  {bits}  " + "".join(f"{d.get(bits, 0.0):15.3f}" for d in distributions.values()))
    for name in distributions:
        p_ghz = distributions[name].get("000", 0.0) + distributions[name].get("111", 0.0)
        print(f"P(000)+P(111) {name}: {p_ghz:.3f}")
    distance = total_variation(distributions["noisy (local)"], distributions["server"])
    print(f"total variation distance, noisy local vs server: {distance:.3f}")


if __name__ == "__main__":
    main()
