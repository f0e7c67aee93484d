"""Symmetry reduction: workers are interchangeable (they differ only by name), and so are the
registry's operation ids, so a state and the same state with workers and operation ids renamed
are one state. The representative lists the workers in the order of an integer key of each,
which includes whether it owns the lease (the lease's owner renamed along); with several
operation ids, it is the least (by ``state_key``) of those for every renaming of the ids."""

from __future__ import annotations

from itertools import permutations

from meerkat_model.ownership.state import NO_OWNER, OwnershipState, Worker

_NONE = (-9,)


def worker_key(worker: Worker) -> tuple[object, ...]:
    """A totally ordered key of one worker (``None`` fields spelt as ``(-9,)``)."""
    m = worker.memory
    memory: tuple[object, ...] = _NONE
    if m is not None:
        rows = tuple(_NONE if r is None else tuple(r) for r in m.rows)
        memory = (int(m.registration), int(m.phase), m.run, m.pre_run, m.queue, m.steer, rows)
    return (
        memory,
        tuple(int(w) for w in worker.waiters),
        worker.token,
        worker.in_doubt,
        worker.ops,
        worker.next_seq,
        worker.pending,
    )


def _workers_sorted(state: OwnershipState) -> OwnershipState:
    workers = state.workers
    owner = state.lease.owner
    order = sorted(range(len(workers)), key=lambda w: (worker_key(workers[w]), w == owner))
    if order == list(range(len(workers))):
        return state
    lease = state.lease
    if lease.owner != NO_OWNER:
        lease = lease._replace(owner=order.index(lease.owner))
    return state._replace(workers=tuple(workers[w] for w in order), lease=lease)


def _renamed_ops(state: OwnershipState, order: tuple[int, ...]) -> OwnershipState:
    """``state`` with operation id ``order[i]`` renamed ``i``."""
    workers = tuple(w if not w.ops else w._replace(ops=tuple(w.ops[o] for o in order)) for w in state.workers)
    workers = tuple(
        w if not w.pending else w._replace(pending=(order.index(w.pending[0]), w.pending[1])) for w in workers
    )
    writers = tuple(state.op_writers[o] for o in order) if state.op_writers else ()
    return state._replace(ops=tuple(state.ops[o] for o in order), workers=workers, op_writers=writers)


def state_key(state: OwnershipState) -> tuple[object, ...]:
    """A totally ordered key of the parts of a state renaming operation ids changes."""
    owner = state.lease.owner
    return (state.ops, state.op_writers, tuple((worker_key(w), i == owner) for i, w in enumerate(state.workers)))


def canonical(state: OwnershipState) -> OwnershipState:
    """The representative of ``state`` under renaming of workers and operation ids."""
    if len(state.ops) < 2:
        return _workers_sorted(state)
    candidates = [_workers_sorted(_renamed_ops(state, order)) for order in permutations(range(len(state.ops)))]
    return min(candidates, key=state_key)
