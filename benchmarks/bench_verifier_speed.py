"""Side-by-side timing of the deep verifier profiles: this tree against a baseline revision (a
script, not a test).

For each machine (default: ops and session) the ``deep`` profile (or ``--profile``) is explored with symmetry
reduction, sequentially (1 worker) and in parallel (``--workers``, default 2), once with the
model package of this tree and once with the model package of ``--baseline`` (a git revision,
default ``87e94b2``: the revision before the search and step fast paths). The baseline is
extracted with ``git archive`` into a temporary folder and imported from there (``PYTHONPATH``
comes before the editable install). Every run is a fresh process, the two versions alternate,
and each figure is the best of ``--repeat`` runs (the machine may be shared). Printed per run:
states, edges, wall and CPU seconds (the parallel CPU includes the workers); then the speed-up
per row. The state and edge counts of both versions must agree, else the script exits 1.

    python benchmarks/bench_verifier_speed.py [--machine ops] [--profile deep] [--baseline REV] [--workers N]
        [--repeat K]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from meerkat_model.cli.usage import OneLineParser, interruptible

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BASELINE = "87e94b2"

_RUN = """
import json, os, sys, time
import meerkat_model
from meerkat_model.catalog import MACHINES, PROFILES
from meerkat_model.verifier import explore
name, workers, profile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
machine = MACHINES[name](PROFILES[profile][name])
def cpu():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system
started, wall = cpu(), time.perf_counter()
e = explore(machine, symmetry=True, workers=workers)
wall, spent = time.perf_counter() - wall, cpu() - started
violations = sorted(v.invariant for v in e.violations)
print(json.dumps({"states": e.states, "edges": e.edges, "violations": violations,
                  "wall": wall, "cpu": spent, "source": meerkat_model.__file__}))
"""


def run(model_path: Path, machine: str, workers: int, profile: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(model_path)}
    out = subprocess.run(
        [sys.executable, "-c", _RUN, machine, str(workers), profile],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    if not str(result["source"]).startswith(str(model_path)):
        raise SystemExit(f"bench_verifier_speed.py: imported {result['source']}, not the tree under {model_path}")
    return result


def main() -> int:
    parser = OneLineParser(
        prog="bench_verifier_speed.py",
        epilog="exit status: 0 done; 1 the versions disagree; 2 usage error; 130 interrupted (Ctrl-C)",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--machine", action="append", choices=["ops", "session", "ownership"])
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help=f"git revision (default {DEFAULT_BASELINE})")
    parser.add_argument("--profile", default="deep", choices=["ci", "deep"], help="catalog profile (default deep)")
    parser.add_argument("--workers", type=int, default=2, help="processes of the parallel runs (default 2)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per figure, the best kept (default 1)")
    args = parser.parse_args()
    machines = args.machine or ["ops", "session"]
    counts = [1] if args.workers <= 1 else [1, args.workers]
    print(f"load average at start {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; baseline {args.baseline}")
    print(f"profile {args.profile}")
    print(f"{'machine':8} {'workers':>7} {'version':9} {'states':>9} {'edges':>10} {'wall s':>8} {'cpu s':>8}")
    agree = True
    with tempfile.TemporaryDirectory(prefix="bench-verifier-") as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.baseline, "model/meerkat_model"], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        trees = {"baseline": Path(tmp) / "model", "this": ROOT / "model"}
        for machine in machines:
            for workers in counts:
                best: dict[str, dict[str, object]] = {}
                for _ in range(args.repeat):
                    for version, path in trees.items():
                        r = run(path, machine, workers, args.profile)
                        if version not in best or float(r["wall"]) < float(best[version]["wall"]):  # type: ignore[arg-type]
                            best[version] = r
                for version, r in best.items():
                    print(
                        f"{machine:8} {workers:>7} {version:9} {r['states']:>9,} {r['edges']:>10,} "
                        f"{r['wall']:>8.2f} {r['cpu']:>8.2f}"
                    )
                old, new = best["baseline"], best["this"]
                same = all(old[k] == new[k] for k in ("states", "edges", "violations"))
                agree = agree and same
                print(
                    f"{machine:8} {workers:>7} speed-up  {float(old['wall']) / float(new['wall']):.2f}x wall, "  # type: ignore[arg-type]
                    f"{float(old['cpu']) / float(new['cpu']):.2f}x CPU" + ("" if same else "  RESULTS DIFFER")  # type: ignore[arg-type]
                )
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(interruptible(main, "bench_verifier_speed.py"))
