"""Crash durability with real processes: a writer SIGKILLed at random points during commits
never loses an acknowledged commit and never exposes part of one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from meerkat_conformance.stores.crash import DurabilityViolation, Ledger, run_crash_cycles, verify
from meerkat_conformance.stores.crash_writer import CRASH_RT, commit_kind
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.tables import INPUTS


def test_sixty_kills_during_full_synchronous_commits(tmp_path: Path) -> None:
    stats = run_crash_cycles(tmp_path / "crash.db", kills=60, seed=20261125)
    assert stats.kills == 60
    assert stats.acked > 60  # the writers did commit between kills
    assert len(stats.cycle_ms) == 60


def test_kills_of_freshly_started_interpreters(tmp_path: Path) -> None:
    stats = run_crash_cycles(tmp_path / "crash.db", kills=5, seed=7, launch="exec")
    assert stats.kills == 5


def test_kills_with_normal_synchronous_lose_nothing_acknowledged_either(tmp_path: Path) -> None:
    stats = run_crash_cycles(tmp_path / "crash.db", kills=20, seed=3, synchronous="NORMAL")
    assert stats.kills == 20


def _first_commit_of(kind: str, generation: int = 1) -> int:
    return next(k for k in range(1, 1000) if commit_kind(generation, k) == kind)


def _one_cycle_then(path: Path, kind: str, damage: str, params: tuple[object, ...], rows: int = 1) -> Ledger:
    """Run one kill cycle whose writer makes exactly the commits up to the first commit of ``kind``
    (so no later compaction can move it), then damage the file."""
    k = _first_commit_of(kind)
    stats = run_crash_cycles(
        path, kills=1, seed=1, min_acks_before_kill=k, max_acks_before_kill=k, max_delay_ms=0, writer_stops_after=k
    )
    assert stats.ledger.stored[1] == k
    raw = sqlite3.connect(path, isolation_level=None)
    assert raw.execute(damage, params).rowcount == rows
    raw.close()
    return stats.ledger


def _verify_again(path: Path, ledger: Ledger) -> None:
    with SqliteRuntimeStore(path) as store:
        verify(store, ledger, 1, ledger.stored[1], cycle=2)


def test_the_verifier_accepts_an_undamaged_file(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    ledger = run_crash_cycles(path, kills=1, seed=1, max_acks_before_kill=4).ledger
    _verify_again(path, ledger)


def test_the_verifier_catches_a_partial_commit(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    k = _first_commit_of("lifecycle")
    ledger = _one_cycle_then(
        path, "lifecycle", f"DELETE FROM {INPUTS} WHERE runtime_id = ? AND input_id = ?", (CRASH_RT, f"l-1-{k}-1")
    )
    with pytest.raises(DurabilityViolation, match="stored in part"):
        _verify_again(path, ledger)


def test_the_verifier_catches_a_lost_acknowledged_commit(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    k = _first_commit_of("ops_append")
    damage = "DELETE FROM runtime_ops_records WHERE record = ?"
    ledger = _one_cycle_then(path, "ops_append", damage, (f"1:{k}".encode(),))
    with pytest.raises(DurabilityViolation, match=f"acknowledged commit 1:{k} \\(ops_append\\) lost"):
        _verify_again(path, ledger)


def test_the_verifier_catches_a_receipt_without_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    k = _first_commit_of("apply")
    damage = f"DELETE FROM {INPUTS} WHERE runtime_id = ? AND input_id LIKE ?"
    ledger = _one_cycle_then(path, "apply", damage, (CRASH_RT, f"a-1-{k}-%"), rows=3)
    with pytest.raises(DurabilityViolation, match=f"receipt of 1:{k} present=True"):
        _verify_again(path, ledger)
