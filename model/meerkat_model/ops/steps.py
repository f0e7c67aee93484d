"""The transition function of the operation-registry model: one function per registry method.

Each function takes the context (bounds, payload domains), the state and the action's
arguments and returns ``Stepped`` or ``Rejected``; a rejection leaves the state unchanged.
Error checks run in the order of docs/semantics.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from meerkat_model.machine import Rejected, Stepped
from meerkat_model.ops.bounds import OpsBounds
from meerkat_model.ops.effects import recover, retain, terminalize, wait_outcomes, write
from meerkat_model.ops.payloads import Payload, PayloadDomains, outcome_view
from meerkat_model.ops.state import OpRecord, RegistryState, is_terminal, new_record, status_of, with_slot
from meerkat_model.vocab import rejections as rj
from meerkat_model.vocab.statuses import OpKind, OpStatus

Result = Stepped[RegistryState] | Rejected

P, R, T = int(OpStatus.PROVISIONING), int(OpStatus.RUNNING), int(OpStatus.RETIRING)
ACTIVE = (P, R, T)
LIVE = (R, T)


class TerminalMemo:
    """The terminal effects computed from the last state a terminal step ran on, by
    ``(id, status, payload)``: several calls end an operation the same way (``fail_operation``
    and ``provisioning_failed`` with one error), and states are immutable, so the second call
    from the same state reuses the first one's successor (the same object)."""

    __slots__ = ("results", "state")

    def __init__(self) -> None:
        self.state: RegistryState | None = None
        self.results: dict[tuple[int, int, int], tuple[RegistryState, tuple[Any, ...]]] = {}


@dataclass(frozen=True, slots=True)
class Context:
    bounds: OpsBounds
    domains: PayloadDomains
    memo: TerminalMemo = field(default_factory=TerminalMemo, compare=False, repr=False)


def status_name(status: int) -> str:
    return OpStatus(status).name.lower()


def _lookup(state: RegistryState, op_id: int) -> OpRecord | Rejected:
    ops = state.ops
    rec = ops[op_id] if 0 <= op_id < len(ops) else ()
    if not rec:
        return Rejected(rj.NOT_FOUND, f"operation {op_id} is not tracked")
    return rec


def _invalid(op_id: int, rec: OpRecord, action: str) -> Rejected:
    return Rejected(rj.INVALID_TRANSITION, f"operation {op_id}: cannot {action} while {status_name(rec.status)}")


_RETURNED_NONE: tuple[Any, ...] = (("returned", None),)


def _ack(state: RegistryState, value: Any, name: str, extra: tuple[Any, ...] = ()) -> Stepped[RegistryState]:
    return Stepped(state, (("returned", value), *extra), name)


def register_operation(ctx: Context, state: RegistryState, op_id: int, kind: int) -> Result:
    if not 0 <= op_id < len(state.ops):
        raise ValueError(f"operation id {op_id} is outside the modelled ids 0..{len(state.ops) - 1}")
    OpKind(kind)  # a kind the model does not know is a usage error, not a rejection
    if state.ops[op_id]:
        return Rejected(rj.ALREADY_REGISTERED, f"operation {op_id} is already registered")
    limit = ctx.bounds.max_concurrent
    if limit and state.active_count >= limit:
        return Rejected(rj.MAX_CONCURRENT_EXCEEDED, f"limit {limit} reached ({state.active_count} active)")
    new = state._replace(
        ops=with_slot(state.ops, op_id, new_record(kind)),
        active_order=(*state.active_order, op_id),
        active_count=state.active_count + 1,
    )
    return _ack(new, None, "register_operation")


def _simple(
    name: str, sources: tuple[int, ...], change: Callable[[OpRecord], OpRecord]
) -> Callable[[Context, RegistryState, int], Result]:
    """A non-terminal per-operation transition: status check, then ``change`` the record."""

    def step(ctx: Context, state: RegistryState, op_id: int) -> Result:
        rec = _lookup(state, op_id)
        if isinstance(rec, Rejected):
            return rec
        if rec.status not in sources:
            return _invalid(op_id, rec, name)
        new = RegistryState(with_slot(state.ops, op_id, change(rec)), *state[1:])
        return Stepped(new, _RETURNED_NONE, name)

    return step


def _to_running(r: OpRecord) -> OpRecord:
    return OpRecord(R, r.kind, r.peer_ready, r.progress, r.watchers, r.outcome, r.payload, r.seq)


def _to_retiring(r: OpRecord) -> OpRecord:
    return OpRecord(T, r.kind, r.peer_ready, r.progress, r.watchers, r.outcome, r.payload, r.seq)


def _one_more_progress(r: OpRecord) -> OpRecord:
    return OpRecord(r.status, r.kind, r.peer_ready, r.progress + 1, r.watchers, r.outcome, r.payload, r.seq)


provisioning_succeeded = _simple("provisioning_succeeded", (P,), _to_running)
report_progress = _simple("report_progress", LIVE, _one_more_progress)
request_retire = _simple("request_retire", (R,), _to_retiring)


def peer_ready(ctx: Context, state: RegistryState, op_id: int) -> Result:
    rec = _lookup(state, op_id)
    if isinstance(rec, Rejected):
        return rec
    if rec.kind != OpKind.MOB_MEMBER_CHILD:
        return Rejected(rj.PEER_NOT_EXPECTED, f"operation {op_id} is not a mob member child")
    if rec.peer_ready:
        return Rejected(rj.ALREADY_PEER_READY, f"operation {op_id} already reported peer_ready")
    if rec.status not in LIVE:
        return _invalid(op_id, rec, "peer_ready")
    return _ack(state._replace(ops=with_slot(state.ops, op_id, rec._replace(peer_ready=True))), None, "peer_ready")


