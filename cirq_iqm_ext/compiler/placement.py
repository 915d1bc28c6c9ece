"""Initial placement: which physical qubit each logical qubit starts on.

Strategies, tried in this order:

0. **Chains.** If the circuit's interaction graph is one simple path (GHZ preparation, linear
   entanglers), a depth-first search for a device path as long (Warnsdorff's rule: fewest onward
   neighbours first) finds an exact embedding where VF2 runs out of steps; when the device has no
   path that long, the longest path found is a starting layout for the search below.
1. **Exact embedding.** If the circuit's interaction graph is a subgraph of the coupling graph,
   every two-qubit gate can run without a SWAP. VF2 (networkx) finds such an embedding; its search
   is cut off after a fixed number of steps (a step count, not a clock, so the result never depends
   on the machine's speed).
2. **SABRE layout search.** Several seeded trials, each starting from a greedy or a random compact
   layout, refined by routing the circuit forwards and backwards (the final layout of one pass
   seeds the next), then routed once more for real; the trial with the fewest SWAPs wins. A
   circuit with a hub (one qubit meeting many) also gets hub-walk layouts (:mod:`.hub`), routed
   as they are.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence

import networkx as nx
from networkx.algorithms import isomorphism

from cirq_iqm_ext.compiler.hub import hub_and_partners, hub_starts, hub_walk
from cirq_iqm_ext.compiler.routing import Coupling, Routed, Skeleton, route

#: VF2 gives up after this many feasibility checks.
VF2_STEP_LIMIT = 10_000
#: The same for near embeddings (one or two interactions left out), used as starting layouts.
NEAR_STEP_LIMIT = 3_000
#: Depth-first steps allowed when looking for a device path for a chain-shaped circuit.
PATH_STEP_LIMIT = 20_000


class StepLimitReached(Exception):
    pass


class BoundedMatcher(isomorphism.GraphMatcher):
    """``GraphMatcher`` that stops after a fixed number of feasibility checks."""

    def __init__(self, g1: nx.Graph, g2: nx.Graph, limit: int):
        super().__init__(g1, g2)
        self._steps_left = limit

    def syntactic_feasibility(self, g1_node: object, g2_node: object) -> bool:
        self._steps_left -= 1
        if self._steps_left < 0:
            raise StepLimitReached
        return bool(super().syntactic_feasibility(g1_node, g2_node))


def interaction_weights(skeleton: Skeleton) -> dict[tuple[int, int], int]:
    """Number of two-qubit gates per logical pair ``(a, b)`` with ``a < b``, in first-use order."""
    weights: dict[tuple[int, int], int] = {}
    for qs, two in zip(skeleton.gates, skeleton.two_qubit, strict=True):
        if two:
            a, b = qs
            key = (a, b) if a < b else (b, a)
            weights[key] = weights.get(key, 0) + 1
    return weights


def exact_embedding(
    skeleton: Skeleton,
    coupling: Coupling,
    *,
    drop: int = 0,
    step_limit: int | None = None,
) -> list[int] | None:
    """A layout under which every two-qubit gate acts on a coupled pair, if one is found.

    Args:
        skeleton: The circuit's gates.
        coupling: The coupling graph.
        drop: Ignore this many interactions (the least used, latest first): a *near* embedding,
            a good starting layout when no exact one exists.
        step_limit: VF2 feasibility checks allowed (default ``VF2_STEP_LIMIT``).

    Returns:
        Logical -> physical, or ``None`` when there is none or the search hit its step limit.
    """
    n = skeleton.n_logical
    if n > coupling.n:
        return None
    weights = interaction_weights(skeleton)
    if drop:
        weights = _without_least_used(weights, drop)
    if not weights:
        return list(range(n)) if not drop else None
    # Only qubits that interact need the search; idle ones take any free qubit afterwards.
    g_logical = nx.Graph()
    g_logical.add_nodes_from(_search_order(weights))
    g_logical.add_edges_from(weights)
    g_phys = nx.Graph()
    g_phys.add_nodes_from(range(coupling.n))
    g_phys.add_edges_from(coupling.edges)
    if _cannot_embed(g_logical, g_phys, coupling):
        return None
    matcher = BoundedMatcher(g_phys, g_logical, step_limit or VF2_STEP_LIMIT)
    try:
        mapping = next(matcher.subgraph_monomorphisms_iter(), None)
    except StepLimitReached:
        return None
    if mapping is None:
        return None
    layout = [-1] * n
    for phys, logical in mapping.items():
        layout[logical] = phys
    _fill_idle(layout, coupling)
    return layout


def chain_order(weights: dict[tuple[int, int], int]) -> list[int] | None:
    """The interacting qubits in chain order, if their interaction graph is one simple path."""
    adj: dict[int, list[int]] = {}
    for a, b in weights:
        adj.setdefault(a, []).append(b)
        adj.setdefault(b, []).append(a)
    if len(adj) < 2 or len(weights) != len(adj) - 1 or any(len(v) > 2 for v in adj.values()):
        return None
    start = min(q for q, v in adj.items() if len(v) == 1)
    order, previous = [start], -1
    while len(order) < len(adj):
        nxt = [v for v in adj[order[-1]] if v != previous]
        if not nxt:
            return None  # unreachable for a tree with two leaves, kept as a guard
        previous = order[-1]
        order.append(nxt[0])
    return order


def device_path(coupling: Coupling, length: int, step_limit: int = PATH_STEP_LIMIT) -> list[int]:
    """The longest simple path of physical qubits found, of at most ``length`` qubits.

    Depth-first from every qubit (fewest neighbours first: a long path likely ends there), each
    step to the free neighbour with the fewest free neighbours (Warnsdorff's rule), until a path
    of ``length`` qubits is found or ``step_limit`` extensions were tried. Among the longest paths
    found, the first that ends next to a qubit off the path is preferred, then one whose last but
    one qubit is.
    """
    best: list[int] = []
    best_rank = (False, False)
    steps = 0
    path: list[int] = []
    used = [False] * coupling.n

    def onward(v: int) -> int:
        return sum(1 for w in coupling.adj[v] if not used[w])

    def extend() -> bool:
        nonlocal best, steps, best_rank
        # Among the longest, one that ends next to a free qubit, where the chain can go on;
        # else one whose last but one qubit is: the chain's next qubit can sit there, and the
        # SWAP that reaches it merges into the chain's last gate (about 1 CZ instead of 3).
        if len(path) >= len(best):
            rank = (onward(path[-1]) > 0, len(path) > 1 and onward(path[-2]) > 0)
            if len(path) > len(best) or rank > best_rank:
                best, best_rank = list(path), rank
        if len(path) >= length:
            return True
        steps += 1
        if steps > step_limit:
            return False
        for v in sorted(
            (w for w in coupling.adj[path[-1]] if not used[w]), key=lambda w: (onward(w), w)
        ):
            path.append(v)
            used[v] = True
            if extend():
                return True
            path.pop()
            used[v] = False
            if steps > step_limit:
                return False
        return False

    for root in sorted(range(coupling.n), key=lambda q: (len(coupling.adj[q]), q)):
        path.append(root)
        used[root] = True
        if extend() or steps > step_limit:
            break
        path.pop()
        used[root] = False
    return best[:length]


def chain_layout(skeleton: Skeleton, coupling: Coupling) -> tuple[list[int], bool] | None:
    """A layout along a device path for a chain-shaped circuit, and whether it is exact.

    Returns:
        ``None`` unless the interaction graph is one simple path; else the layout (qubits the
        path is too short for sit nearest their chain predecessor) and whether every
        interaction is on a coupled pair.
    """
    order = chain_order(interaction_weights(skeleton))
    if order is None or len(order) > coupling.n:
        return None
    path = device_path(coupling, len(order))
    # When the path is too short, run it the way round that leaves the rest of the chain
    # nearest to it.
    layouts = [_along(order, p, skeleton.n_logical, coupling) for p in (path, path[::-1])]
    layout = min(layouts, key=lambda pair: pair[1])[0]
    _fill_idle(layout, coupling)
    return layout, len(path) == len(order)


def _along(
    order: list[int], path: list[int], n_logical: int, coupling: Coupling
) -> tuple[list[int], int]:
    """The chain laid along ``path``, the rest each nearest its predecessor; the distance sum."""
    layout = [-1] * n_logical
    for lq, p in zip(order, path, strict=False):
        layout[lq] = p
    used = set(path)
    cost = 0
    for i in range(len(path), len(order)):
        anchor = layout[order[i - 1]]
        free = [q for q in range(coupling.n) if q not in used]
        layout[order[i]] = min(free, key=lambda q: (coupling.dist[anchor][q], q))
        cost += coupling.dist[anchor][layout[order[i]]]
        used.add(layout[order[i]])
    return layout, cost


def _without_least_used(
    weights: dict[tuple[int, int], int], drop: int
) -> dict[tuple[int, int], int]:
    """``weights`` without its ``drop`` least used pairs; among equals the one first needed
    latest goes first (routing can fix it later)."""
    order_of_use = {pair: i for i, pair in enumerate(weights)}
    doomed = sorted(weights, key=lambda e: (weights[e], -order_of_use[e]))[:drop]
    return {e: w for e, w in weights.items() if e not in doomed}


def _search_order(weights: dict[tuple[int, int], int]) -> list[int]:
    """The interacting qubits breadth-first from the busiest one.

    VF2 extends a partial match in node insertion order: this order keeps every new node attached
    to matched ones, which prunes the search early.
    """
    g_edges = nx.Graph()
    g_edges.add_edges_from(weights)
    order: list[int] = []
    placed: set[int] = set()
    for root in sorted(g_edges.nodes, key=lambda q: (-g_edges.degree[q], q)):
        if root in placed:
            continue
        placed.add(root)
        queue = deque([root])
        while queue:
            u = queue.popleft()
            order.append(u)
            for v in sorted(g_edges.neighbors(u), key=lambda q: (-g_edges.degree[q], q)):
                if v not in placed:
                    placed.add(v)
                    queue.append(v)
    return order


def _cannot_embed(g_logical: nx.Graph, g_phys: nx.Graph, coupling: Coupling) -> bool:
    """Cheap proofs that no embedding exists: too many edges, a too high degree, or parity."""
    if g_logical.number_of_edges() > g_phys.number_of_edges():
        return True
    if max(d for _, d in g_logical.degree) > max(len(a) for a in coupling.adj):
        return True
    # Square lattices are bipartite: an odd cycle among the interactions can never embed, and a
    # connected interaction graph must fit its two colour classes into the lattice's.
    if nx.is_bipartite(g_phys):
        if not nx.is_bipartite(g_logical):
            return True
        if nx.is_connected(g_phys) and nx.is_connected(g_logical):
            lattice = sorted(len(side) for side in nx.bipartite.sets(g_phys))
            sides = sorted(len(side) for side in nx.bipartite.sets(g_logical))
            if sides[0] > lattice[0] or sides[1] > lattice[1]:
                return True
    return False


def _fill_idle(layout: list[int], coupling: Coupling) -> None:
    """Gives each unplaced logical qubit the free physical qubit nearest to the placed ones."""
    used = {p for p in layout if p >= 0}
    for lq, p in enumerate(layout):
        if p >= 0:
            continue
        free = [q for q in range(coupling.n) if q not in used]
        if used:
            best = min(free, key=lambda q: (min(coupling.dist[q][u] for u in used), q))
        else:
            best = free[0]
        layout[lq] = best
        used.add(best)


def greedy_layout(
    skeleton: Skeleton, coupling: Coupling, partial: Sequence[int] | None = None
) -> list[int]:
    """Places strongly interacting qubits close together, starting from the best-connected qubit.

    Args:
        skeleton: The circuit's gates.
        coupling: The coupling graph.
        partial: Logical -> physical already decided (``-1`` where not); kept as it is.
    """
    n = skeleton.n_logical
    weights = interaction_weights(skeleton)
    partners: list[dict[int, int]] = [{} for _ in range(n)]
    for (a, b), w in weights.items():
        partners[a][b] = w
        partners[b][a] = w
    total = [sum(p.values()) for p in partners]
    dist = coupling.dist
    # Centre of the device: highest degree, then smallest total distance.
    centre = min(range(coupling.n), key=lambda p: (-len(coupling.adj[p]), sum(dist[p]), p))
    layout = list(partial) if partial is not None else [-1] * n
    used: set[int] = {p for p in layout if p >= 0}
    order: list[int] = []
    placed: set[int] = set()
    for start in sorted(range(n), key=lambda q: (-total[q], q)):
        if start in placed:
            continue
        # Breadth first through the interaction graph, heaviest partners first.
        queue = deque([start])
        placed.add(start)
        while queue:
            q = queue.popleft()
            order.append(q)
            for r in sorted(partners[q], key=lambda r: (-partners[q][r], r)):
                if r not in placed:
                    placed.add(r)
                    queue.append(r)
    for q in order:
        if layout[q] >= 0:
            continue
        if not used:
            best = centre
        else:
            placed_partners = [(layout[r], w) for r, w in partners[q].items() if layout[r] >= 0]
            if placed_partners:

                def cost(p: int, pp: list[tuple[int, int]] = placed_partners) -> tuple[float, int]:
                    return (sum(w * dist[p][x] for x, w in pp), p)
            else:

                def cost(p: int, pp: list[tuple[int, int]] = placed_partners) -> tuple[float, int]:
                    return (min(dist[p][u] for u in used), p)

            best = min((p for p in range(coupling.n) if p not in used), key=cost)
        layout[q] = best
        used.add(best)
    return layout


def hub_layouts(skeleton: Skeleton, coupling: Coupling) -> list[list[int]]:
    """Hub-walk layouts (:mod:`.hub`) from a few starting qubits, if the circuit has a hub."""
    found = hub_and_partners(skeleton)
    if found is None:
        return []
    hub, partners = found
    layouts: list[list[int]] = []
    for start in hub_starts(coupling):
        partial = hub_walk(hub, partners, skeleton.n_logical, coupling, start)
        layout = greedy_layout(skeleton, coupling, partial)
        if layout not in layouts:
            layouts.append(layout)
    return layouts


def random_compact_layout(n_logical: int, coupling: Coupling, rng: random.Random) -> list[int]:
    """A random assignment onto a connected region around a random root."""
    root = rng.randrange(coupling.n)
    region: list[int] = [root]
    seen = {root}
    queue = deque([root])
    while queue and len(region) < n_logical:
        u = queue.popleft()
        for v in coupling.adj[u]:
            if v not in seen:
                seen.add(v)
                region.append(v)
                queue.append(v)
    region = region[:n_logical]
    rng.shuffle(region)
    return region


def best_routing(
    skeleton: Skeleton,
    coupling: Coupling,
    *,
    seed: int,
    trials: int,
    refinements: int = 2,
    fixed_layout: Sequence[int] | None = None,
) -> tuple[list[int], Routed]:
    """Tries layouts and returns the best initial layout with its routing.

    Args:
        skeleton: The circuit's gates.
        coupling: The coupling graph.
        seed: Seeds every trial, so the result is reproducible.
        trials: Number of seeded trials (at least one).
        refinements: Forward-backward round trips per trial (layout search only).
        fixed_layout: Use this initial layout (the caller's); only the routing is tried several
            times.

    Returns:
        ``(initial_layout, routed)`` of the trial with the fewest SWAPs (earliest on ties).
    """
    trials = max(1, trials)
    starts: list[list[int]] = []
    as_is = 0
    if fixed_layout is None:
        chain = chain_layout(skeleton, coupling)
        exact = chain[0] if chain and chain[1] else exact_embedding(skeleton, coupling)
        if exact is not None:
            return exact, route(skeleton, coupling, exact, random.Random(seed))
        if chain is not None:
            starts.append(chain[0])  # kept as it is: refining would undo the path
        starts += hub_layouts(skeleton, coupling)  # the same: refining would undo the walk
    as_is = len(starts)
    plain = None
    if as_is and skeleton.classes:
        plain = Skeleton.build(
            skeleton.n_logical, skeleton.gates, skeleton.two_qubit, skeleton.mergeable
        )
    backward = skeleton.reversed() if fixed_layout is None and refinements else None
    if fixed_layout is None:
        starts.append(greedy_layout(skeleton, coupling))
        for drop in (1, 2):
            near = exact_embedding(skeleton, coupling, drop=drop, step_limit=NEAR_STEP_LIMIT)
            if near is not None:
                starts.append(near)
                break
    best: tuple[list[int], Routed] | None = None
    for trial in range(max(trials, len(starts))):
        rng = random.Random(f"{seed}/{trial}")
        if fixed_layout is not None:
            layout = list(fixed_layout)
        elif trial < len(starts):
            layout = starts[trial]
        else:
            layout = random_compact_layout(skeleton.n_logical, coupling, rng)
        if backward is not None and trial >= as_is:
            for _ in range(refinements):
                layout = route(skeleton, coupling, layout, rng, record=False).final_layout
                layout = route(backward, coupling, layout, rng, record=False).final_layout
        routed = route(skeleton, coupling, layout, rng)
        if trial < as_is and plain is not None:
            # These layouts were built for the gates in their written order: route that too.
            in_order = route(plain, coupling, layout, random.Random(f"{seed}/{trial}"))
            if in_order.estimated_cz < routed.estimated_cz:
                routed = in_order
        if best is None or routed.estimated_cz < best[1].estimated_cz:
            best = (layout, routed)
        if routed.swaps == 0:
            break
    if best is None:  # pragma: no cover - trials >= 1 always runs the loop
        raise RuntimeError("no routing trial ran")
    return best
