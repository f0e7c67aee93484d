"""The directed-scenario phase of a conformance run, for one suite: find the shortest harness
path to every transition (:func:`~meerkat_conformance.lockstep.scenarios.directed_paths`), replay
each against the runtime, and record the reachable transitions as the run's coverage floor."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from meerkat_model.machine import Bounds, Machine

from meerkat_conformance.cli.suites import Suite
from meerkat_conformance.lockstep.disks import DiskKind
from meerkat_conformance.lockstep.scenarios import Scenario, ScenarioResult, directed_paths, run_scenarios
from meerkat_conformance.lockstep.tally import MachineTally

if TYPE_CHECKING:
    from meerkat_conformance.lockstep.stateful import LockstepStateMachine


def run_directed(
    suite: Suite,
    lockstep_class: type[LockstepStateMachine],
    tally: MachineTally,
    disk: DiskKind,
    written_disks: Sequence[DiskKind] = (),
) -> ScenarioResult:
    """Find and replay the directed scenarios of ``suite`` (on ``disk``), counting into
    ``tally`` and setting its ``reachable`` floor, then replay the suite's written scenarios
    on ``disk`` and on each of ``written_disks``. Raises ``Disagreement`` on a difference."""
    started = time.perf_counter()
    parts = suite.load_scenario_parts()
    bounds = lockstep_class.BOUNDS
    search_model = suite.model(Bounds({**bounds.values, **suite.scenario_bounds}))
    paths = directed_paths(
        search_model,
        lambda action, state: parts.plan(search_model, action, state),
        suite.steering(),
        extras=parts.extras,
        moves=parts.moves,
        context=parts.context,
        context_states=parts.context_states,
    )
    found = time.perf_counter() - started
    machine = suite.model(bounds)
    tally.reachable = tuple(dict.fromkeys((*tally.reachable, *(s.transition for s in paths))))
    result = run_scenarios(machine, paths, lambda: suite.make_adapter(machine, disk), tally)
    tally.scenarios += result.scenarios
    longest = max((len(s.path) for s in paths), default=0)
    print(
        f"[{suite.name} scenarios] {len(tally.reachable)} transitions reachable, {len(paths)} paths (longest "
        f"{longest} steps, "
        f"{result.steps} steps in all): {found:.1f}s to find, {result.elapsed:.1f}s to run",
        file=sys.stderr,
        flush=True,
    )
    if parts.written is not None:
        widened = Bounds({**bounds.values, **parts.written_bounds})
        _run_written(suite, parts.written, widened, tally, disk, written_disks)
    return result


def _run_written(
    suite: Suite,
    written: Callable[[Machine[Any, Any]], Sequence[Scenario]],
    bounds: Bounds,
    tally: MachineTally,
    disk: DiskKind,
    more_disks: Sequence[DiskKind],
) -> None:
    """Replay the written scenarios on a model with ``bounds``, once per distinct disk."""
    machine = suite.model(bounds)
    scenarios = written(machine)
    for kind in dict.fromkeys((disk, *more_disks)):
        result = run_scenarios(machine, scenarios, partial(suite.make_adapter, machine, kind), tally)
        tally.scenarios += result.scenarios
        print(
            f"[{suite.name} scenarios] {result.scenarios} written scenarios on {kind} ({result.steps} steps): "
            f"{result.elapsed:.1f}s to run",
            file=sys.stderr,
            flush=True,
        )
