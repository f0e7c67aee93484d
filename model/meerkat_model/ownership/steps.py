"""The steps of the ownership model. Each worker's session step is the session model's own rule
(``SessionMachine.bind``) applied to the worker's view (the shared store and its memory); this
module adds only what ownership changes:

- **claim** (``claim_register``): allowed when there is no lease, it has expired, or it is the
  claimant's own; the token grows by one; then the session model's registration (recovery and
  its write-back) and the operation registry recovered from the store
  (``meerkat_model.ownership.op_steps`` has the registry's own steps). A registration whose
  recovery fails releases the fresh claim (the token stays spent).
- **fence**: a session step whose durable write the store takes only while the writer's token
  is the lease's (``fencing`` on); otherwise the write is refused (nothing written), the step
  fails with ``ownership_lost`` and the worker detaches the session (memory gone, pending
  handles resolved ``ownership_lost``).
- **renew** / **expire** / **release** / **crash**: the lease's life.
- **ambiguous write** and **reconcile**: docs/semantics.md, "Unknown write outcomes". Memory
  keeps its state, except after a run's boundary commit: memory is then what the session model's
  failed boundary commit leaves (the input queued again, the loop detached, the executor told to
  stop), as the runtime does for any boundary commit that did not return.
"""

from __future__ import annotations

from collections.abc import Callable

from meerkat_model.machine import Rejected, Stepped
from meerkat_model.ownership.bounds import OwnershipBounds
from meerkat_model.ownership.state import (
    NO_OWNER,
    Lease,
    OwnershipState,
    Worker,
    detached,
    holds_fence,
    view,
    with_worker,
)
from meerkat_model.session import registration
from meerkat_model.session.actions import (
    WRITES_WHEN_OK,
    BoundaryCommitFails,
    ExecutorFailed,
    ExecutorSucceeded,
    SessionAction,
)
from meerkat_model.session.durable import record_of
from meerkat_model.session.recovery import recover
from meerkat_model.session.state import Memory, SessionState, Waiter
from meerkat_model.session.waiters import resolution_outputs, resolve_from_store
from meerkat_model.vocab import rejections
from meerkat_model.vocab.statuses import RegistrationPhase, RuntimePhase

StepResult = Stepped[OwnershipState] | Rejected
Bind = Callable[..., Callable[[SessionState], Stepped[SessionState] | Rejected]]
"""``SessionMachine.bind``: a session action (and ``write_ok``) -> its step function."""

_KEPT_RECORDS = (RuntimePhase.STOPPED, RuntimePhase.RETIRED, RuntimePhase.DESTROYED)
_ALWAYS_WRITE = (ExecutorSucceeded, ExecutorFailed)
IN_DOUBT = Rejected(
    rejections.DURABLE_WRITE_FAILED, "the session is in doubt (a write's outcome is unknown): it must reconcile first"
)


def not_registered(w: int) -> Rejected:
    return Rejected(rejections.SESSION_NOT_FOUND, f"the session is not registered on worker {w}")


def lost(state: OwnershipState, w: int, why: str, name: str) -> Stepped[OwnershipState]:
    """Worker ``w`` detaches the session: memory gone, handles resolved ``ownership_lost``."""
    waiters, ids = detached(state.workers[w].waiters, Waiter.OWNERSHIP_LOST)
    after = with_worker(state, w, Worker(None, waiters, 0, False))
    outputs = (("error", rejections.OWNERSHIP_LOST, why), *resolution_outputs(ids, Waiter.OWNERSHIP_LOST))
    return Stepped(after, outputs, name)


