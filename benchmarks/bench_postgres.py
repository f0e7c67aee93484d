"""What the PostgreSQL store costs next to SQLite and to a bare commit, and how fast a session
moves to another worker.

Usage::

    MEERKAT_PG_DSN=... .venv/bin/python benchmarks/bench_postgres.py [--seconds S] [--idle]
    ./run bench postgres            # starts a throwaway server when MEERKAT_PG_DSN is not set

1. Accepts: 1, 8 and 64 sessions accepting inputs concurrently (each session one asyncio task,
   accepting one input after the other), spread over 1 and 3 worker processes, for ``--seconds``
   per configuration: accepts/s over all processes and p50/p99 latency of one accept. Ownership
   is on (a lease per session, the fence checked in each write). The same on SQLite
   (``synchronous=FULL``, one file shared by the processes), and a raw single-row
   ``INSERT`` + ``COMMIT`` on the same PostgreSQL server from 1, 8 and 64 threads. Each accept
   row is also given as its p50 over the raw commit's p50 at the same concurrency, measured in
   the same conditions. On these VMs an fsync issued while the CPUs are idle waits for a timer
   tick, so by default every CPU is kept awake by a lowest-priority busy loop
   (``bench_ownership.cpus_awake``); ``--idle`` measures without it.
2. Takeover: three workers on one database, a worker that owns sessions SIGKILLed each cycle
   (the cluster harness), the time until another worker owns each of its sessions, against the
   lease length.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_ownership import cpus_awake
from meerkat_conformance.stores.postgres_backend import drop_schema, fresh_schema_name
from meerkat_conformance.takeover.cluster import run_cluster
from meerkat_runtime.session.inputs import prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.store.postgres import PostgresRuntimeStore
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.sqlite import SqliteRuntimeStore

SESSIONS = (1, 8, 64)
PROCESSES = (1, 3)


@dataclass(frozen=True)
class Figures:
    per_second: float
    p50_ms: float
    p99_ms: float


def _figures(latencies: list[float], seconds: float) -> Figures:
    if not latencies:
        raise SystemExit(f"bench_postgres: no call finished in {seconds} s; give it more --seconds")
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return Figures(len(ordered) / seconds, statistics.median(ordered) * 1000, p99 * 1000)


def _open(store: dict[str, Any], connections: int) -> RuntimeStore:
    if store["kind"] == "postgres":
        return PostgresRuntimeStore(store["dsn"], schema=store["schema"], max_connections=connections)
    return SqliteRuntimeStore(store["path"], synchronous="FULL")


async def _accept_for(
    store_spec: dict[str, Any], sessions: list[str], ready: Any, go: Any, seconds: float
) -> list[float]:
    store = _open(store_spec, max(1, min(len(sessions), 16)))
    machine = MeerkatMachine.persistent(store)
    for session in sessions:
        await machine.register_session(session)
    latencies: list[float] = []
    ready.put(len(sessions))
    await asyncio.to_thread(go.wait)  # every process has registered its sessions
    end_at = time.time() + seconds

    async def one(session: str) -> None:
        n = 0
        while time.time() < end_at:
            n += 1
            t0 = time.perf_counter()
            await machine.accept_input(session, prompt(f"{session} {n}", idempotency_key=f"{session}-{n}"))
            latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(one(s) for s in sessions))
    await machine.close()
    store.close()
    return latencies


def _process(store_spec: dict[str, Any], sessions: list[str], ready: Any, go: Any, seconds: float, out: Any) -> None:
    out.put(asyncio.run(_accept_for(store_spec, sessions, ready, go, seconds)))


def accepts(store_spec: dict[str, Any], processes: int, sessions: int, seconds: float, tag: str) -> Figures:
    names = [f"{tag}-s{n}" for n in range(sessions)]
    context = multiprocessing.get_context("spawn")
    results, ready, go = context.Queue(), context.Queue(), context.Event()
    children = [
        context.Process(target=_process, args=(store_spec, names[p::processes], ready, go, seconds, results))
        for p in range(processes)
    ]
    for child in children:
        child.start()
    for _ in children:  # a slow start (a loaded machine) no longer eats into the measured seconds
        ready.get(timeout=120)
    go.set()
    latencies: list[float] = []
    for _ in children:
        latencies.extend(results.get(timeout=120))
    for child in children:
        child.join()
    return _figures(latencies, seconds)


def raw_commits(dsn: str, threads: int, seconds: float) -> Figures:
    """Single-row ``INSERT`` in autocommit (one transaction, one WAL flush each) from ``threads``
    connections at once."""
    import psycopg

    schema = fresh_schema_name("bench_raw")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.t (k TEXT PRIMARY KEY, v BYTEA)")
    payload = os.urandom(600)
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def loop(n: int) -> None:
        mine: list[float] = []
        with psycopg.connect(dsn, autocommit=True) as conn:
            barrier.wait()
            end = time.perf_counter() + seconds
            i = 0
            while time.perf_counter() < end:
                i += 1
                t0 = time.perf_counter()
                conn.execute(f"INSERT INTO {schema}.t (k, v) VALUES (%s, %s)", (f"{n}-{i}", payload))
                mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=loop, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    drop_schema(dsn, schema)
    return _figures(latencies, seconds)


def _row(label: str, processes: object, sessions: int, f: Figures, ratio: float) -> None:
    print(
        f"{label:<26} {processes!s:>9} {sessions:>8} {f.per_second:>10,.0f} {f.p50_ms:>8.2f} {f.p99_ms:>8.2f} "
        f"{ratio:>8.2f}",
        flush=True,
    )


def bench_accepts(dsn: str, root: Path, seconds: float) -> None:
    header = f"{'store':<26} {'processes':>9} {'sessions':>8} {'accepts/s':>10} {'p50 ms':>8} {'p99 ms':>8}"
    print(f"{header} {'p50/raw':>8}")
    raw = {n: raw_commits(dsn, n, seconds) for n in SESSIONS}
    for n in SESSIONS:
        _row("raw INSERT+COMMIT (pg)", "-", n, raw[n], 1.0)
    schema = fresh_schema_name("bench")
    PostgresRuntimeStore(dsn, schema=schema).close()
    stores = [
        ("postgres", {"kind": "postgres", "dsn": dsn, "schema": schema}),
        ("sqlite FULL", {"kind": "sqlite", "path": str(root / "bench.sqlite3")}),
    ]
    try:
        for label, spec in stores:
            for processes in PROCESSES:
                for sessions in SESSIONS:
                    f = accepts(spec, processes, sessions, seconds, f"{label[:2]}{processes}x{sessions}")
                    _row(label, processes, sessions, f, f.p50_ms / raw[sessions].p50_ms)
    finally:
        drop_schema(dsn, schema)


def bench_takeover(dsn: str, root: Path, kills: int, leases: list[float]) -> None:
    print(f"\n{'lease ms':>8} {'kills':>6} {'takeovers':>9} {'p50 ms':>7} {'min ms':>7} {'max ms':>7} {'p50/lease':>9}")
    for n, lease in enumerate(leases):
        directory = root / f"takeover-{n}"
        directory.mkdir()
        report = run_cluster(dsn, directory, cycles=kills, seed=n, lease_s=lease, kill_share=1.0, max_delay_s=lease)
        if not report.ok:
            raise SystemExit(f"takeover run failed: {report.violations}")
        t = sorted(report.takeover_s)
        p50 = statistics.median(t)
        print(f"{lease * 1000:>8.0f} {report.kills:>6} {len(t):>9} {p50 * 1000:>7.0f} {t[0] * 1000:>7.0f} "
              f"{t[-1] * 1000:>7.0f} {p50 / lease:>9.2f}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per configuration")
    parser.add_argument("--idle", action="store_true", help="do not keep the CPUs busy during the measurements")
    parser.add_argument("--kills", type=int, default=8, help="worker kills per lease length")
    parser.add_argument("--leases", default="0.5,1.0", help="lease lengths (s) for the takeover figures")
    args = parser.parse_args(argv)
    dsn = os.environ.get("MEERKAT_PG_DSN")
    if not dsn:
        parser.error("set MEERKAT_PG_DSN to a PostgreSQL connection string (./run bench postgres starts a server)")
    if args.seconds <= 0 or args.kills < 1:
        parser.error("need --seconds > 0 and --kills >= 1")
    with PostgresRuntimeStore(dsn, schema=fresh_schema_name("bench_probe")) as probe:
        settings = probe.settings()
        drop_schema(dsn, probe.schema)
    try:
        with tempfile.TemporaryDirectory() as tmp, cpus_awake(not args.idle) as spinners:
            state = f"kept busy by {spinners} lowest-priority busy loops" if spinners else "left idle (--idle)"
            print(
                f"CPUs {state}; {os.cpu_count()} CPUs; PostgreSQL {settings['server_version']} "
                f"(synchronous_commit={settings['synchronous_commit']}, fsync={settings['fsync']}, "
                f"{settings['isolation']}); SQLite {sqlite3.sqlite_version}; {args.seconds:g} s per row\n",
                flush=True,
            )
            bench_accepts(dsn, Path(tmp), args.seconds)
            bench_takeover(dsn, Path(tmp), args.kills, [float(x) for x in args.leases.split(",")])
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
