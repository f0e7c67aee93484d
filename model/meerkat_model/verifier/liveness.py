"""Stranded states: reachable states from which no obligation-free state can be reached.

The liveness promise checked here is AG EF "no obligations" over the explored graph: from every
reachable state, some sequence of steps leads to a state whose ``machine.obligations`` is empty.
A state with obligations from which every path keeps some obligation forever (work that can
still move but can never be drained: a livelock, or a stuck state) is *stranded*. Every stuck
state is stranded; a stranded state need not be stuck.

Why the whole set and not each obligation on its own ("every obligation of a state is eventually
discharged"): reaching a state with no obligation at all discharges every one of them, so the
whole-set check is the stronger of the two, the lifecycle models satisfy it, and it needs no
notion of "the same obligation" across steps (obligations name ids, which symmetry reduction
renames).

Symmetry reduction preserves the result: obligation-freeness is invariant under renaming the
interchangeable ids (a renamed state owes the renamed work), and a canonical graph has an edge
``a -> b`` exactly when some renaming of ``a`` steps to some renaming of ``b``; so a concrete
state reaches an obligation-free state exactly when its canonical form does in the reduced graph.

The computation works on integer records only (no graph library, no edge tuples): the edges
grouped by source (``sources[k]`` has its edges' targets at ``targets[ends[k - 1]:ends[k]]``)
and one flag per state saying whether it counts as a way out (``exits[i]``: no obligations).
A forward sweep in decreasing index order first marks every state with a way out along deeper
successors (most of them, at C speed); the few left are settled exactly by a backward search
over the edges among them. Linear in states plus edges.
"""

from __future__ import annotations

from collections.abc import Sequence

STRANDED = "stranded"
"""How a trace to a stranded state names what it shows (``--trace-dot``, ``--trace-json``)."""
STRANDED_WITHOUT_GIVE_UPS = "stranded without give-ups"
"""How a trace to a state stranded only once the give-ups are left out names what it shows."""
DESCRIPTIONS = {
    STRANDED: "from every reachable state some sequence of steps reaches a state without obligations",
    STRANDED_WITHOUT_GIVE_UPS: "from every reachable state some sequence of steps that gives no work up "
    "reaches a state without obligations",
}


def stranded_states(
    count: int,
    exits: bytearray,
    sources: Sequence[int],
    ends: Sequence[int],
    targets: Sequence[int],
) -> list[int]:
    """The indexes (ascending) of the states of a ``count``-state graph that reach no state
    with ``exits[i]`` set. The edges of source ``sources[k]`` go to
    ``targets[ends[k - 1]:ends[k]]`` (``ends[-1]`` is 0 for ``k == 0``); each source appears at
    most once, and a state that is no source has no edges. ``exits`` is not changed."""
    if len(exits) != count:
        raise ValueError(f"{len(exits)} exit flags for {count} states")
    if len(sources) != len(ends):
        raise ValueError(f"{len(sources)} sources for {len(ends)} edge run ends")
    good = bytearray(exits)
    if all(good):
        return []
    start = [0] * count  # each state's edge run: targets[start[i]:stop[i]] (empty: no edges)
    stop = [0] * count
    lo = 0
    for src, hi in zip(sources, ends, strict=True):
        start[src], stop[src] = lo, hi
        lo = hi
    flag = good.__getitem__
    # forward sweep, deepest first: a state with a good successor is good
    for i in range(count - 1, -1, -1):
        if not good[i] and any(map(flag, targets[start[i] : stop[i]])):
            good[i] = 1
    rest = [i for i in range(count) if not good[i]]
    if not rest:
        return []
    # exact settlement of the rest: backward search from those with a good successor
    inside = set(rest)
    preds: dict[int, list[int]] = {i: [] for i in rest}
    queue: list[int] = []
    for i in rest:
        for t in targets[start[i] : stop[i]]:
            if good[t]:
                if not good[i]:
                    good[i] = 1
                    queue.append(i)
            elif t in inside and t != i:
                preds[t].append(i)
    while queue:
        t = queue.pop()
        for s in preds[t]:
            if not good[s]:
                good[s] = 1
                queue.append(s)
    return [i for i in rest if not good[i]]
