"""An exception raised by an invariant, a step or ``describe`` is a violation of the state (or
step) it was raised on, reported with the shortest trace, sequentially and in parallel; and
``describe`` shows values it cannot decode instead of raising."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from meerkat_model.catalog import PROFILES
from meerkat_model.verifier import explore, summary
from meerkat_model.verifier.report import human
from meerkat_model.verifier.trace import violation_trace

from tests.proofs.model_bugs import PeerReadyUnknownKind, StartRunWithoutPreRunPhase
from tests.verifier.toys import Counter


@pytest.mark.parametrize("workers", [1, 2])
def test_an_invariant_that_raises_is_violated_with_a_trace(workers: int) -> None:
    machine = StartRunWithoutPreRunPhase(PROFILES["tiny"]["session"])
    e = explore(machine, workers=workers)
    by_name = {v.invariant: v for v in e.violations}
    raised = by_name["recovery_matches_memory"]
    assert raised.message == "the check raised ValueError: -1 is not a valid RuntimePhase"
    assert "current_run_has_pre_run_phase" in by_name
    trace = violation_trace(e, raised)
    assert len(trace) == raised.depth and trace[-1].transition == "start_run"
    assert trace[-1].diff["pre_run"] == (None, "<-1>")  # describe shows the raw value
    report = summary(e)
    assert "VIOLATION recovery_matches_memory" in human(report)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_malformed_kind_is_reported_and_described_raw(workers: int) -> None:
    e = explore(PeerReadyUnknownKind(PROFILES["tiny"]["ops"]), workers=workers)
    by_name = {v.invariant: v for v in e.violations}
    assert by_name["kind_known"].message == "operation 0: unknown kind 2"
    assert "<2>" in by_name["peer_ready_consistent"].message
    trace = violation_trace(e, by_name["kind_known"])
    assert trace[-1].label == "peer_ready(0)"
    assert "(<2>" in trace[-1].diff["op[0]"][1]
    assert human(summary(e))


class _Undescribable(Counter):
    def describe(self, state: int) -> Mapping[str, Any]:
        if state == 3:
            raise KeyError("no view of 3")
        return super().describe(state)


@pytest.mark.parametrize("workers", [1, 2])
def test_describe_that_raises_is_a_violation_and_the_report_shows_the_raw_state(workers: int) -> None:
    machine = _Undescribable(limit=5)
    e = explore(machine, check_describe=True, workers=workers)
    (v,) = e.violations
    assert v.invariant == "describe_raises_nothing" and v.depth == 3
    assert v.message == "the check raised KeyError: 'no view of 3'"
    trace = violation_trace(e, v)
    assert trace[-1].diff["state"] == (None, "3")
    assert "describe raised" in trace[-1].diff
    assert explore(machine).ok  # describe is only checked on request
