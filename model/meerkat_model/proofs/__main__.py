"""``python -m meerkat_model.proofs``: run the z3 proofs and print the report.

Options: ``--ids N`` (symbolic ids per machine, default 8), ``--machine NAME`` (repeatable),
``--depth K`` (bounded reachability depth), ``--no-reachability``, ``--no-tables``,
``--json`` (machine-readable report), ``--scale 8,20,50`` (induction times per id count, with
ratios; ``--timeout-ms`` per solver query), ``--differential PROFILE`` (compare each encoding
with its executable model on every reachable state of a profile; ``--stride N``: every N-th
state). Exit status 0 when every obligation is proved (no drift), 1 otherwise, 2 on bad
arguments.
"""

from __future__ import annotations

import argparse
import json
import sys

from meerkat_model.proofs.reachability import DEFAULT_DEPTH
from meerkat_model.proofs.runner import ENCODINGS, run_proofs
from meerkat_model.proofs.scaling import render_scaling, scaling


def _ids_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated id counts, got {text!r}") from exc
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"id counts must be positive, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meerkat_model.proofs", description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=8, help="symbolic ids per machine (default 8)")
    parser.add_argument("--machine", action="append", choices=sorted(ENCODINGS), help="only this machine")
    parser.add_argument("--depth", type=int, default=DEFAULT_DEPTH, help="bounded reachability depth")
    parser.add_argument("--no-reachability", action="store_true", help="skip the enabled-transition checks")
    parser.add_argument("--no-tables", action="store_true", help="skip the transition-table cross-checks")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--scale", type=_ids_list, help="time the induction proofs for these id counts")
    parser.add_argument("--timeout-ms", type=int, default=10_000, help="per-query solver timeout for --scale")
    parser.add_argument(
        "--differential",
        metavar="PROFILE",
        help="compare every encoding with its executable model on every reachable state of PROFILE",
    )
    parser.add_argument("--stride", type=int, default=1, help="with --differential: every N-th state only")
    args = parser.parse_args(argv)
    if args.ids < 1:
        parser.error(f"--ids must be at least 1, got {args.ids}")
    machines = tuple(args.machine) if args.machine else None
    if args.differential:
        from meerkat_model.catalog import PROFILES
        from meerkat_model.proofs.differential import render, run_differential

        if args.differential not in PROFILES:
            parser.error(f"unknown profile {args.differential!r}; known: {', '.join(PROFILES)}")
        if args.stride < 1:
            parser.error(f"--stride must be at least 1, got {args.stride}")
        reports = run_differential(args.differential, machines, stride=args.stride)
        print(render(reports))
        return 0 if all(r.ok for r in reports) else 1
    if args.scale:
        rows = scaling(args.scale, machines, args.timeout_ms)
        print(json.dumps([r.to_json() for r in rows], indent=2) if args.json else render_scaling(rows))
        return 0 if all(r.ok for r in rows) else 1
    report = run_proofs(
        args.ids, machines=machines, depth=args.depth, reachability=not args.no_reachability, tables=not args.no_tables
    )
    print(json.dumps(report.to_json(), indent=2) if args.json else report.render())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
