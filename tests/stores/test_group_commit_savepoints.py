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
from typing import Any, Literal

import pytest
from meerkat_runtime.store.lease import Fence
from meerkat_runtime.store.records import BoundaryKind, BoundaryReceipt, InputRow
from meerkat_runtime.store.sqlite import Body, SqliteRuntimeStore
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

    def __init__(self, path: Path, **settings: Any) -> None:
        self.statements: list[str] = []
        super().__init__(path, **settings)

    def _open_connection(self) -> sqlite3.Connection:
        conn = super()._open_connection()
        conn.set_trace_callback(self.statements.append)
        return conn


Write = tuple[str, str, Fence]


def _input_batch(store: _Traced, writes: list[Write]) -> tuple[list[BaseException | None], list[str], int]:
    """Submit one ``persist_input_state`` per ``(runtime, input id, fence)`` of ``writes``, all
    as one batch; their errors, the statements the batch ran and the commits it took."""
    commits, start = store.commit_count, len(store.statements)
    size = len(writes)
    batches = store.group_commit_batch_sizes().get(size, 0)
    futures = [
        store.submit_write(lambda w=w: store.persist_input_state(w[0], InputRow(w[1], b"1"), fence=w[2]))
        for w in writes
    ]
    errors = [f.exception(timeout=30) for f in futures]
    assert store.group_commit_batch_sizes().get(size, 0) == batches + 1, f"the {size} writes were not one batch"
    return errors, store.statements[start:], store.commit_count - commits


def test_a_refused_input_row_write_fails_alone_in_a_batch_without_savepoints(tmp_path: Path) -> None:
    """Input row writes may run twice, so their batch runs without a savepoint per write; a write
    refused before it changed a row (a stale fence) fails alone in that run, and the others commit
    with it in one transaction, each counted once by its runtime's mark: no savepoint, no
    rollback, no second run."""
    store = _Traced(tmp_path / "s.sqlite3", group_commit_max_batch=3, group_commit_max_wait_ms=1000)
    try:
        fences = {rt: store.claim_lease(rt, "me", 60).fence for rt in (A, B, C)}
        stale = fences[B]
        fences[B] = store.claim_lease(B, "me", 60).fence  # the token moved: ``stale`` no longer matches

        errors, statements, commits = _input_batch(
            store, [(A, "a0", fences[A]), (B, "b0", fences[B]), (C, "c0", fences[C])]
        )
        assert errors == [None, None, None] and commits == 1
        assert not [s for s in statements if "SAVEPOINT" in s]
        marks = {rt: store.load_high_water(rt) for rt in (A, B, C)}
        errors, statements, commits = _input_batch(
            store, [(A, "a1", fences[A]), (B, "b1", stale), (C, "c1", fences[C])]
        )
        assert errors[0] is None and isinstance(errors[1], OwnershipLost) and errors[2] is None
        assert commits == 1
        assert not [s for s in statements if "SAVEPOINT" in s or "ROLLBACK" in s], statements
        assert statements.count("BEGIN IMMEDIATE") == 1
        for rt, added in ((A, 1), (B, 0), (C, 1)):
            before, after = marks[rt], store.load_high_water(rt)
            assert before is not None and after is not None
            assert (after.writes, after.inputs) == (before.writes + added, before.inputs + added)
        stored = {rt: sorted(r.input_id for r in store.load_active_input_states(rt)) for rt in (A, B, C)}
        assert stored == {A: ["a0", "a1"], B: ["b0"], C: ["c0", "c1"]}
    finally:
        store.close()


