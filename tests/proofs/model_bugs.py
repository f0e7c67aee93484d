"""Seventeen planted bugs in the executable model, one per variant machine, for the planted-bug
table of docs/proofs.md: which of the verifier (and which check, under which profile), the
differential check against the z3 encodings, and the conformance harness finds each.

Each variant is a subclass of the real machine that changes one step; nothing in
``meerkat_model`` itself changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from meerkat_model.machine import Bounds, Machine, Rejected, Stepped
from meerkat_model.ops import steps as ops_steps
from meerkat_model.ops.actions import (
    CancelOperation,
    CompleteOperation,
    Crash,
    OpsAction,
    PeerReady,
    RegisterOperation,
    TerminateOwner,
)
from meerkat_model.ops.machine import OpsMachine
from meerkat_model.ops.state import OpRecord, RegistryState, empty_registry, new_record, with_slot
from meerkat_model.session import admission, control, registration, run_loop
from meerkat_model.session.actions import (
    Accept,
    BoundaryCommitFails,
    ExecutorFailed,
    Register,
    Reset,
    Retire,
    SessionAction,
    StartRun,
)
from meerkat_model.session.machine import SessionMachine
from meerkat_model.session.state import Attrs, Lane, SessionState
from meerkat_model.vocab.statuses import OpStatus, RuntimePhase

OpsStep = Callable[[RegistryState], Stepped[RegistryState] | Rejected]
SessionStep = Callable[[SessionState], Stepped[SessionState] | Rejected]

_COMPLETE_ANY = ops_steps._terminal("complete_operation", ops_steps.ACTIVE, int(OpStatus.COMPLETED))
_SINGLE_TERMINALS = frozenset(
    {
        "provisioning_failed",
        "abort_provisioning",
        "complete_operation",
        "fail_operation",
        "cancel_operation",
        "mark_retired",
    }
)


# --- operation registry ----------------------------------------------------------------------


class CompleteFromProvisioning(OpsMachine):
    """complete_operation accepted from Provisioning (a wrong guard)."""

    def bind(self, action: OpsAction) -> OpsStep:
        if type(action) is CompleteOperation:
            op, result = action.op, action.result
            return lambda s: _COMPLETE_ANY(self.ctx, s, op, result)
        return super().bind(action)


class PeerReadyWhileProvisioning(OpsMachine):
    """peer_ready accepted while Provisioning (a wrong guard)."""

    def bind(self, action: OpsAction) -> OpsStep:
        if type(action) is PeerReady:
            op = action.op

            def peer(s: RegistryState) -> Stepped[RegistryState] | Rejected:
                rec = s.ops[op]
                if isinstance(rec, OpRecord) and rec.status == ops_steps.P and rec.kind == 0 and not rec.peer_ready:
                    new = s._replace(ops=with_slot(s.ops, op, rec._replace(peer_ready=True)))
                    return Stepped(new, (("returned", None),), "peer_ready")
                return ops_steps.peer_ready(self.ctx, s, op)

            return peer
        return super().bind(action)


class ReusedCompletionNumber(OpsMachine):
    """A terminal step issues a completion sequence number but does not advance the counter."""

    def step(self, state: RegistryState, action: OpsAction) -> Stepped[RegistryState] | Rejected:
        result = super().step(state, action)
        if isinstance(result, Stepped) and result.transition in _SINGLE_TERMINALS:
            return Stepped(result.state._replace(next_seq=state.next_seq), result.outputs, result.transition)
        return result


class TerminateInIdOrder(OpsMachine):
    """terminate_owner ends the active operations in id order, not registration order."""

    def bind(self, action: OpsAction) -> OpsStep:
        if type(action) is TerminateOwner:
            reason = action.reason

            def terminate(s: RegistryState) -> Stepped[RegistryState] | Rejected:
                return ops_steps.terminate_owner(
                    self.ctx, s._replace(active_order=tuple(sorted(s.active_order))), reason
                )

            return terminate
        return super().bind(action)


class WatchersNotReleased(OpsMachine):
    """A terminal step leaves the operation's pending watchers pending."""

    def step(self, state: RegistryState, action: OpsAction) -> Stepped[RegistryState] | Rejected:
        result = super().step(state, action)
        if isinstance(result, Stepped) and result.transition in _SINGLE_TERMINALS:
            op: int = action.op  # type: ignore[union-attr]  # every single-op terminal call names it
            before, after = state.ops[op], result.state.ops[op]
            if isinstance(before, OpRecord) and isinstance(after, OpRecord) and before.watchers:
                kept = result.state._replace(
                    ops=with_slot(result.state.ops, op, after._replace(watchers=before.watchers))
                )
                outputs = tuple(o for o in result.outputs if o[0] != "watchers_resolved")
                return Stepped(kept, outputs, result.transition)
        return result


