"""A Bell pair in plain Cirq on an IQM quantum computer: compile, run, look at the result.

Runs against the embedded IQM-compatible server by default (no account needed); set
``IQM_SERVER_URL`` (and one way of authentication, see the README) to use a real quantum computer.

    python examples/bell.py
"""

from __future__ import annotations

import os
from contextlib import ExitStack

import cirq

from cirq_iqm_ext import IQMSampler
from cirq_iqm_ext.server import EmbeddedServer
from cirq_iqm_ext.ui.display import device_text, result_text


def server_url(stack: ExitStack, architecture: str = "adonis") -> str:
    """``IQM_SERVER_URL``, or a fresh embedded server that ``stack`` stops at the end."""
    url = os.environ.get("IQM_SERVER_URL")
    if url:
        return url
    server = stack.enter_context(EmbeddedServer(architecture, seed=2024))
    print(f"Started the embedded IQM-compatible server at {server.url}")
    return server.url


def main() -> None:
    """Runs a Bell circuit and prints the device, the counts and the job's metadata."""
    alice, bob = cirq.LineQubit.range(2)
    bell = cirq.Circuit(cirq.H(alice), cirq.CNOT(alice, bob), cirq.measure(alice, bob, key="m"))
    with ExitStack() as stack:
        sampler = stack.enter_context(IQMSampler(server_url(stack), progress=False))
        # The device is fetched from the server on first use; str() draws its coupling map.
        print(device_text(sampler.device))
        # H and CNOT are not native: the sampler compiles them to prx/cz and places the two
        # logical qubits on a coupled pair of physical ones.
        result = sampler.run(bell, repetitions=1000)
        print(result_text(result))  # what a notebook shows for `result`
        histogram = result.histogram(key="m")
        correlated = (histogram[0b00] + histogram[0b11]) / result.repetitions
        print(f"P(00) + P(11) = {correlated:.3f}")


if __name__ == "__main__":
    main()
