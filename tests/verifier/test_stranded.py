"""Stranded states (AG EF no obligations): found by a backward search over the explored graph,
the same sequentially and in parallel, reported with shortest traces, failing the run; not
judged on an incomplete exploration. A planted livelock in a toy machine and in the session
model (the only way out of a loop removed) is found; the unmodified session model passes."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import pytest
from meerkat_model import catalog
from meerkat_model.cli import verify
from meerkat_model.machine import Bounds, Stepped
from meerkat_model.session import SessionMachine
from meerkat_model.session.actions import FinishAttach, SessionAction
from meerkat_model.session.state import SessionState
from meerkat_model.verifier import explore, shortest_trace, summary
from meerkat_model.verifier.liveness import stranded_states
from meerkat_model.verifier.report import human

from tests.verifier.toys import Counter, Livelock

FORK = hasattr(os, "fork")


def runs(succ: dict[int, list[int]]) -> tuple[list[int], list[int], list[int]]:
    """``succ`` (source -> targets) as the sources, run ends and targets of ``stranded_states``."""
    sources, ends, targets = [], [], []
    for src, dsts in succ.items():
        sources.append(src)
        targets += dsts
        ends.append(len(targets))
    return sources, ends, targets


def stranded(count: int, free: set[int], succ: dict[int, list[int]]) -> list[int]:
    exits = bytearray(1 if i in free else 0 for i in range(count))
    return stranded_states(count, exits, *runs(succ))


def test_a_cycle_without_a_way_out_is_stranded_and_one_with_a_way_out_is_not() -> None:
    # 0 (free) -> 1 -> 2 -> 1: the cycle 1 <-> 2 never reaches a free state
    assert stranded(3, {0}, {0: [1], 1: [2], 2: [1]}) == [1, 2]
    # the same with 2 -> 0: every state reaches 0
    assert stranded(3, {0}, {0: [1], 1: [2], 2: [1, 0]}) == []


def test_a_way_out_only_through_a_shallower_state_is_found() -> None:
    # 3's only successor is 1 (a lower index), which reaches the free state 0 through 2:
    # the forward sweep leaves 3 for the exact backward search
    assert stranded(5, {0}, {0: [1], 1: [2], 2: [3, 0], 3: [1], 4: [4, 3]}) == []
    # a chain of back edges: 4 -> 3 -> 2 -> 1 -> 0, sources listed in any order
    assert stranded(5, {0}, {4: [3], 1: [0], 3: [2], 2: [1]}) == []


def test_stuck_states_and_self_loops_are_stranded_and_exits_are_not_changed() -> None:
    exits = bytearray([1, 0, 0, 0])
    # 1 has no edges (stuck), 2 only loops on itself, 3 can reach 2 only
    assert stranded_states(4, exits, *runs({0: [1, 2, 3], 2: [2], 3: [2]})) == [1, 2, 3]
    assert exits == bytearray([1, 0, 0, 0])


def test_malformed_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="exit flags"):
        stranded_states(2, bytearray(1), [], [], [])
    with pytest.raises(ValueError, match="sources"):
        stranded_states(1, bytearray(1), [0], [], [])


WORKERS = [1, 2] if FORK else [1]


@pytest.mark.parametrize("workers", WORKERS)
def test_a_toy_livelock_is_stranded_though_nothing_is_stuck(workers: int) -> None:
    machine = Livelock()
    e = explore(machine, workers=workers)
    assert e.complete and e.violations == [] and e.stuck == []
    assert e.stranded is not None and [e.state_list[i] for i in e.stranded] == [1, 2]
    assert not e.ok
    report = summary(e)
    assert report["ok"] is False and report["stranded_checked"] and report["stranded_count"] == 2
    first = report["stranded"][0]
    assert first["depth"] == 1 and first["obligations"] == ["queued job must be drained"]
    assert [step["action"] for step in first["trace"]] == ["queue"]
    assert [step["action"] for step in report["stranded"][1]["trace"]] == ["queue", "spin"]
    text = human(report)
    assert "STRANDED states 2" in text and "depth 1: queued job must be drained" in text
    assert "1. queue  [queue]" in text
    json.dumps(report)  # JSON-ready


@pytest.mark.parametrize("workers", WORKERS)
def test_the_toy_with_a_way_out_passes(workers: int) -> None:
    e = explore(Livelock(drain=True), workers=workers)
    assert e.stranded == [] and e.ok
    report = summary(e)
    assert report["ok"] and report["stranded_count"] == 0 and report["stranded"] == []
    assert "   stranded states 0" in human(report)


def test_a_stuck_state_is_stranded() -> None:
    e = explore(Counter(limit=5, obliged_at=3))
    assert [e.state_list[i] for i in e.stranded or []] == [3]
    assert not e.ok


def test_an_incomplete_exploration_gives_no_verdict() -> None:
    e = explore(Livelock(drain=True), max_states=2)
    assert not e.complete and e.stranded is None
    report = summary(e)
    assert report["stranded_checked"] is False and report["stranded_count"] is None
    assert "stranded states not checked (incomplete exploration)" in human(report)


@pytest.fixture
def livelock(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(catalog.MACHINES, "livelock", Livelock)
    for profile in catalog.PROFILES:
        monkeypatch.setitem(catalog.PROFILES[profile], "livelock", Bounds({"drain": 0}))
    return "livelock"


def test_the_cli_fails_on_stranded_states(livelock: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert verify.main(["--machine", livelock, "--no-prove", "--workers", "1"]) == 1
    out = capsys.readouterr().out
    assert "STRANDED states 2" in out and out.rstrip().endswith("verify: FAILED")
    assert verify.main(["--machine", livelock, "--no-prove", "--set", "drain=1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (report,) = doc["machines"]
    assert doc["ok"] and report["stranded_count"] == 0 and report["stranded_checked"]


def test_the_cli_says_an_incomplete_run_was_not_checked(livelock: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert verify.main(["--machine", livelock, "--no-prove", "--max-states", "2"]) == 1  # incomplete fails
    out = capsys.readouterr().out
    assert "stranded states not checked (incomplete exploration)" in out and "STRANDED" not in out


# --- the session model with the only way out of a loop removed ------------------------------

NO_ESCAPE = Bounds(
    {
        "inputs": 1,
        "steer": 0,
        "idem_keys": 0,
        "super_keys": 0,
        "coalesce": 0,
        "ephemeral": 0,
        "invalid": 0,
        "direct": 0,
        "failures": 1,
        "fatal_errors": 0,
        "interrupt": 0,
        "control": 0,
        "unregister": 0,
        "crash": 0,
        "write_failures": 1,
    }
)
"""Session bounds without the steps that discharge work by giving it up (crash, unregister, the
control operations, interrupt): queued work is only ever discharged by running it."""


class NeverPublishesTheLoop(SessionMachine):
    """Planted defect: the runtime loop is never published (no ``FinishAttach``), so a session
    keeps claiming the attachment and failing to start it (``begin_attach`` / ``attach_failed``)
    forever: it always moves, yet its queued input is never run."""

    name = "session-never-attached"

    def actions(self, state: SessionState) -> Sequence[SessionAction]:
        return [a for a in super().actions(state) if not isinstance(a, FinishAttach)]

    def search_actions(self, state: SessionState) -> Sequence[SessionAction]:
        return [a for a in super().search_actions(state) if not isinstance(a, FinishAttach)]


def test_the_session_model_passes_without_its_escape_hatches() -> None:
    e = explore(SessionMachine(NO_ESCAPE), workers=1)
    assert e.complete and e.violations == [] and e.stuck == [] and e.stranded == [] and e.ok


@pytest.mark.parametrize("workers", WORKERS)
def test_a_session_that_never_publishes_its_loop_strands_its_input(workers: int) -> None:
    machine = NeverPublishesTheLoop(NO_ESCAPE)
    e = explore(machine, workers=workers)
    assert e.complete and e.violations == []
    assert e.stuck == []  # it always moves: the stuck-state check alone misses it
    assert e.stranded, "the livelock was not found"
    report = summary(e)
    assert report["ok"] is False and report["stranded_count"] == len(e.stranded)
    first = report["stranded"][0]
    assert "handle of input 0 is pending" in first["obligations"]
    assert len(first["trace"]) == first["depth"]
    # the trace replays on concrete states to a state with the same obligations
    state = machine.initial_state()
    for step in shortest_trace(e, e.state_list[e.stranded[0]]):
        result = machine.step(state, step.action)
        assert isinstance(result, Stepped)
        state = result.state
    assert list(machine.obligations(state)) == first["obligations"]
    # and from every stranded state the machine can still move, but only to stranded states
    inside = set(e.stranded)
    for src, dst, _, _ in e.edge_list:
        if src in inside:
            assert dst in inside
    assert {t for src, _, _, t in e.edge_list if src in inside} >= {"begin_attach", "attach_failed"}
    assert "STRANDED states" in human(report)
