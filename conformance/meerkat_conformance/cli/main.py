"""``meerkat-conformance``: run the directed scenarios, the lockstep search and the exhaustive
replay, print a report, and hold the run to its coverage floor.

    meerkat-conformance check-trace FILE...   (replay recorded event logs: cli/check_trace.py)
    meerkat-conformance [--profile fast|deep] [--machine ops|session|ownership|all]
                        [--max-examples N] [--steps N]
                        [--replay-profile tiny|small|ci|deep|probe|wide|none]
                        [--disk memory|sqlite|sqlite-unbatched|postgres]
                        [--search-disk sqlite|sqlite-unbatched|memory|postgres]
                        [--progress-every SECONDS]
                        [--seed N] [--example-db DIR]

For each machine: the directed scenarios (the shortest path to every transition the model can
reach, replayed against the runtime), then the Hypothesis search, then the replay of a model
graph. A run is reproducible: the ``fast`` profile is derandomized, and any other run is seeded
(the seed is drawn and printed when ``--seed`` is not given). When model and runtime disagree,
the minimal side-by-side trace is printed with a one-line command that runs the same search
again. For ``ownership`` the command runs the two-worker lockstep instead (seeded random walks
of two workers on one SQLite file against the ownership model: claims, takeovers, crashes,
unknown write outcomes, refused claims and a stale process of the same owner). ``all`` (the
default) runs ops, session, then ownership.
The coverage floor: a run fails when it fires fewer than all the transitions the
scenarios found reachable, and the report names the ones it missed.

Exit status: 0 when model and runtime agreed everywhere and every reachable transition fired, 1
on a disagreement or a missed floor, 2 on a usage error (checked before any search) or a missing
``conformance`` extra, 130 when interrupted with Ctrl-C (the partial report is printed first).
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meerkat_model.catalog import PROFILES as MODEL_PROFILES
from meerkat_model.cli.extras import require_extra
from meerkat_model.cli.paths import check_output_dir
from meerkat_model.cli.usage import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    OneLineParser,
    UsageError,
    int_at_least,
    quiet_when_stdout_closes,
    seconds_at_least,
    usage_error,
)

from meerkat_conformance.cli.progress import ProgressLine
from meerkat_conformance.cli.report import format_report
from meerkat_conformance.cli.suites import SUITES, Suite
from meerkat_conformance.lockstep.disks import DISK_KINDS, DiskKind
from meerkat_conformance.lockstep.profiles import PROFILES, Profile
from meerkat_conformance.lockstep.tally import MachineTally
from meerkat_conformance.stores.backend import PG_DSN_ENV

PROG = "meerkat-conformance"
OWNERSHIP = "ownership"
ALL = (*SUITES, OWNERSHIP)
"""The machines ``--machine all`` runs, in order."""
MIN_PROGRESS_EVERY = 0.1
SEED_LIMIT = 2**32


def _profile_help() -> str:
    return "\n".join(
        f"  {p.name:<5} {p.duration:<17} {p.examples} examples (x4 for session) of {p.steps} steps, "
        f"{'derandomized' if p.derandomize else 'random (seeded)'}, replay {p.replay_profile}"
        for p in PROFILES.values()
    )


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=PROG,
        description="Check that the production runtime behaves exactly like the reference model: a Hypothesis "
        "lockstep search with crashes and store faults, then the replay of every edge of a model graph.\n\n"
        f"The other command: {PROG} check-trace [--json] FILE... checks recorded event logs\n"
        f"against the model (see {PROG} check-trace --help).",
        epilog=(
            "profiles (how long the whole command runs on 2 cores, every machine):\n"
            f"{_profile_help()}\n"
            "Each machine runs its directed scenarios, then the search, then the replay of a model graph.\n"
            "Progress lines go to stderr; the report to stdout. A failure prints the minimal trace and a\n"
            "one-line command that reproduces it (seed, profile, machine, budgets).\n\n"
            "exit status: 0 model and runtime agreed and every reachable transition fired; 1 a disagreement\n"
            "or a missed coverage floor; 2 usage error (checked before the search) or the 'conformance' extra\n"
            "missing; 130 interrupted with Ctrl-C (partial report printed)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="deep",
        help="search profile (default: deep, " + PROFILES["deep"].duration + ")",
    )
    p.add_argument(
        "--machine",
        choices=[*SUITES, OWNERSHIP, "all"],
        default="all",
        help=f"which machine (default: all, which is {', '.join(ALL[:-1])} and {ALL[-1]}, in that order); "
        f"{OWNERSHIP}: the two-worker lockstep (seeded walks of two workers on one store: claims, takeovers, "
        "crashes, unknown write outcomes, claims against a live lease, writes of a stale process of the same "
        "owner; --max-examples walks of --steps steps, seeds from --seed)",
    )
    p.add_argument(
        "--max-examples",
        type=int_at_least(1),
        default=None,
        metavar="N",
        help="Hypothesis examples per machine, at least 1 (default: the profile's)",
    )
    p.add_argument(
        "--steps",
        type=int_at_least(1),
        default=None,
        metavar="N",
        help="steps per example, at least 1 (default: the profile's)",
    )
    p.add_argument(
        "--replay-profile",
        default=None,
        metavar="NAME",
        help=f"model profile whose reachable graph is replayed edge by edge ({', '.join(MODEL_PROFILES)}, or "
        "'none' to skip; default: the search profile's: small for fast, ci for deep)",
    )
    p.add_argument(
        "--disk",
        choices=DISK_KINDS,
        default="memory",
        help=f"store under the replay (default: memory; postgres: a fresh schema on the server {PG_DSN_ENV} names)",
    )
    p.add_argument(
        "--search-disk",
        choices=DISK_KINDS,
        default="sqlite",
        help="store under the Hypothesis search (default: sqlite, with group commit on; sqlite-unbatched: off)",
    )
    p.add_argument(
        "--progress-every",
        type=seconds_at_least(MIN_PROGRESS_EVERY),
        default=2.0,
        metavar="SECONDS",
        help=f"seconds between progress lines on stderr, at least {MIN_PROGRESS_EVERY:g} (default: 2)",
    )
    p.add_argument(
        "--seed",
        type=int_at_least(0),
        default=None,
        metavar="N",
        help="seed of the Hypothesis search (and of the first ownership walk): the same seed, profile and budgets "
        "run the same examples (default: "
        "derandomized for fast, a random seed printed at the start for deep)",
    )
    p.add_argument(
        "--example-db",
        type=Path,
        default=None,
        metavar="DIR",
        help="Hypothesis example database directory (created, with missing parents, before the search): failing "
        "examples are saved there and tried first on the next run (default: none)",
    )
    return p


@dataclass(frozen=True, slots=True)
class _Run:
    """The effective settings of one command (what a reproduction needs)."""

    profile: Profile
    replay_profile: str
    disk: DiskKind
    search_disk: DiskKind
    seed: int | None
    steps: int
    steps_given: int | None
    examples: int | None
    example_db: Path | None
    progress_every: float

    def reproduce(self, machine: str, examples: int) -> str:
        """A one-line command that runs ``machine``'s search and replay exactly as this run did."""
        words = [PROG, "--profile", self.profile.name, "--machine", machine]
        if self.seed is not None:
            words += ["--seed", str(self.seed)]
        words += ["--max-examples", str(examples), "--steps", str(self.steps)]
        words += ["--replay-profile", self.replay_profile, "--disk", self.disk]
        if self.search_disk != "sqlite":
            words += ["--search-disk", self.search_disk]
        if self.example_db is not None:
            words += ["--example-db", str(self.example_db)]
        return shlex.join(words)


