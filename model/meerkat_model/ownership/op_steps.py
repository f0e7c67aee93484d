"""The operation registry's steps in the ownership model (docs/model-ownership.md, "Operations").

A worker's registry lives in its memory (``Worker.ops``, ``Worker.next_seq``); the store keeps
only its durable part: terminal operations with their completion sequence numbers, and the next
sequence number (``OwnershipState.ops``, ``OwnershipState.next_seq``). Registering an operation
is memory only. A terminal transition takes the worker's next sequence number from its memory
(seeded from the store when it claimed the session) and is written before it is applied, with
the worker's token: with ``fencing`` on the store refuses a stale token (nothing written, the
worker detaches with ``ownership_lost``, exactly like a refused session write).

A terminal write may also leave its outcome unknown with the store unreadable (``ambiguous``
bound): the store took it or not, memory keeps the operation running and the worker is in doubt
with the write pending. Reconciling it (docs/ops-registry.md, "Unknown outcomes") with
``readback`` on: a worker whose token is no longer the lease's detaches with ``ownership_lost``
and publishes nothing (another worker may have written the same operation id under the same
number since); else the write landed iff the store holds the operation as written by this
worker (outcome, number and writer), and was dropped iff the store holds it as before.
"""

from __future__ import annotations

from meerkat_model.machine import Rejected, Stepped
from meerkat_model.ownership import op_slots
from meerkat_model.ownership.op_slots import ABSENT, RUNNING
from meerkat_model.ownership.state import OwnershipState, holds_fence, with_worker
from meerkat_model.ownership.steps import IN_DOUBT, lost, not_registered
from meerkat_model.vocab import rejections

StepResult = Stepped[OwnershipState] | Rejected
OPS_IN_DOUBT = Rejected(
    rejections.PERSISTENCE_FAILED,
    "the registry is in doubt (a terminal write's outcome is unknown): it reads the store first",
)
OUTCOME_RULES = ("complete_operation", "fail_operation")
"""The registry call (and declared transition) of each outcome (``op_slots.OUTCOMES``)."""


def register_op(state: OwnershipState, w: int, op: int) -> StepResult:
    """``register_operation`` (and provisioning succeeded): memory only, never written."""
    worker = state.workers[w]
    if worker.memory is None:
        return not_registered(w)
    if worker.in_doubt:
        return OPS_IN_DOUBT if worker.pending else IN_DOUBT
    if worker.ops[op] != ABSENT:
        return Rejected(rejections.ALREADY_REGISTERED, f"operation {op} is already tracked by worker {w}")
    ops = (*worker.ops[:op], RUNNING, *worker.ops[op + 1 :])
    return Stepped(with_worker(state, w, worker._replace(ops=ops)), (("registered", op),), "register_operation")


def finish_op(state: OwnershipState, w: int, op: int, outcome: int, fencing: bool) -> StepResult:
    """A terminal transition of a running operation: the store takes the operation terminal
    with the worker's next sequence number (and the number after it), then memory does."""
    worker = state.workers[w]
    if worker.memory is None:
        return not_registered(w)
    if worker.in_doubt:
        return OPS_IN_DOUBT if worker.pending else IN_DOUBT
    if worker.ops[op] != RUNNING:
        return Rejected(rejections.INVALID_TRANSITION, f"operation {op} is not running on worker {w}")
    if fencing and not holds_fence(state, w):
        return lost(state, w, "the store refused the write: the lease was claimed by another worker", "write_refused")
    seq = worker.next_seq
    slot = op_slots.terminal(outcome, seq)
    mine = worker._replace(ops=(*worker.ops[:op], slot, *worker.ops[op + 1 :]), next_seq=seq + 1)
    return Stepped(with_worker(_stored(state, w, op, slot), w, mine), (("terminal", op, seq),), OUTCOME_RULES[outcome])


def _stored(state: OwnershipState, w: int, op: int, slot: int) -> OwnershipState:
    """``state`` after the store took worker ``w``'s terminal write of ``op`` as ``slot``."""
    seq = op_slots.seq_of(slot)
    stored = state.ops
    writers = state.op_writers
    return state._replace(
        ops=(*stored[:op], slot, *stored[op + 1 :]),
        next_seq=seq + 1,
        high_seq=max(state.high_seq, seq),
        seq_reused=state.seq_reused or seq <= state.high_seq,
        op_undone=state.op_undone or (op_slots.is_terminal(stored[op]) and stored[op] != slot),
        op_writers=(*writers[:op], state.workers[w].token, *writers[op + 1 :]),
    )


def ambiguous_finish_op(
    state: OwnershipState, w: int, op: int, outcome: int, landed: bool, fencing: bool
) -> StepResult:
    """A terminal transition whose write fails with its outcome unknown and the store unreadable:
    the store took it (``landed``) or not; memory keeps the operation running, the worker is in
    doubt with the write pending. A stale token with ``fencing`` on is refused as usual when the
    store answered (``landed``); unanswered, the worker cannot tell."""
    worker = state.workers[w]
    if worker.memory is None:
        return not_registered(w)
    if worker.in_doubt:
        return IN_DOUBT
    if worker.ops[op] != RUNNING:
        return Rejected(rejections.INVALID_TRANSITION, f"operation {op} is not running on worker {w}")
    fenced_out = fencing and not holds_fence(state, w)
    if landed and fenced_out:
        return lost(state, w, "the store refused the write: the lease was claimed by another worker", "write_refused")
    slot = op_slots.terminal(outcome, worker.next_seq)
    left = worker._replace(in_doubt=True, pending=(op, slot))
    unknown = (("error", rejections.PERSISTENCE_FAILED, "outcome unknown; the store cannot be read"),)
    if landed:
        return Stepped(with_worker(_stored(state, w, op, slot), w, left), unknown, "ambiguous_write_landed")
    return Stepped(with_worker(state, w, left), unknown, "ambiguous_write_lost")


def reconcile_op(state: OwnershipState, w: int, readback: bool) -> StepResult:
    """Settle worker ``w``'s pending terminal write (module docstring). ``readback`` off: the
    write counts as landed when the stored slot and next number are the ones it would leave,
    whoever wrote them (the protection off)."""
    worker = state.workers[w]
    op, slot = worker.pending
    if readback and not holds_fence(state, w):
        return lost(
            state, w, "another worker claimed the session: the write in doubt is not published", "reconcile_lost"
        )
    seq = op_slots.seq_of(slot)
    stored = state.ops[op]
    mine = state.op_writers[op] == worker.token
    landed = stored == slot and state.next_seq == seq + 1 and (mine or not readback)
    if landed:
        published = worker._replace(
            ops=(*worker.ops[:op], slot, *worker.ops[op + 1 :]), next_seq=seq + 1, in_doubt=False, pending=()
        )
        after = state._replace(op_misreported=state.op_misreported or not mine)
        outputs = (("reconciled", "landed"), ("terminal", op, seq))
        return Stepped(with_worker(after, w, published), outputs, "reconcile")
    if stored == ABSENT and state.next_seq == seq:
        dropped = worker._replace(in_doubt=False, pending=())
        return Stepped(with_worker(state, w, dropped), (("reconciled", "dropped"),), "reconcile")
    return Rejected(
        rejections.DURABLE_WRITE_FAILED, f"cannot reconcile: the store holds neither state of operation {op}"
    )
