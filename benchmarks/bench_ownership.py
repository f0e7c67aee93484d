"""What ownership costs and how fast a session moves to another worker.

Usage::

    .venv/bin/python benchmarks/bench_ownership.py [--inputs N] [--rounds R] [--idle] [--takeovers T]

1. Accept throughput and p50 latency with ownership on (a lease claimed at registration, the
   fence checked inside every write's transaction) and off, on SQLite with ``synchronous=FULL``,
   next to a raw single-row ``INSERT ... COMMIT`` measured in the same run, in interleaved rounds
   (fsync cost drifts on a shared disk; medians over the rounds are printed). On these VMs an
   fsync issued while the CPUs are idle waits for a timer tick (about 4 ms), so by default every
   CPU is kept awake by a lowest-priority busy loop during the measurements; ``--idle`` measures
   without it. The in-memory store shows the CPU cost of the fence alone.
2. Takeover after an owner dies: real worker processes (the takeover harness), the owner
   SIGKILLed after a random 0 to 2 lease lengths of work, the time until the waiting worker owns
   the session — against the lease length.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from meerkat_conformance.takeover.driver import run_takeovers
from meerkat_runtime.session.inputs import prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.store.sqlite import SqliteRuntimeStore

SPIN = "import os\nos.nice(19)\nwhile True:\n    pass\n"


@contextlib.contextmanager
def cpus_awake(enabled: bool) -> Iterator[int]:
    """Run one lowest-priority busy loop per CPU while the block runs; yields how many."""
    count = (os.cpu_count() or 1) if enabled else 0
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(count)]
    try:
        time.sleep(0.2 if spinners else 0)
        yield len(spinners)
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


@dataclass(frozen=True)
class Sample:
    per_second: float
    p50_us: float


def _sample(latencies_ns: list[int], seconds: float) -> Sample:
    return Sample(len(latencies_ns) / seconds, statistics.median(latencies_ns) / 1000)


def raw_commit(path: Path, count: int) -> Sample:
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
        conn.execute("INSERT INTO t (k, v) VALUES (?, ?)", (f"k{i}-{start}", payload))
        conn.execute("COMMIT")
        latencies.append(time.perf_counter_ns() - t0)
    elapsed = time.perf_counter() - start
    conn.close()
    return _sample(latencies, elapsed)


async def _accepts(machine: MeerkatMachine, count: int) -> Sample:
    await machine.register_session("bench")
    items = [prompt(f"input {i}", idempotency_key=f"k{i}") for i in range(count)]
    latencies: list[int] = []
    start = time.perf_counter()
    for item in items:
        t0 = time.perf_counter_ns()
        await machine.accept_input("bench", item)
        latencies.append(time.perf_counter_ns() - t0)
    elapsed = time.perf_counter() - start
    await machine.close()
    return _sample(latencies, elapsed)


Make = Callable[[bool], MeerkatMachine]


def accepts(make: Make, owned: bool, count: int) -> Sample:
    return asyncio.run(_accepts(make(owned), count))


def ownership(owned: bool) -> OwnershipConfig | None:
    return OwnershipConfig() if owned else None


def bench_accepts(root: Path, count: int, memory_count: int, rounds: int) -> None:
    serial = iter(range(10_000))

    def sqlite(offload: bool) -> Make:
        def make(owned: bool) -> MeerkatMachine:
            store = SqliteRuntimeStore(root / f"m{next(serial)}.sqlite3")
            return MeerkatMachine.persistent(store, offload_store_calls=offload, ownership=ownership(owned))

        return make

    def memory(owned: bool) -> MeerkatMachine:
        return MeerkatMachine.persistent(InMemoryRuntimeStore(), offload_store_calls=False, ownership=ownership(owned))

    configs: list[tuple[str, Make, int]] = [
        ("sqlite FULL, inline", sqlite(False), count),
        ("sqlite FULL, thread", sqlite(True), count),
        ("in-memory store, inline", memory, memory_count),
    ]
    raw: list[Sample] = []
    samples: dict[tuple[str, bool], list[Sample]] = {}
    for _ in range(rounds):
        raw.append(raw_commit(root / f"raw{next(serial)}.sqlite3", count))
        for name, make, n in configs:
            for owned in (False, True):
                samples.setdefault((name, owned), []).append(accepts(make, owned, n))
    raw_p50 = statistics.median(s.p50_us for s in raw)
    raw_rate = statistics.median(s.per_second for s in raw)
    print(f"{'configuration':<28} {'ownership':>9} {'accepts/s':>10} {'p50 us':>8} {'p50/raw':>8} {'on/off p50':>10}")
    print(f"{'raw INSERT+COMMIT (FULL)':<28} {'-':>9} {raw_rate:>10,.0f} {raw_p50:>8.1f} {1.0:>8.2f} {'-':>10}")
    for name, _, _ in configs:
        off_p50 = statistics.median(s.p50_us for s in samples[(name, False)])
        for owned in (False, True):
            got = samples[(name, owned)]
            rate = statistics.median(s.per_second for s in got)
            p50 = statistics.median(s.p50_us for s in got)
            vs_raw = f"{p50 / raw_p50:8.2f}" if name.startswith("sqlite") else f"{'-':>8}"
            vs_off = f"{p50 / off_p50:10.2f}" if owned else f"{'-':>10}"
            print(f"{name:<28} {'on' if owned else 'off':>9} {rate:>10,.0f} {p50:>8.1f} {vs_raw} {vs_off}")


def bench_takeover(root: Path, takeovers: int, leases: list[float]) -> None:
    header = f"{'lease ms':>8} {'renew ms':>8} {'takeovers':>9} {'p50 ms':>7} {'min ms':>7} {'max ms':>7}"
    print(f"\n{header} {'p50/lease':>9}")
    for n, lease in enumerate(leases):
        directory = root / f"takeover-{n}"
        directory.mkdir()
        report = run_takeovers(
            directory,
            takeovers=takeovers,
            seed=n,
            lease_s=lease,
            renew_every_s=lease / 3,
            max_kill_delay_s=2 * lease,  # the owner lives through several renewals before the kill
        )
        if not report.ok:
            raise SystemExit(f"takeover run failed: {report.violations}")
        t = sorted(report.takeover_s)
        p50 = statistics.median(t)
        print(
            f"{lease * 1000:>8.0f} {lease / 3 * 1000:>8.0f} {len(t):>9} {p50 * 1000:>7.0f} {t[0] * 1000:>7.0f} "
            f"{t[-1] * 1000:>7.0f} {p50 / lease:>9.2f}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--inputs", type=int, default=500, help="accepts per SQLite measurement")
    parser.add_argument("--memory-inputs", type=int, default=10_000, help="accepts per in-memory measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians are printed)")
    parser.add_argument("--idle", action="store_true", help="do not keep the CPUs busy during the measurements")
    parser.add_argument("--takeovers", type=int, default=8, help="owner kills per lease length")
    parser.add_argument("--leases", default="0.25,0.5,1.0", help="lease lengths (s) for the takeover figures")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp, cpus_awake(not args.idle) as spinners:
        state = f"kept busy by {spinners} lowest-priority busy loops" if spinners else "left idle (--idle)"
        print(f"CPUs {state}; {os.cpu_count()} CPUs; SQLite {sqlite3.sqlite_version}\n")
        bench_accepts(Path(tmp), args.inputs, args.memory_inputs, args.rounds)
        bench_takeover(Path(tmp), args.takeovers, [float(x) for x in args.leases.split(",")])


if __name__ == "__main__":
    main()
