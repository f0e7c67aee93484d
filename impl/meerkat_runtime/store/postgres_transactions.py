"""Transactions of the PostgreSQL store and what their failures mean.

Every write runs as ``BEGIN ISOLATION LEVEL READ COMMITTED`` … ``COMMIT`` on a pooled
connection in autocommit mode (the store sends ``BEGIN`` and ``COMMIT`` itself, so it knows
whether the ``COMMIT`` had been sent when something failed). The classification:

* a failure before ``COMMIT`` was sent — a statement error, a constraint violation, a refusal
  raised by the store, a connection that broke: the transaction cannot have committed; it is
  rolled back (or died with its connection) and the caller gets ``WriteFailed`` (or the
  store's own ``WriteRefused``). A connection found broken before ``COMMIT`` is retried on a
  fresh connection (``ATTEMPTS`` in all; stale pooled connections are checked first), since
  nothing of the transaction can have happened;
* ``COMMIT`` answered with an ``ERROR`` by a session that still answers afterwards (a deferred
  check failed): the server rolled the transaction back: ``WriteFailed``;
* anything else while ``COMMIT`` was in flight — the connection broke, or the server ended the
  session with a ``FATAL`` error (``pg_terminate_backend`` can do that just after the commit
  record was flushed): the server may have committed and the acknowledgement been lost:
  ``WriteOutcomeUnknown``.

Reads run as single statements in autocommit mode (each sees one consistent snapshot) and
are retried on a broken connection like writes.

Time limits: every transaction starts with the store's own settings (:meth:`Transactions.begin`,
the one place that sets them), both derived from the store's ``timeout_s``:

* ``lock_timeout``: a lock the transaction waits for — a runtime's advisory lock, a lease row —
  is given up after ``timeout_s``; the call fails with ``WriteFailed`` saying that another
  connection holds the lock, and nothing was written. Without it a frozen owner (a stopped
  process, a host cut off mid-transaction, whose backend stays ``idle in transaction`` until
  TCP keepalive gives up) would block every other host's claim of its session without limit;
* ``idle_in_transaction_session_timeout``: the server ends a session of the store that stays
  idle inside one of these transactions for ``timeout_s`` (its process stopped, its host cut
  off), which rolls the transaction back and frees its locks. A frozen owner therefore holds a
  session's lock at most ``timeout_s``; when it wakes up its connection is gone, the write is
  retried on a fresh connection, and the fence check refuses it if another worker has claimed
  the session meanwhile (the stale worker of docs/model-ownership.md).

Neither applies while the server reads a message: a process frozen in the middle of sending a
large statement leaves its backend ``active`` in ``ClientRead`` without any timer. So a data
write sends its data in the statement that takes the runtime's advisory lock
(``PostgresRuntimeStore._fenced_write``): the lock is requested only once the data has been
read, and a writer frozen mid-send holds no lock another worker needs.

Client-side deadline (:mod:`~meerkat_runtime.store.postgres_deadline`): a transaction, from
its ``BEGIN`` to the answer to its ``COMMIT``, and a read get every answer of the server within
``reply_s`` = ``2 * timeout_s`` (the server gives up a lock wait after ``timeout_s``, so it
answers a lock wait first). When the server does not answer in time — the network stopped
delivering with the socket open, a hung server — the connection is closed and never reused,
and the call raises at once, without another try: ``WriteFailed`` ("nothing was written")
before ``COMMIT`` was sent, ``WriteOutcomeUnknown`` when it was (the server may have
committed), ``ReadFailed`` for a read. Every call of the store therefore returns within about
``timeout_s`` for a connection plus ``reply_s`` per transaction it runs (a data write whose
outcome is unknown runs one more to settle it, :mod:`~meerkat_runtime.store.postgres_in_flight`).

A schema migration (``PostgresRuntimeStore._migrate``) is the one transaction without the lock
timeout: a store opening while another process migrates — a backfill or an index over a large
table can take minutes — waits for the migration lock until that migration commits (failing
would only make the worker's start fail), nor the client-side deadline before its ``COMMIT``.
It keeps the idle timeout: a migration sends its statements back to back, so only a frozen
migrator is idle, and ending its transaction frees the migration lock for the openers that wait
for it without limit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import psycopg
import psycopg_pool

from meerkat_runtime.store.call_gate import CallGate
from meerkat_runtime.store.postgres_deadline import UNBOUNDED, ServerSilent, StoreConnection
from meerkat_runtime.vocab.errors import LockWaitTimedOut, ReadFailed, StoreError, WriteFailed, WriteOutcomeUnknown

T = TypeVar("T")
Connection = psycopg.Connection[tuple[object, ...]]
Body = Callable[[Connection], T]

ATTEMPTS = 3
"""Tries of one call when its connection turns out broken before ``COMMIT`` was sent."""

BEGIN = "BEGIN ISOLATION LEVEL READ COMMITTED"

PROBE_TIMEOUT_S = 2
"""Longest direct connection attempt made to say why the pool gave no connection (libpq's
``connect_timeout`` has a 2 s minimum)."""

REPLY_FACTOR = 2
"""``reply_s`` = ``REPLY_FACTOR * timeout_s``: the client-side deadline of one transaction or read."""

LOCK_NOT_AVAILABLE = "55P03"
"""SQLSTATE of a lock wait that ran past ``lock_timeout``."""


class _Silent(Exception):
    """The server did not answer in time before ``COMMIT`` was sent: nothing was written, and the
    call gives up (another try could wait as long again)."""

    def __init__(self, cause: ServerSilent) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _Broken(Exception):
    """The connection broke before ``COMMIT`` was sent: nothing happened, try again."""

    def __init__(self, cause: psycopg.Error) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _describe(exc: BaseException) -> str:
    state = getattr(exc, "sqlstate", None)
    text = str(exc).strip().replace("\n", " ")
    return f"{type(exc).__name__}{f' [{state}]' if state else ''}: {text}"


def commit_refused(conn: Connection, exc: psycopg.Error) -> bool:
    """Whether a failed ``COMMIT`` is known to have been rolled back: the server answered with an
    ``ERROR`` (an error before the commit record, which aborts the transaction) and the session
    still answers afterwards. A ``FATAL`` (the backend was terminated, possibly after the commit
    record was flushed), a broken connection or a session that no longer answers: unknown."""
    severity = getattr(getattr(exc, "diag", None), "severity_nonlocalized", None)
    if severity != "ERROR" or conn.broken or conn.closed:
        return False
    try:
        conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


class Transactions:
    """Runs the store's transactions on a pool, behind the store's call gate."""

    def __init__(
        self,
        pool: psycopg_pool.ConnectionPool[Any],
        gate: CallGate,
        *,
        checkout_timeout_s: float,
        read_only: bool = False,
    ) -> None:
        self.pool = pool
        self.gate = gate
        self.checkout_timeout_s = checkout_timeout_s
        self.read_only = read_only
        self.timeout_ms = max(1, int(checkout_timeout_s * 1000))
        self.reply_s = REPLY_FACTOR * checkout_timeout_s

    def begin(self, first: str = "", *, wait_for_locks: bool = False) -> str:
        """The statements that open every transaction of the store (one round trip): ``BEGIN``,
        the store's lock and idle timeouts (see the module docstring; ``wait_for_locks`` turns
        the lock timeout off, for a schema migration), then ``first``."""
        mode = " READ ONLY" if self.read_only else ""
        statements = [
            f"{BEGIN}{mode}",
            f"SET LOCAL lock_timeout = {0 if wait_for_locks else self.timeout_ms}",
            f"SET LOCAL idle_in_transaction_session_timeout = {self.timeout_ms}",
        ]
        if first:
            statements.append(first)
        return "; ".join(statements)

    @contextlib.contextmanager
    def connection(self) -> Iterator[StoreConnection]:
        """A pooled connection in autocommit mode (restored if the pool's was not), every wait of
        it bounded by ``reply_s`` (:class:`StoreConnection`; the store refuses a pool of another
        connection class)."""
        try:
            cm = self.pool.connection(timeout=self.checkout_timeout_s)
            conn = cm.__enter__()
        except psycopg_pool.PoolTimeout as exc:
            raise psycopg.OperationalError(
                f"no database connection within {self.checkout_timeout_s:g} s: {self._why_no_connection()}"
            ) from exc
        assert isinstance(conn, StoreConnection)
        conn.reply_s = self.reply_s
        restore = False
        try:
            restore = not conn.autocommit
            if restore:
                conn.autocommit = True
            yield conn
        finally:
            conn.stop()
            if restore and not conn.broken and not conn.closed:
                with contextlib.suppress(psycopg.Error):
                    conn.autocommit = False
            cm.__exit__(None, None, None)

    def _why_no_connection(self) -> str:
        """Why the pool gave no connection (it only logs its connection errors): one direct
        connection attempt (at most ``PROBE_TIMEOUT_S``) tells an unreachable or refusing server
        from a pool whose connections are all in use or still being re-established."""
        conninfo = self.pool.conninfo
        kwargs = dict(self.pool.kwargs) if isinstance(self.pool.kwargs, dict) else {}
        kwargs.pop("autocommit", None)
        kwargs.pop("connect_timeout", None)
        try:
            target = conninfo() if callable(conninfo) else conninfo
            psycopg.connect(target, **kwargs, connect_timeout=PROBE_TIMEOUT_S).close()
        except Exception as exc:
            return f"the server cannot be reached: {str(exc).strip().replace(chr(10), ' ')}"
        return (
            f"the server answers, but all {self.pool.max_size} connections of the pool were in use, or the pool "
            "is still re-establishing them after an outage"
        )

    # --- writes ---------------------------------------------------------------------------
    def write(self, runtime_id: str, what: str, body: Body[T], *, first: str = "", wait_for_locks: bool = False) -> T:
        """Run ``body`` in one READ COMMITTED transaction and commit it; see the module
        docstring for what a failure raises. ``first`` is a statement without parameters sent
        together with ``BEGIN`` (one round trip), such as taking an advisory lock.
        ``wait_for_locks``: no lock timeout (the idle timeout stays), for a schema migration."""
        if not self.gate.enter():
            raise WriteFailed(runtime_id, f"{what}: store is closed")
        try:
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    with self.connection() as conn:
                        return self._write_once(conn, runtime_id, what, body, first, wait_for_locks)
                except _Silent as silent:
                    raise WriteFailed(
                        runtime_id,
                        f"{what} failed: {_describe(silent.cause)} before COMMIT was sent; nothing was written",
                    ) from silent.cause
                except _Broken as broken:
                    if attempt == ATTEMPTS:
                        raise WriteFailed(
                            runtime_id,
                            f"{what} failed: the database connection broke before COMMIT, {ATTEMPTS} times; "
                            f"nothing was written: {_describe(broken.cause)}",
                        ) from broken.cause
                    self._drop_stale_connections()
                except psycopg.Error as exc:
                    raise WriteFailed(runtime_id, f"{what} failed: {_describe(exc)}") from exc
            raise AssertionError("unreachable")
        finally:
            self.gate.leave()

    def _write_once(
        self, conn: StoreConnection, runtime_id: str, what: str, body: Body[T], first: str, wait_for_locks: bool
    ) -> T:
        conn.start(UNBOUNDED if wait_for_locks else self.reply_s)
        try:
            conn.execute(self.begin(first, wait_for_locks=wait_for_locks))
            result = body(conn)
        except ServerSilent as exc:
            raise _Silent(exc) from exc
        except psycopg.Error as exc:
            if conn.broken:
                raise _Broken(exc) from exc
            self._rollback(conn)
            if exc.sqlstate == LOCK_NOT_AVAILABLE:
                raise LockWaitTimedOut(
                    runtime_id,
                    f"{what} failed: another connection held the lock it needs for more than "
                    f"{self.checkout_timeout_s:g} s (a write or claim of this runtime still running, a schema "
                    f"migration, or the transaction of a stalled process); nothing was written: {_describe(exc)}",
                ) from exc
            raise WriteFailed(runtime_id, f"{what} failed: {_describe(exc)}; nothing was written") from exc
        except BaseException:
            if not conn.broken:
                self._rollback(conn)
            raise
        if wait_for_locks:
            conn.start(self.reply_s)
        try:
            conn.execute("COMMIT")
        except ServerSilent as exc:
            raise WriteOutcomeUnknown(
                runtime_id,
                f"{what}: {_describe(exc)} while COMMIT was in flight; the write may or may not be durable",
            ) from exc
        except psycopg.Error as exc:
            if not commit_refused(conn, exc):
                raise WriteOutcomeUnknown(
                    runtime_id,
                    f"{what}: the connection broke while COMMIT was in flight; the write may or may not be "
                    f"durable: {_describe(exc)}",
                ) from exc
            raise WriteFailed(
                runtime_id, f"{what}: COMMIT was refused and rolled back, nothing was written: {_describe(exc)}"
            ) from exc
        return result

    @staticmethod
    def _rollback(conn: Connection) -> None:
        with contextlib.suppress(psycopg.Error):
            conn.execute("ROLLBACK")

    def _drop_stale_connections(self) -> None:
        """Let the pool test its idle connections, so a retry does not get another dead one."""
        with contextlib.suppress(Exception):
            self.pool.check()

    # --- reads ----------------------------------------------------------------------------
    def read(self, runtime_id: str, what: str, body: Body[T], error: type[StoreError] = ReadFailed) -> T:
        """Run ``body`` (single statements, autocommit); retried on a broken connection. A
        failure raises ``error`` (``ReadFailed``; a write method reading first passes ``WriteFailed``)."""
        if not self.gate.enter():
            raise error(runtime_id, f"{what}: store is closed")
        try:
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    with self.connection() as conn:
                        conn.start(self.reply_s)
                        try:
                            return body(conn)
                        except ServerSilent:
                            raise
                        except psycopg.Error as exc:
                            if conn.broken and attempt < ATTEMPTS:
                                raise _Broken(exc) from exc
                            raise
                except _Broken:
                    self._drop_stale_connections()
                except psycopg.Error as exc:
                    raise error(runtime_id, f"{what} failed: {_describe(exc)}") from exc
            raise AssertionError("unreachable")
        finally:
            self.gate.leave()
