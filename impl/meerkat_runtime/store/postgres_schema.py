"""Schema of the PostgreSQL store, its version table and forward migrations.

All tables live in one PostgreSQL schema (namespace, default ``meerkat``), created when
missing. The version lives in ``<schema>.meerkat_schema_version`` (one row). Opening a store
runs every migration step above the stored version, in order, inside one transaction that
holds an advisory lock (so several processes opening an empty database at once migrate it
once; DDL is transactional, so a database is never left half-migrated). A stored version
newer than ``SCHEMA_VERSION`` means a newer release wrote the database: it is refused with
``VersionMismatch`` and left untouched.

Versions:

1. Every table of the SQLite store's version 3 (same names and keys; ``bytea`` payloads,
   a ``checksum`` per row, ids in the ``"C"`` collation so rows load in code-point order):
   input rows, boundary receipts, session snapshots, lifecycle records, ops snapshots, the
   ops record log (``runtime_ops_records``, its sequence) and the ownership leases
   (``runtime_leases``: expiry in seconds since the epoch on the server's clock).
2. ``runtime_high_water``: one high-water mark per runtime, advanced by every data write in its
   own transaction (the server adds the counts; no row checksum, see
   :mod:`~meerkat_runtime.store.postgres_marks`); ``runtime_quarantine``: input rows moved out
   by ``quarantine_row``, their stored bytes kept, each row checksummed. Upgrading a version-1
   schema computes the mark of every runtime it holds from its rows (``writes`` starts at 0),
   as the SQLite store's version 4 does, and is refused while a lease in the schema is live
   (:mod:`~meerkat_runtime.store.migration_leases`).
3. The finished-input columns of input rows (``finished_at``, ``idempotency_key``,
   ``admission_seq``) and partial indexes over the active and the finished rows (as the SQLite
   store's version 5). Rows of a version-2 schema keep ``NULL`` there and are read as active;
   session recovery finds the finished ones among them and writes them back with the columns
   (an update: the high-water mark's input count does not move).
4. ``queued``: the recovery fields of a waiting input beside its row (as the SQLite store's
   version 6). Rows of a version-3 schema keep ``NULL`` there and are recovered from their
   payloads; a value a version-3 writer left beside a payload it rewrote is ignored (it is
   bound to the row's checksum: :func:`~meerkat_runtime.store.sql_rows.unbound_queued`).
5. ``store_id`` in the version table's row: the store's identity, a random UUID written once by
   the migration that creates or upgrades the schema (a row found without one — cleared by hand
   — gets one at the next read-write open, under the same lock). Every process and host that
   opens the schema reads the same id, however its connection string names the server, so it is
   the store's authority key (:func:`authority_key`; events' ``store`` field, and whether two
   machines share one store). A column of the version table rather than a table of its own: a
   worker granted only ``SELECT`` on the tables that existed when it was set up can read it. It
   is a version of its own because adding it is DDL the schema's owner runs (as every
   migration), while a worker's read-write open may hold no more than the documented grants.
6. ``runtime_receipt_inputs``: one entry ``(runtime_id, input_id, run_id, sequence)`` per
   contributing input of each boundary receipt (as the SQLite store's version 7), so that
   ``compact_inputs`` finds the receipts naming the inputs it deletes by key
   (:mod:`~meerkat_runtime.store.receipt_retention`). Upgrading a version-5 schema reads every
   receipt once and writes its entries (a receipt that does not parse gets none: it is kept).
   A new table: workers need the documented grants again.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import psycopg

from meerkat_runtime.store.migration_leases import refusal
from meerkat_runtime.store.receipt_retention import contributors, index_entries
from meerkat_runtime.store.sqlite_schema import NotAMeerkatStore
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
from meerkat_runtime.vocab.errors import VersionMismatch

SCHEMA_VERSION = 6
"""The version this release writes and reads."""

STORE_SCOPE = "*"
"""Runtime id used in errors that concern the whole database rather than one runtime."""

DEFAULT_SCHEMA = "meerkat"

MIGRATION_LOCK = 0x6D65_726B_6174_0001
"""Advisory lock key held while a schema is created or migrated."""

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def check_schema_name(schema: object) -> str:
    """A schema name the store can use unquoted: lower-case letters, digits, ``_``, at most 63."""
    if not isinstance(schema, str) or not _NAME.fullmatch(schema) or schema.startswith("pg_"):
        raise ValueError(
            f"schema must be 1-63 lower-case letters, digits or '_' (not starting with a digit or 'pg_'), "
            f"got {schema!r}"
        )
    return schema


def _v1(s: str) -> tuple[str, ...]:
    return (
        f"""CREATE TABLE {s}.meerkat_schema_version (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            version INTEGER NOT NULL
        )""",
        f"INSERT INTO {s}.meerkat_schema_version (id, version) VALUES (1, 0)",
        f"""CREATE TABLE {s}.runtime_input_states (
            runtime_id TEXT COLLATE "C" NOT NULL, input_id TEXT COLLATE "C" NOT NULL,
            payload BYTEA NOT NULL, checksum TEXT NOT NULL,
            PRIMARY KEY (runtime_id, input_id)
        )""",
        f"""CREATE TABLE {s}.runtime_boundary_receipts (
            runtime_id TEXT COLLATE "C" NOT NULL, run_id TEXT COLLATE "C" NOT NULL, sequence BIGINT NOT NULL,
            receipt BYTEA NOT NULL, checksum TEXT NOT NULL,
            PRIMARY KEY (runtime_id, run_id, sequence)
        )""",
        f"""CREATE TABLE {s}.runtime_session_snapshots (
            runtime_id TEXT COLLATE "C" PRIMARY KEY, snapshot BYTEA NOT NULL, checksum TEXT NOT NULL
        )""",
        f"""CREATE TABLE {s}.runtime_states (
            runtime_id TEXT COLLATE "C" PRIMARY KEY, lifecycle BYTEA NOT NULL, checksum TEXT NOT NULL
        )""",
        f"""CREATE TABLE {s}.runtime_ops_lifecycle (
            runtime_id TEXT COLLATE "C" PRIMARY KEY, snapshot BYTEA NOT NULL, checksum TEXT NOT NULL
        )""",
        f"CREATE SEQUENCE {s}.runtime_ops_records_seq AS BIGINT",
        f"""CREATE TABLE {s}.runtime_ops_records (
            seq BIGINT PRIMARY KEY DEFAULT nextval('{s}.runtime_ops_records_seq'),
            runtime_id TEXT COLLATE "C" NOT NULL, record BYTEA NOT NULL, checksum TEXT NOT NULL
        )""",
        f"ALTER SEQUENCE {s}.runtime_ops_records_seq OWNED BY {s}.runtime_ops_records.seq",
        f"CREATE INDEX runtime_ops_records_by_runtime ON {s}.runtime_ops_records (runtime_id, seq)",
        f"""CREATE TABLE {s}.runtime_leases (
            runtime_id TEXT COLLATE "C" PRIMARY KEY, owner TEXT NOT NULL, token BIGINT NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL, checksum TEXT NOT NULL
        )""",
    )


_COUNTED = (
    ("inputs", INPUTS),
    ("receipts", RECEIPTS),
    ("session_snapshots", SNAPSHOTS),
    ("lifecycles", LIFECYCLES),
    ("ops_snapshots", OPS_SNAPSHOTS),
    ("ops_records", OPS_RECORDS),
)
"""The counters a version-1 schema's rows give, and the table each one counts."""


