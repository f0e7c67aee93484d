"""Checks shared by the verifier tests: a violation's shortest trace replays to the violation."""

from __future__ import annotations

from typing import Any

from meerkat_model.machine import Machine, Stepped
from meerkat_model.verifier import Exploration, shortest_trace
from meerkat_model.verifier.trace import TraceStep


def replayed_violation_trace(machine: Machine[Any, Any], e: Exploration, invariant: str) -> list[TraceStep]:
    """The shortest trace to the first violation of ``invariant`` in ``e``, after asserting that
    its length is the violation's depth and that replaying its actions on concrete states from
    the initial state ends in a state that violates ``invariant``."""
    v = next(v for v in e.violations if v.invariant == invariant)
    trace = shortest_trace(e, e.state_list[v.state_index])
    assert len(trace) == v.depth
    state = machine.initial_state()
    for st in trace:
        result = machine.step(state, st.action)
        assert isinstance(result, Stepped)
        state = result.state
    check = next(i for i in machine.invariants() if i.name == invariant)
    assert check.check(state) is not None
    return trace