def _settings(args: argparse.Namespace) -> _Run:
    """Every check of the command line, before any search; raises ``UsageError``."""
    profile = PROFILES[args.profile]
    replay_profile = args.replay_profile or profile.replay_profile
    if replay_profile != "none" and replay_profile not in MODEL_PROFILES:
        raise UsageError(f"unknown model profile {replay_profile!r}; known: {', '.join(MODEL_PROFILES)}, none")
    if args.example_db is not None:
        check_output_dir(args.example_db, "--example-db")
    seed = args.seed
    if seed is None and (not profile.derandomize or args.example_db is not None):
        seed = random.SystemRandom().randrange(SEED_LIMIT)
    require_extra("conformance")
    if "postgres" in (args.disk, args.search_disk):
        if not os.environ.get(PG_DSN_ENV):
            raise UsageError(f"the postgres disk needs a server: set {PG_DSN_ENV} to a libpq connection string")
        require_extra("postgres")
    if args.example_db is not None:  # every check passed: create it (with its parents) before the search
        args.example_db.mkdir(parents=True, exist_ok=True)
    return _Run(
        profile=profile,
        replay_profile=replay_profile,
        disk=args.disk,
        search_disk=args.search_disk,
        seed=seed,
        steps=args.steps if args.steps is not None else profile.steps,
        steps_given=args.steps,
        examples=args.max_examples,
        example_db=args.example_db,
        progress_every=args.progress_every,
    )


