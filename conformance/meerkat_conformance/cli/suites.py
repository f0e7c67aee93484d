"""The machines the harness checks, and how to build each side for them.

A :class:`Suite` names the model machine (a key of ``meerkat_model.catalog.MACHINES``), the
Hypothesis lockstep machine class and a factory for replay adapters.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meerkat_model.catalog import MACHINES
from meerkat_model.machine import Bounds, Machine

from meerkat_conformance.lockstep.adapter import RuntimeAdapter
from meerkat_conformance.lockstep.disks import DiskKind, make_disk

if TYPE_CHECKING:  # Hypothesis (the conformance extra) is imported only when a suite runs.
    from meerkat_conformance.lockstep.stateful import LockstepStateMachine

AdapterFactory = Callable[[Machine[Any, Any], DiskKind], RuntimeAdapter]


@dataclass(frozen=True, slots=True)
class Suite:
    """``lockstep_class`` is imported lazily (``load_lockstep``) so the CLI starts fast."""

    name: str
    load_lockstep: Callable[[], type[LockstepStateMachine]]
    make_adapter: AdapterFactory
    steer: Callable[[Hashable], Hashable | None] | None = None
    """Maps a model action to the harness action that drives it (``None``: identity)."""

    def model(self, bounds: Bounds) -> Machine[Any, Any]:
        return MACHINES[self.name](bounds)


def _ops_lockstep() -> type[LockstepStateMachine]:
    from meerkat_conformance.ops.stateful import OpsLockstepMachine

    return OpsLockstepMachine


def _ops_adapter(machine: Machine[Any, Any], disk: DiskKind) -> RuntimeAdapter:
    from meerkat_model.ops.machine import OpsMachine

    from meerkat_conformance.ops.adapter import OpsAdapter

    assert isinstance(machine, OpsMachine)
    return OpsAdapter(machine, make_disk(disk))


def _session_lockstep() -> type[LockstepStateMachine]:
    from meerkat_conformance.session.stateful import SessionLockstepMachine

    return SessionLockstepMachine


def _session_adapter(machine: Machine[Any, Any], disk: DiskKind) -> RuntimeAdapter:
    from meerkat_model.session.machine import SessionMachine

    from meerkat_conformance.session.adapter import SessionAdapter

    assert isinstance(machine, SessionMachine)
    return SessionAdapter(machine, make_disk(disk))


def _session_steer(action: Hashable) -> Hashable | None:
    from meerkat_conformance.session.adapter import harness_action

    return harness_action(action)


SUITES: dict[str, Suite] = {
    "ops": Suite("ops", _ops_lockstep, _ops_adapter),
    "session": Suite("session", _session_lockstep, _session_adapter, steer=_session_steer),
}
