"""The run loop: start a run, and every way a run ends (docs/semantics.md, "Run loop").

A run takes one input (steer lane first, else the queue lane's head) while a loop is attached
and the phase drains the queue (Attached, or Retired). The run ends in one of:

- ``executor_succeeded``: the input is Consumed; one boundary commit (receipt + rows);
- ``executor_failed``: the input goes back to the back of its lane, or is Abandoned after its
  3rd failed attempt; one lifecycle commit; the loop keeps draining;
- ``boundary_commit_fails``: the boundary commit fails, nothing was written, so memory returns to
  what the store holds: the input Queued at the head of its lane with the attempt not counted;
  the loop is detached (registration Queuing); phase Idle (Retired stays Retired);
- ``terminal_snapshot_fails``: the lifecycle commit after an executor failure fails: the session
  is unregistered (waiters get ``runtime_terminated``), the store still holds the input as before;
- ``interrupt``: the input is Abandoned(cancelled), its waiter gets ``cancelled``; one lifecycle
  commit. Without a run it is a no-op.

After a run the phase returns to its pre-run phase — Attached when a loop is attached then, else
Idle — and a run that was in flight when the runtime was retired leaves it Retired. A run's end
is named after the phase it leaves: ``<rule>`` (Attached), ``<rule>_retired`` (Retired) or
``<rule>_without_loop`` (Idle: a run ``accept_input_and_run`` started, no loop attached since).
The executor may also cancel the run itself (``executor_cancelled``): it ends as an interrupt.
The caller of a run ``accept_input_and_run`` started learns how it ended (``direct``).
"""

from __future__ import annotations

from typing import NamedTuple

from meerkat_model.machine import Rejected, Stepped
from meerkat_model.session.direct import caller_result
from meerkat_model.session.durable import boundary_commit, full_commit
from meerkat_model.session.state import NO_ID, NOT_REGISTERED, Lane, Memory, Row, SessionState, Waiter, with_row
from meerkat_model.session.waiters import resolution_outputs, resolve, resolve_all_pending
from meerkat_model.vocab import rejections
from meerkat_model.vocab.statuses import MAX_STAGE_ATTEMPTS, AbandonKind, InputPhase, RegistrationPhase, RuntimePhase

StepResult = Stepped[SessionState] | Rejected

_DRAINING = (RuntimePhase.ATTACHED, RuntimePhase.RETIRED)


def next_input(memory: Memory) -> int | None:
    """The input the next run takes: the steer lane's head, else the queue lane's head."""
    if memory.steer:
        return memory.steer[0]
    if memory.queue:
        return memory.queue[0]
    return None


def start_refusal(state: SessionState) -> Rejected | None:
    """Why no run can start now, or ``None``."""
    memory = state.memory
    if memory is None:
        return NOT_REGISTERED
    if memory.registration is not RegistrationPhase.ACTIVE:
        return Rejected(rejections.NOT_READY, "no runtime loop is attached")
    if memory.run != NO_ID:
        return Rejected(rejections.NOT_READY, "a run is already in flight")
    if memory.phase not in _DRAINING:
        return Rejected(rejections.NOT_READY, f"the runtime does not drain its queue while {memory.phase.name.lower()}")
    if next_input(memory) is None:
        return Rejected(rejections.NOT_READY, "nothing is queued")
    return None


def start_run(state: SessionState) -> StepResult:
    refusal = start_refusal(state)
    if refusal is not None:
        return refusal
    memory = state.memory
    assert memory is not None
    i = next_input(memory)
    assert i is not None
    row = memory.rows[i]
    assert row is not None
    staged = memory._replace(
        phase=RuntimePhase.RUNNING,
        run=i,
        pre_run=int(memory.phase),
        queue=tuple(j for j in memory.queue if j != i),
        steer=tuple(j for j in memory.steer if j != i),
        rows=with_row(memory.rows, i, Row(InputPhase.STAGED, row.attempts + 1)),
    )
    return Stepped(state._replace(memory=staged), (("staged", i, row.attempts + 1),), "start_run")


