"""A read-only examination of an SQLite store file: everything that can be damaged, named.

:func:`check_file` never writes (see :mod:`meerkat_runtime.store.sqlite_readonly`) and reports:

* the write-ahead log (:func:`~meerkat_runtime.store.sqlite_wal.analyse_wal`), unless another
  process has the database open (then it is being written and SQLite will not recover it);
* the schema version (newer than this release: a problem; older: upgraded on the next
  read-write open, and without high-water marks to compare);
* SQLite's own check (``PRAGMA integrity_check`` by default, ``quick_check`` on request);
* every stored row against its checksum (and every receipt against its key), a row whose
  columns do not read as their types (a lease, a receipt's sequence, a mark) included, and the
  schema version row (missing or not an integer: a problem, not an exception);
* given the runtime's check of the recovery fields stored beside a queued input's row
  (``queued``; the store does not interpret them), every such value: one that fails is a
  warning (``FileReport.warnings``), not a problem, as recovery then decodes the row in full;
  a value not bound to its row's current payload (stale: a release that does not know the
  column rewrote the row, :func:`~meerkat_runtime.store.sql_rows.unbound_queued`) is a note,
  as the store ignores it;
* every runtime's high-water mark against its rows counted twice: by a scan of each table and
  by the runtime-id index lookups recovery uses (an index that lost entries shows here).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from meerkat_runtime.store.high_water import HighWater
from meerkat_runtime.store.integrity import row_checksum
from meerkat_runtime.store.records import BoundaryReceipt, QuarantinedRow
from meerkat_runtime.store.sql_rows import stored_lease, unbound_queued
from meerkat_runtime.store.sqlite_files import read_file_set
from meerkat_runtime.store.sqlite_integrity import IntegrityCheck, describe, findings
from meerkat_runtime.store.sqlite_marks import stored_mark
from meerkat_runtime.store.sqlite_readonly import discard, read_only_target
from meerkat_runtime.store.sqlite_schema import SCHEMA_VERSION, stored_version
from meerkat_runtime.store.sqlite_wal import WalReport, analyse_wal
from meerkat_runtime.store.tables import (
    HIGH_WATER,
    INPUTS,
    LEASES,
    LIFECYCLES,
    OPS_RECORDS,
    OPS_SNAPSHOTS,
    QUARANTINE,
    RECEIPTS,
    SNAPSHOTS,
)
from meerkat_runtime.store.validation import from_signed64, receipt_key
from meerkat_runtime.vocab.errors import StoreError, VersionMismatch
from meerkat_runtime.vocab.ids import session_id_of

MAX_LISTED = 50
"""How many damaged rows a report lists (the count is always complete)."""

COUNTED_TABLES = (
    ("inputs", INPUTS),
    ("receipts", RECEIPTS),
    ("session_snapshots", SNAPSHOTS),
    ("lifecycles", LIFECYCLES),
    ("ops_snapshots", OPS_SNAPSHOTS),
    ("ops_records", OPS_RECORDS),
    ("quarantined", QUARANTINE),
)
"""Mark counter → the table whose rows it counts."""


@dataclass(frozen=True, slots=True)
class RuntimeCheck:
    """One runtime: its mark, its rows counted by table scan, and what disagrees."""

    runtime_id: str
    mark: HighWater | None
    counted: dict[str, int]
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FileReport:
    """What :func:`check_file` found; ``ok`` when ``problems`` is empty."""

    path: str
    in_use: bool = False
    wal: WalReport | None = None
    opened_as: str = ""
    schema_version: int | None = None
    integrity: tuple[str, ...] = ()
    damaged_rows: int = 0
    damaged_examples: tuple[str, ...] = ()
    runtimes: tuple[RuntimeCheck, ...] = ()
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    """Damage recovery works around (``ok`` stays true): recovery fields that fail their check."""

    @property
    def ok(self) -> bool:
        return not self.problems


@contextlib.contextmanager
def read_only_connection(path: str) -> Iterator[tuple[sqlite3.Connection, str]]:
    """A connection that cannot write ``path`` (nor create files beside it), and how it was opened."""
    target = read_only_target(path)
    try:
        conn = sqlite3.connect(target.uri, uri=True, isolation_level=None)
        conn.text_factory = lambda raw: raw.decode("utf-8", "replace")  # damaged text is reported, not raised
        try:
            yield conn, target.how
        finally:
            conn.close()
    finally:
        discard(target)


Verifier = Callable[[str, str, tuple[object, ...]], str | None]

FieldsCheck = Callable[[str, str | None, bytes], str | None]
"""The runtime's check of a ``queued`` value: ``(input_id, idempotency_key, value)`` → what is
wrong with it, or ``None``."""


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}


def _sealed(table: str, rt: str, key: str, payload: object, checksum: object) -> str | None:
    if not isinstance(payload, bytes):
        return f"payload of type {type(payload).__name__}"
    if checksum != row_checksum(table, rt, key, payload):
        return "checksum mismatch"
    return None


def _row_checks(conn: sqlite3.Connection, tables: set[str]) -> Iterator[tuple[str, str, str, str]]:
    """Every damaged row as ``(table, runtime id, key, what)``."""
    single = ((SNAPSHOTS, "snapshot"), (LIFECYCLES, "lifecycle"), (OPS_SNAPSHOTS, "snapshot"))
    if not {INPUTS, RECEIPTS, *(t for t, _ in single)} <= tables:
        yield "*", "*", "", "the file lacks tables of its schema version"
        return
    for input_rt, input_id, payload, checksum in conn.execute(
        f"SELECT runtime_id, input_id, payload, checksum FROM {INPUTS}"
    ):
        if (why := _sealed(INPUTS, str(input_rt), str(input_id), payload, checksum)) is not None:
            yield INPUTS, str(input_rt), str(input_id), why
    for rt, run_id, sequence, body, checksum in conn.execute(
        f"SELECT runtime_id, run_id, sequence, receipt, checksum FROM {RECEIPTS}"
    ):
        if isinstance(sequence, bool) or not isinstance(sequence, int):
            yield RECEIPTS, str(rt), f"{run_id}/{sequence}", "malformed columns (sequence is not an integer)"
            continue
        key = receipt_key(str(run_id), from_signed64(int(sequence)))
        why = _sealed(RECEIPTS, str(rt), key, body, checksum)
        if why is None:
            try:
                receipt = BoundaryReceipt.from_json(body)
                if (receipt.run_id, receipt.sequence) != (str(run_id), from_signed64(int(sequence))):
                    why = "holds the receipt of another key"
            except ValueError as exc:
                why = f"not a valid receipt: {exc}"
        if why is not None:
            yield RECEIPTS, str(rt), key, why
    for table, column in single:
        for rt, payload, checksum in conn.execute(f"SELECT runtime_id, {column}, checksum FROM {table}"):
            if (why := _sealed(table, str(rt), "", payload, checksum)) is not None:
                yield table, str(rt), "", why
    if OPS_RECORDS in tables:
        for seq, rt, record, checksum in conn.execute(f"SELECT seq, runtime_id, record, checksum FROM {OPS_RECORDS}"):
            if (why := _sealed(OPS_RECORDS, str(rt), str(seq), record, checksum)) is not None:
                yield OPS_RECORDS, str(rt), str(seq), why
    if LEASES in tables:
        for rt, owner, token, expires_at, checksum in conn.execute(
            f"SELECT runtime_id, owner, token, expires_at, checksum FROM {LEASES}"
        ):
            try:
                stored_lease(str(rt), owner, token, expires_at, checksum)
            except StoreError as exc:
                yield LEASES, str(rt), "", exc.detail
    if HIGH_WATER in tables:
        for (rt,) in conn.execute(f"SELECT runtime_id FROM {HIGH_WATER}"):
            try:
                stored_mark(conn, str(rt))
            except StoreError as exc:
                yield HIGH_WATER, str(rt), "", exc.detail
    if QUARANTINE in tables:
        for seq, rt, input_id, payload, intact, reason, at, checksum in conn.execute(
            f"SELECT seq, runtime_id, input_id, payload, intact, reason, quarantined_at, checksum FROM {QUARANTINE}"
        ):
            if not isinstance(payload, bytes) or not isinstance(at, int | float):
                yield QUARANTINE, str(rt), str(seq), "malformed columns"
                continue
            row = QuarantinedRow(str(input_id), payload, bool(intact), str(reason), float(at))
            if (why := _sealed(QUARANTINE, str(rt), str(seq), row.sealed_form(), checksum)) is not None:
                yield QUARANTINE, str(rt), str(seq), why


def _damaged_row(table: str, rt: str, key: str, why: str) -> str:
    """How the report lists a damaged row: ``table[runtime/key]: what`` (a store error that
    names the row already is not prefixed with its name again)."""
    label = f"{table}[{rt}{'/' + key if key else ''}]"
    return why.removeprefix("row ") if why.startswith(f"row {table}[{key or rt}]") else f"{label}: {why}"


STALE_QUEUED = (
    "its queued column was not written with the row's current payload (a release that does not know "
    "the column rewrote the row since, or one that wrote it unbound): recovery ignores it and reads "
    "the row from its payload"
)
"""What ``check`` notes of a ``queued`` column not bound to its row's checksum
(:func:`~meerkat_runtime.store.sql_rows.unbound_queued`): not damage, the store ignores it."""


def _field_findings(conn: sqlite3.Connection, check: FieldsCheck) -> Iterator[tuple[str, str, str, bool]]:
    """Every ``queued`` value that is stale (``True``: a note) or that ``check`` finds wrong
    (``False``: a warning), as ``(runtime id, input id, what, stale)``."""
    rows = conn.execute(
        f"SELECT runtime_id, input_id, idempotency_key, queued, checksum, finished_at FROM {INPUTS} "
        "WHERE queued IS NOT NULL ORDER BY runtime_id, input_id"
    )
    for rt, input_id, key, value, checksum, finished_at in rows:
        data = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")
        fields = unbound_queued(data, checksum)
        if fields is None or finished_at is not None:
            what = STALE_QUEUED + (" (the row is finished)" if finished_at is not None else "")
            yield str(rt), str(input_id), what, True
            continue
        why = check(str(input_id), None if key is None else str(key), fields)
        if why is not None:
            yield str(rt), str(input_id), why, False


def _owner(runtime_id: str) -> str:
    """How a finding names a runtime: ``session 'x'`` for a session's runtime id."""
    session_id = session_id_of(runtime_id)
    return f"session {session_id!r}" if session_id != runtime_id else f"runtime {runtime_id!r}"