class RecoveryWithoutRetention(OpsMachine):
    """Recovery rebuilds the registry but does not apply retention again."""

    def bind(self, action: OpsAction) -> OpsStep:
        if type(action) is Crash:

            def crash(s: RegistryState) -> Stepped[RegistryState]:
                d = s.disk
                if not d:
                    return Stepped(empty_registry(len(s.ops)), (), "crash_recover")
                rebuilt = RegistryState(d.ops, (), 0, d.completed, (), d.feed, d.watermark, d.next_seq, d)
                return Stepped(rebuilt, (), "crash_recover")

            return crash
        return super().bind(action)


class RecoveryKeepsTheOldest(OpsMachine):
    """Recovery's retention keeps the oldest terminal operations instead of the newest."""

    def bind(self, action: OpsAction) -> OpsStep:
        if type(action) is Crash:
            cap = self.bounds.max_completed

            def crash(s: RegistryState) -> Stepped[RegistryState]:
                d = s.disk
                if not d:
                    return Stepped(empty_registry(len(s.ops)), (), "crash_recover")
                rebuilt = RegistryState(d.ops, (), 0, d.completed, (), d.feed, d.watermark, d.next_seq, d)
                if len(d.completed) > cap:
                    ops = list(d.ops)
                    for op in d.completed[cap:]:
                        ops[op] = ()
                    rebuilt = rebuilt._replace(ops=tuple(ops), completed=d.completed[:cap])
                return Stepped(rebuilt, (), "crash_recover")

            return crash
        return super().bind(action)


class CancelKeepsItsSlot(OpsMachine):
    """cancel_operation does not release its max_concurrent slot."""

    def step(self, state: RegistryState, action: OpsAction) -> Stepped[RegistryState] | Rejected:
        result = super().step(state, action)
        if type(action) is CancelOperation and isinstance(result, Stepped):
            grown = result.state._replace(active_count=result.state.active_count + 1)
            return Stepped(grown, result.outputs, result.transition)
        return result


class PeerReadyUnknownKind(OpsMachine):
    """peer_ready writes an operation kind the model does not know (2)."""

    def step(self, state: RegistryState, action: OpsAction) -> Stepped[RegistryState] | Rejected:
        result = super().step(state, action)
        if type(action) is PeerReady and isinstance(result, Stepped):
            op = action.op
            rec = result.state.ops[op]
            assert isinstance(rec, OpRecord)
            bad = result.state._replace(ops=with_slot(result.state.ops, op, rec._replace(kind=2)))
            return Stepped(bad, result.outputs, result.transition)
        return result


class RegisterIgnoringTheLimit(OpsMachine):
    """register_operation does not check max_concurrent."""

    def bind(self, action: OpsAction) -> OpsStep:
        if type(action) is RegisterOperation:
            op, kind = action.op, action.kind

            def register(s: RegistryState) -> Stepped[RegistryState] | Rejected:
                if s.ops[op]:
                    return ops_steps.register_operation(self.ctx, s, op, kind)
                new = s._replace(
                    ops=with_slot(s.ops, op, new_record(kind)),
                    active_order=(*s.active_order, op),
                    active_count=s.active_count + 1,
                )
                return Stepped(new, (("returned", None),), "register_operation")

            return register
        return super().bind(action)


# --- session ---------------------------------------------------------------------------------


class AcceptWhileRetired(SessionMachine):
    """accept_input takes input while the runtime is Retired (a wrong guard)."""

    def bind(self, action: SessionAction, *, write_ok: bool = True) -> SessionStep:
        if type(action) is Accept:
            i, attrs, coalesce = (
                action.i,
                Attrs(Lane(action.lane), action.idem, action.skey, bool(action.ephemeral)),
                bool(action.coalesce),
            )

            def accept(s: SessionState) -> Stepped[SessionState] | Rejected:
                m = s.memory
                if m is not None and m.phase is RuntimePhase.RETIRED:
                    relaxed = s._replace(memory=m._replace(phase=RuntimePhase.IDLE))
                    result = admission.accept(relaxed, i, attrs, coalesce, write_ok=write_ok)
                    if isinstance(result, Stepped) and result.state.memory is not None:
                        back = result.state.memory._replace(phase=RuntimePhase.RETIRED)
                        return Stepped(result.state._replace(memory=back), result.outputs, result.transition)
                    return result
                return admission.accept(s, i, attrs, coalesce, write_ok=write_ok)

            return accept
        return super().bind(action, write_ok=write_ok)


