"""Benchmark of the verifier on the operation-registry model (a script, not a test).

Prints, for each profile, with/without symmetry reduction, sequential (1 worker) and parallel
(``--workers``, default: 2 on a machine with 2 or more cores): states, edges, depth, wall and
CPU seconds (the parallel CPU time includes the worker processes), states per CPU second;
then the reduction ratio, the parallel speed-up, and how the deep profile compares with its
10 s target. CPU time is reported next to wall time because the machine may be shared; the
load average is printed at the start and the end.

    python benchmarks/bench_verifier.py [--profile ci --profile deep] [--machine ops] [--workers N]
"""

from __future__ import annotations

import os
import time

from meerkat_model.catalog import MACHINES, PROFILES
from meerkat_model.cli.usage import OneLineParser, interruptible
from meerkat_model.cli.verify import default_workers
from meerkat_model.verifier import explore

DEEP_TARGET_SECONDS = 10.0


def cpu_seconds() -> float:
    """CPU time of this process and of its reaped children (the parallel workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def measure(machine_name: str, profile: str, symmetry: bool, workers: int) -> dict[str, float]:
    machine = MACHINES[machine_name](PROFILES[profile][machine_name])
    cpu = cpu_seconds()
    wall = time.perf_counter()
    e = explore(machine, symmetry=symmetry, workers=workers)
    wall = time.perf_counter() - wall
    cpu = cpu_seconds() - cpu
    assert e.complete
    return {
        "states": e.states,
        "edges": e.edges,
        "depth": e.depth,
        "wall": wall,
        "cpu": cpu,
        "rate": e.states / cpu if cpu else float("inf"),
        "ok": float(e.ok),
    }


def main() -> None:
    parser = OneLineParser(
        prog="bench_verifier.py",
        epilog="exit status: 0 done; 2 usage error; 130 interrupted (Ctrl-C)",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--profile", action="append", choices=sorted(PROFILES))
    parser.add_argument("--machine", default="ops", choices=sorted(MACHINES))
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="processes of the parallel runs (default: 1 on a 1-core machine, else 2; "
        "1 measures the sequential search only)",
    )
    args = parser.parse_args()
    profiles = args.profile or ["ci", "deep"]
    counts = [1] if args.workers <= 1 else [1, args.workers]
    print(
        f"machine {args.machine}; load average at start {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
        f"parallel runs with {args.workers} workers"
    )
    header = (
        f"{'profile':8} {'symmetry':9} {'workers':>7} {'states':>9} {'edges':>10} {'depth':>5} "
        f"{'wall s':>8} {'cpu s':>8} "
    )
    print(header + f"{'states/cpu s':>13}  invariants")
    for profile in profiles:
        runs: dict[tuple[bool, int], dict[str, float]] = {}
        for symmetry in (True, False):
            for workers in counts:
                r = measure(args.machine, profile, symmetry, workers)
                runs[symmetry, workers] = r
                print(
                    f"{profile:8} {'on' if symmetry else 'off':9} {workers:>7} {int(r['states']):>9,} "
                    f"{int(r['edges']):>10,} {int(r['depth']):>5} {r['wall']:>8.2f} {r['cpu']:>8.2f} "
                    f"{r['rate']:>13,.0f}  {'held' if r['ok'] else 'VIOLATED'}"
                )
            if len(counts) > 1:
                seq, par = runs[symmetry, 1], runs[symmetry, args.workers]
                assert (seq["states"], seq["edges"], seq["depth"]) == (par["states"], par["edges"], par["depth"])
        on, off = runs[True, 1], runs[False, 1]
        print(
            f"{profile:8} reduction: {off['states'] / on['states']:.2f}x fewer states, "
            f"{off['cpu'] / on['cpu']:.2f}x less CPU time"
        )
        for symmetry in (True, False):
            if len(counts) > 1:
                seq, par = runs[symmetry, 1], runs[symmetry, args.workers]
                print(
                    f"{profile:8} parallel speed-up (symmetry {'on' if symmetry else 'off'}, {args.workers} "
                    f"workers): {seq['wall'] / par['wall']:.2f}x wall, parallel CPU {par['cpu'] / seq['cpu']:.2f}x "
                    f"the sequential CPU"
                )
        if profile == "deep":
            best = runs[True, counts[-1]]
            print(
                f"deep with symmetry: sequential {on['wall']:.2f} s wall / {on['cpu']:.2f} s CPU; "
                + (
                    f"{args.workers} workers {best['wall']:.2f} s wall / {best['cpu']:.2f} s CPU; "
                    if len(counts) > 1
                    else ""
                )
                + f"target {DEEP_TARGET_SECONDS:.0f} s ({best['wall'] / DEEP_TARGET_SECONDS:.2f}x of target, wall)"
            )
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    raise SystemExit(interruptible(main, "bench_verifier.py"))
