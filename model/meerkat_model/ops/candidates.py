"""Candidate actions of the operation-registry model in a given state.

``enabled_actions`` lists every call the model accepts in the state: the ones that change it
and the accepted no-ops that an observer can still see (a watcher on a terminal operation
resolves at once, ``terminate_owner`` with nothing active returns 0, ``collect_completed``
with nothing to collect returns nothing, ``wait_all`` on terminal members resolves at once),
which become self-loops of the reachable graph. ``probe_actions`` adds the calls the model
rejects (unknown ids, wrong statuses, duplicate registrations, bad wait requests) and the
durable-write failure variant of every call that writes; they change no state, so
exhaustive verification does not need them, but a conformance run compares them too.
"""

from __future__ import annotations

from itertools import permutations

from meerkat_model.action_record import action_name
from meerkat_model.ops import payloads
from meerkat_model.ops.actions import (
    DURABLE_CALLS,
    AbortProvisioning,
    CancelOperation,
    CollectCompleted,
    CompleteOperation,
    Crash,
    Detach,
    DropWait,
    DropWatcher,
    FailOperation,
    MarkRetired,
    OpsAction,
    PeerReady,
    ProvisioningFailed,
    ProvisioningSucceeded,
    RegisterOperation,
    RegisterWatcher,
    ReportProgress,
    RequestRetire,
    TerminateOwner,
    WaitAll,
    WriteFails,
)
from meerkat_model.ops.bounds import OpsBounds
from meerkat_model.ops.payloads import PayloadDomains
from meerkat_model.ops.state import OpRecord, RegistryState
from meerkat_model.vocab.statuses import OpKind, OpStatus

P, R, T = int(OpStatus.PROVISIONING), int(OpStatus.RUNNING), int(OpStatus.RETIRING)
MOB = int(OpKind.MOB_MEMBER_CHILD)


