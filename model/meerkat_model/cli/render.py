"""``meerkat-render``: regenerate the state diagrams under ``diagrams/`` from the model.

Writes one DOT and one SVG per diagram, ``index.html`` (every diagram with its tables) and
``explorer.html`` (the state explorer). ``--check`` only compares (exit 1 on drift). Without an
SVG renderer the DOT files and the pages are still written and the command says how to get one.
``--trace MACHINE`` adds a counterexample trace (or, with ``--trace-to deepest``, the path to a
deepest state); ``--explore PROFILE`` writes only an explorer page of that profile.

Exit status: 0 done (or no drift), 1 drift found, 2 error (nothing written): a usage error
(checked before the model is explored: ``--out`` under a regular file, an explicit renderer
that is missing or does not render, options that do not go together, an unknown profile or
machine), a missing ``verify`` extra, no counterexample, or a rendering or writing failure; 130
interrupted with Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from meerkat_model.catalog import DRAWN, MACHINES
from meerkat_model.cli.extras import require_extra
from meerkat_model.cli.paths import check_input_dir, check_output_dir
from meerkat_model.cli.usage import (
    EXIT_INTERRUPTED,
    OneLineParser,
    UsageError,
    int_at_least,
    quiet_when_stdout_closes,
    usage_error,
)
from meerkat_model.diagrams import (
    DEFAULT_NODE_LIMIT,
    DEFAULT_PROFILE,
    DiagramError,
    RendererNotFoundError,
    RendererUnusableError,
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
from meerkat_model.diagrams.output import write_atomically
from meerkat_model.diagrams.renderer import ENV_VAR, Renderer
from meerkat_model.diagrams.suite import (
    EXPLORER_PROFILE,
    OVERVIEW_PROFILE,
    TRACE_TARGETS,
    MachineEntry,
    standard_explorer,
)


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="meerkat-render",
        description=__doc__.split("\n\n")[0],
        epilog="exit status: 0 written (or no drift); 1 drift found (--check); 2 usage error (found before the "
        "model is explored), missing 'verify' extra, no counterexample, or rendering or writing failure (nothing "
        "written); 130 interrupted (Ctrl-C)",
    )
    parser.add_argument("--out", type=Path, default=Path("diagrams"), help="output directory (default: diagrams)")
    parser.add_argument(
        "--profile",
        help=f"exploration profile of the reachable graphs and traces, not with --explore (default: {DEFAULT_PROFILE})",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when the committed files in --out (an existing directory) differ from the model "
        "(not with --explore, --trace, --dot-only or --renderer)",
    )
    parser.add_argument("--dot-only", action="store_true", help="do not render SVG (keeps SVGs still up to date)")
    parser.add_argument(
        "--renderer",
        metavar="PATH",
        help=f"DOT-to-SVG executable, checked before any work (default: the {ENV_VAR} environment variable, "
        "checked the same way, else graphviz-pure, then Graphviz dot)",
    )
    parser.add_argument(
        "--node-limit",
        type=int_at_least(1),
        metavar="N",
        help=f"refuse to lay out a reachable graph above N states (default: {DEFAULT_NODE_LIMIT})",
    )
    parser.add_argument("--force", action="store_true", help="lay out reachable graphs above --node-limit")
    parser.add_argument(
        "--no-narrow",
        action="store_true",
        help="draw the reachable graphs under the profile's bounds as they are (by default some "
        "bounds are narrowed so the picture stays readable; the caption says which)",
    )
    parser.add_argument(
        "--trace",
        metavar="MACHINE",
        help=f"also draw a trace of this drawn machine: {', '.join(DRAWN)} (the other catalog machines, "
        f"{', '.join(k for k in MACHINES if k not in DRAWN)}, are verified but not drawn: "
        "meerkat-verify --machine NAME --trace-dot FILE writes their counterexample)",
    )
    parser.add_argument(
        "--trace-to",
        choices=TRACE_TARGETS,
        help="with --trace: the first invariant violation (default) or a deepest state",
    )
    parser.add_argument(
        "--explore",
        metavar="PROFILE",
        help="write only explore-PROFILE.html: the state explorer of every machine under PROFILE's bounds as they "
        "are (not part of the committed set; only --out and --state-limit apply; --no-narrow is accepted, the "
        "page is not narrowed anyway)",
    )
    parser.add_argument(
        "--state-limit",
        type=int_at_least(1),
        default=DEFAULT_STATE_LIMIT,
        metavar="N",
        help=f"refuse an explorer page for a machine above N reachable states (default: {DEFAULT_STATE_LIMIT:,})",
    )
    return parser


def _check_combinations(args: argparse.Namespace) -> None:
    """Refuse options that would be ignored (:class:`UsageError`)."""
    if args.trace_to is not None and not args.trace:
        raise UsageError("--trace-to needs --trace MACHINE")
    if args.explore:
        if args.check:
            raise UsageError(
                "--check compares the committed set, which an --explore page is not part of: run --explore "
                "without --check"
            )
        given = {
            "--profile": args.profile is not None,
            "--trace": args.trace is not None,
            "--dot-only": args.dot_only,
            "--renderer": args.renderer is not None,
            "--node-limit": args.node_limit is not None,
            "--force": args.force,
        }
        for option, present in given.items():
            if present:
                raise UsageError(
                    f"{option} does not apply to --explore, which writes only explore-{args.explore}.html "
                    f"(every machine under the bounds of profile {args.explore!r} as they are)"
                )
    if args.check:
        ignored = {"--trace": args.trace is not None, "--dot-only": args.dot_only, "--renderer": bool(args.renderer)}
        for option, present in ignored.items():
            if present:
                raise UsageError(f"{option} does not apply to --check, which renders and writes nothing")


def _entries(profile: str) -> list[MachineEntry]:
    try:
        return catalog_entries(profile)
    except DiagramError as exc:
        raise UsageError(str(exc)) from None


def _check_trace_machine(name: str, entries: list[MachineEntry]) -> None:
    known = [entry.key for entry in entries]
    if name in known:
        return
    message = f"--trace: unknown machine {name!r} (known: {', '.join(known)})"
    if name in MACHINES:
        message += (
            f"; {name!r} is a catalog machine that is verified but not drawn: "
            f"meerkat-verify --machine {name} --trace-dot FILE writes its counterexample"
        )
    raise UsageError(message)


def _choose_renderer(args: argparse.Namespace) -> Renderer | None:
    """The renderer of this run, found before any model work; an explicit choice that cannot be
    used is a :class:`UsageError`. ``None``: nothing is rendered (--check, --explore, --dot-only,
    or no renderer installed, which is a warning)."""
    if args.check or args.explore or args.dot_only:
        return None
    try:
        return find_renderer(args.renderer)
    except RendererUnusableError as exc:
        raise UsageError(str(exc)) from None
    except RendererNotFoundError as exc:
        _say(f"warning: {exc}. Writing DOT only.")
        return None


def _explore_only(args: argparse.Namespace, entries: list[MachineEntry], started: float) -> int:
    """``--explore PROFILE``: one explorer page, bounds as they are."""
    try:
        page = standard_explorer(args.explore, entries=entries, narrow=False, state_limit=args.state_limit)
    except DiagramError as exc:
        _say(f"error: {exc}")
        return 2
    path = args.out / f"explore-{args.explore}.html"
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        write_atomically(path, page)
    except OSError as exc:
        _say(f"error: could not write {path}: {exc}")
        return 2
    _say(f"wrote {path} ({len(page.encode()) / 1e6:.1f} MB, {time.perf_counter() - started:.2f} s)")
    return 0


def _say(message: str) -> None:
    print(f"meerkat-render: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return quiet_when_stdout_closes(lambda: _main(args))


def _main(args: argparse.Namespace) -> int:
    try:
        try:
            _check_combinations(args)
            if args.check:
                check_input_dir(args.out, "--out")
            else:
                check_output_dir(args.out, "--out")
            require_extra("verify", ("networkx",))
            entries = _entries(args.explore or args.profile or DEFAULT_PROFILE)
            if args.trace:
                _check_trace_machine(args.trace, entries)
            renderer = _choose_renderer(args)
        except UsageError as exc:
            return usage_error("meerkat-render", exc)
        if args.explore:
            return _explore_only(args, entries, time.perf_counter())
        return _run(args, entries, renderer)
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED


def _run(args: argparse.Namespace, entries: list[MachineEntry], renderer: Renderer | None) -> int:
    started = time.perf_counter()
    profile = args.profile or DEFAULT_PROFILE
    cache = ExplorationCache()
    try:
        trace = None
        if args.trace:
            # First, so a missing counterexample is reported before the long work. A trace is a short
            # chain whatever the graph size: it uses the profile's bounds as they are.
            machine = next(entry for entry in entries if entry.key == args.trace).build()
            trace = trace_diagram_of(
                args.trace, machine, explore_with_verifier(machine), profile=profile, to=args.trace_to or "violation"
            )
        diagrams = standard_diagrams(
            profile,
            entries=entries,
            node_limit=DEFAULT_NODE_LIMIT if args.node_limit is None else args.node_limit,
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
        if trace is not None:
            diagrams.append(trace)
    except DiagramError as exc:
        _say(f"error: {exc}")
        return 2
    built = time.perf_counter()
    for diagram in diagrams:
        for alert in diagram.alerts:
            _say(f"warning: {diagram.title}: {alert}")

    if args.check:
        problems = check_drift(args.out, diagrams, explorer=explorer)
        for problem in problems:
            _say(f"drift: {problem}")
        if problems:
            _say("the diagrams are out of date; regenerate them with ./run render")
            return 1
        _say(f"{len(diagrams)} diagrams up to date in {args.out} ({built - started:.2f} s)")
        return 0

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
    if report.without_svg and args.dot_only:
        _say(
            f"--dot-only: no up-to-date SVG for {', '.join(report.without_svg)} (their DOT is written; run without "
            "--dot-only to render them)"
        )
    elif report.without_svg:
        _say(
            f"no SVG for: {', '.join(report.without_svg)} (their DOT is written; render it once a renderer is "
            "installed)"
        )
    used = renderer.path if renderer else ("not used (--dot-only)" if args.dot_only else "none")
    _say(
        f"wrote {len(report.written)} files for {len(diagrams)} diagrams to {args.out} "
        f"(renderer: {used}; model {built - started:.2f} s, layout {rendered - built:.2f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
