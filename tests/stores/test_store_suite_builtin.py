"""Both embedded stores pass every applicable store conformance check (PostgreSQL: tests/postgres)."""

from __future__ import annotations

from pathlib import Path

import pytest
from meerkat_conformance.stores.suite import (
    BUILT_IN_FACTORIES,
    CHECKS,
    SqliteBackend,
    StoreBackend,
    StoreCheckCase,
    run_store_conformance,
    store_check_cases,
)

CASES = store_check_cases({name: BUILT_IN_FACTORIES[name] for name in ("memory", "sqlite")})


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_builtin_store_passes(case: StoreCheckCase) -> None:
    case.run()


def test_every_check_runs_on_sqlite_and_only_capability_checks_are_left_out_for_memory() -> None:
    by_backend: dict[str, set[str]] = {}
    for case in CASES:
        by_backend.setdefault(case.backend, set()).add(case.check.name)
    assert by_backend["sqlite"] == {c.name for c in CHECKS}
    assert {c.name for c in CHECKS} - by_backend["memory"] == {
        "failure_mid_commit_changes_nothing",
        "concurrent_processes",
        "lease_claim_race_processes",
    }


def test_report_for_memory_marks_capability_checks_not_applicable() -> None:
    report = run_store_conformance(BUILT_IN_FACTORIES["memory"])
    assert report.ok, report.render()
    statuses = {r.name: r.status for r in report.results}
    assert statuses["concurrent_processes"] == "not_applicable"
    assert statuses["input_round_trip"] == "passed"
    assert "OK: 26 passed, 0 failed, 3 not applicable" in report.render()


@pytest.mark.parametrize(
    "options",
    [{"synchronous": "NORMAL"}, {"connections": "shared"}],
    ids=["synchronous-normal", "shared-connection"],
)
def test_sqlite_variants_pass_the_suite(tmp_path: Path, options: dict[str, str]) -> None:
    counter = iter(range(1000))

    def factory() -> StoreBackend:
        directory = tmp_path / f"s{next(counter)}"
        directory.mkdir()
        return SqliteBackend(directory, **options)

    only = [c.name for c in CHECKS if c.name not in ("concurrent_processes", "lease_claim_race_processes")]
    report = run_store_conformance(factory, only=only)
    assert report.ok, report.render()
    assert len(report.results) == len(CHECKS) - 2


def test_command_line_runs_the_named_backends(capsys: pytest.CaptureFixture[str]) -> None:
    from meerkat_conformance.stores.suite import main

    assert main(["memory"]) == 0
    out = capsys.readouterr().out
    assert "store conformance: memory" in out and "OK: 26 passed" in out
    assert main(["nope"]) == 2
    assert "unknown backend" in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_the_batched_lease_renewal_check_applies_to_both_and_passes(backend: str) -> None:
    report = run_store_conformance(BUILT_IN_FACTORIES[backend], only=["lease_batch_renewal"])
    assert [(r.name, r.status) for r in report.results] == [("lease_batch_renewal", "passed")], report.render()
