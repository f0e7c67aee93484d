"""Shared pieces of the PostgreSQL tests: opening stores, terminating their backends, and cutting or
silencing their connections (through the relays of :mod:`tests.postgres.relay`) while they sleep."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from meerkat_runtime.store.postgres import PostgresRuntimeStore
from psycopg.conninfo import make_conninfo

from tests.postgres.relay import CuttableProxy, SilencingProxy


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
def _polling(step: Callable[[], bool]) -> Iterator[None]:
    """A thread that calls ``step`` every 10 ms until it returns true or the block ends."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set() and not step():
            time.sleep(0.01)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


@contextmanager
def terminator(dsn: str, application_name: str, *, times: int) -> Iterator[list[int]]:
    """A thread that terminates each backend of ``application_name`` found sleeping in
    ``pg_sleep`` (a trigger the test installed), up to ``times`` of them; yields the running count."""
    done: list[int] = [0]

    def step() -> bool:
        done[0] += terminate(dsn, application_name, waiting_on="PgSleep")
        return done[0] >= times

    with _polling(step):
        yield done


@contextmanager
def when_sleeping(dsn: str, application_name: str, act: Callable[[int], None]) -> Iterator[None]:
    """A thread that calls ``act(pid)`` once, for the first backend of ``application_name`` found
    sleeping in ``pg_sleep`` (a trigger the test installed)."""

    def step() -> bool:
        with admin(dsn) as conn:
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND wait_event = 'PgSleep' LIMIT 1",
                (application_name,),
            ).fetchone()
        if row:
            act(int(row[0]))
        return row is not None

    with _polling(step):
        yield


@contextmanager
def cut_while_sleeping(dsn: str, application_name: str, proxy: CuttableProxy) -> Iterator[list[int]]:
    """Cuts ``proxy`` once a backend of ``application_name`` sleeps in ``pg_sleep``; yields
    ``[connections cut]``."""
    cut: list[int] = [0]

    def act(_pid: int) -> None:
        cut[0] = proxy.cut()

    with when_sleeping(dsn, application_name, act):
        yield cut


@contextmanager
def silence_while_sleeping(dsn: str, application_name: str, proxy: SilencingProxy) -> Iterator[list[int]]:
    """Silences the connection of the first backend of ``application_name`` found sleeping in
    ``pg_sleep``; yields ``[backend pid]`` once it did."""
    silenced: list[int] = []

    def act(pid: int) -> None:
        proxy.silence(pid)
        silenced.append(pid)

    with when_sleeping(dsn, application_name, act):
        yield silenced