def _took(
    state: OwnershipState, w: int, post: SessionState, *, in_doubt: bool, boundary: bool = False
) -> OwnershipState:
    """``state`` after the store took worker ``w``'s write of the session step that led to
    ``post`` (``boundary``: a run's boundary commit, recording its input Consumed); memory
    becomes ``post``'s unless the worker is left in doubt."""
    before = state.workers[w]
    commits = state.commits
    memory = before.memory
    if boundary and memory is not None:
        run = memory.run
        commits = (*commits[:run], min(commits[run] + 1, 2), *commits[run + 1 :])
    undone = state.undone
    record = state.durable.record
    if record in _KEPT_RECORDS and post.durable.record != record:
        undone = undone or memory is None or record_of(memory) != record
    worker = before if in_doubt else before._replace(memory=post.memory, waiters=post.waiters)
    return with_worker(
        state._replace(
            attrs=post.attrs, durable=post.durable, destroyed=post.destroyed, commits=commits, undone=undone
        ),
        w,
        worker._replace(in_doubt=in_doubt),
    )


def _writes(bind: Bind, inner: SessionAction, before: SessionState, post: SessionState) -> bool:
    """Whether the session step ``inner`` wrote to the store (even when it wrote what was there)."""
    if post.durable != before.durable or isinstance(inner, _ALWAYS_WRITE):
        return True
    if type(inner) not in WRITES_WHEN_OK:
        return False
    failed = bind(inner, write_ok=False)(before)
    return isinstance(failed, Rejected) and failed.kind == rejections.DURABLE_WRITE_FAILED


def claim_register(state: OwnershipState, w: int, b: OwnershipBounds) -> StepResult:
    worker = state.workers[w]
    if worker.memory is not None:
        return Stepped(state, (("already_registered",),), "register_noop")
    lease = state.lease
    if lease.owner not in (NO_OWNER, w) and not lease.expired:
        return Rejected(rejections.LEASE_HELD, f"worker {lease.owner} holds the lease (token {lease.token})")
    if lease.token >= b.claims:
        return Rejected(rejections.VALIDATION_FAILED, f"the model's bound of {b.claims} claims is reached")
    token = lease.token + 1
    claimed = with_worker(state._replace(lease=Lease(w, token, False)), w, Worker(None, worker.waiters, token, False))
    result = registration.register(view(claimed, w))
    if isinstance(result, Rejected):
        released = claimed._replace(lease=Lease(w, token, True))
        released = with_worker(released, w, Worker(None, worker.waiters, 0, False))
        return Stepped(released, (("error", result.kind, result.detail),), "claim_register_refused")
    took_over = lease.owner not in (NO_OWNER, w)
    name = "takeover" if took_over else "claim_register"
    after = _took(claimed, w, result.state, in_doubt=False)
    seeded = after.workers[w]._replace(ops=after.ops, next_seq=after.next_seq)  # the registry recovered
    return Stepped(with_worker(after, w, seeded), result.outputs, name)


def renew(state: OwnershipState, w: int) -> StepResult:
    if state.workers[w].memory is None:
        return not_registered(w)
    if holds_fence(state, w):
        return Stepped(state._replace(lease=state.lease._replace(expired=False)), (("renewed",),), "renew")
    return lost(state, w, "the lease was claimed by another worker", "renew_lost")


def expire(state: OwnershipState) -> StepResult:
    lease = state.lease
    if lease.owner == NO_OWNER or lease.expired:
        return Rejected(rejections.VALIDATION_FAILED, "no current lease to expire")
    return Stepped(state._replace(lease=lease._replace(expired=True)), (("expired",),), "expire")


def release(state: OwnershipState, w: int) -> StepResult:
    worker = state.workers[w]
    if worker.memory is None:
        return not_registered(w)
    result = registration.unregister(view(state, w))
    assert isinstance(result, Stepped)
    held = holds_fence(state, w)
    lease = state.lease._replace(expired=True) if held else state.lease
    after = with_worker(state._replace(lease=lease), w, Worker(None, result.state.waiters, 0, False))
    return Stepped(after, result.outputs, "release" if held else "release_stale")


def crash(state: OwnershipState, w: int) -> StepResult:
    worker = state.workers[w]
    if worker.memory is None:
        return not_registered(w)
    return Stepped(
        with_worker(state, w, Worker(None, (Waiter.NONE,) * len(worker.waiters), 0, False)), (("crashed",),), "crash"
    )


