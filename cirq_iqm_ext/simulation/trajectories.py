"""Independent Monte-Carlo trajectories of one noisy block, many at once, one shot each.

Every shot of a noisy block too large for a density matrix follows its own trajectory: its own
Pauli errors after each gate, its own dephasing flips and relaxation jumps in each moment, and one
outcome drawn from its own final state. Shots are therefore independent and identically
distributed, as on hardware. To make that affordable, ``batch`` trajectories are evolved together
as one ``(batch, 2**n)`` ``complex64`` array: every gate is one numpy pass over the whole batch,
and only the random events (a Pauli error, a flip, a jump) touch the rows they happen in.

The physics is the one of the single-trajectory engine in :mod:`.simulator` (itself checked
against Cirq's density-matrix simulator running :class:`~cirq_iqm_ext.IQMNoiseModel`):
depolarising remainder after each gate as a uniformly random non-identity Pauli string,
per-moment dephasing as Z flips, amplitude damping as the quantum-jump unravelling (a trajectory
jumps when its norm falls below its uniform threshold; the jumping qubit is drawn by weight).
Global phases of single rows (``Y = i·X·Z``) are dropped: they change no probability.

Ops and relaxation tables are read by attribute (``kind``, ``qubits``, ``matrix``,
``depolarizing``; ``gamma``, ``p_z``), so this module imports nothing from the simulator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cirq_iqm_ext.simulation.noise import PAULIS

#: Pending single-qubit gates on up to this many neighbouring qubits are applied as one product.
GROUP = 4
#: Bytes of working memory per batch (state, spare buffer, diagonal, cumulative probabilities).
BATCH_BYTES = 16 * 2**20
#: Bytes per amplitude the batch needs in all (complex64 state and spare, float32 diagonal,
#: float64 cumulative probabilities at the end).
_BYTES_PER_AMPLITUDE = 8 + 8 + 4 + 8

#: Above this many leading index blocks a grouped product is many tiny ones: go qubit by qubit.
_MOST_STACKS = 16


def batch_size(n: int, shots: int) -> int:
    """How many trajectories of an ``n``-qubit block fit in :data:`BATCH_BYTES` (at least 1)."""
    return max(1, min(shots, BATCH_BYTES // (_BYTES_PER_AMPLITUDE * 2**n)))


def sample_trajectories(
    n: int,
    moments: Sequence[Sequence[Any]],
    index: Mapping[str, int],
    noise: Any,
    shots: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """One independent trajectory per shot; returns each shot's outcome (big-endian index)."""
    out = np.empty(shots, dtype=np.int64)
    size = batch_size(n, shots)
    for start in range(0, shots, size):
        count = min(size, shots - start)
        out[start : start + count] = TrajectoryBatch(n, count, rng).run(moments, index, noise)
    return out


