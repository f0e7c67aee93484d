"""The conformance report: per machine, transitions covered / total, the coverage floor,
replay edge coverage, scenarios and examples run, steps, crashes and faults injected."""

from __future__ import annotations

from collections.abc import Iterable

from meerkat_conformance.lockstep.tally import MachineTally


def _ratio(part: int, whole: int) -> str:
    if whole == 0:
        return f"{part}/0"
    return f"{part}/{whole} ({100.0 * part / whole:.1f}%)"


def format_tally(tally: MachineTally) -> list[str]:
    """Lines describing one machine's tally."""
    lines = [
        f"machine {tally.machine}:",
        f"  transitions covered   {_ratio(tally.covered_declared, len(tally.transitions))}",
    ]
    if tally.reachable:
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
        f"  disagreements         {tally.disagreements}",
    ]
    if tally.uncovered:
        lines.append(f"  not covered           {', '.join(tally.uncovered)}")
    return lines


def format_report(tallies: Iterable[MachineTally], *, title: str = "conformance report") -> str:
    """The whole report as text, one block per machine."""
    lines = [title]
    for tally in tallies:
        lines.extend(format_tally(tally))
    return "\n".join(lines)
