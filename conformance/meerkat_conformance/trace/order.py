"""Putting a runtime's events in commit order, and the checks that need no model.

Events of one runtime come from one or more *streams* (one per emitting machine, its
``source``). Within a stream ``seq`` must grow strictly in the order the events were written
(the bus numbers events in commit order and the log appends them in that order): a repeated
number is a *reused sequence number*, a smaller one an event *out of commit order*. A stream is
cut into *segments* at every ``register`` event (one registration of the session by that
machine). Segments are ordered by their lease ``fence`` (it grows with every claim, and a
worker's writes are refused once another worker claimed, so everything a segment committed
precedes the next segment's recovery), then by the time of their first event (a single writer
restarted without ownership). The replay (:mod:`.session_replay`) then sees one history per
runtime.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from meerkat_conformance.trace.reader import Located


@dataclass(slots=True)
class Segment:
    source: str
    fence: int | None
    events: list[Located] = field(default_factory=list)

    def key(self) -> tuple[int, float]:
        fence = -1 if self.fence is None else self.fence
        return fence, self.events[0].event.time


@dataclass(frozen=True, slots=True)
class OrderProblem:
    """An event that breaks the sequence rules: where, and what."""

    at: Located
    reason: str


def by_runtime(events: list[Located]) -> dict[tuple[str, str], list[Located]]:
    """Events by (store, runtime id): a runtime id names one history only within one store."""
    runtimes: dict[tuple[str, str], list[Located]] = defaultdict(list)
    for located in events:
        runtimes[(located.event.store, located.event.runtime_id)].append(located)
    return dict(runtimes)


def check_sequences(events: list[Located]) -> OrderProblem | None:
    """The first event (in file order) whose ``seq`` does not grow within its stream."""
    last: dict[tuple[str, str], Located] = {}
    for located in events:
        event = located.event
        key = (event.runtime_id, event.source)
        previous = last.get(key)
        if previous is not None and event.seq <= previous.event.seq:
            if event.seq == previous.event.seq:
                reason = f"reused sequence number {event.seq} (already used at {previous.where})"
            else:
                reason = (
                    f"sequence number {event.seq} after {previous.event.seq} ({previous.where}): "
                    "an event out of commit order"
                )
            return OrderProblem(located, reason)
        last[key] = located
    return None


def commit_order(events: list[Located]) -> list[Located]:
    """One runtime's events in commit order (see the module docstring); ``events`` must have
    passed :func:`check_sequences`."""
    return [located for segment in segments(events) for located in segment.events]


def interleaved_with(events: list[Located], at: Located) -> tuple[Segment, Segment] | None:
    """The pair of segments ``(earlier, later)`` of two sources that explains why the model could
    not place ``at`` in fence order, or ``None``. Only a superseded worker's read can be out of
    fence order: a worker whose lease was taken over may still reconcile with the store (a read,
    not fenced) and adopt what the newer worker wrote, and publish it under its old fence. So
    ``at`` must be such a read (:func:`superseded_read`) of ``earlier``, published (by the
    events' wall-clock times) at or after the first event of ``later``, a segment of another
    source with a larger fence. Any other event the model cannot explain is a rejection."""
    return next(((earlier, later) for read, earlier, later in late_reads(events) if read is at), None)


def late_reads(events: list[Located]) -> list[tuple[Located, Segment, Segment]]:
    """Every superseded worker's read that fence order may misplace, in commit order: ``(read,
    earlier, later)`` as :func:`interleaved_with` describes."""
    ordered = segments(events)
    found: list[tuple[Located, Segment, Segment]] = []
    for i, earlier in enumerate(ordered):
        newer = [
            later for later in ordered[i + 1 :] if later.source != earlier.source and later.key()[0] > earlier.key()[0]
        ]
        for located in earlier.events:
            if not superseded_read(earlier, located):
                continue
            later = next((s for s in newer if s.events[0].event.time <= located.event.time), None)
            if later is not None:
                found.append((located, earlier, later))
    return found


def superseded_read(segment: Segment, at: Located) -> bool:
    """Whether ``at`` is a ``reconcile`` of ``segment``, the adopted write that reconcile
    published just before it, or a no-op (``*_noop``, nothing moved) after that reconcile."""
    events = segment.events
    i = events.index(at)
    event = at.event
    if event.rule == "reconcile":
        return True
    if event.details.get("adopted") is True:
        return i + 1 < len(events) and events[i + 1].event.rule == "reconcile"
    if not (event.rule.endswith("_noop") and not event.changes):
        return False
    for located in reversed(events[:i]):
        if located.event.rule == "reconcile":
            return True
        if not (located.event.rule.endswith("_noop") and not located.event.changes):
            return False
    return False


def segments(events: list[Located]) -> list[Segment]:
    """One runtime's segments in commit order (see the module docstring)."""
    streams: dict[str, list[Located]] = defaultdict(list)
    for located in events:
        streams[located.event.source].append(located)
    found: list[Segment] = []
    for source, stream in streams.items():
        stream.sort(key=lambda located: located.event.seq)
        current: Segment | None = None
        for located in stream:
            event = located.event
            if current is None or event.rule == "register":
                current = Segment(source, event.fence)
                found.append(current)
            current.events.append(located)
    found.sort(key=Segment.key)
    return found
