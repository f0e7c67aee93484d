"""Directed scenarios: for every declared transition, the shortest run of harness actions that
fires it, found in the model and then replayed against the runtime in lockstep.

Some transitions sit deep in the model (``executor_failed_exhausted_retired`` needs an attached
loop, an input, two failed runs, a retire in flight and a third failure: ten model steps) and a
random search reaches them rarely. :func:`directed_paths` searches the model breadth-first over
what the harness can drive — every model action the adapter's steering maps to a harness action,
plus the suite's extra harness actions (faults, variants) — applying after each one the steps the
runtime takes on its own (``Suite.runtime_moves``), and keeps the first path that fires each
transition. :func:`run_scenarios` replays each path against a fresh runtime, compared step by
step like any lockstep run; a disagreement raises with the scenario's trace (already short).

The search is deterministic (actions in the machine's order, breadth first over canonical
states) and stops once every transition has a path or ``max_states`` states were expanded.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from meerkat_model.machine import Machine, Stepped

from meerkat_conformance.lockstep.adapter import RuntimeAdapter
from meerkat_conformance.lockstep.driver import Lockstep
from meerkat_conformance.lockstep.tally import MachineTally

PlanFn = Callable[[Hashable, Any], Sequence[Hashable]]
"""``adapter.model_actions``: the model actions a harness action stands for in a state."""
MovesFn = Callable[[Machine[Any, Any], Any], Sequence[Hashable]]
"""The model actions the runtime takes on its own from a state (applied until none applies)."""
ContextFn = Callable[[Any], Hashable]
"""A coarse picture of a model state (how many inputs are queued, whether a run is in flight,
...): with one, a transition gets a path from every such picture it fires from."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """``path``: harness actions that, from the initial state, end by firing ``transition``
    (from a state whose context is ``context``, when the search had a context function)."""

    transition: str
    path: tuple[Hashable, ...]
    context: Hashable = None


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    scenarios: int
    steps: int
    elapsed: float
    unreached: tuple[str, ...]
    """Declared transitions no path of the search reached (not drivable, or beyond the bound)."""


def _settle(machine: Machine[Any, Any], state: Any, moves: MovesFn | None) -> tuple[Any, list[str]]:
    """Apply the runtime's own moves until none applies; the state and the transitions fired."""
    fired: list[str] = []
    if moves is None:
        return state, fired
    for _ in range(64):
        stepped = False
        for action in moves(machine, state):
            result = machine.step(state, action)
            if isinstance(result, Stepped):
                state, stepped = result.state, True
                fired.append(result.transition)
                break
        if not stepped:
            break
    return state, fired


def directed_paths(
    machine: Machine[Any, Any],
    plan: PlanFn,
    steer: Callable[[Hashable], Hashable | None],
    *,
    extras: Sequence[Hashable] = (),
    moves: MovesFn | None = None,
    context: ContextFn | None = None,
    context_states: int = 0,
    max_states: int = 200_000,
) -> list[Scenario]:
    """The shortest harness path to every declared transition of ``machine`` (see the module
    docstring), in declaration order; transitions not reached are left out. With ``context``,
    the shortest path to every (transition, context of the state it fires from) pair instead:
    the search explores at least ``context_states`` states (and goes on, up to ``max_states``,
    only while a transition has no path), and the paths come ordered by transition, then by
    length."""
    order = {name: n for n, name in enumerate(dict.fromkeys(t.name for t in machine.transitions()))}
    found: dict[tuple[str, Hashable], tuple[Hashable, ...]] = {}
    start, fired = _settle(machine, machine.initial_state(), moves)
    for name in fired:
        found.setdefault((name, None), ())
    seen = {machine.canonical(start)}
    queue: deque[tuple[Any, tuple[Hashable, ...]]] = deque([(start, ())])
    reached_names: set[str] = {name for name, _ in found}
    while queue and len(seen) < max_states:
        if len(reached_names) >= len(order) and (context is None or len(seen) >= context_states):
            break
        state, path = queue.popleft()
        where = None if context is None else context(state)
        candidates = [h for h in (steer(a) for a in machine.actions(state)) if h is not None]
        for harness in dict.fromkeys([*candidates, *extras]):
            reached, names = _apply(machine, state, plan(harness, state))
            if reached is None:
                continue
            reached, own = _settle(machine, reached, moves)
            longer = (*path, harness)
            for name in (*names, *own):
                found.setdefault((name, where), longer)
                reached_names.add(name)
            key = machine.canonical(reached)
            if key not in seen:
                seen.add(key)
                queue.append((reached, longer))
    ranked = sorted(found.items(), key=lambda item: (order.get(item[0][0], len(order)), len(item[1])))
    return [Scenario(name, path, where) for (name, where), path in ranked if name in order]


def _apply(machine: Machine[Any, Any], state: Any, actions: Sequence[Hashable]) -> tuple[Any, list[str]]:
    """Step through ``actions`` (all must be accepted); ``(None, [])`` if one is refused."""
    names: list[str] = []
    for action in actions:
        result = machine.step(state, action)
        if not isinstance(result, Stepped):
            return None, []
        state = result.state
        names.append(result.transition)
    return state, names


def run_scenarios(
    machine: Machine[Any, Any],
    scenarios: Sequence[Scenario],
    make_adapter: Callable[[], RuntimeAdapter],
    tally: MachineTally,
) -> ScenarioResult:
    """Replay every scenario against a fresh runtime in lockstep, counting into ``tally``.
    Raises ``Disagreement`` (with the scenario's trace) at the first difference."""
    started = time.perf_counter()
    steps = 0
    for scenario in scenarios:
        lock = Lockstep(machine, make_adapter(), tally)
        tally.walks += 1
        try:
            lock.check()
            for action in scenario.path:
                lock.apply(action)
                steps += 1
        finally:
            lock.close()
    declared = dict.fromkeys(t.name for t in machine.transitions())
    reached = {s.transition for s in scenarios}
    unreached = tuple(name for name in declared if name not in reached)
    return ScenarioResult(len(scenarios), steps, time.perf_counter() - started, unreached)