def _replay(suite: Suite, profile: str, disk: DiskKind, every: float, tally: MachineTally) -> None:
    from meerkat_model.verifier import explore

    from meerkat_conformance.lockstep.stateful import fresh_tally
    from meerkat_conformance.replay.walk import ReplayProgress, replay_graph

    bounds = MODEL_PROFILES[profile].get(suite.name)
    if bounds is None:
        print(f"[{suite.name} replay] the model profile {profile!r} has no bounds for {suite.name}", file=sys.stderr)
        return
    machine = suite.model(bounds)
    started = time.perf_counter()
    graph = explore(machine).graph()
    print(
        f"[{suite.name} replay] {profile} graph: {graph.number_of_nodes()} states, {graph.number_of_edges()} edges "
        f"({time.perf_counter() - started:.1f}s to explore)",
        file=sys.stderr,
        flush=True,
    )

    def show(p: ReplayProgress) -> None:
        print(
            f"[{suite.name} replay] {p.elapsed:7.1f}s  edges {p.edges_covered}/{p.edges_total}  steps {p.steps}  "
            f"restarts {p.restarts}",
            file=sys.stderr,
            flush=True,
        )

    extra: dict[str, Any] = {} if suite.steer is None else {"steer": suite.steer}
    replay_tally = fresh_tally(machine)
    try:
        result = replay_graph(
            machine,
            graph,
            lambda: suite.make_adapter(machine, disk),
            progress=show,
            progress_every=every,
            tally=replay_tally,
            **extra,
        )
    finally:
        tally.merge(replay_tally)
    if result.unsteerable_nodes:
        print(
            f"[{suite.name} replay] {result.unsteerable_nodes} state(s) the runtime never rests in "
            f"(it acts on its own at once); {len(result.uncovered_edges)} edge(s) left uncovered",
            file=sys.stderr,
        )


def _ownership_walks(run: _Run, tally: MachineTally, walking: list[str]) -> None:
    """The two-worker walks: the profile's seeds (or ``--seed``, ``--seed + 1``, ...), as many
    as ``--max-examples`` says (default: the profile's), each of ``--steps`` steps (default: the
    profile's). Raises ``Disagreement``; ``walking`` then ends with the command that runs the
    failing walk alone."""
    from meerkat_conformance.ownership.walk import WALKS, walk

    seeds, default_steps = WALKS[run.profile.name]
    count = run.examples if run.examples is not None else len(seeds)
    steps = run.steps_given if run.steps_given is not None else default_steps
    first = seeds[0] if run.seed is None else run.seed
    started = time.perf_counter()
    for seed in range(first, first + count):
        words = [PROG, "--profile", run.profile.name, "--machine", OWNERSHIP, "--seed", str(seed)]
        walking.append(shlex.join([*words, "--max-examples", "1", "--steps", str(steps)]))
        walk(seed, steps, tally=tally)
        print(
            f"[{OWNERSHIP} walks] {time.perf_counter() - started:7.1f}s  walk {seed - first + 1}/{count} (seed {seed})"
            f"  steps {tally.steps}  transitions {len(tally.covered)}/{len(tally.transitions)}  crashes "
            f"{tally.crashes}  faults {tally.faults}",
            file=sys.stderr,
            flush=True,
        )


