"""The conformance report: per machine, transitions covered / total, the coverage floor,
replay edge coverage, scenarios and examples run, steps, crashes and faults injected.

A machine whose run stopped early (at a disagreement, or interrupted) has its coverage floor
reported as not assessed, not as missed: the run never got to fire the rest. The disagreement
count is the number of failing examples (a machine stops at its first); the search's re-runs
of that example while shrinking it are counted apart."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from meerkat_conformance.lockstep.tally import MachineTally


def _ratio(part: int, whole: int) -> str:
    if whole == 0:
        return f"{part}/0"
    return f"{part}/{whole} ({100.0 * part / whole:.1f}%)"


def format_tally(tally: MachineTally, stopped: str | None = None) -> list[str]:
    """Lines describing one machine's tally; ``stopped`` says why its run ended early (then the
    coverage floor is not assessed)."""
    lines = [
        f"machine {tally.machine}:",
        f"  transitions covered   {_ratio(tally.covered_declared, len(tally.transitions))}",
    ]
    if tally.reachable and stopped is not None:
        lines.append(f"  coverage floor        not assessed (the run stopped early: {stopped})")
    elif tally.reachable:
        fired = len(tally.reachable) - len(tally.below_floor)
        verdict = "met" if not tally.below_floor else "MISSED: " + ", ".join(tally.below_floor)
        lines.append(f"  coverage floor        {fired}/{len(tally.reachable)} reachable transitions fired ({verdict})")
    if tally.scenarios:
        lines.append(f"  directed scenarios    {tally.scenarios}")
    if tally.edges_total:
        lines.append(f"  replay edges covered  {_ratio(tally.edges_covered, tally.edges_total)}")
        lines.append(f"  replay walks          {tally.walks}")
    lines += [
        f"  examples (search)     {tally.examples}",
        f"  steps                 {tally.steps} ({tally.rejections} rejected on both sides)",
        f"  crashes injected      {tally.crashes}",
        f"  faults injected       {tally.faults}",
        f"  disagreements         {_disagreements(tally.disagreements)}",
    ]
    if tally.uncovered:
        lines.append(f"  not covered           {', '.join(tally.uncovered)}")
    return lines


def _disagreements(failing_runs: int) -> str:
    """A machine stops at its first failing example; every failing run after it is the search
    shrinking that example."""
    if failing_runs <= 1:
        return str(failing_runs)
    return f"1 (the minimal example above; {failing_runs - 1} more failing runs while shrinking it)"


def format_report(
    tallies: Iterable[MachineTally],
    *,
    title: str = "conformance report",
    stopped: Mapping[str, str] | None = None,
) -> str:
    """The whole report as text, one block per machine; ``stopped`` maps a machine whose run
    ended early to why (see :func:`format_tally`)."""
    lines = [title]
    for tally in tallies:
        lines.extend(format_tally(tally, (stopped or {}).get(tally.machine)))
    return "\n".join(lines)
