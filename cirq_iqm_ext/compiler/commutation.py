"""Which items commute, per qubit: the router may run commuting gates in any order.

Each item gets one *class* per qubit it acts on: :data:`Z` when it is block diagonal in that
qubit's computational basis (it commutes with Z there: CZ, controlled phases, ZZ phases, Rz, a
CNOT's control), :data:`X` when it commutes with X there (a CNOT's target, Rx), and
:data:`GENERAL` otherwise. Two gates whose classes agree (and are not general) on every qubit
they share commute exactly: on each shared qubit both split over the same pair of projectors,
and what is left of them acts on disjoint qubits. :meth:`.routing.Skeleton.build` builds the
dependency DAG from these classes, so the routed order is a reordering of commuting gates only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cirq_iqm_ext.compiler.synthesis import Item, item_qubits

#: The item's action on a qubit does not commute with Z or X (or is not a unitary at all).
GENERAL = 0
#: Block diagonal in the qubit's computational basis.
Z = 1
#: Commutes with X on the qubit.
X = 2

#: Entries this small count as zero (far below synthesis's tolerance, so no error is added).
ATOL = 1e-10

_FLIP_FIRST = np.array([2, 3, 0, 1])
_FLIP_SECOND = np.array([1, 0, 3, 2])
_BIT_FIRST = np.array([0, 0, 1, 1])
_BIT_SECOND = np.array([0, 1, 0, 1])


def _class_on(m: np.ndarray, bit: np.ndarray, flip: np.ndarray) -> int:
    """The class of ``m`` on the qubit whose basis bit is ``bit`` and X permutation ``flip``."""
    off = bit[:, None] != bit[None, :]
    if np.all(np.abs(m[off]) <= ATOL):
        return Z
    if np.allclose(m[np.ix_(flip, flip)], m, rtol=0.0, atol=ATOL):
        return X
    return GENERAL


def two_qubit_classes(m: np.ndarray) -> tuple[int, int]:
    """The classes of a 4x4 unitary on its first and second qubit."""
    return (_class_on(m, _BIT_FIRST, _FLIP_FIRST), _class_on(m, _BIT_SECOND, _FLIP_SECOND))


def one_qubit_class(m: np.ndarray) -> int:
    """The class of a 2x2 unitary."""
    if abs(m[0, 1]) <= ATOL and abs(m[1, 0]) <= ATOL:
        return Z
    if abs(m[0, 0] - m[1, 1]) <= ATOL and abs(m[0, 1] - m[1, 0]) <= ATOL:
        return X
    return GENERAL


def item_classes(items: Sequence[Item]) -> list[tuple[int, ...]]:
    """The class of each item on each of its qubits (in :func:`.synthesis.item_qubits` order).

    Only numeric unitaries ("u1", "u2") get a class other than :data:`GENERAL`: symbolic gates,
    measurements, resets, waits, barriers and classically controlled pulses keep their order.
    """
    cache: dict[int, tuple[int, ...]] = {}
    out: list[tuple[int, ...]] = []
    for it in items:
        kind = it[0]
        if kind == "u2":
            if it[4] == "cz":
                out.append((Z, Z))
                continue
            m = it[3]
            cls = cache.get(id(m))
            if cls is None:
                cls = cache[id(m)] = two_qubit_classes(m)
            out.append(cls)
        elif kind == "u1":
            out.append((one_qubit_class(it[2]),))
        else:
            out.append((GENERAL,) * len(item_qubits(it)))
    return out
