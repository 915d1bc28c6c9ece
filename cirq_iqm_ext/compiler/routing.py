"""SWAP routing: a look-ahead SABRE-family router on plain integer data.

The router sees a circuit as a *skeleton*: a list of gates, each a tuple of logical qubit indices,
some of which (the two-qubit gates) must act on coupled physical qubits. It walks the dependency
DAG, runs every gate whose qubits are adjacent, and otherwise inserts the SWAP that most reduces the
distance of the blocked front layer plus, with a smaller weight, of an extended look-ahead set (Li,
Ding, Xie, "Tackling the qubit mapping problem for NISQ-era quantum devices", 2019, with the later
"LightSABRE"
refinements: decay to spread SWAPs over qubits, and a release valve that walks a stuck gate along a
shortest path). Given commutation classes (:mod:`.commutation`), the DAG leaves commuting gates
unordered, so the front layer holds every gate that commutes with the blocked ones and the router
runs whichever the layout makes adjacent first; a SWAP may then merge into a commuting gate on its
pair that ran a little earlier, moved after the gates it commutes with.

Everything here is deterministic for a given ``random.Random``: no iteration over sets or dicts
whose order depends on hashing.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

#: Number of two-qubit gates beyond the front layer that the heuristic looks at.
EXTENDED_SET_SIZE = 20
#: Weight of the extended set relative to the front layer.
EXTENDED_SET_WEIGHT = 0.5
#: Decay added to a physical qubit each time it takes part in a SWAP.
DECAY_STEP = 0.001
#: The decay is reset after this many SWAPs without executing a gate.
DECAY_RESET = 5
#: Score bonus (in front-layer distance units) of a SWAP that merges into the gate just run on
#: the same pair: such a SWAP costs about one CZ instead of three.
SWAP_MERGE_BONUS = 1.0


class Coupling:
    """A connected coupling graph over physical qubits ``0..n-1`` with all-pairs distances.

    Args:
        n: Number of physical qubits.
        edges: Coupled pairs.

    Raises:
        ValueError: The graph is not connected.
    """

    def __init__(self, n: int, edges: Sequence[tuple[int, int]]):
        self.n = n
        adj: list[list[int]] = [[] for _ in range(n)]
        for a, b in edges:
            if a != b and b not in adj[a]:
                adj[a].append(b)
                adj[b].append(a)
        self.adj = [sorted(x) for x in adj]
        self.edges = tuple(sorted({(min(a, b), max(a, b)) for a, b in edges if a != b}))
        inf = n + 1
        dist = [[inf] * n for _ in range(n)]
        for s in range(n):
            row = dist[s]
            row[s] = 0
            queue = deque([s])
            while queue:
                u = queue.popleft()
                for v in self.adj[u]:
                    if row[v] > row[u] + 1:
                        row[v] = row[u] + 1
                        queue.append(v)
        if n and any(d > n for d in dist[0]):
            raise ValueError("The coupling graph of the usable qubits is not connected")
        self.dist = dist

    def next_hop(self, src: int, dst: int) -> int:
        """The neighbour of ``src`` on a shortest path to ``dst`` (lowest index on ties)."""
        d = self.dist[dst]
        return min(self.adj[src], key=lambda v: (d[v], v))


@dataclass(frozen=True)
class Skeleton:
    """A circuit as the router sees it.

    Attributes:
        n_logical: Number of logical qubits.
        gates: Logical qubits of each gate, in a valid time order.
        two_qubit: Whether each gate needs its two qubits coupled.
        successors: Gates that directly depend on each gate.
        n_predecessors: Number of direct predecessors of each gate.
    """

    n_logical: int
    gates: tuple[tuple[int, ...], ...]
    two_qubit: tuple[bool, ...]
    successors: tuple[tuple[int, ...], ...]
    n_predecessors: tuple[int, ...]
    mergeable: tuple[bool, ...] = ()
    classes: tuple[tuple[int, ...], ...] = ()

    @classmethod
    def build(
        cls,
        n_logical: int,
        gates: Sequence[tuple[int, ...]],
        two_qubit: Sequence[bool],
        mergeable: Sequence[bool] | None = None,
        classes: Sequence[tuple[int, ...]] | None = None,
    ) -> Skeleton:
        """Builds the dependency DAG of ``gates``.

        Without ``classes`` each gate depends on the last gate on each of its qubits. With them
        (per gate, its commutation class on each qubit: 0 general, else a basis, see
        :mod:`.commutation`) consecutive gates of the same non-general class on a qubit form a
        group that commutes there: a gate depends only on the group before its own, so the
        router may run the gates of a group in any order.

        ``mergeable`` marks single-qubit gates that a two-qubit block absorbs (numeric ones); by
        default every single-qubit gate is.
        """
        if mergeable is None:
            mergeable = [len(qs) == 1 for qs in gates]
        preds = _commuting_predecessors(n_logical, gates, classes)
        succ: list[list[int]] = [[] for _ in gates]
        for g, ps in enumerate(preds):
            for p in ps:
                succ[p].append(g)
        return cls(
            n_logical,
            tuple(gates),
            tuple(two_qubit),
            tuple(map(tuple, succ)),
            tuple(len(ps) for ps in preds),
            tuple(mergeable),
            tuple(classes) if classes is not None else (),
        )

    def reversed(self) -> Skeleton:
        """The same gates in reverse time order (for the backward pass of layout search)."""
        return Skeleton.build(
            self.n_logical,
            self.gates[::-1],
            self.two_qubit[::-1],
            self.mergeable[::-1],
            self.classes[::-1] if self.classes else None,
        )


#: A commuting group on a qubit closes at this size (bounds the DAG's edges between groups).
MAX_GROUP = 32


def _commuting_predecessors(
    n_logical: int,
    gates: Sequence[tuple[int, ...]],
    classes: Sequence[tuple[int, ...]] | None,
) -> list[list[int]]:
    """The direct predecessors of each gate, in order (see :meth:`Skeleton.build`)."""
    group: list[list[int]] = [[] for _ in range(n_logical)]  # the open group on each qubit
    before: list[list[int]] = [[] for _ in range(n_logical)]  # the group before it
    kind = [0] * n_logical  # the open group's class (0: a general gate, alone)
    out: list[list[int]] = []
    for g, qs in enumerate(gates):
        cl = classes[g] if classes is not None else None
        preds: list[int] = []
        seen: set[int] = set()
        for i, q in enumerate(qs):
            c = cl[i] if cl is not None else 0
            if c and c == kind[q] and len(group[q]) < MAX_GROUP:
                deps = before[q]
                group[q].append(g)
            else:
                deps = before[q] = group[q]
                group[q] = [g]
                kind[q] = c
            for p in deps:
                if p not in seen:
                    seen.add(p)
                    preds.append(p)
        out.append(preds)
    return out


#: Marks the old place of a step moved later in :meth:`_RoutingState._run_merge`.
_MOVED = -2


@dataclass
class Routed:
    """Result of one routing pass.

    Attributes:
        steps: In time order, ``(gate_index, physical_qubits)`` for a gate or ``(-1, (p, q))`` for a
            SWAP of physical qubits ``p`` and ``q``. Empty when not recorded.
        swaps: Number of SWAPs inserted.
        final_layout: Logical -> physical after the last gate.
    """

    steps: list[tuple[int, tuple[int, ...]]]
    swaps: int
    final_layout: list[int]
    merged_swaps: int = 0

    @property
    def estimated_cz(self) -> int:
        """CZ added by routing: 3 per SWAP, about 1 per SWAP that merges into a gate before it."""
        return 3 * self.swaps - 2 * self.merged_swaps


def route(
    skeleton: Skeleton,
    coupling: Coupling,
    layout: Sequence[int],
    rng: random.Random,
    *,
    record: bool = True,
) -> Routed:
    """Routes ``skeleton`` on ``coupling`` starting from ``layout`` (logical -> physical).

    Args:
        skeleton: The gates to route.
        coupling: The coupling graph.
        layout: Initial physical qubit of each logical qubit (distinct).
        rng: Breaks ties between equally good SWAPs.
        record: Whether to record the steps (layout search only needs the final layout).

    Returns:
        The routed steps, the SWAP count and the final layout.
    """
    state = _RoutingState(skeleton, coupling, layout, record)
    state.run([g for g in range(len(skeleton.gates)) if state.indeg[g] == 0])
    since_progress = 0
    # The scored gates (front and look-ahead) by logical qubit: unchanged until a gate runs.
    scored: _Scored | None = None
    valve_limit = max(10, 3 * coupling.n)
    while state.front:
        if since_progress >= valve_limit:
            chosen = state.release_valve()
        else:
            if scored is None:
                scored = _Scored.of(state.front, _extended_set(state.front, skeleton), skeleton)
            chosen = [_choose_swap(state, scored, rng)]
        for p, q in chosen:
            state.swap(p, q)
        if state.run_unblocked():
            since_progress = 0
            state.reset_decay()
            scored = None
        else:
            since_progress += 1
            if since_progress % DECAY_RESET == 0:
                state.reset_decay()
    steps = [st for st in state.steps if st[0] != _MOVED] if state.moved else state.steps
    return Routed(steps, state.swaps, state.l2p, state.merged)


class _RoutingState:
    """The mutable state of one :func:`route` pass: layout, front layer, steps and counters."""

    def __init__(self, skeleton: Skeleton, coupling: Coupling, layout: Sequence[int], record: bool):
        self.skeleton = skeleton
        self.coupling = coupling
        self.record = record
        self.indeg = list(skeleton.n_predecessors)
        self.l2p = list(layout)
        self.p2l = [-1] * coupling.n
        for lq, p in enumerate(self.l2p):
            self.p2l[p] = lq
        self.steps: list[tuple[int, tuple[int, ...]]] = []
        self.front: list[int] = []
        self.decay = [1.0] * coupling.n
        self.swaps = 0
        self.merged = 0
        # Partner of each physical qubit's latest two-qubit gate (-1: none, or something else
        # since): a SWAP right after a gate on the same pair merges into that gate's block
        # almost for free.
        self.partner = [-1] * coupling.n
        # The current commuting run on each physical qubit (gates of one class there, see
        # :mod:`.commutation`): its class, and its two-qubit gates by the other physical qubit.
        # A SWAP may merge into a run's gate on the same pair, moved after the rest of both runs
        # (it commutes with them), as if it had run last.
        self.run_class = [0] * coupling.n
        self.run_pairs: list[dict[int, int]] = [{} for _ in range(coupling.n)]
        self.step_of: dict[int, int] = {}  # gate -> its index in ``steps`` (while in a run)
        self.moved = 0

    def reset_decay(self) -> None:
        self.decay = [1.0] * self.coupling.n

    def run(self, ready: list[int]) -> bool:
        """Executes every gate reachable from ``ready`` that can run; blocked ones join the
        front. Returns whether any gate ran.

        Of the gates ready at once, the earliest in the program runs first: commuting gates
        have no order between them in the skeleton, and taking them in the order they became
        ready (after their last predecessor) can turn layers of commuting CZs into one long
        chain (two layers of a CZ brick wall became nine), a deeper circuit for the same
        unitary."""
        gates, two_q, one_q = self.skeleton.gates, self.skeleton.two_qubit, self.skeleton.mergeable
        classes = self.skeleton.classes
        succ, indeg, dist = self.skeleton.successors, self.indeg, self.coupling.dist
        l2p, partner, front, steps, record = (
            self.l2p,
            self.partner,
            self.front,
            self.steps,
            self.record,
        )
        ran = False
        heapq.heapify(ready)  # gates are numbered in program order
        while ready:
            g = heapq.heappop(ready)
            qs = gates[g]
            if two_q[g] and dist[l2p[qs[0]]][l2p[qs[1]]] != 1:
                front.append(g)
                continue
            ran = True
            if classes:
                self._join_runs(g, qs)
            if record:
                steps.append((g, tuple(l2p[q] for q in qs)))
            if two_q[g]:
                pa, pb = l2p[qs[0]], l2p[qs[1]]
                partner[pa] = pb
                partner[pb] = pa
            elif len(qs) > 1 or not one_q[g]:
                for q in qs:
                    partner[l2p[q]] = -1
            for s in succ[g]:
                indeg[s] -= 1
                if indeg[s] == 0:
                    heapq.heappush(ready, s)
        return ran

    def _join_runs(self, g: int, qs: tuple[int, ...]) -> None:
        """Gate ``g`` joins (or starts) the commuting run on each of its physical qubits."""
        l2p, run_class, run_pairs = self.l2p, self.run_class, self.run_pairs
        cl = self.skeleton.classes[g]
        two = self.skeleton.two_qubit[g]
        for i, q in enumerate(qs):
            p, c = l2p[q], cl[i]
            if c == 0 or c != run_class[p]:
                run_class[p] = c
                run_pairs[p] = {}
            if two:  # a general gate is a run of its own, until the next gate on ``p``
                run_pairs[p][l2p[qs[1 - i]]] = g
        if two and self.record:
            self.step_of[g] = len(self.steps)

    def _run_merge(self, p: int, q: int) -> bool:
        """Whether a SWAP of ``p`` and ``q`` merges into a gate of their runs (moved last)."""
        g = self.run_pairs[p].get(q, -1)
        if g < 0 or self.run_pairs[q].get(p, -1) != g:
            return False
        if self.record:
            pos = self.step_of[g]
            self.steps.append(self.steps[pos])
            self.steps[pos] = (_MOVED, ())
            self.moved += 1
        return True

    def release_valve(self) -> list[tuple[int, int]]:
        """SWAPs that walk the closest blocked gate's first qubit next to its partner."""
        gates, dist, l2p = self.skeleton.gates, self.coupling.dist, self.l2p
        g = min(self.front, key=lambda x: (dist[l2p[gates[x][0]]][l2p[gates[x][1]]], x))
        a, b = l2p[gates[g][0]], l2p[gates[g][1]]
        path: list[tuple[int, int]] = []
        while dist[a][b] > 1:
            nxt = self.coupling.next_hop(a, b)
            path.append((a, nxt))
            a = nxt
        return path

    def swap(self, p: int, q: int) -> None:
        """Exchanges the logical qubits on physical ``p`` and ``q``."""
        if (self.partner[p] == q and self.partner[q] == p) or self._run_merge(p, q):
            self.merged += 1
        self.run_class[p] = self.run_class[q] = 0
        self.run_pairs[p] = {}
        self.run_pairs[q] = {}
        lp, lq = self.p2l[p], self.p2l[q]
        self.p2l[p], self.p2l[q] = lq, lp
        if lp >= 0:
            self.l2p[lp] = q
        if lq >= 0:
            self.l2p[lq] = p
        self.swaps += 1
        if self.record:
            self.steps.append((-1, (p, q)))
        self.decay[p] += DECAY_STEP
        self.decay[q] += DECAY_STEP
        self.partner[p] = self.partner[q] = -1

    def run_unblocked(self) -> bool:
        """Runs the front-layer gates that the SWAPs made adjacent (and what they free)."""
        gates, dist, l2p = self.skeleton.gates, self.coupling.dist, self.l2p
        blocked = self.front
        self.front = []
        ready: list[int] = []
        for g in blocked:
            qs = gates[g]
            if dist[l2p[qs[0]]][l2p[qs[1]]] == 1:
                ready.append(g)
            else:
                self.front.append(g)
        return bool(ready) and self.run(ready)


