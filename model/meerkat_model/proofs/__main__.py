"""``python -m meerkat_model.proofs``: run the z3 proofs and print the report.

Options: ``--ids N`` (symbolic ids per machine, default 8), ``--machine NAME`` (repeatable),
``--depth K`` (bounded reachability depth, default 10), ``--no-reachability``, ``--no-tables``,
``--json`` (machine-readable report), ``--progress``, ``--scale 8,20,50`` (induction times per
id count, with ratios; ``--timeout-ms`` per solver query, default 10000), ``--differential
PROFILE`` (compare each encoding with its executable model on every reachable state of a
profile; ``--stride N``: every N-th state). Exit status 0 when every obligation is proved (no
drift), 1 otherwise, 2 on a usage error (one line, found before any proof), 130 when
interrupted with Ctrl-C (the results of the machines that finished are printed first).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from meerkat_model.cli.usage import OneLineParser, int_at_least, interruptible

PROG = "python -m meerkat_model.proofs"
DEFAULT_IDS = 8
DEFAULT_TIMEOUT_MS = 10_000


def _ids_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated id counts, got {text!r}") from exc
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"id counts must be positive, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    from meerkat_model.catalog import PROFILES
    from meerkat_model.proofs.reachability import DEFAULT_DEPTH
    from meerkat_model.proofs.runner import ENCODINGS

    parser = OneLineParser(
        prog=PROG,
        description="Run the z3 proofs of the model machines and print the report.",
        epilog=(
            "exit status: 0 every obligation proved (no drift); 1 an obligation failed or came back unknown,\n"
            "or a drift; 2 usage error (one line, found before any proof); 130 interrupted with Ctrl-C\n"
            "(the results of the machines that finished are printed first)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--ids",
        type=int_at_least(1),
        default=DEFAULT_IDS,
        metavar="N",
        help=f"symbolic ids per machine (default {DEFAULT_IDS})",
    )
    parser.add_argument(
        "--machine", action="append", choices=sorted(ENCODINGS), help="only this machine (repeatable; default: all)"
    )
    parser.add_argument(
        "--depth",
        type=int_at_least(0),
        default=DEFAULT_DEPTH,
        metavar="K",
        help=f"bounded reachability depth: steps from the initial state (default {DEFAULT_DEPTH})",
    )
    parser.add_argument("--no-reachability", action="store_true", help="skip the enabled-transition checks")
    parser.add_argument("--no-tables", action="store_true", help="skip the transition-table cross-checks")
    parser.add_argument("--json", action="store_true", help="print the report as JSON (default: text)")
    parser.add_argument(
        "--progress",
        action="store_true",
        help="write a line on stderr as each machine's proofs start (default: only when stderr is a terminal)",
    )
    parser.add_argument(
        "--scale", type=_ids_list, metavar="N,N,...", help="time the induction proofs for these id counts"
    )
    parser.add_argument(
        "--timeout-ms",
        type=int_at_least(1),
        default=DEFAULT_TIMEOUT_MS,
        metavar="MS",
        help=f"with --scale: per-query solver timeout in milliseconds (default {DEFAULT_TIMEOUT_MS})",
    )
    parser.add_argument(
        "--differential",
        metavar="PROFILE",
        choices=sorted(PROFILES),
        help="compare every encoding with its executable model on every reachable state of PROFILE "
        f"({', '.join(PROFILES)})",
    )
    parser.add_argument(
        "--stride",
        type=int_at_least(1),
        default=1,
        metavar="N",
        help="with --differential: every N-th state only (default 1: every state)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return interruptible(lambda: _run(args), PROG)


def _run(args: argparse.Namespace) -> int:
    from meerkat_model.proofs.report import ProofReport, ProofResult
    from meerkat_model.proofs.runner import run_proofs

    machines = tuple(args.machine) if args.machine else None
    if args.differential:
        from meerkat_model.proofs.differential import render, run_differential

        reports = run_differential(args.differential, machines, stride=args.stride)
        print(render(reports))
        return 0 if all(r.ok for r in reports) else 1
    if args.scale:
        from meerkat_model.proofs.scaling import render_scaling, scaling

        rows = scaling(args.scale, machines, args.timeout_ms)
        print(json.dumps([r.to_json() for r in rows], indent=2) if args.json else render_scaling(rows))
        return 0 if all(r.ok for r in rows) else 1

    def started(line: str) -> None:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    done: list[ProofResult] = []
    t0 = time.perf_counter()
    try:
        report = run_proofs(
            args.ids,
            machines=machines,
            depth=args.depth,
            reachability=not args.no_reachability,
            tables=not args.no_tables,
            progress=started if args.progress or sys.stderr.isatty() else None,
            finished=lambda _name, results: done.extend(results),
        )
    except KeyboardInterrupt:
        # the machines whose proofs finished, then the one-line interruption (``interruptible``)
        partial = ProofReport(args.ids, done, time.perf_counter() - t0)
        if args.json:
            print(json.dumps({**partial.to_json(), "ok": False, "interrupted": True}, indent=2))
        elif done:
            print(partial.render())
        raise
    print(json.dumps(report.to_json(), indent=2) if args.json else report.render())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
