"""OpenQASM 2 input: read a QASM program (text or file) into a ``cirq.Circuit``.

A thin wrapper around ``cirq.contrib.qasm_import`` that smooths over what that parser does not
accept
(``barrier`` statements, which have no physical effect and are dropped) and explains how to install
its optional dependency ``ply`` when it is missing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import cirq

# `barrier a, b;` and `barrier q;` statements: scheduling hints only, unknown to Cirq's parser.
_BARRIER = re.compile(r"^\s*barrier\b[^;]*;", re.MULTILINE)
# `opaque` declarations cannot be simulated or compiled; dropping them keeps the rest readable.
_OPAQUE = re.compile(r"^\s*opaque\b[^;]*;", re.MULTILINE)


def _looks_like_qasm(text: str) -> bool:
    return "OPENQASM" in text or ";" in text


def circuit_from_qasm(text_or_path: str | os.PathLike[str]) -> cirq.Circuit:
    """Parses an OpenQASM 2.0 program into a ``cirq.Circuit``.

    ``barrier`` statements are dropped (they only constrain scheduling). Qubits are named as Cirq's
    importer names them: ``cirq.NamedQubit("q_0")`` for ``q[0]``; classical registers become
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
    text = _OPAQUE.sub("", _BARRIER.sub("", text))
    if "OPENQASM" not in text and "qreg" in text:
        # Some published programs omit the version line; Cirq's parser insists on it.
        text = "OPENQASM 2.0;\n" + text
    try:
        return _cirq_circuit_from_qasm(text)
    except QasmException as exc:
        raise ValueError(f"Invalid OpenQASM 2.0 program: {exc.message}") from exc
