"""Crash-durability soak: SIGKILL SQLite writer processes many times and verify every
acknowledged commit survives and no commit is visible in part.

    python scripts/store_soak.py --kills 1000 [--synchronous FULL|NORMAL] [--launch fork|exec]
                                 [--seed N] [--rotate 200] [--dir PATH]

The file is replaced by a fresh one every ``--rotate`` kills so verification stays cheap.
Exit status 0 when every cycle verified, 1 on the first durability violation, 2 on a usage
error, 130 when interrupted with Ctrl-C (the kills verified so far are summarised first).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from meerkat_conformance.stores.crash import CrashStats, DurabilityViolation, run_crash_cycles
from meerkat_model.cli.interrupts import latched_interrupts, raise_if_interrupted
from meerkat_model.cli.usage import EXIT_INTERRUPTED, OneLineParser, int_at_least


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="store_soak.py",
        description=__doc__.split("\n\n")[0],
        epilog="exit status: 0 every kill verified; 1 a durability violation; 2 usage error; 130 interrupted "
        "(Ctrl-C; the kills verified so far are summarised)",
    )
    parser.add_argument(
        "--kills", type=int_at_least(1), default=1000, help="writer processes to SIGKILL (default: 1000)"
    )
    parser.add_argument(
        "--synchronous", choices=("FULL", "NORMAL"), default="FULL", help="SQLite synchronous mode (default: FULL)"
    )
    parser.add_argument(
        "--launch", choices=("fork", "exec"), default="fork", help="how each writer starts (default: fork)"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: the current time, printed)")
    parser.add_argument("--rotate", type=int_at_least(1), default=200, help="kills per database file (default: 200)")
    parser.add_argument(
        "--max-acks", type=int_at_least(0), default=6, help="most acknowledged commits before a kill (default: 6)"
    )
    parser.add_argument(
        "--dir", type=Path, default=None, help="existing folder for the database files (default: system temp)"
    )
    return parser


def _summary(totals: CrashStats, seconds: float) -> str:
    ms = totals.cycle_ms
    line = (
        f"{totals.kills} kills, {totals.acked} acknowledged commits all present, "
        f"{totals.in_flight_durable} unacknowledged in-flight commits found complete, none partial"
    )
    if not ms:
        return line
    return (
        f"{line}\n    {seconds:.1f} s total, cycle p50 {statistics.median(ms):.1f} ms, "
        f"p99 {sorted(ms)[int(0.99 * (len(ms) - 1))]:.1f} ms, verification {totals.verify_seconds:.1f} s"
    )


def _add(totals: CrashStats, stats: CrashStats) -> None:
    totals.kills += stats.kills
    totals.acked += stats.acked
    totals.in_flight_durable += stats.in_flight_durable
    totals.verify_seconds += stats.verify_seconds
    totals.cycle_ms.extend(stats.cycle_ms)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.dir is not None and not args.dir.is_dir():
        parser.error(f"--dir {args.dir}: not an existing directory")
    seed = int(time.time()) if args.seed is None else args.seed

    print(f"soak: {args.kills} kills, synchronous={args.synchronous}, launch={args.launch}, seed={seed}", flush=True)
    totals = CrashStats()
    started = time.perf_counter()
    current = CrashStats()

    def seen(cycle: int, stats: CrashStats) -> None:
        nonlocal current
        current = stats
        raise_if_interrupted()  # a Ctrl-C swallowed where Python could only report it

    with tempfile.TemporaryDirectory(prefix="store-soak-", dir=args.dir) as tmp:
        done, part = 0, 0
        with latched_interrupts():
            try:
                while done < args.kills:
                    batch = min(args.rotate, args.kills - done)
                    path = Path(tmp) / f"soak-{part}.sqlite3"
                    current = CrashStats()
                    try:
                        stats = run_crash_cycles(
                            path,
                            kills=batch,
                            seed=seed + part,
                            synchronous=args.synchronous,
                            launch=args.launch,
                            max_acks_before_kill=args.max_acks,
                            full_check_every=50,
                            progress=seen,
                        )
                    except DurabilityViolation as exc:
                        print(f"DURABILITY VIOLATION after {done} verified kills (file part {part}): {exc}")
                        return 1
                    current = CrashStats()
                    done += stats.kills
                    part += 1
                    _add(totals, stats)
                    print(f"  {done:>6} kills verified, {totals.acked} acknowledged commits so far", flush=True)
            except KeyboardInterrupt:
                _add(totals, current)
                print(f"INTERRUPTED: {_summary(totals, time.perf_counter() - started)}")
                print("store_soak.py: interrupted", file=sys.stderr)
                return EXIT_INTERRUPTED
    print(f"OK: {_summary(totals, time.perf_counter() - started)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
