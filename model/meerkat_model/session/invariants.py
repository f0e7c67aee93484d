"""Named invariants of the session-runtime model, checked on every reachable state."""

from __future__ import annotations

from collections import Counter
from typing import Any

from meerkat_model.machine import Invariant, Rejected, StepCheck, Stepped
from meerkat_model.session.durable import expected_recovery
from meerkat_model.session.observe import decoded
from meerkat_model.session.recovery import recover
from meerkat_model.session.state import (
    NO_ID,
    NO_KEY,
    NO_RECORD,
    Attrs,
    Durable,
    Lane,
    Memory,
    Row,
    SessionState,
    Waiter,
)
from meerkat_model.vocab.statuses import MAX_STAGE_ATTEMPTS, AbandonKind, InputPhase, RegistrationPhase, RuntimePhase

_RUN_PHASES = (InputPhase.STAGED, InputPhase.APPLIED, InputPhase.APPLIED_PENDING_CONSUMPTION)


def input_in_exactly_one_state(s: SessionState) -> str | None:
    """Each accepted input has one phase and sits in at most one place (a lane or the run);
    an id never accepted appears nowhere."""
    m = s.memory
    for i, attr in enumerate(s.attrs):
        if attr is None:
            if s.durable.rows[i] is not None or s.waiters[i] is not Waiter.NONE:
                return f"input {i} was never accepted but has a stored row or a handle"
            if m is not None and (m.rows[i] is not None or i in m.queue or i in m.steer or m.run == i):
                return f"input {i} was never accepted but is in memory"
    if m is None:
        return None
    placed = (*m.queue, *m.steer, *((m.run,) if m.run != NO_ID else ()))
    if len(set(placed)) == len(placed):  # each once: the rows are checked in the same order
        rows = m.rows
        for i in placed:
            if rows[i] is None:
                return f"input {i} is in a lane or the run but has no lifecycle in memory"
        return None
    places = Counter(placed)
    for i, count in places.items():
        if count != 1:
            return f"input {i} sits in {count} places (lanes and current run)"
        if m.rows[i] is None:
            return f"input {i} is in a lane or the run but has no lifecycle in memory"
    return None


def queued_exactly_in_lanes(s: SessionState) -> str | None:
    """The lanes hold exactly the Queued inputs, each once, each in the lane it was accepted for."""
    m = s.memory
    if m is None:
        return None
    queued = {i for i, row in enumerate(m.rows) if row is not None and row.phase is InputPhase.QUEUED}
    in_lanes = set(m.queue) | set(m.steer)
    if queued != in_lanes:
        return f"queued inputs {sorted(queued)} differ from the inputs in lanes {sorted(in_lanes)}"
    for lane, members in ((Lane.QUEUE, m.queue), (Lane.STEER, m.steer)):
        for i in members:
            attr = s.attrs[i]
            if attr is None or attr.lane is not lane:
                return f"input {i} is in the {lane.name.lower()} lane but was accepted for another lane"
    return None


def staged_belong_to_current_run(s: SessionState) -> str | None:
    """Staged / Applied inputs are the current run's input, and the current run's input is Staged."""
    m = s.memory
    if m is None:
        return None
    for i, row in enumerate(m.rows):
        if row is not None and row.phase in _RUN_PHASES and m.run != i:
            return f"input {i} is {row.phase.name.lower()} but the current run is {m.run}"
    if m.run != NO_ID:
        row = m.rows[m.run]
        if row is None or row.phase is not InputPhase.STAGED:
            return f"the current run's input {m.run} is not staged"
    return None


def idempotency_key_unique(s: SessionState) -> str | None:
    """An idempotency key names at most one non-terminal input (and at most one input in memory)."""
    m = s.memory
    if m is None:
        return None
    seen: dict[int, int] = {}
    for i, row in enumerate(m.rows):
        attr = s.attrs[i]
        if row is None or attr is None or attr.idem == NO_KEY:
            continue
        if attr.idem in seen:
            return f"idempotency key {attr.idem} is used by inputs {seen[attr.idem]} and {i}"
        seen[attr.idem] = i
    return None


def running_iff_current_run(s: SessionState) -> str | None:
    """Phase Running exactly when a run is in flight (or a run in flight under Retired)."""
    m = s.memory
    if m is None:
        return None
    if m.phase is RuntimePhase.RUNNING and m.run == NO_ID:
        return "phase Running without a current run"
    if m.run != NO_ID and m.phase not in (RuntimePhase.RUNNING, RuntimePhase.RETIRED):
        return f"a current run while {m.phase.name.lower()}"
    return None


