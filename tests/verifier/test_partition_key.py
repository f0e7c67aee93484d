"""Ownership by a machine's partition key: the parallel search gives every state with one key to
one worker, finds exactly what the sequential search finds, and, for the session model (keyed
by the state's core less its store), each core's steps are remembered by one worker only."""

from __future__ import annotations

import os
import time
from collections.abc import Hashable
from typing import Any

import pytest
from meerkat_model.catalog import MACHINES, PROFILES
from meerkat_model.machine import Machine, Rejected, Stepped
from meerkat_model.session import SessionMachine
from meerkat_model.session.actions import SessionAction
from meerkat_model.session.state import SessionState
from meerkat_model.session.step_memo import core
from meerkat_model.verifier import Exploration, explore
from meerkat_model.verifier.search import Partition, assemble, owner_function

from tests.verifier.test_parallel import assert_agree
from tests.verifier.toys import Counter

fork_only = pytest.mark.skipif(not hasattr(os, "fork"), reason="the parallel explorer forks")


class Decades(Counter):
    """A counter whose states are owned by decade: 0-9 by one worker, 10-19 by the next, ..."""

    def partition_key(self, state: int) -> Hashable:
        return state // 10


class OddKeysRaise(Counter):
    """A partition key that raises on odd states (ownership falls back to the state's hash)."""

    def partition_key(self, state: int) -> Hashable:
        if state % 2:
            raise ValueError(f"no key for {state}")
        return ("even", state)


class CountingSession(SessionMachine):
    """The session model counting its clear steps (the step memory's misses)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.clear_steps = 0
        super().__init__(*args, **kwargs)

    def clear_step(self, state: SessionState, action: SessionAction) -> Stepped[SessionState] | Rejected:
        self.clear_steps += 1
        return super().clear_step(state, action)


class FullHashSession(CountingSession):
    """The same, owned by the whole state's hash (the default)."""

    partition_key = Machine.partition_key


def in_process(machines: list[Machine[Any, Any]], *, symmetry: bool = True) -> tuple[list[Partition], Exploration]:
    """The parallel search's levels with one partition per machine object, in this process (each
    object stands for one forked worker, with its own memory); and the assembled exploration."""
    n = len(machines)
    parts = [Partition(m, symmetry, w, n, None) for w, m in enumerate(machines)]
    while any(p.frontier for p in parts):
        for p in parts:
            p.expand()
        inbound: list[list[tuple[int, bytes]]] = [[] for _ in range(n)]
        for sender, p in enumerate(parts):
            for dest, payload in p.outgoing():
                inbound[dest].append((sender, payload))
        for w, p in enumerate(parts):
            for sender, payload in inbound[w]:
                p.receive(sender, payload)
            p.finish_level()
    started = time.perf_counter()
    exploration = assemble(
        machines[0], symmetry, n, [p.result() for p in parts], lambda: time.perf_counter() - started, complete=True
    )
    return parts, exploration


def test_the_owner_is_the_hash_of_the_key_or_of_the_state() -> None:
    plain = owner_function(Counter(), 3)
    assert [plain(s) for s in range(12)] == [hash(s) % 3 for s in range(12)]
    decades = owner_function(Decades(), 3)
    assert [decades(s) for s in range(40)] == [hash(s // 10) % 3 for s in range(40)]
    odd = owner_function(OddKeysRaise(), 2)
    assert [odd(s) for s in range(6)] == [hash(("even", s)) % 2 if s % 2 == 0 else hash(s) % 2 for s in range(6)]
    session = SessionMachine(PROFILES["tiny"]["session"])
    state = session.initial_state()
    by_attributes = tuple(() if a is None else a for a in state.attrs)  # no input accepted: ((), ...)
    assert session.partition_key(state) == by_attributes
    assert owner_function(session, 2)(state) == hash(by_attributes) % 2


@pytest.mark.parametrize("machine", [Decades(limit=35, bad=27), OddKeysRaise(limit=25, bad=17)])
def test_keyed_ownership_finds_what_the_sequential_search_finds(machine: Counter) -> None:
    parts, exploration = in_process([machine, machine])
    assert_agree(explore(machine), exploration)
    owned = [set(p.states) for p in parts]
    assert owned[0] and owned[1] and not owned[0] & owned[1]
    if isinstance(machine, Decades):  # every decade lies in one partition
        for w, states in enumerate(owned):
            assert {s // 10 % 2 for s in states} == {hash(w) % 2}


@fork_only
def test_forked_workers_with_a_key_agree_with_the_sequential_search() -> None:
    for machine in (Decades(limit=35, bad=27), OddKeysRaise(limit=25, bad=17)):
        assert_agree(explore(machine), explore(machine, workers=2))
        assert_agree(explore(machine), explore(machine, workers=3))


@pytest.mark.parametrize("profile", ["small", "wide", "probe"])
def test_session_cores_are_owned_by_one_worker_whose_memory_serves_all_their_states(profile: str) -> None:
    bounds = PROFILES[profile]["session"]
    sequential = CountingSession(bounds)
    seq = explore(sequential)
    keyed = [CountingSession(bounds), CountingSession(bounds)]
    parts, par = in_process(list(keyed))
    assert_agree(seq, par)
    cores = [{core(s) for s in p.states} for p in parts]
    assert cores[0] and cores[1] and not cores[0] & cores[1]
    # every core's steps are remembered once, as in the sequential search (the clear steps
    # behind what the workers share by status or by what a step reads are taken by each)
    assert sum(len(m._memo or ()) for m in keyed) == len(sequential._memo or ())
    # owned by the whole state, most cores are split and remembered by both workers
    hashed = [FullHashSession(bounds), FullHashSession(bounds)]
    hashed_parts, hashed_par = in_process(list(hashed))
    assert_agree(seq, hashed_par)
    split = {core(s) for s in hashed_parts[0].states} & {core(s) for s in hashed_parts[1].states}
    assert split
    assert sum(len(m._memo or ()) for m in hashed) > len(sequential._memo or ())
    assert sum(m.clear_steps for m in hashed) > sequential.clear_steps


def test_the_catalog_machines_keep_or_declare_their_key() -> None:
    """Only the session model keys ownership by a part of the state; the others by the state."""
    for name, build in MACHINES.items():
        machine = build(PROFILES["tiny"][name])
        keyed = type(machine).partition_key is not Machine.partition_key
        assert keyed == (name == "session"), name
