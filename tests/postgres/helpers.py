"""Shared pieces of the PostgreSQL tests: opening stores, terminating their backends and cutting
their connections."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from meerkat_runtime.store.postgres import PostgresRuntimeStore
from psycopg.conninfo import conninfo_to_dict, make_conninfo


def named(dsn: str, application_name: str) -> str:
    """``dsn`` with an application name, so a test can find (and terminate) its connections."""
    return make_conninfo(dsn, application_name=application_name)


def open_store(dsn: str, schema: str, **options: Any) -> PostgresRuntimeStore:
    return PostgresRuntimeStore(dsn, schema=schema, **options)


def admin(dsn: str) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(dsn, autocommit=True)


def terminate(dsn: str, application_name: str, *, waiting_on: str | None = None) -> int:
    """Terminate the backends of ``application_name`` (only those waiting on ``waiting_on``, a
    ``wait_event`` such as ``PgSleep``, when given); returns how many."""
    query = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s"
    params: list[object] = [application_name]
    if waiting_on is not None:
        query += " AND wait_event = %s"
        params.append(waiting_on)
    with admin(dsn) as conn:
        row = conn.execute(query, params).fetchone()
    return int(row[0]) if row else 0


@contextmanager
def terminator(dsn: str, application_name: str, *, times: int) -> Iterator[list[int]]:
    """A thread that terminates each backend of ``application_name`` found sleeping in
    ``pg_sleep`` (a trigger the test installed), up to ``times`` of them; yields the running count."""
    done: list[int] = [0]
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set() and done[0] < times:
            done[0] += terminate(dsn, application_name, waiting_on="PgSleep")
            time.sleep(0.01)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield done
    finally:
        stop.set()
        thread.join(timeout=10)


class CuttableProxy:
    """A TCP relay in front of the server whose connections can be cut, as a network failure
    cuts them: the client sees its connection break while the server's backend lives on and
    finishes what it was doing (a ``COMMIT`` included) until it next talks to the client."""

    def __init__(self, dsn: str) -> None:
        params = conninfo_to_dict(dsn)
        host, port = str(params.get("host") or "127.0.0.1"), int(str(params.get("port") or 5432))
        self._upstream: tuple[socket.AddressFamily, Any] = (
            (socket.AF_UNIX, f"{host}/.s.PGSQL.{port}") if host.startswith("/") else (socket.AF_INET, (host, port))
        )
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen()
        self.dsn = make_conninfo(dsn, host="127.0.0.1", port=self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.socket(self._upstream[0])
            server.connect(self._upstream[1])
            with self._lock:
                self._pairs.append((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._relay, args=(source, sink), daemon=True).start()

    @staticmethod
    def _relay(source: socket.socket, sink: socket.socket) -> None:
        """Copy ``source`` to ``sink``; when ``source`` ends (a backend that exited, a client that
        closed), pass the end on, so the other side sees its connection closed."""
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def cut(self) -> int:
        """Close every relayed connection on both sides; returns how many."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for end in pair:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()
        return len(pairs)

    def close(self) -> None:
        """Stop listening (new connections are refused) and cut every relayed connection."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread: close alone does not
        self._listener.close()
        self.cut()


@contextmanager
def cut_while_sleeping(dsn: str, application_name: str, proxy: CuttableProxy) -> Iterator[list[int]]:
    """A thread that cuts ``proxy`` once a backend of ``application_name`` is found sleeping in
    ``pg_sleep`` (a trigger the test installed); yields ``[connections cut]``."""
    cut: list[int] = [0]
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            with admin(dsn) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND wait_event = 'PgSleep'",
                    (application_name,),
                ).fetchone()
            if row and row[0]:
                cut[0] = proxy.cut()
                return
            time.sleep(0.01)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield cut
    finally:
        stop.set()
        thread.join(timeout=10)
