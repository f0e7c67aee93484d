"""The state of the ownership model: one store, several workers, compact and hashable.

- ``attrs``, ``durable``, ``destroyed``: as in the session model (``meerkat_model.session.state``);
  the store is shared by every worker.
- ``lease``: the store's lease row: owner (a worker index, ``NO_OWNER`` before the first claim),
  token (grows by one with every claim, never on renew) and whether it has expired (abstract
  time: ``expire`` makes it so; a claim or a renewal makes it current again).
- ``workers``: per worker, its memory of the session (the session model's ``Memory``, ``None``
  when not registered), the completion handles its callers hold, the token of its claim (0 when
  it holds none) and whether it is *in doubt* (a write whose outcome it could not learn).
- ``commits``: per input, how many boundary commits (run ends that recorded it Consumed) the
  store took, capped at 2: history kept so "no input consumed by two runs" is a state property.
- ``undone``: set when the store took a write that moved the lifecycle record away from Stopped,
  Retired or Destroyed, written by a worker whose memory had not seen that record.
- ``ops``, ``next_seq``: the durable part of the session's operation registry: per operation id
  its stored slot (``meerkat_model.ownership.op_slots``: nothing, or terminal with its outcome
  and completion sequence number) and the next completion sequence number. A worker's memory of
  the registry is ``Worker.ops`` / ``Worker.next_seq`` (registered operations are memory only).
- ``high_seq``, ``seq_reused``, ``op_undone``: history of the registry's terminal writes the
  store took: the largest completion sequence number, whether one was taken twice, whether a
  stored terminal operation was rewritten.
- ``op_writers``: per operation id the token of the worker that wrote its stored slot (what the
  runtime's outcome and completion time tell apart); ``op_misreported``: history, set when a
  worker published (resolved its watchers with) a terminal operation that is not its write in
  the store.
"""

from __future__ import annotations

from typing import NamedTuple

from meerkat_model.session.state import Attrs, Durable, Memory, SessionState, Waiter
from meerkat_model.session.state import initial_state as session_initial_state

NO_OWNER = -1
"""The lease's owner before any claim."""


class Lease(NamedTuple):
    owner: int
    token: int
    expired: bool


class Worker(NamedTuple):
    memory: Memory | None
    waiters: tuple[Waiter, ...]
    token: int
    in_doubt: bool
    ops: tuple[int, ...] = ()
    """Per operation id its slot in this worker's registry (empty when not registered)."""
    next_seq: int = 0
    """The next completion sequence number this worker hands out (0 when not registered)."""
    pending: tuple[int, ...] = ()
    """While in doubt after a terminal write: ``(op, slot)`` it wrote (empty otherwise)."""


class OwnershipState(NamedTuple):
    attrs: tuple[Attrs | None, ...]
    durable: Durable
    destroyed: bool
    lease: Lease
    workers: tuple[Worker, ...]
    commits: tuple[int, ...]
    undone: bool
    ops: tuple[int, ...] = ()
    next_seq: int = 1
    high_seq: int = 0
    seq_reused: bool = False
    op_undone: bool = False
    op_writers: tuple[int, ...] = ()
    """Per operation id the token of the worker whose write the stored slot is (0: none)."""
    op_misreported: bool = False
    """History: a worker published a terminal outcome the store did not hold as its write."""


def initial_state(inputs: int, workers: int, ops: int = 0) -> OwnershipState:
    """Nothing claimed, nothing stored, no worker registered; ``ops`` operation ids."""
    session = session_initial_state(inputs)
    idle = Worker(None, session.waiters, 0, False)
    return OwnershipState(
        attrs=session.attrs,
        durable=session.durable,
        destroyed=False,
        lease=Lease(NO_OWNER, 0, True),
        workers=(idle,) * workers,
        commits=(0,) * inputs,
        undone=False,
        ops=(0,) * ops,
        op_writers=(0,) * ops,
    )


def view(state: OwnershipState, w: int) -> SessionState:
    """Worker ``w``'s session as the session model sees it: the shared store and its memory."""
    worker = state.workers[w]
    return SessionState(state.attrs, state.durable, worker.memory, worker.waiters, state.destroyed)


def with_worker(state: OwnershipState, w: int, worker: Worker) -> OwnershipState:
    """``state`` with worker ``w`` replaced."""
    return state._replace(workers=(*state.workers[:w], worker, *state.workers[w + 1 :]))


def holds_fence(state: OwnershipState, w: int) -> bool:
    """Whether worker ``w``'s claim is the lease's (owner and token): its writes are fenced in."""
    worker = state.workers[w]
    return worker.token != 0 and state.lease.owner == w and state.lease.token == worker.token


def detached(waiters: tuple[Waiter, ...], outcome: Waiter) -> tuple[tuple[Waiter, ...], tuple[int, ...]]:
    """Every pending handle resolved with ``outcome``; returns the handles and the ids resolved."""
    ids = tuple(i for i, w in enumerate(waiters) if w is Waiter.PENDING)
    return tuple(outcome if w is Waiter.PENDING else w for w in waiters), ids
