"""Breadth-first enumeration of every reachable state of a machine, to a fixed point.

The search loop is kept lean: a dict of seen states to indexes, a parent array for shortest
traces and a flat edge record; the networkx graph is built afterwards on demand. Every
invariant is checked on every new state; a violating state is recorded (the first per
invariant is the shallowest, as the search is breadth-first) and not expanded further.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from meerkat_model.machine import Machine, Stepped
from meerkat_model.verifier.exploration import Coverage, Edge, Exploration, Violation
from meerkat_model.verifier.parallel import explore_parallel, fork_available

ProgressFn = Callable[[int, int, float], None]
"""Called as ``progress(states, frontier, elapsed_seconds)`` every few thousand states."""

PROGRESS_EVERY = 4096


def explore(
    machine: Machine[Any, Any],
    *,
    symmetry: bool = True,
    progress: ProgressFn | None = None,
    max_states: int | None = None,
    workers: int = 1,
) -> Exploration:
    """Enumerate the reachable states of ``machine`` (canonical forms when ``symmetry``).

    Stops at the fixed point, or after ``max_states`` states (then ``complete`` is false).
    ``workers > 1`` runs the level-synchronous, hash-partitioned search of
    :mod:`meerkat_model.verifier.parallel` in that many processes (forked; where ``fork`` is
    not available the sequential search runs); ``workers == 1`` is the sequential loop below."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    if workers > 1 and fork_available():
        return explore_parallel(machine, workers=workers, symmetry=symmetry, progress=progress, max_states=max_states)
    started = time.perf_counter()
    invariants = list(machine.invariants())
    canon = machine.canonical if symmetry else None
    step = machine.step
    actions = machine.actions
    obligations = machine.obligations

    init = machine.initial_state()
    if canon is not None:
        init = canon(init)
    index: dict[Any, int] = {init: 0}
    states: list[Any] = [init]
    depths: list[int] = [0]
    parents: list[int] = [-1]
    edges: list[Edge] = []
    violations: list[Violation] = []
    violated: set[str] = set()
    stuck: list[int] = []
    fired: set[str] = set()
    complete = True

    checks = [(inv.name, inv.check) for inv in invariants]

    def check(i: int, state: Any) -> bool:
        ok = True
        for name, holds in checks:
            message = holds(state)
            if message is not None:
                ok = False
                if name not in violated:
                    violated.add(name)
                    violations.append(Violation(name, message, i, depths[i]))
        return ok

    expandable = check(0, init)
    frontier: list[int] = [0] if expandable else []
    while frontier:
        next_frontier: list[int] = []
        for src in frontier:
            state = states[src]
            moved = False
            for action in actions(state):
                result = step(state, action)
                if not isinstance(result, Stepped):
                    continue
                succ = result.state
                if not moved and succ != state:
                    moved = True
                fired.add(result.transition)
                # a stored state is canonical, so a hit needs no canonicalisation
                dst = index.get(succ)
                if dst is None and canon is not None:
                    representative = canon(succ)
                    if representative is not succ:
                        succ = representative
                        dst = index.get(succ)
                if dst is None:
                    dst = len(states)
                    index[succ] = dst
                    states.append(succ)
                    depths.append(depths[src] + 1)
                    parents.append(src)
                    if check(dst, succ):
                        next_frontier.append(dst)
                    if progress is not None and dst % PROGRESS_EVERY == 0:
                        progress(dst + 1, len(next_frontier), time.perf_counter() - started)
                edges.append((src, dst, action, result.transition))
            if not moved and obligations(state):
                stuck.append(src)
            if max_states is not None and len(states) >= max_states:
                complete = False
                break
        if not complete:
            break
        frontier = next_frontier

    declared = tuple(dict.fromkeys(t.name for t in machine.transitions()))
    coverage = Coverage(
        declared=declared,
        fired=tuple(sorted(fired)),
        dead=tuple(n for n in declared if n not in fired),
        undeclared=tuple(sorted(fired - set(declared))),
    )
    return Exploration(
        machine=machine,
        symmetry=symmetry,
        state_list=states,
        depths=depths,
        parents=parents,
        edge_list=edges,
        violations=violations,
        stuck=stuck,
        coverage=coverage,
        elapsed=time.perf_counter() - started,
        complete=complete,
        invariant_names=tuple(inv.name for inv in invariants),
        _index=index,
    )