def _extended_set(front: list[int], skeleton: Skeleton) -> list[int]:
    """Up to ``EXTENDED_SET_SIZE`` two-qubit gates that follow the front layer, nearest first."""
    succ = skeleton.successors
    two_q = skeleton.two_qubit
    out: list[int] = []
    seen: set[int] = set(front)
    queue = list(front)  # breadth first; a list with a read index is cheaper than a deque
    i = 0
    while i < len(queue):
        g = queue[i]
        i += 1
        for s in succ[g]:
            if s in seen:
                continue
            seen.add(s)
            if two_q[s]:
                out.append(s)
                if len(out) >= EXTENDED_SET_SIZE:
                    return out
            queue.append(s)
    return out


@dataclass
class _Scored:
    """The gates one SWAP choice is scored on, indexed by logical qubit (so they stay valid
    across SWAPs until a gate runs).

    Attributes:
        front_weight: Weight of a front-layer gate (extended-set gates weigh less).
        pairs: ``(logical a, logical b, weight)`` of every scored gate.
        touch: For each logical qubit on a scored gate, ``(other logical qubit, weight)``.
        front_qubits: Logical qubits of the front layer, in front order (candidates start there).
    """

    front_weight: float
    pairs: list[tuple[int, int, float]]
    touch: dict[int, list[tuple[int, float]]]
    front_qubits: list[int]

    @classmethod
    def of(cls, front: list[int], ext: list[int], skeleton: Skeleton) -> _Scored:
        gates = skeleton.gates
        wf = 1.0 / len(front)
        we = EXTENDED_SET_WEIGHT / len(ext) if ext else 0.0
        pairs: list[tuple[int, int, float]] = []
        touch: dict[int, list[tuple[int, float]]] = {}
        for group, w in ((front, wf), (ext, we)):
            for g in group:
                a, b = gates[g][0], gates[g][1]
                pairs.append((a, b, w))
                touch.setdefault(a, []).append((b, w))
                touch.setdefault(b, []).append((a, w))
        # Once each (first seen first): commuting fronts share qubits, candidates are per qubit.
        front_qubits = list(dict.fromkeys(lq for g in front for lq in gates[g][:2]))
        return cls(wf, pairs, touch, front_qubits)


