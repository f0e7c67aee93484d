"""z3 encoding of the operation registry (docs/semantics.md, "Operation registry").

State over ``n`` op ids (per id, quantifier-free):

* ``status`` — 0 when the id is not tracked, else an :class:`OpStatus` value;
* ``kind`` (:class:`OpKind`, -1 when untracked), ``outcome`` (terminal status of the outcome,
  0: none), ``peer`` (peer_ready), ``watchers`` (pending watchers), ``progress``;
* ``done`` — the id is in ``completed_order``; ``seq`` — its completion sequence number
  (0 until terminal); ``member`` — the id is a member of the active ``wait_all`` barrier;
* ``rank`` — an active op's place in registration order (0: registered first among the active
  ones; the active ranks are always ``0 .. active-1``), 0 when not active.

Registry scalars: ``active`` (the active counter the registry maintains), ``barrier``
(a barrier is active), ``watermark`` and ``next_seq`` of the completion feed. Configuration
constants: ``max_completed``, ``has_limit`` / ``max_concurrent``.

Encoding choices: ``completed_order`` and the barrier are per-id flags, so "distinct" holds
by construction; their order is the order of completion sequence numbers (the FIFO evicts the
smallest). ``terminate_owner`` terminates every active op in registration order (``rank``):
op ``j`` gets sequence number ``watermark + 1 + rank[j]``. Its retention is exact too, as the
model applies it one op at a time: up to the last barrier member terminated the barrier pins
its members, then it is released and retention runs again, and the ops terminated after it are
retained without pins. Appending several ids one at a time with retention after each keeps the
same set as one retention pass over all of them while the pinned set is fixed (retention keeps
the newest unpinned ids and never brings one back), hence the two passes.
"""

from __future__ import annotations

from collections.abc import Callable

import z3

from meerkat_model.proofs.symbolic import (
    EntityView,
    Expr,
    FieldSpec,
    Params,
    StepFormula,
    SymbolicMachine,
    SymInvariant,
    SymState,
    SymTransition,
    all_ids,
    count,
    in_set,
    pairs,
    per_id_invariant,
    some_id,
)
from meerkat_model.vocab.statuses import OpKind, OpStatus

ABSENT = 0
PROV, RUN, RETIRING = int(OpStatus.PROVISIONING), int(OpStatus.RUNNING), int(OpStatus.RETIRING)
COMPLETED, FAILED, ABORTED = int(OpStatus.COMPLETED), int(OpStatus.FAILED), int(OpStatus.ABORTED)
CANCELLED, RETIRED, TERMINATED = int(OpStatus.CANCELLED), int(OpStatus.RETIRED), int(OpStatus.TERMINATED)
ACTIVE_STATUSES = (PROV, RUN, RETIRING)
TERMINAL_STATUSES = (COMPLETED, FAILED, ABORTED, CANCELLED, RETIRED, TERMINATED)
MOB = int(OpKind.MOB_MEMBER_CHILD)
KINDS = tuple(int(k) for k in OpKind)
NO_KIND = -1

STATUS_NAMES: dict[int, str] = {ABSENT: "Absent"} | {int(s): s.name.title().replace("_", "") for s in OpStatus}
KIND_NAMES: dict[int, str] = {NO_KIND: "None"} | {int(k): k.name.title().replace("_", "") for k in OpKind}

IDLE, WAITING = "Idle", "Waiting"  # the registry's own status: is a wait_all barrier active?

RECORD_FIELDS = ("status", "kind", "outcome", "peer", "watchers", "progress", "seq", "rank")

FIELDS = (
    FieldSpec("max_completed", "int", constant=True),
    FieldSpec("has_limit", "bool", constant=True),
    FieldSpec("max_concurrent", "int", constant=True),
    FieldSpec("active", "int"),
    FieldSpec("barrier", "bool"),
    FieldSpec("watermark", "int"),
    FieldSpec("next_seq", "int"),
    FieldSpec("status", "int", per_id=True),
    FieldSpec("kind", "int", per_id=True),
    FieldSpec("outcome", "int", per_id=True),
    FieldSpec("peer", "bool", per_id=True),
    FieldSpec("watchers", "int", per_id=True),
    FieldSpec("progress", "int", per_id=True),
    FieldSpec("done", "bool", per_id=True),
    FieldSpec("seq", "int", per_id=True),
    FieldSpec("member", "bool", per_id=True),
    FieldSpec("rank", "int", per_id=True),
)