class FailedInputRequeuedAtTheHead(SessionMachine):
    """A failed run puts its input back at the head of its lane instead of the back."""

    def bind(self, action: SessionAction, *, write_ok: bool = True) -> SessionStep:
        if type(action) is ExecutorFailed:

            def failed(s: SessionState) -> Stepped[SessionState] | Rejected:
                result = run_loop.executor_failed(s)
                if not isinstance(result, Stepped) or result.state.memory is None:
                    return result
                m = result.state.memory
                if not result.transition.startswith("executor_failed") or "exhausted" in result.transition:
                    return result
                assert s.memory is not None
                i = s.memory.run
                front = m._replace(queue=(i, *m.queue[:-1])) if m.queue and m.queue[-1] == i else m
                durable = result.state.durable
                stored = durable._replace(queue=(i, *durable.queue[:-1])) if durable.queue[-1:] == (i,) else durable
                return Stepped(result.state._replace(memory=front, durable=stored), result.outputs, result.transition)

            return failed
        return super().bind(action, write_ok=write_ok)


class LostQueuedInputOnRecovery(SessionMachine):
    """Registering after a crash loses the last queued input of the queue lane."""

    def bind(self, action: SessionAction, *, write_ok: bool = True) -> SessionStep:
        if type(action) is Register:

            def register(s: SessionState) -> Stepped[SessionState] | Rejected:
                result = registration.register(s, write_ok=write_ok)
                if not isinstance(result, Stepped) or result.transition != "register":
                    return result
                m = result.state.memory
                assert m is not None
                if not m.queue:
                    return result
                lost = m.queue[-1]
                rows = (*m.rows[:lost], None, *m.rows[lost + 1 :])
                return Stepped(
                    result.state._replace(memory=m._replace(queue=m.queue[:-1], rows=rows)),
                    result.outputs,
                    result.transition,
                )

            return register
        return super().bind(action, write_ok=write_ok)


class StartRunWithoutPreRunPhase(SessionMachine):
    """start_run leaves the pre-run phase at -1 (so a run's end cannot tell where to return)."""

    def bind(self, action: SessionAction, *, write_ok: bool = True) -> SessionStep:
        if type(action) is StartRun:

            def start(s: SessionState) -> Stepped[SessionState] | Rejected:
                result = run_loop.start_run(s)
                if isinstance(result, Stepped) and result.state.memory is not None:
                    bad = result.state.memory._replace(pre_run=-1)
                    return Stepped(result.state._replace(memory=bad), result.outputs, result.transition)
                return result

            return start
        return super().bind(action, write_ok=write_ok)


class BoundaryFailureCountsTheAttempt(SessionMachine):
    """A failed boundary commit keeps the attempt it did not write."""

    def bind(self, action: SessionAction, *, write_ok: bool = True) -> SessionStep:
        if type(action) is BoundaryCommitFails:

            def failed(s: SessionState) -> Stepped[SessionState] | Rejected:
                result = run_loop.boundary_commit_fails(s)
                if not isinstance(result, Stepped) or s.memory is None:
                    return result
                m = result.state.memory
                assert m is not None
                i = s.memory.run
                row = m.rows[i]
                assert row is not None
                rows = (*m.rows[:i], row._replace(attempts=row.attempts + 1), *m.rows[i + 1 :])
                return Stepped(result.state._replace(memory=m._replace(rows=rows)), result.outputs, result.transition)

            return failed
        return super().bind(action, write_ok=write_ok)


class ResetDuringARun(SessionMachine):
    """reset_runtime accepted while a run is in flight (a wrong guard)."""

    def bind(self, action: SessionAction, *, write_ok: bool = True) -> SessionStep:
        if type(action) is Reset:

            def reset(s: SessionState) -> Stepped[SessionState] | Rejected:
                m = s.memory
                if m is not None and m.run != -1 and m.phase is not RuntimePhase.STOPPED:
                    quiet = s._replace(memory=m._replace(phase=RuntimePhase.ATTACHED, run=-1, pre_run=-1))
                    result = control.reset(quiet, write_ok=write_ok)
                    if isinstance(result, Stepped):
                        return result
                return control.reset(s, write_ok=write_ok)

            return reset
        return super().bind(action, write_ok=write_ok)


