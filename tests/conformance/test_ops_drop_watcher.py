"""The ops harness's ``DropWatcher`` step against the runtime: dropping the last reference to a
pending watch releases it from its operation, exactly as the model's ``drop_watcher`` says; a
registry that keeps dropped watches counted is caught."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from meerkat_conformance.lockstep.disks import make_disk
from meerkat_conformance.lockstep.driver import Lockstep
from meerkat_conformance.lockstep.trace import Disagreement
from meerkat_conformance.ops.adapter import OpsAdapter
from meerkat_model.machine import Bounds
from meerkat_model.ops.actions import (
    CompleteOperation,
    DropWatcher,
    OpsAction,
    ProvisioningSucceeded,
    RegisterOperation,
    RegisterWatcher,
)
from meerkat_model.ops.machine import OpsMachine
from meerkat_model.vocab.statuses import OpKind
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.ops.watch import OneShot
from meerkat_runtime.vocab.operation import TerminalOutcome

BG = int(OpKind.BACKGROUND_TOOL_OP)
SCRIPT: Sequence[OpsAction] = (
    RegisterOperation(0, BG),
    RegisterWatcher(0),
    RegisterWatcher(0),
    DropWatcher(0),
    ProvisioningSucceeded(0),
    DropWatcher(0),
    RegisterWatcher(0),
    CompleteOperation(0, "r1"),
)


class _KeepsDroppedWatches(OpsLifecycleRegistry):
    """The registry before dropped watches were released: a dropped watch stays counted."""

    def _watch_dropped(self, operation_id: str, shot: OneShot[TerminalOutcome]) -> None:
        return None


def _lockstep(registry_class: type[OpsLifecycleRegistry] = OpsLifecycleRegistry) -> Lockstep:
    machine = OpsMachine(Bounds({"ids": 1, "watchers": 2}))
    return Lockstep(machine, OpsAdapter(machine, make_disk("memory"), registry_class=registry_class))


def test_dropped_watches_are_released_as_the_model_says() -> None:
    lockstep = _lockstep()
    try:
        results = [lockstep.apply(action) for action in SCRIPT]
        lockstep.check()
    finally:
        lockstep.close()
    assert results[3].outputs == (("watcher_dropped", 0, 1),)  # type: ignore[union-attr]
    assert results[5].outputs == (("watcher_dropped", 0, 0),)  # type: ignore[union-attr]
    assert ("watchers_resolved", 0, 1, ("completed", "r1")) in results[-1].outputs  # type: ignore[union-attr]
    assert lockstep.tally.disagreements == 0 and "drop_watcher" in lockstep.tally.covered


def test_a_registry_that_keeps_dropped_watches_counted_diverges_at_the_drop() -> None:
    lockstep = _lockstep(_KeepsDroppedWatches)
    try:
        with pytest.raises(Disagreement) as info:
            for action in SCRIPT:
                lockstep.apply(action)
    finally:
        lockstep.close()
    text = str(info.value)
    assert "step 4 returned different results" in text
    assert "drop_watcher(0)" in text
    assert "('watcher_dropped', 0, 1)" in text and "('watcher_dropped', 0, 2)" in text
