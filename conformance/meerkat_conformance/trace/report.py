"""Wording a trace verdict for people (text) and programs (JSON)."""

from __future__ import annotations

import json
from typing import Any

from meerkat_conformance.trace.check import TraceVerdict


def verdict_text(verdict: TraceVerdict) -> str:
    head = f"{verdict.events} events of {verdict.runtimes} runtime(s) in {verdict.files} file(s)"
    rejection = verdict.rejection
    lines = [f"check-trace: note: {note}" for note in verdict.notes]
    if rejection is None and verdict.interleaved:
        lines.append(
            f"check-trace: INTERLEAVED: {head}: {len(verdict.interleaved)} runtime(s) hold events of several "
            "workers that overlap and could not be checked as one history (nothing was rejected)"
        )
        lines.extend(f"  {mixed.at.where}: {mixed.reason}" for mixed in verdict.interleaved)
        lines.extend(f"  also incomplete: {gap.at.where}: {gap.reason}" for gap in verdict.incomplete)
        return "\n".join(lines)
    if rejection is None and verdict.incomplete:
        lines.append(
            f"check-trace: INCOMPLETE: {head}: {len(verdict.incomplete)} runtime(s) could not be replayed "
            "from the start (the others are explained)"
        )
        lines.extend(f"  {gap.at.where}: {gap.reason}" for gap in verdict.incomplete)
        return "\n".join(lines)
    if rejection is None:
        lines.append(f"check-trace: OK: the model explains all {head}")
        return "\n".join(lines)
    event = rejection.at.event
    lines += [
        f"check-trace: REJECTED at {rejection.at.where}: {head}",
        f"  event:   #{event.seq} {event.rule} of runtime {event.runtime_id} (source {event.source}, "
        f"fence {event.fence}): {event.before} -> {event.after}",
        f"  changes: {', '.join(f'{c.entity} {c.id} {c.before}->{c.after}' for c in event.changes) or '(none)'}",
    ]
    if event.details:
        lines.append(f"  details: {json.dumps(dict(event.details), sort_keys=True, default=str)}")
    lines.append(f"  why:     {rejection.reason}")
    if rejection.state:
        lines.append("  model state before the event:")
        lines.extend(f"    {key} = {value}" for key, value in rejection.state.items())
    lines.append(f"  enabled transitions: {', '.join(rejection.enabled) or '(none)'}")
    lines.extend(f"  also incomplete: {gap.at.where}: {gap.reason}" for gap in verdict.incomplete)
    lines.extend(f"  also interleaved: {mixed.at.where}: {mixed.reason}" for mixed in verdict.interleaved)
    return "\n".join(lines)


def verdict_json(verdict: TraceVerdict) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ok": verdict.ok,
        "events": verdict.events,
        "runtimes": verdict.runtimes,
        "files": verdict.files,
        "rules": verdict.rules,
        "incomplete": [
            {"file": gap.at.file, "line": gap.at.line, "runtime": gap.at.event.runtime_id, "reason": gap.reason}
            for gap in verdict.incomplete
        ],
        "interleaved": [
            {
                "file": mixed.at.file,
                "line": mixed.at.line,
                "runtime": mixed.at.event.runtime_id,
                "earlier": {"source": mixed.earlier[0], "fence": mixed.earlier[1]},
                "later": {"source": mixed.later[0], "fence": mixed.later[1]},
                "reason": mixed.reason,
            }
            for mixed in verdict.interleaved
        ],
        "notes": list(verdict.notes),
    }
    rejection = verdict.rejection
    if rejection is not None:
        out["rejection"] = {
            "file": rejection.at.file,
            "line": rejection.at.line,
            "event": rejection.at.event.to_dict(),
            "reason": rejection.reason,
            "state": {
                k: v if isinstance(v, str | int | float | bool | type(None)) else str(v)
                for k, v in rejection.state.items()
            },
            "enabled": list(rejection.enabled),
        }
    return out
