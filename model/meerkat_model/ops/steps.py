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
from meerkat_model.ops.remembered import TerminalEffects
from meerkat_model.ops.state import DurableImage, OpRecord, RegistryState, is_terminal, new_record, with_slot
from meerkat_model.vocab import rejections as rj
from meerkat_model.vocab.statuses import OpKind, OpStatus

Result = Stepped[RegistryState] | Rejected

P, R, T = int(OpStatus.PROVISIONING), int(OpStatus.RUNNING), int(OpStatus.RETIRING)
FIRST_TERMINAL = int(OpStatus.COMPLETED)
_new = tuple.__new__
"""Builds a record from a tuple of its fields without its Python-level constructor (hot paths)."""
ACTIVE = (P, R, T)
LIVE = (R, T)


class TerminalMemo:
    """Step results remembered by the fast paths. ``results``: the terminal effects computed
    from the last state a terminal step ran on, by ``(id, status, payload)``: several calls end
    an operation the same way (``fail_operation`` and ``provisioning_failed`` with one error),
    and states are immutable, so the second call from the same state reuses the first one's
    successor (the same object). ``recovered``: the crash step from each durable write."""

    __slots__ = ("recovered", "results", "state")

    def __init__(self) -> None:
        self.state: RegistryState | None = None
        self.results: dict[tuple[int, int, int], tuple[RegistryState, tuple[Any, ...]]] = {}
        self.recovered: dict[DurableImage | tuple[()], Stepped[RegistryState]] = {}
        """The crash step from each distinct durable write (see :func:`crash`)."""


@dataclass(frozen=True, slots=True)
class Context:
    """What every step reads besides the state. With ``fast`` (the default) terminal steps go
    through the fast paths (:class:`TerminalMemo`, :class:`TerminalEffects`); without it they
    run the plain :func:`terminalize` and :func:`write` (tests compare the two)."""

    bounds: OpsBounds
    domains: PayloadDomains
    fast: bool = True
    memo: TerminalMemo = field(default_factory=TerminalMemo, compare=False, repr=False)
    effects: TerminalEffects = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "effects", TerminalEffects(self.bounds, self.domains))


def status_name(status: int) -> str:
    return OpStatus(status).name.lower()


def _not_tracked(op_id: int) -> Rejected:
    return Rejected(rj.NOT_FOUND, f"operation {op_id} is not tracked")


def _lookup(state: RegistryState, op_id: int) -> OpRecord | Rejected:
    ops = state.ops
    rec = ops[op_id] if 0 <= op_id < len(ops) else ()
    if not rec:
        return _not_tracked(op_id)
    return rec


def _invalid(op_id: int, rec: OpRecord, action: str) -> Rejected:
    return Rejected(rj.INVALID_TRANSITION, f"operation {op_id}: cannot {action} while {status_name(rec.status)}")


_RETURNED_NONE: tuple[Any, ...] = (("returned", None),)
_RETURNED_NOTHING: tuple[Any, ...] = (("returned", ()),)
_RETURNED_ZERO: tuple[Any, ...] = (("returned", 0),)


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
        ops = state[0]
        rec = ops[op_id] if 0 <= op_id < len(ops) else ()
        if not rec:
            return _not_tracked(op_id)
        if rec[0] not in sources:
            return _invalid(op_id, rec, name)
        new = _new(RegistryState, ((*ops[:op_id], change(rec), *ops[op_id + 1 :]), *state[1:]))
        return Stepped(new, _RETURNED_NONE, name)

    return step


def _to_running(r: OpRecord) -> OpRecord:
    return _new(OpRecord, (R, *r[1:]))


def _to_retiring(r: OpRecord) -> OpRecord:
    return _new(OpRecord, (T, *r[1:]))


def _one_more_progress(r: OpRecord) -> OpRecord:
    return _new(OpRecord, (*r[:3], r[3] + 1, *r[4:]))


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
    ready = OpRecord(rec[0], rec[1], True, *rec[3:])
    return _ack(RegistryState(with_slot(state[0], op_id, ready), *state[1:]), None, "peer_ready")


def register_watcher(ctx: Context, state: RegistryState, op_id: int) -> Result:
    rec = _lookup(state, op_id)
    if isinstance(rec, Rejected):
        return rec
    if is_terminal(rec.status):
        view = outcome_view(ctx.domains, rec.outcome, rec.payload)
        return _ack(state, None, "register_watcher", (("watcher_resolved", op_id, view),))
    watched = _new(OpRecord, (*rec[:4], rec[4] + 1, *rec[5:]))
    new = _new(RegistryState, (with_slot(state[0], op_id, watched), *state[1:]))
    return Stepped(new, _RETURNED_NONE, "register_watcher")


def drop_watcher(ctx: Context, state: RegistryState, op_id: int) -> Result:
    """One pending watcher of an active operation is released (its watch dropped); the output
    ``("watcher_dropped", id, n)`` gives the watchers still pending. An operation that is not
    active, or has no pending watcher, has no watch to drop (``invalid_transition``)."""
    rec = _lookup(state, op_id)
    if isinstance(rec, Rejected):
        return rec
    if rec.status not in ACTIVE or not rec.watchers:
        return _invalid(op_id, rec, "drop_watcher")
    left = rec.watchers - 1
    dropped = _new(OpRecord, (*rec[:4], left, *rec[5:]))
    new = _new(RegistryState, (with_slot(state[0], op_id, dropped), *state[1:]))
    return Stepped(new, (("watcher_dropped", op_id, left),), "drop_watcher")