class TrajectoryBatch:
    """``batch`` trajectories of an ``n``-qubit block as one ``(2**n, batch)`` state.

    Qubit 0 is the top bit of a trajectory's index. The batch is the innermost axis, so a gate on
    qubit ``k`` is one product over ``psi.reshape(2**k, 2, -1)`` whose last axis is long (at least
    ``batch``): a few large matrix products instead of many small ones.
    """

    def __init__(self, n: int, batch: int, rng: np.random.Generator):
        self.n, self.batch, self.rng = n, batch, rng
        self.psi = np.zeros(2**n * batch, dtype=np.complex64)
        self.psi[:batch] = 1
        self.pending: list[np.ndarray | None] = [None] * n
        self._spare: np.ndarray | None = None
        self.threshold = rng.random(batch)

    def run(
        self, moments: Sequence[Sequence[Any]], index: Mapping[str, int], noise: Any
    ) -> np.ndarray:
        """Evolves every trajectory through the moments; returns one outcome drawn from each."""
        for m, moment in enumerate(moments):
            for op in moment:
                ks = [index[q] for q in op.qubits]
                self._gate(op, ks)
                if op.depolarizing > 0:
                    self._depolarize(op.depolarizing, ks)
            self._relax(noise.gamma[m], noise.p_z[m])
        self._flush_all()
        return self._draw()

    def _columns(self, k: int) -> np.ndarray:
        """The state as (above ``k``, bit ``k``, below ``k``, trajectory)."""
        return self.psi.reshape(2**k, 2, 2 ** (self.n - k - 1), self.batch)

    # Gates ----------------------------------------------------------------------------------

    def _gate(self, op: Any, ks: list[int]) -> None:
        if op.kind in ("u", "cc"):
            current = self.pending[ks[0]]
            self.pending[ks[0]] = op.matrix if current is None else op.matrix @ current
            return
        self._flush(ks[0])
        self._flush(ks[1])
        if op.kind == "cz":
            a, b = min(ks), max(ks)
            view = self.psi.reshape(2**a, 2, 2 ** (b - a - 1), 2, -1)
            view[:, 1, :, 1, :] *= -1
        else:
            self._two_qubit(ks[0], ks[1], op.matrix)

    def _two_qubit(self, a: int, b: int, matrix: np.ndarray) -> None:
        """A 4x4 unitary on qubits ``a`` (high bit) and ``b`` (low bit) of every trajectory."""
        tensor = np.moveaxis(self.psi.reshape((2,) * self.n + (self.batch,)), (a, b), (0, 1))
        shape = tensor.shape
        out = (matrix.astype(np.complex64) @ tensor.reshape(4, -1)).reshape(shape)
        self.psi = np.ascontiguousarray(np.moveaxis(out, (0, 1), (a, b))).reshape(-1)

    def _flush_all(self) -> None:
        for k in range(self.n):
            self._flush(k)

    def _flush(self, k: int) -> None:
        """Applies the pending gates of ``k``'s group of neighbours as one small product (or
        qubit by qubit low in the state, where a grouped product would be many tiny ones)."""
        if self.pending[k] is None:
            return
        low = k - k % GROUP
        high = min(low + GROUP, self.n)
        busy = [j for j in range(low, high) if self.pending[j] is not None]
        first, last = busy[0], busy[-1]
        if len(busy) == 1 or 2**first > _MOST_STACKS:
            for j in busy:
                self._product(j, 1, self.pending[j])  # type: ignore[arg-type]
                self.pending[j] = None
            return
        matrix: np.ndarray = np.array([[1.0]], dtype=np.complex128)
        for j in range(first, last + 1):
            u = self.pending[j]
            self.pending[j] = None
            matrix = np.kron(matrix, PAULIS[0] if u is None else u)
        self._product(first, last - first + 1, matrix)

    def _product(self, first: int, width: int, matrix: np.ndarray) -> None:
        """``matrix`` on qubits ``first .. first + width - 1`` of every trajectory."""
        if self._spare is None:
            self._spare = np.empty_like(self.psi)
        view = self.psi.reshape(2**first, 2**width, -1)
        np.matmul(matrix.astype(np.complex64), view, out=self._spare.reshape(view.shape))
        self.psi, self._spare = self._spare, self.psi

    # Noise ----------------------------------------------------------------------------------

    def _depolarize(self, p: float, ks: list[int]) -> None:
        """A uniformly random non-identity Pauli string on ``ks`` in each trajectory hit (with
        probability ``p``)."""
        hit = np.flatnonzero(self.rng.random(self.batch) < p)
        if not len(hit):
            return
        choice = self.rng.integers(1, 4 ** len(ks), size=len(hit))
        for k in ks:
            pauli = choice % 4
            choice //= 4
            for kind in (1, 2, 3):
                self._after_pending(k, hit[pauli == kind], PAULIS[kind])

    def _after_pending(self, k: int, rows: np.ndarray, matrix: np.ndarray) -> None:
        """Applies ``matrix`` to qubit ``k`` of trajectories ``rows`` after ``k``'s pending
        gates, without flushing them for the whole batch: ``P·U = U·(U†·P·U)``."""
        if not len(rows):
            return
        pending = self.pending[k]
        if pending is not None:
            matrix = pending.conj().T @ matrix @ pending
        view = self._columns(k)
        view[..., rows] = np.einsum("ij,ajrs->airs", matrix.astype(np.complex64), view[..., rows])

    def _relax(self, gamma: np.ndarray, p_z: np.ndarray) -> None:
        """One moment's dephasing flips and amplitude damping, drawn per trajectory."""
        if not gamma.any() and not p_z.any():
            return
        flips = self.rng.random((self.batch, self.n)) < p_z
        if not gamma.any():
            for flipped in np.flatnonzero(flips.any(axis=0)):
                rows = np.flatnonzero(flips[:, flipped])
                self._after_pending(int(flipped), rows, PAULIS[3])
            return
        # K0 = diag(1, sqrt(1-γ)) on every qubit and the Z flips: one diagonal per trajectory.
        self._flush_all()
        factors = (np.sqrt(1 - gamma) * np.where(flips, -1.0, 1.0)).astype(np.float32)
        diagonal = np.ones((1, self.batch), dtype=np.float32)
        ones = np.ones(self.batch, dtype=np.float32)
        for k in range(self.n):
            pair = np.stack([ones, factors[:, k]])
            diagonal = (diagonal[:, None, :] * pair[None, :, :]).reshape(-1, self.batch)
        state = self.psi.reshape(2**self.n, self.batch)
        state *= diagonal
        floats = self.psi.view(np.float32).reshape(2**self.n, self.batch, 2)
        norm2 = np.einsum("ijk,ijk->j", floats, floats)
        for row in np.flatnonzero(norm2 < self.threshold):
            self._jump(int(row), gamma)
            self.threshold[row] = self.rng.random()

    def _jump(self, row: int, gamma: np.ndarray) -> None:
        """A relaxation jump of one trajectory: the decaying qubit drawn by its jump weight."""
        weights = np.zeros(self.n)
        for damped in np.flatnonzero(gamma):
            excited = self._columns(int(damped))[:, 1, :, row]
            weights[damped] = (
                gamma[damped] / (1 - gamma[damped]) * float(np.vdot(excited, excited).real)
            )
        if weights.sum() > 0:
            k = int(self.rng.choice(self.n, p=weights / weights.sum()))
            view = self._columns(k)
            view[:, 0, :, row] = view[:, 1, :, row]
            view[:, 1, :, row] = 0
        column = self.psi.reshape(2**self.n, self.batch)[:, row]
        column /= np.sqrt(np.vdot(column, column).real)

    # Outcomes -------------------------------------------------------------------------------

    def _draw(self) -> np.ndarray:
        """One basis state per trajectory from its own probabilities."""
        amplitudes = self.psi.reshape(2**self.n, self.batch)
        cumulative = np.cumsum(np.abs(amplitudes).astype(np.float64) ** 2, axis=0)
        draws = self.rng.random(self.batch) * cumulative[-1]  # scaling absorbs the norm
        outcomes = (cumulative <= draws[None, :]).sum(axis=0)
        return np.minimum(outcomes, 2**self.n - 1).astype(np.int64)