def current_run_has_pre_run_phase(s: SessionState) -> str | None:
    """A current run has a pre-run phase: Attached or Retired for a run of the loop, which needs
    the loop attached, or Idle for a run ``accept_input_and_run`` started; no run, no pre-run phase."""
    m = s.memory
    if m is None:
        return None
    if m.run == NO_ID:
        return None if m.pre_run == -1 else "a pre-run phase without a current run"
    if m.pre_run not in (RuntimePhase.IDLE, RuntimePhase.ATTACHED, RuntimePhase.RETIRED):
        return f"current run with pre-run phase {m.pre_run}"
    if m.pre_run != RuntimePhase.IDLE and m.registration is not RegistrationPhase.ACTIVE:
        return "a run of the loop in flight without an attached runtime loop"
    return None


def attached_iff_loop(s: SessionState) -> str | None:
    """Attached needs an attached loop, and so does Running, unless the run in flight is one
    ``accept_input_and_run`` started; Idle has none."""
    m = s.memory
    if m is None:
        return None
    direct = m.run != NO_ID and m.pre_run == RuntimePhase.IDLE
    if m.phase is RuntimePhase.RUNNING and not direct and m.registration is not RegistrationPhase.ACTIVE:
        return "phase running without an attached loop"
    if m.phase is RuntimePhase.ATTACHED and m.registration is not RegistrationPhase.ACTIVE:
        return f"phase {m.phase.name.lower()} without an attached loop"
    if m.phase is RuntimePhase.IDLE and m.registration is RegistrationPhase.ACTIVE:
        return "phase Idle with an attached loop (it should be Attached)"
    return None


def destroyed_is_absorbing(s: SessionState) -> str | None:
    """Once Destroyed is committed, the store says Destroyed forever and memory is Destroyed or gone."""
    if not s.destroyed:
        return None
    if s.durable.record != RuntimePhase.DESTROYED:
        return "the runtime was destroyed but the stored lifecycle record is no longer Destroyed"
    if s.memory is not None and s.memory.phase is not RuntimePhase.DESTROYED:
        return f"the runtime was destroyed but is {s.memory.phase.name.lower()} in memory"
    return None


def _attempts_problem(where: str, i: int, row: Row, limit: int = MAX_STAGE_ATTEMPTS) -> str | None:
    exhausted = row.phase is InputPhase.ABANDONED and row.reason == AbandonKind.MAX_ATTEMPTS_EXHAUSTED
    if exhausted and row.attempts != limit:
        return f"{where} input {i} abandoned for exhausted attempts with {row.attempts} attempts"
    if row.attempts > limit:
        return f"{where} input {i} has {row.attempts} attempts (more than {limit})"
    if row.phase is InputPhase.QUEUED and row.attempts >= limit:
        return f"{where} input {i} is queued with {row.attempts} attempts (its budget is spent)"
    return None


def attempts_bounded(s: SessionState) -> str | None:
    """Attempts never exceed 3; an input abandoned for exhausted attempts has exactly 3; a queued
    input always has an attempt left."""
    for where, rows in (("stored", s.durable.rows), ("memory", s.memory.rows if s.memory else ())):
        for i, row in enumerate(rows):
            if row is not None and (problem := _attempts_problem(where, i, row)) is not None:
                return problem
    return None


def pending_waiter_has_live_input(s: SessionState) -> str | None:
    """A pending completion handle belongs to a non-terminal input of the registered session."""
    for i, waiter in enumerate(s.waiters):
        if waiter is not Waiter.PENDING:
            continue
        row = s.memory.rows[i] if s.memory is not None else None
        if row is None:
            return f"input {i} has a pending handle but is not in memory"
        if row.phase.is_terminal:
            return f"input {i} is {row.phase.name.lower()} but its handle is still pending"
    return None


def accepted_inputs_are_stored(s: SessionState) -> str | None:
    """Every acknowledged input has its row in the store (durable before acknowledged)."""
    for i, attr in enumerate(s.attrs):
        if attr is not None and s.durable.rows[i] is None:
            return f"input {i} was accepted but the store has no row for it"
    return None


_RECOVERED: dict[tuple[object, object, int], Memory | Rejected] = {}
_RECOVERED_LIMIT = 1 << 17


def _recovered(attrs: tuple[Attrs | None, ...], durable: Durable, limit: int) -> Memory | Rejected:
    """``recover(attrs, durable)``, remembered: it is a pure function of the store, which many
    states share (they differ in memory or handles), and the dearest part of the invariants."""
    key = (attrs, durable, limit)
    got = _RECOVERED.get(key)
    if got is None:
        if len(_RECOVERED) >= _RECOVERED_LIMIT:
            _RECOVERED.clear()
        got = _RECOVERED[key] = recover(attrs, durable, limit)
    return got


