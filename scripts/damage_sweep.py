"""Damage sweep: flip bits in the database pages, log frames and wal-index of a real store file
set and cut its log at every frame boundary; every case must recover everything acknowledged or
be refused with a typed error, never lose acknowledged work silently.

    python scripts/damage_sweep.py [--sessions 2] [--inputs 12] [--ops 3] [--flips-per-page 4]
                                   [--key-flips 400] [--wal-flips 400] [--shm-flips 40]
                                   [--cuts-per-frame 3] [--seed N] [--dir PATH] [--protections-off]

The file set is written by a child process through the runtime, which then exits without closing
(as after a crash). Exit status 0 when no case lost acknowledged work silently or raised an
untyped error, 1 otherwise (each kind is listed), 2 on a usage error, 130 when interrupted with
Ctrl-C (the cases that finished are summarised first).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from meerkat_conformance.stores.damage_sweep import SweepStats, cases, iter_outcomes, make_file_set, sweep
from meerkat_model.cli.usage import EXIT_INTERRUPTED, OneLineParser, int_at_least


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="damage_sweep.py",
        description=__doc__.split("\n\n")[0],
        epilog="exit status: 0 every case recovered or was refused; 1 a silent loss or an untyped error; "
        "2 usage error; 130 interrupted (Ctrl-C; the finished cases are summarised)",
    )
    add = parser.add_argument
    add("--sessions", type=int_at_least(1), default=2, help="sessions with runs (default: 2)")
    add("--inputs", type=int_at_least(2), default=12, help="inputs per session and phase (default: 12)")
    add("--ops", type=int_at_least(0), default=3, help="operations completed per session and phase (default: 3)")
    add("--flips-per-page", type=int_at_least(0), default=4, help="bits flipped in each database page (default: 4)")
    add("--key-flips", type=int_at_least(0), default=400, help="bits flipped inside stored keys (default: 400)")
    add("--wal-flips", type=int_at_least(0), default=400, help="bits flipped in the log (default: 400)")
    add("--shm-flips", type=int_at_least(0), default=40, help="bits flipped in the wal-index header (default: 40)")
    add("--cuts-per-frame", type=int_at_least(1), default=3, help="log cuts per frame, one at its start (default: 3)")
    add("--seed", type=int, default=None, help="random seed (default: the current time, printed)")
    add("--dir", type=Path, default=None, help="existing folder for the files (default: system temp)")
    add("--protections-off", action="store_true", help="no log check, no page check, a blind high-water mark")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.dir is not None and not args.dir.is_dir():
        parser.error(f"--dir {args.dir}: not an existing directory")
    seed = int(time.time()) if args.seed is None else args.seed
    scratch = Path(tempfile.mkdtemp(prefix="meerkat-damage-", dir=args.dir))
    stats = SweepStats()
    try:
        pristine = make_file_set(scratch / "pristine", sessions=args.sessions, inputs=args.inputs, ops=args.ops)
        found = cases(
            pristine,
            random.Random(seed),
            flips_per_page=args.flips_per_page,
            key_flips=args.key_flips,
            wal_flips=args.wal_flips,
            shm_flips=args.shm_flips,
            cuts_per_frame=args.cuts_per_frame,
        )
        sizes = ", ".join(f"{name} {pristine.size(suffix)} bytes" for name, suffix in (("db", ""), ("wal", "-wal")))
        print(f"seed {seed}: {len(found)} cases on a file set of {sizes}", flush=True)
        sweep(pristine, found, scratch, protections=not args.protections_off, stats=stats)
    except KeyboardInterrupt:
        print(f"INTERRUPTED: {stats.summary()}", flush=True)
        print("damage_sweep.py: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    bad = stats.outcomes["lost"] + stats.outcomes["error"]
    print(f"{'FAILED' if bad else 'OK'}: {stats.summary()}")
    print("refusals by what caught them: " + ", ".join(f"{k} {n}" for k, n in stats.refusals.most_common()))
    for line in iter_outcomes(stats):
        if not line.startswith(("recovered", "refused")) or bad:
            print(f"  {line[:300]}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
