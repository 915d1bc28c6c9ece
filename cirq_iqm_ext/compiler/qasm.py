"""OpenQASM 2 input: read a QASM program (text or file) into a ``cirq.Circuit``.

A thin wrapper around ``cirq.contrib.qasm_import`` that adds what that parser does not accept:
``barrier`` statements become :func:`cirq_iqm_ext.barrier` operations (which the compiler honours
at every optimisation level), ``opaque`` declarations are dropped. It also explains how to install
the parser's optional dependency ``ply`` when it is missing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import cirq

from cirq_iqm_ext.device.barriers import IQMBarrierGate

# `barrier a, b;` and `barrier q;` statements, unknown to Cirq's parser.
_BARRIER = re.compile(r"(^|[;{])(\s*)barrier\b([^;]*);", re.MULTILINE)
_QREG = re.compile(r"\bqreg\s+([A-Za-z_][A-Za-z0-9_]*)\s*\[\s*(\d+)\s*\]\s*;")
_HEADER = re.compile(r"^\s*(OPENQASM\b[^;]*;|include\b[^;]*;)", re.MULTILINE)
# Barriers are read through a stand-in gate per width whose formal qubits carry this prefix, so
# the sub-circuit Cirq builds for them can be told apart from every user-defined gate.
_MARKER = "iqmbarrierqubit"
# `opaque` declarations cannot be simulated or compiled; dropping them keeps the rest readable.
_OPAQUE = re.compile(r"^\s*opaque\b[^;]*;", re.MULTILINE)


def _looks_like_qasm(text: str) -> bool:
    return "OPENQASM" in text or ";" in text


def circuit_from_qasm(text_or_path: str | os.PathLike[str]) -> cirq.Circuit:
    """Parses an OpenQASM 2.0 program into a ``cirq.Circuit``.

    ``barrier`` statements become :func:`cirq_iqm_ext.barrier` operations. Qubits are named as
    Cirq's importer names them: ``cirq.NamedQubit("q_0")`` for ``q[0]``; classical registers become
    measurement keys such as ``"c_0"``.

    Args:
        text_or_path: The program text, or the path of a ``.qasm`` file.

    Returns:
        The circuit.

    Raises:
        ImportError: ``ply``, which Cirq's QASM parser needs, is not installed.
        FileNotFoundError: A path was given and the file does not exist.
        ValueError: The program is not valid OpenQASM 2.0 (the message names the line).
    """
    if isinstance(text_or_path, os.PathLike) or not _looks_like_qasm(str(text_or_path)):
        text = Path(text_or_path).read_text(encoding="utf-8")
    else:
        text = str(text_or_path)
    try:
        from cirq.contrib.qasm_import import QasmException
        from cirq.contrib.qasm_import import circuit_from_qasm as _cirq_circuit_from_qasm
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Reading OpenQASM needs the package 'ply' (used by cirq.contrib.qasm_import); "
            "install it with: pip install ply"
        ) from exc
    text = _with_barrier_gates(_OPAQUE.sub("", text))
    if "OPENQASM" not in text and "qreg" in text:
        # Some published programs omit the version line; Cirq's parser insists on it.
        text = "OPENQASM 2.0;\n" + text
    try:
        circuit = _cirq_circuit_from_qasm(text)
    except QasmException as exc:
        raise ValueError(f"Invalid OpenQASM 2.0 program: {exc.message}") from exc
    return cirq.map_operations(circuit, lambda op, _: _barrier_of(op), deep=True).unfreeze(
        copy=False
    )


def _with_barrier_gates(text: str) -> str:
    """``text`` with each ``barrier`` written as a call of a stand-in gate of its width.

    Registers in a barrier are expanded to their qubits (a QASM gate applied to a register would
    be applied to each qubit separately). The stand-in gates are declared after the header.
    """
    sizes = {name: int(size) for name, size in _QREG.findall(text)}
    widths: set[int] = set()

    def call(match: re.Match[str]) -> str:
        qubits: list[str] = []
        for arg in (a.strip() for a in match.group(3).split(",")):
            if not arg:
                continue
            if arg in sizes:
                qubits.extend(f"{arg}[{i}]" for i in range(sizes[arg]))
            else:  # one qubit, or a formal qubit inside a gate definition
                qubits.append(arg)
        qubits = list(dict.fromkeys(q.replace(" ", "") for q in qubits))
        if not qubits:
            return match.group(0)
        widths.add(len(qubits))
        return f"{match.group(1)}{match.group(2)}{_MARKER}gate{len(qubits)} {','.join(qubits)};"

    body = _BARRIER.sub(call, text)
    if not widths:
        return body
    declarations = "".join(
        f"\ngate {_MARKER}gate{n} {','.join(f'{_MARKER}{i}' for i in range(n))} "
        f"{{ {' '.join(f'id {_MARKER}{i};' for i in range(n))} }}"
        for n in sorted(widths)
    )
    headers = list(_HEADER.finditer(body))
    at = headers[-1].end() if headers else 0
    return body[:at] + declarations + "\n" + body[at:]


def _barrier_of(op: cirq.Operation) -> cirq.Operation:
    """A stand-in barrier sub-circuit as a barrier operation; anything else as it is."""
    untagged = op.untagged
    if isinstance(untagged, cirq.CircuitOperation):
        inner = untagged.circuit.all_qubits()
        if inner and all(
            isinstance(q, cirq.NamedQubit) and q.name.startswith(_MARKER) for q in inner
        ):
            return IQMBarrierGate(len(op.qubits)).on(*op.qubits)
    return op
