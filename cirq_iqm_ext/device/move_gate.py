"""IQM's ``move`` gate: a qubit's state carried into and out of a computational resonator.

Star chips (IQM Deneb, STAR_MOVE.md) have no qubit-qubit couplers; ``move(qubit, resonator)`` is
the native operation that parks a qubit's state in the resonator. The gate lives with the device
because the device validates it, the serialiser sends it and the simulator runs it; the pass that
inserts MOVEs is the compiler's (:mod:`cirq_iqm_ext.compiler.star`).
"""

from __future__ import annotations

from typing import Any

import cirq
import numpy as np


def move_unitary(alpha: float = 0.0, beta: float = 0.0) -> np.ndarray:
    """The 4x4 matrix of ``move(q, r)`` with MOVE phase ``a = exp(i alpha)``, basis ``|q r>``.

    ``|00> -> |00>``, ``|10> -> a|01>``, ``|01> -> a^-1|10>``; the action on ``|11>`` is undefined
    on hardware and modelled here as the phase ``exp(i beta)``. ``alpha = beta = 0`` is a SWAP.
    """
    a = np.exp(1j * alpha)
    matrix = np.zeros((4, 4), dtype=complex)
    matrix[0, 0] = 1
    matrix[1, 2] = a
    matrix[2, 1] = np.conj(a)
    matrix[3, 3] = np.exp(1j * beta)
    return matrix


@cirq.value_equality
class IQMMoveGate(cirq.Gate):
    """IQM's ``move``: carries a qubit's state into an empty computational resonator, or back.

    Acts on ``(qubit, resonator)``, in that order. Defined only on span{|00>, |01>, |10>} and with
    an unknown phase that cancels within a MOVE sandwich (two MOVEs on the same pair with nothing on
    the qubit in between); its unitary here is the ideal MOVE with phase 1, a SWAP, which is what
    any valid sandwich computes whatever the phase (see :func:`move_unitary` for other phases).
    """

    def _num_qubits_(self) -> int:
        return 2

    def _unitary_(self) -> np.ndarray:
        return move_unitary()

    def _value_equality_values_(self) -> tuple[()]:
        return ()

    def _circuit_diagram_info_(self, args: cirq.CircuitDiagramInfoArgs) -> tuple[str, str]:
        return ("MOVE", "MOVE(res)")

    def __repr__(self) -> str:
        return "cirq_iqm_ext.IQMMoveGate()"

    def __str__(self) -> str:
        return "MOVE"

    @classmethod
    def _json_namespace_(cls) -> str:
        return "cirq_iqm_ext"

    def _json_dict_(self) -> dict[str, Any]:
        return {}

    @classmethod
    def _from_json_dict_(cls, **kwargs: Any) -> IQMMoveGate:
        return cls()


#: The MOVE gate (it has no parameters).
MOVE = IQMMoveGate()


__all__ = ["MOVE", "IQMMoveGate", "move_unitary"]
