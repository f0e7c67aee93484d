"""``meerkat-verify``: enumerate every reachable state of the lifecycle model and check every
invariant, then run the z3 proofs.

Exit status: 0 when every invariant held on every reachable state and no proof failed; 1 when
an invariant was violated (the shortest trace is printed), an exploration hit ``--max-states``
or a proof failed; 2 for a usage error (unknown profile, machine or bound, bad bound value).
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
from typing import Any, TextIO

from meerkat_model.catalog import MACHINES, PROFILES
from meerkat_model.machine import Bounds
from meerkat_model.verifier import explore, shortest_trace, summary, symmetry_comparison
from meerkat_model.verifier.report import human, plain, trace_dot
from meerkat_model.verifier.trace_json import trace_document, write_trace_json

DEFAULT_PROFILE = "ci"
PROGRESS_INTERVAL = 0.5
PROOF_IDS = 8


class UsageError(Exception):
    """A command-line mistake; reported with exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meerkat-verify",
        description=(
            "Explore every reachable state of the lifecycle model machines breadth-first to a fixed point, "
            "check every invariant on every state (printing the shortest trace to any violation), report "
            "transition coverage and stuck states, then run the z3 proofs."
        ),
        epilog=(
            "examples:\n"
            "  meerkat-verify                         profile ci, every machine, then the proofs\n"
            "  meerkat-verify --profile deep --machine ops --no-prove\n"
            "  meerkat-verify --machine ops --set ids=3 --set ops.sequences=2\n"
            "  meerkat-verify --json > report.json\n"
            "  meerkat-verify --workers 1             sequential search (default: auto, 2 processes on 2+ cores)\n"
            "\nexit status: 0 all invariants hold and no proof failed; 1 otherwise; 2 usage error"
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
        help="override one bound of the profile (repeatable). KEY applies to every selected machine whose "
        "profile has it; MACHINE.KEY to one machine. VALUE is an integer",
    )
    parser.add_argument("--no-symmetry", action="store_true", help="explore without symmetry reduction")
    parser.add_argument(
        "--compare-symmetry",
        action="store_true",
        help="explore with and without symmetry reduction; report the reduction ratio and whether both agree",
    )
    parser.add_argument("--no-prove", action="store_true", help="skip the z3 proofs")
    parser.add_argument("--json", action="store_true", help="print a machine-readable JSON report on stdout")
    parser.add_argument(
        "--trace-dot",
        metavar="PATH",
        type=Path,
        help="write the shortest trace to the first violation as a Graphviz DOT file",
    )
    parser.add_argument(
        "--trace-json",
        metavar="PATH",
        type=Path,
        help="write the shortest trace to the first violation as JSON (format meerkat.trace: every field of "
        "every step; open it in the state explorer page)",
    )
    parser.add_argument(
        "--progress",
        action="store_true",
        help="print progress lines on stderr even when it is not a terminal",
    )
    parser.add_argument(
        "--workers",
        default="auto",
        metavar="N",
        help="processes exploring each machine: an integer, or auto (default: 1 on a 1-core machine, else 2). "
        "With N > 1 the search is level-synchronous and hash-partitioned over N forked processes",
    )
    parser.add_argument(
        "--max-states",
        type=int,
        metavar="N",
        help="stop an exploration after N states (reported as incomplete, exit status 1)",
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
    """``KEY=VALUE`` / ``MACHINE.KEY=VALUE`` items -> bounds per machine; names what is wrong."""
    known = {m: set(PROFILES[profile].get(m, Bounds()).values) for m in machines}
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
            if target not in machines:
                raise UsageError(f"--set {item!r}: machine {target!r} is not selected ({', '.join(machines)})")
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
    """Throttled progress lines on a stream (rewritten in place on a terminal)."""

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
        line = f"{self.machine}: {states:,} states, frontier {frontier:,}, {rate:,.0f} states/s, {elapsed:.1f}s"
        self.stream.write(("\r" + line + "\x1b[K") if self.tty else line + "\n")
        self.stream.flush()
        self.wrote = True

    def done(self) -> None:
        if self.wrote and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def run_proofs_if_available(out: Callable[[str], None]) -> dict[str, Any] | None:
    """Run ``meerkat_model.proofs.run_proofs`` when that module exists (``None`` otherwise)."""
    if importlib.util.find_spec("meerkat_model.proofs") is None:
        out("== proofs: meerkat_model.proofs is not available; skipped")
        return None
    proofs = importlib.import_module("meerkat_model.proofs")
    report = proofs.run_proofs(ids=PROOF_IDS)
    results = [
        {
            "name": r.name,
            "machine": r.machine,
            "status": r.status,
            "seconds": round(float(r.seconds), 4),
            "counterexample": plain(r.counterexample),
        }
        for r in report.results
    ]
    failed = [r for r in results if r["status"] == "failed"]
    unknown = [r for r in results if r["status"] == "unknown"]
    proved = len(results) - len(failed) - len(unknown)
    out(f"== proofs ({PROOF_IDS} ids): {proved} proved, {len(failed)} failed, {len(unknown)} unknown")
    for r in failed:
        out(f"   FAILED  {r['machine']} {r['name']}: {r['counterexample']}")
    for r in unknown:
        out(f"   unknown {r['machine']} {r['name']}")
    return {"ids": PROOF_IDS, "results": results, "failed": len(failed), "unknown": len(unknown)}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    err = sys.stderr
    try:
        machines = select_machines(args.machines)
        overrides = parse_overrides(args.overrides, machines, args.profile)
        if args.max_states is not None and args.max_states < 1:
            raise UsageError("--max-states must be at least 1")
        workers = parse_workers(args.workers)
        built = {}
        for name in machines:
            bounds = {**PROFILES[args.profile].get(name, Bounds()).values, **overrides[name]}
            try:
                built[name] = (MACHINES[name](Bounds(bounds)), bounds)
            except (ValueError, TypeError) as exc:
                raise UsageError(f"{name}: {exc}") from None
    except UsageError as exc:
        parser.print_usage(err)
        print(f"meerkat-verify: error: {exc}", file=err)
        return 2

    lines: list[str] = []
    out: Callable[[str], None] = lines.append if args.json else print
    show_progress = args.progress or err.isatty()
    reports: list[dict[str, Any]] = []
    first_trace: tuple[Any, list[Any], str] | None = None
    first_document: dict[str, Any] | None = None
    ok = True
    for name, (machine, bounds) in built.items():
        progress = Progress(name, err) if show_progress else None
        exploration = explore(
            machine, symmetry=not args.no_symmetry, progress=progress, max_states=args.max_states, workers=workers
        )
        if progress is not None:
            progress.done()
        report = summary(exploration, bounds=bounds)
        if args.compare_symmetry:
            other = explore(machine, symmetry=args.no_symmetry, max_states=args.max_states, workers=workers)
            reduced, full = (other, exploration) if args.no_symmetry else (exploration, other)
            report["symmetry_comparison"] = symmetry_comparison(reduced, full)
        reports.append(report)
        out(human(report))
        ok = ok and report["ok"]
        if exploration.violations and first_trace is None:
            v = exploration.violations[0]
            first_trace = (
                exploration,
                shortest_trace(exploration, exploration.state_list[v.state_index]),
                f"{name}: {v.invariant}",
            )
            first_document = trace_document(
                exploration, v, first_trace[1], profile=args.profile, bounds=bounds, key=name
            )

    proofs = None if args.no_prove else run_proofs_if_available(out)
    if proofs is not None and proofs["failed"]:
        ok = False
    if args.trace_dot is not None:
        if first_trace is None:
            print("meerkat-verify: no violation, no trace written to --trace-dot", file=err)
        else:
            args.trace_dot.write_text(trace_dot(*first_trace))
            print(f"meerkat-verify: trace written to {args.trace_dot}", file=err)
    if args.trace_json is not None:
        if first_document is None:
            print("meerkat-verify: no violation, no trace written to --trace-json", file=err)
        else:
            write_trace_json(args.trace_json, first_document)
            print(f"meerkat-verify: trace written to {args.trace_json}", file=err)

    if args.json:
        doc = {
            "profile": args.profile,
            "symmetry": not args.no_symmetry,
            "machines": reports,
            "proofs": proofs,
            "ok": ok,
        }
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print("verify: OK" if ok else "verify: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
