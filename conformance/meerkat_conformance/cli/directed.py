"""The directed-scenario phase of a conformance run, for one suite: find the shortest harness
path to every transition (:func:`~meerkat_conformance.lockstep.scenarios.directed_paths`), replay
each against the runtime, and record the reachable transitions as the run's coverage floor."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from meerkat_model.machine import Bounds

from meerkat_conformance.cli.suites import Suite
from meerkat_conformance.lockstep.disks import DiskKind
from meerkat_conformance.lockstep.scenarios import ScenarioResult, directed_paths, run_scenarios
from meerkat_conformance.lockstep.tally import MachineTally

if TYPE_CHECKING:
    from meerkat_conformance.lockstep.stateful import LockstepStateMachine


def run_directed(
    suite: Suite, lockstep_class: type[LockstepStateMachine], tally: MachineTally, disk: DiskKind
) -> ScenarioResult:
    """Find and replay the directed scenarios of ``suite`` (on ``disk``), counting into
    ``tally`` and setting its ``reachable`` floor. Raises ``Disagreement`` on a difference."""
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
    return result