def _v2(s: str) -> tuple[str, ...]:
    def counted(name: str, table: str) -> str:
        columns = ", ".join(f"{'count(*)' if other == name else '0'} AS {other}" for other, _ in _COUNTED)
        return f"SELECT runtime_id, {columns} FROM {s}.{table} GROUP BY runtime_id"

    counts = " UNION ALL ".join(counted(name, table) for name, table in _COUNTED)
    sums = ", ".join(f"sum({name})" for name, _ in _COUNTED)
    return (
        f"""CREATE TABLE {s}.{HIGH_WATER} (
            runtime_id TEXT COLLATE "C" PRIMARY KEY, writes BIGINT NOT NULL, inputs BIGINT NOT NULL,
            receipts BIGINT NOT NULL, session_snapshots INTEGER NOT NULL, lifecycles INTEGER NOT NULL,
            ops_snapshots INTEGER NOT NULL, ops_records BIGINT NOT NULL, quarantined BIGINT NOT NULL
        )""",
        f"CREATE SEQUENCE {s}.{QUARANTINE}_seq AS BIGINT",
        f"""CREATE TABLE {s}.{QUARANTINE} (
            seq BIGINT PRIMARY KEY DEFAULT nextval('{s}.{QUARANTINE}_seq'),
            runtime_id TEXT COLLATE "C" NOT NULL, input_id TEXT COLLATE "C" NOT NULL,
            payload BYTEA NOT NULL, intact BOOLEAN NOT NULL, reason TEXT NOT NULL,
            quarantined_at DOUBLE PRECISION NOT NULL, checksum TEXT NOT NULL
        )""",
        f"ALTER SEQUENCE {s}.{QUARANTINE}_seq OWNED BY {s}.{QUARANTINE}.seq",
        f"CREATE INDEX runtime_quarantine_by_runtime ON {s}.{QUARANTINE} (runtime_id, seq)",
        # the mark of every runtime already stored, from its rows (``writes`` starts at 0)
        f"INSERT INTO {s}.{HIGH_WATER} (runtime_id, writes, {', '.join(n for n, _ in _COUNTED)}, quarantined) "
        f"SELECT runtime_id, 0, {sums}, 0 FROM ({counts}) AS counted GROUP BY runtime_id",
    )


