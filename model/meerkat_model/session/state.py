"""The state of the session-runtime model: compact, immutable, hashable.

A state holds both what the process has in memory and what the store holds, so a crash
(memory discarded) and a recovery (memory rebuilt from the store) are ordinary steps:

- ``attrs``: per input id, the attributes fixed when it was accepted (``None``: never accepted).
  Ids are accepted lowest-first and never reused, so accepted ids always form a prefix. Once an
  input is terminal for good (terminal in the store and in memory), its lane and supersession key
  can never matter again and are forgotten (set to queue / no key), so that states differing only
  in them are one state; its idempotency key and durability still matter and are kept. Its
  attempt count is forgotten too (reported as 0), except for an input abandoned for exhausted
  attempts, whose count (3) is part of its outcome.
- ``durable``: the store's view: the lifecycle record, one row per stored input, the order of
  the stored non-terminal rows per lane (admission order) and which rows have a boundary receipt.
- ``memory``: the registered session in memory, or ``None`` when it is not registered (never
  registered, unregistered, or crashed).
- ``waiters``: per input id, its completion handle as the caller holds it. Handles outlive an
  unregistered session; a crash (the process dies) drops them all.
- ``destroyed``: set by the step that commits Destroyed, so "Destroyed is absorbing" is checkable
  on states.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from meerkat_model.machine import Rejected
from meerkat_model.vocab import rejections
from meerkat_model.vocab.statuses import AbandonKind, InputPhase, RegistrationPhase, RuntimePhase

NO_ID = -1
"""No input id (no current run, no superseding input)."""
NO_KEY = -1
"""No idempotency key / no supersession key."""
NOT_REGISTERED = Rejected(rejections.SESSION_NOT_FOUND, "the session is not registered")
"""The refusal of a step that needs the session registered (in memory)."""


class Lane(enum.IntEnum):
    """The work lane of an input: the steer lane is drained before the queue lane."""

    QUEUE = 0
    STEER = 1


class Waiter(enum.IntEnum):
    """A completion handle as its caller sees it: pending, or resolved exactly once."""

    NONE = 0
    PENDING = 1
    COMPLETED = 2
    COMPLETED_WITHOUT_RESULT = 3
    CANCELLED = 4
    ABANDONED_MAX_ATTEMPTS = 5
    ABANDONED_SUPERSEDED = 6
    ABANDONED_COALESCED = 7
    TERMINATED_RETIRED = 8
    TERMINATED_RESET = 9
    TERMINATED_STOPPED = 10
    TERMINATED_DESTROYED = 11
    TERMINATED_UNREGISTERED = 12
    OWNERSHIP_LOST = 13


TERMINATED_BY: dict[AbandonKind, Waiter] = {
    AbandonKind.RETIRED: Waiter.TERMINATED_RETIRED,
    AbandonKind.RESET: Waiter.TERMINATED_RESET,
    AbandonKind.STOPPED: Waiter.TERMINATED_STOPPED,
    AbandonKind.DESTROYED: Waiter.TERMINATED_DESTROYED,
}
"""The waiter outcome of an input abandoned by a control operation."""


class Attrs(NamedTuple):
    """What an input was accepted with (never changes afterwards)."""

    lane: Lane
    idem: int  # idempotency key, or NO_KEY
    skey: int  # supersession key, or NO_KEY
    ephemeral: bool


class Row(NamedTuple):
    """One input's lifecycle (in memory, or as a stored row).

    ``reason`` is the abandon reason (``-1`` unless Abandoned); ``ref`` is the superseding or
    aggregate input id (``NO_ID`` unless Superseded / Coalesced)."""

    phase: InputPhase
    attempts: int
    reason: int = -1
    ref: int = NO_ID


class Memory(NamedTuple):
    """A registered session as the process holds it.

    ``run`` is the input of the current run (one input per run) or ``NO_ID``; ``pre_run`` the
    phase the run started from (``-1`` without a run)."""

    registration: RegistrationPhase
    phase: RuntimePhase
    run: int
    pre_run: int
    queue: tuple[int, ...]
    steer: tuple[int, ...]
    rows: tuple[Row | None, ...]


class Durable(NamedTuple):
    """What the store holds for the session.

    ``record`` is the lifecycle record's phase (``-1``: no record yet); ``queue``/``steer`` list
    the stored non-terminal rows of each lane in admission order; ``receipts[i]`` tells whether
    the boundary receipt of input ``i``'s last run is stored."""

    record: int
    rows: tuple[Row | None, ...]
    queue: tuple[int, ...]
    steer: tuple[int, ...]
    receipts: tuple[bool, ...]


class SessionState(NamedTuple):
    attrs: tuple[Attrs | None, ...]
    durable: Durable
    memory: Memory | None
    waiters: tuple[Waiter, ...]
    destroyed: bool


NO_RECORD = -1


_UNCHANGED: object = object()


def _install_fast_replace(cls: type) -> None:
    """Give the record class ``cls`` a ``_replace`` that behaves like the standard one (a
    ``ValueError`` naming unknown fields) without its generic machinery (the steps call it
    millions of times in a search): one keyword parameter per field, so the interpreter binds
    the changes and no dictionary of them is walked."""
    fields: tuple[str, ...] = cls._fields  # type: ignore[attr-defined]
    params = ", ".join(f"{name}=_UNCHANGED" for name in fields)
    values = ", ".join(f"self[{k}] if {name} is _UNCHANGED else {name}" for k, name in enumerate(fields))
    source = (
        f"def _replace(self, *, {params}, **unknown):\n"
        "    if unknown:\n"
        "        raise ValueError(f'Got unexpected field names: {list(unknown)!r}')\n"
        f"    return new(type(self), ({values},))\n"
    )
    namespace: dict[str, object] = {"_UNCHANGED": _UNCHANGED, "new": tuple.__new__}
    exec(source, namespace)  # generated from the record's own field names
    cls._replace = namespace["_replace"]  # type: ignore[attr-defined]


