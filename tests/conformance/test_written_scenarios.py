"""The written scenarios of both suites are runs the model accepts, the runtime agrees with on
both local disks, and each catches the planted bug it was written for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from meerkat_conformance.cli.suites import SUITES
from meerkat_conformance.lockstep.scenarios import Scenario, run_scenarios
from meerkat_conformance.lockstep.stateful import fresh_tally
from meerkat_conformance.mutants.catalog import MUTANTS
from meerkat_conformance.mutants.planting import plant
from meerkat_model.machine import Bounds, Machine, Stepped
from meerkat_model.ops.actions import WriteFails as OpsWriteFails
from meerkat_model.session.actions import WriteFails as SessionWriteFails

_REPLAY_WRITTEN = """
import sys
from meerkat_model.machine import Bounds
from meerkat_conformance.cli.suites import SUITES
from meerkat_conformance.lockstep.scenarios import run_scenarios
from meerkat_conformance.lockstep.stateful import fresh_tally
from meerkat_conformance.lockstep.trace import Disagreement
suite = SUITES[sys.argv[1]]
parts = suite.load_scenario_parts()
machine = suite.model(Bounds({**suite.load_lockstep().BOUNDS.values, **parts.written_bounds}))
scenarios = [s for s in parts.written(machine) if s.transition == sys.argv[2]]
assert scenarios, sys.argv[2]
try:
    run_scenarios(machine, scenarios, lambda: suite.make_adapter(machine, sys.argv[3]), fresh_tally(machine))
except Disagreement as exc:
    print(str(exc).splitlines()[0])
    sys.exit(1)
"""


def _written(name: str) -> tuple[Machine[object, object], list[Scenario]]:
    suite = SUITES[name]
    parts = suite.load_scenario_parts()
    assert parts.written is not None
    machine = suite.model(Bounds({**suite.load_lockstep().BOUNDS.values, **parts.written_bounds}))
    return machine, list(parts.written(machine))


@pytest.mark.parametrize("name", ["ops", "session"])
def test_the_model_takes_every_step_of_a_written_scenario(name: str) -> None:
    """Only a failing write is refused (by design: the call is rolled back)."""
    machine, scenarios = _written(name)
    plan = SUITES[name].load_scenario_parts().plan
    assert scenarios
    for scenario in scenarios:
        state = machine.initial_state()
        for action in scenario.path:
            for step in plan(machine, action, state):
                result = machine.step(state, step)
                if isinstance(step, (OpsWriteFails, SessionWriteFails)):
                    assert not isinstance(result, Stepped), (scenario.transition, step)
                    continue
                assert isinstance(result, Stepped), (scenario.transition, step, result)
                state = result.state


@pytest.mark.parametrize("disk", ["memory", "sqlite"])
@pytest.mark.parametrize("name", ["ops", "session"])
def test_the_runtime_agrees_with_every_written_scenario(name: str, disk: str) -> None:
    machine, scenarios = _written(name)
    suite = SUITES[name]
    tally = fresh_tally(machine)
    result = run_scenarios(machine, scenarios, lambda: suite.make_adapter(machine, disk), tally)  # type: ignore[arg-type]
    assert result.scenarios == len(scenarios)
    assert tally.disagreements == 0 and tally.crashes >= 1


def test_the_full_feed_scenario_completes_more_operations_than_the_feed_holds() -> None:
    machine, scenarios = _written("ops")
    feed = next(s for s in scenarios if s.transition == "full-completion-feed")
    aborts = [a for a in feed.path if type(a).__name__ == "AbortProvisioning"]
    assert len(aborts) > machine.bounds.feed_capacity  # type: ignore[attr-defined]


CAUGHT: list[tuple[str, str, str, str]] = [
    ("ops-wait-cancel-skips-retention", "ops", "barrier-pins-over-retention", "memory"),
    ("ops-retention-ignores-pins", "ops", "crash-with-pins-over-retention", "memory"),
    ("ops-recovery-skips-retention", "ops", "crash-with-pins-over-retention", "memory"),
    ("journal-drops-pre-evictions", "ops", "barrier-pins-over-retention", "memory"),
    ("journal-ignores-cursors", "ops", "crash-after-compaction", "memory"),
    ("memory-store-keeps-journal", "ops", "crash-after-compaction", "memory"),
    ("sqlite-keeps-journal", "ops", "crash-after-compaction", "sqlite"),
    ("feed-keeps-one-less", "ops", "full-completion-feed", "memory"),
    ("memory-store-duplicate-receipt", "session", "duplicate-receipt-then-crash", "memory"),
    ("rows-marked-written-early", "session", "failed-retire-retried-then-crash", "memory"),
]


@pytest.mark.parametrize(("mutant", "suite", "scenario", "disk"), CAUGHT, ids=[c[0] for c in CAUGHT])
def test_a_written_scenario_catches_the_bug_it_was_written_for(
    mutant: str, suite: str, scenario: str, disk: str, tmp_path: Path
) -> None:
    """Planted in a copy of the runtime, the bug makes its scenario disagree; the runtime as it
    is passes the same scenario (above)."""
    planted = plant(next(m for m in MUTANTS if m.id == mutant), tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(planted), os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run(
        [sys.executable, "-c", _REPLAY_WRITTEN, suite, scenario, disk],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "model and runtime disagree" in done.stdout
