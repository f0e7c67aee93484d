"""Benchmark of the runtime stores: commits/s and latency per operation kind, SQLite with
``synchronous=FULL`` vs ``NORMAL`` next to a raw fsync'd single-row SQLite commit measured in
the same run, thread scaling of the two connection modes, recovery (load) time for 1k,
10k and 100k stored inputs, the time to open the files a crash left with the write-ahead
log check and the page check on and off, and one ``compact_inputs`` of 100 finished rows (their
receipts released) beside 1k and 200k receipts of rows compacted earlier.

    python benchmarks/bench_stores.py [--quick] [--ops 300] [--recovery 1000,10000,100000]
        [--compaction 1000,200000]

Files go to a temporary directory on the same file system as ``--dir`` (default: the system
temporary directory). Figures are printed; nothing is asserted.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from meerkat_model.cli.usage import OneLineParser, interruptible
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.records import BoundaryKind, BoundaryReceipt, InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore

RT = "rt:session:bench"
ROW = os.urandom(512)
SNAPSHOT = os.urandom(4096)
OPS_SNAPSHOT = os.urandom(8192)
RECORD = os.urandom(256)


def _percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def _measure(n: int, op: Callable[[int], None]) -> tuple[float, float, float]:
    """Run ``op(i)`` n times; return (ops/s, p50 ms, p99 ms)."""
    latencies: list[float] = []
    start = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        op(i)
        latencies.append((time.perf_counter() - t) * 1000)
    elapsed = time.perf_counter() - start
    return n / elapsed, statistics.median(latencies), _percentile(latencies, 0.99)


def _fresh(data: bytes, i: int) -> bytes:
    """``data`` with ``i`` stamped in front, so no commit rewrites identical bytes."""
    stamp = i.to_bytes(8, "big")
    return stamp + data[len(stamp) :]


def _operations(store: RuntimeStore) -> dict[str, Callable[[int], None]]:
    """Every operation writes new bytes (a no-op rewrite would flatter the figures)."""
    return {
        "persist_input_state (1 row)": lambda i: store.persist_input_state(RT, InputRow(f"in-{i:08d}", _fresh(ROW, i))),
        "atomic_apply (snap+receipt+3 rows)": lambda i: store.atomic_apply(
            RT,
            session_snapshot=_fresh(SNAPSHOT, i),
            receipt=BoundaryReceipt("run", i, BoundaryKind.RUN_CHECKPOINT, (f"a-{i}",)),
            rows=[InputRow(f"a-{i}-{j}", _fresh(ROW, i)) for j in range(3)],
        ),
        "commit_machine_lifecycle (+10 rows)": lambda i: store.commit_machine_lifecycle(
            RT, _fresh(SNAPSHOT[:512], i), [InputRow(f"l-{j}", _fresh(ROW, i)) for j in range(10)]
        ),
        "append_ops_record": lambda i: store.append_ops_record(RT, _fresh(RECORD, i)),
        "persist_ops_lifecycle (8 KiB)": lambda i: store.persist_ops_lifecycle(RT, _fresh(OPS_SNAPSHOT, i)),
    }


def raw_commit(path: Path, n: int, synchronous: str) -> tuple[float, float, float]:
    """Plain sqlite3: WAL, one single-row INSERT per committed transaction."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v BLOB)")

    def op(i: int) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT OR REPLACE INTO t VALUES (?, ?)", (i, _fresh(ROW, i)))
        conn.execute("COMMIT")

    try:
        return _measure(n, op)
    finally:
        conn.close()


def bench_operations(directory: Path, n: int) -> None:
    print(f"\n== commits per operation kind ({n} each; p50/p99 latency in ms) ==")
    raw = {sync: raw_commit(directory / f"raw-{sync}.db", n, sync) for sync in ("FULL", "NORMAL")}
    print(f"{'operation':<38} {'store':<16} {'commits/s':>10} {'p50':>8} {'p99':>8} {'vs raw':>7}")
    for sync, (rate, p50, p99) in raw.items():
        print(f"{'raw sqlite3 1-row commit':<38} {'raw ' + sync:<16} {rate:>10.0f} {p50:>8.3f} {p99:>8.3f} {1.0:>7.2f}")
    configs: list[tuple[str, Callable[[], RuntimeStore], str]] = [
        ("sqlite FULL", lambda: SqliteRuntimeStore(directory / "full.db", synchronous="FULL"), "FULL"),
        ("sqlite NORMAL", lambda: SqliteRuntimeStore(directory / "normal.db", synchronous="NORMAL"), "NORMAL"),
        ("memory", InMemoryRuntimeStore, "FULL"),
    ]
    for label, make, sync in configs:
        store = make()
        try:
            for name, op in _operations(store).items():
                rate, p50, p99 = _measure(n, op)
                ratio = raw[sync][0] / rate if label != "memory" else float("nan")
                print(f"{name:<38} {label:<16} {rate:>10.0f} {p50:>8.3f} {p99:>8.3f} {ratio:>7.2f}")
        finally:
            store.close()
    print("('vs raw' = raw commits/s of the same synchronous level / this row's commits/s)")