def session_step(state: OwnershipState, w: int, inner: SessionAction, bind: Bind, fencing: bool) -> StepResult:
    worker = state.workers[w]
    if worker.in_doubt:
        return IN_DOUBT
    before = view(state, w)
    result = bind(inner)(before)
    if isinstance(result, Rejected):
        return result
    post = result.state
    if not _writes(bind, inner, before, post):
        return Stepped(
            with_worker(state, w, worker._replace(memory=post.memory, waiters=post.waiters)),
            result.outputs,
            result.transition,
        )
    if fencing and not holds_fence(state, w):
        return lost(state, w, "the store refused the write: the lease was claimed by another worker", "write_refused")
    boundary = isinstance(inner, ExecutorSucceeded)
    return Stepped(_took(state, w, post, in_doubt=False, boundary=boundary), result.outputs, result.transition)


def ambiguous(
    state: OwnershipState, w: int, inner: SessionAction, landed: bool, bind: Bind, fencing: bool
) -> StepResult:
    worker = state.workers[w]
    if worker.in_doubt:
        return IN_DOUBT
    before = view(state, w)
    result = bind(inner)(before)
    if isinstance(result, Rejected):
        return result
    if not _writes(bind, inner, before, result.state):
        return Rejected(rejections.VALIDATION_FAILED, f"{inner!r} writes nothing here")
    fenced_out = fencing and not holds_fence(state, w)
    if landed and fenced_out:  # the store refused it before the outcome could be lost
        return lost(state, w, "the store refused the write: the lease was claimed by another worker", "write_refused")
    unknown = (("error", rejections.DURABLE_WRITE_FAILED, "outcome unknown; the store cannot be read"),)
    boundary = isinstance(inner, ExecutorSucceeded)
    left = worker._replace(in_doubt=True)
    if boundary:  # memory as after a failed boundary commit: the input queued again, the loop detached
        failed = bind(BoundaryCommitFails())(before)
        assert isinstance(failed, Stepped)
        left = left._replace(memory=failed.state.memory, waiters=failed.state.waiters)
    if landed:
        took = _took(state, w, result.state, in_doubt=True, boundary=boundary)
        return Stepped(with_worker(took, w, left), unknown, "ambiguous_write_landed")
    return Stepped(with_worker(state, w, left), unknown, "ambiguous_write_lost")


def reconcile(state: OwnershipState, w: int) -> StepResult:
    worker = state.workers[w]
    memory = worker.memory
    if memory is None or not worker.in_doubt:
        return Rejected(rejections.VALIDATION_FAILED, f"worker {w} is not in doubt")
    durable = state.durable
    destroyed = durable.record == RuntimePhase.DESTROYED
    recovered = recover(state.attrs, durable._replace(record=RuntimePhase.STOPPED) if destroyed else durable)
    if isinstance(recovered, Rejected):
        return Rejected(rejections.DURABLE_WRITE_FAILED, f"cannot reconcile: {recovered.detail}")
    phase = RuntimePhase.DESTROYED if destroyed else recovered.phase
    halted = phase in (RuntimePhase.STOPPED, RuntimePhase.DESTROYED)
    keep_loop = memory.registration is RegistrationPhase.ACTIVE and not halted
    if keep_loop and phase is RuntimePhase.IDLE:
        phase = RuntimePhase.ATTACHED
    registered = RegistrationPhase.ACTIVE if keep_loop else RegistrationPhase.QUEUING
    new_memory = Memory(
        registered, phase, recovered.run, recovered.pre_run, recovered.queue, recovered.steer, recovered.rows
    )
    halted_as = (Waiter.TERMINATED_DESTROYED if destroyed else Waiter.TERMINATED_STOPPED) if halted else None
    waiters, outputs = resolve_from_store(worker.waiters, recovered.rows, halted_as)
    after = with_worker(state, w, worker._replace(memory=new_memory, waiters=waiters, in_doubt=False))
    return Stepped(after, (("reconciled", phase.name.lower()), *outputs), "reconcile")
