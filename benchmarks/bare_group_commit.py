"""The floor of a durable accept in one CPython process, for ``bench_durable_accept.py``.

A bare writer does the least any asyncio service does to acknowledge a write only after it is
durable in SQLite: a coroutine encodes its row (a JSON object around a 200-byte text) and awaits a
future; one writer thread takes every row queued, inserts them with one ``executemany`` in one
``BEGIN IMMEDIATE ... COMMIT`` (WAL, ``synchronous=FULL``, a ``(runtime_id, input_id)`` primary
key) and completes the batch's futures with one call onto the loop. Nothing is checked, nothing is
read back, nothing is fenced or counted, and a failure fails the whole batch.

Its throughput ratios (N sessions over one) show what the machine allows such a process at all:
a runtime that does more per accept cannot exceed them by batching alone.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
import uuid
from collections import deque
from pathlib import Path

Queued = tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]", tuple[str, str, bytes]]


class BareWriter:
    """One writer thread committing every queued row in one transaction."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = FULL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS inputs (runtime_id TEXT, input_id TEXT, row BLOB, "
            "PRIMARY KEY (runtime_id, input_id))"
        )
        self._queue: deque[Queued] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="bare-writer", daemon=True)
        self._thread.start()

    def submit(self, runtime_id: str, input_id: str, row: bytes) -> asyncio.Future[None]:
        """Queue one row; the future completes once its batch committed."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        with self._cond:
            self._queue.append((loop, done, (runtime_id, input_id, row)))
            self._cond.notify()
        return done

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    return
                batch = list(self._queue)
                self._queue.clear()
            error: BaseException | None = None
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany("INSERT INTO inputs VALUES (?, ?, ?)", [rows for _, _, rows in batch])
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                error = exc
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
            batch[0][0].call_soon_threadsafe(_complete, [done for _, done, _ in batch], error)

    def close(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join()
        self._conn.close()


def _complete(waiters: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for done in waiters:
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)


def bare_row(runtime_id: str, input_id: str, text: str) -> bytes:
    """The JSON text of one queued input: the fields a queue row needs, no more."""
    now = time.time()
    doc = {
        "runtime_id": runtime_id,
        "input_id": input_id,
        "kind": "prompt",
        "text": text,
        "phase": "queued",
        "created_at": now,
        "updated_at": now,
        "attempts": 0,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


async def bare_accepting(path: Path, sessions: int, per_session: int, text: str) -> tuple[float, list[float], float]:
    """``sessions`` coroutines each writing ``per_session`` rows through one bare writer, each
    awaiting its write before the next: accepts/s, latencies and CPU seconds of the process per
    accept."""
    writer = BareWriter(path)
    ids = [f"s{i}" for i in range(sessions)]
    latencies: list[float] = []

    async def one(runtime_id: str) -> None:
        for _ in range(per_session):
            start = time.perf_counter()
            input_id = str(uuid.uuid4())
            await writer.submit(runtime_id, input_id, bare_row(runtime_id, input_id, text))
            latencies.append(time.perf_counter() - start)

    await asyncio.gather(*(writer.submit(sid, "warm-up", b"{}") for sid in ids))
    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(sid) for sid in ids))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    writer.close()
    total = sessions * per_session
    return total / elapsed, latencies, cpu / total
