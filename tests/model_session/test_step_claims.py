"""The claims the step memory shares records by (``meerkat_model.session.step_claims``), checked
on every ci state against the clear step: the refusals and self-loops of the steps it names are
a function of the session's status, and a write-failing retire/recover/register/interrupt is the
plain action's step with one fixed refusal where that one writes. Planted steps that break a
claim, and a status key that says too little, are caught here and by the memory's comparison
with the clear step."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable
from typing import Any

import pytest
from meerkat_model.machine import Rejected, Stepped
from meerkat_model.session import SessionMachine, machine
from meerkat_model.session.actions import Recover, SessionAction, Stop, WriteFails
from meerkat_model.session.state import SessionState
from meerkat_model.session.step_claims import (
    WRITE_FAILING_AS_INNER,
    refuses_by_status,
    status_key,
    write_failing_pairs,
)
from meerkat_model.session.step_memo import disagreements
from meerkat_model.vocab import rejections
from meerkat_model.vocab.statuses import InputPhase

from .profiles import session_bounds

Outcome = tuple[Any, ...]


def _outcome(state: SessionState, result: Stepped[SessionState] | Rejected) -> Outcome:
    """A refusal, a self-loop (its outputs and transition), or a move."""
    if not isinstance(result, Stepped):
        return ("refused", result)
    if result.state is state:
        return ("self-loop", result.outputs, result.transition)
    return ("moves",)


def status_claim_breaches(
    m: SessionMachine, states: list[SessionState], key: Callable[[SessionState], Hashable] = status_key
) -> list[tuple[SessionAction, Hashable, set[Outcome]]]:
    """Every (action, key) under which the clear step's refusals and self-loops differ between
    states, for the actions ``refuses_by_status`` names (a key of ``None`` claims nothing)."""
    seen: dict[tuple[SessionAction, Hashable], set[Outcome]] = defaultdict(set)
    for state in states:
        for action in m.actions(state):
            k = key(state)
            if k is not None and refuses_by_status(action):
                seen[(action, k)].add(_outcome(state, m.clear_step(state, action)))
    breaches = []
    for (action, k), outcomes in seen.items():
        shared = {o for o in outcomes if o[0] != "moves"}
        if len(shared) > 1 or (shared and len(outcomes) > 1):
            breaches.append((action, k, outcomes))
    return breaches


def write_failing_breaches(m: SessionMachine, states: list[SessionState]) -> list[str]:
    """Where a write-failing action is not its plain action's step with one fixed refusal where
    the plain step moves."""
    breaches: list[str] = []
    fixed: dict[SessionAction, set[Rejected]] = defaultdict(set)
    for state in states:
        for action in m.actions(state):
            if type(action) is not WriteFails or type(action.inner) not in WRITE_FAILING_AS_INNER:
                continue
            plain = _outcome(state, m.clear_step(state, action.inner))
            failing = m.clear_step(state, action)
            if plain[0] != "moves":
                if _outcome(state, failing) != plain:
                    breaches.append(f"{action} on {state}: {failing} but the plain step gives {plain}")
            elif isinstance(failing, Stepped):
                breaches.append(f"{action} on {state} moves")
            else:
                fixed[action].add(failing)
    breaches += [f"{action} refuses in {len(found)} ways" for action, found in fixed.items() if len(found) > 1]
    return breaches


def test_the_refusals_and_self_loops_of_the_keyed_steps_follow_from_the_status(ci_exploration: Any) -> None:
    m = SessionMachine(session_bounds("ci"), memo=False)
    states = list(ci_exploration.state_list)
    assert not status_claim_breaches(m, states)


def test_the_status_claim_is_checked_on_write_failures_and_refusals(ci_exploration: Any) -> None:
    """The check above is not vacuous: the ci states offer keyed write failures, and keyed steps
    that refuse, loop and move."""
    m = SessionMachine(session_bounds("ci"), memo=False)
    kinds: set[str] = set()
    wrapped = 0
    for state in ci_exploration.state_list[:3000]:
        for action in m.actions(state):
            if refuses_by_status(action):
                kinds.add(_outcome(state, m.clear_step(state, action))[0])
                wrapped += type(action) is WriteFails
    assert kinds == {"refused", "self-loop", "moves"} and wrapped


def test_a_write_failing_action_is_its_plain_step_with_one_fixed_refusal(ci_exploration: Any) -> None:
    m = SessionMachine(session_bounds("ci"), memo=False)
    assert not write_failing_breaches(m, list(ci_exploration.state_list))


def test_every_write_failing_action_the_machine_builds_is_paired_with_its_own_plain_action() -> None:
    m = SessionMachine(session_bounds("ci"))
    memo = m._memo
    assert memo is not None
    pairs = write_failing_pairs(memo._actions)
    assert {type(inner) for _, inner in pairs} == set(WRITE_FAILING_AS_INNER)
    assert all(type(failing) is WriteFails and failing.inner is inner for failing, inner in pairs)


# --- planted divergences ----------------------------------------------------------------------


class StopRefusedWithAnAbandonedInput(SessionMachine):
    """Stop refuses while some input is Abandoned (a refusal that reads more than the status)."""

    def clear_step(self, state: SessionState, action: SessionAction) -> Stepped[SessionState] | Rejected:
        m = state.memory
        abandoned = m is not None and any(r is not None and r.phase is InputPhase.ABANDONED for r in m.rows)
        if type(action) is Stop and abandoned:
            return Rejected(rejections.NOT_READY, "an abandoned input")
        return super().clear_step(state, action)


class RecoverWriteFailureCountsRows(SessionMachine):
    """A failing recovery write names the durable record it would have rewritten (no fixed refusal)."""

    def clear_step(self, state: SessionState, action: SessionAction) -> Stepped[SessionState] | Rejected:
        if action == WriteFails(Recover()):
            plain = super().clear_step(state, Recover())
            if isinstance(plain, Stepped) and plain.state is not state:
                return Rejected(rejections.DURABLE_WRITE_FAILED, f"recover: {state.durable.rows} not rewritten")
        return super().clear_step(state, action)


def test_a_planted_refusal_by_more_than_the_status_is_caught(ci_exploration: Any) -> None:
    states = list(ci_exploration.state_list)
    m = StopRefusedWithAnAbandonedInput(session_bounds("ci"))
    assert status_claim_breaches(m, states)
    found = next(iter(disagreements(m.step, m.clear_step, states, m.actions)), None)
    assert found is not None and type(found[1]) is Stop


def test_a_planted_write_failure_that_is_not_fixed_is_caught(ci_exploration: Any) -> None:
    states = list(ci_exploration.state_list)
    m = RecoverWriteFailureCountsRows(session_bounds("ci"))
    assert write_failing_breaches(m, states)
    found = next(iter(disagreements(m.step, m.clear_step, states, m.actions)), None)
    assert found is not None and found[1] == WriteFails(Recover())


def test_a_status_key_that_says_too_little_is_caught(ci_exploration: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the lanes in the key, starting a run shares the refusal "nothing is queued"."""

    def without_lanes(state: SessionState) -> Hashable:
        m = state.memory
        return None if m is None else (m.registration, m.phase, m.run == -1)

    states = list(ci_exploration.state_list)
    assert status_claim_breaches(SessionMachine(session_bounds("ci"), memo=False), states, without_lanes)
    monkeypatch.setattr(machine, "status_key", without_lanes)
    m = SessionMachine(session_bounds("ci"))
    assert next(iter(disagreements(m.step, m.clear_step, states, m.actions)), None) is not None
