"""Where the time of one durable accept goes: a cProfile of accepts on a SQLite store, and a
perf_counter breakdown of the accept path against a raw commit measured in the same run.

Usage::

    .venv/bin/python scripts/profile_accept.py [--inputs N] [--mode inline|offload|both]
        [--synchronous FULL|NORMAL] [--top N] [--dir DIR] [--sessions N,N,...]

One session (ownership off, no executor: every accepted input stays queued), 200-byte
prompts, a fresh SQLite file per mode. ``inline`` runs store calls on the event loop
(``offload_store_calls=False``), ``offload`` is the default. The breakdown times, per accept,
the whole ``accept_input`` call, and separately on the same kind of file one raw
``persist_input_state`` of a 900-byte row (the floor) and the Python steps of the path
(``check_input``, ``SessionCore.accept``, row encoding with its read-back check).

``--sessions 1,8,64`` instead splits the CPU time of accepts made by that many sessions at once
(``--inputs`` in all, ownership on, store calls offloaded, group commit on: the defaults) by
thread — the event loop's, the store's writer, any other — into user and system time per
accept, with the writer's batch sizes: where the CPU of an accept goes under concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import resource
import sqlite3
import statistics
import tempfile
import threading
import time
from pathlib import Path

from meerkat_runtime.session.inputs import prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.persistence import encode_new_row
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.ids import canonical_runtime_id

TEXT = "x" * 200


async def _accepts(path: Path, inputs: int, *, offload: bool, synchronous: str, profile: bool) -> list[float]:
    store = SqliteRuntimeStore(str(path), synchronous=synchronous)  # type: ignore[arg-type]
    machine = MeerkatMachine.persistent(store, offload_store_calls=offload, ownership=None)
    await machine.register_session("prof")
    items = [prompt(TEXT) for _ in range(inputs)]
    times: list[float] = []
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    for item in items:
        start = time.perf_counter()
        await machine.accept_input("prof", item)
        times.append(time.perf_counter() - start)
    if profiler is not None:
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(_TOP)
        print(out.getvalue())
        # A measure of the Python work that does not depend on how busy the machine is.
        calls = stats.total_calls  # type: ignore[attr-defined]
        print(f"Python function calls per accept: {calls / inputs:.0f}\n")
    await machine.close()
    store.close()
    return times


def _raw(path: Path, inputs: int, synchronous: str) -> list[float]:
    store = SqliteRuntimeStore(str(path), synchronous=synchronous)  # type: ignore[arg-type]
    rt = canonical_runtime_id("raw")
    payload = b"r" * 900
    times = []
    for i in range(inputs):
        start = time.perf_counter()
        store.persist_input_state(rt, InputRow(f"in-{i:08d}", payload))
        times.append(time.perf_counter() - start)
    store.close()
    return times


def _raw_sqlite(path: Path, inputs: int, synchronous: str) -> list[float]:
    """A bare ``INSERT`` + ``COMMIT`` of a 900-byte row (WAL, the same synchronous level)."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, payload BLOB)")
    payload = b"r" * 900
    times = []
    for i in range(inputs):
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (?, ?)", (f"in-{i:08d}", payload))
        conn.execute("COMMIT")
        times.append(time.perf_counter() - start)
    conn.close()
    return times


def _python_steps(inputs: int) -> dict[str, float]:
    """Median µs of the Python steps of an accept, on an ephemeral core (no I/O)."""
    from meerkat_runtime.session.input_fields import InputLimits, check_input

    machine = MeerkatMachine.ephemeral()
    asyncio.run(machine.register_session("steps"))
    session = machine._get("steps")
    limits = InputLimits(machine.max_input_bytes)
    steps: dict[str, list[float]] = {"check_input": [], "core.accept (plan)": [], "encode + read-back check": []}
    for _ in range(inputs):
        item = prompt(TEXT)
        t0 = time.perf_counter()
        check_input(item, limits)
        t1 = time.perf_counter()
        plan = session.core.accept(item, time.time())
        t2 = time.perf_counter()
        for record in plan.records.values():  # type: ignore[union-attr]
            encode_new_row(record)
        t3 = time.perf_counter()
        steps["check_input"].append(t1 - t0)
        steps["core.accept (plan)"].append(t2 - t1)
        steps["encode + read-back check"].append(t3 - t2)
    return {name: statistics.median(values) * 1e6 for name, values in steps.items()}


