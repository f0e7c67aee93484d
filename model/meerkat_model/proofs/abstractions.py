"""The encoded view of each executable model, for the differential check
(:mod:`meerkat_model.proofs.differential`): which encoding field holds what of a model state,
which transitions an action may stand for, and which counters are compared by rank only.

``ABSTRACTIONS`` has one entry per encoding of ``meerkat_model.proofs.runner.ENCODINGS``; an
action record these tables do not know raises ``ValueError`` (so a new model action fails the
differential check until its encoding is mapped here).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from meerkat_model.machine import Machine, Rejected, Stepped
from meerkat_model.ops import actions as oa
from meerkat_model.ops.machine import OpsMachine
from meerkat_model.ops.state import OpRecord, RegistryState
from meerkat_model.ownership import actions as oo
from meerkat_model.ownership import op_slots
from meerkat_model.ownership.machine import OwnershipMachine
from meerkat_model.ownership.state import OwnershipState
from meerkat_model.proofs import ownership_encoding as ow
from meerkat_model.proofs.differential import Abstraction, Candidate, Encoded, NotEncoded, Values
from meerkat_model.proofs.ops_encoding import NO_KIND
from meerkat_model.proofs.session_encoding import NO_LANE, NONE, QUEUE_LANE, STEER_LANE, UNREG
from meerkat_model.session import actions as sa
from meerkat_model.session import control
from meerkat_model.session.durable import record_of
from meerkat_model.session.machine import SessionMachine
from meerkat_model.session.recovery import recover
from meerkat_model.session.state import NO_ID, NO_KEY, Lane, Memory, Row, SessionState
from meerkat_model.vocab.statuses import InputPhase, RuntimePhase


def _ids(op: int) -> tuple[tuple[str, int], ...]:
    return (("id", op),)


class OpsAbstraction:
    """The registry: every field is encoded exactly (the feed's payloads and the durable image
    are not: the encoding recovers from the terminal part of memory, which the model's
    ``acknowledged_terminal_ops_recoverable`` invariant shows equal to the last write)."""

    simulation = False

    PER_OP: dict[type, tuple[str, ...]] = {
        oa.ProvisioningSucceeded: ("provisioning_succeeded",),
        oa.ProvisioningFailed: ("provisioning_failed",),
        oa.AbortProvisioning: ("abort_provisioning",),
        oa.PeerReady: ("peer_ready",),
        oa.RegisterWatcher: ("register_watcher",),
        oa.DropWatcher: ("drop_watcher",),
        oa.ReportProgress: ("report_progress",),
        oa.CompleteOperation: ("complete_operation",),
        oa.FailOperation: ("fail_operation",),
        oa.CancelOperation: ("cancel_operation",),
        oa.RequestRetire: ("request_retire",),
        oa.MarkRetired: ("mark_retired",),
    }
    REGISTRY: dict[type, tuple[str, ...]] = {
        oa.TerminateOwner: ("terminate_owner",),
        oa.CollectCompleted: ("collect_completed",),
        oa.DropWait: ("wait_all_cancel",),
        oa.Crash: ("crash_recover",),
        oa.Detach: ("crash_recover",),
    }

    def ids(self, machine: Machine[Any, Any]) -> int:
        assert isinstance(machine, OpsMachine)
        return machine.bounds.ids

    def constants(self, machine: Machine[Any, Any]) -> Values:
        assert isinstance(machine, OpsMachine)
        limit = machine.bounds.max_concurrent
        return {
            "max_completed": machine.bounds.max_completed,
            "has_limit": limit > 0,
            "max_concurrent": limit,
        }

    def state(self, state: RegistryState) -> Values:
        n = len(state.ops)
        recs = [rec if isinstance(rec, OpRecord) else None for rec in state.ops]
        active = state.active_order
        return {
            "active": state.active_count,
            "barrier": bool(state.barrier),
            "watermark": state.watermark,
            "next_seq": state.next_seq,
            "status": [r.status if r else 0 for r in recs],
            "kind": [r.kind if r else NO_KIND for r in recs],
            "outcome": [r.outcome if r else 0 for r in recs],
            "peer": [bool(r.peer_ready) if r else False for r in recs],
            "watchers": [r.watchers if r else 0 for r in recs],
            "progress": [r.progress if r else 0 for r in recs],
            "done": [j in state.completed for j in range(n)],
            "seq": [r.seq if r else 0 for r in recs],
            "member": [j in state.barrier for j in range(n)],
            "rank": [active.index(j) if j in active else 0 for j in range(n)],
        }

    def action(self, action: Any, state: RegistryState) -> Encoded:
        kind = type(action)
        if kind is oa.WriteFails:
            return Encoded(self.action(action.inner, state).candidates, failed_write=True)
        if kind is oa.RegisterOperation:
            return Encoded((Candidate("register_operation", (("id", action.op), ("kind", action.kind))),))
        if kind in self.PER_OP:
            return Encoded(tuple(Candidate(t, _ids(action.op)) for t in self.PER_OP[kind]))
        if kind in self.REGISTRY:
            return Encoded(tuple(Candidate(t) for t in self.REGISTRY[kind]))
        if kind is oa.WaitAll:
            members = action.members
            if len(set(members)) != len(members) or not all(0 <= m < len(state.ops) for m in members):
                return Encoded(())  # not expressible as a set of ids: the encoding refuses it
            chosen = tuple((f"member[{j}]", j in members) for j in range(len(state.ops)))
            return Encoded((Candidate("wait_all_begin", chosen), Candidate("wait_all_immediate", chosen)))
        raise ValueError(f"the ops abstraction does not know the action {action!r}")

    def normalise(self, values: Values) -> Values:
        return values


_SESSION: dict[type, tuple[str, ...]] = {
    sa.Register: ("register", "register_noop"),
    sa.BeginAttach: ("begin_attach", "begin_attach_noop"),
    sa.FinishAttach: ("finish_attach", "finish_attach_keep_phase"),
    sa.AttachFailed: ("attach_failed",),
    sa.StartRun: ("start_run",),
    sa.ExecutorSucceeded: ("executor_succeeded", "executor_succeeded_retired", "executor_succeeded_without_loop"),
    sa.ExecutorFailed: (
        "executor_failed",
        "executor_failed_retired",
        "executor_failed_without_loop",
        "executor_failed_exhausted",
        "executor_failed_exhausted_retired",
        "executor_failed_exhausted_without_loop",
    ),
    sa.ExecutorFailedFatal: (
        "executor_failed_exhausted",
        "executor_failed_exhausted_retired",
        "executor_failed_exhausted_without_loop",
    ),
    sa.ExecutorCancelled: ("interrupt", "interrupt_retired", "interrupt_without_loop"),
    sa.BoundaryCommitFails: ("boundary_commit_failed", "boundary_commit_failed_retired"),
    sa.TerminalSnapshotFails: ("terminal_snapshot_failed",),
    sa.Interrupt: ("interrupt", "interrupt_retired", "interrupt_without_loop", "interrupt_noop"),
    sa.Retire: ("retire", "retire_without_loop", "retire_noop"),
    sa.Reset: ("reset", "reset_with_loop"),
    sa.Recycle: ("recycle", "recycle_with_loop"),
    sa.Stop: ("stop", "stop_with_loop"),
    sa.Destroy: ("destroy", "destroy_with_loop"),
    sa.Unregister: ("unregister",),
    sa.Crash: ("crash",),
}

_RETRYABLE: dict[type, bool] = {sa.ExecutorFailed: True, sa.ExecutorFailedFatal: False}
"""Whether a failing run's error is retried: the encoding leaves it open (``fatal_errors``: a
failure *may* abandon at once); each failure action of the model decides it."""

_PER_INPUT = ("lane", "mode", "pos", "attempts", "scope")


class SessionAbstraction:
    """One session. An unregistered session is encoded as what registering would recover
    (the encoding applies recovery when memory is lost); ephemeral inputs are not encoded.
    Lane positions and run ids are counters in the encoding: they are compared as ranks in
    their lane and as "is the current run", and what the model forgets about an input terminal
    for good (lane, supersession key, attempts) is not compared."""

    simulation = False

    def ids(self, machine: Machine[Any, Any]) -> int:
        assert isinstance(machine, SessionMachine)
        return machine.bounds.inputs

    def constants(self, machine: Machine[Any, Any]) -> Values:
        assert isinstance(machine, SessionMachine)
        return {"max_attempts": machine.bounds.max_attempts, "fatal_errors": machine.bounds.fatal_errors}

    def _memory(self, state: SessionState) -> tuple[Memory, int]:
        if state.memory is not None:
            return state.memory, int(state.memory.registration)
        recovered = recover(state.attrs, state.durable)
        if isinstance(recovered, Rejected):
            if state.durable.record != RuntimePhase.DESTROYED:
                raise NotEncoded(f"the store does not recover: {recovered.detail}")
            rows = state.durable.rows
            return Memory(0, RuntimePhase.DESTROYED, NO_ID, -1, (), (), rows), UNREG  # type: ignore[arg-type]
        return recovered, UNREG

    def state(self, state: SessionState) -> Values:
        m, reg = self._memory(state)
        if any(a is not None and a.ephemeral for a in state.attrs):
            raise NotEncoded("ephemeral inputs are not encoded")
        out: Values = {name: [] for name in ("iphase", "lane", "mode", "pos", "attempts", "key", "scope", "in_run")}
        for i, attr in enumerate(state.attrs):
            row = m.rows[i] if attr is not None else None
            if attr is None or row is None:
                if attr is not None:
                    raise NotEncoded(f"input {i} is accepted but not in memory")
                for name, blank in (("iphase", NONE), ("lane", NO_LANE), ("mode", QUEUE_LANE), ("pos", 0)):
                    out[name].append(blank)
                for name in ("attempts", "key", "scope", "in_run"):
                    out[name].append(0)
                continue
            lane = QUEUE_LANE if i in m.queue else STEER_LANE if i in m.steer else NO_LANE
            order = m.queue if lane == QUEUE_LANE else m.steer
            out["iphase"].append(int(row.phase))
            out["lane"].append(lane)
            out["mode"].append(STEER_LANE if attr.lane is Lane.STEER else QUEUE_LANE)
            out["pos"].append(order.index(i) if lane != NO_LANE else 0)
            out["attempts"].append(row.attempts)
            out["key"].append(attr.idem + 1 if attr.idem != NO_KEY else 0)
            out["scope"].append(attr.skey + 1 if attr.skey != NO_KEY else 0)
            out["in_run"].append(1 if m.run == i else 0)
        return out | {
            "phase": int(m.phase),
            "reg": reg,
            "run": 1 if m.run != NO_ID else 0,
            "pre_run": int(m.pre_run),
            "next_run": 2,
            "next_pos": max(len(m.queue), len(m.steer), 1),
            "front": -1,
        }

    def action(self, action: Any, state: SessionState) -> Encoded:
        kind = type(action)
        if kind is sa.WriteFails:
            return Encoded(self.action(action.inner, state).candidates, failed_write=True)
        if kind is sa.Accept:
            if action.ephemeral:
                raise NotEncoded("ephemeral inputs are not encoded")
            key = action.idem + 1 if action.idem != NO_KEY else 0
            scope = action.skey + 1 if action.skey != NO_KEY else 0
            lane = STEER_LANE if action.lane == Lane.STEER else QUEUE_LANE
            fields = (("id", action.i), ("key", key), ("scope", scope), ("lane", lane))
            replacing = "accept_coalescing" if action.coalesce else "accept_superseding"
            return Encoded(
                (
                    Candidate("accept", fields),
                    Candidate(replacing, fields),
                    Candidate("deduplicate", (("id", action.i), ("key", key))),
                )
            )
        if kind is sa.AcceptInvalid:
            return Encoded((Candidate("reject_invalid", (("id", action.i),)),))
        if kind is sa.AcceptAndRun:
            key = action.idem + 1 if action.idem != NO_KEY else 0
            return Encoded((Candidate("accept_and_run", (("id", action.i), ("key", key))),))
        if kind in _RETRYABLE:
            fatal = (("fatal_errors", not _RETRYABLE[kind]),)
            return Encoded(tuple(Candidate(t) for t in _SESSION[kind]), constants=fatal)
        if kind is sa.Recover:
            # Both forms leave the encoded state as it is; which one fires depends on the
            # store's rows (not encoded), so the model's choice names the candidate.
            result = control.recover(state)
            if isinstance(result, Stepped):
                return Encoded((Candidate(result.transition),))
            return Encoded((Candidate("recover"), Candidate("recover_noop")))
        if kind in _SESSION:
            return Encoded(tuple(Candidate(t) for t in _SESSION[kind]))
        raise ValueError(f"the session abstraction does not know the action {action!r}")

    def normalise(self, values: Values) -> Values:
        out = dict(values)
        phases, lanes, pos = values["iphase"], values["lane"], values["pos"]
        run = values["run"]
        out["run"] = run != 0
        out["in_run"] = [run != 0 and r == run for r in values["in_run"]]
        ranks = []
        for j, lane in enumerate(lanes):
            same = [pos[i] for i in range(len(lanes)) if lanes[i] == lane and lane != NO_LANE]
            ranks.append(sorted(same).index(pos[j]) if lane != NO_LANE else 0)
        out["pos"] = ranks
        terminal = [p == NONE or p >= int(InputPhase.CONSUMED) for p in phases]
        for name in _PER_INPUT:
            if name != "pos":
                out[name] = [None if t else v for t, v in zip(terminal, values[name], strict=True)]
        for name in ("next_run", "next_pos", "front"):
            out.pop(name, None)
        return out


_RECORD = {
    int(RuntimePhase.RETIRED): ow.RETIRED,
    int(RuntimePhase.STOPPED): ow.STOPPED,
    int(RuntimePhase.DESTROYED): ow.DESTROYED,
}
_STATUS = {
    InputPhase.ACCEPTED: ow.QUEUED,
    InputPhase.QUEUED: ow.QUEUED,
    InputPhase.STAGED: ow.STAGED,
    InputPhase.APPLIED: ow.STAGED,
    InputPhase.APPLIED_PENDING_CONSUMPTION: ow.STAGED,
    InputPhase.CONSUMED: ow.CONSUMED,
    InputPhase.SUPERSEDED: ow.DROPPED,
    InputPhase.COALESCED: ow.DROPPED,
    InputPhase.ABANDONED: ow.DROPPED,
}
_OWNERSHIP: dict[type, tuple[str, ...]] = {
    oo.ClaimRegister: ("claim", "claim_refused"),
    oo.Renew: ("renew", "renew_lost"),
    oo.Release: ("release",),
    oo.CrashWorker: ("crash",),
    oo.On: ("local", "write", "write_refused"),
    oo.Ambiguous: ("ambiguous_landed", "ambiguous_lost", "write_refused"),
    oo.Reconcile: ("reconcile",),
}


def _status(row: Row | None) -> int:
    return ow.ABSENT if row is None else _STATUS[row.phase]


def _op_status(slot: int) -> int:
    if not op_slots.is_terminal(slot):
        return ow.OP_RUNNING if slot == op_slots.RUNNING else ow.OP_ABSENT
    return ow.OP_COMPLETED if op_slots.outcome_of(slot) == op_slots.COMPLETED else ow.OP_FAILED


def _op_seq(slot: int) -> int:
    return op_slots.seq_of(slot) if op_slots.is_terminal(slot) else 0


def _padded(n: int, fill: int) -> Callable[[list[Any]], list[Any]]:
    """A list of one value per input or operation id, padded with ``fill`` to the ``n`` ids."""
    return lambda values: values + [fill] * (n - len(values))


class OwnershipAbstraction:
    """Two workers on one store, coarsened: each input's status class in the store and in each
    worker's memory, the lifecycle record's class, the lease, tokens and history. The encoding
    abstracts the model, so the check is a simulation (``simulation``)."""

    simulation = True

    def ids(self, machine: Machine[Any, Any]) -> int:
        """Input ids and operation ids share the encoding's ids (the fewer padded)."""
        assert isinstance(machine, OwnershipMachine)
        return max(machine.bounds.session.inputs, machine.bounds.ops)

    def constants(self, machine: Machine[Any, Any]) -> Values:
        assert isinstance(machine, OwnershipMachine)
        if machine.bounds.workers != len(ow.WORKERS):
            raise NotEncoded(f"the encoding has {len(ow.WORKERS)} workers, the model {machine.bounds.workers}")
        return {"fencing": machine.bounds.fencing}

    def state(self, state: OwnershipState) -> Values:
        if any(a is not None and a.ephemeral for a in state.attrs):
            raise NotEncoded("ephemeral inputs are not encoded")
        if any(worker.pending for worker in state.workers):
            raise NotEncoded("a registry in doubt (a terminal write's outcome unknown) is not encoded")
        n = max(len(state.commits), len(state.ops))
        inputs = _padded(n, 0)
        ops = _padded(n, op_slots.ABSENT)
        out: Values = {
            "owner": state.lease.owner,
            "token": state.lease.token,
            "expired": state.lease.expired,
            "rec": _RECORD.get(state.durable.record, ow.LIVE),
            "undone": state.undone,
            "destroyed": state.destroyed,
            "st": inputs([_status(r) for r in state.durable.rows]),
            "commits": inputs(list(state.commits)),
            "nxt": state.next_seq,
            "high": state.high_seq,
            "reused": state.seq_reused,
            "oundone": state.op_undone,
            "ost": ops([_op_status(slot) for slot in state.ops]),
            "osq": _padded(n, 0)([_op_seq(slot) for slot in state.ops]),
        }
        for v, worker in enumerate(state.workers):
            memory = worker.memory
            out[f"tok{v}"] = worker.token
            out[f"reg{v}"] = memory is not None
            out[f"doubt{v}"] = worker.in_doubt
            out[f"mrec{v}"] = ow.LIVE if memory is None else _RECORD.get(record_of(memory), ow.LIVE)
            out[f"mem{v}"] = inputs(
                [ow.ABSENT] * len(state.commits) if memory is None else [_status(r) for r in memory.rows]
            )
            out[f"nq{v}"] = worker.next_seq
            out[f"om{v}"] = ops([_op_status(slot) for slot in worker.ops])
            out[f"oq{v}"] = _padded(n, 0)([_op_seq(slot) for slot in worker.ops])
        return out

    def action(self, action: Any, state: OwnershipState) -> Encoded:
        kind = type(action)
        if kind is oo.Expire:
            return Encoded((Candidate("expire"),))
        if kind in _OWNERSHIP:
            return Encoded(tuple(Candidate(t, (("w", action.w),)) for t in _OWNERSHIP[kind]))
        if kind is oo.RegisterOp:
            return Encoded((Candidate("register_op", (("w", action.w), ("id", action.op))),))
        if kind is oo.FinishOp:
            outcome = ow.OP_COMPLETED if action.outcome == op_slots.COMPLETED else ow.OP_FAILED
            finish = Candidate("finish_op", (("w", action.w), ("id", action.op), ("outcome", outcome)))
            return Encoded((finish, Candidate("write_refused", (("w", action.w),))))
        if kind is oo.AmbiguousFinishOp:
            raise NotEncoded("a registry's terminal write of unknown outcome is not encoded")
        raise ValueError(f"the ownership abstraction does not know the action {action!r}")

    def normalise(self, values: Values) -> Values:
        return values


ABSTRACTIONS: dict[str, Callable[[], Abstraction]] = {
    "ops": OpsAbstraction,
    "session": SessionAbstraction,
    "ownership": OwnershipAbstraction,
}
"""The abstraction of each encoded machine (keys: the names of ``runner.ENCODINGS``)."""