def test_a_write_failing_after_it_wrote_rolls_its_batch_back_and_runs_it_in_savepoints(tmp_path: Path) -> None:
    """A write that fails after changing rows (here: its row inserted, then its runtime's damaged
    mark refused) cannot fail alone in a run without savepoints: that run is rolled back and the
    batch runs again in a new transaction, each write in its savepoint, so the failing write
    leaves nothing behind and the others commit once. The next batch takes the savepoints from
    the start (a write failing that way again does not make every batch run twice); once a batch
    has no failure, the next one runs without them."""
    store = _Traced(tmp_path / "s.sqlite3", group_commit_max_batch=3, group_commit_max_wait_ms=1000)
    try:
        fences = {rt: store.claim_lease(rt, "me", 60).fence for rt in (A, B, C)}
        _input_batch(store, [(A, "a", fences[A]), (B, "b", fences[B]), (C, "c", fences[C])])
        raw = sqlite3.connect(tmp_path / "s.sqlite3", isolation_level=None)
        raw.execute("UPDATE runtime_high_water SET checksum = 'damaged' WHERE runtime_id = ?", (B,))
        raw.close()
        marks = {rt: store.load_high_water(rt) for rt in (A, C)}
        runs: list[tuple[int, int]] = []  # per batch: (runs rolled back, savepoints per write)
        for i, writes in enumerate(((A, B, C), (A, B, C), (A, C), (A, C))):
            errors, statements, commits = _input_batch(store, [(rt, f"{rt[-1]}{i}", fences[rt]) for rt in writes])
            assert commits == 1
            for rt, error in zip(writes, errors, strict=True):
                assert (error is not None) == (rt == B), errors
            runs.append((statements.count("ROLLBACK"), statements.count("SAVEPOINT write")))
        assert runs == [(1, 3), (0, 3), (0, 2), (0, 0)]
        assert [r.input_id for r in store.load_input_states(B)] == ["b"], "a failed write left its row behind"
        for rt in (A, C):
            before, after = marks[rt], store.load_high_water(rt)
            assert before is not None and after is not None
            assert (after.writes, after.inputs) == (before.writes + 4, before.inputs + 4)
            assert len(store.load_input_states(rt)) == 5
    finally:
        store.close()


class _FailsOnceAfterWriting(_Traced):
    """The first run of the input row write of ``failing`` fails after its statements ran (as an
    I/O error right after them would); every later run of it succeeds."""

    def __init__(self, path: Path, failing: str, **settings: Any) -> None:
        self.failing = failing
        self.failed = False
        super().__init__(path, **settings)

    def _write(self, runtime_id: str, what: str, body: Body) -> None:
        store = self
        params = getattr(body, "params", None)

        class Once:
            repeatable = getattr(body, "repeatable", False)

            def __call__(self, conn: sqlite3.Connection) -> object:
                result = body(conn)
                if not store.failed and params is not None and params[1] == store.failing:
                    store.failed = True
                    raise sqlite3.OperationalError("disk I/O error")
                return result

        super()._write(runtime_id, what, Once())


def test_after_a_run_undone_the_next_batch_takes_savepoints_even_when_the_rerun_succeeded(tmp_path: Path) -> None:
    """A write that failed after it wrote, then succeeded in the rerun (a passing fault): the
    batch commits every write once, and the next batch still takes the savepoints from the
    start; the one after that runs without them."""
    store = _FailsOnceAfterWriting(
        tmp_path / "s.sqlite3", "b0", group_commit_max_batch=3, group_commit_max_wait_ms=1000
    )
    try:
        fences = {rt: store.claim_lease(rt, "me", 60).fence for rt in (A, B, C)}
        runs: list[tuple[int, int]] = []
        for i in range(3):
            errors, statements, commits = _input_batch(store, [(rt, f"{rt[-1]}{i}", fences[rt]) for rt in (A, B, C)])
            assert errors == [None, None, None] and commits == 1
            runs.append((statements.count("ROLLBACK"), statements.count("SAVEPOINT write")))
        assert store.failed
        assert runs == [(1, 3), (0, 3), (0, 0)]
        for rt in (A, B, C):
            mark = store.load_high_water(rt)
            assert mark is not None and mark.inputs == 3
            assert len(store.load_input_states(rt)) == 3
    finally:
        store.close()


