"""Run planted mutants against the two layers that should catch them, and tabulate.

* ``tests``: the runtime's own tests (``tests/runtime_session``, ``tests/runtime_ops``,
  ``tests/stores``), stopping at the first failure;
* ``harness``: ``meerkat-conformance --profile fast`` for every machine (ops, session and the
  ownership walks), as users run it.

A layer *kills* a mutant when it exits non-zero (a failing test, a disagreement, a missed
coverage floor) or runs past its time limit (reported as ``timeout``); it *misses* it when it
passes. Each mutant runs in a fresh copy of the runtime (:func:`~meerkat_conformance.mutants.planting.plant`)
in a subprocess, so mutants never meet.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from meerkat_conformance.mutants.catalog import Mutant
from meerkat_conformance.mutants.planting import plant

LAYERS = ("tests", "harness")
TEST_DIRS = ("tests/runtime_session", "tests/runtime_ops", "tests/stores")


@dataclass(frozen=True, slots=True)
class LayerResult:
    """``status``: ``killed``, ``timeout`` or ``survived``; ``detail``: the line that said so."""

    status: str
    seconds: float
    detail: str = ""

    @property
    def killed(self) -> bool:
        return self.status != "survived"


@dataclass(slots=True)
class MutantResult:
    mutant: Mutant
    layers: dict[str, LayerResult] = field(default_factory=dict)


def layer_command(layer: str, project: Path) -> list[str]:
    """The command that runs ``layer`` from ``project`` (the repository root)."""
    if layer == "tests":
        return [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-n", "2", *TEST_DIRS]
    if layer == "harness":
        return [sys.executable, "-m", "meerkat_conformance.cli.main", "--profile", "fast", "--progress-every", "60"]
    raise ValueError(f"unknown layer {layer!r}; known: {', '.join(LAYERS)}")


def run_layer(layer: str, planted: Path | None, project: Path, timeout: float) -> LayerResult:
    """Run ``layer`` with ``planted`` (a directory holding a mutated ``meerkat_runtime``) first
    on ``PYTHONPATH`` (``None``: the runtime as it is)."""
    env = dict(os.environ)
    if planted is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(planted), env.get("PYTHONPATH", "")) if p)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    started = time.perf_counter()
    try:
        done = subprocess.run(
            layer_command(layer, project),
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return LayerResult("timeout", time.perf_counter() - started, f"still running after {timeout:.0f}s")
    elapsed = time.perf_counter() - started
    if done.returncode == 0:
        return LayerResult("survived", elapsed)
    return LayerResult("killed", elapsed, _reason(done.stdout + done.stderr))


def _reason(output: str) -> str:
    """The most telling line of a failed run's output."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for marker in ("conformance report:", "FAILED ", "Error", "error"):
        for line in lines:
            if line.startswith(marker) or (marker in line and len(line) < 200):
                return line[:160]
    return lines[-1][:160] if lines else ""


def run_mutant(mutant: Mutant, layers: Sequence[str], project: Path, timeout: float) -> MutantResult:
    """Plant ``mutant`` in a temporary directory and run each layer against it."""
    result = MutantResult(mutant)
    with tempfile.TemporaryDirectory(prefix="meerkat-mutant-") as tmp:
        planted = plant(mutant, Path(tmp))
        for layer in layers:
            result.layers[layer] = run_layer(layer, planted, project, timeout)
    return result


def run_mutants(
    mutants: Sequence[Mutant],
    layers: Sequence[str],
    project: Path,
    *,
    timeout: float,
    jobs: int = 1,
    report: Callable[[MutantResult], None] | None = None,
) -> list[MutantResult]:
    """Plant each mutant and run each layer against it, ``jobs`` mutants at a time (each in
    its own processes and temporary files); ``report`` is called as each mutant finishes.
    The results come back in catalog order."""
    if jobs <= 1:
        results = []
        for mutant in mutants:
            results.append(run_mutant(mutant, layers, project, timeout))
            if report is not None:
                report(results[-1])
        return results
    finished: dict[str, MutantResult] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_mutant, mutant, layers, project, timeout) for mutant in mutants]
        try:
            for future in as_completed(futures):
                result = future.result()
                finished[result.mutant.id] = result
                if report is not None:
                    report(result)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return [finished[m.id] for m in mutants if m.id in finished]


def format_table(results: Sequence[MutantResult], layers: Sequence[str]) -> str:
    """A Markdown table (mutant | area | bug | one column per layer) and a kill-rate summary."""
    header = ["mutant", "area", "bug", *layers]
    rows = [header, ["---"] * len(header)]
    for result in results:
        what = result.mutant.what + (" (equivalent)" if result.mutant.equivalent else "")
        cells = [f"`{result.mutant.id}`", result.mutant.area, what]
        for layer in layers:
            got = result.layers.get(layer)
            cells.append("-" if got is None else f"{got.status} ({got.seconds:.0f}s)")
        rows.append(cells)
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    lines.append("")
    lines.extend(summary(results, layers))
    return "\n".join(lines)


def summary(results: Sequence[MutantResult], layers: Sequence[str]) -> list[str]:
    """One line per layer (killed / non-equivalent mutants, percentage), then the
    non-equivalent mutants no layer killed, then the equivalent ones."""
    counted = [r for r in results if not r.mutant.equivalent]
    total = len(counted)
    lines = []
    for layer in layers:
        killed = sum(1 for r in counted if (got := r.layers.get(layer)) is not None and got.killed)
        share = 100.0 * killed / total if total else 0.0
        lines.append(f"{layer}: killed {killed}/{total} ({share:.0f}%)")
    if len(layers) > 1:
        either = sum(1 for r in counted if any(g.killed for g in r.layers.values()))
        lines.append(f"either layer: killed {either}/{total}")
    survivors = [r.mutant.id for r in counted if r.layers and not any(g.killed for g in r.layers.values())]
    lines.append("survived every layer: " + (", ".join(survivors) if survivors else "none"))
    equivalent = [f"{r.mutant.id} ({r.mutant.equivalent})" for r in results if r.mutant.equivalent]
    if equivalent:
        lines.append("equivalent (not counted): " + "; ".join(equivalent))
    return lines