def _v3(s: str) -> tuple[str, ...]:
    return (
        f"""ALTER TABLE {s}.runtime_input_states ADD COLUMN finished_at DOUBLE PRECISION,
            ADD COLUMN idempotency_key TEXT, ADD COLUMN admission_seq BIGINT""",
        f"""CREATE INDEX runtime_inputs_active ON {s}.runtime_input_states (runtime_id, input_id)
            WHERE finished_at IS NULL""",
        f"""CREATE INDEX runtime_inputs_finished ON {s}.runtime_input_states
            (runtime_id, finished_at, input_id) INCLUDE (idempotency_key, admission_seq)
            WHERE finished_at IS NOT NULL""",
    )


def _v4(s: str) -> tuple[str, ...]:
    return (f"ALTER TABLE {s}.runtime_input_states ADD COLUMN queued BYTEA",)


def _v5(s: str) -> tuple[str, ...]:
    # ``IF NOT EXISTS``: a schema set back to an older version by hand keeps working
    return (f"ALTER TABLE {s}.meerkat_schema_version ADD COLUMN IF NOT EXISTS store_id TEXT",)


def _v6(s: str) -> tuple[str, ...]:
    return (
        f"""CREATE TABLE {s}.{RECEIPT_INPUTS} (
            runtime_id TEXT COLLATE "C" NOT NULL, input_id TEXT COLLATE "C" NOT NULL,
            run_id TEXT COLLATE "C" NOT NULL, sequence BIGINT NOT NULL,
            PRIMARY KEY (runtime_id, input_id, run_id, sequence)
        )""",
    )


INDEX_CHUNK = 5000
"""Receipts read (and their index entries written) per round trip of the version-6 backfill."""


