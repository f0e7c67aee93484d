"""Schema of the SQLite store, its version table and forward migrations.

The version lives in ``meerkat_schema_version`` (one row). Opening a file runs every migration
step above the stored version, in order, inside the caller's write transaction, so a file is
never left half-migrated. A stored version newer than ``SCHEMA_VERSION`` means the file was
written by a newer release: it is refused with ``VersionMismatch`` and left untouched.

Versions:

1. Tables mirroring the upstream layout (input rows, boundary receipts, session snapshots,
   lifecycle records, ops snapshots), each row with a ``checksum`` column.
2. ``runtime_ops_records``: the append-only log of ops terminal-transition records, compacted
   by ``persist_ops_lifecycle``.
3. ``runtime_leases``: one ownership lease per runtime (owner, fencing token, expiry in the
   store's clock), checked inside every write's transaction.
4. ``runtime_high_water``: one high-water mark per runtime, advanced by every data write in its
   own transaction; ``runtime_quarantine``: input rows moved out by ``quarantine_row``, their
   stored bytes kept. Upgrading a version-3 file computes the mark of every runtime it holds
   from its rows (``writes`` starts at 0); it is refused while a lease in the file is live (a
   worker of that release, which writes no marks, still writes it:
   :mod:`~meerkat_runtime.store.migration_leases`).
5. What the runtime says about each input row beside its payload (``finished_at``,
   ``idempotency_key``, ``admission_seq``) and two partial indexes, one over the active rows and
   one over the finished rows (covering what ``load_finished_inputs`` lists), so that a restart
   reads the backlog and not the history. Rows of an older file have no ``finished_at`` and
   read as active until the runtime rewrites them (its first recovery does).
6. ``queued``: what the runtime recovers a waiting input from without reading its payload (bytes
   it writes and reads; the store only keeps it). Rows of an older file have none there and
   are recovered from their payloads as before, until the runtime next writes them. The store
   binds the value to the row's checksum, so one a version-5 writer left beside a payload it
   rewrote is ignored (:func:`~meerkat_runtime.store.sql_rows.unbound_queued`).
7. ``runtime_receipt_inputs``: one entry ``(runtime_id, input_id, run_id, sequence)`` per
   contributing input of each boundary receipt, so that ``compact_inputs`` finds the receipts
   naming the inputs it deletes by key instead of reading every receipt
   (:mod:`~meerkat_runtime.store.receipt_retention`). Upgrading a version-6 file reads every
   receipt once and writes its entries (a receipt that does not parse gets none: it is kept).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from meerkat_runtime.store.high_water import HighWater
from meerkat_runtime.store.integrity import row_checksum
from meerkat_runtime.store.migration_leases import refusal
from meerkat_runtime.store.receipt_retention import contributors, index_entries
from meerkat_runtime.store.tables import (
    HIGH_WATER,
    INPUTS,
    LEASES,
    LIFECYCLES,
    OPS_RECORDS,
    OPS_SNAPSHOTS,
    RECEIPT_INPUTS,
    RECEIPTS,
    SNAPSHOTS,
)
from meerkat_runtime.vocab.errors import VersionMismatch

SCHEMA_VERSION = 7
"""The version this release writes and reads."""

STORE_SCOPE = "*"
"""Runtime id used in errors that concern the whole file rather than one runtime."""

_V1 = (
    """CREATE TABLE meerkat_schema_version (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL
    )""",
    "INSERT INTO meerkat_schema_version (id, version) VALUES (1, 0)",
    """CREATE TABLE runtime_input_states (
        runtime_id TEXT NOT NULL, input_id TEXT NOT NULL, payload BLOB NOT NULL, checksum TEXT NOT NULL,
        PRIMARY KEY (runtime_id, input_id)
    )""",
    """CREATE TABLE runtime_boundary_receipts (
        runtime_id TEXT NOT NULL, run_id TEXT NOT NULL, sequence INTEGER NOT NULL,
        receipt BLOB NOT NULL, checksum TEXT NOT NULL,
        PRIMARY KEY (runtime_id, run_id, sequence)
    )""",
    """CREATE TABLE runtime_session_snapshots (
        runtime_id TEXT PRIMARY KEY, snapshot BLOB NOT NULL, checksum TEXT NOT NULL
    )""",
    """CREATE TABLE runtime_states (
        runtime_id TEXT PRIMARY KEY, lifecycle BLOB NOT NULL, checksum TEXT NOT NULL
    )""",
    """CREATE TABLE runtime_ops_lifecycle (
        runtime_id TEXT PRIMARY KEY, snapshot BLOB NOT NULL, checksum TEXT NOT NULL
    )""",
)

_V2 = (
    """CREATE TABLE runtime_ops_records (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, runtime_id TEXT NOT NULL,
        record BLOB NOT NULL, checksum TEXT NOT NULL
    )""",
    "CREATE INDEX runtime_ops_records_by_runtime ON runtime_ops_records (runtime_id, seq)",
)

_V3 = (
    """CREATE TABLE runtime_leases (
        runtime_id TEXT PRIMARY KEY, owner TEXT NOT NULL, token INTEGER NOT NULL,
        expires_at REAL NOT NULL, checksum TEXT NOT NULL
    )""",
)


_V4 = (
    """CREATE TABLE runtime_high_water (
        runtime_id TEXT PRIMARY KEY, writes INTEGER NOT NULL, inputs INTEGER NOT NULL,
        receipts INTEGER NOT NULL, session_snapshots INTEGER NOT NULL, lifecycles INTEGER NOT NULL,
        ops_snapshots INTEGER NOT NULL, ops_records INTEGER NOT NULL, quarantined INTEGER NOT NULL,
        checksum TEXT NOT NULL
    )""",
    """CREATE TABLE runtime_quarantine (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, runtime_id TEXT NOT NULL, input_id TEXT NOT NULL,
        payload BLOB NOT NULL, intact INTEGER NOT NULL, reason TEXT NOT NULL, quarantined_at REAL NOT NULL,
        checksum TEXT NOT NULL
    )""",
    "CREATE INDEX runtime_quarantine_by_runtime ON runtime_quarantine (runtime_id, seq)",
)

_V5 = (
    "ALTER TABLE runtime_input_states ADD COLUMN finished_at REAL",
    "ALTER TABLE runtime_input_states ADD COLUMN idempotency_key TEXT",
    "ALTER TABLE runtime_input_states ADD COLUMN admission_seq INTEGER",
    "CREATE INDEX runtime_inputs_active ON runtime_input_states (runtime_id, input_id) WHERE finished_at IS NULL",
    """CREATE INDEX runtime_inputs_finished ON runtime_input_states
        (runtime_id, finished_at, input_id, idempotency_key, admission_seq) WHERE finished_at IS NOT NULL""",
)

_V6 = ("ALTER TABLE runtime_input_states ADD COLUMN queued BLOB",)

_V7 = f"""CREATE TABLE {RECEIPT_INPUTS} (
    runtime_id TEXT NOT NULL, input_id TEXT NOT NULL, run_id TEXT NOT NULL, sequence INTEGER NOT NULL,
    PRIMARY KEY (runtime_id, input_id, run_id, sequence)
) WITHOUT ROWID"""

INSERT_RECEIPT_INPUT = (
    f"INSERT OR IGNORE INTO {RECEIPT_INPUTS} (runtime_id, input_id, run_id, sequence) VALUES (?, ?, ?, ?)"
)
"""One index entry of a receipt: ``(runtime_id, input_id, run_id, sequence as stored)``."""


def _v7(conn: sqlite3.Connection) -> None:
    """Create the receipt index, then the entries of every receipt already stored."""
    conn.execute(_V7)
    entries = []
    for runtime_id, run_id, sequence, body in conn.execute(
        f"SELECT runtime_id, run_id, sequence, receipt FROM {RECEIPTS}"
    ):
        ids = contributors(body)
        for input_id in index_entries(sorted(ids or ())):
            entries.append((runtime_id, input_id, run_id, sequence))
    conn.executemany(INSERT_RECEIPT_INPUT, entries)


_COUNTED = (
    ("inputs", INPUTS),
    ("receipts", RECEIPTS),
    ("session_snapshots", SNAPSHOTS),
    ("lifecycles", LIFECYCLES),
    ("ops_snapshots", OPS_SNAPSHOTS),
    ("ops_records", OPS_RECORDS),
)


def _v4(conn: sqlite3.Connection) -> None:
    """Create the mark and quarantine tables, then the mark of every runtime already stored."""
    _run(_V4)(conn)
    counts: dict[str, dict[str, int]] = {}
    for name, table in _COUNTED:
        for runtime_id, count in conn.execute(f"SELECT runtime_id, count(*) FROM {table} GROUP BY runtime_id"):
            counts.setdefault(str(runtime_id), {})[name] = int(count)
    for runtime_id, found in counts.items():
        mark = HighWater(runtime_id, **found)
        conn.execute(
            f"INSERT INTO {HIGH_WATER} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (runtime_id, *mark.counters(), row_checksum(HIGH_WATER, runtime_id, "", mark.payload())),
        )


def _run(statements: tuple[str, ...]) -> Callable[[sqlite3.Connection], None]:
    def step(conn: sqlite3.Connection) -> None:
        for statement in statements:
            conn.execute(statement)

    return step


MIGRATIONS: tuple[tuple[int, Callable[[sqlite3.Connection], None]], ...] = (
    (1, _run(_V1)),
    (2, _run(_V2)),
    (3, _run(_V3)),
    (4, _v4),
    (5, _run(_V5)),
    (6, _run(_V6)),
    (7, _v7),
)
"""``(version reached, step)`` in ascending order; step ``n`` upgrades version ``n - 1``."""

STEP_NOTES: dict[int, str] = {
    1: "tables for input rows, boundary receipts, session snapshots, lifecycle records and ops snapshots",
    2: "the append-only log of ops terminal-transition records",
    3: "ownership leases (owner, fencing token, expiry)",
    4: "high-water marks (computed for every runtime already stored) and the quarantine",
    5: "finished-input index (finished_at, idempotency key, admission position) beside each input row",
    6: "the recovery fields of a queued input beside its row (a restart need not read its payload)",
    7: "an index of the boundary receipts by contributing input (filled from the receipts stored)",
}
"""What each migration step adds, in words (``meerkat-runtime migrate`` prints them)."""


def stored_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the file; 0 for an empty file."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meerkat_schema_version'"
    ).fetchone()
    if exists is None:
        return 0
    row = conn.execute("SELECT version FROM meerkat_schema_version WHERE id = 1").fetchone()
    if row is None or not isinstance(row[0], int):
        raise VersionMismatch(STORE_SCOPE, "schema version table holds no valid version")
    return int(row[0])


class NotAMeerkatStore(VersionMismatch):
    """A file without a meerkat schema version (version 0): empty, or another application's
    database. Opened for writing, an empty file gets the schema; read-only, it is refused."""


def _foreign(named: str) -> NotAMeerkatStore:
    """The refusal of another application's database (tables, no meerkat schema version)."""
    return NotAMeerkatStore(
        STORE_SCOPE, f"{named} is not a meerkat store: it holds other tables and no meerkat schema version"
    )


