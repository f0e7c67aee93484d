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
from typing import Any

from meerkat_model.ops.bounds import OpsBounds
from meerkat_model.ops.payloads import PayloadDomains
from meerkat_model.ops.state import OpRecord, RegistryState
from meerkat_model.vocab.statuses import OpKind, OpStatus

Action = tuple[Any, ...]

P, R, T = int(OpStatus.PROVISIONING), int(OpStatus.RUNNING), int(OpStatus.RETIRING)
MOB = int(OpKind.MOB_MEMBER_CHILD)


class CandidateActions:
    """Precomputed action tuples for fixed bounds (actions are shared, not rebuilt per state)."""

    def __init__(self, bounds: OpsBounds, domains: PayloadDomains) -> None:
        self.bounds = bounds
        ids = range(bounds.ids)
        self.kinds = [int(OpKind.BACKGROUND_TOOL_OP), MOB][: bounds.kinds]
        by = domains.by_outcome
        results, errs = by[int(OpStatus.COMPLETED)], by[int(OpStatus.FAILED)]
        reasons = by[int(OpStatus.CANCELLED)]
        self.register = [[("register_operation", i, k) for k in self.kinds] for i in ids]
        ending = [
            [("provisioning_failed", i, e) for e in errs]
            + [("fail_operation", i, e) for e in errs]
            + [("cancel_operation", i, r) for r in reasons]
            for i in ids
        ]
        self.provisioning = [
            [("provisioning_succeeded", i), *[("abort_provisioning", i, r) for r in reasons], *ending[i]] for i in ids
        ]
        self.live = [[*[("complete_operation", i, r) for r in results], ("mark_retired", i), *ending[i]] for i in ids]
        self.retire = [("request_retire", i) for i in ids]
        self.peer = [("peer_ready", i) for i in ids]
        self.progress = [("report_progress", i) for i in ids]
        self.watch = [("register_watcher", i) for i in ids]
        self.terminate = [("terminate_owner", r) for r in by[int(OpStatus.TERMINATED)]]
        self.waits: list[Action] = [("wait_all", ())]
        for size in range(1, bounds.ids + 1):
            self.waits.extend(("wait_all", p) for p in permutations(ids, size))
        self.every_transition = [
            [*sorted(set(self.provisioning[i] + self.live[i])), self.retire[i], self.peer[i]] for i in ids
        ]
        self.durable = (
            {a for i in ids for a in self.provisioning[i] + self.live[i] if a[0] != "provisioning_succeeded"}
            | set(self.terminate)
            | {("collect_completed",)}
        )

    def enabled_actions(self, state: RegistryState) -> list[Action]:
        b = self.bounds
        out: list[Action] = []
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
        out.extend(self.terminate)
        out.append(("collect_completed",))
        if b.barrier:
            if state.barrier:
                out.append(("drop_wait",))
            else:
                ops = state.ops
                out.extend(a for a in self.waits if all(ops[j] for j in a[1]))
        if b.crash:
            out.append(("crash",))
        return out

    def probe_actions(self, state: RegistryState) -> list[Action]:
        """Every per-operation call on every id (rejected ones included), registrations of
        tracked ids, every wait request (a duplicate one included), ``drop_wait`` and ``crash``,
        then the write-failure variant of every call that may write. Data bounds still hold:
        a call that would grow a counter past its bound is not offered."""
        b = self.bounds
        out: list[Action] = []
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
        out.extend(self.terminate)
        out.append(("collect_completed",))
        if b.barrier:
            out.extend(self.waits)
            out.append(("wait_all", (0, 0)))
            out.append(("drop_wait",))
        if b.crash:
            out.append(("crash",))
        out.extend(("write_fails", a) for a in list(out) if a in self.durable)
        return out
