"""State helpers: bounds validation and forgetting what a finished input can no longer use."""

from __future__ import annotations

import pytest
from meerkat_model.machine import Bounds
from meerkat_model.session import SessionMachine
from meerkat_model.session.actions import ExecutorFailed, ExecutorSucceeded, StartRun
from meerkat_model.session.bounds import SessionBoundsError
from meerkat_model.session.state import Lane
from meerkat_model.vocab.statuses import AbandonKind

from .helpers import STEER, accept, attached, machine, registered, run


@pytest.mark.parametrize(
    ("values", "names"),
    [
        ({"inputs": 0}, "inputs"),
        ({"inputs": 9}, "inputs"),
        ({"crash": 2}, "crash"),
        ({"steer": -1}, "steer"),
        ({"idem_keys": 4}, "idem_keys"),
    ],
)
def test_bad_bounds_are_refused_naming_the_key(values: dict[str, int], names: str) -> None:
    with pytest.raises(SessionBoundsError, match=names):
        SessionMachine(Bounds(values))


def test_finished_input_forgets_lane_key_and_attempts() -> None:
    m = machine()
    state = run(
        m,
        attached(m),
        accept(0, lane=STEER, skey=0, idem=1),
        StartRun(),
        ExecutorFailed(),
        StartRun(),
        ExecutorSucceeded(1),
    )
    attr = state.attrs[0]
    assert attr is not None
    assert attr.lane is Lane.QUEUE and attr.skey == -1
    assert attr.idem == 1  # still deduplicates
    assert state.memory is not None and state.memory.rows[0] is not None
    assert state.memory.rows[0].attempts == 0
    assert m.observe(state)["inputs"][0]["attempts"] is None


def test_live_input_keeps_its_attributes() -> None:
    m = machine()
    state = run(m, registered(m), accept(0, lane=STEER, skey=0))
    attr = state.attrs[0]
    assert attr is not None and attr.lane is Lane.STEER and attr.skey == 0


def test_exhausted_input_keeps_its_attempt_count() -> None:
    m = machine()
    state = run(m, attached(m), accept(0), *([StartRun(), ExecutorFailed()] * 3))
    row = state.memory.rows[0] if state.memory else None
    assert row is not None and row.reason == AbandonKind.MAX_ATTEMPTS_EXHAUSTED and row.attempts == 3
    assert m.observe(state)["inputs"][0]["attempts"] == 3
