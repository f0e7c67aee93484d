"""Connections of the SQLite store: one per thread (or one shared behind a lock). (The gate
that lets ``close`` wait for calls in flight is :mod:`meerkat_runtime.store.call_gate`.)

Per-thread connections let reads run in parallel under WAL while SQLite serialises writers
(``BEGIN IMMEDIATE`` plus the busy timeout). The shared mode is used for ``:memory:``
databases, which exist only inside their one connection.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator


class ConnectionPool:
    """Hands each thread its connection (``per_thread``) or one connection under a lock."""

    def __init__(self, opener: Callable[[], sqlite3.Connection], *, per_thread: bool) -> None:
        self._opener = opener
        self._per_thread = per_thread
        self._lock = threading.Lock()
        self._shared: sqlite3.Connection | None = None
        self._local = threading.local()
        self._by_thread: dict[int, tuple[weakref.ref[threading.Thread], sqlite3.Connection]] = {}

    @property
    def per_thread(self) -> bool:
        return self._per_thread

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """The calling thread's connection, held exclusively for the ``with`` block."""
        if not self._per_thread:
            with self._lock:
                if self._shared is None:
                    self._shared = self._opener()
                yield self._shared
            return
        yield self._thread_connection()

    def own_connection(self) -> sqlite3.Connection | None:
        """With ``per_thread``: the calling thread's connection (opened on first use), which
        no other thread uses, so it needs no ``with`` block; ``None`` for a shared connection
        (use :meth:`connection`)."""
        return self._thread_connection() if self._per_thread else None

    def _thread_connection(self) -> sqlite3.Connection:
        """The calling thread's connection, opened on its first use (the per-thread mode of
        both :meth:`connection` and :meth:`own_connection`)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        return conn if conn is not None else self._new_thread_connection()

    def _new_thread_connection(self) -> sqlite3.Connection:
        conn = self._opener()
        thread = threading.current_thread()
        with self._lock:
            stale = [ident for ident, (ref, _) in self._by_thread.items() if (t := ref()) is None or not t.is_alive()]
            replaced = self._by_thread.get(thread.ident or 0)
            dead = [self._by_thread.pop(ident)[1] for ident in stale]
            if replaced is not None and replaced[1] not in dead:
                dead.append(replaced[1])
            self._by_thread[thread.ident or 0] = (weakref.ref(thread), conn)
        for old in dead:
            with contextlib.suppress(sqlite3.Error):
                old.close()
        self._local.conn = conn
        return conn

    def open_count(self) -> int:
        """How many connections are open now."""
        with self._lock:
            return len(self._by_thread) + (1 if self._shared is not None else 0)

    def close_all(self) -> None:
        with self._lock:
            conns = [conn for _, conn in self._by_thread.values()]
            if self._shared is not None:
                conns.append(self._shared)
            self._by_thread.clear()
            self._shared = None
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
