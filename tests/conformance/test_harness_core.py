"""The harness's own machinery: outcomes, diffs, traces, lockstep, replay and report."""

from __future__ import annotations

from typing import Any

import pytest
from meerkat_conformance.cli.report import format_report
from meerkat_conformance.lockstep.diff import diff_values
from meerkat_conformance.lockstep.driver import Lockstep
from meerkat_conformance.lockstep.outcome import Err, Ok, outcomes_agree
from meerkat_conformance.lockstep.trace import Disagreement
from meerkat_conformance.replay.walk import replay_graph

from tests.conformance.toy import ToyAdapter, ToyMachine, toy_graph


def test_outcomes_compare_values_and_error_kinds_only() -> None:
    assert outcomes_agree(Ok(1), Ok(1))
    assert not outcomes_agree(Ok(1), Ok(2))
    assert outcomes_agree(Err("not_found", "model words"), Err("not_found", "runtime words"))
    assert not outcomes_agree(Err("not_found"), Err("invalid_transition"))
    assert not outcomes_agree(Ok(None), Err("not_found"))


def test_diff_names_the_path_of_each_difference() -> None:
    model = {"ops": {"op-0": {"status": "running", "seq": 1}}, "feed": [1, 2]}
    runtime = {"ops": {"op-0": {"status": "completed", "seq": 1}, "op-1": {}}, "feed": [1, 3]}
    rendered = [d.render() for d in diff_values(model, runtime)]
    assert rendered == [
        "ops.op-0.status: model 'running' | runtime 'completed'",
        "ops.op-1: model <absent> | runtime {}",
        "feed.1: model 2 | runtime 3",
    ]
    assert diff_values(model, model) == []
    assert [d.path for d in diff_values([1], [1, 2])] == [""]


def test_lockstep_agrees_with_a_faithful_runtime() -> None:
    machine = ToyMachine()
    lock = Lockstep(machine, ToyAdapter(machine))
    for action in [("start", 0), ("finish", 0), ("finish", 0), ("reset",), ("start", 1)]:
        lock.apply(action)
    assert lock.tally.steps == 5
    assert lock.tally.rejections == 1
    assert lock.tally.covered == {"start", "finish", "reset"}
    assert lock.tally.disagreements == 0


def test_lockstep_reports_a_wrong_result_with_a_side_by_side_trace() -> None:
    machine = ToyMachine()
    lock = Lockstep(machine, ToyAdapter(machine, bug="finish_twice"))
    lock.apply(("start", 0))
    lock.apply(("finish", 0))
    with pytest.raises(Disagreement) as info:
        lock.apply(("finish", 0))
    text = str(info.value)
    assert "returned different results" in text
    last = text.splitlines()[-1]
    assert "finish(0)" in last and "error invalid_transition" in last and "ok 'job-0'" in last
    assert last.endswith("<-- differs")


def test_lockstep_reports_a_state_difference_by_field() -> None:
    machine = ToyMachine()
    lock = Lockstep(machine, ToyAdapter(machine, bug="reset_keeps_done"))
    lock.apply(("start", 0))
    lock.apply(("finish", 0))
    with pytest.raises(Disagreement) as info:
        lock.apply(("reset",))
    assert info.value.reason == "observable state differs"
    assert [d.render() for d in info.value.differences] == ["job-0: model 'idle' | runtime 'done'"]
    assert "job-0: model 'idle' | runtime 'done'" in str(info.value)


def test_replay_walks_every_edge_of_the_graph() -> None:
    machine = ToyMachine()
    graph = toy_graph(machine)
    made: list[ToyAdapter] = []

    def make() -> ToyAdapter:
        made.append(ToyAdapter(machine))
        return made[-1]

    seen: list[int] = []
    result = replay_graph(machine, graph, make, progress=lambda p: seen.append(p.edges_covered), progress_every=0.0)
    assert result.complete
    assert result.edges_total == graph.number_of_edges() > 0
    assert result.edges_covered == result.edges_total
    assert result.transitions_in_graph == {"start", "finish", "reset"}
    assert result.tally.covered == {"start", "finish", "reset"}
    assert result.probes > 0
    assert seen[-1] == result.edges_total
    assert all(adapter.closed for adapter in made)


def test_replay_finds_a_planted_bug() -> None:
    machine = ToyMachine()
    graph = toy_graph(machine)
    with pytest.raises(Disagreement) as info:
        replay_graph(machine, graph, lambda: ToyAdapter(machine, bug="reset_keeps_done"))
    assert "runtime 'done'" in str(info.value)


def test_report_lists_coverage_and_counts() -> None:
    machine = ToyMachine()
    lock = Lockstep(machine, ToyAdapter(machine))
    lock.apply(("start", 0))
    lock.tally.examples = 1
    text = format_report([lock.tally])
    assert "machine toy:" in text
    assert "transitions covered   1/3 (33.3%)" in text
    assert "not covered           finish, reset" in text


class _RaisingModel(ToyMachine):
    """A model whose step raises on finishing job 1 (a malformed value it cannot handle)."""

    def step(self, state: Any, action: Any) -> Any:
        if tuple(action) == ("finish", 1):
            raise ValueError("2 is not a valid OpKind")
        return super().step(state, action)


def test_a_model_that_raises_is_a_disagreement_with_the_trace_not_a_crash() -> None:
    machine = _RaisingModel()
    lock = Lockstep(machine, ToyAdapter(machine))
    lock.apply(("start", 1))
    with pytest.raises(Disagreement) as info:
        lock.apply(("finish", 1))
    assert "the model raised ValueError: 2 is not a valid OpKind" in info.value.reason
    assert "start" in info.value.render()
    assert lock.tally.disagreements == 1
