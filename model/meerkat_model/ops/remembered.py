"""Effects remembered by the part of the state they read: the fast path of the terminal steps
and of ``collect_completed`` beside the plain :func:`meerkat_model.ops.effects.terminalize`,
:func:`~meerkat_model.ops.effects.write` and :func:`meerkat_model.ops.steps.collect_completed`.

Ending an operation reads the memory part of the registry (slots, registration order, active
count, completion order, barrier) and the next sequence number, appends one feed entry and is
followed by a durable write, whose image depends only on the new state. Reachable states share
few distinct memory parts (the deep profile: 7,321 among 149,701 states), so the new memory
part, the slots of the durable image, the feed entry and the outputs are computed once per
``(memory part, id, status, payload, sequence number)`` and only the feed and the two records
are built per step. :meth:`TerminalEffects.end` equals ``terminalize`` then ``write``;
:meth:`TerminalEffects.end_all` equals ``terminalize`` of each id in turn then ``write``
(tests compare them on every state of a profile, and a planted difference is caught).
Collecting reads the slots, the completion order and the barrier; :meth:`TerminalEffects.collect`
remembers the new slots, completion order, durable slots and collected outcomes per distinct
three of them.
"""

from __future__ import annotations

from typing import Any

from meerkat_model.ops.bounds import OpsBounds
from meerkat_model.ops.effects import append_feed, durable_slots, terminalize
from meerkat_model.ops.payloads import PayloadDomains
from meerkat_model.ops.state import DurableImage, FeedEntry, OpRecord, RegistryState, Slot

_new = tuple.__new__

Memory = tuple[tuple[Slot, ...], tuple[int, ...], int, tuple[int, ...], tuple[int, ...]]
"""The memory part of a state: ``ops, active_order, active_count, completed, barrier``."""
Ended = tuple[Memory, tuple[Slot, ...], FeedEntry, tuple[Any, ...]]
"""The new memory part, the slots of its durable image, the feed entry and the outputs."""


Collected = tuple[tuple[Slot, ...], tuple[int, ...], tuple[Slot, ...], tuple[Any, ...]]
"""The new slots, the completion order kept, the slots of the durable image and the outcomes."""


class TerminalEffects:
    """Terminal effects for fixed bounds, each distinct one computed once (see module doc)."""

    __slots__ = ("bounds", "collected", "domains", "ended")

    def __init__(self, bounds: OpsBounds, domains: PayloadDomains) -> None:
        self.bounds, self.domains = bounds, domains
        self.ended: dict[tuple[Any, ...], Ended] = {}
        self.collected: dict[tuple[Any, ...], Collected | None] = {}

    def key(self, memory: Memory, op_id: int, status: int, payload: int, seq: int) -> tuple[Any, ...]:
        """What the memory effect of ending ``op_id`` reads."""
        return (*memory, op_id, status, payload, seq)

    def _memory(self, memory: Memory, op_id: int, status: int, payload: int, seq: int) -> Ended:
        key = self.key(memory, op_id, status, payload, seq)
        got = self.ended.get(key)
        if got is None:
            got = self.ended[key] = self._compute(memory, op_id, status, payload, seq)
        return got

    def _compute(self, memory: Memory, op_id: int, status: int, payload: int, seq: int) -> Ended:
        """The plain :func:`terminalize` applied to the memory part (with an empty feed and no
        image, which it does not read), split into what is remembered."""
        state, outputs = terminalize(
            _new(RegistryState, (*memory, (), 0, seq, ())), op_id, status, payload, self.bounds, self.domains
        )
        rec = memory[0][op_id]
        assert isinstance(rec, OpRecord)
        return (
            (state[0], state[1], state[2], state[3], state[4]),
            durable_slots(state[0]),
            (seq, op_id, rec[1], status, payload),
            outputs,
        )

    def end(self, state: RegistryState, op_id: int, status: int, payload: int) -> tuple[RegistryState, tuple[Any, ...]]:
        """``write(terminalize(state, op_id, status, payload))`` with its outputs."""
        seq = state[7]
        memory, image_ops, entry, outputs = self._memory(state[:5], op_id, status, payload, seq)
        feed = append_feed(state[5], entry, self.bounds.feed_capacity)
        image = _new(DurableImage, (image_ops, memory[3], feed, seq, seq + 1))
        return _new(RegistryState, (*memory, feed, seq, seq + 1, image)), outputs

    def end_all(self, state: RegistryState, status: int, payload: int) -> tuple[RegistryState, tuple[Any, ...]]:
        """Every active operation ended in registration order, then one durable write when at
        least one was ended (``terminate_owner``)."""
        order = state[1]
        if not order:
            return state, ()
        memory: Memory = state[:5]
        feed, seq = state[5], state[7]
        outputs: tuple[Any, ...] = ()
        image_ops: tuple[Slot, ...] = ()
        for op_id in order:
            memory, image_ops, entry, out = self._memory(memory, op_id, status, payload, seq)
            feed = append_feed(feed, entry, self.bounds.feed_capacity)
            outputs += out
            seq += 1
        image = _new(DurableImage, (image_ops, memory[3], feed, seq - 1, seq))
        return _new(RegistryState, (*memory, feed, seq - 1, seq, image)), outputs

    def collect(self, state: RegistryState) -> tuple[RegistryState, tuple[Any, ...]] | None:
        """What ``collect_completed`` does to ``state`` and returns, or ``None`` when nothing
        can be collected (the call changes nothing)."""
        key = (state[0], state[3], state[4])
        got = self.collected.get(key)
        if got is None and key not in self.collected:
            got = self.collected[key] = self._collect(*key)
        if got is None:
            return None
        ops, kept, image_ops, returned = got
        image = _new(DurableImage, (image_ops, kept, state[5], state[6], state[7]))
        return _new(
            RegistryState, (ops, state[1], state[2], kept, state[4], state[5], state[6], state[7], image)
        ), returned

    def _collect(self, ops: tuple[Slot, ...], completed: tuple[int, ...], barrier: tuple[int, ...]) -> Collected | None:
        taken = tuple(i for i in completed if i not in barrier)
        if not taken:
            return None
        views = self.domains.views
        returned = []
        for op_id in taken:
            rec = ops[op_id]
            assert isinstance(rec, OpRecord)
            returned.append((op_id, views[(rec.outcome, rec.payload)]))
        slots = list(ops)
        for op_id in taken:
            slots[op_id] = ()
        kept = tuple(i for i in completed if i in barrier)
        new_slots = tuple(slots)
        return new_slots, kept, durable_slots(new_slots), tuple(returned)
