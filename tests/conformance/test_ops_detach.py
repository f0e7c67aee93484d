"""The ops harness's ``Detach`` step against the runtime: closing the registry releases its
pending watchers and wait with the closing error, exactly as the model's ``Detach`` says."""

from __future__ import annotations

from meerkat_conformance.lockstep.disks import make_disk
from meerkat_conformance.lockstep.outcome import Ok
from meerkat_conformance.ops.adapter import OpsAdapter
from meerkat_model.machine import Bounds
from meerkat_model.ops.actions import (
    CompleteOperation,
    Detach,
    ProvisioningSucceeded,
    RegisterOperation,
    RegisterWatcher,
    WaitAll,
)
from meerkat_model.ops.machine import OpsMachine
from meerkat_model.vocab.statuses import OpKind


def test_detach_releases_the_runtime_s_waiters_as_the_model_says() -> None:
    machine = OpsMachine(Bounds({"ids": 2, "watchers": 2}))
    adapter = OpsAdapter(machine, make_disk("memory"))
    state = machine.initial_state()
    try:
        script = [
            RegisterOperation(0, int(OpKind.BACKGROUND_TOOL_OP)),
            ProvisioningSucceeded(0),
            RegisterOperation(1, int(OpKind.BACKGROUND_TOOL_OP)),
            ProvisioningSucceeded(1),
            CompleteOperation(1, "r1"),
            RegisterWatcher(0),
            RegisterWatcher(0),
            WaitAll((0, 1)),
            Detach(),
        ]
        for action in script:
            stepped = machine.step(state, action)
            got = adapter.execute(action)
            assert got == adapter.expected(action, stepped), action
            state = stepped.state  # type: ignore[union-attr]
            assert adapter.observe() == adapter.model_view(state), action
        assert isinstance(got, Ok)
        assert ("watchers_released", 0, 2) in got.value and ("wait_all_released",) in got.value
    finally:
        adapter.close()
