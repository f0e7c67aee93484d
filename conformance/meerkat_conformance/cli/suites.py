"""The machines the harness checks, and how to build each side for them.

A :class:`Suite` names the model machine (a key of ``meerkat_model.catalog.MACHINES``), the
Hypothesis lockstep machine class, a factory for replay adapters, and what the directed
scenarios (:mod:`~meerkat_conformance.lockstep.scenarios`) need: how a harness action maps to
model actions, the harness's extra actions and what the runtime does on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from meerkat_model.catalog import MACHINES
from meerkat_model.machine import Bounds, Machine

from meerkat_conformance.lockstep.adapter import RuntimeAdapter
from meerkat_conformance.lockstep.disks import DiskKind, make_disk

if TYPE_CHECKING:  # Hypothesis (the conformance extra) is imported only when a suite runs.
    from meerkat_conformance.lockstep.scenarios import Scenario
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
    load_scenario_parts: Callable[[], ScenarioParts] = field(default=lambda: ScenarioParts())
    scenario_bounds: dict[str, int] = field(default_factory=dict)
    """Bounds the directed-scenario search narrows the lockstep class's bounds to (a smaller
    model finds the same paths sooner; the paths then run on the lockstep class's model)."""

    def model(self, bounds: Bounds) -> Machine[Any, Any]:
        return MACHINES[self.name](bounds)

    def steering(self) -> Callable[[Hashable], Hashable | None]:
        return self.steer if self.steer is not None else _identity


@dataclass(frozen=True, slots=True)
class ScenarioParts:
    """``plan(machine, harness_action, state)``: the model actions a harness action stands
    for; ``extras``: harness actions that steer no model action; ``moves``: what the runtime
    does on its own; ``context``: see below."""

    plan: Callable[[Machine[Any, Any], Hashable, Any], Sequence[Hashable]] = lambda m, a, s: (a,)
    extras: tuple[Hashable, ...] = ()
    moves: Callable[[Machine[Any, Any], Any], Sequence[Hashable]] | None = None
    context: Callable[[Any], Hashable] | None = None
    """A coarse picture of a model state: each transition then gets a path from every picture
    it fires from within ``context_states`` states of the search (see ``directed_paths``)."""
    context_states: int = 0
    written: Callable[[Machine[Any, Any]], Sequence[Scenario]] | None = None
    """Fixed scenarios for states the shortest-path search never picks (a history the model
    does not tell apart, a path longer than the search goes): given the model they run on."""
    written_bounds: dict[str, int] = field(default_factory=dict)
    """Bounds the written scenarios widen the lockstep class's bounds to."""


def _identity(action: Hashable) -> Hashable | None:
    return action


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


def _ops_scenarios() -> ScenarioParts:
    from meerkat_model.ops.machine import OpsMachine

    from meerkat_conformance.ops.adapter import HARNESS_EXTRAS, harness_plan, scenario_context
    from meerkat_conformance.ops.written import WRITTEN_BOUNDS, written_scenarios

    def written(machine: Machine[Any, Any]) -> Sequence[Scenario]:
        assert isinstance(machine, OpsMachine)
        return written_scenarios(machine.bounds)

    return ScenarioParts(
        lambda m, a, s: harness_plan(a, s),
        HARNESS_EXTRAS,
        None,
        scenario_context,
        3000,
        written=written,
        written_bounds=WRITTEN_BOUNDS,
    )


def _session_scenarios() -> ScenarioParts:
    from meerkat_model.session.machine import SessionMachine

    from meerkat_conformance.session.adapter import HARNESS_EXTRAS, harness_plan, runtime_moves, scenario_context
    from meerkat_conformance.session.written import WRITTEN

    def plan(machine: Machine[Any, Any], action: Hashable, state: Any) -> Sequence[Hashable]:
        assert isinstance(machine, SessionMachine)
        return harness_plan(machine, action, state)

    return ScenarioParts(
        plan, HARNESS_EXTRAS, runtime_moves, scenario_context, context_states=2000, written=lambda machine: WRITTEN
    )


SUITES: dict[str, Suite] = {
    "ops": Suite("ops", _ops_lockstep, _ops_adapter, load_scenario_parts=_ops_scenarios),
    "session": Suite(
        "session",
        _session_lockstep,
        _session_adapter,
        steer=_session_steer,
        load_scenario_parts=_session_scenarios,
        scenario_bounds={"inputs": 2, "steer": 0, "ephemeral": 0},
    ),
}
