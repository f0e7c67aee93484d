"""Directed scenarios reach every declared transition against the real runtime, a run that
fires fewer than the reachable transitions fails and names them, and shrinking is bounded."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis.internal.conjecture import engine
from meerkat_conformance.cli import main as cli_main
from meerkat_conformance.cli.directed import run_directed
from meerkat_conformance.cli.report import format_report
from meerkat_conformance.cli.suites import SUITES
from meerkat_conformance.lockstep.disks import make_disk
from meerkat_conformance.lockstep.profiles import get_profile
from meerkat_conformance.lockstep.runner import bounded_shrinking, run_lockstep
from meerkat_conformance.lockstep.scenarios import directed_paths, run_scenarios
from meerkat_conformance.lockstep.stateful import LockstepStateMachine, fresh_tally
from meerkat_conformance.lockstep.tally import MachineTally
from meerkat_conformance.lockstep.trace import Disagreement
from meerkat_conformance.session.adapter import SessionAdapter
from meerkat_conformance.session.stateful import SessionLockstepMachine
from meerkat_model.machine import Bounds
from meerkat_model.session.actions import ExecutorFailedFatal
from meerkat_model.session.machine import SessionMachine

from tests.conformance.session_bugs import BoundaryFailureChargesAttempt, FailedRunLosesInput

DEEP_ONES = ("attach_failed", "executor_failed_exhausted_retired", "accept_superseding", "accept_coalescing")


@pytest.mark.parametrize("name", ["ops", "session"])
def test_directed_scenarios_fire_every_declared_transition_against_the_runtime(name: str) -> None:
    suite = SUITES[name]
    lockstep_class = suite.load_lockstep()
    tally = fresh_tally(suite.model(lockstep_class.BOUNDS))
    result = run_directed(suite, lockstep_class, tally, "memory")
    assert result.unreached == ()
    assert set(tally.reachable) == set(tally.transitions)
    assert tally.below_floor == [], tally.below_floor
    assert tally.disagreements == 0 and tally.scenarios >= len(tally.transitions)
    if name == "session":
        assert set(DEEP_ONES) <= set(tally.covered)


def _session_paths(**bounds: int) -> tuple[SessionMachine, list[object]]:
    suite = SUITES["session"]
    parts = suite.load_scenario_parts()
    machine = suite.model(Bounds({**SessionLockstepMachine.BOUNDS.values, **suite.scenario_bounds, **bounds}))
    assert isinstance(machine, SessionMachine)
    paths = directed_paths(
        machine,
        lambda action, state: parts.plan(machine, action, state),
        suite.steering(),
        extras=parts.extras,
        moves=parts.moves,
    )
    return machine, list(paths)


def test_with_a_context_each_transition_gets_a_path_from_each_picture_it_fires_from() -> None:
    suite = SUITES["session"]
    parts = suite.load_scenario_parts()
    machine = suite.model(Bounds({**SessionLockstepMachine.BOUNDS.values, **suite.scenario_bounds}))
    assert parts.context is not None
    paths = directed_paths(
        machine,
        lambda action, state: parts.plan(machine, action, state),
        suite.steering(),
        extras=parts.extras,
        moves=parts.moves,
        context=parts.context,
        context_states=500,
    )
    pairs = [(s.transition, s.context) for s in paths]
    assert len(pairs) == len(set(pairs))
    failed = {s.context for s in paths if s.transition == "executor_failed"}
    assert len(failed) > 1  # with and without another input waiting, at least
    assert {s.transition for s in paths} == {t.name for t in machine.transitions()}


def test_the_exhausted_retry_path_is_found_as_a_shortest_path() -> None:
    _, paths = _session_paths(fatal_errors=0)  # every error retried: the budget must run out
    by_name = {s.transition: s for s in paths}  # type: ignore[attr-defined]
    exhausted = by_name["executor_failed_exhausted_retired"]
    assert 5 <= len(exhausted.path) <= 10
    assert len(exhausted.path) >= len(by_name["executor_failed_exhausted"].path)
    assert "executor_failed_exhausted_without_loop" not in by_name  # a direct run fails only once
    _, paths = _session_paths()  # an error that is not retried abandons at once
    by_name = {s.transition: s for s in paths}  # type: ignore[attr-defined]
    fatal = by_name["executor_failed_exhausted_retired"]
    assert len(fatal.path) < len(exhausted.path)
    assert fatal.path[-1] == ExecutorFailedFatal()
    assert by_name["executor_failed_exhausted_without_loop"].path[-1] == ExecutorFailedFatal()


@pytest.mark.parametrize("runtime_class", [FailedRunLosesInput, BoundaryFailureChargesAttempt])
def test_directed_scenarios_catch_planted_session_bugs(runtime_class: type) -> None:
    machine, paths = _session_paths()
    tally = fresh_tally(machine)
    with pytest.raises(Disagreement):
        run_scenarios(
            machine,
            paths,  # type: ignore[arg-type]
            lambda: SessionAdapter(machine, make_disk("memory"), runtime_class=runtime_class),
            tally,
        )
    assert tally.disagreements == 1


def test_below_floor_names_the_reachable_transitions_that_never_fired() -> None:
    tally = MachineTally("toy", ("a", "b", "c"), reachable=("a", "b"))
    tally.covered.add("a")
    assert tally.below_floor == ["b"]
    assert "coverage floor        1/2 reachable transitions fired (MISSED: b)" in format_report([tally])
    tally.covered.add("b")
    assert tally.below_floor == []
    assert "(met)" in format_report([tally])


def test_a_run_below_its_floor_fails_and_says_which_it_missed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def floor_with_an_unfireable_transition(suite, lockstep_class, tally, disk, written_disks=()):  # type: ignore[no-untyped-def]
        result = run_directed(suite, lockstep_class, tally, disk, written_disks)
        tally.reachable = (*tally.reachable, "never_fires")
        return result

    monkeypatch.setattr("meerkat_conformance.cli.directed.run_directed", floor_with_an_unfireable_transition)
    argv = ["--profile", "fast", "--machine", "ops", "--replay-profile", "none", "--max-examples", "1"]
    assert cli_main.main(argv) == 1
    out, err = capsys.readouterr()
    assert "coverage floor missed on ops (never_fires)" in out
    assert "1 of 20 reachable transitions never fired: never_fires" in err


def test_shrinking_is_bounded_and_the_bound_restored() -> None:
    before = engine.MAX_SHRINKING_SECONDS
    with bounded_shrinking(0.0):
        assert engine.MAX_SHRINKING_SECONDS == 0.0
    assert before == engine.MAX_SHRINKING_SECONDS
    assert get_profile("fast").shrink_seconds < before


def test_a_failure_is_reported_when_its_shrinking_is_cut_short() -> None:
    """With no time to shrink, the failing example found is reported as it is."""
    attrs = {"RUNTIME_CLASS": FailedRunLosesInput, "DISK": "memory"}
    machine_class: type[LockstepStateMachine] = type("LockstepLosing", (SessionLockstepMachine,), attrs)
    profile = get_profile("fast")
    tally = fresh_tally(SessionMachine(SessionLockstepMachine.BOUNDS))
    with pytest.raises(Disagreement):
        run_lockstep(machine_class, replace(profile, shrink_seconds=0.0), tally, examples=160, steps=20)