def register_watcher(ctx: Context, state: RegistryState, op_id: int) -> Result:
    rec = _lookup(state, op_id)
    if isinstance(rec, Rejected):
        return rec
    if is_terminal(rec.status):
        view = outcome_view(ctx.domains, rec.outcome, rec.payload)
        return _ack(state, None, "register_watcher", (("watcher_resolved", op_id, view),))
    new = state._replace(ops=with_slot(state.ops, op_id, rec._replace(watchers=rec.watchers + 1)))
    return _ack(new, None, "register_watcher")


TerminalStep = Callable[[Context, RegistryState, int, Payload], Result]


def _terminal(name: str, sources: tuple[int, ...], status: int) -> TerminalStep:
    """A terminal per-operation transition: status check, terminal effects, durable write."""

    def step(ctx: Context, state: RegistryState, op_id: int, value: Payload) -> Result:
        rec = _lookup(state, op_id)
        if isinstance(rec, Rejected):
            return rec
        if rec.status not in sources:
            return _invalid(op_id, rec, name)
        payload = ctx.domains.indexes.get((status, value))
        if payload is None:
            payload = ctx.domains.index(status, value)  # raises, naming the foreign value
        memo = ctx.memo
        if memo.state is not state:
            memo.state = state
            memo.results = {}
        key = (op_id, status, payload)
        done = memo.results.get(key)
        if done is None:
            new, outputs = terminalize(state, op_id, status, payload, ctx.bounds, ctx.domains)
            done = memo.results[key] = (write(new), (_RETURNED_NONE[0], *outputs))
        return Stepped(done[0], done[1], name)

    return step


provisioning_failed = _terminal("provisioning_failed", ACTIVE, int(OpStatus.FAILED))
abort_provisioning = _terminal("abort_provisioning", (P,), int(OpStatus.ABORTED))
complete_operation = _terminal("complete_operation", LIVE, int(OpStatus.COMPLETED))
fail_operation = _terminal("fail_operation", ACTIVE, int(OpStatus.FAILED))
cancel_operation = _terminal("cancel_operation", ACTIVE, int(OpStatus.CANCELLED))
_mark_retired = _terminal("mark_retired", LIVE, int(OpStatus.RETIRED))


def mark_retired(ctx: Context, state: RegistryState, op_id: int) -> Result:
    return _mark_retired(ctx, state, op_id, None)


def terminate_owner(ctx: Context, state: RegistryState, reason: str) -> Result:
    """Every active operation → Terminated{reason}, in registration order; one durable write
    when at least one was terminated. Returns the count."""
    payload = ctx.domains.index(int(OpStatus.TERMINATED), reason)
    outputs: list[Any] = []
    order = state.active_order
    for op_id in order:
        state, out = terminalize(state, op_id, int(OpStatus.TERMINATED), payload, ctx.bounds, ctx.domains)
        outputs.extend(out)
    if order:
        state = write(state)
    return _ack(state, len(order), "terminate_owner", tuple(outputs))


def collect_completed(ctx: Context, state: RegistryState) -> Result:
    """Remove terminal operations (barrier members stay until the barrier ends); returns
    ``((id, outcome), ...)`` in completion order; durable when something was removed."""
    taken = tuple(i for i in state.completed if i not in state.barrier)
    if not taken:
        return _ack(state, (), "collect_completed")
    returned = wait_outcomes(state, taken, ctx.domains)
    ops = state.ops
    for op_id in taken:
        ops = with_slot(ops, op_id, ())
    kept = tuple(i for i in state.completed if i in state.barrier)
    return _ack(write(state._replace(ops=ops, completed=kept)), returned, "collect_completed")


def wait_all(ctx: Context, state: RegistryState, members: tuple[int, ...]) -> Result:
    seen: set[int] = set()
    for op_id in members:
        if op_id in seen:
            return Rejected(rj.DUPLICATE_WAIT_OPERATION, f"wait_all lists operation {op_id} more than once")
        seen.add(op_id)
    if state.barrier:
        return Rejected(rj.WAIT_ALREADY_ACTIVE, "a wait_all barrier is already active")
    for op_id in members:
        rec = _lookup(state, op_id)
        if isinstance(rec, Rejected):
            return rec
    if all(is_terminal(status_of(state.ops[i])) for i in members):
        result = ("wait_all_satisfied", wait_outcomes(state, members, ctx.domains))
        return Stepped(state, (result,), "wait_all_immediate")
    return Stepped(state._replace(barrier=tuple(members)), (), "wait_all_begin")


def drop_wait(ctx: Context, state: RegistryState) -> Result:
    """The pending ``wait_all`` is dropped or cancelled: the barrier ends, retention re-applies."""
    if not state.barrier:
        return Stepped(state, (), "wait_all_cancel")
    return Stepped(retain(state._replace(barrier=()), ctx.bounds.max_completed), (), "wait_all_cancel")


def crash(ctx: Context, state: RegistryState) -> Result:
    """The process dies and the registry is rebuilt from its last durable write."""
    return Stepped(recover(state.disk, ctx.bounds.ids, ctx.bounds.max_completed), (), "crash_recover")


def writes_durably(state: RegistryState, result: Result) -> bool:
    """Whether the step that produced ``result`` from ``state`` made a durable write."""
    return isinstance(result, Stepped) and result.state.disk is not state.disk and result.transition != "crash_recover"