def is_terminal(x: Expr) -> Expr:
    return x >= COMPLETED


def is_active(x: Expr) -> Expr:
    return z3.And(x >= PROV, x <= RETIRING)


def tracked(x: Expr) -> Expr:
    return x != ABSENT


# -- retention and the terminal-effects pipeline ----------------------------------------------


def retention(inside: list[Expr], pinned: list[Expr], seq: list[Expr], cap: Expr, p: Params, tag: str) -> list[Expr]:
    """Flags for ``completed_order`` after FIFO retention: while more than ``cap`` ids remain,
    the oldest (smallest ``seq``) id that is not pinned is evicted.

    Encoded with a fresh threshold ``θ``: an unpinned id is kept iff its sequence number is at
    least ``θ``, and (in ``p.domain``) the kept count is ``max(cap, pinned)`` when over ``cap``,
    else everything is kept. With distinct sequence numbers this is exactly the evicted prefix.
    """
    n = len(inside)
    theta = p.aux_int(f"{tag}_threshold")
    kept = [z3.And(inside[j], z3.Or(pinned[j], seq[j] >= theta)) for j in range(n)]
    if not p.exact:
        return kept
    total = count(inside)
    n_pinned = count([z3.And(a, b) for a, b in zip(inside, pinned, strict=True)])
    over = total > cap
    p.domain.append(count(kept) == z3.If(over, z3.If(n_pinned > cap, n_pinned, cap), total))
    return kept


def _record_updates(pre: SymState, post: SymState, new: dict[str, list[Expr]], removed: list[Expr]) -> list[Expr]:
    """``post`` record fields: ``new`` values, then cleared where ``removed`` (evicted or
    collected ids are forgotten entirely)."""
    blank: dict[str, Expr] = {
        "status": z3.IntVal(ABSENT),
        "kind": z3.IntVal(NO_KIND),
        "outcome": z3.IntVal(0),
        "peer": z3.BoolVal(False),
        "watchers": z3.IntVal(0),
        "progress": z3.IntVal(0),
        "seq": z3.IntVal(0),
        "rank": z3.IntVal(0),
    }
    eqs: list[Expr] = []
    for name in RECORD_FIELDS:
        values = new.get(name, pre.ids(name))
        for j in range(pre.n):
            eqs.append(post.ids(name)[j] == z3.If(removed[j], blank[name], values[j]))
    return eqs


def _max(values: list[Expr]) -> Expr:
    term = values[0]
    for v in values[1:]:
        term = z3.If(v > term, v, term)
    return term


