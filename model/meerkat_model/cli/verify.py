"""``meerkat-verify``: enumerate every reachable state of the lifecycle model and check every
invariant, then run the z3 proofs.

Exit status: 0 when every invariant held on every reachable state, no state is stranded (every
reachable state can still reach one without obligations, also without the machine's give-ups)
and no proof failed; 1 when an invariant was violated (the shortest trace is printed), a state
is stranded, with or without give-ups (the shortest traces to the shallowest are printed), an
exploration hit ``--max-states`` or a proof failed; 2 for a usage error (unknown profile,
machine or bound, bad bound value, an unwritable ``--trace-dot`` path: all found before the
search) or a missing ``verify`` extra; 130 when interrupted with Ctrl-C (the report of what
finished is printed first).

``--trace-dot`` / ``--trace-json`` write one trace: the shortest to the first machine's first
invariant violation; without any violation, the shortest to the shallowest stranded state of the
first machine with one; without that either, to the shallowest state stranded without give-ups
of the first machine with one; nothing (a line on stderr says so) when there is none of them.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TextIO

from meerkat_model.catalog import MACHINES, PROFILES, bound_keys, profile_bounds
from meerkat_model.cli.extras import require_extra
from meerkat_model.cli.interrupts import latched_interrupts, raise_if_interrupted
from meerkat_model.cli.paths import check_output_file
from meerkat_model.cli.usage import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    OneLineParser,
    UsageError,
    quiet_when_stdout_closes,
    usage_error,
)
from meerkat_model.machine import Bounds
from meerkat_model.verifier import explore, summary, symmetry_comparison
from meerkat_model.verifier.exploration import Exploration, Violation
from meerkat_model.verifier.liveness import STRANDED
from meerkat_model.verifier.report import human, plain, trace_dot
from meerkat_model.verifier.trace import stranded_violation, violation_trace
from meerkat_model.verifier.trace_json import trace_document, write_trace_json

PROG = "meerkat-verify"
DEFAULT_PROFILE = "ci"
PROGRESS_INTERVAL = 0.5
PROOF_IDS = 8

__all__ = ["UsageError", "build_parser", "exit_now", "main", "run"]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description=(
            "Explore every reachable state of the lifecycle model machines breadth-first to a fixed point, "
            "check every invariant on every state (printing the shortest trace to any violation), report "
            "transition coverage, stuck states, stranded states (obligations no sequence of steps can clear) and "
            "states stranded without give-ups (obligations only a step giving work up can clear), "
            "then run the z3 proofs."
        ),
        epilog=(
            "examples:\n"
            "  meerkat-verify                         profile ci, every machine, then the proofs\n"
            "  meerkat-verify --profile deep --machine ops --no-prove\n"
            "  meerkat-verify --machine ops --set ids=3 --set ops.sequences=2\n"
            "  meerkat-verify --json > report.json\n"
            "  meerkat-verify --workers 1             sequential search (default: auto, 2 processes on 2+ cores)\n"
            "\nexit status: 0 all invariants hold, no state is stranded (with or without give-ups) and no proof\n"
            "failed; 1 a violation, a stranded state, an incomplete exploration or a failed proof; 2 usage\n"
            "error (checked before the search) or the 'verify' extra missing; 130 interrupted with Ctrl-C\n"
            "(the report of what finished is printed first)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=DEFAULT_PROFILE,
        help=f"named bounds for every machine (default: {DEFAULT_PROFILE})",
    )
    parser.add_argument(
        "--machine",
        action="append",
        metavar="NAME",
        dest="machines",
        help=f"verify only this machine (repeatable; known: {', '.join(MACHINES)}; default: all)",
    )
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        dest="overrides",
        default=[],
        help="override one bound of the profile (repeatable): any bound a machine documents, named in "
        "the profile or not. KEY applies to every selected machine that has it; MACHINE.KEY to one "
        "machine. VALUE is an integer",
    )
    parser.add_argument(
        "--no-symmetry", action="store_true", help="explore without symmetry reduction (default: reduce)"
    )
    parser.add_argument(
        "--compare-symmetry",
        action="store_true",
        help="explore with and without symmetry reduction; report the reduction ratio and whether both agree",
    )
    parser.add_argument(
        "--no-prove",
        action="store_true",
        help="skip the z3 proofs (default: prove the selected machines' invariants after the search)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print a machine-readable JSON report on stdout (default: text)"
    )
    parser.add_argument(
        "--trace-dot",
        metavar="PATH",
        type=Path,
        help="write the shortest trace to the first violation as a Graphviz DOT file; without a violation, to the "
        "shallowest stranded state of the first machine with one (else to the shallowest state stranded without "
        "give-ups); nothing when there is neither (its folder must exist; checked before the search)",
    )
    parser.add_argument(
        "--trace-json",
        metavar="PATH",
        type=Path,
        help="write the same trace as --trace-dot as JSON (format meerkat.trace: every field of every step; "
        "open it in the state explorer page; its folder must exist; checked before the search)",
    )
    parser.add_argument(
        "--progress",
        action="store_true",
        help="print progress lines on stderr even when it is not a terminal (default: only on a terminal)",
    )
    parser.add_argument(
        "--workers",
        default="auto",
        metavar="N",
        help="processes exploring each machine: an integer, or auto (default: 1 on a 1-core machine, else 2). "
        "With N > 1 the search is level-synchronous and hash-partitioned over N forked processes",
    )
    parser.add_argument(
        "--check-describe",
        action="store_true",
        help="also render every reachable state with describe (a state it cannot render is a violation)",
    )
    parser.add_argument(
        "--max-states",
        type=int,
        metavar="N",
        help="stop an exploration after N states (reported as incomplete, exit status 1; default: no limit)",
    )
    return parser


def parse_workers(raw: str) -> int:
    """``--workers`` value -> a process count (``auto``: 1 on a 1-core machine, else 2)."""
    if raw.strip().lower() == "auto":
        return default_workers()
    try:
        workers = int(raw)
    except ValueError:
        raise UsageError(f"--workers {raw!r}: expected a positive integer or 'auto'") from None
    if workers < 1:
        raise UsageError(f"--workers {raw!r}: must be at least 1")
    return workers


def default_workers() -> int:
    """1 on a machine (or CPU affinity) with one core, else 2."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    return 1 if cores <= 1 else 2