class RetireWhenStopped(SessionMachine):
    """retire_runtime on a Stopped runtime answers as if it were already retired (a wrong guard)."""

    def bind(self, action: SessionAction, *, write_ok: bool = True) -> SessionStep:
        if type(action) is Retire:

            def retire(s: SessionState) -> Stepped[SessionState] | Rejected:
                m = s.memory
                if m is not None and m.phase is RuntimePhase.STOPPED:
                    return Stepped(s, (("already_retired",),), "retire_noop")
                return control.retire(s, write_ok=write_ok)

            return retire
        return super().bind(action, write_ok=write_ok)


@dataclass(frozen=True)
class PlantedBug:
    """One planted bug: its variant machine and what is expected to find it."""

    name: str
    machine: str
    variant: Callable[[Bounds], Machine[Any, Any]]
    profile: str
    """The smallest catalog profile whose exploration finds it (``""``: none does)."""
    checks: frozenset[str]
    """The checks that report it there (any of them)."""

    @property
    def description(self) -> str:
        return (self.variant.__doc__ or "").strip()


def _ops(cls: type[OpsMachine]) -> Callable[[Bounds], Machine[Any, Any]]:
    return cls


def _session(cls: type[SessionMachine]) -> Callable[[Bounds], Machine[Any, Any]]:
    return cls


PLANTED: tuple[PlantedBug, ...] = (
    PlantedBug(
        "complete_from_provisioning",
        "ops",
        _ops(CompleteFromProvisioning),
        "probe",
        frozenset({"transitions_match_declarations"}),
    ),
    PlantedBug(
        "peer_ready_while_provisioning",
        "ops",
        _ops(PeerReadyWhileProvisioning),
        "probe",
        frozenset({"transitions_match_declarations"}),
    ),
    PlantedBug(
        "reused_completion_number", "ops", _ops(ReusedCompletionNumber), "tiny", frozenset({"feed_sequences_ordered"})
    ),
    PlantedBug("terminate_in_id_order", "ops", _ops(TerminateInIdOrder), "probe", frozenset({"terminate_order"})),
    PlantedBug(
        "watchers_not_released",
        "ops",
        _ops(WatchersNotReleased),
        "tiny",
        frozenset({"watchers_resolved", "watchers_released"}),
    ),
    PlantedBug(
        "recovery_without_retention",
        "ops",
        _ops(RecoveryWithoutRetention),
        "wide",
        frozenset({"completed_order_bounded", "retention_after_recovery"}),
    ),
    PlantedBug(
        "recovery_keeps_the_oldest",
        "ops",
        _ops(RecoveryKeepsTheOldest),
        "wide",
        frozenset({"retention_after_recovery"}),
    ),
    PlantedBug("cancel_keeps_its_slot", "ops", _ops(CancelKeepsItsSlot), "tiny", frozenset({"active_count_matches"})),
    PlantedBug(
        "peer_ready_unknown_kind",
        "ops",
        _ops(PeerReadyUnknownKind),
        "tiny",
        frozenset({"kind_known", "peer_ready_consistent"}),
    ),
    PlantedBug(
        "register_ignoring_the_limit",
        "ops",
        _ops(RegisterIgnoringTheLimit),
        "ci",
        frozenset({"max_concurrent_respected"}),
    ),
    PlantedBug(
        "accept_while_retired",
        "session",
        _session(AcceptWhileRetired),
        "probe",
        frozenset({"transitions_match_declarations"}),
    ),
    PlantedBug(
        "failed_input_requeued_at_the_head",
        "session",
        _session(FailedInputRequeuedAtTheHead),
        "wide",
        frozenset({"requeue_position"}),
    ),
    PlantedBug(
        "lost_queued_input_on_recovery",
        "session",
        _session(LostQueuedInputOnRecovery),
        "tiny",
        frozenset({"recovery_matches_memory", "input_in_exactly_one_state", "queued_exactly_in_lanes"}),
    ),
    PlantedBug(
        "start_run_without_pre_run_phase",
        "session",
        _session(StartRunWithoutPreRunPhase),
        "tiny",
        frozenset({"current_run_has_pre_run_phase", "recovery_matches_memory"}),
    ),
    PlantedBug(
        "boundary_failure_counts_the_attempt",
        "session",
        _session(BoundaryFailureCountsTheAttempt),
        "tiny",
        frozenset({"recovery_matches_memory", "attempts_bounded"}),
    ),
    PlantedBug(
        "reset_during_a_run",
        "session",
        _session(ResetDuringARun),
        "probe",
        frozenset({"transitions_match_declarations"}),
    ),
    PlantedBug(
        "retire_when_stopped",
        "session",
        _session(RetireWhenStopped),
        "probe",
        frozenset({"transitions_match_declarations"}),
    ),
)
