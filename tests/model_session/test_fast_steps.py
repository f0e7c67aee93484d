"""The fast steps (``meerkat_model.session.fast_steps``) beside the clear steps: equal on every ci
state (and on its core with every handle pending, or every handle resolved, as the step memory
runs them), the claims they rest on (``step_claims.BY_STORE``, ``COMMITS``, ``BOUNDARY_COMMITS``)
hold on every ci state, and planted steps that read more than the claims say are caught."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from meerkat_model.machine import Rejected, Stepped
from meerkat_model.session import SessionMachine
from meerkat_model.session.actions import Crash, SessionAction, Stop
from meerkat_model.session.durable import boundary_commit, full_commit
from meerkat_model.session.state import SessionState, Waiter
from meerkat_model.session.step_claims import (
    BY_STORE,
    COMMITS,
    commits_a_boundary,
    commits_only,
    reads_only_the_store,
    store_key,
)

from .profiles import session_bounds

StepResult = Stepped[SessionState] | Rejected


def _variants(state: SessionState) -> list[SessionState]:
    """``state``, and its core with every handle pending and with every handle resolved."""
    n = len(state.waiters)
    return [
        state,
        state._replace(waiters=(Waiter.PENDING,) * n),
        state._replace(waiters=(Waiter.COMPLETED,) * n),
    ]


def _agree(state: SessionState, got: StepResult, want: StepResult) -> bool:
    if isinstance(got, Stepped) and isinstance(want, Stepped):
        same = (got.state is state) == (want.state is state)
        return same and (got.state, got.outputs, got.transition) == (want.state, want.outputs, want.transition)
    return got == want


def fast_disagreements(m: SessionMachine, states: list[SessionState]) -> list[tuple[SessionState, SessionAction]]:
    """Every (state, action) of ``states`` and their handle variants where the fast step differs
    from the clear step."""
    fast = m._fast
    assert fast is not None
    found = []
    for state in states:
        for action in m.actions(state):
            for variant in _variants(state):
                if not _agree(variant, fast.step(variant, action), m.clear_step(variant, action)):
                    found.append((variant, action))
    return found


def claim_breaches(m: SessionMachine, states: list[SessionState]) -> list[str]:
    """Where a step in ``BY_STORE``, ``COMMITS`` or ``BOUNDARY_COMMITS`` reads or writes more than
    its claim says."""
    breaches: list[str] = []
    seen: dict[tuple[Any, ...], set[Any]] = defaultdict(set)
    for state in states:
        for action in m.actions(state):
            if not (reads_only_the_store(action) or commits_only(action) or commits_a_boundary(action)):
                continue
            for variant in _variants(state):
                if reads_only_the_store(action):
                    result = m.clear_step(variant, action)
                    if isinstance(result, Stepped):
                        seen[(action, store_key(variant), variant.waiters)].add(
                            (result.state, result.outputs, result.transition)
                        )
                    continue
                raw = m.bind(action)(variant)
                if not isinstance(raw, Stepped) or raw.state is variant:
                    continue
                after = raw.state
                if after.memory is None:
                    breaches.append(f"{action} on {variant} drops memory")
                    continue
                if commits_only(action):
                    committed = full_commit(variant.attrs, variant.durable, after.memory)
                else:
                    assert variant.memory is not None
                    committed = boundary_commit(variant.attrs, variant.durable, after.memory, variant.memory.run)
                if after.attrs != variant.attrs or after.durable != committed:
                    breaches.append(f"{action} on {variant} writes more than a commit")
                seen[(action, variant.attrs, variant.memory, variant.destroyed, variant.waiters)].add(
                    (after.memory, after.waiters, after.destroyed, raw.outputs, raw.transition)
                )
    breaches += [f"{key[0]}: {len(found)} results by one key" for key, found in seen.items() if len(found) > 1]
    return breaches


def test_the_fast_steps_agree_with_the_clear_steps_on_every_ci_state(ci_exploration: Any) -> None:
    m = SessionMachine(session_bounds("ci"))
    assert not fast_disagreements(m, list(ci_exploration.state_list))


def test_the_claims_of_the_fast_steps_hold_on_every_ci_state(ci_exploration: Any) -> None:
    m = SessionMachine(session_bounds("ci"), memo=False)
    assert not claim_breaches(m, list(ci_exploration.state_list))


def test_every_claimed_step_is_offered_by_the_ci_profile(ci_exploration: Any) -> None:
    """The checks above are not vacuous: every step the claims name moves on some ci state."""
    m = SessionMachine(session_bounds("ci"), memo=False)
    moved = {
        type(a)
        for s in ci_exploration.state_list[:5000]
        for a in m.actions(s)
        if isinstance(r := m.clear_step(s, a), Stepped) and r.state is not s
    }
    assert moved >= BY_STORE | COMMITS


# --- planted divergences ----------------------------------------------------------------------


def _with_extra_output(step: Callable[[SessionState], StepResult], extra: Callable[[SessionState], Any]) -> Any:
    def planted(state: SessionState) -> StepResult:
        result = step(state)
        if isinstance(result, Stepped) and result.state is not state:
            return Stepped(result.state, (*result.outputs, extra(state)), result.transition)
        return result

    return planted


class StopTellsTheStoredRecord(SessionMachine):
    """Stop names the rows the store held (a committing step reading the store)."""

    def bind(self, action: SessionAction, *, write_ok: bool = True) -> Any:
        step = super().bind(action, write_ok=write_ok)
        if type(action) is Stop:
            return _with_extra_output(step, lambda s: ("was", s.durable.rows))
        return step


class CrashTellsThePhase(SessionMachine):
    """A crash names the runtime phase memory held (a store-only step reading memory)."""

    def bind(self, action: SessionAction, *, write_ok: bool = True) -> Any:
        step = super().bind(action, write_ok=write_ok)
        if type(action) is Crash:
            return _with_extra_output(step, lambda s: ("was", s.memory.phase if s.memory else None))
        return step


def test_planted_steps_that_read_more_than_their_claim_are_caught(ci_exploration: Any) -> None:
    states = list(ci_exploration.state_list)
    for cls, action_type in ((StopTellsTheStoredRecord, Stop), (CrashTellsThePhase, Crash)):
        assert claim_breaches(cls(session_bounds("ci"), memo=False), states), cls.__name__
        found = fast_disagreements(cls(session_bounds("ci")), states)
        assert found and {type(a) for _, a in found} == {action_type}, cls.__name__
