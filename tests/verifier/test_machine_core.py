"""A machine that writes only the required core gets the optional capabilities' defaults, and
the whole tool chain (search, graph, traces, parallel search) works on it."""

from __future__ import annotations

import os
from collections.abc import Sequence

import pytest
from meerkat_model.machine import Invariant, Machine, Rejected, Stepped
from meerkat_model.verifier import explore, format_trace, shortest_trace


class Lamp(Machine[tuple[bool, int], str]):
    """A lamp switched on and off at most ``limit`` times; nothing but the core."""

    name = "lamp"

    def __init__(self, limit: int = 3) -> None:
        self.limit = limit

    def initial_state(self) -> tuple[bool, int]:
        return (False, 0)

    def actions(self, state: tuple[bool, int]) -> list[str]:
        return ["on", "off"]

    def step(self, state: tuple[bool, int], action: str) -> Stepped[tuple[bool, int]] | Rejected:
        lit, switches = state
        if switches == self.limit or lit == (action == "on"):
            return Rejected("invalid_transition", f"{action} while {'on' if lit else 'off'}")
        return Stepped((action == "on", switches + 1), (), action)

    def invariants(self) -> Sequence[Invariant[tuple[bool, int]]]:
        return [Invariant("bounded", "at most limit switches", lambda s: None if s[1] <= self.limit else "over")]


def test_defaults_of_the_optional_capabilities() -> None:
    lamp = Lamp()
    state = lamp.initial_state()
    assert lamp.canonical(state) is state
    assert list(lamp.obligations(state)) == []
    assert list(lamp.transitions()) == []
    assert lamp.describe(state) == {"state": state}
    assert lamp.action_label("on") == "on"


def test_a_core_only_machine_is_explored_and_traced() -> None:
    lamp = Lamp(limit=3)
    e = explore(lamp)
    assert e.complete and e.ok and e.states == 4 and e.depth == 3 and e.stuck == []
    assert e.coverage.declared == () and e.coverage.undeclared == ("off", "on")
    trace = shortest_trace(e, (True, 3))
    assert [st.label for st in trace] == ["on", "off", "on"]
    assert trace[-1].diff == {"state": ((False, 2), (True, 3))}
    assert "state: (False, 2) -> (True, 3)" in format_trace(e, trace)
    assert e.graph().edges[(False, 0), (True, 1)]["action"] == "on"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the parallel explorer forks")
def test_the_parallel_search_agrees_on_a_core_only_machine() -> None:
    seq, par = explore(Lamp(limit=6)), explore(Lamp(limit=6), workers=2)
    assert par.state_list == seq.state_list and par.edge_list == seq.edge_list
    assert par.coverage == seq.coverage
