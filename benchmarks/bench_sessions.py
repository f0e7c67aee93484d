"""Accept throughput and latency of the session runtime, next to the raw cost of one fsync'd
SQLite commit measured in the same run, and the throughput of runs through the run loop
(stage, executor, boundary commit) once the inputs are queued.

Usage::

    .venv/bin/python benchmarks/bench_sessions.py [--inputs N] [--sqlite-inputs N] [--dir PATH]

Prints one line per configuration: accepted inputs/s, p50 and p99 accept latency, and for the
SQLite configurations the ratio of the p50 accept latency to the p50 raw commit (the mean of
the raw commit measured before and after the runtime configurations, since fsync cost drifts
on a shared disk). The "runs" lines count runs/s (one input per run, a ``ScriptedExecutor``
that succeeds at once) and the latency from attaching the loop to each input's completion
is not meaningful there, so only the rate is printed.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from meerkat_model.cli.usage import OneLineParser, interruptible
from meerkat_runtime.session.inputs import prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.store.sqlite import SqliteRuntimeStore


@dataclass(frozen=True)
class Figures:
    name: str
    count: int
    seconds: float
    p50_us: float
    p99_us: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds else float("inf")


def _figures(name: str, latencies_ns: list[int], seconds: float) -> Figures:
    ordered = sorted(latencies_ns)
    p50 = statistics.median(ordered) / 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000
    return Figures(name, len(ordered), seconds, p50, p99)


async def _accepts(machine: MeerkatMachine, count: int) -> tuple[list[int], float]:
    await machine.register_session("bench")
    items = [prompt(f"input {i}", idempotency_key=f"k{i}") for i in range(count)]
    latencies: list[int] = []
    start = time.perf_counter()
    for item in items:
        t0 = time.perf_counter_ns()
        outcome = await machine.accept_input("bench", item)
        latencies.append(time.perf_counter_ns() - t0)
        if not outcome.is_accepted:
            raise RuntimeError(f"input was not accepted: {outcome}")
    elapsed = time.perf_counter() - start
    await machine.close()
    return latencies, elapsed


def bench_machine(name: str, make: Callable[[], MeerkatMachine], count: int) -> Figures:
    latencies, elapsed = asyncio.run(_accepts(make(), count))
    return _figures(name, latencies, elapsed)


async def _concurrent_accepts(machine: MeerkatMachine, sessions: int, count: int) -> tuple[list[int], float]:
    names = [f"bench-{i}" for i in range(sessions)]
    for name in names:
        await machine.register_session(name)
    latencies: list[int] = []

    async def feed(name: str) -> None:
        for i in range(count // sessions):
            t0 = time.perf_counter_ns()
            await machine.accept_input(name, prompt(f"input {i}"))
            latencies.append(time.perf_counter_ns() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(feed(n) for n in names))
    elapsed = time.perf_counter() - start
    await machine.close()
    return latencies, elapsed


def bench_concurrent(name: str, make: Callable[[], MeerkatMachine], sessions: int, count: int) -> Figures:
    latencies, elapsed = asyncio.run(_concurrent_accepts(make(), sessions, count))
    return _figures(name, latencies, elapsed)


async def _runs(machine: MeerkatMachine, count: int) -> float:
    """Queue ``count`` inputs, then attach a loop and time until every one is consumed."""
    await machine.register_session("bench")
    handles = []
    for i in range(count):
        _, handle = await machine.accept_input_with_completion("bench", prompt(f"input {i}"))
        assert handle is not None
        handles.append(handle)
    start = time.perf_counter()
    await machine.register_session_with_executor("bench", ScriptedExecutor())
    for handle in handles:
        await handle.wait()
    elapsed = time.perf_counter() - start
    await machine.close()
    return elapsed


def bench_runs(name: str, make: Callable[[], MeerkatMachine], count: int) -> Figures:
    elapsed = asyncio.run(_runs(make(), count))
    return Figures(name, count, elapsed, float("nan"), float("nan"))


def bench_raw_commit(path: Path, count: int) -> Figures:
    """One single-row INSERT per transaction on a WAL, synchronous=FULL database."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v BLOB)")
    payload = os.urandom(600)
    latencies: list[int] = []
    start = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter_ns()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (k, v) VALUES (?, ?)", (f"k{i}", payload))
        conn.execute("COMMIT")
        latencies.append(time.perf_counter_ns() - t0)
    elapsed = time.perf_counter() - start
    conn.close()
    return _figures("raw sqlite commit (WAL, FULL)", latencies, elapsed)


