"""The ops fast paths agree with the plain model on every state of a profile, and a planted
difference in each of them is caught by the same comparison.

* the remembered terminal, collecting and crash effects (:mod:`meerkat_model.ops.remembered`,
  ``OpsMachine(fast_paths=False)`` runs without them): every probe action on every reachable
  state gives the same result (successor, outputs, transition, or the same rejection);
* the remembering renamings of the canonical form (:class:`Renaming`) against :func:`rename`;
* the memory-part invariants answered together (:class:`MemoryPartChecks`) against each
  invariant run on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from itertools import islice, permutations
from typing import Any

import pytest
from meerkat_model.catalog import PROFILES
from meerkat_model.machine import Bounds
from meerkat_model.ops import OpsMachine
from meerkat_model.ops.invariants import MEMORY_PART_CHECKS, MemoryPartChecks, make_invariants, plain_invariants
from meerkat_model.ops.remembered import TerminalEffects
from meerkat_model.ops.state import RegistryState
from meerkat_model.ops.symmetry import Canonicalizer, Renaming, rename
from meerkat_model.verifier import explore

PROFILE_NAMES = ("ci", "wide", "probe")
"""Two ids with a concurrency limit; three ids and several active operations; rejections."""
STRIDE = {"ci": 2, "wide": 4, "probe": 4}
"""Every N-th state of each profile (a few seconds each; the planted tests use every ci state)."""


@cache
def _states(profile: str) -> list[RegistryState]:
    return list(explore(OpsMachine(PROFILES[profile]["ops"]), symmetry=True).state_list)


class _Lazy(dict[str, list[RegistryState]]):
    def __missing__(self, profile: str) -> list[RegistryState]:
        return _states(profile)


@pytest.fixture(scope="module")
def states() -> dict[str, list[RegistryState]]:
    """The reachable states of each profile, explored when first asked for."""
    return _Lazy()


def step_differences(bounds: Bounds, states: list[RegistryState]) -> Iterator[str]:
    """Every probe action on every state whose result differs between the fast and the plain model."""
    fast, plain = OpsMachine(bounds), OpsMachine(bounds, fast_paths=False)
    for state in states:
        for action in plain.probe_actions(state):
            got, want = fast.step(state, action), plain.step(state, action)
            if got != want:
                yield f"{plain.action_label(action)} on {state}: fast {got}, plain {want}"


def canonical_differences(ids: int, states: list[RegistryState]) -> Iterator[str]:
    """States (and their renamings) whose canonical form is not the smallest plain renaming."""
    canon = Canonicalizer(ids)
    perms = list(permutations(range(ids)))
    for state in states:
        for perm in perms:
            inverse = tuple(sorted(range(ids), key=perm.__getitem__))
            renamed = rename(state, perm, inverse)
            smallest = min(rename(renamed, p, tuple(sorted(range(ids), key=p.__getitem__))) for p in perms)
            if canon.canonical(renamed) != smallest:
                yield f"{renamed}: canonical {canon.canonical(renamed)}, smallest renaming {smallest}"


def invariant_differences(bounds: Bounds, states: list[RegistryState]) -> Iterator[str]:
    """States on which a shared memory-part invariant answers differently from its plain self."""
    ops_bounds = OpsMachine(bounds).bounds
    plain = {inv.name: inv.check for inv in plain_invariants(ops_bounds)}
    shared = make_invariants(ops_bounds)
    for state in states:
        for inv in shared:
            if inv.check(state) != plain[inv.name](state):
                yield f"{inv.name} on {state}"


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_fast_steps_agree_with_the_plain_model_on_every_state(profile: str, states: dict[str, Any]) -> None:
    sample = states[profile][:: STRIDE[profile]]
    assert list(step_differences(PROFILES[profile]["ops"], sample)) == []


@pytest.mark.parametrize("profile", ["ci", "wide"])
def test_both_models_explore_the_same_graph(profile: str) -> None:
    bounds = PROFILES[profile]["ops"]
    fast, plain = explore(OpsMachine(bounds)), explore(OpsMachine(bounds, fast_paths=False))
    assert fast.state_list == plain.state_list
    assert fast.edge_list == plain.edge_list


def test_a_terminal_effect_remembered_without_the_barrier_is_caught(
    states: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def key(self: TerminalEffects, memory: Any, op_id: int, status: int, payload: int, seq: int) -> tuple[Any, ...]:
        return (*memory[:4], op_id, status, payload, seq)  # the barrier left out

    monkeypatch.setattr(TerminalEffects, "key", key)
    found = next(step_differences(PROFILES["ci"]["ops"], states["ci"]), "")
    assert "wait_all_satisfied" in found


def test_a_collection_remembered_wrongly_is_caught(states: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    real = TerminalEffects._collect

    def keeps_barrier_members_collected(self: TerminalEffects, ops: Any, completed: Any, barrier: Any) -> Any:
        return real(self, ops, completed, ())  # barrier members collected too

    monkeypatch.setattr(TerminalEffects, "_collect", keeps_barrier_members_collected)
    found = list(islice(step_differences(PROFILES["ci"]["ops"], states["ci"]), 20))
    assert len(found) == 20
    assert all(problem.startswith("collect_completed") for problem in found)


@pytest.mark.parametrize(("profile", "ids"), [("ci", 2), ("wide", 3)])
def test_the_remembering_canonical_form_is_the_smallest_plain_renaming(
    profile: str, ids: int, states: dict[str, Any]
) -> None:
    assert list(canonical_differences(ids, states[profile][:: STRIDE[profile]])) == []


def test_a_renaming_that_forgets_the_feed_is_caught(states: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Renaming, "feed", lambda self, feed: feed)
    assert next(canonical_differences(2, states["ci"]), None) is not None


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_shared_invariants_agree_with_each_invariant_alone(profile: str, states: dict[str, Any]) -> None:
    assert list(invariant_differences(PROFILES[profile]["ops"], states[profile])) == []


def test_shared_invariants_keyed_without_the_barrier_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    real = MemoryPartChecks.check

    def check(self: MemoryPartChecks, state: RegistryState, k: int) -> str | None:
        return real(self, RegistryState(*state[:4], (), *state[5:]), k)  # the barrier forgotten

    monkeypatch.setattr(MemoryPartChecks, "check", check)
    done = next(s for s in _states("ci") if s.completed and not s.barrier)
    broken = done._replace(barrier=done.completed)  # a barrier on terminal operations only
    problems = list(invariant_differences(PROFILES["ci"]["ops"], [broken]))
    assert problems and problems[0].startswith("barrier_members_tracked")


def test_each_shared_invariant_raises_its_own_exception_alone() -> None:
    calls: list[str] = []

    def fine(state: RegistryState) -> str | None:
        calls.append("fine")
        return None

    def broken(state: RegistryState) -> str | None:
        raise KeyError("boom")

    shared = MemoryPartChecks((fine, broken))
    state = OpsMachine().initial_state()
    assert shared.check(state, 0) is None
    with pytest.raises(KeyError, match="boom"):
        shared.check(state, 1)
    assert shared.check(RegistryState(*state), 0) is None  # an equal state: the results are reused
    assert calls == ["fine"]


def test_every_memory_part_invariant_exists() -> None:
    names = {inv.name for inv in plain_invariants(OpsMachine().bounds)}
    assert names >= MEMORY_PART_CHECKS
    assert len(MEMORY_PART_CHECKS) == 9
