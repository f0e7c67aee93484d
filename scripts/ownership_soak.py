"""Ownership soak: SIGKILL the owning worker process many times and verify that the waiting
worker's takeovers lose no acknowledged input, run none twice after it was recorded consumed and
accept no idempotency key twice.

    python scripts/ownership_soak.py --takeovers 500 [--lease-ms 250] [--renew-ms 80]
                                     [--synchronous NORMAL|FULL] [--seed N] [--rotate 100] [--dir PATH]

A fresh SQLite file (and fresh workers) every ``--rotate`` takeovers keeps each verification
cheap. Exit status 0 when every part verified, 1 on the first violation.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from meerkat_conformance.takeover.driver import TakeoverReport, run_takeovers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--takeovers", type=int, default=500)
    parser.add_argument("--lease-ms", type=float, default=250.0)
    parser.add_argument("--renew-ms", type=float, default=80.0)
    parser.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="NORMAL")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--rotate", type=int, default=100, help="takeovers per database file")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.takeovers < 1 or args.rotate < 1 or not 0 < args.renew_ms < args.lease_ms:
        parser.error("need --takeovers >= 1, --rotate >= 1 and 0 < --renew-ms < --lease-ms")

    print(
        f"ownership soak: {args.takeovers} takeovers, lease {args.lease_ms:.0f} ms, renewal every "
        f"{args.renew_ms:.0f} ms, synchronous={args.synchronous}, seed={args.seed}"
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
        print(f"  {done:>6} takeovers verified, {totals.accepted} inputs acknowledged so far")
    totals.seconds = time.perf_counter() - started
    print(totals.render())
    ms = sorted(t * 1000 for t in totals.takeover_s)
    print(f"    takeover p99 {ms[int(0.99 * (len(ms) - 1))]:.0f} ms, mean {statistics.fmean(ms):.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
