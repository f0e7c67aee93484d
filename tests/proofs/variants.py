"""Deliberately broken transitions, to check the prover catches what it should."""

from __future__ import annotations

import z3
from meerkat_model.proofs import ops_encoding as ops
from meerkat_model.proofs.symbolic import Params, StepFormula, SymState, SymTransition


def complete_without_outcome() -> SymTransition:
    """``complete_operation`` that sets the status but leaves the outcome unset."""
    real = ops.terminal_step(ops.RUNNING_OR_RETIRING, ops.COMPLETED)

    def build(pre: SymState, post: SymState, p: Params) -> StepFormula:
        scratch = [z3.Int(f"scratch.outcome[{j}]") for j in range(pre.n)]
        arrays = {name: (scratch if name == "outcome" else post.ids(name)) for name in post.array_names}
        shadow = SymState(pre.n, {name: post[name] for name in post.scalar_names}, arrays)
        step = real(pre, shadow, p)
        keep = [post.ids("outcome")[j] == pre.ids("outcome")[j] for j in range(pre.n)]
        return StepFormula(step.guard, z3.And(step.effect, *keep), step.writes)

    return SymTransition("complete_operation", "operation", ("Running", "Retiring"), "Completed", build)


def register_ignoring_limit() -> SymTransition:
    """``register_operation`` without the max_concurrent check."""

    def build(pre: SymState, post: SymState, p: Params) -> StepFormula:
        step = ops.register_operation(pre, post, p)
        k = p.created["id"]
        free = ops._at(pre.ids("status"), k) == ops.ABSENT
        return StepFormula(free, step.effect, step.writes)

    return SymTransition("register_operation", "operation", ("Absent",), "Provisioning", build)


def impossible_transition() -> SymTransition:
    """Fires only from a terminal op whose outcome differs from its status: never enabled."""

    def build(pre: SymState, post: SymState, p: Params) -> StepFormula:
        k = p.int("id", 0, pre.n)
        st, out = ops._at(pre.ids("status"), k), ops._at(pre.ids("outcome"), k)
        guard = z3.And(ops.is_terminal(st), out != st)
        eqs = [
            post.ids("progress")[j] == z3.If(k == j, pre.ids("progress")[j] + 1, pre.ids("progress")[j])
            for j in range(pre.n)
        ]
        return StepFormula(guard, z3.And(*eqs), frozenset({"progress"}))

    return SymTransition("planted_dead", "operation", ("Completed",), None, build)


def deep_transition(registrations: int) -> SymTransition:
    """Fires only once ``registrations`` ops are active: reachable, but only that deep."""

    def build(pre: SymState, post: SymState, p: Params) -> StepFormula:
        guard = pre["active"] >= registrations
        eqs = [post.ids("progress")[j] == pre.ids("progress")[j] + 1 for j in range(pre.n)]
        return StepFormula(guard, z3.And(*eqs), frozenset({"progress"}))

    return SymTransition("planted_deep", "registry", ("Idle",), None, build)


def replace(rows: tuple[SymTransition, ...], new: SymTransition) -> tuple[SymTransition, ...]:
    """``rows`` with the transition of the same name replaced (or ``new`` appended)."""
    out = tuple(new if t.name == new.name else t for t in rows)
    return out if any(t.name == new.name for t in rows) else (*rows, new)


def recover_without_retention() -> SymTransition:
    """``crash_recover`` that clears the barrier but does not re-apply retention."""

    def build(pre: SymState, post: SymState, p: Params) -> StepFormula:
        n = pre.n
        dropped = [ops.is_active(pre.ids("status")[j]) for j in range(n)]
        eqs = ops._record_updates(pre, post, {}, dropped)
        eqs += [post.ids("done")[j] == pre.ids("done")[j] for j in range(n)]
        eqs += [z3.Not(post.ids("member")[j]) for j in range(n)]
        eqs += [z3.Not(post["barrier"]), post["active"] == 0]
        writes = frozenset(ops.RECORD_FIELDS) | {"done", "member", "barrier", "active"}
        return StepFormula(z3.BoolVal(True), z3.And(*eqs), writes)

    return SymTransition("crash_recover", "registry", ("Idle", "Waiting"), "Idle", build)


def complete_without_post_state() -> SymTransition:
    """``complete_operation`` whose effect cannot be met while a barrier is active: its guard
    holds there, but the transition could never fire (every proof about it would hold vacuously)."""
    real = ops.terminal_step(ops.RUNNING_OR_RETIRING, ops.COMPLETED)

    def build(pre: SymState, post: SymState, p: Params) -> StepFormula:
        step = real(pre, post, p)
        stuck = p.aux_int("stuck")
        p.domain.append(z3.Implies(pre["barrier"], z3.And(stuck == 1, stuck == 2)))
        return step

    return SymTransition("complete_operation", "operation", ("Running", "Retiring"), "Completed", build)
