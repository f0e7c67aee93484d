"""The mutation benchmark's catalog applies to the runtime as it is, plants a working copy
that shadows the installed runtime, and tabulates what each layer killed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from meerkat_conformance.cli.main import ALL, _parser
from meerkat_conformance.mutants.catalog import MUTANTS, Mutant
from meerkat_conformance.mutants.planting import CatalogError, check_catalog, diff, plant, runtime_root
from meerkat_conformance.mutants.runner import LayerResult, MutantResult, format_table, layer_command

AREAS = {
    "retry budget",
    "requeue position",
    "supersession",
    "destroy/stop/reset",
    "durable-before-ack",
    "recovery",
    "recovery order",
    "feed",
    "journal",
    "cursors",
    "wait_all",
    "memory store",
    "sqlite store",
}


def test_every_mutant_applies_once_and_compiles() -> None:
    check_catalog()
    assert len(MUTANTS) >= 40
    assert {m.area for m in MUTANTS} >= AREAS


def test_a_mutant_that_no_longer_applies_is_refused() -> None:
    stale = Mutant("stale", "x", "ops/core.py", "this code is not in the runtime", "", "nothing")
    with pytest.raises(CatalogError, match=r"stale: its code occurs 0 times in ops/core\.py"):
        check_catalog((stale,))
    twice = Mutant("twice", "x", MUTANTS[0].path, MUTANTS[0].before, MUTANTS[0].after, "dup")
    with pytest.raises(CatalogError, match="twice: the id is used twice"):
        check_catalog((twice, twice))


def test_a_planted_copy_shadows_the_installed_runtime(tmp_path: Path) -> None:
    mutant = next(m for m in MUTANTS if m.id == "retry-budget-off-by-one")
    planted = plant(mutant, tmp_path)
    copied = planted / "meerkat_runtime" / mutant.path
    assert mutant.after in copied.read_text(encoding="utf-8")
    assert mutant.before in (runtime_root() / mutant.path).read_text(encoding="utf-8")  # the original untouched
    changed = [line for line in diff(mutant).splitlines()[2:] if line[:1] in "+-"]
    assert changed == [f"-{' ' * 12}{mutant.before}", f"+{' ' * 12}{mutant.after}"]
    code = "import meerkat_runtime.session.core.run_loop as m; print(m.__file__)"
    env = {**os.environ, "PYTHONPATH": str(planted)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert Path(done.stdout.strip()) == copied


def test_the_table_counts_kills_per_layer_and_names_the_survivors() -> None:
    a, b, c = MUTANTS[:3]
    results = [
        MutantResult(a, {"tests": LayerResult("killed", 3), "harness": LayerResult("killed", 5)}),
        MutantResult(b, {"tests": LayerResult("survived", 9), "harness": LayerResult("timeout", 300)}),
        MutantResult(c, {"tests": LayerResult("survived", 9), "harness": LayerResult("survived", 60)}),
    ]
    table = format_table(results, ["tests", "harness"])
    assert f"| `{a.id}` | {a.area} | {a.what} | killed (3s) | killed (5s) |" in table
    assert "tests: killed 1/3 (33%)" in table
    assert "harness: killed 2/3 (67%)" in table
    assert "either layer: killed 2/3" in table
    assert f"survived every layer: {c.id}" in table


def test_equivalent_mutants_are_shown_but_not_counted() -> None:
    equivalent = next(m for m in MUTANTS if m.equivalent)
    killed = MUTANTS[0]
    results = [
        MutantResult(killed, {"harness": LayerResult("killed", 5)}),
        MutantResult(equivalent, {"harness": LayerResult("survived", 60)}),
    ]
    table = format_table(results, ["harness"])
    assert "harness: killed 1/1 (100%)" in table
    assert "survived every layer: none" in table
    assert f"equivalent (not counted): {equivalent.id} (" in table


def test_the_harness_layer_runs_every_machine_the_ownership_walks_included() -> None:
    command = layer_command("harness", Path("."))
    assert command[1:3] == ["-m", "meerkat_conformance.cli.main"]
    assert _parser().parse_args(command[3:]).machine == "all"
    assert ALL == ("ops", "session", "ownership")
