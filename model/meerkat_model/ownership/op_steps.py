"""The operation registry's steps in the ownership model (docs/model-ownership.md, "Operations").

A worker's registry lives in its memory (``Worker.ops``, ``Worker.next_seq``); the store keeps
only its durable part: terminal operations with their completion sequence numbers, and the next
sequence number (``OwnershipState.ops``, ``OwnershipState.next_seq``). Registering an operation
is memory only. A terminal transition takes the worker's next sequence number from its memory
(seeded from the store when it claimed the session) and is written before it is applied, with
the worker's token: with ``fencing`` on the store refuses a stale token (nothing written, the
worker detaches with ``ownership_lost``, exactly like a refused session write).
"""

from __future__ import annotations

from meerkat_model.machine import Rejected, Stepped
from meerkat_model.ownership import op_slots
from meerkat_model.ownership.op_slots import ABSENT, RUNNING
from meerkat_model.ownership.state import OwnershipState, holds_fence, with_worker
from meerkat_model.ownership.steps import IN_DOUBT, lost, not_registered
from meerkat_model.vocab import rejections

StepResult = Stepped[OwnershipState] | Rejected
OUTCOME_RULES = ("complete_operation", "fail_operation")
"""The registry call (and declared transition) of each outcome (``op_slots.OUTCOMES``)."""


def register_op(state: OwnershipState, w: int, op: int) -> StepResult:
    """``register_operation`` (and provisioning succeeded): memory only, never written."""
    worker = state.workers[w]
    if worker.memory is None:
        return not_registered(w)
    if worker.in_doubt:
        return IN_DOUBT
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
        return IN_DOUBT
    if worker.ops[op] != RUNNING:
        return Rejected(rejections.INVALID_TRANSITION, f"operation {op} is not running on worker {w}")
    if fencing and not holds_fence(state, w):
        return lost(state, w, "the store refused the write: the lease was claimed by another worker", "write_refused")
    seq = worker.next_seq
    slot = op_slots.terminal(outcome, seq)
    stored = state.ops
    after = state._replace(
        ops=(*stored[:op], slot, *stored[op + 1 :]),
        next_seq=seq + 1,
        high_seq=max(state.high_seq, seq),
        seq_reused=state.seq_reused or seq <= state.high_seq,
        op_undone=state.op_undone or (op_slots.is_terminal(stored[op]) and stored[op] != slot),
    )
    mine = worker._replace(ops=(*worker.ops[:op], slot, *worker.ops[op + 1 :]), next_seq=seq + 1)
    return Stepped(with_worker(after, w, mine), (("terminal", op, seq),), OUTCOME_RULES[outcome])
