"""PostgreSQL cluster soak: three worker processes on one database, SIGKILLed and disconnected at
random, many times; every part is verified like the test suite's run (nothing acknowledged lost,
no idempotency key accepted twice, every takeover within the lease bound).

    python scripts/postgres_soak.py --cycles 300 [--workers 3] [--sessions 6] [--lease-ms 500]
                                    [--kill-share 0.5] [--seed N] [--rotate 50] [--dir PATH]

Needs a server: ``MEERKAT_PG_DSN`` (``./run soak-postgres`` starts a throwaway one). A fresh
schema and fresh workers every ``--rotate`` cycles keep each verification cheap. Exit status 0
when every part verified, 1 on the first violation, 2 on a usage error (also without
``MEERKAT_PG_DSN``), 130 when interrupted with Ctrl-C (the cycles verified so far are printed
above).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from meerkat_conformance.takeover.cluster import ClusterReport, run_cluster
from meerkat_model.cli.usage import OneLineParser, int_at_least, interruptible, milliseconds_above_zero


def _share(raw: str) -> float:
    """An argparse ``type``: a share between 0 and 1."""
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number") from None
    if not 0 <= value <= 1:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{raw!r}: must be between 0 and 1")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="postgres_soak.py",
        description=(__doc__ or "").split("\n\n")[0],
        epilog="Needs MEERKAT_PG_DSN (./run soak-postgres starts a throwaway server). exit status: 0 every part "
        "verified; 1 a violation (lost acknowledged input, an idempotency key accepted twice, a takeover beyond the "
        "lease bound); 2 usage error; 130 interrupted (Ctrl-C; the cycles verified so far are printed above)",
    )
    parser.add_argument("--cycles", type=int_at_least(1), default=300, help="kill/disconnect cycles (default: 300)")
    parser.add_argument("--workers", type=int_at_least(2), default=3, help="worker processes (default: 3)")
    parser.add_argument("--sessions", type=int_at_least(1), default=6, help="sessions they share (default: 6)")
    parser.add_argument(
        "--lease-ms", type=milliseconds_above_zero, default=500.0, help="lease duration in ms (default: 500)"
    )
    parser.add_argument(
        "--kill-share", type=_share, default=0.5, help="share of cycles that kill a worker, 0 to 1 (default: 0.5)"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: the current time, printed)")
    parser.add_argument("--rotate", type=int_at_least(1), default=50, help="cycles per schema (default: 50)")
    parser.add_argument(
        "--dir", type=Path, default=None, help="existing folder for the workers' files (default: system temp)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.dir is not None and not args.dir.is_dir():
        parser.error(f"--dir {args.dir}: not an existing directory")
    dsn = os.environ.get("MEERKAT_PG_DSN")
    if not dsn:
        parser.error("set MEERKAT_PG_DSN to a PostgreSQL connection string (./run soak-postgres starts a server)")
    if args.seed is None:
        args.seed = int(time.time())
    return interruptible(lambda: _soak(args, dsn), "postgres_soak.py")


def _soak(args: argparse.Namespace, dsn: str) -> int:
    print(
        f"postgres soak: {args.cycles} cycles, {args.workers} workers, {args.sessions} sessions, lease "
        f"{args.lease_ms:.0f} ms, kill share {args.kill_share}, seed={args.seed}",
        flush=True,
    )
    started = time.perf_counter()
    totals = ClusterReport(lease_s=args.lease_ms / 1000, sessions=args.sessions, workers=args.workers)
    done, part = 0, 0
    while done < args.cycles:
        cycles = min(args.rotate, args.cycles - done)
        with tempfile.TemporaryDirectory(prefix="postgres-soak-", dir=args.dir) as tmp:
            report = run_cluster(
                dsn,
                Path(tmp),
                cycles=cycles,
                workers=args.workers,
                sessions=args.sessions,
                seed=args.seed + part,
                lease_s=args.lease_ms / 1000,
                kill_share=args.kill_share,
            )
        if not report.ok:
            print(f"VIOLATION in part {part} (seed {args.seed + part}) after {done} verified cycles:")
            print("  " + "\n  ".join(report.violations))
            return 1
        done += report.cycles
        part += 1
        for name in (
            "cycles", "kills", "disconnects", "backends_terminated", "failed_accepts", "takeovers", "accepted",
            "deduplicated", "retried", "resent", "consumed", "runs_logged", "repeated_runs", "unknown_landed",
            "unknown_not_landed", "in_doubt",
        ):  # fmt: skip
            setattr(totals, name, getattr(totals, name) + getattr(report, name))
        totals.takeover_s.extend(report.takeover_s)
        totals.lease_bound_s = report.lease_bound_s
        for session, owners in report.owners_seen.items():
            totals.owners_seen.setdefault(f"{part}:{session}", set()).update(owners)
        print(f"  {done:>6} cycles verified, {totals.accepted} inputs acknowledged so far", flush=True)
    totals.seconds = time.perf_counter() - started
    print(totals.render())
    ms = sorted(t * 1000 for t in totals.takeover_s)
    if ms:
        print(f"    takeover p99 {ms[int(0.99 * (len(ms) - 1))]:.0f} ms, mean {statistics.fmean(ms):.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