def _write_statements(path: Path, inputs: int, synchronous: str) -> list[float]:
    """The SQL statements of one ``persist_input_state`` with a fence, bare ``sqlite3`` on a
    store's file: ``BEGIN IMMEDIATE``, the row insert that checks the lease row in the same
    statement, the mark's compare-and-set ``UPDATE``, ``COMMIT`` (no Python around them)."""
    SqliteRuntimeStore(str(path), synchronous=synchronous).close()  # type: ignore[arg-type]
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    payload, checksum = b"r" * 770, "c" * 32
    conn.execute("INSERT INTO runtime_high_water VALUES ('rt', 0, 0, 0, 0, 0, 0, 0, 0, ?)", (checksum,))
    conn.execute("INSERT INTO runtime_leases VALUES ('rt', 'me', 1, 1e12, ?)", (checksum,))
    times = []
    for i in range(inputs):
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO runtime_input_states (runtime_id, input_id, payload, checksum) SELECT ?, ?, ?, ? "
            "WHERE EXISTS (SELECT 1 FROM runtime_leases WHERE runtime_id = ? AND owner = ? AND token = ? "
            "AND expires_at = ? AND checksum = ?) ON CONFLICT (runtime_id, input_id) DO NOTHING",
            ("rt", f"in-{i:08d}", payload, checksum, "rt", "me", 1, 1e12, checksum),
        )
        conn.execute(
            "UPDATE runtime_high_water SET writes = ?, inputs = ?, receipts = 0, session_snapshots = 0, "
            "lifecycles = 0, ops_snapshots = 0, ops_records = 0, quarantined = 0, checksum = ? "
            "WHERE runtime_id = ? AND writes = ? AND inputs = ? AND receipts = 0 AND session_snapshots = 0 "
            "AND lifecycles = 0 AND ops_snapshots = 0 AND ops_records = 0 AND quarantined = 0 AND checksum = ?",
            (i + 1, i + 1, checksum, "rt", i, i, checksum),
        )
        conn.execute("COMMIT")
        times.append(time.perf_counter() - start)
    conn.close()
    return times


async def _hops(inputs: int) -> list[float]:
    """One ``asyncio.to_thread`` round trip of a call that does nothing (a thread hop there and
    back)."""
    times = []
    for _ in range(inputs):
        start = time.perf_counter()
        await asyncio.to_thread(lambda: None)
        times.append(time.perf_counter() - start)
    return times


class _NoWrite(SqliteRuntimeStore):
    """A store whose input writes do nothing: an accept without its write."""

    def persist_input_state(self, runtime_id: str, row: InputRow, *, fence: object = None) -> None:
        return None


async def _accepts_without_write(path: Path, inputs: int) -> list[float]:
    store = _NoWrite(str(path))
    machine = MeerkatMachine.persistent(store, ownership=None, close_store=True)
    await machine.register_session("prof")
    times = []
    for _ in range(inputs):
        item = prompt(TEXT)
        start = time.perf_counter()
        await machine.accept_input("prof", item)
        times.append(time.perf_counter() - start)
    await machine.close()
    return times


_TOP = 25


def _thread_cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime, usage.ru_stime


def _writer_cpu() -> float:
    """CPU seconds of the store's writer thread so far (0 before it started)."""
    for thread in threading.enumerate():
        if thread.name.startswith("meerkat-sqlite-writer") and thread.ident is not None:
            return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    return 0.0


