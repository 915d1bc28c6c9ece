"""A Rabi-style scan: ⟨Z⟩ after RX(θ) for 21 angles, plotted to a PNG file.

``sample_expectation_values`` measures the observable at every point of a sympy sweep; the
parameterised circuit is compiled for the device once, and each point only fills in numbers.

    python examples/rabi_sweep.py --output rabi.png

Runs against the embedded server by default, or against ``IQM_SERVER_URL`` when it is set.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import cirq
import matplotlib
import numpy as np
import sympy

from cirq_iqm_ext import IQMSampler
from cirq_iqm_ext.server import EmbeddedServer

POINTS = 21
SHOTS = 400


def server_url(stack: ExitStack, architecture: str = "adonis") -> str:
    """``IQM_SERVER_URL``, or a fresh embedded server that ``stack`` stops at the end."""
    url = os.environ.get("IQM_SERVER_URL")
    if url:
        return url
    server = stack.enter_context(EmbeddedServer(architecture, seed=7))
    print(f"Started the embedded IQM-compatible server at {server.url}")
    return server.url


def main(argv: Sequence[str] | None = None) -> Path:
    """Runs the scan and saves the plot; returns the plot's path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=None, help="PNG path (default: a temp dir)")
    args = parser.parse_args(argv)
    output = args.output or Path(tempfile.mkdtemp(prefix="rabi-")) / "rabi.png"

    qubit = cirq.LineQubit(0)
    theta = sympy.Symbol("theta")
    circuit = cirq.Circuit(cirq.rx(theta).on(qubit))  # sample_expectation_values measures
    sweep = cirq.Linspace(theta, 0.0, 2 * np.pi, POINTS)
    observable = cirq.Z(qubit)

    with ExitStack() as stack:
        sampler = stack.enter_context(IQMSampler(server_url(stack), progress=False))
        values = sampler.sample_expectation_values(
            circuit, observable, num_samples=SHOTS, params=sweep
        )
    angles = [float(r.value_of(theta)) for r in sweep]
    z = [float(np.real(v[0])) for v in values]
    # An ideal qubit gives cos(θ); the worst point tells how far from ideal this run was.
    deviation = max(abs(zi - np.cos(a)) for a, zi in zip(angles, z, strict=True))
    print(f"Rabi scan: {POINTS} angles, {SHOTS} shots each")
    for a, zi in list(zip(angles, z, strict=True))[::5]:
        print(f"  theta={a:4.2f}  <Z>={zi:+.2f}  (ideal {np.cos(a):+.2f})")
    print(f"largest deviation from cos(theta): {deviation:.2f}")

    matplotlib.use("Agg")  # files only, no window
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(6, 3.5))
    fine = np.linspace(0, 2 * np.pi, 200)
    ax.plot(fine, np.cos(fine), color="0.6", label="ideal cos θ")
    ax.plot(angles, z, "o", label="measured ⟨Z⟩")
    ax.set_xlabel("θ (rad)")
    ax.set_ylabel("⟨Z⟩")
    ax.legend()
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=100)
    plt.close(figure)
    print(f"Saved the plot to {output}")
    return output


if __name__ == "__main__":
    main()
