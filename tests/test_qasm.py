"""Tests of OpenQASM 2 input."""

from __future__ import annotations

from pathlib import Path

import cirq
import numpy as np
import pytest

from cirq_iqm_ext.compiler.qasm import circuit_from_qasm
from cirq_iqm_ext.device.barriers import IQMBarrierGate

BELL = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
barrier q;
cx q[0],q[1];
barrier q[0], q[1];
measure q -> c;
"""


def test_text_is_parsed_and_barriers_kept():
    circuit = circuit_from_qasm(BELL)
    q0, q1 = cirq.NamedQubit("q_0"), cirq.NamedQubit("q_1")
    barriers = [op for op in circuit.all_operations() if isinstance(op.gate, IQMBarrierGate)]
    # `barrier q;` spans the whole register; both barriers stand where the program put them.
    assert [op.qubits for op in barriers] == [(q0, q1), (q0, q1)]
    assert [type(op.gate).__name__ for op in circuit.all_operations()][:4] == [
        "HPowGate",
        "IQMBarrierGate",
        "CXPowGate",
        "IQMBarrierGate",
    ]
    unitary = cirq.unitary(cirq.drop_terminal_measurements(circuit))
    expected = cirq.unitary(cirq.Circuit(cirq.H(q0), cirq.CNOT(q0, q1)))
    np.testing.assert_allclose(unitary, expected, atol=1e-8)
    keys = {str(k) for k in cirq.measurement_key_objs(circuit)}
    assert keys == {"c_0", "c_1"}


def test_path_and_str_path_are_read(tmp_path: Path):
    path = tmp_path / "bell.qasm"
    path.write_text(BELL)
    assert circuit_from_qasm(path) == circuit_from_qasm(str(path)) == circuit_from_qasm(BELL)


def test_missing_version_line_is_tolerated():
    text = BELL.replace("OPENQASM 2.0;\n", "")
    assert circuit_from_qasm(text) == circuit_from_qasm(BELL)


def test_custom_gate_definitions():
    text = """OPENQASM 2.0;
include "qelib1.inc";
gate bell a, b { h a; cx a, b; }
qreg q[2];
bell q[0], q[1];
"""
    circuit = circuit_from_qasm(text)
    assert len(circuit.all_qubits()) == 2
    assert cirq.has_unitary(circuit)


def test_invalid_program_names_the_problem():
    with pytest.raises(ValueError, match="Invalid OpenQASM 2.0 program: .*frobnicate"):
        circuit_from_qasm('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\nfrobnicate q[0];\n')


def test_missing_file_is_reported(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        circuit_from_qasm(tmp_path / "nope.qasm")


def test_barriers_in_gate_definitions_and_on_single_qubits():
    text = """OPENQASM 2.0;
include "qelib1.inc";
gate foo a, b { h a; barrier a, b; cx a, b; }
qreg q[3];
qreg r[1];
foo q[0], q[1];
barrier q[2];
barrier q, r;
"""
    circuit = circuit_from_qasm(text)
    top = [op for op in circuit.all_operations() if isinstance(op.gate, IQMBarrierGate)]
    assert [len(op.qubits) for op in top] == [1, 4]
    inner = next(iter(circuit.all_operations())).untagged
    assert isinstance(inner, cirq.CircuitOperation)
    assert any(isinstance(op.gate, IQMBarrierGate) for op in inner.circuit.all_operations())
