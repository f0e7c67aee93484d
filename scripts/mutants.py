"""Mutation benchmark: plant each catalogued runtime bug in turn and report which layer kills it.

    python scripts/mutants.py [--layer tests|harness|both] [--only ID[,ID...]] [--timeout SECONDS]
                              [--jobs N] [--markdown PATH] [--list] [--show ID]

Layers: ``tests`` (the runtime's own tests) and ``harness`` (``meerkat-conformance --profile
fast``). The table (Markdown) goes to stdout, and to ``--markdown PATH`` when given; one progress
line per mutant goes to stderr. The unmutated runtime is run first through every chosen layer:
it must pass, or the benchmark stops (exit 1).

Exit status: 0 when the table was produced; 1 when the unmutated runtime fails a layer; 2 on a
usage error (an unknown mutant or layer) or a mutant that no longer applies to the runtime; 130
when interrupted with Ctrl-C (the mutants run so far are tabulated first).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from meerkat_conformance.mutants.catalog import MUTANTS, Mutant
from meerkat_conformance.mutants.planting import CatalogError, check_catalog, diff
from meerkat_conformance.mutants.runner import LAYERS, MutantResult, format_table, run_layer, run_mutants
from meerkat_model.cli.usage import EXIT_INTERRUPTED, OneLineParser, int_at_least

PROJECT = Path(__file__).resolve().parent.parent


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="mutants.py",
        description=__doc__.split("\n\n")[0],
        epilog="exit status: 0 table produced; 1 the unmutated runtime fails a layer; 2 usage error or a mutant "
        "that no longer applies; 130 interrupted (Ctrl-C; the mutants run so far are tabulated)",
    )
    parser.add_argument("--layer", choices=[*LAYERS, "both"], default="both", help="layers to run (default: both)")
    parser.add_argument("--only", default="", metavar="ID[,ID...]", help="run only these mutants (default: all)")
    parser.add_argument(
        "--timeout", type=float, default=600.0, metavar="SECONDS", help="time limit per layer run (default: 600)"
    )
    parser.add_argument(
        "--jobs",
        type=int_at_least(1),
        default=1,
        metavar="N",
        help="mutants run at a time (default: 1; the harness waits on SQLite fsyncs, so 2-3 help even on 2 cores)",
    )
    parser.add_argument("--markdown", type=Path, default=None, metavar="PATH", help="also write the table here")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--show", default=None, metavar="ID", help="print one mutant as a unified diff and exit")
    return parser


def _chosen(only: str) -> list[Mutant]:
    if not only:
        return list(MUTANTS)
    known = {m.id: m for m in MUTANTS}
    wanted = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise CatalogError(f"unknown mutant(s): {', '.join(unknown)}")
    return [known[name] for name in wanted]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        check_catalog()
        if args.show is not None:
            print(diff(_chosen(args.show)[0]), end="")
            return 0
        mutants = _chosen(args.only)
    except CatalogError as exc:
        print(f"mutants.py: error: {exc}", file=sys.stderr)
        return 2
    if args.list:
        for mutant in mutants:
            print(f"{mutant.id:36} {mutant.area:20} {mutant.what}")
        return 0
    layers = list(LAYERS) if args.layer == "both" else [args.layer]
    for layer in layers:
        baseline = run_layer(layer, None, PROJECT, args.timeout)
        print(f"[baseline] {layer}: {baseline.status} in {baseline.seconds:.0f}s", file=sys.stderr, flush=True)
        if baseline.killed:
            print(f"mutants.py: the unmutated runtime fails the {layer} layer: {baseline.detail}", file=sys.stderr)
            return 1
    done: list[MutantResult] = []

    def show(result: MutantResult) -> None:
        done.append(result)
        cells = "  ".join(f"{name} {got.status} ({got.seconds:.0f}s)" for name, got in result.layers.items())
        print(f"[{len(done)}/{len(mutants)}] {result.mutant.id}: {cells}", file=sys.stderr, flush=True)

    status = 0
    try:
        run_mutants(mutants, layers, PROJECT, timeout=args.timeout, jobs=args.jobs, report=show)
    except KeyboardInterrupt:
        status = EXIT_INTERRUPTED
    order = {m.id: n for n, m in enumerate(mutants)}
    table = format_table(sorted(done, key=lambda r: order[r.mutant.id]), layers)
    print(table)
    if args.markdown is not None:
        args.markdown.write_text(table + "\n", encoding="utf-8")
    return status


if __name__ == "__main__":
    sys.exit(main())