def _counts(conn: sqlite3.Connection, tables: set[str], *, indexed: bool) -> dict[str, dict[str, int]]:
    """Rows per runtime and mark counter: by table scan, or (``indexed``) through each runtime's
    index lookup, as recovery reads them."""
    counts: dict[str, dict[str, int]] = {}
    for name, table in COUNTED_TABLES:
        if table not in tables:
            continue
        scanned = conn.execute(f"SELECT runtime_id, count(*) FROM {table} NOT INDEXED GROUP BY runtime_id").fetchall()
        for rt, count in scanned:
            counts.setdefault(str(rt), {})[name] = int(count)
    if indexed:
        for rt, found in counts.items():
            for name, table in COUNTED_TABLES:
                if table in tables and table not in (SNAPSHOTS, LIFECYCLES, OPS_SNAPSHOTS):
                    (n,) = conn.execute(f"SELECT count(*) FROM {table} WHERE runtime_id = ?", (rt,)).fetchone()
                    found[name] = int(n)
    return counts


def _runtimes(conn: sqlite3.Connection, tables: set[str]) -> list[RuntimeCheck]:
    scanned = _counts(conn, tables, indexed=False)
    indexed = _counts(conn, tables, indexed=True)
    marks: dict[str, HighWater | None] = {}
    for (rt,) in conn.execute(f"SELECT runtime_id FROM {HIGH_WATER}"):
        try:
            marks[str(rt)] = stored_mark(conn, str(rt))
        except StoreError:
            marks[str(rt)] = None  # reported with the damaged rows
    checks: list[RuntimeCheck] = []
    for rt in sorted(set(scanned) | set(marks)):
        counted = {name: scanned.get(rt, {}).get(name, 0) for name, _ in COUNTED_TABLES}
        mark = marks.get(rt)
        problems: list[str] = []
        if rt not in marks and any(counted.values()):
            problems.append("rows are stored but there is no high-water mark")
        for name, count in counted.items():
            looked_up = indexed.get(rt, {}).get(name, count)
            if looked_up != count:
                problems.append(f"{name}: a table scan finds {count} rows, the index lookup {looked_up}")
            if mark is not None and getattr(mark, name) != count:
                problems.append(f"{name}: the mark says {getattr(mark, name)}, the table holds {count}")
        checks.append(RuntimeCheck(rt, mark, counted, tuple(problems)))
    return checks