def select_machines(names: list[str] | None) -> list[str]:
    if not names:
        return list(MACHINES)
    unknown = [n for n in names if n not in MACHINES]
    if unknown:
        raise UsageError(f"unknown machine(s) {', '.join(unknown)}; known: {', '.join(MACHINES)}")
    return list(dict.fromkeys(names))


def parse_overrides(items: list[str], machines: list[str], profile: str) -> dict[str, dict[str, int]]:
    """``KEY=VALUE`` / ``MACHINE.KEY=VALUE`` items -> bounds per machine; names what is wrong.
    A key is known to a machine when its bounds module documents it (``bound_keys``) or the
    profile names it."""
    known = {m: set(profile_bounds(profile, m).values) | bound_keys(m) for m in machines}
    out: dict[str, dict[str, int]] = {m: {} for m in machines}
    for item in items:
        key, sep, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key or not raw:
            raise UsageError(f"--set {item!r}: expected KEY=VALUE")
        try:
            value = int(raw)
        except ValueError:
            raise UsageError(f"--set {item!r}: value {raw!r} is not an integer") from None
        target, dot, bare = key.partition(".")
        if dot:
            if target not in MACHINES:
                raise UsageError(f"--set {item!r}: unknown machine {target!r}; known: {', '.join(MACHINES)}")
            if target not in machines:
                raise UsageError(
                    f"--set {item!r}: machine {target!r} is not selected (selected: {', '.join(machines)})"
                )
            if bare not in known[target]:
                raise UsageError(
                    f"--set {item!r}: {target} has no bound {bare!r}; known: {', '.join(sorted(known[target]))}"
                )
            out[target][bare] = value
            continue
        hits = [m for m in machines if key in known[m]]
        if not hits:
            listing = "; ".join(f"{m}: {', '.join(sorted(known[m]))}" for m in machines)
            raise UsageError(f"--set {item!r}: no selected machine has a bound {key!r} ({listing})")
        for m in hits:
            out[m][key] = value
    return out


