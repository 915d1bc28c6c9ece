"""A barrier users can put in Cirq circuits: nothing is moved, merged or cancelled across it.

``cirq_iqm_ext.barrier(*qubits)`` returns an operation of :class:`IQMBarrierGate`. The compiler
honours it at every optimisation level (no gate crosses it and no single-qubit run or two-qubit
block is merged through it), the serialiser sends it as the protocol's ``barrier`` instruction,
and OpenQASM ``barrier`` statements are read into it. It has no physical effect of its own: as a
unitary it is the identity (applied without building its matrix), so Cirq's simulators accept it.
"""

from __future__ import annotations

from typing import Any

import cirq
import numpy as np

from cirq_iqm_ext.errors import ModelValidationError


class IQMBarrierGate(cirq.Gate):
    """A scheduling barrier on ``num_qubits`` qubits (the protocol's ``barrier`` instruction).

    Args:
        num_qubits: How many qubits the barrier spans (at least one).

    Raises:
        cirq_iqm_ext.errors.ModelValidationError: ``num_qubits`` is not a positive integer.
    """

    def __init__(self, num_qubits: int):
        if isinstance(num_qubits, bool) or not isinstance(num_qubits, int | np.integer):
            raise ModelValidationError(
                f"A barrier needs a whole number of qubits, got {num_qubits!r}"
            )
        if num_qubits < 1:
            raise ModelValidationError(f"A barrier needs at least one qubit, got {num_qubits}")
        self._num_qubits = int(num_qubits)

    def _num_qubits_(self) -> int:
        return self._num_qubits

    def _has_unitary_(self) -> bool:
        return True

    def _apply_unitary_(self, args: cirq.ApplyUnitaryArgs) -> np.ndarray:
        return args.target_tensor  # the identity, without a 2^n x 2^n matrix

    def _decompose_(self, qubits: Any) -> list[cirq.Operation]:
        return []  # nothing to run: a barrier only constrains what the compiler may move

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IQMBarrierGate):
            return NotImplemented
        return self._num_qubits == other._num_qubits

    def __hash__(self) -> int:
        return hash((IQMBarrierGate, self._num_qubits))

    def _circuit_diagram_info_(self, args: cirq.CircuitDiagramInfoArgs) -> tuple[str, ...]:
        return ("│",) * self._num_qubits

    def _qasm_(self, args: cirq.QasmArgs, qubits: tuple[cirq.Qid, ...]) -> str:
        return "barrier " + ",".join(args.format("{0}", q) for q in qubits) + ";\n"

    def __repr__(self) -> str:
        return f"cirq_iqm_ext.IQMBarrierGate({self._num_qubits})"

    def __str__(self) -> str:
        return "barrier"

    @classmethod
    def _json_namespace_(cls) -> str:
        return "cirq_iqm_ext"

    def _json_dict_(self) -> dict[str, Any]:
        return {"num_qubits": self._num_qubits}

    @classmethod
    def _from_json_dict_(cls, num_qubits: int, **kwargs: Any) -> IQMBarrierGate:
        return cls(num_qubits)


def barrier(*qubits: cirq.Qid) -> cirq.Operation:
    """A barrier on ``qubits``: the compiler moves and merges nothing across it.

    Args:
        *qubits: The qubits it spans (at least one, no repeats).

    Returns:
        The barrier operation.

    Raises:
        cirq_iqm_ext.errors.ModelValidationError: No qubits, or a qubit given twice.
    """
    if len(set(qubits)) != len(qubits):
        raise ModelValidationError(f"A barrier lists a qubit more than once: {qubits!r}")
    return IQMBarrierGate(len(qubits)).on(*qubits)


__all__ = ["IQMBarrierGate", "barrier"]
