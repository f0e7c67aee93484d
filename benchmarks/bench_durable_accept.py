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
  every session accepts one input before the clock starts (steady state: the store's writer
  thread and its connection are open);
* floor: a bare writer (``bare_group_commit.py``): the least a CPython process does to acknowledge
  a write only once SQLite committed it (encode a row, one writer thread, one ``executemany`` and
  ``COMMIT`` per batch, no checks), for 1, 8 and 64 sessions: its throughput ratios bound what
  batching alone can give on this machine;
* commits per input: inputs accepted and run to completion by a ``ScriptedExecutor`` (accept,
  run start, boundary), counted as the store's committed write transactions
  (``SqliteRuntimeStore.commit_count``; in WAL mode with FULL each commit is one fsync of the
  log, checkpoints aside), one session alone and 8 at once.

Figures are medians over ``--rounds`` interleaved rounds (each on fresh files). Ratios are to raw
commits measured in the same conditions: a one-session row times one raw commit (on a file of its
own) after each accept, every other row is compared with 200 raw commits measured right before
it; throughput ratios divide N sessions' accepts/s by one session's of the same round. Each row
also shows the CPU time of the process per accept (all threads), which bounds the throughput of
one process (printed as the ceiling of the throughput ratio), and the writer's batch sizes are
printed as a histogram (the share of writes committed in batches of each size range).
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
from dataclasses import dataclass, field
from pathlib import Path

from bare_group_commit import bare_accepting
from meerkat_model.cli.usage import OneLineParser, int_at_least, interruptible
from meerkat_runtime.session.inputs import prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.store.sqlite import MAX_GROUP_COMMIT_BATCH, SqliteRuntimeStore
from meerkat_runtime.vocab.errors import DurableWriteFailed

TEXT = "x" * 200
RAW_SAMPLE = 200
"""Raw commits measured right before each row (its ``p50/raw`` is to their median)."""
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


def _raw_connection(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, payload BLOB)")
    return conn


def _timed_raw_commit(conn: sqlite3.Connection, i: int) -> float:
    start = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO t VALUES (?, ?)", (f"in-{i:08d}", ROW))
    conn.execute("COMMIT")
    return time.perf_counter() - start


def raw_commit(folder: Path, n: int, name: str = "raw") -> list[float]:
    conn = _raw_connection(folder / f"{name}.db")
    times = [_timed_raw_commit(conn, i) for i in range(n)]
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


@dataclass
class Accepting:
    """One row's run: accepts/s, every accept's latency, the accepts that failed (SQLite's lock
    not obtained within the busy timeout), CPU seconds of the process (all threads) per accept,
    and how many batches of each size the store's writer committed."""

    rate: float
    latencies: list[float]
    failed: int
    cpu_per_accept: float
    batch_sizes: dict[int, int] = field(default_factory=dict)
    raws: list[float] = field(default_factory=list)
    """With one session: a raw commit timed after each accept (on a file of its own)."""


async def sessions_accepting(
    folder: Path, name: str, sessions: int, per_session: int, *, offload: bool = True, group_commit: bool = True
) -> Accepting:
    """``sessions`` sessions accepting at once, each awaiting its accept before the next."""
    store = SqliteRuntimeStore(folder / f"{name}.db", group_commit=group_commit)
    machine = MeerkatMachine.persistent(store, offload_store_calls=offload, close_store=True)
    ids = [f"s{i}" for i in range(sessions)]
    for sid in ids:
        await machine.register_session(sid)
    # Steady state: every session accepts once before the clock starts (the store's writer
    # thread and its connection are then open, as in a service that has been running).
    await asyncio.gather(*(machine.accept_input(sid, prompt(TEXT)) for sid in ids))
    latencies: list[float] = []
    failed = 0

    raws: list[float] = []
    raw_cpu = 0.0
    beside = _raw_connection(folder / f"{name}-raw.db") if sessions == 1 else None

    async def one(sid: str) -> None:
        nonlocal failed, raw_cpu
        for i in range(per_session):
            item = prompt(TEXT)
            start = time.perf_counter()
            try:
                await machine.accept_input(sid, item)
            except DurableWriteFailed:
                failed += 1
            latencies.append(time.perf_counter() - start)
            if beside is not None:  # one raw commit after each accept: the same conditions
                cpu = time.process_time()
                raws.append(_timed_raw_commit(beside, i))
                raw_cpu += time.process_time() - cpu

    before = store.group_commit_batch_sizes()
    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(sid) for sid in ids))
    elapsed, cpu = time.perf_counter() - start - sum(raws), time.process_time() - cpu - raw_cpu
    if beside is not None:
        beside.close()
    after = store.group_commit_batch_sizes()
    await machine.close()
    sizes = {size: count - before.get(size, 0) for size, count in after.items() if count > before.get(size, 0)}
    total = sessions * per_session
    return Accepting(total / elapsed, latencies, failed, cpu / total, sizes, raws)


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


