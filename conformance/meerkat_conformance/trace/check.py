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

A runtime whose events come from several workers is replayed in fence order. When the model
cannot explain there a superseded worker's reconcile (a read, not fenced) published after a newer
worker registered (:func:`.order.interleaved_with`), the runtime is reported as interleaved
(``TraceVerdict.interleaved``): neither explained nor rejected; the superseded registration's
events from there on are left out and the replay goes on (the newer registration recovers the
store as after a holder that lost its lease), so a later event the model cannot explain is still
a rejection. Any other unexplained event is a rejection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meerkat_conformance.trace.ops_replay import OpsReplay
from meerkat_conformance.trace.order import (
    Segment,
    by_runtime,
    check_sequences,
    commit_order,
    interleaved_with,
    late_reads,
)
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
    interleaved: tuple[Interleaved, ...] = ()
    """Runtimes where a superseded worker's reconcile could not be placed in fence order (its
    registration's later events left out; the rest replayed)."""
    notes: tuple[str, ...] = ()
    """What was read but not checked (a torn last line of a file)."""

    @property
    def ok(self) -> bool:
        """Every event of every runtime was checked and explained."""
        return self.rejection is None and not self.incomplete and not self.interleaved and self.events > 0


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


@dataclass(frozen=True, slots=True)
class Interleaved:
    """A runtime whose log the replay cannot put in one history: the model could not explain
    ``at`` in fence order, and ``at`` is a reconcile (or its adopted write, or a no-op after it)
    of the superseded worker's segment ``earlier`` published at or after the first event of the
    newer worker's segment ``later`` (their sources and fences). Not a rejection: a superseded
    worker's reads (a reconcile adopting what the newer worker wrote) are not ordered by the
    fence, and the session model alone does not describe two workers at once."""

    at: Located
    why: str
    earlier: tuple[str, int | None]
    later: tuple[str, int | None]

    @property
    def reason(self) -> str:
        event = self.at.event
        return (
            f"the events of runtime {event.runtime_id} come from several workers whose histories overlap: "
            f"{self.earlier[0]} (fence {self.earlier[1]}) published events after {self.later[0]} "
            f"(fence {self.later[1]}) registered the session; in fence order the model cannot explain "
            f"#{event.seq} {event.rule} of {event.source} ({self.why}); "
            f"the events of {self.earlier[0]} from there on were not checked"
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
    interleaved: list[Interleaved] = []
    for runtime_events in grouped.values():
        late = _late_start(runtime_events)
        if late is not None:
            incomplete.append(Incomplete(late))
            continue
        skipped: set[int] = set()
        mixed: Interleaved | None = None
        while True:
            ordered = [located for located in commit_order(runtime_events) if id(located) not in skipped]
            rejection = _replay(ordered)
            if rejection is None:
                break
            overlap = interleaved_with(runtime_events, rejection.at)
            if overlap is not None:
                late, (earlier, later), why = rejection.at, overlap, rejection.reason
            else:
                found = _misplaced_read(runtime_events, rejection, skipped)
                if found is None:
                    return TraceVerdict(*head, rejection, rules, tuple(incomplete), tuple(interleaved), notes)
                late, earlier, later = found
                at = rejection.at.event
                why = (
                    f"kept in fence order, it leaves #{at.seq} {at.rule} of {at.source} unexplained: {rejection.reason}"
                )
            if mixed is None:
                mixed = Interleaved(late, why, (earlier.source, earlier.fence), (later.source, later.fence))
            # the superseded worker's history ends here for the replay: the later segment's
            # registration recovers the store (as after a holder that lost its lease)
            skipped.update(_tail(earlier, late))
        if mixed is not None:
            interleaved.append(mixed)
    return TraceVerdict(*head, None, rules, tuple(incomplete), tuple(interleaved), notes)


def _tail(segment: Segment, read: Located) -> set[int]:
    return {id(located) for located in segment.events[segment.events.index(read) :]}


def _misplaced_read(
    events: list[Located], rejection: Rejection, skipped: set[int]
) -> tuple[Located, Segment, Segment] | None:
    """A superseded worker's read (:func:`.order.late_reads`) before ``rejection`` in commit
    order that the model explained in fence order by coincidence (it adopted a state the newer
    worker wrote later), such that leaving its segment's events from it out lets the replay
    explain the rejected event; ``None`` when there is none (the rejection stands)."""
    order = commit_order(events)
    place = {id(located): n for n, located in enumerate(order)}
    limit = place[id(rejection.at)]
    for read, earlier, later in late_reads(events):
        if id(read) in skipped or place[id(read)] >= limit:
            continue
        trial = skipped | _tail(earlier, read)
        again = _replay([located for located in order if id(located) not in trial])
        if again is None or place[id(again.at)] > limit:
            return read, earlier, later
    return None


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
