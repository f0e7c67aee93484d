"""The declared runtime statuses of each model status match both the model and the runtime."""

from __future__ import annotations

import enum
import importlib
from collections import Counter

import pytest
from meerkat_model.catalog import DRAWN, MACHINES, PROFILES
from meerkat_model.diagrams import Diagram, build_lifecycle, lifecycle_diagrams
from meerkat_model.diagrams.runtime_statuses import RUNTIME_STATUSES, correspondence

DECLARED = sorted(RUNTIME_STATUSES)


def _lifecycle(slug: str) -> Diagram:
    machines = [(key, MACHINES[key](PROFILES["tiny"][key])) for key in DRAWN]
    return next(d for d in lifecycle_diagrams(machines) if d.slug == slug)


def _runtime_enum(path: str) -> type[enum.Enum]:
    module, _, name = path.rpartition(".")
    found = getattr(importlib.import_module(module), name)
    assert issubclass(found, enum.Enum)
    return found


@pytest.mark.parametrize(("machine", "entity"), DECLARED)
def test_every_runtime_status_is_named_exactly_once(machine: str, entity: str) -> None:
    declared = RUNTIME_STATUSES[(machine, entity)]
    values = {str(member.value) for member in _runtime_enum(declared.runtime_enum)}
    counts = Counter(declared.runtime_statuses)
    assert set(counts) == values, f"{declared.runtime_enum}: declared {sorted(counts)}, runtime has {sorted(values)}"
    assert all(n == 1 for n in counts.values()), counts


@pytest.mark.parametrize(("machine", "entity"), DECLARED)
def test_every_model_status_is_declared_once(machine: str, entity: str) -> None:
    model = MACHINES[machine](PROFILES["tiny"][machine])
    statuses = set(build_lifecycle(machine, model.transitions(), entity).statuses)
    declared = [s.model for s in RUNTIME_STATUSES[(machine, entity)].statuses]
    assert sorted(declared) == sorted(statuses)


def test_the_input_lifecycle_says_which_statuses_are_merged() -> None:
    assert correspondence("session", "input") is not None
    diagram = _lifecycle("input-lifecycle")
    assert "runtime: staged, applied," in diagram.dot and "applied_pending_consumption" in diagram.dot
    assert "runtime: accepted, queued" in diagram.dot
    assert "stands for" in diagram.caption and "InputLifecycleState" in diagram.caption
    table = next(t for t in diagram.tables if t.caption.startswith("Runtime statuses"))
    rows = {row[0]: row[1] for row in table.rows}
    assert rows["Staged"] == "staged, applied, applied_pending_consumption"
    assert rows["Absent"] == "(no record)"
    assert len([r for r in table.rows if r[0] != "(not modelled)"]) == 7


def test_a_plain_one_to_one_entity_draws_no_runtime_line() -> None:
    diagram = _lifecycle("operation-lifecycle")
    assert "runtime:" not in diagram.dot
    assert "one per model status of the same name" in diagram.caption