def _holds_anything(conn: sqlite3.Connection) -> bool:
    """Whether the file holds any table, index, view or trigger."""
    return conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone() is not None


_WHAT_IS_THERE = (
    "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meerkat_schema_version'), "
    "EXISTS (SELECT 1 FROM sqlite_master)"
)
"""Whether the file has a meerkat schema version table, and whether it has anything at all: one
statement, so both come from one snapshot of the file."""


def not_a_store(conn: sqlite3.Connection, path: str) -> NotAMeerkatStore:
    """The refusal of ``path``, a file at schema version 0, saying whether it is empty."""
    if _holds_anything(conn):
        return _foreign(repr(path))
    text = "not a meerkat store yet (the runtime creates the schema when it opens the file for writing)"
    return NotAMeerkatStore(STORE_SCOPE, f"{path!r} is empty: {text}")


def refuse_foreign(conn: sqlite3.Connection, path: str) -> None:
    """Raise :class:`NotAMeerkatStore` if the file holds tables but no meerkat schema version
    (another application's database): a store opened on it for writing would change it (its
    journal mode, then the schema). An empty file passes (the store creates the schema), and so
    does a file another process is creating the schema in, whether its transaction committed
    or not: both facts are read in one statement (one snapshot), and the schema is created in
    one transaction, so no snapshot holds the other process's tables without the version.
    (Reading them in two statements, the schema could commit in between: the file would look
    empty, then hold tables without the version table that the first statement missed.)"""
    versioned, anything = conn.execute(_WHAT_IS_THERE).fetchone()
    if versioned:
        stored_version(conn)  # a version table without a valid version is refused here
    elif anything:
        raise _foreign(repr(path))