def finish_terminal(
    pre: SymState,
    post: SymState,
    p: Params,
    newly: list[Expr],
    status: list[Expr],
    seq: list[Expr],
    extra: dict[str, list[Expr]],
    issued: Expr,
    active_after: Expr,
) -> tuple[list[Expr], frozenset[str]]:
    """Terminal effects after ``newly`` ids got terminal ``status`` / ``seq`` (appended to
    ``completed_order`` in ``seq`` order, one at a time): FIFO retention with the barrier
    members pinned up to the last member's append, where the barrier is released (every member
    terminal) and retention runs again; ids appended after it are retained without pins. Feed
    counters advance by ``issued``."""
    n = pre.n
    pins = [z3.And(pre["barrier"], pre.ids("member")[j]) for j in range(n)]
    ends = z3.And(pre["barrier"], all_ids(n, lambda j: z3.Implies(pre.ids("member")[j], is_terminal(status[j]))))
    last_member = [z3.And(newly[j], pre.ids("member")[j]) for j in range(n)]
    has_last = z3.Or(*last_member)
    sigma = _max([z3.If(last_member[j], seq[j], 0) for j in range(n)])
    later = [z3.And(ends, has_last, newly[j], seq[j] > sigma) for j in range(n)]
    phase1 = [z3.Or(pre.ids("done")[j], z3.And(newly[j], z3.Not(later[j]))) for j in range(n)]
    first = retention(phase1, pins, seq, pre["max_completed"], p, "retain")
    again = [z3.Or(first[j], later[j]) for j in range(n)]
    second = retention(again, [z3.BoolVal(False)] * n, seq, pre["max_completed"], p, "release")
    done = [z3.If(ends, second[j], first[j]) for j in range(n)]
    appended = [z3.Or(pre.ids("done")[j], newly[j]) for j in range(n)]
    removed = [z3.And(appended[j], z3.Not(done[j])) for j in range(n)]
    new = {"status": status, "outcome": [z3.If(newly[j], status[j], pre.ids("outcome")[j]) for j in range(n)]}
    new["watchers"] = [z3.If(newly[j], 0, pre.ids("watchers")[j]) for j in range(n)]
    new["seq"] = seq
    new.update(extra)
    eqs = _record_updates(pre, post, new, removed)
    eqs += [post.ids("done")[j] == done[j] for j in range(n)]
    eqs += [post.ids("member")[j] == z3.And(pre.ids("member")[j], z3.Not(ends)) for j in range(n)]
    eqs += [
        post["barrier"] == z3.And(pre["barrier"], z3.Not(ends)),
        post["watermark"] == pre["watermark"] + issued,
        post["next_seq"] == pre["next_seq"] + issued,
        post["active"] == active_after,
    ]
    writes = frozenset(RECORD_FIELDS) | {"done", "member", "barrier", "watermark", "next_seq", "active"}
    return eqs, writes


def release_barrier(pre: SymState, post: SymState, p: Params, removed_extra: list[Expr] | None) -> StepFormula:
    """Shared by cancelling a wait and collecting: barrier cleared, retention applied again.
    ``removed_extra`` ids (collected) leave before retention."""
    n = pre.n
    gone = removed_extra or [z3.BoolVal(False)] * n
    inside = [z3.And(pre.ids("done")[j], z3.Not(gone[j])) for j in range(n)]
    kept = retention(inside, [z3.BoolVal(False)] * n, pre.ids("seq"), pre["max_completed"], p, "release")
    removed = [z3.And(pre.ids("done")[j], z3.Not(kept[j])) for j in range(n)]
    eqs = _record_updates(pre, post, {}, removed)
    eqs += [post.ids("done")[j] == kept[j] for j in range(n)]
    eqs += [z3.Not(post.ids("member")[j]) for j in range(n)]
    eqs.append(z3.Not(post["barrier"]))
    return StepFormula(z3.BoolVal(True), z3.And(*eqs), frozenset(RECORD_FIELDS) | {"done", "member", "barrier"})


# -- transitions -------------------------------------------------------------------------------

Builder = Callable[[SymState, SymState, Params], StepFormula]


def _status_update(pre: SymState, k: Expr, value: Expr) -> list[Expr]:
    return [z3.If(k == j, value, pre.ids("status")[j]) for j in range(pre.n)]


def _record_step(
    sources: tuple[int, ...],
    target: int | None,
    extra_guard: Callable[[SymState, Expr], Expr] | None,
    field_updates: Callable[[SymState, Expr], dict[str, list[Expr]]] | None,
) -> Builder:
    """A non-terminal per-op transition on id ``k``: status in ``sources``, optional guard,
    status := ``target`` (``None``: unchanged) and field updates on ``k``."""

    def build(pre: SymState, post: SymState, p: Params) -> StepFormula:
        k = p.int("id", 0, pre.n)
        st = _at(pre.ids("status"), k)
        guard = in_set(st, sources)
        if extra_guard is not None:
            guard = z3.And(guard, extra_guard(pre, k))
        updates = dict(field_updates(pre, k)) if field_updates is not None else {}
        if target is not None:
            updates["status"] = _status_update(pre, k, z3.IntVal(target))
        eqs = [post.ids(name)[j] == vals[j] for name, vals in updates.items() for j in range(pre.n)]
        return StepFormula(guard, z3.And(*eqs), frozenset(updates))

    return build


