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
    streams: dict[str, list[Located]] = defaultdict(list)
    for located in events:
        streams[located.event.source].append(located)
    segments: list[Segment] = []
    for source, stream in streams.items():
        stream.sort(key=lambda located: located.event.seq)
        current: Segment | None = None
        for located in stream:
            event = located.event
            if current is None or event.rule == "register":
                current = Segment(source, event.fence)
                segments.append(current)
            current.events.append(located)
    segments.sort(key=Segment.key)
    return [located for segment in segments for located in segment.events]