def _choose_swap(state: _RoutingState, scored: _Scored, rng: random.Random) -> tuple[int, int]:
    """The SWAP (pair of coupled physical qubits) with the lowest look-ahead cost.

    Only gates with a qubit on the swapped pair change distance, so each candidate is scored by
    the change over those gates alone.
    """
    l2p, p2l, partner, decay = state.l2p, state.p2l, state.partner, state.decay
    run_pairs = state.run_pairs
    dist, adj = state.coupling.dist, state.coupling.adj
    touch = scored.touch
    base = 0.0
    for a, b, w in scored.pairs:
        base += w * dist[l2p[a]][l2p[b]]
    merge_bonus = SWAP_MERGE_BONUS * scored.front_weight
    best: list[tuple[int, int]] = []
    best_score = float("inf")
    seen: set[tuple[int, int]] = set()
    for lq in scored.front_qubits:
        p = l2p[lq]
        dp = dist[p]
        tp = touch.get(lq, ())
        for q in adj[p]:
            key = (p, q) if p < q else (q, p)
            if key in seen:
                continue
            seen.add(key)
            dq = dist[q]
            lo = p2l[q]
            delta = 0.0
            for o, w in tp:
                if o != lo:
                    po = l2p[o]
                    delta += w * (dq[po] - dp[po])
            if lo >= 0:
                for o, w in touch.get(lo, ()):
                    if o != lq:
                        po = l2p[o]
                        delta += w * (dp[po] - dq[po])
            score = (base + delta) * max(decay[p], decay[q])
            if (partner[p] == q and partner[q] == p) or (
                run_pairs[p].get(q, -1) >= 0 and run_pairs[p][q] == run_pairs[q].get(p)
            ):
                score -= merge_bonus
            if score < best_score - 1e-12:
                best_score = score
                best = [key]
            elif score <= best_score + 1e-12:
                best.append(key)
    return best[0] if len(best) == 1 else best[rng.randrange(len(best))]