def recovery_matches_memory(s: SessionState, limit: int = MAX_STAGE_ATTEMPTS) -> str | None:
    """Recovering the store now gives back memory as it would be after a crash: memory never
    runs ahead of the store (terminal outcomes, attempts, lanes and their order, the phase)."""
    m = s.memory
    if m is None:
        return None
    if m.phase is RuntimePhase.DESTROYED:
        return None if s.durable.record == RuntimePhase.DESTROYED else "destroyed in memory but not in the store"
    got = _recovered(s.attrs, s.durable, limit)
    if isinstance(got, Rejected):
        return f"the store does not recover ({got.kind}: {got.detail})"
    want = expected_recovery(s.attrs, m)
    if got != want:
        return f"recovery gives {got} but memory implies {want}"
    return None


def record_is_durable_phase(s: SessionState) -> str | None:
    """The stored lifecycle record never holds a live-only phase (Attached, Running, Initializing)."""
    record = s.durable.record
    if record in (RuntimePhase.ATTACHED, RuntimePhase.RUNNING, RuntimePhase.INITIALIZING):
        return f"stored lifecycle record is {decoded(RuntimePhase, record)}"
    if record == NO_RECORD and s.memory is not None:
        return "a registered session without a stored lifecycle record"
    return None


def no_active_input_when_stopped(s: SessionState) -> str | None:
    """A Stopped or Destroyed runtime has no non-terminal input, in memory or in the store."""
    m = s.memory
    stopped = m is not None and m.phase in (RuntimePhase.STOPPED, RuntimePhase.DESTROYED)
    if m is not None and stopped and any(row is not None and not row.phase.is_terminal for row in m.rows):
        return f"a non-terminal input while {m.phase.name.lower()}"
    return None


INVARIANTS: tuple[Invariant[SessionState], ...] = tuple(
    Invariant(fn.__name__, (fn.__doc__ or "").strip().replace("\n    ", " "), fn)
    for fn in (
        input_in_exactly_one_state,
        queued_exactly_in_lanes,
        staged_belong_to_current_run,
        idempotency_key_unique,
        running_iff_current_run,
        current_run_has_pre_run_phase,
        attached_iff_loop,
        destroyed_is_absorbing,
        attempts_bounded,
        pending_waiter_has_live_input,
        accepted_inputs_are_stored,
        recovery_matches_memory,
        record_is_durable_phase,
        no_active_input_when_stopped,
    )
)


HANDLE_READERS = frozenset({"input_in_exactly_one_state", "pending_waiter_has_live_input"})
"""The invariants that read the completion handles (the others depend on the state's core only:
see ``meerkat_model.session.check_memo``)."""


def invariants_for(max_attempts: int) -> tuple[Invariant[SessionState], ...]:
    """:data:`INVARIANTS` under the attempt limit ``max_attempts`` (the ``max_attempts`` bound)."""
    if max_attempts == MAX_STAGE_ATTEMPTS:
        return INVARIANTS

    def attempts(s: SessionState) -> str | None:
        for where, rows in (("stored", s.durable.rows), ("memory", s.memory.rows if s.memory else ())):
            for i, row in enumerate(rows):
                if row is not None and (problem := _attempts_problem(where, i, row, max_attempts)) is not None:
                    return problem
        return None

    def recovery(s: SessionState) -> str | None:
        return recovery_matches_memory(s, max_attempts)

    limited = {"attempts_bounded": attempts, "recovery_matches_memory": recovery}
    return tuple(
        Invariant(inv.name, inv.description, limited[inv.name]) if inv.name in limited else inv for inv in INVARIANTS
    )


def requeue_position(before: SessionState, action: object, stepped: Stepped[SessionState]) -> str | None:
    """A failed run puts its input back at the back of its lane; a failed boundary commit (nothing
    written) at the head, where the store still has it."""
    m, after = before.memory, stepped.state.memory
    if m is None or after is None or m.run == NO_ID:
        return None
    i = m.run
    attr = before.attrs[i]
    lane = after.steer if attr is not None and attr.lane is Lane.STEER else after.queue
    if stepped.transition.startswith("boundary_commit_failed"):
        if not lane or lane[0] != i:
            return f"input {i} should be back at the head of its lane after a failed boundary commit, lane is {lane}"
    elif not lane or lane[-1] != i:
        return f"input {i} should be back at the back of its lane after a failed run, lane is {lane}"
    return None


STEP_CHECKS: tuple[StepCheck[SessionState, Any], ...] = (
    StepCheck(
        "requeue_position",
        "a failed run requeues its input at the back of its lane; a failed boundary commit at the head",
        frozenset(
            {"executor_failed", "executor_failed_retired", "boundary_commit_failed", "boundary_commit_failed_retired"}
        ),
        requeue_position,
    ),
)