def test_a_refusal_inside_savepoints_leaves_the_next_batch_without_them(tmp_path: Path) -> None:
    """A batch that takes a savepoint per write (it holds a write that is not an input row) and
    in which a stale fence fails alone, having changed nothing: the next batch of input rows
    still runs without any savepoint."""
    store = _Traced(tmp_path / "s.sqlite3", group_commit_max_batch=3, group_commit_max_wait_ms=1000)
    try:
        fences = {rt: store.claim_lease(rt, "me", 60).fence for rt in (A, B, C)}
        stale = fences[B]
        fences[B] = store.claim_lease(B, "me", 60).fence  # the token moved: ``stale`` no longer matches
        start = len(store.statements)
        futures = [
            store.submit_write(lambda: store.persist_input_state(A, InputRow("a0", b"1"), fence=fences[A])),
            store.submit_write(lambda: store.persist_input_state(B, InputRow("b0", b"1"), fence=stale)),
            store.submit_write(lambda: store.commit_machine_lifecycle(C, b"lifecycle", [], fence=fences[C])),
        ]
        errors = [f.exception(timeout=30) for f in futures]
        assert errors[0] is None and isinstance(errors[1], OwnershipLost) and errors[2] is None, errors
        assert store.statements[start:].count("SAVEPOINT write") == 3
        errors, statements, commits = _input_batch(store, [(rt, f"{rt[-1]}1", fences[rt]) for rt in (A, B, C)])
        assert errors == [None, None, None] and commits == 1
        assert not [s for s in statements if "SAVEPOINT" in s], statements
    finally:
        store.close()


class _LockTaken(_Traced):
    """Once a write of a batch failed, another connection tries to take the file's write lock
    (without waiting) before each later statement of the batch, up to its ``COMMIT``, and keeps
    it when it gets it (``taken``) until the test releases it."""

    def __init__(self, path: Path, **settings: Any) -> None:
        super().__init__(path, **settings)
        self.other = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
        self.armed = False
        self.taken = False

    def _open_connection(self) -> sqlite3.Connection:
        conn = super()._open_connection()

        def statement(sql: str) -> None:
            self.statements.append(sql)
            if not self.armed:
                return
            if sql == "COMMIT":
                self.armed = False
                return
            try:
                self.other.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:  # the batch holds the lock
                return
            self.armed, self.taken = False, True

        conn.set_trace_callback(statement)
        return conn

    def _write(self, runtime_id: str, what: str, body: Body) -> None:
        store = self

        class Arming:
            """``body``, arming the lock taker when it fails."""

            repeatable = getattr(body, "repeatable", False)

            def __call__(self, conn: sqlite3.Connection) -> object:
                try:
                    return body(conn)
                except Exception:
                    store.armed = True
                    raise

        super()._write(runtime_id, what, Arming())


def test_a_batch_with_a_refused_write_keeps_its_write_lock(tmp_path: Path) -> None:
    """A write refused in a batch fails alone without the batch giving up the write lock (it does
    not run again in a new transaction): another process cannot take the lock in between and
    make the batch's valid writes (and the refused one, as ``database is locked``) fail."""
    store = _LockTaken(
        tmp_path / "s.sqlite3", busy_timeout_ms=300, group_commit_max_batch=3, group_commit_max_wait_ms=1000
    )
    try:
        fences = {rt: store.claim_lease(rt, "me", 60).fence for rt in (A, B, C)}
        stale = fences[B]
        fences[B] = store.claim_lease(B, "me", 60).fence  # the token moved: ``stale`` no longer matches
        errors, _, commits = _input_batch(store, [(A, "a", fences[A]), (B, "b", stale), (C, "c", fences[C])])
        if store.taken:
            store.other.execute("ROLLBACK")
        assert not store.taken, f"another connection took the write lock within the batch: {errors}"
        assert errors[0] is None and isinstance(errors[1], OwnershipLost) and errors[2] is None, errors
        assert commits == 1
        stored = {rt: [r.input_id for r in store.load_input_states(rt)] for rt in (A, B, C)}
        assert stored == {A: ["a"], B: [], C: ["c"]}
    finally:
        store.other.close()
        store.close()
