"""``check_trace``: accept a recorded trace, or name the first event the model cannot explain.

Steps: read every file (:mod:`.reader`); check each stream's sequence numbers in file order
(:func:`.order.check_sequences`: a reused number, or one that goes back, is rejected at that
event); then, runtime by runtime, put the events in commit order (:func:`.order.commit_order`)
and replay the session events through the session model (:mod:`.session_replay`) and the
operation events against the ops model's transitions (:mod:`.ops_replay`). The first event that
fails is reported with the model's state before it and the transitions the model had enabled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meerkat_conformance.trace.ops_replay import OpsReplay
from meerkat_conformance.trace.order import by_runtime, check_sequences, commit_order
from meerkat_conformance.trace.reader import Located, read_events
from meerkat_conformance.trace.session_replay import SessionReplay, Unexplained


@dataclass(frozen=True, slots=True)
class Rejection:
    """The first event the model cannot explain."""

    at: Located
    reason: str
    state: dict[str, Any] = field(default_factory=dict)
    enabled: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TraceVerdict:
    """What :func:`check_trace` found: ``rejection`` is ``None`` when the trace is explained."""

    events: int
    runtimes: int
    files: int
    rejection: Rejection | None = None
    rules: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.rejection is None


def check_trace(paths: list[Path]) -> TraceVerdict:
    """Check the event logs ``paths`` (files or directories); ``TraceFormatError`` for a line
    that is not an event."""
    from meerkat_conformance.trace.reader import expand

    files = expand(paths)
    events = read_events(paths)
    grouped = by_runtime(events)
    rules: dict[str, int] = {}
    for located in events:
        rules[located.event.rule] = rules.get(located.event.rule, 0) + 1
    problem = check_sequences(events)
    if problem is not None:
        return TraceVerdict(len(events), len(grouped), len(files), Rejection(problem.at, problem.reason), rules)
    for runtime_events in grouped.values():
        rejection = _replay(commit_order(runtime_events))
        if rejection is not None:
            return TraceVerdict(len(events), len(grouped), len(files), rejection, rules)
    return TraceVerdict(len(events), len(grouped), len(files), None, rules)


def _replay(events: list[Located]) -> Rejection | None:
    session = SessionReplay()
    ops = OpsReplay()
    for located in events:
        event = located.event
        try:
            if event.machine == "session":
                session.apply(located)
                if event.rule in ("register", "reconcile"):
                    ops.session_registered()
            elif event.machine == "ops":
                ops.apply(event)
            else:
                raise Unexplained(f"unknown machine {event.machine!r}")
        except Unexplained as exc:
            if event.machine == "ops":
                return Rejection(located, exc.reason, ops.described(), tuple(ops.enabled()))
            return Rejection(located, exc.reason, session.described(), tuple(session.enabled()))
    return None
