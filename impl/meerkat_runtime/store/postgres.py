"""``PostgresRuntimeStore``: a ``RuntimeStore`` on PostgreSQL, for workers on several hosts.

Needs the ``postgres`` extra (psycopg 3 and psycopg-pool); nothing else in the runtime imports
this module, so the runtime itself keeps no dependency.

* **Transactions**: every write is one ``READ COMMITTED`` transaction on a pooled connection
  (:mod:`~meerkat_runtime.store.postgres_transactions` classifies its failures: ``WriteFailed``
  before ``COMMIT`` was sent or when the server refused it, ``WriteOutcomeUnknown`` when the
  connection broke while ``COMMIT`` was in flight). Reads are single statements.
* **Ownership**: the fence check runs inside every write's transaction, under a
  transaction-level advisory lock on the runtime id (exclusive: the data writes of one runtime
  run one after another, as in SQLite, which keeps the high-water mark exact when a compaction
  races an append); a claim takes the same lock (and ``SELECT … FOR UPDATE`` on the lease row),
  renewals and releases lock the row. So a claim that commits after a write's check is ordered
  after that write, also when the runtime has no lease row yet (an unfenced write). A write
  that carries data takes the lock in the statement that sends the data, so a writer frozen
  while sending holds no lock (see ``_fenced_write``). Lease
  expiry is decided by the **server's clock** (``clock_timestamp()``), read inside the
  transaction; ``clock=`` replaces it (tests). A claim that finds a live lease of another
  owner is answered from one read, with no transaction (waiting workers poll cheaply).
* **Unknown outcomes**: before a data write raises ``WriteOutcomeUnknown`` the store waits
  until its transaction has ended on the server (it may outlive a broken connection), so a
  read that follows sees its final outcome; while that cannot be confirmed, reads of the
  runtime fail (:mod:`~meerkat_runtime.store.postgres_in_flight`).
* **Deadline**: no call waits for the server without limit: a transaction or read that gets no
  answer within ``2 * timeout_s`` abandons (closes) its connection and fails — with
  ``WriteOutcomeUnknown`` if its ``COMMIT`` was sent (:mod:`~meerkat_runtime.store.postgres_deadline`).
  A pool passed in must use ``connection_class=StoreConnection``.
* **Durability**: the server's ``synchronous_commit`` (``on`` by default): a method that
  returned has had its commit record flushed to the server's WAL on disk (and to synchronous
  standbys, if any are configured). The store reports the setting in :meth:`settings`.
* Every row carries the same checksum as in SQLite (bound to table, runtime id and key); a
  damaged row fails closed with ``Corrupt``. Every data write advances the runtime's
  high-water mark with one more statement in its transaction
  (:mod:`~meerkat_runtime.store.postgres_marks`); ``quarantine_row`` moves an input row into
  ``runtime_quarantine``. Ids must not contain NUL characters (PostgreSQL
  text cannot hold them; such a write is refused with ``WriteFailed``).
* The schema version is checked on open: older schemas are migrated forward, newer ones are
  refused with ``VersionMismatch`` (see :mod:`~meerkat_runtime.store.postgres_schema`).
  ``read_only=True`` migrates nothing: the schema must be at this release's version (else
  ``VersionMismatch``; ``NotAMeerkatStore`` for a schema without a store), and every
  transaction is ``READ ONLY`` (the server refuses writes). A
  migration whose ``COMMIT`` outcome is unknown is run again (it is idempotent), so a
  connection cut while a worker opens the store does not stop it.
* **Identity**: the schema's version row holds a random store id, written once when the schema
  is created or upgraded to version 5; :meth:`auth_authority_key` is ``postgres:<store id>``,
  the same for every process and host on this database and schema whatever its connection
  string (host name or address, user, pool settings), another for another schema, database or
  server. Events carry it (``store``), so ``check-trace`` reads the logs of several hosts as
  one history, and two machines on stores of one schema share a store.
* Thread safety: any number of threads share the pool (``max_connections`` connections);
  several processes and hosts may use one database.
* ``close`` waits for calls in flight and closes the pool it opened (a pool passed in is left
  open: its owner closes it); later calls raise ``WriteFailed`` / ``ReadFailed``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

try:
    import psycopg
    import psycopg_pool
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "PostgresRuntimeStore needs the 'postgres' extra (psycopg, psycopg-pool); install it with: "
        "pip install 'meerkat-lifecycle[postgres]'"
    ) from exc

from meerkat_runtime.store import validation as v
from meerkat_runtime.store.call_gate import CallGate
from meerkat_runtime.store.clock import Clock
from meerkat_runtime.store.high_water import HighWater, MarkStep, below_zero, quarantine_refusal, quarantine_refused
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
from meerkat_runtime.store.postgres_deadline import StoreConnection as StoreConnection
from meerkat_runtime.store.postgres_deadline import tcp_options
from meerkat_runtime.store.postgres_in_flight import InFlightCommits
from meerkat_runtime.store.postgres_marks import advance_statement, select_statement, step_params, stored_mark
from meerkat_runtime.store.postgres_schema import (
    DEFAULT_SCHEMA,
    STORE_SCOPE,
    authority_key,
    check_schema_name,
    migrate,
    require_current_version,
    stored_version,
)
from meerkat_runtime.store.postgres_transactions import REPLY_FACTOR, Connection, Transactions
from meerkat_runtime.store.postgres_transactions import Body as ReadBody
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
    POSTGRES_QUEUED,
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
    OwnershipLost,
    ReadFailed,
    RowNotStored,
    StoreError,
    WriteFailed,
    WriteOutcomeUnknown,
    WriteRefused,
)
from meerkat_runtime.vocab.settings import MAX_INT32, bounded_int, bounded_seconds

T = TypeVar("T")

DEFAULT_MAX_CONNECTIONS = 8
MIGRATION_ATTEMPTS = 3
"""Runs of the schema migration on open when a ``COMMIT``'s outcome is unknown."""
DEFAULT_TIMEOUT_S = 10.0
MAX_TIMEOUT_S = MAX_INT32 // 1000
"""Longest ``timeout_s`` (about 24.8 days): the server's ``lock_timeout`` is a 32-bit count of ms."""
MAX_CONNECTIONS = 10_000

