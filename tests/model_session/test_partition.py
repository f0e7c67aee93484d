"""Ownership by attributes (``SessionMachine.partition_key``), checked on every ci state: every
key the session memories share results by holds the attributes (so one worker uses each shared
result), and only accepts give an input attributes (``step_claims.attributes_kept``), so most
successors stay with the worker that found them. A planted step that changes an input's
attributes is caught."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from meerkat_model.machine import Rejected, Stepped
from meerkat_model.session import SessionMachine
from meerkat_model.session.actions import SessionAction, Stop
from meerkat_model.session.state import Attrs, Lane, SessionState
from meerkat_model.session.step_claims import adds_an_input, attributes_kept, store_key
from meerkat_model.session.step_memo import core

from .profiles import session_bounds


def attribute_breaches(m: SessionMachine, states: list[SessionState]) -> list[str]:
    """Every step, other than an accept, whose successor's attributes are not its source's with
    at most some spent ones forgotten."""
    breaches = []
    for state in states:
        for action in m.actions(state):
            result = m.clear_step(state, action)
            moved = isinstance(result, Stepped) and not adds_an_input(action)
            if moved and not attributes_kept(state.attrs, result.state.attrs):
                breaches.append(f"{action} on {state} gives {result.state.attrs}")
    return breaches


class SteeringStop(SessionMachine):
    """Planted: a stop that moves input 0 to the steer lane."""

    def clear_step(self, state: SessionState, action: SessionAction) -> Stepped[SessionState] | Rejected:
        result = super().clear_step(state, action)
        first = state.attrs[0]
        if type(action) is Stop and isinstance(result, Stepped) and first is not None:
            moved = result.state._replace(attrs=(first._replace(lane=Lane.STEER), *result.state.attrs[1:]))
            return Stepped(moved, result.outputs, result.transition)
        return result


def test_only_accepts_give_attributes(ci_exploration: Any) -> None:
    m = SessionMachine(session_bounds("ci"), memo=False)
    assert attribute_breaches(m, ci_exploration.state_list) == []
    planted = SteeringStop(session_bounds("ci"), memo=False)
    assert attribute_breaches(planted, ci_exploration.state_list)


def test_attributes_kept_allows_only_forgetting() -> None:
    steer = Attrs(Lane.STEER, 0, 1, False)
    forgotten = Attrs(Lane.QUEUE, 0, -1, False)
    assert attributes_kept((steer, None), (steer, None))
    assert attributes_kept((steer, None), (forgotten, None))
    assert not attributes_kept((steer, None), (steer, forgotten))
    assert not attributes_kept((forgotten, None), (steer, None))
    assert not attributes_kept((steer,), (Attrs(Lane.QUEUE, 1, -1, False),))
    assert not attributes_kept((steer,), (steer, None))


def test_every_shared_key_holds_the_partition_key(ci_exploration: Any) -> None:
    """The partition key is a function of the attributes alone, and every shared key holds them."""
    m = SessionMachine(session_bounds("ci"))
    keys: dict[Any, Any] = {}
    for state in ci_exploration.state_list:
        key = m.partition_key(state)
        assert keys.setdefault(state.attrs, key) == key
        assert key == tuple(() if a is None else a for a in state.attrs)
        assert core(state)[0] is state.attrs  # the step and invariant memory
        assert store_key(state)[0] is state.attrs  # the fast steps that read only the store


def test_the_partition_key_hashes_alike_in_every_run() -> None:
    """No ``None`` in the key (its hash differs between runs of Python 3.11), so the states split
    between workers the same way each time."""
    m = SessionMachine(session_bounds("ci"))
    state = m.initial_state()
    assert None in state.attrs
    script = (
        "from meerkat_model.catalog import PROFILES; from meerkat_model.session.machine import SessionMachine;"
        "m = SessionMachine(PROFILES['ci']['session']); print(hash(m.partition_key(m.initial_state())))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "PYTHONHASHSEED": "random"}
    runs = {
        subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout
        for _ in range(3)
    }
    assert runs == {f"{hash(m.partition_key(state))}\n"}
