"""Hub-aware starting layouts: for a circuit where one qubit talks to many (Deutsch-Jozsa,
Bernstein-Vazirani, a controlled oracle), put the hub on a well-connected qubit with its partners
around it, in the order it meets them.

A hub of degree ``k`` on a lattice of degree at most 4 cannot have all partners adjacent at once,
so it has to *walk*: after its last gate at one position it swaps with the partner it has just
met, which merges into that gate's two-qubit block almost for free (about one CZ a hop instead of
three for a SWAP elsewhere). The layout plans that walk: at each hub position the next partners
take its free neighbours, and the last of them sits on the neighbour with the most free onward
qubits, where the hub goes next. The router (:mod:`.routing`) then finds those merged SWAPs by
itself; SABRE refinement would scramble the plan, so these layouts are routed as they are.
"""

from __future__ import annotations

from cirq_iqm_ext.compiler.routing import Coupling, Skeleton

#: A qubit counts as a hub when it interacts with at least this many others.
MIN_HUB_DEGREE = 3
#: Hub starting positions tried (the best-connected, most central qubits first).
HUB_STARTS = 3


def hub_and_partners(skeleton: Skeleton) -> tuple[int, list[int]] | None:
    """The logical qubit with the most distinct partners, and those partners in first-use order.

    Returns:
        ``None`` unless that qubit has at least ``MIN_HUB_DEGREE`` partners.
    """
    partners: list[list[int]] = [[] for _ in range(skeleton.n_logical)]
    for qs, two in zip(skeleton.gates, skeleton.two_qubit, strict=True):
        if two:
            a, b = qs
            if b not in partners[a]:
                partners[a].append(b)
                partners[b].append(a)
    if not partners:
        return None
    hub = max(range(skeleton.n_logical), key=lambda q: (len(partners[q]), -q))
    if len(partners[hub]) < MIN_HUB_DEGREE:
        return None
    return hub, partners[hub]


def hub_starts(coupling: Coupling, count: int = HUB_STARTS) -> list[int]:
    """Physical qubits to start the hub on: highest degree first, then most central."""
    return sorted(
        range(coupling.n), key=lambda p: (-len(coupling.adj[p]), sum(coupling.dist[p]), p)
    )[:count]


def hub_walk(
    hub: int, partners: list[int], n_logical: int, coupling: Coupling, start: int
) -> list[int]:
    """A partial layout (``-1`` where unplaced) with ``hub`` on ``start`` and its partners along
    a planned walk (see the module docstring). Partners the walk cannot reach stay unplaced."""
    adj = coupling.adj
    layout = [-1] * n_logical
    used = [False] * coupling.n
    layout[hub], used[start] = start, True
    pos, i = start, 0
    while i < len(partners):
        free = [v for v in adj[pos] if not used[v]]
        if not free:
            break
        if len(partners) - i <= len(free):
            nxt = -1
        else:
            # Onward room of each candidate: free neighbours not also next to the hub now.
            def room(v: int, near: list[int] = free) -> tuple[int, int]:
                return (sum(1 for w in adj[v] if not used[w] and w not in near), -v)

            nxt = max(free, key=room)
        for v in [w for w in free if w != nxt] + ([nxt] if nxt >= 0 else []):
            if i >= len(partners):
                break
            layout[partners[i]] = v
            used[v] = True
            i += 1
        if nxt < 0:
            break
        pos = nxt
    return layout