for _record in (Attrs, Row, Memory, Durable, SessionState):
    _install_fast_replace(_record)


def initial_state(inputs: int) -> SessionState:
    """Nothing registered, nothing stored, ``inputs`` unused input ids."""
    none_rows: tuple[Row | None, ...] = (None,) * inputs
    return SessionState(
        attrs=(None,) * inputs,
        durable=Durable(NO_RECORD, none_rows, (), (), (False,) * inputs),
        memory=None,
        waiters=(Waiter.NONE,) * inputs,
        destroyed=False,
    )


def with_row(rows: tuple[Row | None, ...], i: int, row: Row | None) -> tuple[Row | None, ...]:
    """``rows`` with entry ``i`` replaced."""
    return (*rows[:i], row, *rows[i + 1 :])


def with_waiter(waiters: tuple[Waiter, ...], i: int, waiter: Waiter) -> tuple[Waiter, ...]:
    """``waiters`` with entry ``i`` replaced."""
    return (*waiters[:i], waiter, *waiters[i + 1 :])


def lane_of(memory: Memory, lane: Lane) -> tuple[int, ...]:
    return memory.steer if lane is Lane.STEER else memory.queue


def durable_form(phase: RuntimePhase) -> RuntimePhase:
    """What the lifecycle record stores for a live phase: an attached loop only exists in-process,
    so Attached is stored as Idle."""
    return RuntimePhase.IDLE if phase is RuntimePhase.ATTACHED else phase


def is_terminal(row: Row) -> bool:
    return row.phase.is_terminal


TERMINAL_PHASES = frozenset(p for p in InputPhase if p.is_terminal)
"""The terminal input phases (a set lookup: cheaper than the enum property in hot loops)."""
_EXHAUSTED = int(AbandonKind.MAX_ATTEMPTS_EXHAUSTED)


def _spent(state: SessionState) -> bool:
    """Whether some input terminal for good still has a lane, a supersession key or an attempt
    count to forget (checked without allocating: most steps have nothing to forget)."""
    memory = state.memory
    d_rows = state.durable.rows
    m_rows = memory.rows if memory is not None else None
    terminal = TERMINAL_PHASES
    for i, attr in enumerate(state.attrs):
        if attr is None:
            continue
        stored = d_rows[i]
        if stored is None or stored[0] not in terminal:
            continue
        live = m_rows[i] if m_rows is not None else None
        if live is not None and live[0] not in terminal:
            continue
        if attr[0] is not Lane.QUEUE or attr[2] != NO_KEY:
            return True
        if stored[2] == _EXHAUSTED:
            continue
        if stored[1] or (live is not None and live[1]):
            return True
    return False


_Spent = tuple[tuple["Attrs | None", ...], tuple["Row | None", ...], "tuple[Row | None, ...] | None"]
_FORGOTTEN: dict[_Spent, _Spent | tuple[()]] = {}  # () when there is nothing to forget
_FORGOTTEN_LIMIT = 1 << 17


def forget_spent_attributes(state: SessionState) -> SessionState:
    """``state`` with what can no longer matter about inputs that are terminal for good (terminal
    in the store, and in memory when memory holds them) reset: their lane and supersession key
    (they only matter while an input can be queued) and their attempt count (kept only for an
    input abandoned for exhausted attempts, where it is part of the outcome). ``state`` itself
    when there is nothing to forget."""
    memory = state.memory
    key: _Spent = (state.attrs, state.durable.rows, memory.rows if memory is not None else None)
    kept = _FORGOTTEN.get(key)
    if kept is None:
        if len(_FORGOTTEN) >= _FORGOTTEN_LIMIT:
            _FORGOTTEN.clear()
        kept = _FORGOTTEN[key] = _forgotten(state) if _spent(state) else ()
    if not kept:
        return state
    attrs, d_rows, m_rows = kept
    return SessionState(
        attrs,
        state.durable._replace(rows=d_rows),
        memory._replace(rows=m_rows) if memory is not None and m_rows is not None else None,
        state.waiters,
        state.destroyed,
    )


def _forgotten(state: SessionState) -> _Spent:
    """The attributes, stored rows and rows in memory of ``state`` once what is spent is reset
    (see :func:`forget_spent_attributes`; a pure function of these three parts)."""
    memory = state.memory
    attrs = list(state.attrs)
    d_rows = list(state.durable.rows)
    m_rows = list(memory.rows) if memory is not None else []
    for i, attr in enumerate(state.attrs):
        stored = d_rows[i]
        if attr is None or stored is None or stored.phase not in TERMINAL_PHASES:
            continue
        live = m_rows[i] if memory is not None else None
        if live is not None and live.phase not in TERMINAL_PHASES:
            continue
        if attr.lane is not Lane.QUEUE or attr.skey != NO_KEY:
            attrs[i] = Attrs(Lane.QUEUE, attr.idem, NO_KEY, attr.ephemeral)
        if stored.reason == AbandonKind.MAX_ATTEMPTS_EXHAUSTED:
            continue
        if stored.attempts:
            d_rows[i] = stored._replace(attempts=0)
        if live is not None and live.attempts:
            m_rows[i] = live._replace(attempts=0)
    return tuple(attrs), tuple(d_rows), tuple(m_rows) if memory is not None else None