def check_file(path: str, *, integrity: IntegrityCheck = "full", fields_check: FieldsCheck | None = None) -> FileReport:
    """Examine the SQLite store at ``path`` (an existing file) without writing anything; with
    ``fields_check``, also every ``queued`` value (warnings)."""
    problems: list[str] = []
    notes: list[str] = []
    files = read_file_set(path)
    wal: WalReport | None = None
    if files.in_use:
        notes.append("another process has the database open: its log is being written and was not examined")
    elif not files.supported:
        notes.append(
            "the log was not examined: this platform (or the file's permissions) cannot tell whether it is in use"
        )
    else:
        wal = analyse_wal(files.wal, files.shm, db_page_size=files.db_page_size)
        problems.extend(f"write-ahead log: {p}" for p in wal.problems)
        if wal.torn_tail:
            notes.append("the log ends in an unfinished commit (a crash while writing it): not damage, it is discarded")
    try:
        with read_only_connection(path) as (conn, how):
            return _examine(conn, how, path, integrity, files.in_use, wal, problems, notes, fields_check)
    except sqlite3.DatabaseError as exc:
        problems.append(f"the file cannot be read as an SQLite database: {exc}")
    return FileReport(path, files.in_use, wal, problems=tuple(problems), notes=tuple(notes))


