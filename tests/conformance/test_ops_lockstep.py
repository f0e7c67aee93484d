"""The operation registry runs in lockstep with its model under the fast profile, including
crashes (recovery from SQLite) and store faults; a planted bug is found and shown."""

from __future__ import annotations

import pytest
from meerkat_conformance.lockstep.profiles import get_profile
from meerkat_conformance.lockstep.runner import run_lockstep
from meerkat_conformance.lockstep.stateful import fresh_tally
from meerkat_conformance.lockstep.trace import Disagreement
from meerkat_conformance.ops.stateful import OpsLockstepMachine
from meerkat_model.ops.machine import OpsMachine
from meerkat_runtime.ops.registry import OpsLifecycleRegistry


def test_registry_agrees_with_the_model_under_the_fast_profile() -> None:
    tally = fresh_tally(OpsMachine(OpsLockstepMachine.BOUNDS))
    run_lockstep(OpsLockstepMachine, get_profile("fast"), tally)
    assert tally.disagreements == 0
    assert tally.examples >= get_profile("fast").examples
    assert tally.crashes > 0
    assert tally.faults > 0
    assert {"register_operation", "crash_recover", "wait_all_begin"} <= tally.covered, tally.uncovered


class _ProgressNotCounted(OpsLifecycleRegistry):
    """Planted bug: progress reports are accepted but not counted."""

    def report_progress(self, operation_id: str, update: object = None) -> None:
        self.snapshot(operation_id)  # still validates nothing: the bug is the missing count


class _ProgressNotCountedMachine(OpsLockstepMachine):
    REGISTRY_CLASS = _ProgressNotCounted


def test_a_planted_bug_is_reported_as_a_minimal_side_by_side_trace() -> None:
    tally = fresh_tally(OpsMachine(OpsLockstepMachine.BOUNDS))
    with pytest.raises(Disagreement) as info:
        run_lockstep(_ProgressNotCountedMachine, get_profile("fast"), tally)
    text = str(info.value)
    assert "model and runtime disagree on the ops machine" in text
    assert "report_progress(" in text
    assert tally.disagreements > 0