def _index_stored_receipts(conn: psycopg.Connection[tuple[object, ...]], s: str) -> None:
    """The entries of every receipt already stored (version 6), in the migration's transaction.

    The receipts are read in chunks of ``INDEX_CHUNK`` in primary-key order (keyset: each read
    starts after the last key of the previous one), and each chunk's entries are written by one
    statement before the next chunk is read. The client parses one chunk at a time between two
    statements, so the transaction is never idle for longer than that: the server's
    ``idle_in_transaction_session_timeout`` (the store's ``timeout_s``) does not end a backfill
    of any size. It stays one transaction: all or nothing."""
    columns = f"SELECT runtime_id, run_id, sequence, receipt FROM {s}.{RECEIPTS}"
    order = "ORDER BY runtime_id, run_id, sequence LIMIT %s"
    after: tuple[str, str, int] | None = None
    while True:
        if after is None:
            rows = conn.execute(f"{columns} {order}", (INDEX_CHUNK,)).fetchall()
        else:
            query = f"{columns} WHERE (runtime_id, run_id, sequence) > (%s, %s, %s) {order}"
            rows = conn.execute(query, (*after, INDEX_CHUNK)).fetchall()
        if not rows:
            return
        runtimes: list[str] = []
        inputs: list[str] = []
        runs: list[str] = []
        seqs: list[int] = []
        for runtime_id, run_id, sequence, body in rows:
            for input_id in index_entries(sorted(contributors(body) or ())):
                runtimes.append(str(runtime_id))
                inputs.append(input_id)
                runs.append(str(run_id))
                seqs.append(int(str(sequence)))
        if runtimes:
            conn.execute(
                f"INSERT INTO {s}.{RECEIPT_INPUTS} (runtime_id, input_id, run_id, sequence) "
                "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[]) ON CONFLICT DO NOTHING",
                (runtimes, inputs, runs, seqs),
            )
        if len(rows) < INDEX_CHUNK:
            return
        last = rows[-1]
        after = (str(last[0]), str(last[1]), int(str(last[2])))


Step = Callable[[str], tuple[str, ...]]

MIGRATIONS: tuple[tuple[int, Step], ...] = ((1, _v1), (2, _v2), (3, _v3), (4, _v4), (5, _v5), (6, _v6))
"""``(version reached, statements of the step for a schema name)`` in ascending order; step
``n`` upgrades version ``n - 1``."""


def stored_version(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> int:
    """The schema version recorded in ``schema``; 0 when the schema or its version table is missing."""
    (exists,) = _one(conn, "SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.meerkat_schema_version",))
    if not exists:
        return 0
    row = conn.execute(f"SELECT version FROM {schema}.meerkat_schema_version WHERE id = 1").fetchone()
    if row is None or not isinstance(row[0], int):
        raise VersionMismatch(STORE_SCOPE, f"schema {schema!r}: the version table holds no valid version")
    return int(row[0])


