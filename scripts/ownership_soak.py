"""Ownership soak: SIGKILL the owning worker process many times and verify that the waiting
worker's takeovers lose no acknowledged input, run none twice after it was recorded consumed and
accept no idempotency key twice.

    python scripts/ownership_soak.py --takeovers 500 [--lease-ms 250] [--renew-ms 80]
                                     [--synchronous NORMAL|FULL] [--seed N] [--rotate 100] [--dir PATH]

A fresh SQLite file (and fresh workers) every ``--rotate`` takeovers keeps each verification
cheap. Exit status 0 when every part verified, 1 on the first violation, 2 on a usage error,
130 when interrupted with Ctrl-C (the takeovers verified so far are summarised first).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from meerkat_conformance.takeover.driver import TakeoverReport, run_takeovers
from meerkat_model.cli.usage import OneLineParser, int_at_least, interruptible, milliseconds_above_zero


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="ownership_soak.py",
        description=__doc__.split("\n\n")[0],
        epilog="exit status: 0 every takeover verified; 1 a violation (lost acknowledged input, a run repeated "
        "after it was recorded consumed, an idempotency key accepted twice); 2 usage error; 130 interrupted "
        "(Ctrl-C; the takeovers verified so far are summarised)",
    )
    parser.add_argument(
        "--takeovers", type=int_at_least(1), default=500, help="owning workers to SIGKILL and take over (default: 500)"
    )
    parser.add_argument(
        "--lease-ms", type=milliseconds_above_zero, default=250.0, help="lease duration in ms (default: 250)"
    )
    parser.add_argument(
        "--renew-ms",
        type=milliseconds_above_zero,
        default=80.0,
        help="renewal period in ms, shorter than --lease-ms (default: 80)",
    )
    parser.add_argument(
        "--synchronous", choices=("FULL", "NORMAL"), default="NORMAL", help="SQLite synchronous mode (default: NORMAL)"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: the current time, printed)")
    parser.add_argument(
        "--rotate", type=int_at_least(1), default=100, help="takeovers per database file (default: 100)"
    )
    parser.add_argument(
        "--dir", type=Path, default=None, help="existing folder for the database files (default: system temp)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.renew_ms < args.lease_ms:
        parser.error(f"--renew-ms ({args.renew_ms:g}) must be shorter than --lease-ms ({args.lease_ms:g})")
    if args.dir is not None and not args.dir.is_dir():
        parser.error(f"--dir {args.dir}: not an existing directory")
    if args.seed is None:
        args.seed = int(time.time())
    return interruptible(lambda: _soak(args), "ownership_soak.py")


def _soak(args: argparse.Namespace) -> int:
    print(
        f"ownership soak: {args.takeovers} takeovers, lease {args.lease_ms:.0f} ms, renewal every "
        f"{args.renew_ms:.0f} ms, synchronous={args.synchronous}, seed={args.seed}",
        flush=True,
    )
    started = time.perf_counter()
    totals = TakeoverReport(lease_s=args.lease_ms / 1000)
    done, part = 0, 0
    while done < args.takeovers:
        batch = min(args.rotate, args.takeovers - done)
        with tempfile.TemporaryDirectory(prefix="ownership-soak-", dir=args.dir) as tmp:
            report = run_takeovers(
                Path(tmp),
                takeovers=batch,
                seed=args.seed + part,
                lease_s=args.lease_ms / 1000,
                renew_every_s=args.renew_ms / 1000,
                synchronous=args.synchronous,
            )
        if not report.ok:
            print(f"VIOLATION in part {part} (seed {args.seed + part}) after {done} verified takeovers:")
            print("  " + "\n  ".join(report.violations))
            return 1
        done += report.takeovers
        part += 1
        for name in ("takeovers", "accepted", "deduplicated", "retried", "resent", "consumed", "runs_logged"):
            setattr(totals, name, getattr(totals, name) + getattr(report, name))
        totals.repeated_runs += report.repeated_runs
        totals.takeover_s.extend(report.takeover_s)
        print(f"  {done:>6} takeovers verified, {totals.accepted} inputs acknowledged so far", flush=True)
    totals.seconds = time.perf_counter() - started
    print(totals.render())
    ms = sorted(t * 1000 for t in totals.takeover_s)
    print(f"    takeover p99 {ms[int(0.99 * (len(ms) - 1))]:.0f} ms, mean {statistics.fmean(ms):.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