def _examine(
    conn: sqlite3.Connection,
    how: str,
    path: str,
    integrity: IntegrityCheck,
    in_use: bool,
    wal: WalReport | None,
    problems: list[str],
    notes: list[str],
    fields_check: FieldsCheck | None,
) -> FileReport:
    conn.execute("BEGIN")
    try:
        version = stored_version(conn)
    except VersionMismatch as exc:
        problems.append(f"schema version: {exc.detail} (a row of meerkat_schema_version was changed or deleted)")
        conn.execute("COMMIT")
        return FileReport(path, in_use, wal, how, None, problems=tuple(problems), notes=tuple(notes))
    if version == 0:
        problems.append("the file holds no store schema (no meerkat_schema_version table)")
        conn.execute("COMMIT")
        return FileReport(path, in_use, wal, how, 0, problems=tuple(problems), notes=tuple(notes))
    if version > SCHEMA_VERSION:
        problems.append(f"schema version {version} is newer than this release reads ({SCHEMA_VERSION})")
    elif version < SCHEMA_VERSION:
        notes.append(f"schema version {version}: upgraded to {SCHEMA_VERSION} the next time a store opens it")
    found = findings(conn, integrity)
    if found:
        problems.append(
            f"PRAGMA {'quick_check' if integrity == 'quick' else 'integrity_check'}: {describe(conn, found)}"
        )
    tables = _tables(conn)
    damaged = [_damaged_row(t, rt, key, why) for t, rt, key, why in _row_checks(conn, tables)]
    if damaged:
        problems.append(f"{len(damaged)} row(s) failed their integrity check")
    warnings: list[str] = []
    if fields_check is not None and "queued" in _columns(conn, INPUTS):
        for rt, input_id, why, stale in _field_findings(conn, fields_check):
            if stale:
                notes.append(f"{_owner(rt)}: input {input_id!r}: {why}")
            else:
                warnings.append(f"{_owner(rt)}: input {input_id!r}: {why} (recovery decodes the row in full)")
    runtimes: list[RuntimeCheck] = []
    if HIGH_WATER in tables:
        runtimes = _runtimes(conn, tables)
        problems.extend(f"runtime {r.runtime_id!r}: {p}" for r in runtimes for p in r.problems)
    elif version <= SCHEMA_VERSION:
        notes.append("this file has no high-water marks yet: row counts not compared")
    conn.execute("COMMIT")
    return FileReport(
        path=path,
        in_use=in_use,
        wal=wal,
        opened_as=how,
        schema_version=version,
        integrity=tuple(found),
        damaged_rows=len(damaged),
        damaged_examples=tuple(damaged[:MAX_LISTED]),
        runtimes=tuple(runtimes),
        problems=tuple(problems),
        notes=tuple(notes),
        warnings=tuple(warnings),
    )
