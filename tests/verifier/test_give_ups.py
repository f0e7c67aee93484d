"""Stranded without give-ups: with the transitions a machine names as give-ups left out, every
state with obligations must still reach one without (work can be finished, not only dropped).
A toy whose only way out is a give-up is caught, the same sequentially and in parallel; the
session model with one recovery step removed is caught under the full catalog bounds, where
the stranded-state check alone passes; every declared give-up is a declared transition."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import pytest
from meerkat_model import catalog
from meerkat_model.machine import Bounds, Stepped
from meerkat_model.session import SessionMachine
from meerkat_model.session.actions import BeginAttach, FinishAttach, SessionAction
from meerkat_model.session.state import SessionState
from meerkat_model.verifier import explore, shortest_trace, summary
from meerkat_model.verifier.report import human

from tests.verifier.toys import DrainIsDropping, Livelock

WORKERS = [1, 2] if hasattr(os, "fork") else [1]


@pytest.mark.parametrize("workers", WORKERS)
def test_work_that_can_only_be_given_up_is_stranded_without_give_ups(workers: int) -> None:
    e = explore(DrainIsDropping(drain=True), workers=workers)
    assert e.complete and e.violations == [] and e.stranded == []
    assert e.stranded_without_give_ups is not None
    assert [e.state_list[i] for i in e.stranded_without_give_ups] == [1, 2]
    assert not e.ok
    report = summary(e)
    assert report["ok"] is False and report["stranded_count"] == 0
    assert report["give_ups"] == {"drain": "the job is dropped, not run"}
    assert report["stranded_without_give_ups_count"] == 2
    first = report["stranded_without_give_ups"][0]
    assert first["depth"] == 1 and first["obligations"] == ["queued job must be drained"]
    assert [step["action"] for step in first["trace"]] == ["queue"]
    text = human(report)
    assert "   stranded states 0" in text
    assert "STRANDED without give-ups 2" in text and "1 give-up(s) left out: drain" in text
    json.dumps(report)


def test_without_declared_give_ups_both_checks_agree() -> None:
    e = explore(Livelock(drain=True))
    assert e.stranded == [] and e.stranded_without_give_ups == [] and e.ok
    assert "no give-up declared" in human(summary(e))
    e = explore(Livelock())
    assert e.stranded and e.stranded_without_give_ups == e.stranded


def test_an_incomplete_exploration_judges_neither() -> None:
    e = explore(DrainIsDropping(drain=True), max_states=2)
    assert not e.complete and e.stranded is None and e.stranded_without_give_ups is None
    report = summary(e)
    assert report["stranded_without_give_ups_count"] is None
    assert "without give-ups" not in human(report)


@pytest.mark.parametrize(
    ("profile", "machine"), [(p, m) for p in sorted(catalog.PROFILES) for m in sorted(catalog.PROFILES[p])]
)
def test_every_give_up_is_a_declared_transition_with_a_reason(profile: str, machine: str) -> None:
    m = catalog.MACHINES[machine](catalog.PROFILES[profile][machine])
    declared = {t.name for t in m.transitions()}
    give_ups = m.give_ups()
    assert give_ups, f"{machine} declares no give-up"
    for name, reason in give_ups.items():
        assert name in declared, f"{machine}: give-up {name} is not a declared transition"
        assert reason.strip() and "\n" not in reason


# --- the session model with one recovery step removed, under the full catalog bounds ---------


class WithoutStep(SessionMachine):
    """Planted defect: one action (``FinishAttach``: a loop claimed is never published; or
    ``BeginAttach``: nothing (re-)attaches a loop, after a failed boundary commit or a detach
    included) is never offered. Under the catalog bounds a crash, stop or destroy still clears
    every obligation, so no state is stranded; only the give-ups do."""

    name = "session-without-a-step"

    def __init__(self, removed: type, bounds: Bounds) -> None:
        super().__init__(bounds)
        self.removed = removed

    def actions(self, state: SessionState) -> Sequence[SessionAction]:
        return [a for a in super().actions(state) if not isinstance(a, self.removed)]

    def search_actions(self, state: SessionState) -> Sequence[SessionAction]:
        return [a for a in super().search_actions(state) if not isinstance(a, self.removed)]


def test_the_session_model_finishes_its_work_without_give_ups() -> None:
    e = explore(SessionMachine(catalog.PROFILES["ci"]["session"]), workers=1)
    assert e.complete and e.stranded == [] and e.stranded_without_give_ups == [] and e.ok


@pytest.mark.parametrize(("removed", "workers"), [(FinishAttach, 1), (BeginAttach, 1), (BeginAttach, WORKERS[-1])])
def test_a_session_without_one_recovery_step_is_stranded_without_give_ups(removed: type, workers: int) -> None:
    bounds = catalog.PROFILES["ci"]["session"]
    assert all(bounds.get(k, 0) for k in ("crash", "control", "unregister", "interrupt", "failures", "write_failures"))
    machine = WithoutStep(removed, bounds)
    e = explore(machine, workers=workers)
    assert e.complete and e.violations == [] and e.stuck == []
    assert e.stranded == []  # a give-up always clears the obligations: the stranded check passes
    assert e.stranded_without_give_ups, "the missing recovery step was not found"
    report = summary(e)
    assert report["ok"] is False and report["stranded_without_give_ups_count"] == len(e.stranded_without_give_ups)
    first = report["stranded_without_give_ups"][0]
    assert len(first["trace"]) == first["depth"]
    # the trace replays on concrete states to a state with the same obligations
    index = e.stranded_without_give_ups[0]
    state = machine.initial_state()
    for step in shortest_trace(e, e.state_list[index]):
        result = machine.step(state, step.action)
        assert isinstance(result, Stepped)
        state = result.state
    assert list(machine.obligations(state)) == first["obligations"] != []
    # every way out of those states goes through a give-up
    inside = set(e.stranded_without_give_ups)
    give_ups = set(machine.give_ups())
    for src, dst, _, transition in e.edge_list:
        if src in inside and dst not in inside:
            assert transition in give_ups
    assert "STRANDED without give-ups" in human(report)