def bare_label(sessions: int) -> str:
    return f"floor: bare writer, no checks, {sessions} session{'s' if sessions > 1 else ''}"


Row = tuple[str, float, float, float, int, float, float]
"""name, p50 µs, p99 µs, throughput /s (accepts that succeeded), failed accepts, CPU µs per accept,
and the p50 of the raw commits measured right before the row."""


def one_round(
    folder: Path, inputs: int, per_session: int
) -> tuple[float, dict[str, Row], dict[str, float], dict[str, dict[int, int]]]:
    raw = statistics.median(raw_commit(folder, inputs)) * 1e6
    rows: dict[str, Row] = {}
    adjacent = [raw]

    def raw_now() -> None:
        """A raw commit sample right before a row, for a ratio taken in the same conditions."""
        adjacent[0] = statistics.median(raw_commit(folder, RAW_SAMPLE, f"raw-{len(rows)}")) * 1e6

    batches: dict[str, dict[int, int]] = {}

    def add(name: str, times: list[float], rate: float | None = None, failed: int = 0, cpu: float = 0.0) -> None:
        ok = (len(times) - failed) / len(times)
        throughput = (rate or len(times) / sum(times)) * ok
        rows[name] = (name, _p(times, 0.5) * 1e6, _p(times, 0.99) * 1e6, throughput, failed, cpu * 1e6, adjacent[0])

    def measured(name: str, run: Accepting) -> None:
        if run.raws:
            adjacent[0] = statistics.median(run.raws) * 1e6
        add(name, run.latencies, run.rate, run.failed, run.cpu_per_accept)
        if run.batch_sizes:
            batches[name] = run.batch_sizes

    raw_now()
    pq = persist_queue_put(folder, inputs)
    if pq is not None:
        add("persist-queue put", pq)
    for offload in (False, True):
        for group in (True, False):
            mode = "offloaded" if offload else "inline"
            label = f"accept, 1 session, {mode}, group commit {'on' if group else 'off'}"
            measured(
                label,
                asyncio.run(
                    sessions_accepting(folder, f"one-{offload}-{group}", 1, inputs, offload=offload, group_commit=group)
                ),
            )
    for sessions in (8, 64):
        for group in (True, False):
            label = f"accept, {sessions} sessions, group commit {'on' if group else 'off'}"
            raw_now()
            measured(
                label,
                asyncio.run(
                    sessions_accepting(folder, f"many-{sessions}-{group}", sessions, per_session, group_commit=group)
                ),
            )
    for sessions in (1, 8, 64):
        raw_now()
        rate, times, cpu = asyncio.run(
            bare_accepting(folder / f"bare-{sessions}.db", sessions, inputs if sessions == 1 else per_session, TEXT)
        )
        measured(bare_label(sessions), Accepting(rate, times, 0, cpu))
    commits = {
        "1 session": asyncio.run(commits_per_completion(folder, "done-1", 1, per_session * 2)),
        "8 sessions at once": asyncio.run(commits_per_completion(folder, "done-8", 8, per_session)),
    }
    return raw, rows, commits, batches


_BUCKETS = ((1, 1), (2, 3), (4, 7), (8, 15), (16, 31), (32, 63), (64, 127), (128, MAX_GROUP_COMMIT_BATCH))


