"""``meerkat-conformance``: run the lockstep search and the exhaustive replay, print a report.

    meerkat-conformance [--profile fast|deep] [--machine ops|session|all]
                        [--max-examples N] [--steps N] [--replay-profile tiny|ci|deep|none]
                        [--disk sqlite|memory] [--progress-every SECONDS]

Exit status: 0 when model and runtime agreed everywhere, 1 on a disagreement (its minimal
side-by-side trace is printed), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from meerkat_model.catalog import PROFILES as MODEL_PROFILES

from meerkat_conformance.cli.progress import ProgressLine
from meerkat_conformance.cli.report import format_report
from meerkat_conformance.cli.suites import SUITES, Suite
from meerkat_conformance.lockstep.profiles import PROFILES, get_profile
from meerkat_conformance.lockstep.runner import run_lockstep
from meerkat_conformance.lockstep.stateful import fresh_tally
from meerkat_conformance.lockstep.tally import MachineTally
from meerkat_conformance.lockstep.trace import Disagreement
from meerkat_conformance.replay.walk import ReplayProgress, replay_graph


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="meerkat-conformance",
        description="Check that the production runtime behaves exactly like the reference model.",
    )
    p.add_argument("--profile", choices=sorted(PROFILES), default="deep", help="search profile (default: deep)")
    p.add_argument("--machine", choices=[*SUITES, "all"], default="all", help="which machine (default: all)")
    p.add_argument("--max-examples", type=int, default=None, help="Hypothesis examples (overrides the profile)")
    p.add_argument("--steps", type=int, default=None, help="steps per example (overrides the profile)")
    p.add_argument(
        "--replay-profile",
        default=None,
        help="model profile whose reachable graph is replayed edge by edge ('none' to skip; default: the "
        "search profile's replay profile)",
    )
    p.add_argument("--disk", choices=["sqlite", "memory"], default="memory", help="store under the replay")
    p.add_argument("--progress-every", type=float, default=2.0, help="seconds between progress lines")
    return p


def _replay(suite: Suite, profile: str, disk: Any, every: float, tally: MachineTally) -> None:
    from meerkat_model.verifier import explore

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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    profile = get_profile(args.profile)
    replay_profile = args.replay_profile or profile.replay_profile
    if replay_profile != "none" and replay_profile not in MODEL_PROFILES:
        print(
            f"meerkat-conformance: unknown model profile {replay_profile!r}; known: {', '.join(MODEL_PROFILES)}, none",
            file=sys.stderr,
        )
        return 2
    names = list(SUITES) if args.machine == "all" else [args.machine]
    tallies: list[MachineTally] = []
    failed: list[str] = []
    started = time.perf_counter()
    for name in names:
        suite = SUITES[name]
        lockstep_class = suite.load_lockstep()
        tally = fresh_tally(suite.model(lockstep_class.BOUNDS))
        tallies.append(tally)
        progress = ProgressLine(f"{name} search", every=args.progress_every)
        try:
            run_lockstep(
                lockstep_class, profile, tally, examples=args.max_examples, steps=args.steps, progress=progress
            )
            if replay_profile != "none":
                _replay(suite, replay_profile, args.disk, args.progress_every, tally)
        except Disagreement as disagreement:
            failed.append(name)
            print(str(disagreement), end="\n\n")
    elapsed = time.perf_counter() - started
    verdict = f"FAILED on {', '.join(failed)}" if failed else "passed"
    print(
        format_report(
            tallies,
            title=f"conformance report: {verdict}; profile {profile.name}, replay {replay_profile}, {elapsed:.1f}s",
        )
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
