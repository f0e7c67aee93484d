"""Registry-wide effects shared by several actions: terminal effects, FIFO retention, barrier
satisfaction, the durable image and crash recovery.

Order of the terminal effects (docs/semantics.md): outcome set with the status, watchers
resolved and cleared, a feed entry pushed with the next sequence number, the id appended to
``completed_order``, retention applied, the barrier checked. The durable write is the caller's
last step (one write per call).
"""

from __future__ import annotations

from typing import Any

from meerkat_model.ops.bounds import OpsBounds
from meerkat_model.ops.payloads import PayloadDomains
from meerkat_model.ops.state import DurableImage, FeedEntry, OpRecord, RegistryState, Slot
from meerkat_model.vocab.statuses import OpStatus

_FIRST_TERMINAL = int(OpStatus.COMPLETED)
_new = tuple.__new__
"""Builds a record from a tuple of its fields without the record's Python-level constructor
(hot paths)."""


def retain(state: RegistryState, max_completed: int) -> RegistryState:
    """Evict the oldest completed ids that are not barrier members while more than
    ``max_completed`` remain (an evicted operation is removed entirely)."""
    completed = state[3]
    excess = len(completed) - max_completed
    if excess <= 0:
        return state
    pinned = state[4]
    ops = list(state[0])
    kept: list[int] = []
    for op_id in completed:
        if excess and op_id not in pinned:
            ops[op_id] = ()
            excess -= 1
        else:
            kept.append(op_id)
    return RegistryState(tuple(ops), state[1], state[2], tuple(kept), *state[4:])


def wait_outcomes(state: RegistryState, members: tuple[int, ...], domains: PayloadDomains) -> tuple[Any, ...]:
    """``((id, outcome view), ...)`` in request order; every member must be terminal and tracked."""
    out = []
    for op_id in members:
        rec = state.ops[op_id]
        assert isinstance(rec, OpRecord)
        out.append((op_id, domains.views[(rec.outcome, rec.payload)]))
    return tuple(out)


def check_barrier(
    state: RegistryState, bounds: OpsBounds, domains: PayloadDomains
) -> tuple[RegistryState, tuple[Any, ...]]:
    """Satisfy the active barrier when every member is terminal: clear it, re-apply retention
    and report ``("wait_all_satisfied", outcomes)``."""
    barrier = state.barrier
    if not barrier:
        return state, ()
    for op_id in barrier:
        rec = state.ops[op_id]
        if not rec or rec[0] < _FIRST_TERMINAL:
            return state, ()
    result = ("wait_all_satisfied", wait_outcomes(state, barrier, domains))
    state = retain(RegistryState(*state[:4], (), *state[5:]), bounds.max_completed)
    return state, (result,)


def append_feed(feed: tuple[FeedEntry, ...], entry: FeedEntry, capacity: int) -> tuple[FeedEntry, ...]:
    """``feed`` with ``entry`` appended, keeping only the newest ``capacity`` entries."""
    feed = (*feed, entry)
    return feed[len(feed) - capacity :] if len(feed) > capacity else feed


def terminalize(
    state: RegistryState, op_id: int, status: int, payload: int, bounds: OpsBounds, domains: PayloadDomains
) -> tuple[RegistryState, tuple[Any, ...]]:
    """Apply every terminal effect to the (non-terminal) operation ``op_id``; returns the new
    state and the observer outputs (watcher resolutions, feed entry, barrier result)."""
    ops, active_order, active_count, completed, barrier, feed, _, seq, disk = state
    rec = ops[op_id]
    assert isinstance(rec, OpRecord) and rec[0] < _FIRST_TERMINAL
    view = domains.views[(status, payload)]
    kind, watchers = rec[1], rec[4]
    fed = ("feed", seq, op_id, view)
    outputs: tuple[Any, ...] = (("watchers_resolved", op_id, watchers, view), fed) if watchers else (fed,)
    done = _new(OpRecord, (status, kind, rec[2], rec[3], 0, status, payload, seq))
    feed = append_feed(feed, (seq, op_id, kind, status, payload), bounds.feed_capacity)
    completed = (*completed, op_id)
    state = _new(
        RegistryState,
        (
            (*ops[:op_id], done, *ops[op_id + 1 :]),
            tuple([i for i in active_order if i != op_id]),
            active_count - 1,
            completed,
            barrier,
            feed,
            seq,
            seq + 1,
            disk,
        ),
    )
    if len(completed) > bounds.max_completed:
        state = retain(state, bounds.max_completed)
    if barrier:
        state, satisfied = check_barrier(state, bounds, domains)
        outputs += satisfied
    return state, outputs


def durable_image(state: RegistryState) -> DurableImage:
    """What a durable write of ``state`` stores (non-terminal operations are not recoverable,
    so they are not part of the image)."""
    return _new(DurableImage, (durable_slots(state[0]), state[3], state[5], state[6], state[7]))


def durable_slots(ops: tuple[Slot, ...]) -> tuple[Slot, ...]:
    """The slots a durable image keeps: terminal records, every other slot empty."""
    return tuple([rec if rec and rec[0] >= _FIRST_TERMINAL else () for rec in ops])


def write(state: RegistryState) -> RegistryState:
    """The durable write that precedes the acknowledgement of a durable call."""
    return _new(RegistryState, (*state[:-1], durable_image(state)))


def recover(disk: DurableImage | tuple[()], ids: int, max_completed: int) -> RegistryState:
    """The registry rebuilt from ``disk`` after a crash: terminal operations with outcomes and
    sequence numbers, completion order, feed and counters; no barrier, no watchers, nothing
    active. The barrier ended, so retention is applied again. ``disk`` stays as it was."""
    if not disk:
        return RegistryState(((),) * ids, (), 0, (), (), (), 0, 1, ())
    state = RegistryState(disk.ops, (), 0, disk.completed, (), disk.feed, disk.watermark, disk.next_seq, disk)
    return retain(state, max_completed)
