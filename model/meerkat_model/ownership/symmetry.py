"""Symmetry reduction: workers are interchangeable (they differ only by name), so a state and
the same state with workers renamed are one state. The representative lists the workers in the
order of an integer key of each, which includes whether it owns the lease (the lease's owner
renamed along)."""

from __future__ import annotations

from meerkat_model.ownership.state import NO_OWNER, OwnershipState, Worker

_NONE = (-9,)


def worker_key(worker: Worker) -> tuple[object, ...]:
    """A totally ordered key of one worker (``None`` fields spelt as ``(-9,)``)."""
    m = worker.memory
    memory: tuple[object, ...] = _NONE
    if m is not None:
        rows = tuple(_NONE if r is None else tuple(r) for r in m.rows)
        memory = (int(m.registration), int(m.phase), m.run, m.pre_run, m.queue, m.steer, rows)
    return (memory, tuple(int(w) for w in worker.waiters), worker.token, worker.in_doubt)


def canonical(state: OwnershipState) -> OwnershipState:
    """The representative of ``state`` under renaming of workers."""
    workers = state.workers
    owner = state.lease.owner
    order = sorted(range(len(workers)), key=lambda w: (worker_key(workers[w]), w == owner))
    if order == list(range(len(workers))):
        return state
    lease = state.lease
    if lease.owner != NO_OWNER:
        lease = lease._replace(owner=order.index(lease.owner))
    return state._replace(workers=tuple(workers[w] for w in order), lease=lease)
