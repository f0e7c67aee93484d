"""Compact, hashable states of the operation-registry model.

Ids are small ints ``0 .. ids-1`` (slot numbers). Every field is an int or a tuple of ints so
states hash fast and compare totally (``min`` over renamings picks a canonical form).

* ``OpRecord`` — one tracked operation. ``outcome`` is the terminal status value of the
  outcome (0: none) and ``payload`` an index into that outcome's payload domain
  (:mod:`meerkat_model.ops.payloads`); ``seq`` is its completion sequence number (0 until
  terminal).
* ``RegistryState`` — the registry: ``ops[i]`` is an ``OpRecord`` or ``()`` when id ``i`` is
  not tracked; ``active_order`` lists the non-terminal ids in registration order (what
  ``terminate_owner`` follows); ``completed`` is ``completed_order``; ``barrier`` the members
  of the active ``wait_all`` in request order (``()``: none); ``feed`` the completion feed
  entries ``(seq, id, kind, outcome, payload)``; ``disk`` the last durable write (``()``:
  nothing written yet), a :class:`DurableImage`.
"""

from __future__ import annotations

from typing import NamedTuple

from meerkat_model.vocab.statuses import OpStatus

NO_OUTCOME = 0


class OpRecord(NamedTuple):
    status: int
    kind: int
    peer_ready: bool
    progress: int
    watchers: int
    outcome: int
    payload: int
    seq: int


FeedEntry = tuple[int, int, int, int, int]  # (seq, id, kind, outcome, payload)
Slot = OpRecord | tuple[()]


class DurableImage(NamedTuple):
    """What a durable write stores: terminal operations, completion order, feed, counters."""

    ops: tuple[Slot, ...]
    completed: tuple[int, ...]
    feed: tuple[FeedEntry, ...]
    watermark: int
    next_seq: int


class RegistryState(NamedTuple):
    ops: tuple[Slot, ...]
    active_order: tuple[int, ...]
    active_count: int
    completed: tuple[int, ...]
    barrier: tuple[int, ...]
    feed: tuple[FeedEntry, ...]
    watermark: int
    next_seq: int
    disk: DurableImage | tuple[()]


def new_record(kind: int) -> OpRecord:
    """A freshly registered operation (Provisioning, nothing reported yet)."""
    return OpRecord(int(OpStatus.PROVISIONING), kind, False, 0, 0, NO_OUTCOME, 0, 0)


def empty_registry(ids: int) -> RegistryState:
    """The initial state: nothing tracked, nothing written, next sequence number 1."""
    return RegistryState(((),) * ids, (), 0, (), (), (), 0, 1, ())


def is_terminal(status: int) -> bool:
    return status >= OpStatus.COMPLETED


def with_slot(ops: tuple[Slot, ...], index: int, value: Slot) -> tuple[Slot, ...]:
    """``ops`` with slot ``index`` replaced."""
    return (*ops[:index], value, *ops[index + 1 :])


def status_of(slot: Slot) -> int:
    """Status value of a slot; 0 when the id is not tracked."""
    return slot[0] if slot else 0