def _at(values: list[Expr], k: Expr) -> Expr:
    """``values[k]`` for a symbolic id ``k`` in range (an ``If`` chain: no array theory)."""
    term = values[-1]
    for j in range(len(values) - 2, -1, -1):
        term = z3.If(k == j, values[j], term)
    return term


def register_operation(pre: SymState, post: SymState, p: Params) -> StepFormula:
    n = pre.n
    k = p.int("id", 0, n)
    kind = p.int("kind")
    p.domain.append(in_set(kind, KINDS))
    guard = z3.And(
        _at(pre.ids("status"), k) == ABSENT,
        z3.Or(z3.Not(pre["has_limit"]), pre["active"] < pre["max_concurrent"]),
    )
    fresh = {
        "status": PROV,
        "kind": kind,
        "outcome": 0,
        "peer": False,
        "watchers": 0,
        "progress": 0,
        "seq": 0,
        "rank": pre["active"],
    }
    eqs = [
        post.ids(name)[j] == z3.If(k == j, value, pre.ids(name)[j]) for name, value in fresh.items() for j in range(n)
    ]
    eqs.append(post["active"] == pre["active"] + 1)
    return StepFormula(guard, z3.And(*eqs), frozenset(fresh) | {"active"})


def terminal_step(sources: tuple[int, ...], target: int) -> Builder:
    """A terminal transition of one op: status/outcome set together, watchers resolved,
    next sequence number issued, then :func:`finish_terminal`."""

    def build(pre: SymState, post: SymState, p: Params) -> StepFormula:
        n = pre.n
        k = p.int("id", 0, n)
        guard = in_set(_at(pre.ids("status"), k), sources)
        newly = [k == j for j in range(n)]
        status = _status_update(pre, k, z3.IntVal(target))
        seq = [z3.If(newly[j], pre["next_seq"], pre.ids("seq")[j]) for j in range(n)]
        rank, mine = pre.ids("rank"), _at(pre.ids("rank"), k)
        ranks = [z3.If(newly[j], 0, z3.If(rank[j] > mine, rank[j] - 1, rank[j])) for j in range(n)]
        eqs, writes = finish_terminal(
            pre, post, p, newly, status, seq, {"rank": ranks}, z3.IntVal(1), pre["active"] - 1
        )
        return StepFormula(guard, z3.And(*eqs), writes)

    return build


def terminate_owner(pre: SymState, post: SymState, p: Params) -> StepFormula:
    """Every active op ends Terminated, in registration order: op ``j`` gets sequence number
    ``watermark + 1 + rank[j]``."""
    n = pre.n
    newly = [is_active(pre.ids("status")[j]) for j in range(n)]
    issued = count(newly)
    status = [z3.If(newly[j], TERMINATED, pre.ids("status")[j]) for j in range(n)]
    seq = [z3.If(newly[j], pre["watermark"] + 1 + pre.ids("rank")[j], pre.ids("seq")[j]) for j in range(n)]
    ranks = [z3.IntVal(0)] * n
    eqs, writes = finish_terminal(pre, post, p, newly, status, seq, {"rank": ranks}, issued, z3.IntVal(0))
    return StepFormula(z3.BoolVal(True), z3.And(*eqs), writes)


def wait_all(pre: SymState, post: SymState, p: Params) -> StepFormula:
    """A pending barrier: no barrier active, every member tracked, some member not terminal."""
    n = pre.n
    chosen = [p.bool(f"member[{j}]") for j in range(n)]
    guard = z3.And(
        z3.Not(pre["barrier"]),
        all_ids(n, lambda j: z3.Implies(chosen[j], tracked(pre.ids("status")[j]))),
        some_id(n, lambda j: z3.And(chosen[j], z3.Not(is_terminal(pre.ids("status")[j])))),
    )
    eqs = [post["barrier"]] + [post.ids("member")[j] == chosen[j] for j in range(n)]
    return StepFormula(guard, z3.And(*eqs), frozenset({"barrier", "member"}))