def _rest(fig: Figures) -> tuple[int, float, float, float]:
    return fig.count, fig.seconds, fig.p50_us, fig.p99_us


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(
        prog="bench_sessions.py",
        epilog="exit status: 0 done; 2 usage error; 130 interrupted (Ctrl-C)",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--inputs", type=int, default=20_000, help="inputs per in-memory configuration")
    parser.add_argument("--sqlite-inputs", type=int, default=2_000, help="inputs per SQLite configuration")
    parser.add_argument("--dir", type=Path, default=None, help="directory for the SQLite files (default: a temp dir)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        raw_before = bench_raw_commit(root / "raw-before.sqlite", args.sqlite_inputs)

        def sqlite_machine(tag: str, offload: bool) -> MeerkatMachine:
            return MeerkatMachine.persistent(SqliteRuntimeStore(root / f"{tag}.sqlite"), offload_store_calls=offload)

        results = [
            bench_machine("ephemeral", MeerkatMachine.ephemeral, args.inputs),
            bench_machine(
                "in-memory store, inline",
                lambda: MeerkatMachine.persistent(InMemoryRuntimeStore(), offload_store_calls=False),
                args.inputs,
            ),
            bench_machine("sqlite FULL, 1 session, inline", lambda: sqlite_machine("a", False), args.sqlite_inputs),
            bench_machine("sqlite FULL, 1 session, thread", lambda: sqlite_machine("b", True), args.sqlite_inputs),
            bench_concurrent(
                "sqlite FULL, 8 sessions, inline", lambda: sqlite_machine("c", False), 8, args.sqlite_inputs
            ),
            bench_concurrent(
                "sqlite FULL, 8 sessions, thread", lambda: sqlite_machine("d", True), 8, args.sqlite_inputs
            ),
            bench_runs("runs, ephemeral", MeerkatMachine.ephemeral, args.inputs),
            bench_runs(
                "runs, in-memory store, inline",
                lambda: MeerkatMachine.persistent(InMemoryRuntimeStore(), offload_store_calls=False),
                args.inputs,
            ),
            bench_runs("runs, sqlite FULL, inline", lambda: sqlite_machine("e", False), args.sqlite_inputs),
        ]
        raw_after = bench_raw_commit(root / "raw-after.sqlite", args.sqlite_inputs)
    raw_before = Figures("raw sqlite commit (WAL, FULL), before", *_rest(raw_before))
    raw_after = Figures("raw sqlite commit (WAL, FULL), after", *_rest(raw_after))
    results += [raw_before, raw_after]
    raw_p50 = (raw_before.p50_us + raw_after.p50_us) / 2
    print(f"{'configuration':<40} {'inputs':>7} {'inputs/s':>11} {'p50 us':>9} {'p99 us':>9} {'p50/raw':>8}")
    for fig in results:
        ratio = fig.p50_us / raw_p50 if "sqlite" in fig.name and fig.p50_us == fig.p50_us else float("nan")
        ratio_text = f"{ratio:8.2f}" if ratio == ratio else f"{'-':>8}"
        p50 = f"{fig.p50_us:>9.1f}" if fig.p50_us == fig.p50_us else f"{'-':>9}"
        p99 = f"{fig.p99_us:>9.1f}" if fig.p99_us == fig.p99_us else f"{'-':>9}"
        print(f"{fig.name:<40} {fig.count:>7} {fig.per_second:>11,.0f} {p50} {p99} {ratio_text}")


if __name__ == "__main__":
    raise SystemExit(interruptible(main, "bench_sessions.py"))