class _Run(NamedTuple):
    """The run in flight: the memory holding it, its input, that input's row, and ``post``, the
    phase after the run ends."""

    memory: Memory
    i: int
    row: Row
    post: RuntimePhase


def _post_run(memory: Memory) -> RuntimePhase:
    """The phase after the run ends: its pre-run phase (Idle or Attached as a loop is attached
    now), or Retired when it started Retired or was retired in flight."""
    if memory.phase is not RuntimePhase.RUNNING:
        return memory.phase
    if memory.pre_run == RuntimePhase.RETIRED:
        return RuntimePhase.RETIRED
    return RuntimePhase.ATTACHED if memory.registration is RegistrationPhase.ACTIVE else RuntimePhase.IDLE


def _running(memory: Memory) -> _Run:
    """The run in flight in ``memory`` (there must be one)."""
    row = memory.rows[memory.run]
    assert row is not None
    return _Run(memory, memory.run, row, _post_run(memory))


def _in_flight(state: SessionState) -> _Run | Rejected:
    """The run in flight, or why there is none to end."""
    memory = state.memory
    if memory is None:
        return NOT_REGISTERED
    if memory.run == NO_ID:
        return Rejected(rejections.NOT_READY, "no run is in flight")
    return _running(memory)


def _lane(state: SessionState, i: int) -> Lane:
    """The lane input ``i`` was accepted into."""
    attr = state.attrs[i]
    assert attr is not None
    return attr.lane


def _ended(memory: Memory, phase: RuntimePhase, i: int, row: Row, *, back_of_lane: Lane | None) -> Memory:
    queue, steer = memory.queue, memory.steer
    if back_of_lane is Lane.STEER:
        steer = (*steer, i)
    elif back_of_lane is Lane.QUEUE:
        queue = (*queue, i)
    return memory._replace(
        phase=phase, run=NO_ID, pre_run=-1, queue=queue, steer=steer, rows=with_row(memory.rows, i, row)
    )


def _name(base: str, phase: RuntimePhase) -> str:
    """The rule name of a run end that leaves the runtime in ``phase``."""
    if phase is RuntimePhase.RETIRED:
        return f"{base}_retired"
    if phase is RuntimePhase.IDLE:
        return f"{base}_without_loop"
    return base


def executor_succeeded(state: SessionState, with_result: bool) -> StepResult:
    found = _in_flight(state)
    if isinstance(found, Rejected):
        return found
    memory, i, row, post = found
    ended = _ended(memory, post, i, Row(InputPhase.CONSUMED, row.attempts), back_of_lane=None)
    outcome = Waiter.COMPLETED if with_result else Waiter.COMPLETED_WITHOUT_RESULT
    waiters, resolved = resolve(state.waiters, (i,), outcome)
    durable = boundary_commit(state.attrs, state.durable, ended, i)
    return Stepped(
        state._replace(memory=ended, durable=durable, waiters=waiters),
        (("consumed", i), *resolution_outputs(resolved, outcome), *caller_result(memory, "returned")),
        _name("executor_succeeded", post),
    )


def boundary_commit_fails(state: SessionState) -> StepResult:
    found = _in_flight(state)
    if isinstance(found, Rejected):
        return found
    memory, i, row, post = found
    restored = Row(InputPhase.QUEUED, row.attempts - 1)
    queue, steer = memory.queue, memory.steer
    if _lane(state, i) is Lane.STEER:
        steer = (i, *steer)
    else:
        queue = (i, *queue)
    phase = RuntimePhase.RETIRED if post is RuntimePhase.RETIRED else RuntimePhase.IDLE
    detached = memory._replace(
        registration=RegistrationPhase.QUEUING,
        phase=phase,
        run=NO_ID,
        pre_run=-1,
        queue=queue,
        steer=steer,
        rows=with_row(memory.rows, i, restored),
    )
    return Stepped(
        state._replace(memory=detached),
        (
            ("error", rejections.DURABLE_WRITE_FAILED, "boundary commit"),
            ("executor_stopped",),
            *caller_result(memory, rejections.DURABLE_WRITE_FAILED),
        ),
        "boundary_commit_failed_retired" if post is RuntimePhase.RETIRED else "boundary_commit_failed",
    )


