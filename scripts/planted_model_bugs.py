"""Which of the verifier, the differential check and the conformance harness finds each planted
model bug of ``tests/proofs/model_bugs.py`` (the table in docs/proofs.md).

For each bug: the verifier explores the variant under the bug's profile (the checks that fire);
the differential check compares the variant with its z3 encoding on the states of that trace
(or, for a bug no verifier check sees, every state of a small profile); the harness replays the
variant's reachable graph (the same bounds) against the real runtime, and reports whether the
model and the runtime disagree (a harness catches a model bug exactly where it exercises it).

    python scripts/planted_model_bugs.py [--only NAME]... [--replay-seconds S]
    python scripts/planted_model_bugs.py --show NAME

``--show NAME`` prints instead what ``meerkat-verify`` reports on the model with that one bug
planted (explored under the bug's profile): the invariant it violates and the shortest trace to
it. Exit status: 0 (the table, or a ``--show`` report with no violation); 1 a ``--show`` report
with a violation (as ``meerkat-verify``); 2 a usage error (one line); 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from meerkat_conformance.lockstep.disks import make_disk
from meerkat_conformance.lockstep.trace import Disagreement
from meerkat_conformance.ops.adapter import OpsAdapter
from meerkat_conformance.replay.walk import ReplayProgress, replay_graph
from meerkat_conformance.session.adapter import SessionAdapter, harness_action
from meerkat_model.catalog import PROFILES
from meerkat_model.cli.usage import OneLineParser, interruptible, seconds_at_least
from meerkat_model.proofs.abstractions import ABSTRACTIONS
from meerkat_model.proofs.differential import compare
from meerkat_model.proofs.runner import ENCODINGS
from meerkat_model.verifier import explore, summary
from meerkat_model.verifier.report import human
from meerkat_model.verifier.trace import violation_trace

from tests.proofs.model_bugs import PLANTED
from tests.proofs.test_planted_model_bugs import ACCEPT_BOUNDS


class _OutOfTime(Exception):
    pass


def _bug_name(raw: str) -> str:
    """An argparse ``type``: the name of a planted bug."""
    known = [bug.name for bug in PLANTED]
    if raw not in known:
        raise argparse.ArgumentTypeError(f"unknown bug {raw!r}; known: {', '.join(known)}")
    return raw


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="planted_model_bugs.py",
        description="Which of the verifier, the differential check and the conformance harness finds each "
        "planted model bug of tests/proofs/model_bugs.py (the table in docs/proofs.md).",
        epilog="exit status: 0 the table printed, or a --show report without a violation; 1 a --show report\n"
        "with a violation (as meerkat-verify); 2 usage error; 130 interrupted with Ctrl-C",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--only", action="append", type=_bug_name, metavar="NAME", help="only this bug (repeatable; default: all)"
    )
    parser.add_argument(
        "--replay-seconds",
        type=seconds_at_least(1),
        default=120.0,
        metavar="S",
        help="budget of each replay in seconds (default: 120)",
    )
    parser.add_argument(
        "--show",
        type=_bug_name,
        metavar="NAME",
        help="print meerkat-verify's report (with the shortest trace) on the model with bug NAME planted, "
        "explored under the bug's profile, instead of the table",
    )
    return parser


def show(name: str) -> int:
    """``meerkat-verify``'s text report on the model with bug ``name`` planted."""
    bug = next(b for b in PLANTED if b.name == name)
    bounds = PROFILES[bug.profile][bug.machine] if bug.profile else ACCEPT_BOUNDS
    profile = bug.profile or "tiny, control=1 (no profile finds it)"
    print(f"# {bug.name} ({bug.machine}, profile {profile}): {bug.description}")
    report = summary(explore(bug.variant(bounds)), bounds=dict(bounds.values))
    print(human(report))
    print("verify: OK" if report["ok"] else "verify: FAILED")
    return 0 if report["ok"] else 1


def main() -> int:
    args = build_parser().parse_args()
    if args.show:
        return interruptible(lambda: show(args.show), "planted_model_bugs.py")
    return interruptible(lambda: table(args), "planted_model_bugs.py")


def table(args: argparse.Namespace) -> int:
    print("bug | verifier | z3 (differential) | harness (replay)")
    for bug in PLANTED:
        if args.only and bug.name not in args.only:
            continue
        t0 = time.perf_counter()
        bounds = PROFILES[bug.profile][bug.machine] if bug.profile else ACCEPT_BOUNDS
        model = bug.variant(bounds)
        e = explore(model)
        fired = sorted({v.invariant for v in e.violations} & bug.checks) if bug.profile else []
        verifier = f"{bug.profile}: {', '.join(fired)}" if fired else "no"
        if bug.profile and fired:
            v = next(v for v in e.violations if v.invariant in bug.checks)
            states = [model.initial_state(), *(st.state for st in violation_trace(e, v)), e.state_list[v.state_index]]
        else:
            states = e.state_list
        abstraction = ABSTRACTIONS[bug.machine]()
        report = compare(model, ENCODINGS[bug.machine](abstraction.ids(model)), abstraction, states, limit=1)
        z3 = "yes" if report.drifts else "no"
        # the replay walks concrete states: without symmetry reduction, so a variant that breaks
        # the symmetry (one that depends on id order) is replayed as it behaves
        graph = explore(model, symmetry=False).graph()
        budget = args.replay_seconds

        def stop(progress: ReplayProgress, budget: float = budget) -> None:
            if progress.elapsed > budget:
                raise _OutOfTime(f"{progress.edges_covered}/{progress.edges_total} edges")

        try:
            if bug.machine == "ops":
                replay_graph(model, graph, lambda m=model: OpsAdapter(m, make_disk("memory")), progress=stop)
            else:
                replay_graph(
                    model,
                    graph,
                    lambda m=model: SessionAdapter(m, make_disk("memory")),
                    steer=harness_action,
                    progress=stop,
                )
            harness = "no"
        except _OutOfTime as exc:
            harness = f"no disagreement within {budget:.0f} s ({exc})"
        except Disagreement as exc:
            harness = f"yes ({exc.reason[:60]})"
        except Exception as exc:  # the harness could not drive the variant at all
            harness = f"error: {type(exc).__name__}: {str(exc)[:60]}"
        print(f"{bug.name} | {verifier} | {z3} | {harness}   [{time.perf_counter() - t0:.0f} s]", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
