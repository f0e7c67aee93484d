"""Durable accept at the speed of the disk: accept latency for one session, throughput of 8 and
64 concurrent sessions, tail latency, and commits per input run to completion, with group
commit on and off, against a raw commit and a peer library measured in the same run.

Usage::

    ./run bench durable_accept [--inputs N] [--per-session N] [--rounds N] [--no-busy] [--dir DIR]

Every file is SQLite in WAL mode with ``synchronous=FULL`` (the store's default). While FULL
rows are measured one busy loop per CPU runs at the lowest priority (``nice 19``), so an fsync
is not measured waiting for an idle CPU to wake up (``--no-busy`` turns them off). Rows:

* raw commit: ``BEGIN IMMEDIATE; INSERT`` of a 900-byte row ``; COMMIT`` with ``sqlite3``;
* persist-queue ``put`` (the ``bench`` extra; skipped when it is not installed), its defaults
  (WAL, synchronous FULL);
* ours (``failed``: accepts refused because SQLite's lock was not obtained within the busy
  timeout, over all rounds; ``per s`` counts the accepts that succeeded):
  ``accept_input`` of a 200-byte prompt on a persistent ``MeerkatMachine`` (ownership on,
  as by default), store calls inline or offloaded (the default), group commit on (the default)
  or off; 8 and 64 sessions accepting at once (each awaits its accept, then sends the next);
* commits per input: inputs accepted and run to completion by a ``ScriptedExecutor`` (accept,
  run start, boundary), counted as the store's committed write transactions
  (``SqliteRuntimeStore.commit_count``; in WAL mode with FULL each commit is one fsync of the
  log, checkpoints aside), one session alone and 8 at once.

Figures are medians over ``--rounds`` interleaved rounds (each on fresh files); ratios are to the
raw commit of the same round.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from meerkat_model.cli.usage import OneLineParser, int_at_least, interruptible
from meerkat_runtime.session.inputs import prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.errors import DurableWriteFailed

TEXT = "x" * 200
ROW = b"r" * 900


@contextlib.contextmanager
def busy_cpus(on: bool) -> Iterator[None]:
    """One lowest-priority busy loop per CPU while the block runs."""
    procs: list[subprocess.Popen[bytes]] = []
    if on:
        code = "import os\nos.nice(19)\nwhile True:\n    pass\n"
        procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(os.cpu_count() or 1)]
    try:
        yield
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
            proc.wait()


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def raw_commit(folder: Path, n: int) -> list[float]:
    conn = sqlite3.connect(folder / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, payload BLOB)")
    times = []
    for i in range(n):
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (?, ?)", (f"in-{i:08d}", ROW))
        conn.execute("COMMIT")
        times.append(time.perf_counter() - start)
    conn.close()
    return times


def persist_queue_put(folder: Path, n: int) -> list[float] | None:
    try:
        import persistqueue  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    queue = persistqueue.SQLiteQueue(str(folder / "pq"), auto_commit=True, multithreading=True)
    item = {"text": TEXT}
    times = []
    for _ in range(n):
        start = time.perf_counter()
        queue.put(item)
        times.append(time.perf_counter() - start)
    return times


def _machine(folder: Path, name: str, *, offload: bool, group_commit: bool) -> MeerkatMachine:
    store = SqliteRuntimeStore(folder / f"{name}.db", group_commit=group_commit)
    return MeerkatMachine.persistent(store, offload_store_calls=offload, close_store=True)


async def sessions_accepting(
    folder: Path, name: str, sessions: int, per_session: int, *, offload: bool = True, group_commit: bool = True
) -> tuple[float, list[float], int]:
    """Accepts/s, every accept's latency and the number of accepts that failed (SQLite's lock
    not obtained within the busy timeout) with ``sessions`` sessions accepting at once."""
    machine = _machine(folder, name, offload=offload, group_commit=group_commit)
    ids = [f"s{i}" for i in range(sessions)]
    for sid in ids:
        await machine.register_session(sid)
    latencies: list[float] = []
    failed = 0

    async def one(sid: str) -> None:
        nonlocal failed
        for _ in range(per_session):
            item = prompt(TEXT)
            start = time.perf_counter()
            try:
                await machine.accept_input(sid, item)
            except DurableWriteFailed:
                failed += 1
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(one(sid) for sid in ids))
    elapsed = time.perf_counter() - start
    await machine.close()
    return sessions * per_session / elapsed, latencies, failed


async def commits_per_completion(folder: Path, name: str, sessions: int, per_session: int) -> float:
    """Store commits per input accepted and run to completion (registration not counted)."""
    store = SqliteRuntimeStore(folder / f"{name}.db")
    machine = MeerkatMachine.persistent(store, ownership=None)
    ids = [f"s{i}" for i in range(sessions)]
    for sid in ids:
        await machine.register_session_with_executor(sid, ScriptedExecutor())
    before = store.commit_count

    async def one(sid: str) -> None:
        for _ in range(per_session):
            await machine.accept_input(sid, prompt(TEXT))
            await machine.settle(sid)

    await asyncio.gather(*(one(sid) for sid in ids))
    commits = store.commit_count - before
    await machine.close()
    store.close()
    return commits / (sessions * per_session)


Row = tuple[str, float, float, float, int]
"""name, p50 µs, p99 µs, throughput /s (accepts that succeeded), failed accepts."""


def one_round(folder: Path, inputs: int, per_session: int) -> tuple[float, dict[str, Row], dict[str, float]]:
    raw = statistics.median(raw_commit(folder, inputs)) * 1e6
    rows: dict[str, Row] = {}

    def add(name: str, times: list[float], rate: float | None = None, failed: int = 0) -> None:
        ok = (len(times) - failed) / len(times)
        throughput = (rate or len(times) / sum(times)) * ok
        rows[name] = (name, _p(times, 0.5) * 1e6, _p(times, 0.99) * 1e6, throughput, failed)

    pq = persist_queue_put(folder, inputs)
    if pq is not None:
        add("persist-queue put", pq)
    for offload in (False, True):
        for group in (True, False):
            mode = "offloaded" if offload else "inline"
            label = f"accept, 1 session, {mode}, group commit {'on' if group else 'off'}"
            rate, times, failed = asyncio.run(
                sessions_accepting(folder, f"one-{offload}-{group}", 1, inputs, offload=offload, group_commit=group)
            )
            add(label, times, rate, failed)
    for sessions in (8, 64):
        for group in (True, False):
            label = f"accept, {sessions} sessions, group commit {'on' if group else 'off'}"
            rate, times, failed = asyncio.run(
                sessions_accepting(folder, f"many-{sessions}-{group}", sessions, per_session, group_commit=group)
            )
            add(label, times, rate, failed)
    commits = {
        "1 session": asyncio.run(commits_per_completion(folder, "done-1", 1, per_session * 2)),
        "8 sessions at once": asyncio.run(commits_per_completion(folder, "done-8", 8, per_session)),
    }
    return raw, rows, commits


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(
        prog="bench_durable_accept.py",
        epilog="exit status: 0 done; 2 usage error; 130 interrupted (Ctrl-C)",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--inputs", type=int_at_least(10), default=400, help="accepts per 1-session row (400)")
    parser.add_argument("--per-session", type=int_at_least(2), default=25, help="accepts per session, 8/64 (25)")
    parser.add_argument("--rounds", type=int_at_least(1), default=3, help="interleaved rounds (3)")
    parser.add_argument("--no-busy", action="store_true", help="no low-priority busy loops during the run")
    parser.add_argument("--dir", default=None, help="folder for the files (default: a temporary one)")
    args = parser.parse_args(argv)
    raws: list[float] = []
    rounds: list[dict[str, Row]] = []
    commits: list[dict[str, float]] = []
    with busy_cpus(not args.no_busy), tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-accept-") as root:
        for n in range(args.rounds):
            folder = Path(root) / f"round-{n}"
            folder.mkdir()
            raw, rows, done = one_round(folder, args.inputs, args.per_session)
            raws.append(raw)
            rounds.append(rows)
            commits.append(done)
    med: Callable[[list[float]], float] = statistics.median
    raw = med(raws)
    busy = "off" if args.no_busy else f"on ({os.cpu_count()} loops at nice 19)"
    print(f"SQLite WAL synchronous FULL; busy loops {busy}; medians of {args.rounds} rounds")
    print(f"raw commit p50: {raw:.1f} us")
    print(f"{'operation':<52} {'p50 us':>9} {'p50/raw':>8} {'p99 us':>9} {'p99/p50':>8} {'per s':>8} {'failed':>7}")
    names = list(rounds[0])
    summary: dict[str, tuple[float, float, float]] = {}
    for name in names:
        p50 = med([r[name][1] for r in rounds])
        p99 = med([r[name][2] for r in rounds])
        rate = med([r[name][3] for r in rounds])
        failed = sum(r[name][4] for r in rounds)
        summary[name] = (p50, p99, rate)
        print(f"{name:<52} {p50:>9.1f} {p50 / raw:>8.2f} {p99:>9.1f} {p99 / p50:>8.2f} {rate:>8.0f} {failed:>7}")
    print("throughput ratios (accepts/s of N sessions / accepts/s of 1 session, offloaded, same group commit):")
    for group in ("on", "off"):
        one = summary[f"accept, 1 session, offloaded, group commit {group}"][2]
        for sessions, target in ((8, 4), (64, 10)):
            rate = summary[f"accept, {sessions} sessions, group commit {group}"][2]
            print(f"  group commit {group:<3} {sessions:>2} sessions: {rate / one:5.2f}x (target >= {target}x)")
    for what in commits[0]:
        value = med([c[what] for c in commits])
        print(f"store commits per input accepted and run to completion, {what}: {value:.2f} (target <= 2)")


if __name__ == "__main__":
    raise SystemExit(interruptible(main, "bench_durable_accept.py"))
