"""What an observer sees of an ownership state, in the runtime's words.

``observe(state)`` is the plain data the conformance harness compares with the runtime workers:
``lease`` (``None`` before the first claim, else ``{"owner": worker, "token", "expired"}``) and
``workers``, one session-model observation (``meerkat_model.session.observe``) per worker, each
with ``in_doubt``; every worker sees the same ``stored`` part (the one store); and ``ops``:
the registry the store holds (``stored``: operation id -> outcome and sequence number of its
terminal operations, ``next_seq``) and each worker's registry (``None`` when not registered,
else ``operations``: id -> ``running`` / ``completed#n`` / ``failed#n`` of the tracked ones,
and its ``next_seq``).
"""

from __future__ import annotations

from typing import Any

from meerkat_model.action_record import action_name
from meerkat_model.ownership import op_slots
from meerkat_model.ownership.actions import Ambiguous, AmbiguousFinishOp, FinishOp, On, OwnershipAction, RegisterOp
from meerkat_model.ownership.state import NO_OWNER, OwnershipState, view
from meerkat_model.session import observe as session_observe


def lease_view(state: OwnershipState) -> dict[str, Any] | None:
    lease = state.lease
    if lease.owner == NO_OWNER:
        return None
    return {"owner": lease.owner, "token": lease.token, "expired": lease.expired}


def observe(state: OwnershipState) -> dict[str, Any]:
    workers = []
    for w, worker in enumerate(state.workers):
        seen = session_observe.observe(view(state, w))
        seen["in_doubt"] = worker.in_doubt
        workers.append(seen)
    return {"lease": lease_view(state), "workers": workers, "ops": ops_view(state)}


def ops_view(state: OwnershipState) -> dict[str, Any]:
    """The registry's durable part and each worker's registry (module docstring)."""
    stored = {op: op_slots.spell(slot) for op, slot in enumerate(state.ops) if slot != op_slots.ABSENT}
    workers: list[dict[str, Any] | None] = []
    for worker in state.workers:
        if worker.memory is None:
            workers.append(None)
            continue
        tracked = {op: op_slots.spell(slot) for op, slot in enumerate(worker.ops) if slot != op_slots.ABSENT}
        workers.append({"operations": tracked, "next_seq": worker.next_seq})
    return {"stored": stored, "next_seq": state.next_seq, "workers": workers}


def describe(state: OwnershipState) -> dict[str, Any]:
    """A flat field -> value view for traces and diffs: the lease, the store's fields (as the
    session model names them), then each registered worker's fields prefixed ``w<n>.``."""
    out: dict[str, Any] = {"lease": lease_view(state)}
    for key, value in session_observe.describe(view(state, 0)).items():
        if _shared(key):
            out[key] = value
    for w, worker in enumerate(state.workers):
        if worker.memory is None:
            out[f"w{w}"] = "unregistered"
            continue
        out[f"w{w}"] = "in doubt" if worker.in_doubt else "registered"
        out[f"w{w}.token"] = worker.token
        for op, slot in enumerate(worker.ops):
            out[f"w{w}.op{op}"] = op_slots.spell(slot)
        if worker.ops:
            out[f"w{w}.next_seq"] = worker.next_seq
        for key, value in session_observe.describe(view(state, w)).items():
            if not _shared(key):
                out[f"w{w}.{key}"] = value
    out["boundary_commits"] = state.commits
    if state.undone:
        out["undone"] = True
    for op, slot in enumerate(state.ops):
        out[f"stored.op{op}"] = op_slots.spell(slot)
    if state.ops:
        out["stored.next_seq"] = state.next_seq
        out["completion_seqs_taken"] = state.high_seq
    if state.seq_reused:
        out["seq_reused"] = True
    if state.op_undone:
        out["op_undone"] = True
    return out


def _shared(key: str) -> bool:
    """Whether a session-model field describes the store (or an input's identity), not memory."""
    return key.startswith("stored") or key.endswith(".attrs") or key == "destroyed"


def action_label(action: OwnershipAction) -> str:
    """``w0.accept(0, ...)``, ``w1.ambiguous[landed](stop)``, ``expire``, ``w0.renew``,
    ``w0.register_operation(op0)``, ``w1.fail_operation(op0)``."""
    match action:
        case RegisterOp(worker, op):
            return f"w{worker}.register_operation(op{op})"
        case FinishOp(worker, op, outcome):
            rule = "complete_operation" if outcome == op_slots.COMPLETED else "fail_operation"
            return f"w{worker}.{rule}(op{op})"
        case AmbiguousFinishOp(worker, op, outcome, landed):
            rule = "complete_operation" if outcome == op_slots.COMPLETED else "fail_operation"
            return f"w{worker}.ambiguous[{'landed' if landed else 'lost'}]({rule}(op{op}))"
        case On(worker, inner):
            return f"w{worker}.{session_observe.action_label(inner)}"
        case Ambiguous(worker, inner, landed):
            how = "landed" if landed else "lost"
            return f"w{worker}.ambiguous[{how}]({session_observe.action_label(inner)})"
    w = getattr(action, "w", None)
    name = action_name(action)
    return name if w is None else f"w{w}.{name}"
