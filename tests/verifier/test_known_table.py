"""The search's table of known states: one lookup per successor enters a new one provisionally,
renamed successors are kept as aliases, and an entry is never left provisional when a call on
the successor raises. Every recorded edge leads to the canonical form of its step's successor,
sequentially and in parallel."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import pytest
from meerkat_model.machine import Invariant, Machine, Rejected, Stepped
from meerkat_model.verifier import Exploration, explore
from meerkat_model.verifier.search import STEP_RAISES

Pair = tuple[int, int]

fork_only = pytest.mark.skipif(not hasattr(os, "fork"), reason="the parallel explorer forks")


class Pairs(Machine[Pair, str]):
    """Two counters up to ``limit``, symmetric under exchange (canonical form sorted). ``drop``
    and ``jolt`` lead every state to one renamed pair, ``(limit, 0)`` and ``(limit, 1)``, so the
    search meets those successors again and again. ``canonical`` raises on the successors in
    ``unnamed`` (the steps into them are violations and take no edge, however often they are
    met)."""

    name = "pairs"

    def __init__(self, limit: int = 4, unnamed: frozenset[Pair] = frozenset()) -> None:
        self.limit, self.unnamed = limit, unnamed

    def initial_state(self) -> Pair:
        return (0, 0)

    def actions(self, state: Pair) -> Iterable[str]:
        return ("a", "b", "both", "stay", "drop", "jolt")

    def step(self, state: Pair, action: str) -> Stepped[Pair] | Rejected:
        a, b = state
        if action == "stay":
            return Stepped(state, (), "stay")
        if action in ("drop", "jolt"):
            return Stepped((self.limit, 0 if action == "drop" else 1), (), action)
        if action == "both":
            return Stepped((min(a + 1, self.limit), min(b + 1, self.limit)), (), "both")
        if action == "a":
            return Stepped((a + 1, b), (), "a") if a < self.limit else Rejected("invalid_transition", "at limit")
        return Stepped((a, b + 1), (), "b") if b < self.limit else Rejected("invalid_transition", "at limit")

    def invariants(self) -> Sequence[Invariant[Pair]]:
        return [Invariant("small", "the sum stays small", lambda s: None)]

    def canonical(self, state: Pair) -> Pair:
        if state in self.unnamed:
            raise ValueError(f"cannot rename {state}")
        a, b = state
        return state if a <= b else (b, a)


def brute_edges(machine: Pairs, e: Exploration) -> list[tuple[int, int, str]]:
    """Every ``(source, target, action)`` the search should record: each stored state's steps
    whose successor has a canonical form (unnamed successors take no edge)."""
    index = {s: i for i, s in enumerate(e.state_list)}
    out = []
    for i, state in enumerate(e.state_list):
        for action in machine.actions(state):
            result = machine.step(state, action)
            if not isinstance(result, Stepped):
                continue
            try:
                target = machine.canonical(result.state)
            except ValueError:
                continue
            out.append((i, index[target], action))
    return sorted(out)


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=fork_only)])
def test_every_edge_leads_to_the_canonical_successor(workers: int) -> None:
    machine = Pairs()
    e = explore(machine, workers=workers)
    assert e.ok and e.states == 15  # the sorted pairs of 0..4
    assert sorted((s, t, a) for s, t, a, _ in e.edge_list) == brute_edges(machine, e)
    assert e.index_of((3, 1)) == e.index_of((1, 3))  # a renamed form is found by its canonical form
    with pytest.raises(KeyError):
        e.index_of((5, 0))


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=fork_only)])
def test_a_successor_whose_canonical_form_raises_is_never_entered(workers: int) -> None:
    # every state's "jolt" leads to (4, 1), whose canonical form raises: each such step is a
    # violation and takes no edge; a table entry left behind by the first would send the later
    # ones to whichever state took the next index
    machine = Pairs(unnamed=frozenset({(4, 1)}))
    e = explore(machine, workers=workers)
    raised = {v.invariant: v for v in e.violations}[STEP_RAISES]
    assert raised.message == "raised ValueError: cannot rename (4, 1)"
    assert raised.depth == 1
    assert e.states == 15  # (1, 4) is still reached, by "a" and "b" steps
    assert sorted((s, t, a) for s, t, a, _ in e.edge_list) == brute_edges(machine, e)
