"""Each store conformance check can fail: a simple correct store passes the suite, and each
deliberate bug makes exactly the checks aimed at it fail."""

from __future__ import annotations

from pathlib import Path

import pytest
from meerkat_conformance.stores.suite import StoreBackend, run_store_conformance

from tests.stores.naive_store import BUGS, NaiveBackend, RacySqliteBackend

ROOT = Path(__file__).resolve().parents[2]

EXPECTED_FAILURES = {
    "overwrite_duplicate_receipt": {"duplicate_receipt_rejected", "concurrent_threads", "high_water_mark"},
    "no_integrity": {"damaged_rows_fail_closed", "quarantine"},
    "partial_commit": {"rejected_commit_changes_nothing", "malformed_arguments_refused"},
    "prefix_isolation": {"runtime_isolation"},
    "insertion_order": {"input_round_trip", "ordering"},
    "reversed_records": {"ops_round_trip", "ordering", "concurrent_threads"},
    "close_ignored": {"close_and_reopen", "runtime_listing"},
    "no_compaction": {"ops_round_trip", "ordering", "high_water_mark_concurrent"},
    "unlocked_receipts": {"concurrent_threads"},
    "lenient_sequence": {"malformed_arguments_refused"},
    "steals_live_lease": {"lease_claim_and_renew", "lease_claim_race_threads", "lease_token_grows"},
    "no_takeover_after_expiry": {"lease_expiry_and_release"},
    "token_on_renew": {
        "lease_claim_and_renew",
        "lease_expiry_and_release",
        "lease_token_grows",
        "lease_batch_renewal",
    },
    "batch_raises_refusal": {"lease_batch_renewal"},
    "batch_keeps_expiry": {"lease_batch_renewal"},
    "token_restarts_after_release": {"lease_expiry_and_release", "lease_token_grows", "unfenced_write_refused"},
    "fence_compares_owner_only": {"stale_fence_refused", "high_water_mark", "quarantine"},
    "fence_ignored": {
        "stale_fence_refused",
        "unfenced_write_refused",
        "high_water_mark",
        "quarantine",
        "finished_inputs_and_compaction",
    },
    "fence_checked_after_write": {
        "stale_fence_refused",
        "unfenced_write_refused",
        "high_water_mark",
        "quarantine",
        "finished_inputs_and_compaction",
    },
    "unfenced_writes_allowed": {"unfenced_write_refused", "quarantine", "finished_inputs_and_compaction"},
    "unlocked_claims": {"lease_claim_race_threads"},
    "release_ignores_fence": {"lease_expiry_and_release"},
    "delete_unfenced": {"stale_fence_refused", "unfenced_write_refused"},
    "mark_misses_appends": {"high_water_mark", "high_water_mark_concurrent"},
    "mark_counts_updates": {
        "high_water_mark",
        "high_water_mark_concurrent",
        "finished_inputs_and_compaction",
    },
    "mark_moves_on_refusal": {"high_water_mark"},
    "mark_races_compaction": {"high_water_mark_concurrent"},
    "quarantine_keeps_row": {"quarantine", "high_water_mark"},
    "quarantine_drops_bytes": {"quarantine"},
    "scan_raises_on_damage": {"quarantine"},
    "listing_misses_leases": {"runtime_listing"},
    "active_lists_finished": {"finished_inputs_and_compaction"},
    "compaction_skips_mark": {"finished_inputs_and_compaction", "compaction_releases_receipts"},
    "compacts_active_rows": {"finished_inputs_and_compaction"},
    "compaction_keeps_receipts": {"compaction_releases_receipts"},
}


def _factory(bugs: frozenset[str]) -> StoreBackend:
    return NaiveBackend(bugs)


def test_a_correct_simple_store_passes() -> None:
    report = run_store_conformance(lambda: _factory(frozenset()))
    assert report.ok, report.render()
    assert {r.name for r in report.results if r.status == "not_applicable"} == {
        "failure_mid_commit_changes_nothing",
        "concurrent_processes",
        "lease_claim_race_processes",
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


def test_claims_racing_across_processes_catch_a_claim_that_is_not_one_transaction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The one check the in-memory naive store cannot run (it needs several processes), shown
    to fail on an SQLite store whose claim reads and writes in separate transactions."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the claimer processes import tests.stores
    report = run_store_conformance(RacySqliteBackend, only=["lease_claim_race_processes", "lease_claim_and_renew"])
    statuses = {r.name: r.status for r in report.results}
    assert statuses == {"lease_claim_race_processes": "failed", "lease_claim_and_renew": "passed"}, report.render()
    assert "won the same lease" in report.failures[0].detail


class _UnopenableInChildren(RacySqliteBackend):
    """Storage whose child processes cannot open it: the opener they are given raises."""

    name = "unopenable-in-children"

    def process_opener(self) -> tuple[str, list[object]]:
        return "tests.stores.naive_store:no_such_opener", [str(self.path)]


def test_a_claimer_that_fails_to_start_is_reported_with_its_whole_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not only the traceback's first line: the error that ended the child too."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    report = run_store_conformance(_UnopenableInChildren, only=["lease_claim_race_processes"])
    [failure] = report.failures
    assert "claimer 0 did not start" in failure.detail
    assert "Traceback" in failure.detail
    assert "no_such_opener" in failure.detail and "exit status 1" in failure.detail