def wait_all_immediate(pre: SymState, post: SymState, p: Params) -> StepFormula:
    """Every requested member is already terminal (or none requested): resolved at once, no
    barrier created, nothing changes."""
    n = pre.n
    chosen = [p.bool(f"member[{j}]") for j in range(n)]
    guard = z3.And(
        z3.Not(pre["barrier"]),
        all_ids(
            n, lambda j: z3.Implies(chosen[j], z3.And(tracked(pre.ids("status")[j]), is_terminal(pre.ids("status")[j])))
        ),
    )
    return StepFormula(guard, z3.BoolVal(True), frozenset())


def cancel_wait(pre: SymState, post: SymState, p: Params) -> StepFormula:
    """The pending wait is dropped: the barrier ends and retention runs again. Without a barrier
    nothing is pinned, so retention keeps everything (a no-op, as in the model)."""
    return release_barrier(pre, post, p, None)


def collect_completed(pre: SymState, post: SymState, p: Params) -> StepFormula:
    """Removes every id of ``completed_order`` except members of the active barrier."""
    n = pre.n
    gone = [z3.And(pre.ids("done")[j], z3.Not(z3.And(pre["barrier"], pre.ids("member")[j]))) for j in range(n)]
    removed = gone
    eqs = _record_updates(pre, post, {}, removed)
    eqs += [post.ids("done")[j] == z3.And(pre.ids("done")[j], z3.Not(gone[j])) for j in range(n)]
    return StepFormula(z3.BoolVal(True), z3.And(*eqs), frozenset(RECORD_FIELDS) | {"done"})


def recover(pre: SymState, post: SymState, p: Params) -> StepFormula:
    """Recovery: terminal ops kept (outcomes, sequence numbers), non-terminal ones dropped,
    barrier cleared (so retention is applied again), active count 0, feed counters kept."""
    n = pre.n
    kept = retention(pre.ids("done"), [z3.BoolVal(False)] * n, pre.ids("seq"), pre["max_completed"], p, "recover")
    removed = [z3.Or(is_active(pre.ids("status")[j]), z3.And(pre.ids("done")[j], z3.Not(kept[j]))) for j in range(n)]
    eqs = _record_updates(pre, post, {}, removed)
    eqs += [post.ids("done")[j] == kept[j] for j in range(n)]
    eqs += [z3.Not(post.ids("member")[j]) for j in range(n)]
    eqs += [z3.Not(post["barrier"]), post["active"] == 0]
    return StepFormula(
        z3.BoolVal(True), z3.And(*eqs), frozenset(RECORD_FIELDS) | {"done", "member", "barrier", "active"}
    )


def _peer_guard(pre: SymState, k: Expr) -> Expr:
    return z3.And(_at(pre.ids("kind"), k) == MOB, z3.Not(_at(pre.ids("peer"), k)))


def _set_at(pre: SymState, name: str, k: Expr, value: Callable[[Expr], Expr]) -> dict[str, list[Expr]]:
    return {name: [z3.If(k == j, value(pre.ids(name)[j]), pre.ids(name)[j]) for j in range(pre.n)]}


def _watch(pre: SymState, k: Expr) -> dict[str, list[Expr]]:
    st = pre.ids("status")
    return {
        "watchers": [
            z3.If(z3.And(k == j, z3.Not(is_terminal(st[j]))), pre.ids("watchers")[j] + 1, pre.ids("watchers")[j])
            for j in range(pre.n)
        ]
    }


def _has_watcher(pre: SymState, k: Expr) -> Expr:
    return _at(pre.ids("watchers"), k) >= 1


def _unwatch(pre: SymState, k: Expr) -> dict[str, list[Expr]]:
    return _set_at(pre, "watchers", k, lambda v: v - 1)


ALL_STATUSES = ACTIVE_STATUSES + TERMINAL_STATUSES
RUNNING_OR_RETIRING = (RUN, RETIRING)


