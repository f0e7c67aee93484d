"""Each store conformance check can fail: a simple correct store passes the suite, and each
deliberate bug makes exactly the checks aimed at it fail."""

from __future__ import annotations

import pytest
from meerkat_conformance.stores.suite import StoreBackend, run_store_conformance

from tests.stores.naive_store import BUGS, NaiveBackend

EXPECTED_FAILURES = {
    "overwrite_duplicate_receipt": {"duplicate_receipt_rejected", "concurrent_threads"},
    "no_integrity": {"damaged_rows_fail_closed"},
    "partial_commit": {"rejected_commit_changes_nothing", "malformed_arguments_refused"},
    "prefix_isolation": {"runtime_isolation"},
    "insertion_order": {"input_round_trip", "ordering"},
    "reversed_records": {"ops_round_trip", "ordering", "concurrent_threads"},
    "close_ignored": {"close_and_reopen"},
    "no_compaction": {"ops_round_trip", "ordering"},
    "unlocked_receipts": {"concurrent_threads"},
    "lenient_sequence": {"malformed_arguments_refused"},
}


def _factory(bugs: frozenset[str]) -> StoreBackend:
    return NaiveBackend(bugs)


def test_a_correct_simple_store_passes() -> None:
    report = run_store_conformance(lambda: _factory(frozenset()))
    assert report.ok, report.render()
    assert {r.name for r in report.results if r.status == "not_applicable"} == {
        "failure_mid_commit_changes_nothing",
        "concurrent_processes",
    }


def test_every_bug_has_an_expectation() -> None:
    assert set(EXPECTED_FAILURES) == BUGS


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_bug_is_caught_by_the_checks_aimed_at_it(bug: str) -> None:
    report = run_store_conformance(lambda: _factory(frozenset({bug})))
    failed = {r.name for r in report.failures}
    assert not report.ok
    assert failed == EXPECTED_FAILURES[bug], report.render()
    assert "FAILED" in report.render()
