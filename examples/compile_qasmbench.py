"""Validate and compile a QASMBench circuit for an IQM device, then run the compiled circuit.

1. Read an OpenQASM 2 program from QASMBench (``../shared/benchmarks/qasmbench/`` next to this
   repository; a small embedded program when that folder is absent).
2. Validate it against the device: it uses logical qubits and non-native gates, so the device
   explains what is wrong.
3. Compile it with :func:`cirq_iqm_ext.transpile` (decompose, place, route, resynthesise) and show
   what changed; the compiled circuit validates.
4. Run the compiled circuit as it is (``compile=False``) and print the most frequent outcomes.

    python examples/compile_qasmbench.py [--circuit adder_n4.qasm]

Runs against the embedded server (Apollo, 20 qubits) by default, or ``IQM_SERVER_URL``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import cirq

from cirq_iqm_ext import DeviceValidationError, IQMSampler, circuit_from_qasm, transpile
from cirq_iqm_ext.server import EmbeddedServer
from cirq_iqm_ext.ui.display import combined_counts

QASMBENCH = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "qasmbench"

# A 3-qubit GHZ program, used when QASMBench is not next to the repository.
FALLBACK = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[3];
creg c[3];
h q[0];
cx q[0],q[1];
cx q[1],q[2];
measure q -> c;
"""


def server_url(stack: ExitStack, architecture: str = "apollo") -> str:
    """``IQM_SERVER_URL``, or a fresh embedded server that ``stack`` stops at the end."""
    url = os.environ.get("IQM_SERVER_URL")
    if url:
        return url
    server = stack.enter_context(EmbeddedServer(architecture, seed=11))
    print(f"Started the embedded IQM-compatible server at {server.url}")
    return server.url


def load(name: str) -> tuple[str, cirq.Circuit]:
    """The QASMBench program ``name``, or the embedded GHZ program when QASMBench is absent."""
    path = QASMBENCH / name
    if path.is_file():
        return path.name, circuit_from_qasm(path)
    print(f"({path} not found; using an embedded GHZ program)")
    return "ghz_n3 (embedded)", circuit_from_qasm(FALLBACK)


def two_qubit_gates(circuit: cirq.AbstractCircuit) -> int:
    """Number of operations acting on two or more qubits."""
    return sum(1 for op in circuit.all_operations() if len(op.qubits) >= 2)


def main(argv: Sequence[str] | None = None) -> None:
    """Validates, compiles and runs one QASMBench circuit."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--circuit", default="adder_n4.qasm", help="QASMBench file name")
    parser.add_argument("--shots", type=int, default=1000)
    args = parser.parse_args(argv)

    name, circuit = load(args.circuit)
    print(
        f"{name}: {len(circuit.all_qubits())} qubits, {len(list(circuit.all_operations()))} "
        f"operations, {two_qubit_gates(circuit)} multi-qubit gates, depth {len(circuit)}"
    )
    with ExitStack() as stack:
        sampler = stack.enter_context(
            IQMSampler(server_url(stack), compile=False, progress=False, seed=1)
        )
        device = sampler.device

        # Validation names every problem (at most a few are shown here).
        try:
            device.validate_circuit(circuit)
        except DeviceValidationError as error:
            print(f"Not runnable on {device.name} as written ({len(error.violations)} problems):")
            for violation in error.violations[:3]:
                print(f"  {violation}")

        compiled = transpile(circuit, device)
        device.validate_circuit(compiled.circuit)  # raises if the compiler got it wrong
        native = compiled.circuit
        print(
            f"Compiled for {device.name}: {len(list(native.all_operations()))} native operations, "
            f"{two_qubit_gates(native)} cz, depth {len(native)}"
        )
        placement = ", ".join(f"{q}→{p}" for q, p in sorted(compiled.initial_mapping.items()))
        print(f"  placement: {placement}")
        if compiled.final_mapping != compiled.initial_mapping:
            print("  routing moved qubits; measurements report them where they end up")

        # The compiled circuit is native, so it goes to the server as it is.
        result = sampler.run(native, repetitions=args.shots)
        keys = sorted(result.measurements, key=lambda k: (len(k), k))
        tally = combined_counts(result, keys)
        print(f"Job {result.job_id}: most frequent outcomes ({' '.join(keys)}):")
        for bits, count in tally.most_common(4):
            print(f"  {bits}  {count:5d}")


if __name__ == "__main__":
    main()