def _threaded(threads: int, n: int, work: Callable[[int, int], object]) -> float:
    """Run ``work(thread, i)`` for i < n on each of ``threads`` threads; return calls/s."""

    def loop(t: int) -> None:
        for i in range(n):
            work(t, i)

    workers = [threading.Thread(target=loop, args=(t,)) for t in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return threads * n / (time.perf_counter() - start)


def bench_threads(directory: Path, n: int) -> None:
    print(f"\n== thread scaling ({n} ops per thread; writes = persist_input_state, reads = load_boundary_receipt) ==")
    print(f"{'mode':<12} {'threads':>7} {'writes/s':>10} {'reads/s':>10} {'reads/s beside a writer':>22}")
    for mode in ("per_thread", "shared"):
        for threads in (1, 4):
            store = SqliteRuntimeStore(
                directory / f"threads-{mode}-{threads}.db",
                synchronous="FULL",
                connections="shared" if mode == "shared" else "per_thread",
            )
            for j in range(50):
                store.atomic_apply(
                    RT, session_snapshot=None, receipt=BoundaryReceipt("run", j, BoundaryKind.IMMEDIATE, ()), rows=[]
                )

            def write(t: int, i: int, store: SqliteRuntimeStore = store) -> None:
                store.persist_input_state(RT, InputRow(f"t{t}-{i}", _fresh(ROW, i)))

            def read(t: int, i: int, store: SqliteRuntimeStore = store) -> None:
                store.load_boundary_receipt(RT, "run", i % 50)

            writes = _threaded(threads, n, write)
            reads = _threaded(threads, n * 20, read)
            stop = threading.Event()

            def keep_writing(store: SqliteRuntimeStore = store, stop: threading.Event = stop) -> None:
                i = 0
                while not stop.is_set():
                    i += 1
                    store.persist_input_state(RT, InputRow(f"bg-{i}", _fresh(ROW, i)))

            background = threading.Thread(target=keep_writing)
            background.start()
            try:
                mixed = _threaded(threads, n * 5, read)
            finally:
                stop.set()
                background.join()
            store.close()
            print(f"{mode:<12} {threads:>7} {writes:>10.0f} {reads:>10.0f} {mixed:>22.0f}")


def bench_recovery(directory: Path, sizes: list[int]) -> None:
    print("\n== recovery: load time of stored inputs (SQLite file, fresh handle, 200-byte payloads) ==")
    print(f"{'inputs':>8} {'load_input_states ms':>22} {'us/row':>8} {'open store ms':>14}")
    payload = os.urandom(200)
    for size in sizes:
        path = directory / f"recovery-{size}.db"
        with SqliteRuntimeStore(path, synchronous="NORMAL") as store:
            for start in range(0, size, 5000):
                rows = [InputRow(f"in-{i:09d}", payload) for i in range(start, min(size, start + 5000))]
                store.commit_machine_lifecycle(RT, b"life", rows)
        t0 = time.perf_counter()
        store = SqliteRuntimeStore(path)
        t1 = time.perf_counter()
        rows_loaded = store.load_input_states(RT)
        t2 = time.perf_counter()
        store.close()
        assert len(rows_loaded) == size
        print(f"{size:>8} {(t2 - t1) * 1000:>22.1f} {(t2 - t1) * 1e6 / size:>8.2f} {(t1 - t0) * 1000:>14.1f}")


def bench_compaction(directory: Path, stored: list[int], rows: int = 100, rounds: int = 5) -> None:
    """``compact_inputs`` of ``rows`` finished rows, each the one contributor of its run's receipt,
    in a file that also holds ``stored`` receipts whose rows are gone (left by compactions of a
    release that kept them): the time of one compaction (its write transaction), median of
    ``rounds`` (a fresh set of rows each)."""
    print(f"\n== compaction: one compact_inputs of {rows} finished rows beside receipts of rows compacted earlier ==")
    print(f"{'receipts':>9} {'compaction ms':>14} {'min ms':>8} {'receipts deleted':>17}")
    for count in stored:
        path = directory / f"compaction-{count}.db"
        with SqliteRuntimeStore(path, synchronous="NORMAL") as store:
            for i in range(count):
                old = BoundaryReceipt(f"old-{i}", 0, BoundaryKind.RUN_CHECKPOINT, (f"gone-{i}",))
                store.atomic_apply(RT, session_snapshot=None, receipt=old, rows=[])
            samples: list[float] = []
            deleted = 0
            for r in range(rounds):
                ids = [f"in-{r}-{i}" for i in range(rows)]
                for n, input_id in enumerate(ids):
                    receipt = BoundaryReceipt(f"run-{r}-{n}", 0, BoundaryKind.RUN_CHECKPOINT, (input_id,))
                    row = InputRow(input_id, ROW, 1.0 + n)
                    store.atomic_apply(RT, session_snapshot=None, receipt=receipt, rows=[row])
                before = store.load_high_water(RT)
                t0 = time.perf_counter()
                store.compact_inputs(RT, ids)
                samples.append(time.perf_counter() - t0)
                after = store.load_high_water(RT)
                assert before is not None and after is not None
                deleted = before.receipts - after.receipts
        median, least = statistics.median(samples) * 1000, min(samples) * 1000
        print(f"{count:>9} {median:>14.2f} {least:>8.2f} {deleted:>17}")


def _crashed_file_set(directory: Path, commits: int) -> Path:
    """The files a crash leaves (database, ``-wal``, ``-shm``): copied while a store is open."""
    source = directory / "crash-source" / "c.db"
    store = SqliteRuntimeStore(source)
    try:
        for n in range(commits):
            store.persist_input_state(RT, InputRow(f"in-{n:05d}", b"p" * 200))
        target = directory / "crash"
        target.mkdir(exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            shutil.copyfile(f"{source}{suffix}", target / f"c.db{suffix}")
    finally:
        store.close()
    return target / "c.db"


def bench_open_after_crash(directory: Path, commits: list[int], repeats: int) -> None:
    print("\n== opening the files a crash left: the log check and the page check (p50 of the opens, ms) ==")
    header = ("commits", "log frames", "both on", "log check off", "page check off", "both off")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (8, 11, 8, 14, 15, 9), strict=True)))
    settings: list[dict[str, Any]] = [
        {},
        {"wal_check": False},
        {"integrity_check": "off"},
        {"wal_check": False, "integrity_check": "off"},
    ]
    for count in commits:
        crashed = _crashed_file_set(directory / f"open-{count}", count)
        frames = (crashed.with_name("c.db-wal").stat().st_size - 32) // (24 + 4096)
        row: list[float] = []
        for options in settings:
            samples: list[float] = []
            for n in range(repeats):
                copy = directory / f"open-{count}" / f"copy-{len(row)}-{n}"
                copy.mkdir()
                for suffix in ("", "-wal", "-shm"):
                    shutil.copyfile(f"{crashed}{suffix}", copy / f"c.db{suffix}")
                started = time.perf_counter()
                opened = SqliteRuntimeStore(copy / "c.db", **options)
                samples.append((time.perf_counter() - started) * 1000)
                opened.close()  # closing checkpoints the log: not part of the open
            row.append(statistics.median(samples))
        print(f"{count:>8} {frames:>11} {row[0]:>8.2f} {row[1]:>14.2f} {row[2]:>15.2f} {row[3]:>9.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(
        prog="bench_stores.py",
        epilog="exit status: 0 done; 2 usage error; 130 interrupted (Ctrl-C)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--ops", type=int, default=300, help="operations per measurement")
    parser.add_argument("--recovery", default="1000,10000,100000", help="stored-input counts to load")
    parser.add_argument(
        "--compaction", default="1000,200000", help="receipts of rows compacted earlier, beside a compaction"
    )
    parser.add_argument("--quick", action="store_true", help="few operations, small recovery sizes")
    parser.add_argument("--dir", type=Path, default=None, help="parent directory for the database files")
    args = parser.parse_args(argv)
    ops = 40 if args.quick else args.ops
    sizes = [1000, 10000] if args.quick else [int(s) for s in args.recovery.split(",")]
    receipts = [1000, 10000] if args.quick else [int(s) for s in args.compaction.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-stores-", dir=args.dir) as tmp:
        directory = Path(tmp)
        print(f"sqlite {sqlite3.sqlite_version}, files in {directory}")
        bench_operations(directory, ops)
        bench_threads(directory, max(10, ops // 2))
        bench_recovery(directory, sizes)
        bench_open_after_crash(directory, [10, 100] if args.quick else [10, 100, 300], 5 if args.quick else 15)
        bench_compaction(directory, receipts)
    return 0


if __name__ == "__main__":
    raise SystemExit(interruptible(main, "bench_stores.py"))
