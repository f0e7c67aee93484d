"""Invariant results remembered per core (``meerkat_model.session.check_memo``) beside the clear
checks: equal on every ci state, and a check that reads the handles is caught when it is
wrongly remembered."""

from __future__ import annotations

from typing import Any

from meerkat_model.machine import Invariant
from meerkat_model.session import SessionMachine
from meerkat_model.session.check_memo import remembered, remembered_with_views
from meerkat_model.session.invariants import HANDLE_READERS, invariants_for
from meerkat_model.session.state import SessionState, Waiter

from .profiles import session_bounds


def _results(invariants: tuple[Invariant[SessionState], ...] | Any, states: list[SessionState]) -> list[Any]:
    return [[inv.check(s) for inv in invariants] for s in states]


def test_remembered_invariants_agree_with_the_clear_ones_on_every_ci_state(ci_exploration: Any) -> None:
    states = list(ci_exploration.state_list)
    m = SessionMachine(session_bounds("ci"))
    clear = invariants_for(m.bounds.max_attempts)
    assert [inv.name for inv in m.invariants()] == [inv.name for inv in clear]
    assert _results(m.invariants(), states) == _results(clear, states)


def test_the_invariants_that_read_handles_are_not_remembered() -> None:
    clear = invariants_for(3)
    by_name = {inv.name: inv for inv in remembered(clear, HANDLE_READERS)}
    for inv in clear:
        assert (by_name[inv.name] is inv) == (inv.name in HANDLE_READERS)


def test_a_handle_reading_check_wrongly_remembered_is_caught(ci_exploration: Any) -> None:
    states = list(ci_exploration.state_list)

    def no_cancelled_handle(s: SessionState) -> str | None:
        return "a cancelled handle" if Waiter.CANCELLED in s.waiters else None

    planted = (Invariant("no_cancelled_handle", "", no_cancelled_handle),)
    wrong = remembered(planted, frozenset())
    assert _results(wrong, states) != _results(planted, states)
    assert _results(remembered(planted, {"no_cancelled_handle"}), states) == _results(planted, states)


def test_a_check_that_raises_raises_again_and_is_not_remembered() -> None:
    calls: list[int] = []

    def fragile(s: SessionState) -> str | None:
        calls.append(1)
        raise ValueError("boom")

    (wrapped,) = remembered((Invariant("fragile", "", fragile),), frozenset())
    state = SessionMachine(session_bounds("ci")).initial_state()
    for _ in range(2):
        try:
            wrapped.check(state)
        except ValueError as exc:
            assert str(exc) == "boom"
        else:
            raise AssertionError("the check should raise")
    assert len(calls) == 2


def test_remembered_statuses_agree_with_the_clear_ones_on_every_ci_state(ci_exploration: Any) -> None:
    m = SessionMachine(session_bounds("ci"))
    states = list(ci_exploration.state_list)
    for state in states:
        for inv in m.invariants():  # as the search asks: the invariants, then the statuses
            inv.check(state)
        assert m.statuses(state) == m.clear_statuses(state), state
    assert [m.statuses(s) for s in reversed(states)] == [m.clear_statuses(s) for s in reversed(states)]


def test_a_view_that_reads_the_handles_wrongly_remembered_is_caught(ci_exploration: Any) -> None:
    states = list(ci_exploration.state_list)

    def pending(s: SessionState) -> int:
        return sum(w is Waiter.PENDING for w in s.waiters)

    _, (view,) = remembered_with_views((), frozenset(), (pending,))
    assert [view(s) for s in states] != [pending(s) for s in states]