def print_batches(name: str, sizes: dict[int, int]) -> None:
    """The share of writes committed in batches of each size range, over all rounds."""
    writes = sum(size * count for size, count in sizes.items())
    batches = sum(sizes.values())
    if not writes:
        return
    parts = []
    for low, high in _BUCKETS:
        share = sum(size * count for size, count in sizes.items() if low <= size <= high) / writes
        if share:
            label = str(low) if low == high else f"{low}-{high}" if high < MAX_GROUP_COMMIT_BATCH else f"{low}+"
            parts.append(f"{label}: {share:.0%}")
    shares = ", ".join(parts)
    print(f"  {name}: {batches} batches, {writes / batches:.1f} writes per batch; writes in batches of {shares}")


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
    batches: dict[str, dict[int, int]] = {}
    with busy_cpus(not args.no_busy), tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-accept-") as root:
        for n in range(args.rounds):
            folder = Path(root) / f"round-{n}"
            folder.mkdir()
            raw, rows, done, sizes = one_round(folder, args.inputs, args.per_session)
            for name, counts in sizes.items():
                total = batches.setdefault(name, {})
                for size, count in counts.items():
                    total[size] = total.get(size, 0) + count
            raws.append(raw)
            rounds.append(rows)
            commits.append(done)
    med: Callable[[list[float]], float] = statistics.median
    raw = med(raws)
    busy = "off" if args.no_busy else f"on ({os.cpu_count()} loops at nice 19)"
    print(f"SQLite WAL synchronous FULL; busy loops {busy}; medians of {args.rounds} rounds")
    print(f"raw commit p50: {raw:.1f} us at the start of the rounds (median)")
    print("p50/raw: a row's p50 over the p50 of raw commits measured right before it, median over the rounds")
    print(
        f"{'operation':<52} {'p50 us':>9} {'p50/raw':>8} {'p99 us':>9} {'p99/p50':>8} {'per s':>8} {'failed':>7}"
        f" {'cpu us':>7} {'raw us':>7}"
    )
    names = list(rounds[0])
    summary: dict[str, tuple[float, float, float, float]] = {}
    for name in names:
        p50 = med([r[name][1] for r in rounds])
        p99 = med([r[name][2] for r in rounds])
        rate = med([r[name][3] for r in rounds])
        failed = sum(r[name][4] for r in rounds)
        cpu = med([r[name][5] for r in rounds])
        ratio = med([r[name][1] / r[name][6] for r in rounds])
        beside = med([r[name][6] for r in rounds])
        summary[name] = (p50, p99, rate, cpu)
        shown = f"{cpu:>7.0f}" if cpu else f"{'-':>7}"
        print(
            f"{name:<52} {p50:>9.1f} {ratio:>8.2f} {p99:>9.1f} {p99 / p50:>8.2f} {rate:>8.0f} {failed:>7} {shown}"
            f" {beside:>7.0f}"
        )
    print("(cpu us: CPU time of the whole process, all threads, per accept)")
    print("throughput ratios: accepts/s of N sessions / accepts/s of 1 session (offloaded, same group commit, same")
    print("round), median over the rounds; CPU ceiling: 1 / (cpu us per accept of N sessions) over 1 session's rate:")
    for group in ("on", "off"):
        one = f"accept, 1 session, offloaded, group commit {group}"
        for sessions, target in ((8, 4), (64, 10)):
            many = f"accept, {sessions} sessions, group commit {group}"
            ratio = med([r[many][3] / r[one][3] for r in rounds])
            ceiling = med([1e6 / r[many][5] / r[one][3] if r[many][5] else float("nan") for r in rounds])
            print(
                f"  group commit {group:<3} {sessions:>2} sessions: {ratio:5.2f}x (target >= {target}x); "
                f"CPU ceiling {ceiling:5.2f}x"
            )
    for sessions in (8, 64):
        ratio = med([r[bare_label(sessions)][3] / r[bare_label(1)][3] for r in rounds])
        print(f"  floor (bare writer, no checks) {sessions:>2} sessions: {ratio:5.2f}x")
    print("batches of the store's writer (group commit on; writes that committed alone on their caller's thread are")
    print("batches of 1), over all rounds:")
    for name in names:
        if name in batches and "group commit on" in name:
            print_batches(name, batches[name])
    for what in commits[0]:
        value = med([c[what] for c in commits])
        print(f"store commits per input accepted and run to completion, {what}: {value:.2f} (target <= 2)")


if __name__ == "__main__":
    raise SystemExit(interruptible(main, "bench_durable_accept.py"))
