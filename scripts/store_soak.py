"""Crash-durability soak: SIGKILL SQLite writer processes many times and verify every
acknowledged commit survives and no commit is visible in part.

    python scripts/store_soak.py --kills 1000 [--synchronous FULL|NORMAL] [--launch fork|exec]
                                 [--seed N] [--rotate 200] [--dir PATH]

The file is replaced by a fresh one every ``--rotate`` kills so verification stays cheap.
Exit status 0 when every cycle verified, 1 on the first durability violation.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from meerkat_conformance.stores.crash import CrashStats, DurabilityViolation, run_crash_cycles


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=1000)
    parser.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="FULL")
    parser.add_argument("--launch", choices=("fork", "exec"), default="fork")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--rotate", type=int, default=200, help="kills per database file")
    parser.add_argument("--max-acks", type=int, default=6, help="most acknowledged commits before a kill")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args(argv)

    print(f"soak: {args.kills} kills, synchronous={args.synchronous}, launch={args.launch}, seed={args.seed}")
    totals = CrashStats()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="store-soak-", dir=args.dir) as tmp:
        done, part = 0, 0
        while done < args.kills:
            batch = min(args.rotate, args.kills - done)
            path = Path(tmp) / f"soak-{part}.sqlite3"
            try:
                stats = run_crash_cycles(
                    path,
                    kills=batch,
                    seed=args.seed + part,
                    synchronous=args.synchronous,
                    launch=args.launch,
                    max_acks_before_kill=args.max_acks,
                    full_check_every=50,
                )
            except DurabilityViolation as exc:
                print(f"DURABILITY VIOLATION after {done} verified kills (file part {part}): {exc}")
                return 1
            done += stats.kills
            part += 1
            totals.kills += stats.kills
            totals.acked += stats.acked
            totals.in_flight_durable += stats.in_flight_durable
            totals.verify_seconds += stats.verify_seconds
            totals.cycle_ms.extend(stats.cycle_ms)
            print(f"  {done:>6} kills verified, {totals.acked} acknowledged commits so far")
    seconds = time.perf_counter() - started
    ms = totals.cycle_ms
    print(
        f"OK: {totals.kills} kills, {totals.acked} acknowledged commits all present, "
        f"{totals.in_flight_durable} unacknowledged in-flight commits found complete, none partial\n"
        f"    {seconds:.1f} s total, cycle p50 {statistics.median(ms):.1f} ms, "
        f"p99 {sorted(ms)[int(0.99 * (len(ms) - 1))]:.1f} ms, verification {totals.verify_seconds:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