TerminalStep = Callable[[Context, RegistryState, int, Payload], Result]


def _terminal(name: str, sources: tuple[int, ...], status: int) -> TerminalStep:
    """A terminal per-operation transition: status check, terminal effects, durable write."""

    def step(ctx: Context, state: RegistryState, op_id: int, value: Payload) -> Result:
        ops = state[0]
        rec = ops[op_id] if 0 <= op_id < len(ops) else ()
        if not rec:
            return _not_tracked(op_id)
        if rec[0] not in sources:
            return _invalid(op_id, rec, name)
        payload = ctx.domains.indexes.get((status, value))
        if payload is None:
            payload = ctx.domains.index(status, value)  # raises, naming the foreign value
        if not ctx.fast:
            new, outputs = terminalize(state, op_id, status, payload, ctx.bounds, ctx.domains)
            return Stepped(write(new), (_RETURNED_NONE[0], *outputs), name)
        memo = ctx.memo
        if memo.state is not state:
            memo.state = state
            memo.results = {}
        key = (op_id, status, payload)
        done = memo.results.get(key)
        if done is None:
            new, outputs = ctx.effects.end(state, op_id, status, payload)
            done = memo.results[key] = (new, (_RETURNED_NONE[0], *outputs))
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
    if ctx.fast:
        if not state[1]:
            return Stepped(state, _RETURNED_ZERO, "terminate_owner")
        new, ended = ctx.effects.end_all(state, int(OpStatus.TERMINATED), payload)
        return Stepped(new, (("returned", len(state.active_order)), *ended), "terminate_owner")
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
    if ctx.fast:
        collected = ctx.effects.collect(state)
        if collected is None:
            return Stepped(state, _RETURNED_NOTHING, "collect_completed")
        return Stepped(collected[0], (("returned", collected[1]),), "collect_completed")
    taken = tuple(i for i in state.completed if i not in state.barrier)
    if not taken:
        return _ack(state, (), "collect_completed")
    returned = wait_outcomes(state, taken, ctx.domains)
    ops = state.ops
    for op_id in taken:
        ops = with_slot(ops, op_id, ())
    kept = tuple(i for i in state.completed if i in state.barrier)
    return _ack(write(_new(RegistryState, (ops, *state[1:3], kept, *state[4:]))), returned, "collect_completed")


def wait_all(ctx: Context, state: RegistryState, members: tuple[int, ...]) -> Result:
    if len(set(members)) != len(members):
        seen: set[int] = set()
        for op_id in members:
            if op_id in seen:
                return Rejected(rj.DUPLICATE_WAIT_OPERATION, f"wait_all lists operation {op_id} more than once")
            seen.add(op_id)
    if state[4]:
        return Rejected(rj.WAIT_ALREADY_ACTIVE, "a wait_all barrier is already active")
    ops = state[0]
    waiting = False
    for op_id in members:
        rec = ops[op_id] if 0 <= op_id < len(ops) else ()
        if not rec:
            return _not_tracked(op_id)
        if rec[0] < FIRST_TERMINAL:
            waiting = True
    if not waiting:
        result = ("wait_all_satisfied", wait_outcomes(state, members, ctx.domains))
        return Stepped(state, (result,), "wait_all_immediate")
    return Stepped(_new(RegistryState, (*state[:4], tuple(members), *state[5:])), (), "wait_all_begin")


def drop_wait(ctx: Context, state: RegistryState) -> Result:
    """The pending ``wait_all`` is dropped or cancelled: the barrier ends, retention re-applies."""
    if not state.barrier:
        return Stepped(state, (), "wait_all_cancel")
    return Stepped(retain(RegistryState(*state[:4], (), *state[5:]), ctx.bounds.max_completed), (), "wait_all_cancel")


def crash(ctx: Context, state: RegistryState) -> Result:
    """The process dies and the registry is rebuilt from its last durable write (with ``fast``,
    each distinct write is recovered once: the result depends on nothing else)."""
    disk = state[8]
    if not ctx.fast:
        return Stepped(recover(disk, ctx.bounds.ids, ctx.bounds.max_completed), (), "crash_recover")
    done = ctx.memo.recovered.get(disk)
    if done is None:
        rebuilt = recover(disk, ctx.bounds.ids, ctx.bounds.max_completed)
        done = ctx.memo.recovered[disk] = Stepped(rebuilt, (), "crash_recover")
    return done


def detach(ctx: Context, state: RegistryState) -> Result:
    """The registry's session goes away while the process lives: each operation's pending
    watchers (``("watchers_released", id, n)``) and a pending barrier (``("wait_all_released",)``)
    are released with an error; the state becomes what the session's next registry recovers
    from the last durable write (as after :func:`crash`)."""
    released: list[Any] = [("watchers_released", i, rec[4]) for i, rec in enumerate(state[0]) if rec and rec[4]]
    if state.barrier:
        released.append(("wait_all_released",))
    recovered = crash(ctx, state)
    assert isinstance(recovered, Stepped)
    return Stepped(recovered.state, tuple(released), "crash_recover")


def writes_durably(state: RegistryState, result: Result) -> bool:
    """Whether the step that produced ``result`` from ``state`` made a durable write."""
    return isinstance(result, Stepped) and result.state.disk is not state.disk and result.transition != "crash_recover"