class Progress:
    """Throttled progress lines on a stream (rewritten in place on a terminal); :meth:`done`
    writes the final count, so the last line always shows where the search ended."""

    def __init__(self, machine: str, stream: TextIO) -> None:
        self.machine = machine
        self.stream = stream
        self.tty = stream.isatty()
        self.last = 0.0
        self.wrote = False

    def __call__(self, states: int, frontier: int, elapsed: float) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_INTERVAL:
            return
        self.last = now
        rate = states / elapsed if elapsed > 0 else 0.0
        self._write(f"{self.machine}: {states:,} states, frontier {frontier:,}, {rate:,.0f} states/s, {elapsed:.1f}s")

    def _write(self, line: str) -> None:
        self.stream.write(("\r" + line + "\x1b[K") if self.tty else line + "\n")
        self.stream.flush()
        self.wrote = True

    def done(self, states: int, elapsed: float) -> None:
        """The final line: ``states`` explored in ``elapsed`` seconds (on a terminal it replaces
        the last throttled line, then ends it)."""
        rate = states / elapsed if elapsed > 0 else 0.0
        self._write(f"{self.machine}: {states:,} states, search ended after {elapsed:.1f}s, {rate:,.0f} states/s")
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _checked(progress: Progress | None) -> Callable[[int, int, float], None]:
    """The search's progress callback: a check point for a latched Ctrl-C, then ``progress``."""

    def tick(states: int, frontier: int, elapsed: float) -> None:
        raise_if_interrupted()
        if progress is not None:
            progress(states, frontier, elapsed)

    return tick