def _announce(run: _Run, names: list[str]) -> None:
    seed = "derandomized (no seed)" if run.seed is None else f"seed {run.seed}"
    db = "" if run.example_db is None else f", example database {run.example_db}"
    where = f", replay {run.replay_profile} on {run.disk}, search on {run.search_disk}{db}"
    if OWNERSHIP in names:
        searched = any(name in SUITES for name in names)
        where = f"{where}, {OWNERSHIP} walks on sqlite" if searched else ", walks on sqlite"
    print(
        f"{PROG}: profile {run.profile.name} ({run.profile.duration} for every machine), machine(s) "
        f"{', '.join(names)}, {seed}{where}; Ctrl-C stops with the partial report",
        file=sys.stderr,
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    """The ``meerkat-conformance`` command (``check-trace`` its subcommand); a reader that went
    away ends it quietly (:func:`~meerkat_model.cli.usage.quiet_when_stdout_closes`)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "check-trace":
        from meerkat_conformance.cli.check_trace import main as check_trace_main

        return quiet_when_stdout_closes(lambda: check_trace_main(argv[1:]))
    args = _parser().parse_args(argv)
    return quiet_when_stdout_closes(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    try:
        run = _settings(args)
    except UsageError as exc:
        return usage_error(PROG, exc)

    from meerkat_model.cli.interrupts import latched_interrupts

    from meerkat_conformance.cli.directed import run_directed
    from meerkat_conformance.lockstep.runner import run_lockstep, search_examples
    from meerkat_conformance.lockstep.stateful import fresh_tally
    from meerkat_conformance.lockstep.trace import Disagreement

    names = list(ALL) if args.machine == "all" else [args.machine]
    _announce(run, names)
    tallies: list[MachineTally] = []
    failed: list[str] = []
    reproduce: list[str] = []
    interrupted: str | None = None
    started = time.perf_counter()
    with latched_interrupts():
        for name in names:
            if name == OWNERSHIP:
                from meerkat_model.ownership.machine import OwnershipMachine

                from meerkat_conformance.ownership.walk import WALK_BOUNDS

                tally = fresh_tally(OwnershipMachine(WALK_BOUNDS))
                tallies.append(tally)
                phase = "walks"
                walking: list[str] = []
                try:
                    _ownership_walks(run, tally, walking)
                except Disagreement as disagreement:
                    failed.append(name)
                    reproduce.append(walking[-1])
                    print(str(disagreement), end="\n\n")
                    print(f"reproduce with: {reproduce[-1]}", end="\n\n", flush=True)
                except KeyboardInterrupt:
                    interrupted = f"{name} {phase}"
                    break
                continue
            suite = SUITES[name]
            lockstep_class = suite.load_lockstep()
            examples = run.examples if run.examples is not None else search_examples(lockstep_class, run.profile)
            tally = fresh_tally(suite.model(lockstep_class.BOUNDS))
            tallies.append(tally)
            progress = ProgressLine(f"{name} search", every=run.progress_every, target=examples)
            phase = "scenarios"
            try:
                run_directed(suite, lockstep_class, tally, run.disk, (run.search_disk,))
                phase = "search"
                run_lockstep(
                    lockstep_class,
                    run.profile,
                    tally,
                    examples=examples,
                    steps=run.steps,
                    progress=progress,
                    seed=run.seed,
                    database=run.example_db,
                    disk=run.search_disk,
                )
                if run.replay_profile != "none":
                    phase = "replay"
                    _replay(suite, run.replay_profile, run.disk, run.progress_every, tally)
            except Disagreement as disagreement:
                failed.append(name)
                reproduce.append(run.reproduce(name, examples))
                print(str(disagreement), end="\n\n")
                print(f"reproduce with: {reproduce[-1]}", end="\n\n", flush=True)
            except KeyboardInterrupt:
                interrupted = f"{name} {phase}"
                break
    elapsed = time.perf_counter() - started
    floors = [t for t in tallies if t.machine not in failed and t.below_floor] if interrupted is None else []
    if interrupted is not None:
        verdict = f"INTERRUPTED during the {interrupted} (partial)"
    elif failed or floors:
        parts = [f"FAILED on {', '.join(failed)}"] if failed else []
        parts += [f"coverage floor missed on {t.machine} ({', '.join(t.below_floor)})" for t in floors]
        verdict = "; ".join(parts)
    else:
        verdict = "passed"
    seed = "derandomized" if run.seed is None else f"seed {run.seed}"
    stopped = {name: "at a disagreement" for name in failed}
    if interrupted is not None:
        stopped.update({t.machine: "interrupted" for t in tallies if t.machine not in stopped})
    print(
        format_report(
            tallies,
            title=f"conformance report: {verdict}; profile {run.profile.name}, {seed}, replay {run.replay_profile}, "
            f"{elapsed:.1f}s",
            stopped=stopped,
        )
    )
    for line in reproduce:
        print(f"reproduce with: {line}")
    sys.stdout.flush()
    if interrupted is not None:
        print(f"{PROG}: interrupted during the {interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED
    for t in floors:
        print(
            f"{PROG}: coverage floor missed on {t.machine}: {len(t.below_floor)} of {len(t.reachable)} reachable "
            f"transitions never fired: {', '.join(t.below_floor)}",
            file=sys.stderr,
        )
    return EXIT_FAILED if failed or floors else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