def executor_failed(
    state: SessionState, max_attempts: int = MAX_STAGE_ATTEMPTS, *, retryable: bool = True
) -> StepResult:
    """The run fails: back of its lane, or abandoned at its ``max_attempts``-th attempt; an
    error that is not ``retryable`` abandons it at once (its attempts set to the limit)."""
    found = _in_flight(state)
    if isinstance(found, Rejected):
        return found
    memory, i, row, post = found
    if not retryable:
        row = row._replace(attempts=max(row.attempts, max_attempts))
    if row.attempts >= max_attempts:
        failed = Row(InputPhase.ABANDONED, row.attempts, int(AbandonKind.MAX_ATTEMPTS_EXHAUSTED))
        ended = _ended(memory, post, i, failed, back_of_lane=None)
        waiters, resolved = resolve(state.waiters, (i,), Waiter.ABANDONED_MAX_ATTEMPTS)
        outputs: tuple[object, ...] = (
            ("abandoned", i, "max_attempts_exhausted"),
            *resolution_outputs(resolved, Waiter.ABANDONED_MAX_ATTEMPTS),
        )
        name = _name("executor_failed_exhausted", post)
    else:
        ended = _ended(memory, post, i, Row(InputPhase.QUEUED, row.attempts), back_of_lane=_lane(state, i))
        waiters = state.waiters
        outputs = (("requeued", i, row.attempts),)
        name = _name("executor_failed", post)
    durable = full_commit(state.attrs, state.durable, ended)
    outputs = (*outputs, *caller_result(memory, "executor_failed"))
    return Stepped(state._replace(memory=ended, durable=durable, waiters=waiters), outputs, name)


def terminal_snapshot_fails(state: SessionState) -> StepResult:
    found = _in_flight(state)
    if isinstance(found, Rejected):
        return found
    waiters, resolved = resolve_all_pending(state.waiters, Waiter.TERMINATED_UNREGISTERED)
    return Stepped(
        state._replace(memory=None, waiters=waiters),
        (
            ("error", rejections.DURABLE_WRITE_FAILED, "terminal snapshot"),
            ("unregistered",),
            *resolution_outputs(resolved, Waiter.TERMINATED_UNREGISTERED),
            *caller_result(state.memory, rejections.DURABLE_WRITE_FAILED),
        ),
        "terminal_snapshot_failed",
    )


def interrupt(state: SessionState, *, write_ok: bool = True) -> StepResult:
    """``interrupt_current_run``: the run in flight is cancelled (the caller of a direct run is
    told ``invalid_runtime_transition``); without a run, a no-op."""
    memory = state.memory
    if memory is None:
        return NOT_REGISTERED
    if memory.run == NO_ID:
        return Stepped(state, (("no_run",),), "interrupt_noop")
    if not write_ok:
        return Rejected(rejections.DURABLE_WRITE_FAILED, "interrupting the current run: the store write failed")
    return _cancelled(state, _running(memory), rejections.INVALID_RUNTIME_TRANSITION)


def executor_cancelled(state: SessionState) -> StepResult:
    """The executor cancels the run in flight itself: the run ends as an interrupt (the caller of
    a direct run gets the executor's cancellation)."""
    found = _in_flight(state)
    if isinstance(found, Rejected):
        return found
    return _cancelled(state, found, "executor_cancelled")


def _cancelled(state: SessionState, run: _Run, caller: str) -> Stepped[SessionState]:
    memory, i, row, post = run
    ended = _ended(
        memory, post, i, Row(InputPhase.ABANDONED, row.attempts, int(AbandonKind.CANCELLED)), back_of_lane=None
    )
    waiters, resolved = resolve(state.waiters, (i,), Waiter.CANCELLED)
    durable = full_commit(state.attrs, state.durable, ended)
    return Stepped(
        state._replace(memory=ended, durable=durable, waiters=waiters),
        (
            ("abandoned", i, "cancelled"),
            *resolution_outputs(resolved, Waiter.CANCELLED),
            *caller_result(memory, caller),
        ),
        _name("interrupt", post),
    )
