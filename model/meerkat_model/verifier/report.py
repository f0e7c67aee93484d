"""Reports of explorations: plain-data (JSON-ready) summaries, the human summary, and the
DOT rendering of a counterexample trace."""

from __future__ import annotations

from typing import Any

from meerkat_model.verifier.exploration import Exploration
from meerkat_model.verifier.trace import TraceStep, described, shortest_trace, violation_trace

MAX_STUCK_LISTED = 5
MAX_STRANDED_LISTED = 3
"""Stranded states listed (shallowest first, each with its shortest trace)."""


def plain(value: Any) -> Any:
    """``value`` reduced to JSON-ready data (tuples become lists, unknown objects ``repr``)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return repr(value)


def trace_data(steps: list[TraceStep]) -> list[dict[str, Any]]:
    return [
        {
            "action": st.label,
            "transition": st.transition,
            "changed": {k: [plain(b), plain(a)] for k, (b, a) in st.diff.items()},
            "outputs": plain(st.outputs),
        }
        for st in steps
    ]


def summary(exploration: Exploration, *, bounds: dict[str, int] | None = None) -> dict[str, Any]:
    """Everything the CLI reports for one machine, as plain data (traces included)."""
    e = exploration
    machine = e.machine
    violations = []
    for v in e.violations:
        steps = violation_trace(e, v)
        violations.append(
            {
                "invariant": v.invariant,
                "message": v.message,
                "depth": v.depth,
                "step": v.step,
                "trace": trace_data(steps),
            }
        )
    stuck = [
        {
            "depth": e.depths[i],
            "obligations": list(machine.obligations(e.state_list[i])),
            "state": plain(dict(described(machine, e.state_list[i]))),
        }
        for i in e.stuck[:MAX_STUCK_LISTED]
    ]

    def listed(indexes: list[int] | None) -> list[dict[str, Any]]:
        return [
            {
                "depth": e.depths[i],
                "obligations": list(machine.obligations(e.state_list[i])),
                "state": plain(dict(described(machine, e.state_list[i]))),
                "trace": trace_data(shortest_trace(e, e.state_list[i])),
            }
            for i in (indexes or [])[:MAX_STRANDED_LISTED]
        ]

    # the states stranded only without give-ups (the others are listed as stranded)
    everywhere = set(e.stranded or ())
    only_without = [i for i in e.stranded_without_give_ups or () if i not in everywhere]
    return {
        "machine": machine.name,
        "bounds": dict(bounds or {}),
        "symmetry": e.symmetry,
        "complete": e.complete,
        "states": e.states,
        "edges": e.edges,
        "depth": e.depth,
        "elapsed_seconds": round(e.elapsed, 4),
        "states_per_second": round(e.rate, 1) if e.elapsed > 0 else None,
        "invariants": e.invariant_results(),
        "violations": violations,
        "coverage": {
            "declared": len(e.coverage.declared),
            "fired": len(e.coverage.declared) - len(e.coverage.dead),
            "ratio": round(e.coverage.ratio, 4),
            "dead": list(e.coverage.dead),
            "undeclared": list(e.coverage.undeclared),
        },
        "stuck_count": len(e.stuck),
        "stuck": stuck,
        "stranded_checked": e.stranded is not None,
        "stranded_count": None if e.stranded is None else len(e.stranded),
        "stranded": listed(e.stranded),
        "give_ups": dict(machine.give_ups()),
        "stranded_without_give_ups_count": (
            None if e.stranded_without_give_ups is None else len(e.stranded_without_give_ups)
        ),
        "stranded_without_give_ups": listed(only_without),
        "liveness_seconds": round(e.liveness_seconds, 4),
        "ok": e.ok and e.complete,
    }


def symmetry_comparison(reduced: Exploration, full: Exploration) -> dict[str, Any]:
    """Ratio of full to reduced state counts, and whether both agree on the invariants and
    on the set of canonical states."""
    machine = reduced.machine
    canonical_full = {machine.canonical(s) for s in full.state_list}
    return {
        "full_states": full.states,
        "reduced_states": reduced.states,
        "ratio": round(full.states / reduced.states, 3) if reduced.states else None,
        "full_seconds": round(full.elapsed, 4),
        "reduced_seconds": round(reduced.elapsed, 4),
        "invariants_agree": full.invariant_results() == reduced.invariant_results(),
        "canonical_states_agree": canonical_full == set(reduced.state_list),
    }


def human(report: dict[str, Any]) -> str:
    """The human summary of one machine's :func:`summary` (with traces of violations)."""
    r = report
    rate = f"{r['states_per_second']:,.0f} states/s" if r["states_per_second"] else "-"
    lines = [
        f"== {r['machine']}  ({'symmetry reduced' if r['symmetry'] else 'no symmetry reduction'})",
        f"   states {r['states']:,}  edges {r['edges']:,}  depth {r['depth']}  "
        f"elapsed {r['elapsed_seconds']:.2f}s  {rate}" + ("" if r["complete"] else "  (INCOMPLETE: state limit)"),
    ]
    if r["bounds"]:
        lines.append("   bounds " + " ".join(f"{k}={v}" for k, v in sorted(r["bounds"].items())))
    for name, result in r["invariants"].items():
        lines.append(f"   {'held    ' if result == 'held' else 'VIOLATED'}  {name}")
    cov = r["coverage"]
    lines.append(f"   transition coverage {cov['fired']}/{cov['declared']} ({cov['ratio']:.0%})")
    if cov["dead"]:
        lines.append("   dead transitions: " + ", ".join(cov["dead"]))
    if cov["undeclared"]:
        lines.append("   undeclared transitions fired: " + ", ".join(cov["undeclared"]))
    lines.append(f"   stuck states {r['stuck_count']}")
    for s in r["stuck"]:
        lines.append(f"     depth {s['depth']}: " + "; ".join(s["obligations"]))
    if not r["stranded_checked"]:
        lines.append("   stranded states not checked (incomplete exploration)")
    elif not r["stranded_count"]:
        lines.append("   stranded states 0")
    else:
        lines.append(
            f"   STRANDED states {r['stranded_count']} (obligations that no sequence of steps can clear; "
            f"the {len(r['stranded'])} shallowest:)"
        )
        lines.extend(_listed_states_lines(r["stranded"]))
    if r["stranded_checked"]:
        lines.extend(_without_give_ups_lines(r))
    sym = r.get("symmetry_comparison")
    if sym:
        lines.append(
            f"   symmetry: {sym['full_states']:,} -> {sym['reduced_states']:,} states (x{sym['ratio']}), "
            f"invariants agree: {sym['invariants_agree']}, canonical states agree: {sym['canonical_states_agree']}"
        )
    for v in r["violations"]:
        lines.append(f"   VIOLATION {v['invariant']} at depth {v['depth']}: {v['message']}")
        lines.append("   shortest trace from the initial state (changed fields):")
        lines.extend(_trace_lines(v["trace"], "     "))
    return "\n".join(lines)


