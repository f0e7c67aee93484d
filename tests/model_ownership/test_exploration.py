"""The ownership model: every invariant holds with fencing; with fencing off the verifier finds
the shortest trace breaking each invariant fencing protects."""

from __future__ import annotations

from typing import Any

import pytest
from meerkat_model.catalog import MACHINES, PROFILES
from meerkat_model.machine import Bounds
from meerkat_model.ownership.machine import OwnershipMachine
from meerkat_model.verifier.explore import explore
from meerkat_model.verifier.trace import shortest_trace

FENCED = (
    "no_input_consumed_twice",
    "consumed_stays_consumed",
    "halt_never_undone",
    "acknowledged_inputs_recoverable",
    "owner_agrees_with_store",
)


def _bounds(**changes: int) -> Bounds:
    return Bounds({**PROFILES["ci"]["ownership"].values, **changes})


@pytest.fixture(scope="module")
def ci_exploration() -> Any:
    return explore(MACHINES["ownership"](PROFILES["ci"]["ownership"]))


@pytest.fixture(scope="module")
def unfenced_exploration() -> Any:
    return explore(OwnershipMachine(_bounds(fencing=0, ambiguous=0)))


def test_ci_profile_holds_every_invariant_and_fires_every_transition(ci_exploration: Any) -> None:
    assert ci_exploration.complete
    assert ci_exploration.violations == []
    assert set(ci_exploration.invariant_results()) >= set(FENCED)
    assert set(ci_exploration.invariant_results().values()) == {"held"}
    assert ci_exploration.stuck == []
    assert ci_exploration.coverage.dead == ()
    assert ci_exploration.coverage.undeclared == ()


def test_without_fencing_every_protected_invariant_fails(unfenced_exploration: Any) -> None:
    results = unfenced_exploration.invariant_results()
    assert {name: results[name] for name in FENCED} == dict.fromkeys(FENCED, "violated")
    assert results["worker_memory_well_formed"] == "held"


def _shortest(exploration: Any, invariant: str) -> list[str]:
    violation = next(v for v in exploration.violations if v.invariant == invariant)
    return [step.label for step in shortest_trace(exploration, exploration.state_list[violation.state_index])]


def test_without_fencing_a_stale_owner_undoes_a_stop_in_five_steps(unfenced_exploration: Any) -> None:
    labels = _shortest(unfenced_exploration, "halt_never_undone")
    assert len(labels) == 5
    assert labels[:3] == ["w0.claim_and_register", "expire", "w1.claim_and_register"]


def test_without_fencing_an_input_runs_twice(unfenced_exploration: Any) -> None:
    labels = _shortest(unfenced_exploration, "no_input_consumed_twice")
    assert len(labels) == 12
    assert labels[-2:] == ["w1.executor_succeeded(1)", "w0.executor_succeeded(1)"]
    assert "expire" in labels
    assert labels.index("w0.start_run()") < labels.index("expire") < labels.index("w1.claim_and_register")


def test_symmetry_reduction_agrees_with_the_full_search() -> None:
    machine = OwnershipMachine(_bounds(control=0, ambiguous=0))
    reduced = explore(machine, symmetry=True)
    full = explore(machine, symmetry=False)
    assert reduced.states < full.states
    assert reduced.invariant_results() == full.invariant_results()
    assert {machine.canonical(s) for s in full.state_list} == set(reduced.state_list)


def test_one_worker_has_nothing_to_take_over() -> None:
    exploration = explore(OwnershipMachine(_bounds(workers=1, fencing=0)))
    assert exploration.violations == []


def test_the_diagram_set_leaves_the_ownership_model_out() -> None:
    from meerkat_model.catalog import DRAWN
    from meerkat_model.diagrams import catalog_entries

    assert "ownership" in MACHINES and "ownership" not in DRAWN
    assert [entry.key for entry in catalog_entries("tiny")] == list(DRAWN)