def _names(codes: tuple[int, ...]) -> tuple[str, ...]:
    return tuple(STATUS_NAMES[c] for c in codes)


def ops_transitions() -> tuple[SymTransition, ...]:
    """The registry's transitions, per-op rows first (entity ``operation``), then registry-wide
    ones (entity ``registry``)."""
    op = "operation"
    rows: list[SymTransition] = [
        SymTransition("register_operation", op, ("Absent",), "Provisioning", register_operation),
        SymTransition("provisioning_succeeded", op, _names((PROV,)), "Running", _record_step((PROV,), RUN, None, None)),
        SymTransition(
            "provisioning_failed", op, _names(ACTIVE_STATUSES), "Failed", terminal_step(ACTIVE_STATUSES, FAILED)
        ),
        SymTransition("abort_provisioning", op, _names((PROV,)), "Aborted", terminal_step((PROV,), ABORTED)),
        SymTransition(
            "peer_ready",
            op,
            _names(RUNNING_OR_RETIRING),
            None,
            _record_step(
                RUNNING_OR_RETIRING, None, _peer_guard, lambda s, k: _set_at(s, "peer", k, lambda _v: z3.BoolVal(True))
            ),
        ),
        SymTransition(
            "register_watcher", op, _names(ALL_STATUSES), None, _record_step(ALL_STATUSES, None, None, _watch)
        ),
        SymTransition(
            "drop_watcher",
            op,
            _names(ACTIVE_STATUSES),
            None,
            _record_step(ACTIVE_STATUSES, None, _has_watcher, _unwatch),
        ),
        SymTransition(
            "report_progress",
            op,
            _names(RUNNING_OR_RETIRING),
            None,
            _record_step(RUNNING_OR_RETIRING, None, None, lambda s, k: _set_at(s, "progress", k, lambda v: v + 1)),
        ),
        SymTransition(
            "complete_operation",
            op,
            _names(RUNNING_OR_RETIRING),
            "Completed",
            terminal_step(RUNNING_OR_RETIRING, COMPLETED),
        ),
        SymTransition("fail_operation", op, _names(ACTIVE_STATUSES), "Failed", terminal_step(ACTIVE_STATUSES, FAILED)),
        SymTransition(
            "cancel_operation", op, _names(ACTIVE_STATUSES), "Cancelled", terminal_step(ACTIVE_STATUSES, CANCELLED)
        ),
        SymTransition("request_retire", op, _names((RUN,)), "Retiring", _record_step((RUN,), RETIRING, None, None)),
        SymTransition(
            "mark_retired", op, _names(RUNNING_OR_RETIRING), "Retired", terminal_step(RUNNING_OR_RETIRING, RETIRED)
        ),
        SymTransition("terminate_owner", op, _names(ACTIVE_STATUSES), "Terminated", terminate_owner),
        SymTransition("collect_completed", "registry", (IDLE, WAITING), None, collect_completed),
        SymTransition("wait_all_immediate", "registry", (IDLE,), IDLE, wait_all_immediate),
        SymTransition("wait_all_begin", "registry", (IDLE,), WAITING, wait_all),
        SymTransition("wait_all_cancel", "registry", (IDLE, WAITING), IDLE, cancel_wait),
        SymTransition("crash_recover", "registry", (IDLE, WAITING), IDLE, recover),
    ]
    return tuple(rows)


# -- invariants --------------------------------------------------------------------------------


def _typed(s: SymState, j: int) -> Expr:
    st = s.ids("status")[j]
    return z3.And(
        z3.Or(st == ABSENT, in_set(st, ALL_STATUSES)),
        z3.Or(s.ids("outcome")[j] == 0, in_set(s.ids("outcome")[j], TERMINAL_STATUSES)),
        s.ids("watchers")[j] >= 0,
        s.ids("progress")[j] >= 0,
    )


