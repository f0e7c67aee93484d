"""Why each write of a group-commit batch runs in its own savepoint: a write refused in the
middle of a batch (a duplicate receipt after it already wrote its snapshot, a stale fence)
fails alone and leaves nothing of itself behind, and the writes around it commit.

The same batch runs with the protection and with it switched off (the store's private
``_write_isolation``, for tests only): ``continue`` lets a failed write's statements stay in the
batch's transaction, ``abort`` rolls the whole batch back at the first refusal. Each of them
breaks a rule the savepoints keep."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal

import pytest
from meerkat_runtime.store.lease import Fence
from meerkat_runtime.store.records import BoundaryKind, BoundaryReceipt, InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.errors import OwnershipLost, WriteFailed

A, B, C = "rt:session:a", "rt:session:b", "rt:session:c"
RECEIPT = BoundaryReceipt("run", 1, BoundaryKind.RUN_CHECKPOINT, ("a0",))

Isolation = Literal["savepoint", "continue", "abort"]


def _broken_rules(path: Path, isolation: Isolation) -> list[str]:
    """Run one batch of four writes (valid, duplicate receipt, stale fence, valid) and list
    every rule of the batch that the outcome breaks."""
    store = SqliteRuntimeStore(path, group_commit_max_batch=4, group_commit_max_wait_ms=1000)
    store._write_isolation = isolation
    try:
        store.atomic_apply(A, session_snapshot=b"s1", receipt=RECEIPT, rows=[InputRow("a0", b"0")])
        stale = store.claim_lease(B, "old", 60).fence
        store.claim_lease(B, "old", 60)  # the token moved: ``stale`` no longer matches
        marks = {rt: store.load_high_water(rt) for rt in (A, B)}
        commits = store.commit_count
        futures = [
            store.submit_write(lambda: store.persist_input_state(A, InputRow("a1", b"1"))),
            store.submit_write(
                lambda: store.atomic_apply(A, session_snapshot=b"s2", receipt=RECEIPT, rows=[InputRow("z", b"2")])
            ),
            store.submit_write(lambda: store.persist_input_state(B, InputRow("b", b"1"), fence=stale)),
            store.submit_write(lambda: store.persist_input_state(C, InputRow("c", b"1"))),
        ]
        errors = [f.exception(timeout=30) for f in futures]
        assert store.group_commit_stats()[2] == 4, "the four writes were not one batch"
        broken: list[str] = []
        if errors[0] is not None or errors[3] is not None:
            broken.append(f"a valid write failed with the refused ones: {errors[0]!r}, {errors[3]!r}")
        if not isinstance(errors[1], WriteFailed) or errors[1].outcome_unknown:
            broken.append(f"the duplicate receipt was not refused: {errors[1]!r}")
        if not isinstance(errors[2], OwnershipLost):
            broken.append(f"the stale fence was not refused: {errors[2]!r}")
        if store.load_session_snapshot(A) != b"s1":
            broken.append("the refused boundary left its session snapshot behind")
        if {r.input_id for r in store.load_input_states(A)} != {"a0", "a1"}:
            broken.append("the rows of A are not the valid writes' rows")
        if [r.input_id for r in store.load_input_states(C)] != ["c"] or store.load_input_states(B):
            broken.append("the rows of B and C are not the valid writes' rows")
        mark_a, before_a = store.load_high_water(A), marks[A]
        assert before_a is not None
        if mark_a is None or (mark_a.writes, mark_a.inputs, mark_a.receipts) != (before_a.writes + 1, 2, 1):
            broken.append(f"the mark of A does not count exactly the one valid write: {mark_a}")
        if store.load_high_water(B) != marks[B]:
            broken.append("the refused write moved the mark of B")
        if isolation == "savepoint" and store.commit_count - commits != 1:
            broken.append("the batch did not commit as one transaction")
        return broken
    finally:
        store.close()


def test_each_write_of_a_batch_keeps_its_own_transaction_rules(tmp_path: Path) -> None:
    assert _broken_rules(tmp_path / "s.sqlite3", "savepoint") == []


@pytest.mark.parametrize(
    ("isolation", "expected"),
    [
        ("continue", "the refused boundary left its session snapshot behind"),
        ("abort", "a valid write failed with the refused ones"),
    ],
)
def test_protection_off_a_refused_write_harms_its_batch(tmp_path: Path, isolation: Isolation, expected: str) -> None:
    broken = _broken_rules(tmp_path / "s.sqlite3", isolation)
    assert any(rule.startswith(expected) for rule in broken), broken


class _Traced(SqliteRuntimeStore):
    """Records every statement its connections run."""

    statements: list[str] = []

    def _open_connection(self) -> sqlite3.Connection:
        conn = super()._open_connection()
        conn.set_trace_callback(self.statements.append)
        return conn


def test_a_batch_of_input_rows_runs_without_savepoints_until_one_is_refused(tmp_path: Path) -> None:
    """Input row writes may run twice, so their batch first runs without a savepoint per write:
    with every write valid none is opened; a refused write rolls that run back and the batch runs
    again write by write in savepoints, so the refusal fails alone and the others commit in one
    transaction, each counted once by its runtime's mark."""
    store = _Traced(tmp_path / "s.sqlite3", group_commit_max_batch=3, group_commit_max_wait_ms=1000)
    store.statements = []
    try:
        fences = {rt: store.claim_lease(rt, "me", 60).fence for rt in (A, B, C)}
        stale = fences[B]
        fences[B] = store.claim_lease(B, "me", 60).fence  # the token moved: ``stale`` no longer matches

        def batch(writes: list[tuple[str, str, Fence]]) -> tuple[list[BaseException | None], list[str], int]:
            commits, start = store.commit_count, len(store.statements)
            futures = [
                store.submit_write(lambda w=w: store.persist_input_state(w[0], InputRow(w[1], b"1"), fence=w[2]))
                for w in writes
            ]
            errors = [f.exception(timeout=30) for f in futures]
            assert store.group_commit_stats()[2] == 3, "the three writes were not one batch"
            return errors, store.statements[start:], store.commit_count - commits

        errors, statements, commits = batch([(A, "a0", fences[A]), (B, "b0", fences[B]), (C, "c0", fences[C])])
        assert errors == [None, None, None] and commits == 1
        assert not [s for s in statements if "SAVEPOINT" in s]
        marks = {rt: store.load_high_water(rt) for rt in (A, B, C)}
        errors, statements, commits = batch([(A, "a1", fences[A]), (B, "b1", stale), (C, "c1", fences[C])])
        assert errors[0] is None and isinstance(errors[1], OwnershipLost) and errors[2] is None
        assert commits == 1 and "SAVEPOINT write" in statements
        for rt, added in ((A, 1), (B, 0), (C, 1)):
            before, after = marks[rt], store.load_high_water(rt)
            assert before is not None and after is not None
            assert (after.writes, after.inputs) == (before.writes + added, before.inputs + added)
        stored = {rt: sorted(r.input_id for r in store.load_active_input_states(rt)) for rt in (A, B, C)}
        assert stored == {A: ["a0", "a1"], B: ["b0"], C: ["c0", "c1"]}
    finally:
        store.close()
