"""The step memory (``meerkat_model.session.step_memo``) beside the clear steps: every step it
replays equals the clear step's, explorations with and without it are identical, and a step
that reads what the memory assumes it does not read is caught."""

from __future__ import annotations

from typing import Any

from meerkat_model.machine import Rejected, Stepped
from meerkat_model.session import SessionMachine
from meerkat_model.session.actions import Accept, Crash, Register, Retire, SessionAction, Unregister
from meerkat_model.session.state import SessionState, Waiter, with_waiter
from meerkat_model.session.step_memo import StepMemo, disagreements
from meerkat_model.verifier.explore import explore

from .helpers import accept, run
from .profiles import session_bounds


def test_every_step_of_the_ci_states_agrees_with_the_clear_step(ci_exploration: Any) -> None:
    m = SessionMachine(session_bounds("ci"))
    states = list(ci_exploration.state_list)
    assert not list(disagreements(m.step, m.clear_step, states, m.actions))
    assert len(m._memo or ()) < len(states) / 5  # the memory was used: states share cores


def test_explorations_with_and_without_the_memory_are_identical() -> None:
    for profile in ("tiny", "small", "probe", "ci"):
        memo = explore(SessionMachine(session_bounds(profile)), workers=1)
        clear = explore(SessionMachine(session_bounds(profile), memo=False), workers=1)
        assert memo.state_list == clear.state_list, profile
        assert memo.edge_list == clear.edge_list, profile
        assert (memo.depths, memo.parents) == (clear.depths, clear.parents), profile
        assert memo.violations == clear.violations and memo.stuck == clear.stuck, profile


def _stepped_actions(m: SessionMachine, state: SessionState) -> list[SessionAction]:
    return [a for a in m.actions(state) if isinstance(m.clear_step(state, a), Stepped)]


def test_the_search_steps_every_action_the_clear_step_takes_in_order(ci_exploration: Any) -> None:
    """``search_actions`` drops exactly the actions the clear step refuses, keeping the order."""
    m = SessionMachine(session_bounds("ci"))
    for state in ci_exploration.state_list:
        assert list(m.search_actions(state)) == _stepped_actions(m, state), state
    clear = SessionMachine(session_bounds("ci"), memo=False)
    state = ci_exploration.state_list[-1]
    assert clear.search_actions(state) == clear.actions(state)


def test_a_planted_refusal_by_a_resolved_outcome_is_caught_in_the_search_actions(ci_exploration: Any) -> None:
    m = RetireRefusedAfterACancellation(session_bounds("ci"))
    wrong = [s for s in ci_exploration.state_list if list(m.search_actions(s)) != _stepped_actions(m, s)]
    assert wrong


def test_a_machine_that_overrides_step_is_searched_with_every_action() -> None:
    class Overridden(SessionMachine):
        def step(self, state: SessionState, action: SessionAction) -> Stepped[SessionState] | Rejected:
            return super().step(state, action)

    m = Overridden(session_bounds("ci"))
    state = run(m, m.initial_state(), Register())
    assert m.search_actions(state) == m.actions(state)


def test_parallel_explorations_with_and_without_the_memory_are_identical() -> None:
    memo = explore(SessionMachine(session_bounds("small")), workers=2)
    clear = explore(SessionMachine(session_bounds("small"), memo=False), workers=2)
    assert (memo.state_list, memo.edge_list) == (clear.state_list, clear.edge_list)


def test_a_replayed_step_keeps_the_states_own_resolved_handles_and_resolves_its_pending_ones() -> None:
    m = SessionMachine(session_bounds("ci"))
    base = run(m, m.initial_state(), Register(), accept(0), accept(1))
    completed = base._replace(waiters=with_waiter(base.waiters, 0, Waiter.COMPLETED))
    cancelled = base._replace(waiters=with_waiter(base.waiters, 0, Waiter.CANCELLED))
    for state in (completed, cancelled):  # the first records the step, the second replays it
        got, want = m.step(state, Retire()), m.clear_step(state, Retire())
        assert isinstance(got, Stepped) and isinstance(want, Stepped)
        assert (got.state, got.outputs, got.transition) == (want.state, want.outputs, want.transition)
        assert got.state.waiters == (state.waiters[0], Waiter.TERMINATED_RETIRED)
        assert ("resolved", 0, "terminated_retired") not in got.outputs


