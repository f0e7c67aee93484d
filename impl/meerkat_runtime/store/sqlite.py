"""``SqliteRuntimeStore``: the embedded default ``RuntimeStore`` (standard-library ``sqlite3``).

* WAL journal, ``synchronous=FULL`` by default: a method that returned has fsynced its commit.
  ``synchronous="NORMAL"`` is faster and still survives a process crash (kill -9), but the last
  commits before a power loss or OS crash may be lost.
* Group commit (default on, ``group_commit=False`` turns it off): one writer thread per store
  commits every write pending when it is free — of any runtime — in one ``BEGIN IMMEDIATE``
  transaction (one fsync), each write inside its own savepoint, and returns from each write
  only after that commit. A write refused or failing inside its savepoint (a stale fence, a
  duplicate receipt, ...) is rolled back alone and raises alone; the others commit. (A batch of
  input row writes, which may run twice, first runs without any savepoint: a write refused
  before it changed a row fails alone there; only a write that failed after changing rows makes
  the batch roll back and run again in a new transaction, in a savepoint per write, as does the
  batch after it.) A failure
  of the batch's ``COMMIT`` fails every write it held: ``WriteOutcomeUnknown`` when the
  transaction ended with the failure, else (rolled back) ``WriteFailed``. At most
  ``group_commit_max_batch`` writes share a transaction; the writer waits at most
  ``group_commit_max_wait_ms`` after a batch's first write for more (default 0: a batch is
  what queued up during the previous commit). :meth:`SqliteRuntimeStore.submit_write` starts a
  write without blocking its caller; :meth:`SqliteRuntimeStore.submit_write_on` does the same
  for a caller on an event loop (the runtime awaits the returned future; the writes submitted
  during one turn of the loop reach the writer together at its end, and the writer wakes the
  loop once per batch). A blocking write call that finds the writer idle commits on its own
  thread at once. ``group_commit_batch_sizes()`` counts the batches of each size.
* Without group commit every write is one ``BEGIN IMMEDIATE`` transaction of the calling
  thread's connection, and the threads of one handle take turns on a lock of the handle. Either
  way a busy timeout (default 5 s) makes writers of other store handles or processes wait for
  the lock, then fail with ``LockWaitTimedOut`` (nothing written). A failure of the ``COMMIT`` statement itself (an I/O
  error while the commit was being made durable) raises ``WriteOutcomeUnknown``; every other
  failure means nothing was written.
* Ownership: leases live in ``runtime_leases``; every write checks its fence against the
  lease row inside its own transaction (rules in :mod:`meerkat_runtime.store.lease`). A new
  input row whose fence is known to hold is inserted by one statement that checks the lease row
  itself (:func:`_lease_guard`); anything else reads and checks the lease row first. Lease
  expiries are in ``clock`` time (default ``time.time``, shared by every process on a host).
* Every row carries a checksum bound to its table and key; a damaged row fails closed with
  ``Corrupt`` naming the runtime id and the row (for an active row carrying ``queued``,
  ``load_active_input_states`` leaves that check to ``InputRow.verified_payload()``).
* The schema version is checked on open: older files are migrated forward, newer ones are
  refused with ``VersionMismatch`` (see ``sqlite_schema``).
* Damage is detected, never silent: before opening a file the write-ahead log is read
  (``sqlite_wal``; a log SQLite would silently cut short of acknowledged commits is
  ``Corrupt``), then SQLite's page check runs (``integrity_check``: ``"quick"`` by default,
  ``"full"`` or ``"off"``), and every data write advances the runtime's high-water mark in its
  own transaction (``sqlite_marks``) for recovery to compare with what it loads.
* Settings and paths are checked at construction: a bad one is ``InvalidSetting`` naming it.
* Thread safety: one connection per thread by default; ``":memory:"`` uses one shared
  connection behind a lock. Several processes may open the same file, a new one at once too
  (each creates the schema or finds the one another created; see ``sqlite_schema.refuse_foreign``).
* ``close`` waits for calls in flight and closes every connection; later calls raise
  ``WriteFailed`` / ``ReadFailed``. Closing twice is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Literal, TypeVar, cast

from meerkat_runtime.store import validation as v
from meerkat_runtime.store.call_gate import CallGate
from meerkat_runtime.store.clock import Clock
from meerkat_runtime.store.group_commit import CommitterStopped, GroupCommitter, PendingWrite
from meerkat_runtime.store.high_water import (
    SQLITE_ADVICE,
    HighWater,
    MarkStep,
    check_marks,
    quarantine_refusal,
    quarantine_refused,
)
from meerkat_runtime.store.integrity import row_checksum, verified_payload
from meerkat_runtime.store.lease import (
    Fence,
    Lease,
    RenewalOutcome,
    claim_outcome,
    fence_refusal,
    released,
    renewal_outcome,
)
from meerkat_runtime.store.receipt_retention import index_entries, released_receipts
from meerkat_runtime.store.records import (
    BoundaryReceipt,
    FinishedInput,
    InputRow,
    OpsLifecycleRecords,
    QuarantinedRow,
    ScannedRow,
)
from meerkat_runtime.store.sql_rows import (
    SQLITE_QUEUED,
    bound_queued,
    duplicate_receipt,
    finished_inputs,
    lease_params,
    receipt_row,
    scanned_columns,
    stored_lease,
    stored_receipt,
    stored_row,
    stored_rows,
)
from meerkat_runtime.store.sqlite_connections import ConnectionPool
from meerkat_runtime.store.sqlite_files import OPEN_FILES, read_file_set
from meerkat_runtime.store.sqlite_integrity import INTEGRITY_CHECKS, IntegrityCheck, check_integrity
from meerkat_runtime.store.sqlite_journal import enter_wal, is_busy
from meerkat_runtime.store.sqlite_marks import advance_mark, new_inputs, stored_mark
from meerkat_runtime.store.sqlite_paths import MEMORY, checked_path, read_only_refusal, unwritable_reason
from meerkat_runtime.store.sqlite_readonly import discard, read_only_target
from meerkat_runtime.store.sqlite_schema import (
    INSERT_RECEIPT_INPUT,
    SCHEMA_VERSION,
    STORE_SCOPE,
    migrate,
    not_a_store,
    refuse_foreign,
    stored_version,
)
from meerkat_runtime.store.sqlite_wal import WalReport, analyse_wal
from meerkat_runtime.store.tables import (
    HIGH_WATER,
    INPUTS,
    LEASES,
    LIFECYCLES,
    OPS_RECORDS,
    OPS_SNAPSHOTS,
    QUARANTINE,
    RECEIPT_INPUTS,
    RECEIPTS,
    SNAPSHOTS,
)
from meerkat_runtime.vocab.errors import (
    Corrupt,
    InvalidSetting,
    LockWaitTimedOut,
    OwnershipLost,
    ReadFailed,
    RowNotStored,
    StoreError,
    VersionMismatch,
    WriteFailed,
    WriteOutcomeUnknown,
    WriteRefused,
)
from meerkat_runtime.vocab.settings import MAX_INT32, bounded_int, bounded_number

T = TypeVar("T")
Synchronous = Literal["FULL", "NORMAL"]
ConnectionMode = Literal["per_thread", "shared"]

DEFAULT_BUSY_TIMEOUT_MS = 5000
DEFAULT_GROUP_COMMIT_MAX_BATCH = 256
MAX_GROUP_COMMIT_BATCH = 65536
MAX_GROUP_COMMIT_WAIT_MS = 1000.0
_IDS_PER_STATEMENT = 500

_INPUT_COLUMNS = "runtime_id, input_id, payload, checksum, finished_at, idempotency_key, admission_seq, queued"
_UPSERT_INPUT = (
    f"INSERT INTO {INPUTS} ({_INPUT_COLUMNS}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (runtime_id, input_id) DO UPDATE SET payload = excluded.payload, "
    "checksum = excluded.checksum, finished_at = excluded.finished_at, idempotency_key = excluded.idempotency_key, "
    "admission_seq = excluded.admission_seq, queued = excluded.queued"
)
_ROW_COLUMNS = f"input_id, payload, checksum, finished_at, idempotency_key, admission_seq, {SQLITE_QUEUED}"
_COUNT_BY_KEY_INDEX = f"SELECT count(*) FROM {INPUTS} INDEXED BY sqlite_autoindex_{INPUTS}_1 WHERE runtime_id = ?"


def _upsert_single(table: str, column: str) -> str:
    return (
        f"INSERT INTO {table} (runtime_id, {column}, checksum) VALUES (?, ?, ?) "
        f"ON CONFLICT (runtime_id) DO UPDATE SET {column} = excluded.{column}, checksum = excluded.checksum"
    )


_UPSERT_SNAPSHOT = _upsert_single(SNAPSHOTS, "snapshot")
_UPSERT_LIFECYCLE = _upsert_single(LIFECYCLES, "lifecycle")
_UPSERT_OPS_SNAPSHOT = _upsert_single(OPS_SNAPSHOTS, "snapshot")
_UPSERT_LEASE = (
    f"INSERT INTO {LEASES} (runtime_id, owner, token, expires_at, checksum) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (runtime_id) DO UPDATE SET owner = excluded.owner, token = excluded.token, "
    "expires_at = excluded.expires_at, checksum = excluded.checksum"
)
_SELECT_LEASE = f"SELECT owner, token, expires_at, checksum FROM {LEASES} WHERE runtime_id = ?"

F = TypeVar("F", Future[None], asyncio.Future[None])
"""The future a submitted write completes: a thread's or an event loop's."""

Body = Callable[[sqlite3.Connection], object]

_INSERT_INPUT = (
    f"INSERT INTO {INPUTS} ({_INPUT_COLUMNS}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (runtime_id, input_id) DO NOTHING"
)
_UPDATE_INPUT = (
    f"UPDATE {INPUTS} SET payload = ?, checksum = ?, finished_at = ?, idempotency_key = ?, admission_seq = ?, "
    "queued = ? WHERE runtime_id = ? AND input_id = ?"
)

_UNLEASED = f"NOT EXISTS (SELECT 1 FROM {LEASES} WHERE runtime_id = ?)"
_LEASED = (
    f"EXISTS (SELECT 1 FROM {LEASES} WHERE runtime_id = ? AND owner = ? AND token = ? AND expires_at = ? "
    "AND checksum = ?)"
)


def _guarded_insert(nulls: int, guard: str) -> str:
    """The insert of one input row that writes only if ``guard`` holds, its optional columns
    flagged in ``nulls`` (bit 0: finished-at, 1: idempotency key, 2: admission position, 3:
    queued) written as ``NULL`` in the statement instead of bound (:func:`_row_arguments`)."""
    optional = ", ".join("NULL" if nulls >> bit & 1 else "?" for bit in range(4))
    return (
        f"INSERT INTO {INPUTS} ({_INPUT_COLUMNS}) SELECT ?, ?, ?, ?, {optional} WHERE {guard} "
        "ON CONFLICT (runtime_id, input_id) DO NOTHING"
    )


_GUARDED_INSERTS = {
    (nulls, leased): _guarded_insert(nulls, _LEASED if leased else _UNLEASED)
    for nulls in range(16)
    for leased in (False, True)
}
"""The guarded insert per ``NULL`` columns (:func:`_guarded_insert`) and lease guard: without a
fence, that no lease row exists; with one, that the lease row is exactly the one given."""


def _row_arguments(params: InputParams) -> tuple[int, tuple[object, ...]]:
    """The arguments the guarded insert binds for one row's ``params``, and which optional
    columns are ``NULL`` instead (the ``nulls`` of :func:`_guarded_insert`). The bytes go as
    ``bytearray`` copies: the ``sqlite3`` module binds both as the same BLOB, but looks a
    ``bytes`` or ``None`` argument up for an adapter first (an attribute lookup that fails and
    formats its error, a few µs per argument), and a ``bytearray`` it binds at once."""
    rt, input_id, payload, checksum, finished_at, key, position, queued = params
    arguments: list[object] = [rt, input_id, bytearray(payload), checksum]
    nulls = 0
    if finished_at is None:
        nulls = 1
    else:
        arguments.append(finished_at)
    if key is None:
        nulls |= 2
    else:
        arguments.append(key)
    if position is None:
        nulls |= 4
    else:
        arguments.append(position)
    if queued is None:
        nulls |= 8
    else:
        arguments.append(bytearray(queued))
    return nulls, tuple(arguments)


InputParams = tuple[str, str, bytes, str, float | None, str | None, int | None, bytes | None]
"""One input row's statement parameters: runtime id, input id, payload, checksum, finished-at,
idempotency key, admission position, recovery fields of a queued input."""


def _store_input(conn: sqlite3.Connection, rt: str, params: InputParams, *, exists_likely: bool) -> int:
    """Store one input row (inserted or replaced); returns 1 if it was new. The statement more
    likely to hit runs first: an insert that skips an existing key (then the update, only if it
    did), or with ``exists_likely`` the update (then the insert, only if no row was there)."""
    _, input_id, payload, checksum, finished_at, key, position, queued = params
    update = (payload, checksum, finished_at, key, position, queued, rt, input_id)
    if exists_likely:
        if conn.execute(_UPDATE_INPUT, update).rowcount:
            return 0
        return conn.execute(_INSERT_INPUT, params).rowcount
    if conn.execute(_INSERT_INPUT, params).rowcount == 1:
        return 1
    conn.execute(_UPDATE_INPUT, update)
    return 0


def _upsert_inputs(conn: sqlite3.Connection, rt: str, params: list[InputParams]) -> int:
    """Store the rows of ``params`` (inserted or replaced); returns how many were new. One row:
    :func:`_store_input` (one statement for a new row); more rows: one count of the new keys and
    one upsert per row."""
    if len(params) == 1:
        return _store_input(conn, rt, params[0], exists_likely=False)
    added = new_inputs(conn, rt, (p[1] for p in params))
    conn.executemany(_UPSERT_INPUT, params)
    return added


def _lease_guard(rt: str, fence: Fence | None) -> tuple[bool, tuple[object, ...]] | None:
    """Which guard an insert of one input row takes so that it writes only if ``fence`` passes
    the lease check (leased or not, :data:`_GUARDED_INSERTS`), with the parameters of that check
    (after the row's own): without a fence, when ``rt`` has no lease row; with one, when the
    lease row is exactly the row this process last verified (checksum included) and that lease
    matches the fence — so a row it writes passed the same check :func:`fence_refusal` makes.
    ``None`` when nothing is known to guard with (no such row)."""
    if fence is None:
        return False, (rt,)
    known = _checked_leases.get(rt)
    if known is None or known[1].owner != fence.owner or known[1].token != fence.token:
        return None
    return True, (rt, *known[0])


def _check_fence_in(conn: sqlite3.Connection, rt: str, fence: Fence | None, what: str) -> None:
    """Raise ``OwnershipLost`` unless ``fence`` passes the check against the lease row, read in
    the caller's transaction (rules in :mod:`meerkat_runtime.store.lease`)."""
    refusal = fence_refusal(rt, _stored_lease(conn, rt), fence, what)
    if refusal is not None:
        raise refusal


_ONE_INPUT_ADDED = MarkStep(inputs_added=1)
_NO_INPUT_ADDED = MarkStep()


class _FenceChecked:
    """A write body run after the fence check, in the same transaction (the fenced form of every
    write that has no form of its own, see :class:`_InputWrite`)."""

    __slots__ = ("body", "fence", "rt", "what")

    def __init__(self, rt: str, what: str, fence: Fence | None, body: Body) -> None:
        self.rt = rt
        self.what = what
        self.fence = fence
        self.body = body

    def __call__(self, conn: sqlite3.Connection) -> None:
        _check_fence_in(conn, self.rt, self.fence, self.what)
        self.body(conn)


class _InputWrite:
    """The fenced write of ``persist_input_state``: store one input row and advance the mark.
    A new row is inserted by one statement that checks the lease row itself when the check can
    be expressed over it (:func:`_lease_guard`); when that wrote nothing (the row exists, or the
    lease row is not the one known) or nothing is known to guard with, the fence is checked
    first and the row then stored by :func:`_store_input`."""

    __slots__ = ("arguments", "fence", "nulls", "params", "rt")
    repeatable = True
    """Its run changes only the database and the memos (:func:`_repeatable`)."""

    def __init__(self, rt: str, params: InputParams, fence: Fence | None) -> None:
        self.rt = rt
        self.params = params
        self.fence = fence
        self.nulls, self.arguments = _row_arguments(params)

    def __call__(self, conn: sqlite3.Connection) -> None:
        rt = self.rt
        guard = _lease_guard(rt, self.fence)
        if (
            guard is not None
            and conn.execute(_GUARDED_INSERTS[self.nulls, guard[0]], (*self.arguments, *guard[1])).rowcount == 1
        ):
            advance_mark(conn, rt, _ONE_INPUT_ADDED)
            return
        _check_fence_in(conn, rt, self.fence, "persist_input_state")
        added = _store_input(conn, rt, self.params, exists_likely=guard is not None)
        advance_mark(conn, rt, _ONE_INPUT_ADDED if added else _NO_INPUT_ADDED)


_checked_leases: dict[str, tuple[tuple[object, ...], Lease]] = {}
"""Per runtime id, the last lease row this process verified and the lease it holds: the same
row again (same values and types) needs no checksum recomputation. A memo, never a cache of
what a file holds: the row is read in every write."""


def _stored_lease(conn: sqlite3.Connection, rt: str) -> Lease | None:
    """The lease row of ``rt`` (checksum verified), read inside the caller's transaction."""
    found = conn.execute(_SELECT_LEASE, (rt,)).fetchone()
    if found is None:
        return None
    known = _checked_leases.get(rt)
    if known is not None and known[0] == found and tuple(map(type, known[0])) == tuple(map(type, found)):
        return known[1]
    lease = stored_lease(rt, *found)
    if len(_checked_leases) >= 4096:
        _checked_leases.clear()
    _checked_leases[rt] = (found, lease)
    return lease


def refuse_damaged_log(path: str) -> WalReport | None:
    """``Corrupt`` if the write-ahead log of the file at ``path`` is damaged so that SQLite
    would cut it short of committed transactions (see ``sqlite_wal``); else what was found of
    it (``None``: the file set is in use by another process, or not one this can read). Reads
    only."""
    files = read_file_set(path)
    if files.in_use or not files.supported:
        return None
    report = analyse_wal(files.wal, files.shm, db_page_size=files.db_page_size)
    if report.problems:
        raise Corrupt(
            STORE_SCOPE,
            f"the write-ahead log of {path!r} is damaged and SQLite would silently drop committed "
            f"transactions: {'; '.join(report.problems)}. Nothing was opened; check the file with "
            "`meerkat-runtime check PATH`, restore it from a backup, or open it with wal_check=False to accept "
            "what SQLite recovers",
        )
    return report


def _refuse_if_held(conn: sqlite3.Connection, rt: str, owner: str, duration: float, now: float) -> None:
    """Raise ``LeaseHeld`` if the lease row read now is another owner's and unexpired."""
    claim_outcome(rt, _stored_lease(conn, rt), owner, duration, now)


READ_ONLY_UPGRADE_HINT = " (open it read-write once to upgrade it)"
"""How the read-only store's refusal of an older file ends: what upgrades it from Python. The
``meerkat-runtime`` reading commands give their own instruction instead (``migrate``)."""


def _require_current_version(conn: sqlite3.Connection, path: str) -> None:
    """A read-only store migrates nothing: the file must be at this release's version. An older
    file's message says how to upgrade it; a newer file's says nothing of the kind (nothing
    downgrades a file)."""
    found = stored_version(conn)
    if found == 0:
        raise not_a_store(conn, path)
    if found > SCHEMA_VERSION:
        raise VersionMismatch(
            STORE_SCOPE,
            f"schema version {found} is newer than this release supports ({SCHEMA_VERSION}); "
            "it was written by a newer release",
        )
    if found < SCHEMA_VERSION:
        raise VersionMismatch(
            STORE_SCOPE,
            f"schema version {found} is older than this release's ({SCHEMA_VERSION}); a read-only store "
            f"does not migrate{READ_ONLY_UPGRADE_HINT}",
        )


def _scanned(
    rt: str, input_id: str, payload: object, checksum: object, columns: tuple[object, object, object] | None = None
) -> ScannedRow:
    """A stored input row and whether it passes its integrity check (never raises for damage);
    ``checksum`` may be read as bytes; with ``columns`` (finished_at, key, admission position),
    those too."""
    if isinstance(payload, str):  # damaged into TEXT: keep what is there
        data = payload.encode("utf-8", "surrogateescape")
    else:
        data = bytes(payload) if isinstance(payload, bytes | bytearray | memoryview) else b""
    if isinstance(checksum, bytes):
        checksum = checksum.decode("utf-8", "replace")
    read, malformed = (None, None) if columns is None else scanned_columns(rt, input_id, *columns)
    try:
        verified_payload(INPUTS, rt, input_id, payload, checksum)
    except Corrupt:
        return ScannedRow(input_id, data, False, read, malformed)
    return ScannedRow(input_id, data, True, read, malformed)


_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26


def _damaged(exc: sqlite3.Error) -> bool:
    """Whether SQLite (or the driver reading a value) says the file itself is damaged."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return True
    text = str(exc)
    return "malformed" in text or "not a database" in text or "Could not decode to UTF-8" in text


def _translate(exc: sqlite3.Error, rt: str, what: str, error: type[StoreError]) -> StoreError:
    """The store error for ``exc``. Every caller translates a failure after which nothing was
    written (a rolled-back or never-begun transaction): a write that found the file's write lock
    held past the busy timeout is ``LockWaitTimedOut`` (a ``WriteFailed``: a later try may
    succeed, and a registration waiting for a lease retries it)."""
    text = str(exc)
    if _damaged(exc):
        return Corrupt(rt, f"{what}: the database file is damaged: {text}")
    if error is WriteFailed and is_busy(exc):
        return LockWaitTimedOut(
            rt,
            f"{what} failed: another process (or store handle) held the file's write lock past the busy "
            f"timeout (a long write, or the open transaction of a stalled process); nothing was written: {text}",
        )
    return error(rt, f"{what} failed: {type(exc).__name__}: {text}")


def _reset(conn: sqlite3.Connection) -> None:
    """Roll back a transaction an earlier failure may have left open on this connection."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _write_error(exc: Exception, pending: PendingWrite) -> Exception:
    """What the caller of a failed write gets: SQLite errors translated, the rest as raised."""
    return _translate(exc, pending.runtime_id, pending.what, WriteFailed) if isinstance(exc, sqlite3.Error) else exc


def _rollback_quietly(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):  # the connection is reset before its next transaction
            conn.execute("ROLLBACK")


def _abandon(conn: sqlite3.Connection, writes: list[PendingWrite], exc: sqlite3.Error) -> None:
    """Roll the batch's transaction back and fail ``writes``: nothing of them was written."""
    _rollback_quietly(conn)
    for pending in writes:
        pending.fail(_translate(exc, pending.runtime_id, pending.what, WriteFailed))


def _begin(conn: sqlite3.Connection, batch: list[PendingWrite]) -> bool:
    """Begin the batch's transaction; if that fails, fail every write of ``batch`` (``False``)."""
    try:
        _reset(conn)
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        for pending in batch:
            pending.fail(_translate(exc, pending.runtime_id, pending.what, WriteFailed))
        return False
    return True


def _repeatable(pending: PendingWrite) -> bool:
    """Whether the write's body may run twice, its first run rolled back, and runs without a
    savepoint (:func:`_first_run`): it changes nothing but the database and the memos of what
    this process verified (which a rolled-back run may leave ahead of the file: they are checked
    against the file before they are relied on), and when it fails having changed no row
    (``total_changes`` unmoved: no DDL, no pragma writes, no error of its own statements caught)
    it wrote nothing."""
    return getattr(pending.body, "repeatable", False) is True


def _first_run(conn: sqlite3.Connection, batch: list[PendingWrite]) -> bool:
    """Run every write of ``batch`` in the open transaction without savepoints. A write that
    fails having changed no row (``total_changes`` did not move: its refusal came before any of
    its statements wrote, as a stale fence's does) fails alone and the run goes on. ``False`` at
    the first write that failed after changing rows, or with the transaction ended by SQLite:
    nothing is then committed or acknowledged and the caller rolls the run back."""
    for pending in batch:
        before = conn.total_changes
        try:
            pending.body(conn)
        except Exception as exc:
            if conn.in_transaction and conn.total_changes == before:
                pending.fail(_write_error(exc, pending))
                continue
            return False
    return True


def _rolled_back(writes: list[PendingWrite], cause: BaseException) -> None:
    """SQLite rolled the batch's transaction back after a later write's failure: the writes
    that had succeeded in it were not written."""
    for pending in writes:
        pending.fail(
            WriteFailed(
                pending.runtime_id,
                f"{pending.what}: rolled back with its batch after another write failed: {cause}",
            )
        )


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running on this thread, if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


@dataclass(slots=True)
class _Deferred:
    """Set while :meth:`SqliteRuntimeStore.submit_write` runs its call: writes are queued (their
    waiters bound to ``loop`` when given) instead of awaited."""

    loop: asyncio.AbstractEventLoop | None
    waiters: list[Future[None] | asyncio.Future[None]] = field(default_factory=list)


class SqliteRuntimeStore:
    """A ``RuntimeStore`` on one SQLite file (or ``":memory:"``)."""

    def __init__(
        self,
        path: str | os.PathLike[str] = MEMORY,
        *,
        synchronous: Synchronous = "FULL",
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        connections: ConnectionMode = "per_thread",
        clock: Clock = time.time,
        integrity_check: IntegrityCheck = "quick",
        wal_check: bool = True,
        read_only: bool = False,
        group_commit: bool = True,
        group_commit_max_batch: int = DEFAULT_GROUP_COMMIT_MAX_BATCH,
        group_commit_max_wait_ms: float = 0.0,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise InvalidSetting(f"synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}")
        if connections not in ("per_thread", "shared"):
            raise InvalidSetting(f"connections must be 'per_thread' or 'shared', got {connections!r}")
        if integrity_check not in INTEGRITY_CHECKS:
            raise InvalidSetting(f"integrity_check must be one of {INTEGRITY_CHECKS}, got {integrity_check!r}")
        if not isinstance(wal_check, bool):
            raise InvalidSetting(f"wal_check must be True or False, got {wal_check!r}")
        if not isinstance(read_only, bool):
            raise InvalidSetting(f"read_only must be True or False, got {read_only!r}")
        if not callable(clock):
            raise InvalidSetting("clock must be a callable returning seconds")
        if not isinstance(group_commit, bool):
            raise InvalidSetting(f"group_commit must be True or False, got {group_commit!r}")
        self.group_commit_max_batch = bounded_int(
            "group_commit_max_batch", group_commit_max_batch, 1, MAX_GROUP_COMMIT_BATCH
        )
        self.group_commit_max_wait_ms = bounded_number(
            "group_commit_max_wait_ms", group_commit_max_wait_ms, 0.0, MAX_GROUP_COMMIT_WAIT_MS
        )
        self.busy_timeout_ms = bounded_int("busy_timeout_ms", busy_timeout_ms, 0, MAX_INT32)
        self.path = checked_path(path, create_folder=not read_only)
        if read_only and (self.path == MEMORY or not os.path.isfile(self.path)):
            raise InvalidSetting(f"a read-only store needs an existing database file, got {self.path!r}")
        if not read_only and self.path != MEMORY and (refusal := unwritable_reason(self.path)) is not None:
            raise InvalidSetting(refusal)
        self.read_only = read_only
        self._target = read_only_target(self.path) if read_only else None
        self.synchronous: Synchronous = synchronous
        self.clock = clock
        self.integrity_check: IntegrityCheck = integrity_check
        self.wal_check = wal_check
        self.wal_report: WalReport | None = None
        """What the log check found when this store opened the file (``None``: not checked —
        in memory, turned off, another store or process had the file open, or not POSIX)."""
        in_memory = self.path == MEMORY
        self.group_commit = group_commit and not read_only
        """Whether writes go through the store's writer thread (see the module docstring)."""
        self._committer: GroupCommitter | None = None
        self._write_isolation: Literal["savepoint", "continue", "abort"] = "savepoint"
        """How a batch keeps a failed write from the others: its own savepoint. The other
        values exist only for tests that show what goes wrong without savepoints: ``continue``
        leaves a failed write's statements in the batch, ``abort`` rolls the batch back."""
        self._undone_last = False
        """Whether the writer's last batch of several had its first run undone, or a write that
        failed in its savepoint after changing rows (the next batch then takes a savepoint per
        write from the start; a refusal that changed nothing leaves it unset)."""
        self._deferring: dict[int, _Deferred] = {}
        """Per thread (by ``threading.get_ident()``), the :class:`_Deferred` of a ``submit_write``
        running its call there (a dict, not a ``threading.local``: a write looks it up, and a
        lookup in an empty dict costs less than a thread-local attribute)."""
        self._commits = 0
        self._commits_lock = threading.Lock()
        self._gate = CallGate()
        self._write_turn = threading.Lock()
        """Held for each write transaction without group commit: the handle's threads write one at
        a time (SQLite runs one writer at a time anyway; its busy handler polls, so busy threads
        could starve one of them past the busy timeout)."""
        self._pool = ConnectionPool(self._open_connection, per_thread=not in_memory and connections == "per_thread")
        self._file_key: str | None = None
        try:
            if not in_memory and not read_only:
                self._file_key = OPEN_FILES.enter(self.path, self._check_log)
            self._read(STORE_SCOPE, "integrity check", lambda conn: check_integrity(conn, integrity_check, STORE_SCOPE))
            if read_only:
                self._read(STORE_SCOPE, "schema version", lambda conn: _require_current_version(conn, self.path))
            elif self._read(STORE_SCOPE, "schema version", stored_version) != SCHEMA_VERSION:
                # Only a needed migration takes the write lock: a current file opens by reads alone.
                self._write(
                    STORE_SCOPE, "schema migration", lambda conn: migrate(conn, path=self.path, now=self.clock())
                )
        except BaseException as exc:
            self._release_files()
            refusal = None if read_only else read_only_refusal(self.path, exc.__cause__)
            if refusal is not None:
                raise InvalidSetting(refusal) from exc.__cause__
            raise
        if self.group_commit:
            self._committer = GroupCommitter(
                self._commit_batch,
                max_batch=self.group_commit_max_batch,
                max_wait_s=self.group_commit_max_wait_ms / 1000,
                name=f"meerkat-sqlite-writer:{os.path.basename(self.path)}",
            )

    def _release_files(self) -> None:
        """Stop the writer, close every connection, then let go of the file (and of a
        read-only copy)."""
        if self._committer is not None:
            self._committer.stop()
        self._pool.close_all()
        if self._file_key is not None:
            OPEN_FILES.leave(self._file_key)
            self._file_key = None
        if self._target is not None:
            discard(self._target)

    def _check_log(self) -> None:
        """Before any connection of this process opens the file: refuse a write-ahead log that
        SQLite would cut short of committed transactions (see ``sqlite_wal``)."""
        if self.wal_check:
            self.wal_report = refuse_damaged_log(self.path)

    @property
    def connection_mode(self) -> ConnectionMode:
        return "per_thread" if self._pool.per_thread else "shared"

    @property
    def closed(self) -> bool:
        return self._gate.closed

    @property
    def commit_count(self) -> int:
        """Write transactions this handle committed (with ``synchronous=FULL`` in WAL mode, one
        fsync of the log each, checkpoints aside): a batch of writes counts once."""
        return self._commits

    def group_commit_stats(self) -> tuple[int, int, int]:
        """``(batches, writes, largest batch)`` the writer ran so far (zeros without group commit)."""
        committer = self._committer
        if committer is None:
            return (0, 0, 0)
        return (committer.batches, committer.writes, committer.largest_batch)

    def group_commit_batch_sizes(self) -> dict[int, int]:
        """How many batches held each number of writes so far (empty without group commit)."""
        committer = self._committer
        return {} if committer is None else dict(sorted(committer.batch_sizes.items()))

    def _counted_commit(self) -> None:
        with self._commits_lock:
            self._commits += 1

    def connection_count(self) -> int:
        """How many SQLite connections this store holds open now (one per live thread that used it)."""
        return self._pool.open_count()

    def settings(self) -> dict[str, object]:
        """The calling thread's connection settings: ``journal_mode``, ``synchronous`` (0 OFF,
        1 NORMAL, 2 FULL), ``busy_timeout`` (ms), ``schema_version``, and the store's
        ``integrity_check`` and ``wal_check``."""

        def body(conn: sqlite3.Connection) -> dict[str, object]:
            return {
                "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
                "synchronous": conn.execute("PRAGMA synchronous").fetchone()[0],
                "busy_timeout": conn.execute("PRAGMA busy_timeout").fetchone()[0],
                "schema_version": stored_version(conn),
                "integrity_check": self.integrity_check,
                "wal_check": self.wal_check,
            }

        return self._read(STORE_SCOPE, "settings", body)

    def _open_connection(self) -> sqlite3.Connection:
        target = self._target
        conn = sqlite3.connect(
            self.path if target is None else target.uri,
            timeout=self.busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
            uri=target is not None,
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
            if target is None:
                refuse_foreign(conn, self.path)  # before the first change to the file
                enter_wal(conn, self.busy_timeout_ms / 1000)
                conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        except BaseException:
            conn.close()
            raise
        return conn

    # --- transactions ---------------------------------------------------------------------
    def _write(self, runtime_id: str, what: str, body: Body) -> None:
        """Run ``body`` in a ``BEGIN IMMEDIATE`` transaction (its own, or with group commit the
        writer's batch, see :meth:`_one_transaction`); roll back on any failure. A failure of ``COMMIT``
        that ended the transaction is ``WriteOutcomeUnknown``. Inside :meth:`submit_write` the
        write is queued and this returns at once (the future tells the outcome)."""
        if not self._gate.enter():
            raise WriteFailed(runtime_id, f"{what}: store is closed")
        # Who leaves the gate: this call, until a PendingWrite that is sure to be completed (its
        # completion leaves it) or the direct path's own ``finally`` takes that over. Everything
        # after ``enter`` is inside the ``try``, so an exception anywhere (a KeyboardInterrupt
        # between two statements) cannot leave the gate entered, which ``close`` would wait for.
        handed = False
        try:
            committer = self._committer
            if committer is not None and not committer.on_writer_thread():
                deferring = self._deferring
                deferred = deferring.get(threading.get_ident()) if deferring else None
                pending = PendingWrite(runtime_id, what, body, release=self._gate.leave)
                if deferred is None and committer.try_lead():  # the writer is idle: commit here
                    handed = True
                    try:
                        self._commit_batch([pending])
                    finally:
                        committer.end_lead()
                        if not pending.done:  # a batch completes every write, unless interrupted
                            pending.fail(WriteOutcomeUnknown(runtime_id, f"{what}: the write was not completed"))
                    if pending.error is not None:
                        raise pending.error
                    return
                if deferred is not None and deferred.loop is not None:
                    pending.loop = deferred.loop
                    pending.waiter = deferred.loop.create_future()
                else:
                    pending.waiter = Future()
                    pending.waiter.set_running_or_notify_cancel()  # a submitted write cannot be cancelled
                try:
                    if pending.loop is not None and _running_loop() is pending.loop:
                        committer.submit_from_loop(pending)  # on the loop's thread: with its turn
                    else:
                        committer.submit(pending)
                except CommitterStopped:
                    raise WriteFailed(runtime_id, f"{what}: store is closed") from None
                handed = True  # queued: the writer completes it
                if deferred is not None:
                    deferred.waiters.append(pending.waiter)
                    return
                assert isinstance(pending.waiter, Future)
                pending.waiter.result()
                return
            handed = True
            self._write_directly(runtime_id, what, body)
        finally:
            if not handed:
                self._gate.leave()

    def _write_directly(self, runtime_id: str, what: str, body: Body) -> None:
        """:meth:`_write` without the writer thread (group commit off, or on the writer's own
        thread): ``body`` in its own ``BEGIN IMMEDIATE`` transaction; leaves the gate."""
        try:
            if self.read_only:
                raise WriteFailed(runtime_id, f"{what}: the store was opened read-only")
            with self._write_turn, self._pool.connection() as conn:
                _reset(conn)
                conn.execute("BEGIN IMMEDIATE")
                try:
                    body(conn)
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    if conn.in_transaction:  # still open (e.g. busy): roll back, nothing written
                        conn.execute("ROLLBACK")
                        raise
                    raise WriteOutcomeUnknown(
                        runtime_id, f"{what}: COMMIT failed, the write may or may not be durable: {exc}"
                    ) from exc
                self._counted_commit()
        except sqlite3.Error as exc:
            raise _translate(exc, runtime_id, what, WriteFailed) from exc
        finally:
            self._gate.leave()

    def submit_write(self, call: Callable[[], None]) -> Future[None]:
        """Start ``call`` — exactly one call of a write method of this store that returns
        ``None`` (``persist_input_state``, ``atomic_apply``, ``commit_machine_lifecycle``,
        ``append_ops_record``, ``persist_ops_lifecycle``, ``delete_ops_lifecycle``) — without
        waiting for its commit, and return a future holding what the call returns or raises
        once its batch committed. Arguments are checked here (a bad one is a future already
        failed with the error the call raises). Without group commit the call runs here and
        the future is done when this returns."""
        return self._submit(call, None, Future)

    def submit_write_on(self, loop: asyncio.AbstractEventLoop, call: Callable[[], None]) -> asyncio.Future[None]:
        """:meth:`submit_write` for a caller on ``loop`` (called on that loop's thread): the
        returned :class:`asyncio.Future` is completed on ``loop``, and the writer completes all
        the futures of one batch bound to one loop with a single call onto it."""
        return self._submit(call, loop, loop.create_future)

    def _submit(self, call: Callable[[], None], loop: asyncio.AbstractEventLoop | None, make: Callable[[], F]) -> F:
        """The body of both submit methods: queued with the writer (its waiter), or without
        group commit run here (a future made by ``make``, done). A bad argument is a future
        already failed with the error the call raises."""
        if self._committer is not None:
            try:
                return cast(F, self._deferred(call, loop))
            except Exception as exc:
                failed = make()
                failed.set_exception(exc)
                return failed
        done = make()
        try:
            call()
        except Exception as exc:
            done.set_exception(exc)
        else:
            done.set_result(None)
        return done

    def _deferred(
        self, call: Callable[[], None], loop: asyncio.AbstractEventLoop | None
    ) -> Future[None] | asyncio.Future[None]:
        """Run ``call`` with its write queued instead of awaited; the write's waiter."""
        slot = _Deferred(loop)
        ident = threading.get_ident()
        outer = self._deferring.get(ident)
        self._deferring[ident] = slot
        try:
            call()
        finally:
            if outer is None:
                del self._deferring[ident]
            else:
                self._deferring[ident] = outer
        if len(slot.waiters) != 1:
            raise ValueError(f"submit_write needs exactly one write call, the call made {len(slot.waiters)}")
        return slot.waiters[0]

    def _single(self, conn: sqlite3.Connection, pending: PendingWrite) -> list[PendingWrite]:
        """A batch of one write, in the transaction ``_one_transaction`` began."""
        try:
            pending.body(conn)
        except Exception as exc:
            error = _write_error(exc, pending)
            _rollback_quietly(conn)
            pending.fail(error)
            return []
        self._commit(conn, [pending])
        return []

    def writer_idle(self) -> bool:
        """Whether no write is queued or being committed (always ``True`` without group commit):
        a write started now would commit alone."""
        committer = self._committer
        return committer is None or committer.idle()

    def _commit_batch(self, batch: list[PendingWrite]) -> None:
        """The writer thread: commit ``batch`` (see the module docstring for the rules)."""
        conn = self._pool.own_connection()
        if conn is not None:
            self._transactions(conn, batch)
            return
        with self._pool.connection() as conn:
            self._transactions(conn, batch)

    def _transactions(self, conn: sqlite3.Connection, batch: list[PendingWrite]) -> None:
        """Commit ``batch`` in as many transactions as SQLite's own rollbacks make it take."""
        left = batch
        while left:
            left = self._one_transaction(conn, left)

    def _one_transaction(self, conn: sqlite3.Connection, batch: list[PendingWrite]) -> list[PendingWrite]:
        """One transaction over ``batch``: one savepoint per write, one ``COMMIT``. Returns the
        writes not yet tried when SQLite itself rolled the transaction back (they go into the
        next transaction); every other write is completed here. A batch of writes that may run
        twice (:func:`_repeatable`) first runs without savepoints (:func:`_first_run`): a write
        refused before it changed a row fails alone and the rest commit as they are. A savepoint
        would make SQLite copy every page the batch changes to its statement journal (a
        temporary file past 64 KiB) for an undo it almost never needs. When a write failed
        after changing rows, that run is rolled back (nothing of it written or acknowledged) and
        the batch runs again in a new transaction, each write in its savepoint, as any batch;
        so does the batch after it (a write that fails that way again does not make every batch
        run twice)."""
        if not _begin(conn, batch):
            return []
        if len(batch) == 1:  # a batch of one needs no savepoint: its transaction is the write's
            return self._single(conn, batch[0])
        rerun = False
        if self._write_isolation == "savepoint" and not self._undone_last and all(map(_repeatable, batch)):
            if _first_run(conn, batch):
                ran = [pending for pending in batch if not pending.done]
                if ran:
                    self._commit(conn, ran)
                else:
                    _rollback_quietly(conn)
                return []
            rerun = True
            _rollback_quietly(conn)
            batch = [pending for pending in batch if not pending.done]
            if not _begin(conn, batch):
                self._undone_last = True
                return []
        done: list[PendingWrite] = []
        isolation = self._write_isolation
        wrote_then_failed = False
        for index, pending in enumerate(batch):
            try:
                if isolation == "savepoint":
                    conn.execute("SAVEPOINT write")
            except sqlite3.Error as exc:
                _abandon(conn, done + batch[index:], exc)
                return []
            changes = conn.total_changes
            try:
                pending.body(conn)
            except Exception as exc:
                error = _write_error(exc, pending)
                wrote_then_failed = wrote_then_failed or conn.total_changes != changes
                if isolation == "abort":  # (tests only) as if SQLite rolled it all back
                    _rollback_quietly(conn)
                if not conn.in_transaction:  # SQLite rolled the whole transaction back
                    pending.fail(error)
                    _rolled_back(done, exc)
                    return batch[index + 1 :]
                if isolation == "continue":  # (tests only) its statements stay in the batch
                    pending.fail(error)
                    continue
                try:
                    conn.execute("ROLLBACK TO write")
                    conn.execute("RELEASE write")
                except sqlite3.Error as undo:
                    pending.fail(error)
                    _abandon(conn, done + batch[index + 1 :], undo)
                    return []
                pending.fail(error)
                continue
            try:
                if isolation == "savepoint":
                    conn.execute("RELEASE write")
            except sqlite3.Error as exc:
                _abandon(conn, [*done, pending, *batch[index + 1 :]], exc)
                return []
            done.append(pending)
        self._undone_last = rerun or wrote_then_failed
        if not done:
            _rollback_quietly(conn)
            return []
        self._commit(conn, done)
        return []

    def _commit(self, conn: sqlite3.Connection, done: list[PendingWrite]) -> None:
        """``COMMIT`` the batch's transaction holding ``done`` and complete them: succeeded, or
        all failed (``WriteOutcomeUnknown`` if the failed ``COMMIT`` ended the transaction)."""
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:  # still open: roll back, nothing of the batch was written
                _abandon(conn, done, exc)
                return
            for pending in done:
                pending.fail(
                    WriteOutcomeUnknown(
                        pending.runtime_id,
                        f"{pending.what}: COMMIT of its batch failed, the write may or may not be durable: {exc}",
                    )
                )
            return
        self._counted_commit()
        for pending in done:
            pending.succeed()

    def _fenced_write(self, runtime_id: str, what: str, fence: object, body: Body) -> None:
        """:meth:`_write` with the ownership check first, inside the same transaction."""
        checked = v.check_fence(runtime_id, fence, WriteFailed)
        self._write(runtime_id, what, _FenceChecked(runtime_id, what, checked, body))

    def _read(self, runtime_id: str, what: str, body: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``body`` in one read transaction (a consistent snapshot of the file)."""
        if not self._gate.enter():
            raise ReadFailed(runtime_id, f"{what}: store is closed")
        try:
            with self._pool.connection() as conn:
                _reset(conn)
                conn.execute("BEGIN")
                try:
                    return body(conn)
                finally:
                    if conn.in_transaction:
                        conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise _translate(exc, runtime_id, what, ReadFailed) from exc
        finally:
            self._gate.leave()

    # --- inputs ---------------------------------------------------------------------------
    def persist_input_state(self, runtime_id: str, row: InputRow, *, fence: Fence | None = None) -> None:
        rt = v.check_runtime_id(runtime_id, WriteFailed)
        params = self._input_param(rt, v.check_row(rt, 0, row, WriteFailed))
        self._write(rt, "persist_input_state", _InputWrite(rt, params, v.check_fence(rt, fence, WriteFailed)))

    def load_input_states(self, runtime_id: str) -> list[InputRow]:
        rt = v.check_runtime_id(runtime_id, ReadFailed)

        def body(conn: sqlite3.Connection) -> list[InputRow]:
            rows = conn.execute(
                f"SELECT {_ROW_COLUMNS} FROM {INPUTS} WHERE runtime_id = ? ORDER BY input_id", (rt,)
            ).fetchall()
            return [stored_row(rt, *found) for found in rows]

        return self._read(rt, "load_input_states", body)

    def load_active_input_states(self, runtime_id: str) -> list[InputRow]:
        rt = v.check_runtime_id(runtime_id, ReadFailed)

        def body(conn: sqlite3.Connection) -> list[InputRow]:
            # The rows come through the active-row index; the key index the writes rely on is
            # counted against the mark, so a damaged entry in it is found although not read.
            (total,) = conn.execute(_COUNT_BY_KEY_INDEX, (rt,)).fetchone()
            check_marks(rt, stored_mark(conn, rt), {"inputs": int(total)}, "the input key index", SQLITE_ADVICE)
            rows = conn.execute(
                f"SELECT {_ROW_COLUMNS} FROM {INPUTS} WHERE runtime_id = ? AND finished_at IS NULL ORDER BY input_id",
                (rt,),
            ).fetchall()
            return stored_rows(rt, rows)

        return self._read(rt, "load_active_input_states", body)

    def load_finished_inputs(self, runtime_id: str) -> list[FinishedInput]:
        rt = v.check_runtime_id(runtime_id, ReadFailed)

        def body(conn: sqlite3.Connection) -> list[FinishedInput]:
            rows = conn.execute(
                f"SELECT input_id, finished_at, idempotency_key, admission_seq FROM {INPUTS} "
                "WHERE runtime_id = ? AND finished_at IS NOT NULL "
                "ORDER BY finished_at, input_id",
                (rt,),
            ).fetchall()
            return finished_inputs(rt, rows)

        return self._read(rt, "load_finished_inputs", body)

    def load_input_state(self, runtime_id: str, input_id: str) -> InputRow | None:
        rt = v.check_runtime_id(runtime_id, ReadFailed)
        key = v.check_input_id(rt, input_id, ReadFailed)
        found = self._read(
            rt,
            "load_input_state",
            lambda conn: conn.execute(
                f"SELECT {_ROW_COLUMNS} FROM {INPUTS} WHERE runtime_id = ? AND input_id = ?", (rt, key)
            ).fetchone(),
        )
        return None if found is None else stored_row(rt, *found)

    def compact_inputs(self, runtime_id: str, input_ids: Sequence[str], *, fence: Fence | None = None) -> int:
        rt = v.check_runtime_id(runtime_id, WriteFailed)
        ids = v.check_input_ids(rt, input_ids, WriteFailed)
        removed: list[int] = []

        def body(conn: sqlite3.Connection) -> None:
            count = 0
            for start in range(0, len(ids), _IDS_PER_STATEMENT):
                chunk = ids[start : start + _IDS_PER_STATEMENT]
                marks = ",".join("?" * len(chunk))
                active = conn.execute(
                    f"SELECT input_id FROM {INPUTS} WHERE runtime_id = ? AND input_id IN ({marks}) "
                    "AND finished_at IS NULL LIMIT 1",
                    (rt, *chunk),
                ).fetchone()
                if active is not None:
                    raise WriteRefused(
                        rt, f"compact_inputs: input row {active[0]!r} is active, not finished; nothing was deleted"
                    )
                cur = conn.execute(
                    f"DELETE FROM {INPUTS} WHERE runtime_id = ? AND input_id IN ({marks}) AND finished_at IS NOT NULL",
                    (rt, *chunk),
                )
                count += cur.rowcount
            receipts = _release_receipts(conn, rt, ids)
            advance_mark(conn, rt, MarkStep(inputs_removed=count, receipts_removed=receipts))
            removed.append(count)

        self._fenced_write(rt, "compact_inputs", fence, body)
        return removed[0]

    @staticmethod
    def _input_params(rt: str, rows: Sequence[InputRow]) -> list[InputParams]:
        return [SqliteRuntimeStore._input_param(rt, row) for row in v.check_rows(rt, rows, WriteFailed)]

    @staticmethod
    def _input_param(rt: str, row: InputRow) -> InputParams:
        """The statement parameters of one checked row (its checksum computed here)."""
        input_id, payload = row.input_id, row.payload
        checksum = row_checksum(INPUTS, rt, input_id, payload)
        queued = row.queued
        if queued is not None:
            queued = bound_queued(queued, checksum)
        return (rt, input_id, payload, checksum, row.finished_at, row.idempotency_key, row.admission_seq, queued)

    # --- run boundaries -------------------------------------------------------------------
    def atomic_apply(
        self,
        runtime_id: str,
        *,
        session_snapshot: bytes | None,
        receipt: BoundaryReceipt,
        rows: Sequence[InputRow],
        fence: Fence | None = None,
    ) -> None:
        rt = v.check_runtime_id(runtime_id, WriteFailed)
        stored = receipt_row(rt, receipt)
        entries = index_entries(stored.receipt.contributing_input_ids)
        if session_snapshot is not None:
            v.check_bytes(rt, "session_snapshot", session_snapshot, WriteFailed)
        params = self._input_params(rt, rows)

        def body(conn: sqlite3.Connection) -> None:
            if session_snapshot is not None:
                snapshot_sum = row_checksum(SNAPSHOTS, rt, "", session_snapshot)
                conn.execute(_UPSERT_SNAPSHOT, (rt, session_snapshot, snapshot_sum))
            try:
                conn.execute(
                    f"INSERT INTO {RECEIPTS} (runtime_id, run_id, sequence, receipt, checksum) VALUES (?, ?, ?, ?, ?)",
                    stored.params,
                )
            except sqlite3.IntegrityError:
                raise duplicate_receipt(rt, stored.receipt) from None
            run, seq = stored.params[1], stored.params[2]
            conn.executemany(INSERT_RECEIPT_INPUT, [(rt, i, run, seq) for i in entries])
            added = _upsert_inputs(conn, rt, params)
            snapshot_written = True if session_snapshot is not None else None
            advance_mark(conn, rt, MarkStep(inputs_added=added, receipts_added=1, session_snapshot=snapshot_written))

        self._fenced_write(rt, "atomic_apply", fence, body)

    def load_boundary_receipt(self, runtime_id: str, run_id: str, sequence: int) -> BoundaryReceipt | None:
        rt = v.check_runtime_id(runtime_id, ReadFailed)
        run, seq = v.check_run_key(rt, run_id, sequence, ReadFailed)
        found = self._read(
            rt,
            "load_boundary_receipt",
            lambda conn: conn.execute(
                f"SELECT receipt, checksum FROM {RECEIPTS} WHERE runtime_id = ? AND run_id = ? AND sequence = ?",
                (rt, run, v.to_signed64(seq)),
            ).fetchone(),
        )
        return None if found is None else stored_receipt(rt, run, seq, found[0], found[1])

    def load_session_snapshot(self, runtime_id: str) -> bytes | None:
        return self._load_single(runtime_id, SNAPSHOTS, "snapshot", "load_session_snapshot")

    # --- machine lifecycle ----------------------------------------------------------------
    def commit_machine_lifecycle(
        self, runtime_id: str, lifecycle: bytes, rows: Sequence[InputRow], *, fence: Fence | None = None
    ) -> None:
        rt = v.check_runtime_id(runtime_id, WriteFailed)
        v.check_bytes(rt, "lifecycle", lifecycle, WriteFailed)
        params = self._input_params(rt, rows)

        def body(conn: sqlite3.Connection) -> None:
            conn.execute(_UPSERT_LIFECYCLE, (rt, lifecycle, row_checksum(LIFECYCLES, rt, "", lifecycle)))
            added = _upsert_inputs(conn, rt, params)
            advance_mark(conn, rt, MarkStep(inputs_added=added, lifecycle=True))

        self._fenced_write(rt, "commit_machine_lifecycle", fence, body)

    def load_machine_lifecycle(self, runtime_id: str) -> bytes | None:
        return self._load_single(runtime_id, LIFECYCLES, "lifecycle", "load_machine_lifecycle")

    # --- operation registry ---------------------------------------------------------------
    def append_ops_record(self, runtime_id: str, record: bytes, *, fence: Fence | None = None) -> None:
        rt = v.check_runtime_id(runtime_id, WriteFailed)
        v.check_bytes(rt, "ops record", record, WriteFailed)

        def body(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                f"INSERT INTO {OPS_RECORDS} (runtime_id, record, checksum) VALUES (?, ?, '') RETURNING seq",
                (rt, record),
            )
            (seq,) = cur.fetchone()
            cur.close()
            conn.execute(
                f"UPDATE {OPS_RECORDS} SET checksum = ? WHERE seq = ?",
                (row_checksum(OPS_RECORDS, rt, str(seq), record), seq),
            )
            advance_mark(conn, rt, MarkStep(ops_records_added=1))

        self._fenced_write(rt, "append_ops_record", fence, body)

    def persist_ops_lifecycle(self, runtime_id: str, snapshot: bytes, *, fence: Fence | None = None) -> None:
        rt = v.check_runtime_id(runtime_id, WriteFailed)
        v.check_bytes(rt, "ops snapshot", snapshot, WriteFailed)

        def body(conn: sqlite3.Connection) -> None:
            conn.execute(_UPSERT_OPS_SNAPSHOT, (rt, snapshot, row_checksum(OPS_SNAPSHOTS, rt, "", snapshot)))
            conn.execute(f"DELETE FROM {OPS_RECORDS} WHERE runtime_id = ?", (rt,))
            advance_mark(conn, rt, MarkStep(ops_snapshot=True, ops_records_cleared=True))

        self._fenced_write(rt, "persist_ops_lifecycle", fence, body)

    def load_ops_lifecycle(self, runtime_id: str) -> OpsLifecycleRecords | None:
        rt = v.check_runtime_id(runtime_id, ReadFailed)

        def body(conn: sqlite3.Connection) -> OpsLifecycleRecords | None:
            snap = conn.execute(
                f"SELECT snapshot, checksum FROM {OPS_SNAPSHOTS} WHERE runtime_id = ?", (rt,)
            ).fetchone()
            records = conn.execute(
                f"SELECT seq, record, checksum FROM {OPS_RECORDS} WHERE runtime_id = ? ORDER BY seq", (rt,)
            ).fetchall()
            if snap is None and not records:
                return None
            data = None if snap is None else verified_payload(OPS_SNAPSHOTS, rt, "", snap[0], snap[1])
            appended = tuple(verified_payload(OPS_RECORDS, rt, str(s), r, c) for s, r, c in records)
            return OpsLifecycleRecords(data, appended)

        return self._read(rt, "load_ops_lifecycle", body)

    def delete_ops_lifecycle(self, runtime_id: str, *, fence: Fence | None = None) -> None:
        rt = v.check_runtime_id(runtime_id, WriteFailed)

        def body(conn: sqlite3.Connection) -> None:
            conn.execute(f"DELETE FROM {OPS_SNAPSHOTS} WHERE runtime_id = ?", (rt,))
            conn.execute(f"DELETE FROM {OPS_RECORDS} WHERE runtime_id = ?", (rt,))
            advance_mark(conn, rt, MarkStep(ops_snapshot=False, ops_records_cleared=True))

        self._fenced_write(rt, "delete_ops_lifecycle", fence, body)

    # --- damage detection and quarantine -------------------------------------------------
    def load_high_water(self, runtime_id: str) -> HighWater | None:
        rt = v.check_runtime_id(runtime_id, ReadFailed)
        return self._read(rt, "load_high_water", lambda conn: stored_mark(conn, rt))

    def scan_input_states(self, runtime_id: str) -> list[ScannedRow]:
        rt = v.check_runtime_id(runtime_id, ReadFailed)

        def body(conn: sqlite3.Connection) -> list[ScannedRow]:
            # The checksum is read as bytes: a damaged one must mark its row, not fail the scan.
            rows = conn.execute(
                f"SELECT input_id, payload, CAST(checksum AS BLOB), finished_at, idempotency_key, admission_seq "
                f"FROM {INPUTS} WHERE runtime_id = ? ORDER BY input_id",
                (rt,),
            ).fetchall()
            return [_scanned(rt, str(i), p, c, (at, k, q)) for i, p, c, at, k, q in rows]

        return self._read(rt, "scan_input_states", body)

    def quarantine_row(
        self, runtime_id: str, input_id: str, reason: str, *, fence: Fence | None = None
    ) -> QuarantinedRow:
        rt = v.check_runtime_id(runtime_id, WriteFailed)
        key = v.check_input_id(rt, input_id, WriteFailed)
        why = v.check_reason(rt, reason, WriteFailed)
        moved: list[QuarantinedRow] = []

        def body(conn: sqlite3.Connection) -> None:
            found = conn.execute(
                f"SELECT payload, CAST(checksum AS BLOB) FROM {INPUTS} WHERE runtime_id = ? AND input_id = ?", (rt, key)
            ).fetchone()
            if found is None:
                raise RowNotStored(rt, f"quarantine_row: no input row {key!r} is stored; nothing was moved")
            (rows,) = conn.execute(_COUNT_BY_KEY_INDEX, (rt,)).fetchone()
            if (refusal := quarantine_refusal(stored_mark(conn, rt), int(rows))) is not None:
                raise quarantine_refused(rt, refusal)
            scanned = _scanned(rt, key, found[0], found[1])
            row = QuarantinedRow(key, scanned.payload, scanned.intact, why, self.clock())
            conn.execute(f"DELETE FROM {INPUTS} WHERE runtime_id = ? AND input_id = ?", (rt, key))
            cur = conn.execute(
                f"INSERT INTO {QUARANTINE} (runtime_id, input_id, payload, intact, reason, quarantined_at, checksum) "
                "VALUES (?, ?, ?, ?, ?, ?, '') RETURNING seq",
                (rt, key, row.payload, int(row.intact), why, row.quarantined_at),
            )
            (seq,) = cur.fetchone()
            cur.close()
            conn.execute(
                f"UPDATE {QUARANTINE} SET checksum = ? WHERE seq = ?",
                (row_checksum(QUARANTINE, rt, str(seq), row.sealed_form()), seq),
            )
            advance_mark(conn, rt, MarkStep(inputs_removed=1, quarantined_added=1))
            moved.append(row)

        self._fenced_write(rt, "quarantine_row", fence, body)
        return moved[0]

    def load_quarantined(self, runtime_id: str) -> list[QuarantinedRow]:
        rt = v.check_runtime_id(runtime_id, ReadFailed)

        def body(conn: sqlite3.Connection) -> list[QuarantinedRow]:
            rows = conn.execute(
                f"SELECT seq, input_id, payload, intact, reason, quarantined_at, checksum FROM {QUARANTINE} "
                "WHERE runtime_id = ? ORDER BY seq",
                (rt,),
            ).fetchall()
            found: list[QuarantinedRow] = []
            for seq, input_id, payload, was_intact, reason, at, checksum in rows:
                if not isinstance(payload, bytes) or not isinstance(at, int | float):
                    raise Corrupt(rt, f"row {QUARANTINE}[{seq}] has malformed columns")
                row = QuarantinedRow(str(input_id), payload, bool(was_intact), str(reason), float(at))
                verified_payload(QUARANTINE, rt, str(seq), row.sealed_form(), checksum)
                found.append(row)
            return found

        return self._read(rt, "load_quarantined", body)

    # --- ownership ------------------------------------------------------------------------
    def claim_lease(self, runtime_id: str, owner: str, duration_s: float) -> Lease:
        rt = v.check_runtime_id(runtime_id, WriteFailed)
        who = v.check_owner(rt, owner, WriteFailed)
        duration = v.check_duration(rt, duration_s, WriteFailed)
        claimed: list[Lease] = []
        # A live lease of another owner is answered from a read (``LeaseHeld``): no write lock,
        # so waiting standbys never queue behind the owner's renewals. Whatever the read saw, a
        # claim that may succeed decides again on the row read under the write lock.
        try:
            self._read(rt, "claim_lease", lambda conn: _refuse_if_held(conn, rt, who, duration, self.clock()))
        except ReadFailed as exc:  # a claim is a write: its failures are WriteFailed
            raise WriteFailed(rt, exc.detail) from exc

        def body(conn: sqlite3.Connection) -> None:
            lease = claim_outcome(rt, _stored_lease(conn, rt), who, duration, self.clock())
            conn.execute(_UPSERT_LEASE, lease_params(lease))
            claimed.append(lease)

        self._write(rt, "claim_lease", body)
        return claimed[0]

    def renew_lease(self, fence: Fence, runtime_id: str, duration_s: float) -> Lease:
        rt = v.check_runtime_id(runtime_id, WriteFailed)
        checked = v.check_required_fence(rt, fence, WriteFailed)
        duration = v.check_duration(rt, duration_s, WriteFailed)
        renewed: list[Lease] = []

        def body(conn: sqlite3.Connection) -> None:
            lease = renewal_outcome(rt, _stored_lease(conn, rt), checked, duration, self.clock())
            conn.execute(_UPSERT_LEASE, lease_params(lease))
            renewed.append(lease)

        self._write(rt, "renew_lease", body)
        return renewed[0]

    def renew_leases(self, renewals: Sequence[tuple[Fence, str]], duration_s: float) -> list[RenewalOutcome]:
        """``renew_lease`` for each pair in one write transaction (see
        :class:`~meerkat_runtime.store.protocol.RenewsLeases`)."""
        duration, items = v.check_renewals(renewals, duration_s, STORE_SCOPE)
        outcomes: list[RenewalOutcome | None] = [item if not isinstance(item, tuple) else None for item in items]
        todo = [(index, item) for index, item in enumerate(items) if isinstance(item, tuple)]
        if not todo:
            return [outcome for outcome in outcomes if outcome is not None]

        def body(conn: sqlite3.Connection) -> None:
            now = self.clock()
            for index, (rt, fence) in todo:
                try:
                    lease = renewal_outcome(rt, _stored_lease(conn, rt), fence, duration, now)
                except (OwnershipLost, Corrupt) as refused:
                    outcomes[index] = refused
                    continue
                conn.execute(_UPSERT_LEASE, lease_params(lease))
                outcomes[index] = lease

        self._write(todo[0][1][0], "renew_leases", body)
        done = [outcome for outcome in outcomes if outcome is not None]
        assert len(done) == len(items)
        return done

    def release_lease(self, fence: Fence, runtime_id: str) -> None:
        rt = v.check_runtime_id(runtime_id, WriteFailed)
        checked = v.check_required_fence(rt, fence, WriteFailed)

        def body(conn: sqlite3.Connection) -> None:
            lease = released(_stored_lease(conn, rt), checked, self.clock())
            if lease is not None:
                conn.execute(_UPSERT_LEASE, lease_params(lease))

        self._write(rt, "release_lease", body)

    def load_lease(self, runtime_id: str) -> Lease | None:
        rt = v.check_runtime_id(runtime_id, ReadFailed)
        return self._read(rt, "load_lease", lambda conn: _stored_lease(conn, rt))

    # --- listing --------------------------------------------------------------------------
    def list_runtimes(self) -> list[str]:
        tables = (INPUTS, RECEIPTS, SNAPSHOTS, LIFECYCLES, OPS_SNAPSHOTS, OPS_RECORDS, LEASES, HIGH_WATER, QUARANTINE)
        query = " UNION ".join(f"SELECT runtime_id FROM {table}" for table in tables)
        found = self._read(STORE_SCOPE, "list_runtimes", lambda conn: conn.execute(query).fetchall())
        return sorted({str(runtime_id) for (runtime_id,) in found})

    # --- housekeeping ---------------------------------------------------------------------
    def close(self) -> None:
        """Wait for calls in flight, then close every connection. Idempotent."""
        if self._committer is not None:  # writes waiting for their loop's turn are in flight
            self._committer.hand_over_staged()
        if self._gate.close():
            self._release_files()

    def __enter__(self) -> SqliteRuntimeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _load_single(self, runtime_id: str, table: str, column: str, what: str) -> bytes | None:
        rt = v.check_runtime_id(runtime_id, ReadFailed)
        found = self._read(
            rt,
            what,
            lambda conn: conn.execute(f"SELECT {column}, checksum FROM {table} WHERE runtime_id = ?", (rt,)).fetchone(),
        )
        return None if found is None else verified_payload(table, rt, "", found[0], found[1])


def _release_receipts(conn: sqlite3.Connection, rt: str, ids: Sequence[str]) -> int:
    """Delete the receipts the compaction of ``ids`` releases (:mod:`.receipt_retention`), in
    the caller's transaction; returns how many were deleted."""

    def any_stored(rest: frozenset[str]) -> bool:
        names = sorted(rest)
        for start in range(0, len(names), _IDS_PER_STATEMENT):
            chunk = names[start : start + _IDS_PER_STATEMENT]
            marks = ",".join("?" * len(chunk))
            found = conn.execute(
                f"SELECT 1 FROM {INPUTS} WHERE runtime_id = ? AND input_id IN ({marks}) LIMIT 1", (rt, *chunk)
            ).fetchone()
            if found is not None:
                return True
        return False

    keys: set[tuple[str, int]] = set()
    for start in range(0, len(ids), _IDS_PER_STATEMENT):
        chunk = ids[start : start + _IDS_PER_STATEMENT]
        marks = ",".join("?" * len(chunk))
        keys.update(
            conn.execute(
                f"SELECT run_id, sequence FROM {RECEIPT_INPUTS} WHERE runtime_id = ? AND input_id IN ({marks})",
                (rt, *chunk),
            ).fetchall()
        )
    receipts = []
    # an entry damaged into other types names no receipt this store wrote: skipped (its receipt,
    # if any, is kept, as one that names no input)
    for run, seq in sorted((run, seq) for run, seq in keys if isinstance(run, str) and type(seq) is int):
        found = conn.execute(
            f"SELECT receipt FROM {RECEIPTS} WHERE runtime_id = ? AND run_id = ? AND sequence = ?", (rt, run, seq)
        ).fetchone()
        if found is not None:
            receipts.append((str(run), v.from_signed64(int(seq)), found[0]))
    gone = released_receipts(receipts, frozenset(ids), any_stored)
    conn.executemany(
        f"DELETE FROM {RECEIPTS} WHERE runtime_id = ? AND run_id = ? AND sequence = ?",
        [(rt, run, v.to_signed64(seq)) for (run, seq), _ in gone],
    )
    conn.executemany(
        f"DELETE FROM {RECEIPT_INPUTS} WHERE runtime_id = ? AND input_id = ? AND run_id = ? AND sequence = ?",
        [(rt, i, run, v.to_signed64(seq)) for (run, seq), named in gone for i in sorted(named)],
    )
    return len(gone)