def _absent_clean(s: SymState, j: int) -> Expr:
    return z3.Implies(
        s.ids("status")[j] == ABSENT,
        z3.And(
            s.ids("outcome")[j] == 0,
            z3.Not(s.ids("peer")[j]),
            s.ids("watchers")[j] == 0,
            s.ids("seq")[j] == 0,
            z3.Not(s.ids("done")[j]),
            z3.Not(s.ids("member")[j]),
        ),
    )


def _outcome_matches(s: SymState, j: int) -> Expr:
    st, out = s.ids("status")[j], s.ids("outcome")[j]
    return z3.Implies(tracked(st), z3.And(is_terminal(st) == (out != 0), z3.Implies(out != 0, out == st)))


def _peer_ready(s: SymState, j: int) -> Expr:
    st = s.ids("status")[j]
    return z3.Implies(
        s.ids("peer")[j], z3.And(s.ids("kind")[j] == MOB, z3.Or(in_set(st, RUNNING_OR_RETIRING), is_terminal(st)))
    )


def _kind_known(s: SymState, j: int) -> Expr:
    return z3.Implies(tracked(s.ids("status")[j]), in_set(s.ids("kind")[j], KINDS))


def _watchers_resolved(s: SymState, j: int) -> Expr:
    return z3.Implies(is_terminal(s.ids("status")[j]), s.ids("watchers")[j] == 0)


def _completed_order(s: SymState, j: int) -> Expr:
    st = s.ids("status")[j]
    return s.ids("done")[j] == z3.And(tracked(st), is_terminal(st))


def _members_tracked(s: SymState, j: int) -> Expr:
    return z3.Implies(s.ids("member")[j], z3.And(s["barrier"], tracked(s.ids("status")[j])))


def _seq_issued(s: SymState, j: int) -> Expr:
    st, sq = s.ids("status")[j], s.ids("seq")[j]
    return z3.If(is_terminal(st), z3.And(sq >= 1, sq <= s["watermark"], sq < s["next_seq"]), sq == 0)


def _rank_range(s: SymState, j: int) -> Expr:
    r = s.ids("rank")[j]
    return z3.If(is_active(s.ids("status")[j]), z3.And(r >= 0, r < s["active"]), r == 0)


def _ranks_distinct(s: SymState) -> Expr:
    st, r = s.ids("status"), s.ids("rank")
    return z3.And(
        *(z3.Implies(z3.And(is_active(st[i]), is_active(st[j])), r[i] != r[j]) for i, j in pairs(s.n)), z3.BoolVal(True)
    )


def _active_at(s: SymState, j: int) -> Expr:
    return is_active(s.ids("status")[j])


def _done_at(s: SymState, j: int) -> Expr:
    return s.ids("done")[j]


def _pinned_at(s: SymState, j: int) -> Expr:
    return z3.And(s["barrier"], s.ids("member")[j], s.ids("done")[j])


def _active_count(s: SymState) -> Expr:
    return s["active"] == count([is_active(x) for x in s.ids("status")])


def _max_concurrent(s: SymState) -> Expr:
    return z3.Implies(s["has_limit"], s["active"] <= s["max_concurrent"])


def _retention_bound(s: SymState) -> Expr:
    pinned = count([z3.And(s["barrier"], m, d) for m, d in zip(s.ids("member"), s.ids("done"), strict=True)])
    return count(s.ids("done")) <= s["max_completed"] + pinned


def _barrier_pending(s: SymState) -> Expr:
    return z3.Implies(s["barrier"], some_id(s.n, lambda j: z3.And(s.ids("member")[j], is_active(s.ids("status")[j]))))


def _watermark(s: SymState) -> Expr:
    return z3.And(s["watermark"] >= 0, s["next_seq"] == s["watermark"] + 1)


def _seq_distinct(s: SymState) -> Expr:
    seq = s.ids("seq")
    return z3.And(*(z3.Implies(z3.And(seq[i] != 0, seq[j] != 0), seq[i] != seq[j]) for i, j in pairs(s.n)))