def test_a_self_loop_is_the_state_itself() -> None:
    m = SessionMachine(session_bounds("ci"))
    state = run(m, m.initial_state(), Register())
    for _ in range(2):
        result = m.step(state, Register())
        assert isinstance(result, Stepped) and result.state is state


def test_an_action_the_machine_did_not_build_takes_the_clear_step() -> None:
    m = SessionMachine(session_bounds("ci"))
    state = run(m, m.initial_state(), Register())
    memo = m._memo
    assert memo is not None
    assert m.step(state, accept(0)) == m.clear_step(state, accept(0))
    assert all(record is None for records in memo._cores.values() for record in records)


# --- planted divergences: steps that break what the memory relies on ---------------------------


class CrashKeepsCompletedHandles(SessionMachine):
    """A crash drops every handle but the completed ones (a step that tells resolved outcomes
    apart)."""

    def clear_step(self, state: SessionState, action: SessionAction) -> Stepped[SessionState] | Rejected:
        result = super().clear_step(state, action)
        if type(action) is Crash and isinstance(result, Stepped):
            kept = tuple(
                w if w is Waiter.COMPLETED else new for w, new in zip(state.waiters, result.state.waiters, strict=True)
            )
            return Stepped(result.state._replace(waiters=kept), result.outputs, result.transition)
        return result


class RetireRefusedAfterACancellation(SessionMachine):
    """Retire is refused while some handle was cancelled (a step deciding by a resolved outcome)."""

    def clear_step(self, state: SessionState, action: SessionAction) -> Stepped[SessionState] | Rejected:
        if type(action) is Retire and Waiter.CANCELLED in state.waiters:
            return Rejected("not_ready", "a cancelled handle")
        return super().clear_step(state, action)


class UnregisterForgetsCompletedHandles(SessionMachine):
    """Unregistering also drops the completed handles (a step recorded from one run, with every
    handle pending, that changes a handle which is not pending)."""

    def clear_step(self, state: SessionState, action: SessionAction) -> Stepped[SessionState] | Rejected:
        result = super().clear_step(state, action)
        if type(action) is Unregister and isinstance(result, Stepped):
            kept = tuple(Waiter.NONE if w is Waiter.COMPLETED else w for w in result.state.waiters)
            return Stepped(result.state._replace(waiters=kept), result.outputs, result.transition)
        return result


class RetireKeepsPhaseWithPendingHandles(SessionMachine):
    """Retire moves only when no handle is pending (a step deciding its effect on the core by
    the handles, recorded from one run)."""

    def clear_step(self, state: SessionState, action: SessionAction) -> Stepped[SessionState] | Rejected:
        if type(action) is Retire and Waiter.PENDING in state.waiters:
            return Stepped(state, (("already_retired",),), "retire_noop")
        return super().clear_step(state, action)


PLANTED = {
    CrashKeepsCompletedHandles: Crash,
    RetireRefusedAfterACancellation: Retire,
    UnregisterForgetsCompletedHandles: Unregister,
    RetireKeepsPhaseWithPendingHandles: Retire,
}


def test_planted_steps_that_read_resolved_outcomes_are_caught(ci_exploration: Any) -> None:
    states = list(ci_exploration.state_list)
    for cls, action_type in PLANTED.items():
        m = cls(session_bounds("ci"))
        found = next(iter(disagreements(m.step, m.clear_step, states, m.actions)), None)
        assert found is not None, cls.__name__
        _, action, got, want = found
        assert got != want
        assert type(action) is action_type, cls.__name__


def test_only_accepts_and_crashes_are_recorded_from_two_runs() -> None:
    m = SessionMachine(session_bounds("ci"))
    memo = m._memo
    assert memo is not None
    two_runs = {type(a) for a, single in zip(memo._actions, memo._single, strict=True) if not single}
    assert two_runs == {Accept, Crash}


def test_a_step_whose_outputs_disagree_between_the_probes_is_never_remembered() -> None:
    """A step naming a handle it did not resolve fails the probes' self-check: always clear."""

    def clear(state: SessionState, action: Any) -> Stepped[SessionState] | Rejected:
        return Stepped(state, tuple(("handle", i, int(w)) for i, w in enumerate(state.waiters)), "noop")

    m = SessionMachine(session_bounds("ci"))
    memo = StepMemo(clear, [Register()])
    register = memo._actions[0]
    state = run(m, m.initial_state(), Register(), accept(0))
    done = state._replace(waiters=with_waiter(state.waiters, 0, Waiter.COMPLETED))
    for s in (state, done):
        assert memo.step(s, register) == clear(s, register)
