"""The search's table of known states: one lookup per successor enters a new one provisionally,
renamed successors are kept as aliases, and an entry is never left provisional when a call on
the successor raises. Every recorded edge leads to the canonical form of its step's successor,
sequentially and in parallel."""

from __future__ import annotations

import os
import pickle
from array import array
from collections.abc import Iterable, Sequence
from typing import Any

import pytest
from meerkat_model.machine import Invariant, Machine, Rejected, Stepped, TransitionDecl
from meerkat_model.verifier import Exploration, explore
from meerkat_model.verifier.search import STEP_RAISES, Partition

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


class Renaming(Machine[int, str]):
    """``0`` steps to ``2`` (action ``a``) and ``3`` (action ``b``), in the order ``actions``
    gives; ``canonical`` renames ``3`` to ``2`` and ``2`` to ``1``, so it is not idempotent."""

    name = "renaming"

    def __init__(self, order: tuple[str, ...] = ("a", "b")) -> None:
        self.order = order

    def initial_state(self) -> int:
        return 0

    def actions(self, state: int) -> Iterable[str]:
        return self.order if state == 0 else ()

    def step(self, state: int, action: str) -> Stepped[int] | Rejected:
        return Stepped(2 if action == "a" else 3, (), action)

    def invariants(self) -> Sequence[Invariant[int]]:
        return [Invariant("any", "every state", lambda s: None)]

    def canonical(self, state: int) -> int:
        return {3: 2, 2: 1}.get(state, state)

    def partition_key(self, state: int) -> int:
        return 1 if state == 2 else 0  # with two workers, 2 is owned by the other worker


@pytest.mark.parametrize("order", [("a", "b"), ("b", "a")])
@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=fork_only)])
def test_a_canonical_form_renamed_again_is_a_step_violation(workers: int, order: tuple[str, ...]) -> None:
    # the step "b" leads to 3, renamed to 2, which canonical renames to 1: whether 2 was met
    # before as a renamed successor (order a, b) or not (b, a), that step is reported and takes
    # no edge; the table entry of the renamed 2 is never taken for a state
    e = explore(Renaming(order), workers=workers)
    assert e.state_list == [0, 1]
    assert list(e.edge_list) == [(0, 1, "a", "a")]
    [violation] = e.violations
    assert (violation.invariant, violation.message) == (
        STEP_RAISES,
        "raised ValueError: canonical form 2 is renamed again by canonical",
    )
    assert (violation.state_index, violation.action, violation.step, violation.depth) == (0, "b", True, 1)
    assert list(e.graph().nodes) == [0, 1]
    assert e.index_of(2) == e.index_of(1) == 1


def test_the_sequential_index_keeps_no_renamed_successor() -> None:
    # the search's table holds every renamed successor met; the exploration keeps only states
    e = explore(Pairs())
    assert e._index is None or len(e._index) == e.states
    assert e.index_of((4, 0)) == e.index_of((0, 4))


class Flags(Machine[tuple[int, int], str]):
    """``(0, 0)`` steps to ``(True, 1)``, whose canonical form is the equal ``(1, 1)``."""

    name = "flags"

    def initial_state(self) -> tuple[int, int]:
        return (0, 0)

    def actions(self, state: tuple[int, int]) -> Iterable[str]:
        return ("t",) if state == (0, 0) else ()

    def step(self, state: tuple[int, int], action: str) -> Stepped[tuple[int, int]] | Rejected:
        return Stepped((True, 1), (), "t")

    def invariants(self) -> Sequence[Invariant[tuple[int, int]]]:
        return []

    def canonical(self, state: tuple[int, int]) -> tuple[int, int]:
        return (int(state[0]), int(state[1]))


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=fork_only)])
def test_the_state_stored_is_the_object_canonical_gives(workers: int) -> None:
    e = explore(Flags(), workers=workers)
    assert e.state_list == [(0, 0), (1, 1)]
    assert [type(v) for v in e.state_list[1]] == [int, int]


class Counter(Machine[int, str]):
    """A counter up to 3 with a parity lifecycle; ``statuses`` raises on 2. With two workers
    (the key is the state) 2 is owned by the worker that does not discover it."""

    name = "counter"

    def initial_state(self) -> int:
        return 0

    def actions(self, state: int) -> Iterable[str]:
        return ("inc",) if state < 3 else ()

    def step(self, state: int, action: str) -> Stepped[int] | Rejected:
        return Stepped(state + 1, (), "inc")

    def invariants(self) -> Sequence[Invariant[int]]:
        return []

    def partition_key(self, state: int) -> int:
        return state

    def statuses(self, state: int) -> tuple[tuple[str, str], ...]:
        if state == 2:
            raise ValueError("no statuses for 2")
        return (("parity", "odd" if state % 2 else "even"),)

    def transitions(self) -> Sequence[TransitionDecl]:
        return [
            TransitionDecl("inc", "parity", ("even",), "odd"),
            TransitionDecl("inc", "parity", ("odd",), "even"),
        ]


@fork_only
def test_statuses_raising_on_a_state_owned_elsewhere_is_reported_as_sequentially() -> None:
    def found(e: Exploration) -> list[tuple[str, str, Any, int, Any, bool]]:
        return [(v.invariant, v.message, e.state_list[v.state_index], v.depth, v.action, v.step) for v in e.violations]

    sequential, parallel = explore(Counter()), explore(Counter(), workers=2)
    assert found(sequential) == [(STEP_RAISES, "statuses raised ValueError: no statuses for 2", 2, 2, None, False)]
    assert found(parallel) == found(sequential)
    assert parallel.state_list == sequential.state_list == [0, 1, 2]
    assert list(parallel.edge_list) == list(sequential.edge_list)


def test_a_received_state_met_here_as_a_renamed_successor_becomes_a_state() -> None:
    # only a canonical that disagrees between workers sends one: the entry of the renamed 2 is
    # not taken for the index of the state received
    part = Partition(Renaming(), True, 0, 2, None)
    part.expand()
    part.finish_level()
    assert part.states == [0, 1]
    part.receive(1, pickle.dumps(([2], array("q", [1]))))
    assert part.states == [0, 1, 2]
    assert list(part.inbox[1]) == [2]
