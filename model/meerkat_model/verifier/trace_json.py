"""A counterexample trace as a JSON document (``meerkat-verify --trace-json``), for the state
explorer page and any other tool.

Format ``meerkat.trace`` version 1::

    {"format": "meerkat.trace", "version": 1, "machine": "ops", "profile": "ci",   # catalog names
     "bounds": {"ids": 2, ...}, "symmetry": true,
     "violation": {"invariant": "...", "description": "...", "message": "...", "depth": 2},
     "steps": [{"index": 0, "action": null, "transition": null, "state": {...},
                "canonical": {...}, "changed": {}, "outputs": []},
               {"index": 1, "action": "register_operation(0, 1)", "transition": "register_operation",
                "state": {...}, "canonical": {...}, "changed": {"active_count": [0, 1]},
                "outputs": [...]}, ...]}

``state`` is every field of ``machine.describe`` of the concrete state reached (values as plain
JSON); ``canonical`` the same of its representative under renaming of interchangeable ids (the
state an exploration with symmetry reduction stores), so a reader can find each step in a
reachable graph; ``changed`` maps each field that step changed to ``[before, after]``. A trace
to a stranded state (written when no invariant was violated) has ``"invariant": "stranded"``
(or ``"stranded without give-ups"``), its obligations as ``message`` and its depth.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from meerkat_model.verifier.declarations import DESCRIPTION as DECLARED_DESCRIPTION
from meerkat_model.verifier.declarations import NAME as DECLARED
from meerkat_model.verifier.exploration import Exploration, Violation
from meerkat_model.verifier.liveness import DESCRIPTIONS as STRANDED_DESCRIPTIONS
from meerkat_model.verifier.report import plain
from meerkat_model.verifier.search import BUILT_IN_DESCRIPTIONS
from meerkat_model.verifier.trace import TraceStep, described

TRACE_FORMAT = "meerkat.trace"
TRACE_VERSION = 1


def _fields(exploration: Exploration, state: Any) -> dict[str, Any]:
    fields: dict[str, Any] = plain(dict(described(exploration.machine, state)))
    return fields


def _canonical(exploration: Exploration, state: Any) -> Any:
    if not exploration.symmetry:
        return state
    try:
        return exploration.machine.canonical(state)
    except Exception:
        return state


def trace_document(
    exploration: Exploration,
    violation: Violation,
    steps: Sequence[TraceStep],
    *,
    profile: str | None,
    bounds: Mapping[str, int],
    key: str | None = None,
) -> dict[str, Any]:
    """The JSON-ready document of the trace ``steps`` (from :func:`shortest_trace`) that ends in
    ``violation`` (or in a stranded state: :func:`~meerkat_model.verifier.trace.stranded_violation`);
    ``key`` is the machine's catalog name (default: ``machine.name``)."""
    machine = exploration.machine
    descriptions = {inv.name: inv.description for inv in machine.invariants()}
    descriptions.update({sc.name: sc.description for sc in machine.step_checks()})
    descriptions.update(BUILT_IN_DESCRIPTIONS)
    descriptions.update(STRANDED_DESCRIPTIONS)
    descriptions[DECLARED] = DECLARED_DESCRIPTION
    start = machine.initial_state()

    def entry(index: int, state: Any, step: TraceStep | None) -> dict[str, Any]:
        return {
            "index": index,
            "action": None if step is None else step.label,
            "transition": None if step is None else step.transition,
            "state": _fields(exploration, state),
            "canonical": _fields(exploration, _canonical(exploration, state)),
            "changed": {} if step is None else {k: [plain(b), plain(a)] for k, (b, a) in step.diff.items()},
            "outputs": [] if step is None else plain(step.outputs),
        }

    return {
        "format": TRACE_FORMAT,
        "version": TRACE_VERSION,
        "machine": key or machine.name,
        "profile": profile,
        "bounds": dict(bounds),
        "symmetry": exploration.symmetry,
        "violation": {
            "invariant": violation.invariant,
            "description": descriptions.get(violation.invariant, ""),
            "message": violation.message,
            "depth": violation.depth,
        },
        "steps": [entry(0, start, None)] + [entry(i, step.state, step) for i, step in enumerate(steps, 1)],
    }


def write_trace_json(path: Path, document: Mapping[str, Any]) -> None:
    """Write ``document`` to ``path`` (UTF-8, indented, ending with a newline)."""
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