MARKS_VERSION = 4
"""The version that introduces the high-water marks: a file below it was written by a release
that writes none (see :mod:`~meerkat_runtime.store.migration_leases`)."""


def migrate(
    conn: sqlite3.Connection,
    target: int = SCHEMA_VERSION,
    *,
    path: str | None = None,
    now: float | None = None,
) -> int:
    """Upgrade the schema to ``target`` inside the caller's transaction; return the old version.

    Raises ``VersionMismatch`` (changing nothing) if the file is newer than this release knows,
    and ``NotAMeerkatStore`` if it holds tables but no schema version (another application's
    database, ``path`` naming it: under the caller's write lock this is what the file is, not what
    an earlier read saw). With ``now`` (the store's clock), an upgrade that introduces the
    high-water marks to a file holding leases raises ``MigrationRefused`` while one of them is
    live: a worker of the older release still writes the file.
    """
    current = stored_version(conn)
    if current == 0 and _holds_anything(conn):
        raise _foreign("the database file" if path is None else repr(path))
    if current > SCHEMA_VERSION:
        raise VersionMismatch(
            STORE_SCOPE,
            f"schema version {current} is newer than this release supports ({SCHEMA_VERSION}); "
            "refusing to open the file",
        )
    if now is not None and 3 <= current < MARKS_VERSION <= target:
        leases = conn.execute(f"SELECT runtime_id, owner, expires_at FROM {LEASES}").fetchall()
        refused = refusal(current, leases, now, "the database file" if path is None else repr(path))
        if refused is not None:
            raise refused
    for version, step in MIGRATIONS:
        if current < version <= target:
            step(conn)
            conn.execute("UPDATE meerkat_schema_version SET version = ? WHERE id = 1", (version,))
    return current
