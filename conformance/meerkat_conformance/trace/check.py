"""``check_trace``: accept a recorded trace, or name the first event the model cannot explain.

Steps: read every file (:mod:`.reader`); check each stream's sequence numbers in file order
(:func:`.order.check_sequences`: a reused number, or one that goes back, is rejected at that
event); then, runtime by runtime, put the events in commit order (:func:`.order.commit_order`)
and replay the session events through the session model (:mod:`.session_replay`) and the
operation events against the ops model's transitions (:mod:`.ops_replay`). The first event that
fails is reported with the model's state before it and the transitions the model had enabled.

A runtime whose history does not start at the beginning — a stream (one machine's events of the
runtime) whose first event read is not its ``seq`` 1: the writer numbers each runtime's events
from 1 per machine, so the earlier ones were rotated away (``EventLog(max_files=...)``) or are
missing — cannot be replayed from the start: it is reported as an incomplete history
(``TraceVerdict.incomplete``) and not replayed; the other runtimes still are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meerkat_conformance.trace.ops_replay import OpsReplay
from meerkat_conformance.trace.order import by_runtime, check_sequences, commit_order
from meerkat_conformance.trace.reader import Located, read_log
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
    incomplete: tuple[Incomplete, ...] = ()
    """Runtimes whose history does not start at its first event (not replayed)."""
    notes: tuple[str, ...] = ()
    """What was read but not checked (a torn last line of a file)."""

    @property
    def ok(self) -> bool:
        """Every event of every runtime was checked and explained."""
        return self.rejection is None and not self.incomplete and self.events > 0


@dataclass(frozen=True, slots=True)
class Incomplete:
    """A runtime whose log starts after its first event: ``at`` is the first event read."""

    at: Located

    @property
    def reason(self) -> str:
        event = self.at.event
        return (
            f"the log of runtime {event.runtime_id} (source {event.source}) starts at seq {event.seq}: "
            "earlier events were rotated away or are missing; it cannot be replayed from the start"
        )


def check_trace(paths: list[Path]) -> TraceVerdict:
    """Check the event logs ``paths`` (files or directories); ``TraceFormatError`` for a line
    that is not an event, ``NoEventFiles`` for a directory without event logs."""
    read = read_log(paths)
    events = read.events
    grouped = by_runtime(events)
    rules: dict[str, int] = {}
    for located in events:
        rules[located.event.rule] = rules.get(located.event.rule, 0) + 1
    head = (len(events), len(grouped), len(read.files))
    notes = tuple(read.notes)
    problem = check_sequences(events)
    if problem is not None:
        return TraceVerdict(*head, Rejection(problem.at, problem.reason), rules, notes=notes)
    incomplete: list[Incomplete] = []
    for runtime_events in grouped.values():
        late = _late_start(runtime_events)
        if late is not None:
            incomplete.append(Incomplete(late))
            continue
        rejection = _replay(commit_order(runtime_events))
        if rejection is not None:
            return TraceVerdict(*head, rejection, rules, tuple(incomplete), notes)
    return TraceVerdict(*head, None, rules, tuple(incomplete), notes)


def _late_start(events: list[Located]) -> Located | None:
    """The first event read of a stream of ``events`` (one runtime) that is not its ``seq`` 1."""
    first: dict[str, Located] = {}
    for located in events:
        seen = first.get(located.event.source)
        if seen is None or located.event.seq < seen.event.seq:
            first[located.event.source] = located
    return next((located for located in first.values() if located.event.seq != 1), None)


def _replay(events: list[Located]) -> Rejection | None:
    session = SessionReplay()
    ops = OpsReplay()
    for located in events:
        event = located.event
        try:
            if event.machine == "session":
                session.apply(located)
                if event.rule == "register":  # a reconcile keeps the registry (memory only)
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