Body = Callable[[Connection], MarkStep]
"""A data write's own statements; returns the step they make to the runtime's high-water mark."""
Send = Callable[[Connection, int], None]
"""A data write's statement carrying its data, given the runtime's advisory lock key (see
:meth:`PostgresRuntimeStore._fenced_write`)."""


def _check_conninfo(conninfo: object) -> None:
    """``InvalidSetting`` unless ``conninfo`` is a connection string libpq can parse (a ``str``;
    its text is not repeated: it may hold a password)."""
    if not isinstance(conninfo, str):
        raise InvalidSetting(
            "conninfo must be a str (a libpq connection string or a postgresql:// URL), "
            f"got a {type(conninfo).__name__}"
        )
    try:
        psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.Error as exc:
        raise InvalidSetting(f"conninfo is not a valid connection string: {exc}") from None


def lock_key(schema: str, runtime_id: str) -> int:
    """The 64-bit advisory lock key of a runtime in a schema."""
    digest = hashlib.blake2b(f"{schema}\0{runtime_id}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresRuntimeStore:
    """A ``RuntimeStore`` on a PostgreSQL database (a connection string or a psycopg pool)."""

    def __init__(
        self,
        conninfo: str | None = None,
        *,
        pool: psycopg_pool.ConnectionPool[Any] | None = None,
        schema: str = DEFAULT_SCHEMA,
        min_connections: int = 1,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Clock | None = None,
        read_only: bool = False,
    ) -> None:
        if (conninfo is None) == (pool is None):
            raise InvalidSetting(
                "give exactly one of conninfo (a connection string) or pool (a psycopg ConnectionPool)"
            )
        if conninfo is not None:
            _check_conninfo(conninfo)
        if pool is not None and not isinstance(pool, psycopg_pool.ConnectionPool):
            raise InvalidSetting(f"pool must be a psycopg_pool.ConnectionPool, got a {type(pool).__name__}")
        if pool is not None and not issubclass(pool.connection_class, StoreConnection):
            raise InvalidSetting(
                "pool must make its connections with connection_class=StoreConnection "
                "(meerkat_runtime.store.postgres_deadline, or a subclass of it): the store bounds every wait "
                f"for the server with it; this pool uses {pool.connection_class.__name__}"
            )
        max_connections = bounded_int("max_connections", max_connections, 1, MAX_CONNECTIONS)
        min_connections = bounded_int("min_connections", min_connections, 0, max_connections)
        timeout = bounded_seconds("timeout_s", timeout_s, MAX_TIMEOUT_S)
        if clock is not None and not callable(clock):
            raise InvalidSetting("clock must be a callable returning seconds")
        if not isinstance(read_only, bool):
            raise InvalidSetting(f"read_only must be True or False, got {read_only!r}")
        self.schema = check_schema_name(schema)
        self.clock = clock
        self.timeout_s = timeout
        self._owns_pool = pool is None
        if pool is None:
            assert conninfo is not None
            pool = self._open_pool(conninfo, min_connections, max_connections, read_only)
        self._pool = pool
        self._gate = CallGate()
        self._tx = Transactions(pool, self._gate, checkout_timeout_s=self.timeout_s, read_only=read_only)
        self._in_flight = InFlightCommits(self._tx, lambda rt: lock_key(self.schema, rt))
        self._sql = _Statements(self.schema)
        try:
            if read_only:
                self._authority_key = self._tx.read(STORE_SCOPE, "schema version", self._check_version)
            else:
                self._authority_key = self._migrate()
        except BaseException:
            self._close_pool()
            raise

    def auth_authority_key(self) -> str:
        """The store's authority key, ``postgres:<store id>``: the id written once into the
        schema's version row (:func:`~meerkat_runtime.store.postgres_schema.authority_key`), so
        every process and host on this database and schema has the same key whatever its
        connection string, and another database, schema or server has another. Lifecycle
        events carry it (``store``), and two machines share a store exactly when their keys
        are equal (:func:`~meerkat_runtime.session.authority.stores_share_authority`)."""
        return self._authority_key

    def _migrate(self) -> str:
        """Create or upgrade the schema; return its authority key. A migration whose ``COMMIT``
        outcome is unknown (the connection broke while it was in flight) is run again, up to
        ``MIGRATION_ATTEMPTS`` times: it reads the stored version first and applies only what is missing, so the next
        run finds the work done or does it. It waits for the migration lock (and the tables'
        locks) without the store's lock timeout: a long migration of another process is waited
        for, not failed (see :mod:`~meerkat_runtime.store.postgres_transactions`)."""
        for attempt in range(1, MIGRATION_ATTEMPTS + 1):
            try:
                return self._tx.write(STORE_SCOPE, "schema migration", self._migrated, wait_for_locks=True)
            except WriteOutcomeUnknown:
                if attempt == MIGRATION_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def _migrated(self, conn: Connection) -> str:
        """The migration's transaction: upgrade the schema, then read the authority key it holds
        (the migration wrote the store id if there was none)."""
        migrate(conn, self.schema, now=None if self.clock is None else float(self.clock()))
        return authority_key(conn, self.schema)

    def _check_version(self, conn: Connection) -> str:
        """A read-only open: the schema must be current; its authority key."""
        require_current_version(conn, self.schema)
        return authority_key(conn, self.schema)

    def _open_pool(
        self, conninfo: str, min_connections: int, max_connections: int, read_only: bool
    ) -> psycopg_pool.ConnectionPool[Any]:
        """Connect once directly — a server that cannot be reached is reported at once, with its
        cause (the pool only logs why it cannot connect, and with ``min_connections=0`` it
        opens without connecting) — then open the pool. The pool is closed again on any
        failure, so no thread of it outlives a failed open. Not connecting is ``WriteFailed`` for
        a store that writes, ``ReadFailed`` for a read-only one (it was never going to write)."""
        failed = ReadFailed if read_only else WriteFailed
        try:
            psycopg.connect(conninfo, connect_timeout=max(2, math.ceil(self.timeout_s))).close()
        except psycopg.Error as exc:
            why = str(exc).strip().replace("\n", " ")
            raise failed(STORE_SCOPE, f"cannot connect to PostgreSQL: {why}") from None
        pool = psycopg_pool.ConnectionPool(
            conninfo,
            connection_class=StoreConnection,
            min_size=min_connections,
            max_size=max_connections,
            kwargs={"autocommit": True, **tcp_options(conninfo, self.timeout_s)},
            configure=self._bound_waits,
            open=False,
            timeout=self.timeout_s,
            name=f"meerkat-{self.schema}",
        )
        try:
            pool.open(wait=True, timeout=self.timeout_s)
        except psycopg_pool.PoolTimeout:
            pool.close()
            raise failed(
                STORE_SCOPE,
                f"cannot connect to PostgreSQL: the pool could not open its {min_connections} connections "
                f"within {self.timeout_s:g} s",
            ) from None
        except BaseException:
            pool.close()
            raise
        return pool

    def _bound_waits(self, conn: StoreConnection) -> None:
        """A new connection of the pool: its waits are bounded from the start (the pool's own
        checks included), not only once the store has used it."""
        conn.reply_s = REPLY_FACTOR * self.timeout_s

    def _close_pool(self) -> None:
        if self._owns_pool:
            self._pool.close()

    @property
    def closed(self) -> bool:
        return self._gate.closed

    @property
    def pool(self) -> psycopg_pool.ConnectionPool[Any]:
        """The psycopg pool the store runs on."""
        return self._pool

    def settings(self) -> dict[str, object]:
        """What the server promises: ``synchronous_commit``, ``fsync``, the store's
        ``isolation`` level, ``server_version``, ``schema`` and ``schema_version``."""

        def body(conn: Connection) -> dict[str, object]:
            row = conn.execute(
                "SELECT current_setting('synchronous_commit'), current_setting('fsync'), "
                "current_setting('server_version')"
            ).fetchone()
            assert row is not None
            return {
                "synchronous_commit": row[0],
                "fsync": row[1],
                "isolation": "read committed",
                "server_version": row[2],
                "schema": self.schema,
                "schema_version": stored_version(conn, self.schema),
            }

        return self._tx.read(STORE_SCOPE, "settings", body)

    # --- the write path -------------------------------------------------------------------
    def _fenced_write(self, runtime_id: str, what: str, fence: object, body: Body, *, send: Send | None = None) -> None:
        """The one write path of the data methods: in one transaction, take the runtime's
        advisory lock (exclusively, as claims do: writes of one runtime are serialised), check
        ``fence`` against the lease row, run ``body``, then advance the high-water mark by the step it returns (the last
        statement, so a write that fails or is refused never reaches it).

        ``send``: the one statement that carries the write's data (payloads, snapshots, records).
        It comes first, right after ``BEGIN``, and takes the advisory lock itself when it runs,
        so the lock is requested only once the server has read all of the data: a writer frozen
        while sending it (its backend reading the message, where no server timeout applies)
        holds no lock another worker needs. Every row it writes is written under the lock (its
        writes join the lock), and the fence is checked after it by a statement of its own (a
        fresh snapshot, taken with the lock held); a refusal rolls the whole transaction back."""
        checked = v.check_fence(runtime_id, fence, WriteFailed)
        key = lock_key(self.schema, runtime_id)

        def fenced(conn: Connection) -> None:
            if send is not None:
                send(conn, key)
            row = conn.execute(self._sql.select_lease, (runtime_id,)).fetchone()
            refusal = fence_refusal(runtime_id, _lease(runtime_id, row), checked, what)
            if refusal is not None:
                raise refusal
            step = body(conn)
            if not step.inputs_removed and not step.receipts_removed:
                conn.execute(self._sql.advance_mark, step_params(runtime_id, step))
                return
            # a write that removes rows: a mark that would go below zero is refused (rolled back)
            advanced = conn.execute(self._sql.advance_mark_removing, step_params(runtime_id, step)).fetchone()
            inputs, receipts = (int(str(advanced[0])), int(str(advanced[1]))) if advanced is not None else (0, 0)
            if inputs < 0:
                raise Corrupt(runtime_id, below_zero(inputs + step.inputs_removed, step.inputs_removed))
            if receipts < 0:
                removed = step.receipts_removed
                raise Corrupt(runtime_id, below_zero(receipts + removed, removed, "boundary receipt(s)"))

        first = "" if send is not None else f"SELECT pg_advisory_xact_lock({key})"
        try:
            self._tx.write(runtime_id, what, fenced, first=first)
        except WriteOutcomeUnknown:
            self._in_flight.after_unknown_outcome(runtime_id)
            raise

    def _send(self, conn: Connection, statement: str, params: Sequence[object]) -> tuple[int, ...]:
        """Run one of the ``send_*`` statements of :class:`_Statements` (its first parameter is the
        lock key); returns the counts it selects. A retried transaction runs it again: callers
        replace what they kept from an earlier try."""
        found = conn.execute(statement, params).fetchone()
        assert found is not None
        return tuple(int(str(count)) for count in found)

    def _read(self, runtime_id: str, what: str, body: ReadBody[T], error: type[StoreError] = ReadFailed) -> T:
        """A read of one runtime's data: refused while a write of it whose outcome is unknown
        may still be committing (:mod:`~meerkat_runtime.store.postgres_in_flight`)."""
        self._in_flight.before_read(runtime_id, what, error)
        return self._tx.read(runtime_id, what, body, error)

    @staticmethod
    def _row_params(rt: str, rows: Sequence[InputRow]) -> tuple[object, ...]:
        """The parameters of the input-row upsert (``inputs`` in :class:`_Statements`): the last row
        of an id wins, ids in sorted order (concurrent writers lock rows in the same order)."""
        last = {row.input_id: row for row in rows}
        ids = sorted(last)
        payloads = [last[i].payload for i in ids]
        sums = [row_checksum(INPUTS, rt, i, last[i].payload) for i in ids]
        finished = [last[i].finished_at for i in ids]
        keys = [last[i].idempotency_key for i in ids]
        seqs = [last[i].admission_seq for i in ids]
        queued = [bound_queued(last[i].queued, checksum) for i, checksum in zip(ids, sums, strict=True)]
        return (rt, ids, payloads, sums, finished, keys, seqs, queued)

    # --- inputs ---------------------------------------------------------------------------
    def persist_input_state(self, runtime_id: str, row: InputRow, *, fence: Fence | None = None) -> None:
        rt = v.check_runtime_id(runtime_id, WriteFailed)
        rows = v.check_rows(rt, [row], WriteFailed)
        added: list[int] = []

        def send(conn: Connection, key: int) -> None:
            added[:] = self._send(conn, self._sql.send_inputs, (key, *self._row_params(rt, rows)))

        self._fenced_write(rt, "persist_input_state", fence, lambda conn: MarkStep(inputs_added=added[0]), send=send)

    def load_input_states(self, runtime_id: str) -> list[InputRow]:
        rt = v.check_runtime_id(runtime_id, ReadFailed)
        found = self._read(
            rt, "load_input_states", lambda conn: conn.execute(self._sql.select_inputs, (rt,)).fetchall()
        )
        return [stored_row(rt, *columns) for columns in found]

    def load_active_input_states(self, runtime_id: str) -> list[InputRow]:
        rt = v.check_runtime_id(runtime_id, ReadFailed)
        found = self._read(
            rt, "load_active_input_states", lambda conn: conn.execute(self._sql.select_active, (rt,)).fetchall()
        )
        return stored_rows(rt, found)

    def load_finished_inputs(self, runtime_id: str) -> list[FinishedInput]:
        rt = v.check_runtime_id(runtime_id, ReadFailed)
        found = self._read(
            rt, "load_finished_inputs", lambda conn: conn.execute(self._sql.select_finished, (rt,)).fetchall()
        )
        return finished_inputs(rt, found)

    def load_input_state(self, runtime_id: str, input_id: str) -> InputRow | None:
        rt = v.check_runtime_id(runtime_id, ReadFailed)
        key = v.check_input_id(rt, input_id, ReadFailed)
        found = self._read(
            rt, "load_input_state", lambda conn: conn.execute(self._sql.select_input, (rt, key)).fetchone()
        )
        return None if found is None else stored_row(rt, *found)

    def compact_inputs(self, runtime_id: str, input_ids: Sequence[str], *, fence: Fence | None = None) -> int:
        rt = v.check_runtime_id(runtime_id, WriteFailed)
        ids = sorted(v.check_input_ids(rt, input_ids, WriteFailed))
        removed: list[int] = []

        def body(conn: Connection) -> MarkStep:
            active = conn.execute(self._sql.active_among, (rt, ids)).fetchone()
            if active is not None:
                raise WriteRefused(
                    rt, f"compact_inputs: input row {active[0]!r} is active, not finished; nothing was deleted"
                )
            removed.append(len(conn.execute(self._sql.delete_finished, (rt, ids)).fetchall()))
            return MarkStep(inputs_removed=removed[0], receipts_removed=self._release_receipts(conn, rt, ids))

        self._fenced_write(rt, "compact_inputs", fence, body)
        return removed[0]

    def _release_receipts(self, conn: Connection, rt: str, ids: list[str]) -> int:
        """Delete the receipts the compaction of ``ids`` releases (:mod:`.receipt_retention`),
        in the caller's transaction; returns how many were deleted."""
        sql = self._sql

        def any_stored(rest: frozenset[str]) -> bool:
            return conn.execute(sql.any_input_among, (rt, sorted(rest))).fetchone() is not None

        stored = conn.execute(sql.select_named_receipts, (rt, ids, rt)).fetchall()
        receipts = [(str(r[0]), v.from_signed64(int(str(r[1]))), r[2]) for r in stored]
        gone = released_receipts(receipts, frozenset(ids), any_stored)
        if gone:
            runs, seqs = [k[0] for k, _ in gone], [v.to_signed64(k[1]) for k, _ in gone]
            conn.execute(sql.delete_receipts, (rt, runs, seqs))
            entries = [(i, v.to_signed64(k[1]), k[0]) for k, named in gone for i in sorted(named)]
            conn.execute(
                sql.delete_receipt_entries,
                (rt, [e[0] for e in entries], [e[2] for e in entries], [e[1] for e in entries]),
            )
        return len(gone)

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
        valid_rows = v.check_rows(rt, rows, WriteFailed)

        counts: list[int] = []

        def send(conn: Connection, key: int) -> None:
            params: list[object] = [key]
            if session_snapshot is not None:
                params += [rt, session_snapshot, row_checksum(SNAPSHOTS, rt, "", session_snapshot)]
            run, seq = stored.params[1], stored.params[2]
            params += [*stored.params, rt, run, seq, entries, *self._row_params(rt, valid_rows)]
            statement = self._sql.send_apply if session_snapshot is None else self._sql.send_apply_snapshot
            counts[:] = self._send(conn, statement, params)

        def body(conn: Connection) -> MarkStep:
            receipts, added = counts
            if receipts == 0:
                raise duplicate_receipt(rt, stored.receipt)
            snapshot_written = True if session_snapshot is not None else None
            return MarkStep(inputs_added=added, receipts_added=1, session_snapshot=snapshot_written)

        self._fenced_write(rt, "atomic_apply", fence, body, send=send)

    def load_boundary_receipt(self, runtime_id: str, run_id: str, sequence: int) -> BoundaryReceipt | None:
        rt = v.check_runtime_id(runtime_id, ReadFailed)
        run, seq = v.check_run_key(rt, run_id, sequence, ReadFailed)
        found = self._read(
            rt,
            "load_boundary_receipt",
            lambda conn: conn.execute(self._sql.select_receipt, (rt, run, v.to_signed64(seq))).fetchone(),
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
        valid_rows = v.check_rows(rt, rows, WriteFailed)

        added: list[int] = []

        def send(conn: Connection, key: int) -> None:
            single = (rt, lifecycle, row_checksum(LIFECYCLES, rt, "", lifecycle))
            added[:] = self._send(conn, self._sql.send_lifecycle, (key, *single, *self._row_params(rt, valid_rows)))

        def body(conn: Connection) -> MarkStep:
            return MarkStep(inputs_added=added[0], lifecycle=True)

        self._fenced_write(rt, "commit_machine_lifecycle", fence, body, send=send)

    def load_machine_lifecycle(self, runtime_id: str) -> bytes | None:
        return self._load_single(runtime_id, LIFECYCLES, "lifecycle", "load_machine_lifecycle")

    # --- operation registry ---------------------------------------------------------------
    def append_ops_record(self, runtime_id: str, record: bytes, *, fence: Fence | None = None) -> None:
        rt = v.check_runtime_id(runtime_id, WriteFailed)
        v.check_bytes(rt, "ops record", record, WriteFailed)

        def send(conn: Connection, key: int) -> None:
            # the number is drawn before the lock (the checksum binds it); it orders the records
            seq_row = conn.execute(self._sql.next_record_seq).fetchone()
            assert seq_row is not None
            seq = int(str(seq_row[0]))
            checksum = row_checksum(OPS_RECORDS, rt, str(seq), record)
            self._send(conn, self._sql.send_record, (key, seq, rt, record, checksum))

        self._fenced_write(rt, "append_ops_record", fence, lambda conn: MarkStep(ops_records_added=1), send=send)

    def persist_ops_lifecycle(self, runtime_id: str, snapshot: bytes, *, fence: Fence | None = None) -> None:
        rt = v.check_runtime_id(runtime_id, WriteFailed)
        v.check_bytes(rt, "ops snapshot", snapshot, WriteFailed)

        def send(conn: Connection, key: int) -> None:
            single = (rt, snapshot, row_checksum(OPS_SNAPSHOTS, rt, "", snapshot))
            self._send(conn, self._sql.send_ops_snapshot, (key, *single))

        def body(conn: Connection) -> MarkStep:
            conn.execute(self._sql.delete_records, (rt,))
            return MarkStep(ops_snapshot=True, ops_records_cleared=True)

        self._fenced_write(rt, "persist_ops_lifecycle", fence, body, send=send)

    def load_ops_lifecycle(self, runtime_id: str) -> OpsLifecycleRecords | None:
        rt = v.check_runtime_id(runtime_id, ReadFailed)
        found = self._read(
            rt, "load_ops_lifecycle", lambda conn: conn.execute(self._sql.select_ops, (rt, rt)).fetchall()
        )
        snapshot: bytes | None = None
        appended: list[bytes] = []
        for kind, seq, payload, checksum in found:
            if kind == 0:
                snapshot = verified_payload(OPS_SNAPSHOTS, rt, "", payload, checksum)
            else:
                appended.append(verified_payload(OPS_RECORDS, rt, str(seq), payload, checksum))
        if not found:
            return None
        return OpsLifecycleRecords(snapshot, tuple(appended))

    def delete_ops_lifecycle(self, runtime_id: str, *, fence: Fence | None = None) -> None:
        rt = v.check_runtime_id(runtime_id, WriteFailed)

        def body(conn: Connection) -> MarkStep:
            conn.execute(self._sql.delete_ops_snapshot, (rt,))
            conn.execute(self._sql.delete_records, (rt,))
            return MarkStep(ops_snapshot=False, ops_records_cleared=True)

        self._fenced_write(rt, "delete_ops_lifecycle", fence, body)

    # --- damage detection and quarantine -------------------------------------------------
    def load_high_water(self, runtime_id: str) -> HighWater | None:
        rt = v.check_runtime_id(runtime_id, ReadFailed)
        row = self._read(rt, "load_high_water", lambda conn: conn.execute(self._sql.select_mark, (rt,)).fetchone())
        return stored_mark(rt, row)

    def scan_input_states(self, runtime_id: str) -> list[ScannedRow]:
        rt = v.check_runtime_id(runtime_id, ReadFailed)
        found = self._read(rt, "scan_input_states", lambda conn: conn.execute(self._sql.select_scan, (rt,)).fetchall())
        return [_scanned(rt, str(i), p, c, (at, k, q)) for i, p, c, at, k, q in found]

    def quarantine_row(
        self, runtime_id: str, input_id: str, reason: str, *, fence: Fence | None = None
    ) -> QuarantinedRow:
        rt = v.check_runtime_id(runtime_id, WriteFailed)
        key = v.check_input_id(rt, input_id, WriteFailed)
        why = v.check_reason(rt, reason, WriteFailed)
        moved: list[QuarantinedRow] = []

        def body(conn: Connection) -> MarkStep:
            found = conn.execute(self._sql.select_input_for_quarantine, (rt, key)).fetchone()
            if found is None:
                raise RowNotStored(rt, f"quarantine_row: no input row {key!r} is stored; nothing was moved")
            payload, checksum, seq, server_now = found
            counted = conn.execute(self._sql.count_inputs, (rt,)).fetchone()
            rows = int(str(counted[0])) if counted is not None else 0
            mark = stored_mark(rt, conn.execute(self._sql.select_mark, (rt,)).fetchone())
            if (refusal := quarantine_refusal(mark, rows)) is not None:
                raise quarantine_refused(rt, refusal)
            scanned = _scanned(rt, key, payload, checksum)
            row = QuarantinedRow(key, scanned.payload, scanned.intact, why, self._now(server_now))
            sealed = row_checksum(QUARANTINE, rt, str(seq), row.sealed_form())
            conn.execute(
                self._sql.move_to_quarantine,
                (rt, key, seq, rt, key, row.payload, row.intact, why, row.quarantined_at, sealed),
            )
            moved.append(row)
            return MarkStep(inputs_removed=1, quarantined_added=1)

        self._fenced_write(rt, "quarantine_row", fence, body)
        return moved[0]

    def load_quarantined(self, runtime_id: str) -> list[QuarantinedRow]:
        rt = v.check_runtime_id(runtime_id, ReadFailed)
        found = self._read(
            rt, "load_quarantined", lambda conn: conn.execute(self._sql.select_quarantined, (rt,)).fetchall()
        )
        rows: list[QuarantinedRow] = []
        for seq, input_id, payload, was_intact, reason, at, checksum in found:
            if not isinstance(payload, bytes) or not isinstance(at, float) or not isinstance(was_intact, bool):
                raise Corrupt(rt, f"row {QUARANTINE}[{seq}] has malformed columns")
            row = QuarantinedRow(str(input_id), payload, was_intact, str(reason), at)
            verified_payload(QUARANTINE, rt, str(seq), row.sealed_form(), checksum)
            rows.append(row)
        return rows

    # --- ownership ------------------------------------------------------------------------
    def _now(self, server_now: object) -> float:
        return float(self.clock()) if self.clock is not None else float(str(server_now))

    def claim_lease(self, runtime_id: str, owner: str, duration_s: float) -> Lease:
        rt = v.check_runtime_id(runtime_id, WriteFailed)
        who = v.check_owner(rt, owner, WriteFailed)
        duration = v.check_duration(rt, duration_s, WriteFailed)
        # A live lease of another owner is answered from one read: no transaction, no WAL.
        row = self._tx.read(
            rt, "claim_lease", lambda conn: conn.execute(self._sql.lease_and_now, (rt,)).fetchone(), WriteFailed
        )
        assert row is not None
        claim_outcome(rt, _lease(rt, row[1:]), who, duration, self._now(row[0]))
        key = lock_key(self.schema, rt)

        def body(conn: Connection) -> Lease:
            locked = conn.execute(self._sql.lease_and_now_for_update, (rt,)).fetchone()
            assert locked is not None
            lease = claim_outcome(rt, _lease(rt, locked[1:]), who, duration, self._now(locked[0]))
            conn.execute(self._sql.upsert_lease, lease_params(lease))
            return lease

        return self._tx.write(rt, "claim_lease", body, first=f"SELECT pg_advisory_xact_lock({key})")

    def renew_lease(self, fence: Fence, runtime_id: str, duration_s: float) -> Lease:
        rt = v.check_runtime_id(runtime_id, WriteFailed)
        checked = v.check_required_fence(rt, fence, WriteFailed)
        duration = v.check_duration(rt, duration_s, WriteFailed)

        def body(conn: Connection) -> Lease:
            locked = conn.execute(self._sql.lease_and_now_for_update, (rt,)).fetchone()
            assert locked is not None
            lease = renewal_outcome(rt, _lease(rt, locked[1:]), checked, duration, self._now(locked[0]))
            conn.execute(self._sql.upsert_lease, lease_params(lease))
            return lease

        return self._tx.write(rt, "renew_lease", body)

    def renew_leases(self, renewals: Sequence[tuple[Fence, str]], duration_s: float) -> list[RenewalOutcome]:
        """``renew_lease`` for each pair (see :class:`~meerkat_runtime.store.protocol.RenewsLeases`):
        one transaction of two statements renews the rows it can lock at once — one reads the
        server's clock and locks the lease rows (``FOR UPDATE SKIP LOCKED``, in runtime id order:
        a row locked by another transaction is skipped, nothing waits), one writes the renewed
        rows from arrays. Each pair whose row was not obtained (locked elsewhere, or absent) then
        gets the outcome of ``renew_lease`` for it alone (its ``StoreError`` returned in its
        place): a locked row waits, and may time out, alone, and the others are not held.
        Like ``renew_lease`` it takes no advisory lock."""
        duration, items = v.check_renewals(renewals, duration_s, STORE_SCOPE)
        outcomes: list[RenewalOutcome | None] = [item if not isinstance(item, tuple) else None for item in items]
        todo = [(index, item) for index, item in enumerate(items) if isinstance(item, tuple)]
        if not todo:
            return [outcome for outcome in outcomes if outcome is not None]
        ids = [rt for _, (rt, _) in todo]
        alone: list[tuple[int, str, Fence]] = []

        def body(conn: Connection) -> None:
            alone.clear()  # the transaction may run again
            rows = conn.execute(self._sql.leases_and_now_for_update, (ids,)).fetchall()
            now = self._now(rows[0][0])
            found = {str(row[1]): row[2:] for row in rows if row[1] is not None}
            renewed: list[tuple[str, str, int, float, str]] = []
            for index, (rt, fence) in todo:
                if rt not in found:  # locked by another transaction, or absent
                    alone.append((index, rt, fence))
                    continue
                try:
                    lease = renewal_outcome(rt, _lease(rt, found.get(rt)), fence, duration, now)
                except (OwnershipLost, Corrupt) as refused:
                    outcomes[index] = refused
                    continue
                renewed.append(lease_params(lease))
                outcomes[index] = lease
            if renewed:
                columns = list(zip(*renewed, strict=True))
                conn.execute(self._sql.renew_leases, (list(columns[0]), list(columns[3]), list(columns[4])))

        self._tx.write(ids[0], "renew_leases", body)
        for index, rt, fence in alone:
            try:
                outcomes[index] = self.renew_lease(fence, rt, duration)
            except StoreError as refused:
                outcomes[index] = refused
        done = [outcome for outcome in outcomes if outcome is not None]
        assert len(done) == len(items)
        return done

    def release_lease(self, fence: Fence, runtime_id: str) -> None:
        rt = v.check_runtime_id(runtime_id, WriteFailed)
        checked = v.check_required_fence(rt, fence, WriteFailed)

        def body(conn: Connection) -> None:
            locked = conn.execute(self._sql.lease_and_now_for_update, (rt,)).fetchone()
            assert locked is not None
            lease = released(_lease(rt, locked[1:]), checked, self._now(locked[0]))
            if lease is not None:
                conn.execute(self._sql.upsert_lease, lease_params(lease))

        self._tx.write(rt, "release_lease", body)

    def load_lease(self, runtime_id: str) -> Lease | None:
        rt = v.check_runtime_id(runtime_id, ReadFailed)
        row = self._tx.read(rt, "load_lease", lambda conn: conn.execute(self._sql.select_lease, (rt,)).fetchone())
        return _lease(rt, row)

    # --- listing --------------------------------------------------------------------------
    def list_runtimes(self) -> list[str]:
        tables = (INPUTS, RECEIPTS, SNAPSHOTS, LIFECYCLES, OPS_SNAPSHOTS, OPS_RECORDS, LEASES, HIGH_WATER, QUARANTINE)
        query = " UNION ".join(f"SELECT runtime_id FROM {self.schema}.{table}" for table in tables)
        found = self._tx.read(STORE_SCOPE, "list_runtimes", lambda conn: conn.execute(query).fetchall())
        return sorted({str(row[0]) for row in found})  # code-point order, whatever the collation

    # --- housekeeping ---------------------------------------------------------------------
    def close(self) -> None:
        """Wait for calls in flight, then close the pool if the store opened it. Idempotent."""
        if self._gate.close():
            self._close_pool()

    def __enter__(self) -> PostgresRuntimeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _load_single(self, runtime_id: str, table: str, column: str, what: str) -> bytes | None:
        rt = v.check_runtime_id(runtime_id, ReadFailed)
        query = f"SELECT {column}, checksum FROM {self.schema}.{table} WHERE runtime_id = %s"
        found = self._read(rt, what, lambda conn: conn.execute(query, (rt,)).fetchone())
        return None if found is None else verified_payload(table, rt, "", found[0], found[1])


def _scanned(
    rt: str, input_id: str, payload: object, checksum: object, columns: tuple[object, object, object] | None = None
) -> ScannedRow:
    """A stored input row and whether it passes its integrity check (never raises for damage);
    with ``columns`` (finished_at, key, admission position), those too."""
    data = bytes(payload) if isinstance(payload, bytes | bytearray | memoryview) else b""
    read, malformed = (None, None) if columns is None else scanned_columns(rt, input_id, *columns)
    try:
        verified_payload(INPUTS, rt, input_id, payload, checksum)
    except Corrupt:
        return ScannedRow(input_id, data, False, read, malformed)
    return ScannedRow(input_id, data, True, read, malformed)


def _lease(rt: str, row: Sequence[Any] | None) -> Lease | None:
    """The lease in a row ``(owner, token, expires_at, checksum)`` (checksum verified); ``None``
    for no row (or a row of NULLs from an outer join)."""
    return None if row is None or row[0] is None else stored_lease(rt, *row)


class _Statements:
    """The store's SQL, with the schema name filled in."""

    def __init__(self, s: str) -> None:
        # The data statements of the writes (``send_*``, see ``_fenced_write``): the first
        # parameter is the runtime's advisory lock key, taken by ``lock`` when the statement runs;
        # every row the statement writes comes from a join with ``lock``, so none is written before
        # the lock is held, and the final ``FROM lock`` takes it even when no row is written.
        lock = "lock AS MATERIALIZED (SELECT pg_advisory_xact_lock(%s::bigint) AS held)"

        def single_cte(name: str, table: str, column: str) -> str:
            return (
                f"{name} AS (INSERT INTO {s}.{table} (runtime_id, {column}, checksum) "
                f"SELECT %s::text, %b::bytea, %s::text FROM lock "
                f"ON CONFLICT (runtime_id) DO UPDATE SET {column} = excluded.{column}, checksum = excluded.checksum)"
            )

        # (xmax = 0): the row was inserted, not updated; the count is the mark's inputs_added
        inputs_cte = (
            f"inputs AS (INSERT INTO {s}.{INPUTS} (runtime_id, input_id, payload, checksum, finished_at, "
            "idempotency_key, admission_seq, queued) SELECT %s::text, i, p, c, f, k, q, w FROM unnest(%s::text[], "
            "%b::bytea[], %s::text[], %s::float8[], %s::text[], %s::bigint[], %b::bytea[]) AS r(i, p, c, f, k, q, w) "
            "CROSS JOIN lock "
            "ON CONFLICT (runtime_id, input_id) DO UPDATE SET payload = excluded.payload, "
            "checksum = excluded.checksum, finished_at = excluded.finished_at, "
            "idempotency_key = excluded.idempotency_key, admission_seq = excluded.admission_seq, "
            "queued = excluded.queued "
            "RETURNING (xmax = 0) AS inserted)"
        )
        receipt_cte = (
            f"receipt AS (INSERT INTO {s}.{RECEIPTS} (runtime_id, run_id, sequence, receipt, checksum) "
            "SELECT %s::text, %s::text, %s::bigint, %b::bytea, %s::text FROM lock ON CONFLICT DO NOTHING RETURNING 1), "
            # the receipt's index entries, written only with the receipt itself
            f"named AS (INSERT INTO {s}.{RECEIPT_INPUTS} (runtime_id, input_id, run_id, sequence) "
            "SELECT %s::text, n.i, %s::text, %s::bigint FROM unnest(%s::text[]) AS n(i) CROSS JOIN receipt "
            "ON CONFLICT DO NOTHING)"
        )
        inputs_added = "(SELECT count(*) FILTER (WHERE inserted) FROM inputs)"
        self.send_inputs = f"WITH {lock}, {inputs_cte} SELECT {inputs_added} FROM lock"
        apply = f"{receipt_cte}, {inputs_cte} SELECT (SELECT count(*) FROM receipt), {inputs_added} FROM lock"
        self.send_apply = f"WITH {lock}, {apply}"
        self.send_apply_snapshot = f"WITH {lock}, {single_cte('snap', SNAPSHOTS, 'snapshot')}, {apply}"
        self.send_lifecycle = (
            f"WITH {lock}, {single_cte('state', LIFECYCLES, 'lifecycle')}, {inputs_cte} SELECT {inputs_added} FROM lock"
        )
        self.send_ops_snapshot = f"WITH {lock}, {single_cte('ops', OPS_SNAPSHOTS, 'snapshot')} SELECT 1 FROM lock"
        self.send_record = (
            f"WITH {lock}, record AS (INSERT INTO {s}.{OPS_RECORDS} (seq, runtime_id, record, checksum) "
            "SELECT %s::bigint, %s::text, %b::bytea, %s::text FROM lock) SELECT 1 FROM lock"
        )
        row_columns = f"input_id, payload, checksum, finished_at, idempotency_key, admission_seq, {POSTGRES_QUEUED}"
        self.select_scan = (
            f"SELECT input_id, payload, checksum, finished_at, idempotency_key, admission_seq FROM {s}.{INPUTS} "
            "WHERE runtime_id = %s ORDER BY input_id"
        )
        self.select_inputs = f"SELECT {row_columns} FROM {s}.{INPUTS} WHERE runtime_id = %s ORDER BY input_id"
        self.select_active = (
            f"SELECT {row_columns} FROM {s}.{INPUTS} WHERE runtime_id = %s AND finished_at IS NULL ORDER BY input_id"
        )
        self.select_finished = (
            f"SELECT input_id, finished_at, idempotency_key, admission_seq FROM {s}.{INPUTS} "
            "WHERE runtime_id = %s AND finished_at IS NOT NULL ORDER BY finished_at, input_id"
        )
        self.select_input = f"SELECT {row_columns} FROM {s}.{INPUTS} WHERE runtime_id = %s AND input_id = %s"
        self.active_among = (
            f"SELECT input_id FROM {s}.{INPUTS} WHERE runtime_id = %s AND input_id = ANY(%s::text[]) "
            "AND finished_at IS NULL ORDER BY input_id LIMIT 1"
        )
        self.delete_finished = (
            f"DELETE FROM {s}.{INPUTS} WHERE runtime_id = %s AND input_id = ANY(%s::text[]) "
            "AND finished_at IS NOT NULL RETURNING input_id"
        )
        self.select_receipt = (
            f"SELECT receipt, checksum FROM {s}.{RECEIPTS} WHERE runtime_id = %s AND run_id = %s AND sequence = %s"
        )
        # the receipts naming any of the inputs (by the receipt index, then by primary key)
        self.select_named_receipts = (
            f"SELECT r.run_id, r.sequence, r.receipt FROM (SELECT DISTINCT run_id, sequence FROM {s}.{RECEIPT_INPUTS} "
            "WHERE runtime_id = %s AND input_id = ANY(%s::text[])) AS n "
            f"JOIN {s}.{RECEIPTS} AS r ON r.runtime_id = %s AND r.run_id = n.run_id AND r.sequence = n.sequence "
            "ORDER BY r.run_id, r.sequence"
        )
        self.delete_receipt_entries = (
            f"DELETE FROM {s}.{RECEIPT_INPUTS} WHERE runtime_id = %s AND (input_id, run_id, sequence) IN "
            "(SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[]))"
        )
        self.any_input_among = (
            f"SELECT 1 FROM {s}.{INPUTS} WHERE runtime_id = %s AND input_id = ANY(%s::text[]) LIMIT 1"
        )
        self.delete_receipts = (
            f"DELETE FROM {s}.{RECEIPTS} WHERE runtime_id = %s AND (run_id, sequence) IN "
            "(SELECT * FROM unnest(%s::text[], %s::bigint[]))"
        )
        self.next_record_seq = f"SELECT nextval('{s}.runtime_ops_records_seq')"
        self.delete_records = f"DELETE FROM {s}.{OPS_RECORDS} WHERE runtime_id = %s"
        self.delete_ops_snapshot = f"DELETE FROM {s}.{OPS_SNAPSHOTS} WHERE runtime_id = %s"
        self.select_ops = (
            f"SELECT 0, 0::bigint, snapshot, checksum FROM {s}.{OPS_SNAPSHOTS} WHERE runtime_id = %s "
            f"UNION ALL SELECT 1, seq, record, checksum FROM {s}.{OPS_RECORDS} WHERE runtime_id = %s ORDER BY 1, 2"
        )
        self.select_mark = select_statement(s)
        self.advance_mark = advance_statement(s)
        self.advance_mark_removing = f"{self.advance_mark} RETURNING inputs, receipts"
        self.count_inputs = f"SELECT count(*) FROM {s}.{INPUTS} WHERE runtime_id = %s"
        now = "extract(epoch FROM clock_timestamp())::float8"
        self.select_input_for_quarantine = (
            f"SELECT payload, checksum, nextval('{s}.{QUARANTINE}_seq'), {now} FROM {s}.{INPUTS} "
            "WHERE runtime_id = %s AND input_id = %s FOR UPDATE"
        )
        self.move_to_quarantine = (
            f"WITH gone AS (DELETE FROM {s}.{INPUTS} WHERE runtime_id = %s AND input_id = %s) "
            f"INSERT INTO {s}.{QUARANTINE} (seq, runtime_id, input_id, payload, intact, reason, quarantined_at, "
            "checksum) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        )
        self.select_quarantined = (
            f"SELECT seq, input_id, payload, intact, reason, quarantined_at, checksum FROM {s}.{QUARANTINE} "
            "WHERE runtime_id = %s ORDER BY seq"
        )
        lease_columns = "owner, token, expires_at, checksum"
        self.select_lease = f"SELECT {lease_columns} FROM {s}.{LEASES} WHERE runtime_id = %s"
        self.lease_and_now = (
            f"SELECT {now}, l.owner, l.token, l.expires_at, l.checksum FROM (SELECT 1) AS one "
            f"LEFT JOIN (SELECT {lease_columns} FROM {s}.{LEASES} WHERE runtime_id = %s) AS l ON true"
        )
        self.lease_and_now_for_update = (
            f"SELECT {now}, l.owner, l.token, l.expires_at, l.checksum FROM (SELECT 1) AS one "
            f"LEFT JOIN (SELECT {lease_columns} FROM {s}.{LEASES} WHERE runtime_id = %s FOR UPDATE) AS l ON true"
        )
        self.leases_and_now_for_update = (
            f"SELECT {now}, l.runtime_id, l.owner, l.token, l.expires_at, l.checksum FROM (SELECT 1) AS one "
            f"LEFT JOIN (SELECT runtime_id, {lease_columns} FROM {s}.{LEASES} WHERE runtime_id = ANY(%s::text[]) "
            "ORDER BY runtime_id FOR UPDATE SKIP LOCKED) AS l ON true"
        )
        self.renew_leases = (
            f"UPDATE {s}.{LEASES} AS l SET expires_at = r.expires_at, checksum = r.checksum "
            "FROM unnest(%s::text[], %s::float8[], %s::text[]) AS r(runtime_id, expires_at, checksum) "
            "WHERE l.runtime_id = r.runtime_id"
        )
        self.upsert_lease = (
            f"INSERT INTO {s}.{LEASES} (runtime_id, owner, token, expires_at, checksum) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (runtime_id) DO UPDATE SET owner = excluded.owner, token = excluded.token, "
            "expires_at = excluded.expires_at, checksum = excluded.checksum"
        )