def run_proofs_if_available(
    out: Callable[[str], None],
    machines: list[str],
    progress: TextIO | None = None,
    partial: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Run ``meerkat_model.proofs.run_proofs`` on the selected ``machines`` that have a z3
    encoding (``None`` when the module is absent or none of them has one), writing a line to
    ``progress`` as each machine's proofs start. Interrupted (``KeyboardInterrupt``, raised
    again), it reports the machines whose proofs finished and stores that summary, marked
    ``"interrupted": true``, as ``partial["proofs"]``."""
    if importlib.util.find_spec("meerkat_model.proofs") is None:
        out("== proofs: meerkat_model.proofs is not available; skipped")
        return None
    proofs = importlib.import_module("meerkat_model.proofs")
    encoded = tuple(m for m in machines if m in importlib.import_module("meerkat_model.proofs.runner").ENCODINGS)
    without = [m for m in machines if m not in encoded]
    if not encoded:
        out(f"== proofs: no z3 encoding for {', '.join(machines)}; skipped")
        return None
    if without:
        out(f"== proofs: no z3 encoding for {', '.join(without)}; proving {', '.join(encoded)}")

    def started(line: str) -> None:
        raise_if_interrupted()
        if progress is not None:
            progress.write(line + "\n")
            progress.flush()

    done: list[Any] = []
    finished: list[str] = []

    def machine_done(name: str, results: list[Any]) -> None:
        finished.append(name)
        done.extend(results)

    try:
        report = proofs.run_proofs(ids=PROOF_IDS, machines=encoded, progress=started, finished=machine_done)
    except KeyboardInterrupt:
        if partial is not None:
            partial["proofs"] = _proofs_summary(out, done, finished, interrupted=True)
        raise
    return _proofs_summary(out, report.results, list(encoded))


def _proofs_summary(
    out: Callable[[str], None], found: list[Any], machines: list[str], *, interrupted: bool = False
) -> dict[str, Any]:
    """The proofs' part of the report (``found``: the results of ``machines``), also written with
    ``out``; ``interrupted``: the proofs of the other machines did not finish."""
    results = [
        {
            "name": r.name,
            "machine": r.machine,
            "status": r.status,
            "seconds": round(float(r.seconds), 4),
            "counterexample": plain(r.counterexample),
            "assumes": list(r.assumes),
        }
        for r in found
    ]
    failed = [r for r in results if r["status"] == "failed"]
    unknown = [r for r in results if r["status"] == "unknown"]
    proved = len(results) - len(failed) - len(unknown)
    conditional = [r for r in results if r["assumes"]]
    note = f" ({len(conditional)} only assuming an unproved invariant)" if conditional else ""
    heading = (
        f"{PROOF_IDS} ids, interrupted; finished: {', '.join(machines) or 'none'}"
        if interrupted
        else f"{PROOF_IDS} ids"
    )
    out(f"== proofs ({heading}): {proved} proved{note}, {len(failed)} failed, {len(unknown)} unknown")
    for r in conditional:
        out(f"   proved assuming {', '.join(r['assumes'])}: {r['machine']} {r['name']}")
    for r in failed:
        out(f"   FAILED  {r['machine']} {r['name']}: {r['counterexample']}")
    for r in unknown:
        out(f"   unknown {r['machine']} {r['name']}")
    section: dict[str, Any] = {
        "ids": PROOF_IDS,
        "machines": list(machines),
        "results": results,
        "failed": len(failed),
        "unknown": len(unknown),
    }
    if interrupted:
        section["interrupted"] = True
    return section


def _build(args: argparse.Namespace) -> tuple[list[str], int, dict[str, tuple[Any, dict[str, int]]]]:
    """Every check of the command line, before any search; raises ``UsageError``."""
    machines = select_machines(args.machines)
    overrides = parse_overrides(args.overrides, machines, args.profile)
    if args.max_states is not None and args.max_states < 1:
        raise UsageError("--max-states must be at least 1")
    workers = parse_workers(args.workers)
    if args.trace_dot is not None:
        check_output_file(args.trace_dot, "--trace-dot")
    if args.trace_json is not None:
        check_output_file(args.trace_json, "--trace-json")
    if args.trace_dot is not None and args.trace_json is not None and _same_file(args.trace_dot, args.trace_json):
        raise UsageError(
            f"--trace-dot {args.trace_dot} and --trace-json {args.trace_json} are the same file; give each its own path"
        )
    built = {}
    for name in machines:
        bounds = {**profile_bounds(args.profile, name).values, **overrides[name]}
        try:
            built[name] = (MACHINES[name](Bounds(bounds)), bounds)
        except (ValueError, TypeError) as exc:
            message = str(exc)  # a bounds error may name its machine already ("ops bound ids=-1 ...")
            raise UsageError(message if message.startswith(f"{name} ") else f"{name}: {message}") from None
    require_extra("verify")
    return machines, workers, built


def _traced(
    exploration: Exploration, violation: Violation, name: str, profile: str, bounds: dict[str, int]
) -> tuple[tuple[Exploration, list[Any], str], dict[str, Any]]:
    """The DOT trace arguments (exploration, shortest trace, title ``NAME: INVARIANT``) and the
    ``meerkat.trace`` document of ``violation`` (or stranded state) of machine ``name``."""
    steps = violation_trace(exploration, violation)
    document = trace_document(exploration, violation, steps, profile=profile, bounds=bounds, key=name)
    return (exploration, steps, f"{name}: {violation.invariant}"), document


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file (the same path, or links to one file)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def main(argv: list[str] | None = None, *, exit_at_once: bool = False) -> int:
    """Run the command with ``argv`` (default: the command line) and return its exit status;
    with ``exit_at_once`` the process ends with that status once the report is written
    (:func:`exit_now`; a usage error returns, before anything was built)."""
    args = build_parser().parse_args(argv)
    err = sys.stderr
    try:
        machines, workers, built = _build(args)
    except UsageError as exc:
        return usage_error(PROG, exc, err)

    lines: list[str] = []
    out: Callable[[str], None] = lines.append if args.json else print
    show_progress = args.progress or err.isatty()
    reports: list[dict[str, Any]] = []
    first_trace: tuple[Any, list[Any], str] | None = None
    # without a violation, the trace goes to this shallowest stranded state (one stranded with
    # give-ups preferred to one stranded only without them)
    first_stranded: tuple[Exploration, Violation, str, dict[str, int]] | None = None
    proofs: dict[str, Any] | None = None
    interrupted: str | None = None
    first_document: dict[str, Any] | None = None
    partial: dict[str, Any] = {}
    ok = True
    with latched_interrupts():
        try:
            for name, (machine, bounds) in built.items():
                interrupted = f"exploring {name}"
                raise_if_interrupted()
                progress = Progress(name, err) if show_progress else None
                exploration = explore(
                    machine,
                    symmetry=not args.no_symmetry,
                    progress=_checked(progress),
                    max_states=args.max_states,
                    workers=workers,
                    check_describe=args.check_describe,
                )
                if progress is not None:
                    progress.done(exploration.states, exploration.elapsed)
                report = summary(exploration, bounds=bounds)
                if args.compare_symmetry:
                    other = explore(machine, symmetry=args.no_symmetry, max_states=args.max_states, workers=workers)
                    reduced, full = (other, exploration) if args.no_symmetry else (exploration, other)
                    report["symmetry_comparison"] = symmetry_comparison(reduced, full)
                raise_if_interrupted()
                reports.append(report)
                out(human(report))
                ok = ok and report["ok"]
                if exploration.violations and first_trace is None:
                    first_trace, first_document = _traced(
                        exploration, exploration.violations[0], name, args.profile, bounds
                    )
                elif first_trace is None and (first_stranded is None or first_stranded[1].invariant != STRANDED):
                    found = stranded_violation(exploration)
                    if found is not None and (first_stranded is None or found.invariant == STRANDED):
                        first_stranded = (exploration, found, name, bounds)
            if not args.no_prove:
                interrupted = "running the proofs"
                proofs = run_proofs_if_available(out, machines, err if show_progress else None, partial)
                raise_if_interrupted()
            interrupted = None
        except KeyboardInterrupt:
            if show_progress:
                err.write("\n")
            ok = False
            proofs = partial.get("proofs", proofs)  # the machines whose proofs finished
    if proofs is not None and proofs["failed"]:
        ok = False
    if first_trace is None and first_stranded is not None:
        first_trace, first_document = _traced(*first_stranded[:3], args.profile, first_stranded[3])

    if args.json:
        doc = {
            "profile": args.profile,
            "symmetry": not args.no_symmetry,
            "machines": reports,
            "proofs": proofs,
            "ok": ok,
        }
        if interrupted is not None:
            doc["interrupted"] = interrupted
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif interrupted is not None:
        print(f"verify: INTERRUPTED while {interrupted} (the report above covers what finished)")
    else:
        print("verify: OK" if ok else "verify: FAILED")
    sys.stdout.flush()

    if args.trace_dot is not None:
        if first_trace is None:
            print("meerkat-verify: no violation and no stranded state, no trace written to --trace-dot", file=err)
        else:
            try:
                args.trace_dot.write_text(trace_dot(*first_trace))
            except OSError as exc:
                print(f"meerkat-verify: error: could not write --trace-dot {args.trace_dot}: {exc}", file=err)
            else:
                print(f"meerkat-verify: trace written to {args.trace_dot} ({first_trace[2]})", file=err)
    if args.trace_json is not None:
        if first_trace is None or first_document is None:
            print("meerkat-verify: no violation and no stranded state, no trace written to --trace-json", file=err)
        else:
            try:
                write_trace_json(args.trace_json, first_document)
            except OSError as exc:
                print(f"meerkat-verify: error: could not write --trace-json {args.trace_json}: {exc}", file=err)
            else:
                print(f"meerkat-verify: trace written to {args.trace_json} ({first_trace[2]})", file=err)
    if interrupted is not None:
        print(f"meerkat-verify: interrupted while {interrupted}", file=err)
        code = EXIT_INTERRUPTED
    else:
        code = EXIT_OK if ok else EXIT_FAILED
    if exit_at_once:  # the explorations and machines are still referenced here, so never freed
        exit_now(code)
    return code


def exit_now(code: int) -> NoReturn:
    """Flush the standard streams and end the process with ``code`` at once, without freeing
    what it built one object at a time (a deep exploration and the models' step memory are
    millions of objects: about 2 s of teardown for the session model's deep profile). Under a
    profiler or tracer (``python -m cProfile``, coverage) it raises ``SystemExit`` instead, so
    they still write their results at exit."""
    sys.stdout.flush()
    sys.stderr.flush()
    if sys.getprofile() is not None or sys.gettrace() is not None:
        raise SystemExit(code)
    os._exit(code)


def run() -> NoReturn:
    """The ``meerkat-verify`` command: :func:`main` on the command line, then :func:`exit_now`
    (a reader that went away ends it quietly: :func:`quiet_when_stdout_closes`)."""
    exit_now(quiet_when_stdout_closes(lambda: main(exit_at_once=True)))


if __name__ == "__main__":
    run()