def _without_give_ups_lines(r: dict[str, Any]) -> list[str]:
    """The "stranded without give-ups" lines of a checked report."""
    names = sorted(r["give_ups"])
    if not names:
        return ["   stranded without give-ups: no give-up declared (the same as stranded states)"]
    declared = f"{len(names)} give-up(s) left out: {', '.join(names)}"
    count = r["stranded_without_give_ups_count"]
    if not count:
        return [f"   stranded without give-ups 0 ({declared})"]
    lines = [
        f"   STRANDED without give-ups {count} (obligations that only a give-up can clear; {declared}; "
        f"the {len(r['stranded_without_give_ups'])} shallowest not stranded anyway:)"
    ]
    lines.extend(_listed_states_lines(r["stranded_without_give_ups"]))
    return lines


def _listed_states_lines(states: list[dict[str, Any]]) -> list[str]:
    """Each listed state's depth and obligations, then its shortest trace."""
    lines = []
    for s in states:
        lines.append(f"     depth {s['depth']}: " + "; ".join(s["obligations"]))
        lines.append("     shortest trace from the initial state (changed fields):")
        lines.extend(_trace_lines(s["trace"], "       "))
    return lines


def _trace_lines(trace: list[dict[str, Any]], indent: str) -> list[str]:
    """The numbered steps of a :func:`trace_data` trace, with changed fields and outputs."""
    lines = []
    for n, st in enumerate(trace, 1):
        lines.append(f"{indent}{n}. {st['action']}  [{st['transition']}]")
        for key, (before, after) in st["changed"].items():
            lines.append(f"{indent}     {key}: {before!r} -> {after!r}")
        for output in st["outputs"]:
            lines.append(f"{indent}     => {output!r}")
    return lines


def trace_dot(exploration: Exploration, steps: list[TraceStep], title: str) -> str:
    """A DOT digraph of a trace: one node per state (changed fields as label), one edge per
    action."""

    def quote(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    machine = exploration.machine
    out = [f"digraph {quote(title)} {{", "  rankdir=TB;", "  node [shape=box, fontname=monospace];"]
    init = described(machine, machine.initial_state())
    out.append("  s0 [label=" + quote("initial\\l" + "".join(f"{k}={v}\\l" for k, v in init.items())) + "];")
    for n, st in enumerate(steps, 1):
        label = "".join(f"{k}: {b} -> {a}\\l" for k, (b, a) in st.diff.items()) or "(unchanged)\\l"
        attrs = ", color=red" if n == len(steps) else ""
        out.append(f"  s{n} [label={quote(label)}{attrs}];")
        out.append(f"  s{n - 1} -> s{n} [label={quote(st.label)}];")
    out.append("}")
    return "\n".join(out) + "\n"