def ops_invariants() -> tuple[SymInvariant, ...]:
    return (
        per_id_invariant("op.typed", "statuses, outcomes and counters take declared values", _typed),
        per_id_invariant(
            "op.untracked_is_clean",
            "an untracked id has no outcome, peer, watcher, sequence, completed_order entry or barrier membership",
            _absent_clean,
        ),
        per_id_invariant(
            "op.terminal_outcome", "terminal status ⇔ terminal outcome present, of the same kind", _outcome_matches
        ),
        per_id_invariant(
            "op.peer_ready", "peer_ready ⇒ kind MobMemberChild and status Running/Retiring/terminal", _peer_ready
        ),
        per_id_invariant("op.kind_known", "registered ⇒ kind known", _kind_known),
        per_id_invariant("op.watchers_resolved", "a terminal op has no pending watcher", _watchers_resolved),
        SymInvariant(
            "registry.active_count", "active_count = number of non-terminal ops", _active_count, counted=(_active_at,)
        ),
        SymInvariant("registry.max_concurrent", "max_concurrent set ⇒ active_count ≤ max_concurrent", _max_concurrent),
        per_id_invariant(
            "registry.registration_rank",
            "an active op's registration rank is below the active count; an inactive op has rank 0",
            _rank_range,
        ),
        SymInvariant("registry.registration_order", "the active ops' registration ranks are distinct", _ranks_distinct),
        per_id_invariant(
            "registry.completed_order", "completed_order holds exactly the tracked terminal ids", _completed_order
        ),
        SymInvariant(
            "registry.retention_bound",
            "|completed_order| ≤ max_completed + pinned barrier members",
            _retention_bound,
            counted=(_done_at, _pinned_at),
        ),
        per_id_invariant(
            "registry.barrier_members",
            "barrier members are tracked and only exist while a barrier is active",
            _members_tracked,
        ),
        SymInvariant("registry.barrier_pending", "an active barrier has a non-terminal member", _barrier_pending),
        SymInvariant("feed.watermark", "watermark = last issued seq and next seq = watermark + 1", _watermark),
        per_id_invariant("feed.seq_issued", "terminal ⇔ sequence issued, and every issued seq < next seq", _seq_issued),
        SymInvariant("feed.seq_distinct", "issued sequence numbers are distinct", _seq_distinct),
    )


def _initial(s: SymState) -> Expr:
    blank = all_ids(
        s.n,
        lambda j: z3.And(
            s.ids("status")[j] == ABSENT,
            s.ids("kind")[j] == NO_KIND,
            s.ids("outcome")[j] == 0,
            z3.Not(s.ids("peer")[j]),
            s.ids("watchers")[j] == 0,
            s.ids("progress")[j] == 0,
            z3.Not(s.ids("done")[j]),
            s.ids("seq")[j] == 0,
            z3.Not(s.ids("member")[j]),
            s.ids("rank")[j] == 0,
        ),
    )
    return z3.And(blank, s["active"] == 0, z3.Not(s["barrier"]), s["watermark"] == 0, s["next_seq"] == 1)


def _domain(s: SymState) -> Expr:
    return z3.And(s["max_completed"] >= 1, s["max_concurrent"] >= 0)


def build_ops_machine(n: int, transitions: tuple[SymTransition, ...] | None = None) -> SymbolicMachine:
    """The registry over ``n`` op ids. ``transitions`` replaces the declared rows (used to
    check that a broken variant is caught)."""
    if n < 1:
        raise ValueError(f"need at least one op id, got {n}")
    return SymbolicMachine(
        name="ops",
        n=n,
        fields=FIELDS,
        initial=_initial,
        domain=_domain,
        transitions=ops_transitions() if transitions is None else transitions,
        invariants=ops_invariants(),
        labels={"status": STATUS_NAMES, "outcome": STATUS_NAMES | {0: "None"}, "kind": KIND_NAMES},
        entities={
            "operation": EntityView(True, lambda s, j: s.ids("status")[j], STATUS_NAMES, removed=ABSENT),
            "registry": EntityView(False, lambda s, _j: z3.If(s["barrier"], 1, 0), {0: IDLE, 1: WAITING}),
        },
    )