class CandidateActions:
    """Precomputed action records for fixed bounds (shared by every state, never rebuilt)."""

    def __init__(self, bounds: OpsBounds, domains: PayloadDomains) -> None:
        self.bounds = bounds
        ids = range(bounds.ids)
        self.kinds = [int(OpKind.BACKGROUND_TOOL_OP), MOB][: bounds.kinds]
        n = domains.n
        results, errs, reasons = payloads.results(n), payloads.errors(n), payloads.reasons(n)
        self.register = [[RegisterOperation(i, k) for k in self.kinds] for i in ids]
        ending: list[list[OpsAction]] = [
            [
                *[ProvisioningFailed(i, e) for e in errs],
                *[FailOperation(i, e) for e in errs],
                *[CancelOperation(i, r) for r in reasons],
            ]
            for i in ids
        ]
        self.provisioning: list[list[OpsAction]] = [
            [ProvisioningSucceeded(i), *[AbortProvisioning(i, r) for r in reasons], *ending[i]] for i in ids
        ]
        self.live: list[list[OpsAction]] = [
            [*[CompleteOperation(i, r) for r in results], MarkRetired(i), *ending[i]] for i in ids
        ]
        self.retire = [RequestRetire(i) for i in ids]
        self.peer = [PeerReady(i) for i in ids]
        self.progress = [ReportProgress(i) for i in ids]
        self.watch = [RegisterWatcher(i) for i in ids]
        self.unwatch = [DropWatcher(i) for i in ids]
        self.terminate = [TerminateOwner(r) for r in payloads.terminate_reasons(n)]
        self.collect = CollectCompleted()
        self.drop_wait = DropWait()
        self.crash = Crash()
        self.detach = Detach()
        self.waits: list[WaitAll] = [WaitAll(())]
        for size in range(1, bounds.ids + 1):
            self.waits.extend(WaitAll(p) for p in permutations(ids, size))
        self.duplicate_wait = WaitAll((0, 0))
        self._waits_over: dict[tuple[bool, ...], list[WaitAll]] = {}
        """The wait requests over tracked ids only, per set of tracked ids."""
        self.every_transition: list[list[OpsAction]] = [
            [*sorted(dict.fromkeys(self.provisioning[i] + self.live[i]), key=_by_name), self.retire[i], self.peer[i]]
            for i in ids
        ]
        shared: list[OpsAction] = [
            *(a for per_id in self.register for a in per_id),
            *(a for per_id in self.provisioning for a in per_id),
            *(a for per_id in self.live for a in per_id),
            *self.retire,
            *self.peer,
            *self.progress,
            *self.watch,
            *self.unwatch,
            *self.terminate,
            self.collect,
            self.drop_wait,
            self.crash,
            self.detach,
            *self.waits,
            self.duplicate_wait,
        ]
        self.write_fails = {a: WriteFails(a) for a in shared if type(a) in DURABLE_CALLS}
        self._every = [*dict.fromkeys(shared), *self.write_fails.values()]

    def enabled_actions(self, state: RegistryState) -> list[OpsAction]:
        b = self.bounds
        out: list[OpsAction] = []
        can_register = state.next_seq - 1 + state.active_count < b.sequences
        for i, rec in enumerate(state.ops):
            if not isinstance(rec, OpRecord):
                if can_register:
                    out.extend(self.register[i])
                continue
            status = rec[0]
            if status == P:
                out.extend(self.provisioning[i])
            elif status in (R, T):
                out.extend(self.live[i])
                if status == R:
                    out.append(self.retire[i])
                if rec.kind == MOB and not rec.peer_ready:
                    out.append(self.peer[i])
                if rec.progress < b.progress:
                    out.append(self.progress[i])
            else:  # terminal: a watcher resolves at once (a self-loop with an output)
                out.append(self.watch[i])
                continue
            if rec.watchers < b.watchers:
                out.append(self.watch[i])
            if rec.watchers:
                out.append(self.unwatch[i])
        out.extend(self.terminate)
        out.append(self.collect)
        if b.barrier:
            if state.barrier:
                out.append(self.drop_wait)
            else:
                tracked = tuple([bool(rec) for rec in state[0]])
                waits = self._waits_over.get(tracked)
                if waits is None:
                    waits = self._waits_over[tracked] = [a for a in self.waits if all(tracked[j] for j in a.members)]
                out.extend(waits)
        if b.crash:
            out.append(self.crash)
            out.append(self.detach)
        return out

    def probe_actions(self, state: RegistryState) -> list[OpsAction]:
        """Every per-operation call on every id (rejected ones included), registrations of
        tracked ids, every wait request (a duplicate one included), ``drop_wait`` and ``crash``,
        then the write-failure variant of every call that may write. Data bounds still hold:
        a call that would grow a counter past its bound is not offered. ``drop_watcher`` is
        offered only where a watcher is pending (elsewhere there is no watch to drop)."""
        b = self.bounds
        out: list[OpsAction] = []
        can_register = state.next_seq - 1 + state.active_count < b.sequences
        live = (R, T)
        for i, rec in enumerate(state.ops):
            out.extend(self.every_transition[i])
            if not isinstance(rec, OpRecord):
                if can_register:
                    out.extend(self.register[i])
                out.append(self.progress[i])
                out.append(self.watch[i])
                continue
            out.append(self.register[i][0])
            if rec.progress < b.progress or rec.status not in live:
                out.append(self.progress[i])
            if rec.watchers < b.watchers or rec.status not in (P, R, T):
                out.append(self.watch[i])
            if rec.watchers:
                out.append(self.unwatch[i])
        out.extend(self.terminate)
        out.append(self.collect)
        if b.barrier:
            out.extend(self.waits)
            out.append(self.duplicate_wait)
            out.append(self.drop_wait)
        if b.crash:
            out.append(self.crash)
            out.append(self.detach)
        write_fails = self.write_fails
        out.extend([write_fails[a] for a in out if type(a) in DURABLE_CALLS])
        return out

    def every_action(self) -> list[OpsAction]:
        """Every action record these candidates hand out (each one once)."""
        return self._every


def _by_name(action: OpsAction) -> tuple[str, str]:
    """Sort key of the per-operation calls: call name, then arguments."""
    return action_name(action), repr(tuple(action))
