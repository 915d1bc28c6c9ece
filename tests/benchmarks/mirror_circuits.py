"""Mirror circuits on connected Apollo qubits: random layers, then their exact inverse.

Noiseless, a mirror circuit returns to |0…0>, so its P(all zeros) measures the noise alone; the
statistical tests, the engine agreement tests and the simulation benchmarks share this builder.
"""

from __future__ import annotations

import numpy as np

from cirq_iqm_ext.server import load_architecture
from cirq_iqm_ext.wire.models import Circuit, Instruction


def connected_qubits(n: int) -> tuple[list[str], list[tuple[str, str]]]:
    """``n`` connected Apollo qubits (breadth first from the first coupler) and their couplers."""
    edges = [tuple(e) for e in load_architecture("apollo").operations["cz"]]
    neighbours: dict[str, list[str]] = {}
    for a, b in edges:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    order = [edges[0][0]]
    position = 0
    while len(order) < n:
        order.extend(q for q in neighbours[order[position]] if q not in order)
        position += 1
    chosen = set(order[:n])
    return order[:n], [e for e in edges if set(e) <= chosen]  # type: ignore[misc]


def mirror_halves(
    n: int, layers: int, seed: int
) -> tuple[list[str], list[Instruction], list[Instruction]]:
    """The qubits, ``layers`` of random prx and a matching of cz on them, and the exact inverse."""
    qubits, couplers = connected_qubits(n)
    rng = np.random.default_rng(seed)
    forward: list[Instruction] = []
    for _ in range(layers):
        for q in qubits:
            args = {"angle_t": float(rng.random()), "phase_t": float(rng.random())}
            forward.append(Instruction("prx", (q,), args))
        used: set[str] = set()
        for e in rng.permutation(len(couplers)):
            a, b = couplers[e]
            if a not in used and b not in used:
                used |= {a, b}
                forward.append(Instruction("cz", (a, b)))
    backward = [
        Instruction("prx", i.qubits, {**i.args, "angle_t": -i.args["angle_t"]})
        if i.name == "prx"
        else i
        for i in reversed(forward)
    ]
    return qubits, forward, backward


def mirror_circuit(n: int, layers: int, seed: int) -> Circuit:
    """Random prx layers and a matching of cz, then the exact inverse: noiseless, all zeros."""
    qubits, forward, backward = mirror_halves(n, layers, seed)
    measure = Instruction("measure", tuple(qubits), {"key": "m"})
    return Circuit(f"mirror-{n}", (*forward, *backward, measure))
