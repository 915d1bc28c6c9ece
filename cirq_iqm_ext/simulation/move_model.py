"""How the server's simulator runs ``move``: population exchange with an unknown, per-locus phase.

On hardware ``move(q, r)`` maps |10> -> a|01> and |01> -> a^-1|10> (basis |q r>) with a phase a that
depends on the locus and the calibration, and is undefined on |11> (STAR_MOVE.md §2). A valid MOVE
sandwich cancels a; a circuit that validation rejects (or that only passes under ``allow_prx`` /
``none``) can see it. Simulating with a fixed, non-trivial phase per locus instead of a SWAP makes
the server as unforgiving as the hardware: results do not depend on the phase exactly when the
circuit is valid under ``strict``.

Phases are derived from the calibration set id and the locus, so a job gives the same results on
every run and on every server process. The module is pure numpy; the simulator calls
:func:`apply_move` on its state vector (or uses :func:`move_matrix` as a 4x4 unitary).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from uuid import UUID

import numpy as np


def move_phases(
    calibration_set_id: UUID | str | None, qubit: str, resonator: str
) -> tuple[float, float]:
    """The (alpha, beta) of ``move(qubit, resonator)`` in a calibration set: a = exp(i alpha) and
    exp(i beta) on the undefined |11>. Deterministic, uniform in [0, 2 pi)."""
    text = f"{calibration_set_id}|{qubit}|{resonator}".encode()
    digest = hashlib.sha256(text).digest()
    alpha = int.from_bytes(digest[:8], "big") / 2**64 * 2 * np.pi
    beta = int.from_bytes(digest[8:16], "big") / 2**64 * 2 * np.pi
    return alpha, beta


def move_matrix(alpha: float, beta: float = 0.0) -> np.ndarray:
    """The 4x4 unitary of ``move`` in the basis |q r> (|00>, |01>, |10>, |11>)."""
    a = np.exp(1j * alpha)
    matrix = np.zeros((4, 4), dtype=np.complex128)
    matrix[0, 0] = 1.0
    matrix[1, 2] = a
    matrix[2, 1] = np.conj(a)
    matrix[3, 3] = np.exp(1j * beta)
    return matrix


def apply_move(
    state: np.ndarray, n_qubits: int, qubit: int, resonator: int, alpha: float, beta: float = 0.0
) -> np.ndarray:
    """Applies ``move`` to a state vector over ``n_qubits`` (axis k = qubit k, big-endian).

    Args:
        state: The state vector (length 2**n_qubits); not modified.
        n_qubits: Number of qubits (resonators included).
        qubit: Axis of the qubit.
        resonator: Axis of the resonator.
        alpha: MOVE phase, a = exp(i alpha).
        beta: Phase given to |11> (undefined on hardware).

    Returns:
        The new state vector.
    """
    tensor = state.reshape((2,) * n_qubits)
    out = tensor.copy()

    def at(q_bit: int, r_bit: int) -> tuple[slice | int, ...]:
        index: list[slice | int] = [slice(None)] * n_qubits
        index[qubit] = q_bit
        index[resonator] = r_bit
        return tuple(index)

    a = np.exp(1j * alpha)
    out[at(0, 1)] = a * tensor[at(1, 0)]
    out[at(1, 0)] = np.conj(a) * tensor[at(0, 1)]
    out[at(1, 1)] = np.exp(1j * beta) * tensor[at(1, 1)]
    return out.reshape(-1)


class MovePhaseModel:
    """The MOVE phases of one calibration set, per ``(qubit, resonator)`` locus.

    Args:
        calibration_set_id: The calibration set (phases change with it, as on hardware).
        loci: The calibrated ``move`` loci, to precompute; others are computed on demand.
    """

    def __init__(self, calibration_set_id: UUID | str | None, loci: Iterable[tuple[str, str]] = ()):
        self.calibration_set_id = calibration_set_id
        self._phases: dict[tuple[str, str], tuple[float, float]] = {}
        for qubit, resonator in loci:
            self.phases(qubit, resonator)

    def phases(self, qubit: str, resonator: str) -> tuple[float, float]:
        """(alpha, beta) of the locus."""
        key = (qubit, resonator)
        found = self._phases.get(key)
        if found is None:
            found = self._phases[key] = move_phases(self.calibration_set_id, qubit, resonator)
        return found

    def matrix(self, qubit: str, resonator: str) -> np.ndarray:
        """The 4x4 unitary of ``move(qubit, resonator)`` (basis |q r>)."""
        return move_matrix(*self.phases(qubit, resonator))

    def apply(
        self, state: np.ndarray, n_qubits: int, qubit: str, resonator: str, axes: tuple[int, int]
    ) -> np.ndarray:
        """:func:`apply_move` with this locus's phases; ``axes`` = (qubit axis, resonator axis)."""
        alpha, beta = self.phases(qubit, resonator)
        return apply_move(state, n_qubits, axes[0], axes[1], alpha, beta)


__all__ = ["MovePhaseModel", "apply_move", "move_matrix", "move_phases"]
