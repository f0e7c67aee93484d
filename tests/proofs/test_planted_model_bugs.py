"""The planted model bugs of docs/proofs.md: each is found by the verifier under the profile the
table names (by one of the checks it names, with a trace that replays), and by the differential
check against the z3 encodings."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from meerkat_model.catalog import PROFILES
from meerkat_model.machine import Bounds, Machine
from meerkat_model.proofs.abstractions import ABSTRACTIONS
from meerkat_model.proofs.differential import compare
from meerkat_model.proofs.runner import ENCODINGS
from meerkat_model.verifier import Exploration, explore
from meerkat_model.verifier.trace import violation_trace

from tests.proofs.model_bugs import PLANTED, PlantedBug

ACCEPT_BOUNDS = Bounds({**PROFILES["tiny"]["session"].values, "control": 1})
"""The verifier has no check for accept_while_retired: the differential check meets it here."""


def test_seventeen_bugs_are_planted() -> None:
    assert len(PLANTED) == 17
    assert len({b.name for b in PLANTED}) == 17


@functools.cache
def _explored(bug: PlantedBug) -> tuple[Machine[Any, Any], Exploration]:
    machine = bug.variant(PROFILES[bug.profile][bug.machine])
    return machine, explore(machine)


@pytest.mark.parametrize("bug", [b for b in PLANTED if b.profile], ids=lambda b: b.name)
def test_the_verifier_finds_the_bug(bug: PlantedBug) -> None:
    _, e = _explored(bug)
    found = {v.invariant for v in e.violations}
    assert found & bug.checks, f"{bug.name}: found {sorted(found)}, expected one of {sorted(bug.checks)}"
    v = next(v for v in e.violations if v.invariant in bug.checks)
    trace = violation_trace(e, v)
    assert len(trace) == v.depth


@pytest.mark.parametrize("bug", PLANTED, ids=lambda b: b.name)
def test_the_differential_check_finds_the_bug(bug: PlantedBug) -> None:
    """On the states of the verifier's trace to the bug (every reachable state of a small
    profile where the verifier has no check for it): the encoding disagrees with the variant."""
    if bug.profile:
        model, e = _explored(bug)
        v = next(v for v in e.violations if v.invariant in bug.checks)
        trace = [st.state for st in violation_trace(e, v)]
        states = [model.initial_state(), *trace, e.state_list[v.state_index]]
    else:
        model = bug.variant(ACCEPT_BOUNDS)
        states = explore(model).state_list
    abstraction = ABSTRACTIONS[bug.machine]()
    encoding = ENCODINGS[bug.machine](abstraction.ids(model))
    report = compare(model, encoding, abstraction, states, limit=1)
    assert not report.ok, f"{bug.name}: no drift over {report.states} states"


def test_show_prints_the_verifier_report_of_one_planted_bug() -> None:
    from tests.cli.commands import command, run

    done = run([*command("scripts/planted_model_bugs.py"), "--show", "cancel_keeps_its_slot"], timeout=120)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "   VIOLATION active_count_matches at depth 2" in done.stdout
    assert "shortest trace from the initial state (changed fields):" in done.stdout
    assert "     2. cancel_operation(0, None)  [cancel_operation]" in done.stdout
    assert done.stdout.rstrip().endswith("verify: FAILED")