async def _concurrent(path: Path, sessions: int, inputs: int, synchronous: str) -> None:
    """Accepts of ``sessions`` sessions at once, their CPU split by thread (module docstring)."""
    store = SqliteRuntimeStore(str(path), synchronous=synchronous)  # type: ignore[arg-type]
    machine = MeerkatMachine.persistent(store, close_store=True)
    ids = [f"s{i}" for i in range(sessions)]
    for sid in ids:
        await machine.register_session(sid)
    await asyncio.gather(*(machine.accept_input(sid, prompt(TEXT)) for sid in ids))  # steady state
    per_session = max(1, inputs // sessions)
    items = {sid: [prompt(TEXT) for _ in range(per_session)] for sid in ids}

    async def one(sid: str) -> None:
        for item in items[sid]:
            await machine.accept_input(sid, item)

    sizes_before = store.group_commit_batch_sizes()
    loop_start, writer_start, process_start = _thread_cpu(), _writer_cpu(), time.process_time()
    wall = time.perf_counter()
    await asyncio.gather(*(one(sid) for sid in ids))
    wall = time.perf_counter() - wall
    loop_end, writer_end, process_end = _thread_cpu(), _writer_cpu(), time.process_time()
    sizes = store.group_commit_batch_sizes()
    await machine.close()
    n = per_session * sessions
    loop_user, loop_sys = loop_end[0] - loop_start[0], loop_end[1] - loop_start[1]
    writer = writer_end - writer_start
    total = process_end - process_start
    other = max(0.0, total - loop_user - loop_sys - writer)
    batches = sum(sizes.values()) - sum(sizes_before.values())
    writes = sum(k * v for k, v in sizes.items()) - sum(k * v for k, v in sizes_before.items())

    def us(value: float) -> str:
        return f"{value / n * 1e6:6.1f}"

    print(
        f"{sessions:>3} sessions: {n / wall:7.0f} accepts/s; CPU us per accept: process {us(total)} = event loop"
        f" {us(loop_user)} user + {us(loop_sys)} system, store's writer {us(writer)}, other threads {us(other)};"
        f" {writes / max(batches, 1):.1f} writes per batch"
    )


def main() -> None:
    global _TOP
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--inputs", type=int, default=2000)
    parser.add_argument("--mode", choices=("inline", "offload", "both"), default="both")
    parser.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="FULL")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--dir", default=None)
    parser.add_argument("--sessions", default=None, help="e.g. 1,8,64: CPU split by thread instead")
    args = parser.parse_args()
    _TOP = args.top
    if args.sessions is not None:
        counts = [int(part) for part in args.sessions.split(",")]
        print(f"== CPU per accept by thread, {args.inputs} accepts per row, synchronous {args.synchronous}")
        with tempfile.TemporaryDirectory(dir=args.dir, prefix="profile-accept-") as root:
            for count in counts:
                asyncio.run(_concurrent(Path(root) / f"c-{count}.db", count, args.inputs, args.synchronous))
        return
    modes = ("inline", "offload") if args.mode == "both" else (args.mode,)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="profile-accept-") as root:
        folder = Path(root)
        for mode in modes:
            print(f"== cProfile: {args.inputs} accepts, store calls {mode}, synchronous {args.synchronous}")
            asyncio.run(
                _accepts(
                    folder / f"p-{mode}.db",
                    args.inputs,
                    offload=mode == "offload",
                    synchronous=args.synchronous,
                    profile=True,
                )
            )
        print(f"== perf_counter breakdown (median µs per accept, synchronous {args.synchronous})")
        raw = statistics.median(_raw_sqlite(folder / "bare.db", args.inputs, args.synchronous)) * 1e6
        store_raw = statistics.median(_raw(folder / "raw.db", args.inputs, args.synchronous)) * 1e6
        print(f"{'raw commit (sqlite3 INSERT + COMMIT)':<44} {raw:>8.1f}")
        print(f"{'store persist_input_state (900-byte row)':<44} {store_raw:>8.1f}   ({store_raw / raw:.2f}x raw)")
        for mode in modes:
            times = asyncio.run(
                _accepts(
                    folder / f"t-{mode}.db",
                    args.inputs,
                    offload=mode == "offload",
                    synchronous=args.synchronous,
                    profile=False,
                )
            )
            p50 = statistics.median(times) * 1e6
            print(f"{'accept_input, store calls ' + mode:<44} {p50:>8.1f}   ({p50 / raw:.2f}x raw)")
        bare = statistics.median(_write_statements(folder / "statements.db", args.inputs, args.synchronous)) * 1e6
        print(f"{'  of which its SQL statements (bare sqlite3)':<44} {bare:>8.1f}")
        for name, value in _python_steps(args.inputs).items():
            print(f"{'  of which ' + name:<44} {value:>8.1f}")
        nowrite = statistics.median(asyncio.run(_accepts_without_write(folder / "nowrite.db", args.inputs))) * 1e6
        print(f"{'accept_input whose store write does nothing':<44} {nowrite:>8.1f}")
        hop = statistics.median(asyncio.run(_hops(args.inputs))) * 1e6
        print(f"{'a thread hop (asyncio.to_thread of a no-op)':<44} {hop:>8.1f}")


if __name__ == "__main__":
    main()
