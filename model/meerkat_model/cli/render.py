"""``meerkat-render``: regenerate the state diagrams under ``diagrams/`` from the model.

Writes one DOT and one SVG per diagram, ``index.html`` (every diagram with its tables) and
``explorer.html`` (the state explorer). ``--check`` only compares (exit 1 on drift). Without an
SVG renderer the DOT files and the pages are still written and the command says how to get one.
``--trace MACHINE`` adds a counterexample trace (or, with ``--trace-to deepest``, the path to a
deepest state); ``--explore PROFILE`` writes only an explorer page of that profile.

Exit status: 0 done (or no drift), 1 drift found, 2 error (nothing written): a usage error
(checked before the model is explored, e.g. ``--out`` under a regular file), a missing
``verify`` extra or a rendering failure; 130 interrupted with Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from meerkat_model.cli.extras import require_extra
from meerkat_model.cli.paths import check_output_dir
from meerkat_model.cli.usage import EXIT_INTERRUPTED, OneLineParser, UsageError, usage_error
from meerkat_model.diagrams import (
    DEFAULT_NODE_LIMIT,
    DEFAULT_PROFILE,
    DiagramError,
    RendererNotFoundError,
    catalog_entries,
    check_drift,
    explore_with_verifier,
    find_renderer,
    render_svgs,
    standard_diagrams,
    trace_diagram_of,
    write_outputs,
)
from meerkat_model.diagrams.explorations import ExplorationCache
from meerkat_model.diagrams.explorer_data import DEFAULT_STATE_LIMIT
from meerkat_model.diagrams.renderer import Renderer
from meerkat_model.diagrams.suite import EXPLORER_PROFILE, OVERVIEW_PROFILE, TRACE_TARGETS, standard_explorer


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="meerkat-render",
        description=__doc__.split("\n\n")[0],
        epilog="exit status: 0 written (or no drift); 1 drift found (--check); 2 usage error, missing 'verify' "
        "extra or rendering failure (nothing written); 130 interrupted (Ctrl-C)",
    )
    parser.add_argument("--out", type=Path, default=Path("diagrams"), help="output directory (default: diagrams)")
    parser.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        help=f"exploration profile of the reachable graphs (default: {DEFAULT_PROFILE})",
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when the committed files differ from the model"
    )
    parser.add_argument("--dot-only", action="store_true", help="do not render SVG (keeps SVGs still up to date)")
    parser.add_argument(
        "--renderer",
        metavar="PATH",
        help="DOT-to-SVG executable (default: graphviz-pure, then Graphviz dot; env MEERKAT_DOT)",
    )
    parser.add_argument(
        "--node-limit",
        type=int,
        default=DEFAULT_NODE_LIMIT,
        help=f"refuse to lay out a reachable graph above this many states (default: {DEFAULT_NODE_LIMIT})",
    )
    parser.add_argument("--force", action="store_true", help="lay out reachable graphs above --node-limit")
    parser.add_argument(
        "--no-narrow",
        action="store_true",
        help="draw the reachable graphs under the profile's bounds as they are (by default some "
        "bounds are narrowed so the picture stays readable; the caption says which)",
    )
    parser.add_argument("--trace", metavar="MACHINE", help="also draw a trace of this catalog machine")
    parser.add_argument(
        "--trace-to",
        choices=TRACE_TARGETS,
        default="violation",
        help="trace target: the first invariant violation (default) or a deepest state",
    )
    parser.add_argument(
        "--explore",
        metavar="PROFILE",
        help="write only explore-PROFILE.html: the state explorer of every machine under PROFILE's bounds as they "
        "are (not part of the committed set)",
    )
    parser.add_argument(
        "--state-limit",
        type=int,
        default=DEFAULT_STATE_LIMIT,
        metavar="N",
        help=f"refuse an explorer page for a machine above N reachable states (default: {DEFAULT_STATE_LIMIT:,})",
    )
    return parser


def _explore_only(args: argparse.Namespace, started: float) -> int:
    """``--explore PROFILE``: one explorer page, bounds as they are."""
    try:
        page = standard_explorer(
            args.explore, entries=catalog_entries(args.explore), narrow=False, state_limit=args.state_limit
        )
    except DiagramError as exc:
        _say(f"error: {exc}")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"explore-{args.explore}.html"
    path.write_text(page, encoding="utf-8")
    _say(f"wrote {path} ({len(page.encode()) / 1e6:.1f} MB, {time.perf_counter() - started:.2f} s)")
    return 0


def _say(message: str) -> None:
    print(f"meerkat-render: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if not args.check:
            check_output_dir(args.out, "--out")
        require_extra("verify", ("networkx",))
    except UsageError as exc:
        return usage_error("meerkat-render", exc)
    try:
        return _run(args)
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED


def _run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    if args.explore:
        return _explore_only(args, started)
    cache = ExplorationCache()
    try:
        entries = catalog_entries(args.profile)
        known = {entry.key: entry for entry in entries}
        if args.trace and args.trace not in known:
            raise DiagramError(f"unknown machine {args.trace!r} (known: {', '.join(known)})")
        diagrams = standard_diagrams(
            args.profile,
            entries=entries,
            node_limit=args.node_limit,
            force=args.force,
            narrow=not args.no_narrow,
            overview_entries=catalog_entries(OVERVIEW_PROFILE),
            cache=cache,
        )
        explorer = standard_explorer(
            EXPLORER_PROFILE,
            entries=catalog_entries(EXPLORER_PROFILE),
            narrow=not args.no_narrow,
            state_limit=args.state_limit,
            cache=cache,
        )
        if args.trace:
            # A trace is a short chain whatever the graph size: it uses the profile's bounds as they are.
            machine = known[args.trace].build()
            diagrams.append(
                trace_diagram_of(
                    args.trace, machine, explore_with_verifier(machine), profile=args.profile, to=args.trace_to
                )
            )
    except DiagramError as exc:
        _say(f"error: {exc}")
        return 2
    built = time.perf_counter()
    for diagram in diagrams:
        for alert in diagram.alerts:
            _say(f"warning: {diagram.title}: {alert}")

    if args.check:
        problems = check_drift(args.out, [d for d in diagrams if d.kind != "trace"], explorer=explorer)
        for problem in problems:
            _say(f"drift: {problem}")
        if problems:
            _say("the diagrams are out of date; regenerate them with ./run render")
            return 1
        _say(f"{len(diagrams)} diagrams up to date in {args.out} ({built - started:.2f} s)")
        return 0

    renderer: Renderer | None = None
    if not args.dot_only:
        try:
            renderer = find_renderer(args.renderer)
        except RendererNotFoundError as exc:
            if args.renderer:
                _say(f"error: {exc}")
                return 2
            _say(f"warning: {exc}. Writing DOT only.")
    try:
        svgs = render_svgs(diagrams, renderer, args.out)
    except DiagramError as exc:
        _say(f"error: {exc} (nothing written)")
        return 2
    rendered = time.perf_counter()
    try:
        report = write_outputs(args.out, diagrams, svgs, explorer=explorer)
    except OSError as exc:
        _say(f"error: could not write to {args.out}: {exc}")
        return 2
    for path in report.removed:
        _say(f"removed stale {path}")
    if report.without_svg:
        _say(
            f"no SVG for: {', '.join(report.without_svg)} (their DOT is written; render it once a renderer is "
            "installed)"
        )
    _say(
        f"wrote {len(report.written)} files for {len(diagrams)} diagrams to {args.out} "
        f"(renderer: {renderer.path if renderer else 'none'}; model {built - started:.2f} s, "
        f"layout {rendered - built:.2f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