def require_current_version(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> None:
    """A read-only store migrates nothing: ``schema`` must hold a store at this release's
    version. ``NotAMeerkatStore`` (a ``VersionMismatch``) when it holds none, ``VersionMismatch``
    for an older or a newer version."""
    found = stored_version(conn, schema)
    if found == 0:
        raise NotAMeerkatStore(
            STORE_SCOPE,
            f"schema {schema!r} holds no meerkat store (no meerkat_schema_version table); a worker creates it "
            "when it opens the store",
        )
    if found > SCHEMA_VERSION:
        raise VersionMismatch(
            STORE_SCOPE,
            f"schema {schema!r} has version {found}, newer than this release supports ({SCHEMA_VERSION}); "
            "refusing to open it",
        )
    if found < SCHEMA_VERSION:
        raise VersionMismatch(
            STORE_SCOPE,
            f"schema {schema!r}: schema version {found} is older than this release ({SCHEMA_VERSION}); a worker "
            "upgrades it when it opens the store (a read-only store does not migrate)",
        )


RECEIPT_INDEX_VERSION = 6
"""The version that introduces the receipt index (filled from the receipts already stored)."""

MARKS_VERSION = 2
"""The version that introduces the high-water marks: a schema below it was written by a release
that writes none (see :mod:`~meerkat_runtime.store.migration_leases`)."""


def migrate(
    conn: psycopg.Connection[tuple[object, ...]],
    schema: str,
    target: int = SCHEMA_VERSION,
    *,
    now: float | None = None,
) -> int:
    """Create or upgrade ``schema`` to ``target`` inside the caller's transaction (taking the
    migration advisory lock first); return the version found.

    Raises ``VersionMismatch`` (changing nothing) if the database is newer than this release,
    and ``MigrationRefused`` when an upgrade that introduces the high-water marks finds a live
    lease (at ``now``, or the server's clock): a worker of the older release still writes it.
    The lease table is locked against claims first, so none is taken between that check and
    the commit.
    """
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
    current = stored_version(conn, schema)
    if current > SCHEMA_VERSION:
        raise VersionMismatch(
            STORE_SCOPE,
            f"schema {schema!r} has version {current}, newer than this release supports ({SCHEMA_VERSION}); "
            "refusing to open it",
        )
    if 1 <= current < MARKS_VERSION <= target:
        conn.execute(f"LOCK TABLE {schema}.{LEASES} IN SHARE ROW EXCLUSIVE MODE")
        rows = conn.execute(
            "SELECT runtime_id, owner, expires_at, extract(epoch FROM clock_timestamp())::float8 "
            f"FROM {schema}.{LEASES}"
        ).fetchall()
        if rows:
            server_now = float(str(rows[0][3]))
            found = [(row[0], row[1], row[2]) for row in rows]
            refused = refusal(current, found, server_now if now is None else now, f"schema {schema!r}")
            if refused is not None:
                raise refused
    if current < target:
        (has_schema,) = _one(conn, "SELECT count(*) > 0 FROM pg_namespace WHERE nspname = %s", (schema,))
        if not has_schema:
            conn.execute(f"CREATE SCHEMA {schema}")
    for version, step in MIGRATIONS:
        if current < version <= target:
            for statement in step(schema):
                conn.execute(statement)  # built from a checked name
            if version == RECEIPT_INDEX_VERSION:
                _index_stored_receipts(conn, schema)
            conn.execute(f"UPDATE {schema}.meerkat_schema_version SET version = %s WHERE id = 1", (version,))
    if target >= 5:
        # the identity is written once: never replaced, also when the migration runs again
        conn.execute(
            f"UPDATE {schema}.meerkat_schema_version SET store_id = %s WHERE id = 1 AND store_id IS NULL",
            (str(uuid.uuid4()),),
        )
    return current


def authority_key(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> str:
    """The authority key of the store in ``schema`` (at this release's version): ``postgres:<store
    id>``, the same for every process and host whatever connection string it uses.

    Without a stored id (only a read-only open of a row whose id was cleared by hand: a
    read-write open writes one first) the key is derived from what the server says of itself:
    ``postgres:system=<system identifier>;database=<name>;schema=<schema>`` (the cluster's
    identifier from ``pg_control_system()``, executable by every role unless revoked; without
    it ``postgres:database=<name>;schema=<schema>``). That key is the same for every read-only
    process, but differs from the one a read-write open gives once it has written the id."""
    row = conn.execute(f"SELECT store_id FROM {schema}.meerkat_schema_version WHERE id = 1").fetchone()
    if row is not None and isinstance(row[0], str) and row[0]:
        return f"postgres:{row[0]}"
    (database,) = _one(conn, "SELECT current_database()", ())
    try:
        system = conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()
    except psycopg.errors.InsufficientPrivilege:
        system = None  # a read in autocommit: the failed statement leaves nothing to roll back
    where = f"database={database};schema={schema}"
    return f"postgres:system={system[0]};{where}" if system is not None else f"postgres:{where}"


def _one(conn: psycopg.Connection[tuple[object, ...]], query: str, params: tuple[object, ...]) -> tuple[object, ...]:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row
