"""Shared pieces of the PostgreSQL tests: opening stores and terminating their backends."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from meerkat_runtime.store.postgres import PostgresRuntimeStore
from psycopg.conninfo import make_conninfo


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
