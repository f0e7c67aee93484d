"""Totality: a transition whose guard holds must have a post-state.

An effect is a relation; when it is unsatisfiable for a pre-state the guard admits (for
instance a retention count no kept set can meet), the transition silently never fires from
there, and every proof about it holds vacuously. ``total:<machine>`` checks, for every
transition, that no pre-state satisfying the invariants, the guard and the parameters' ranges
leaves the effect (with its auxiliary terms) without a solution:

    Inv(pre) ∧ guard(pre, params) ∧ ∀ post, aux. ¬(aux constraints ∧ effect ∧ frame)

must be unsatisfiable. A satisfying pre-state is reported as the counterexample.
"""

from __future__ import annotations

import time
from typing import Any

import z3

from meerkat_model.proofs.counterexample import describe_state, params_values
from meerkat_model.proofs.report import ProofResult, ProofStatus
from meerkat_model.proofs.symbolic import Expr, Params, SymbolicMachine, SymState

DEFAULT_TIMEOUT_MS = 30_000


def _mentions(expr: Expr, names: set[str]) -> bool:
    """``expr`` contains a constant named in ``names``."""
    stack, seen = [expr], set()
    while stack:
        e = stack.pop()
        if e.get_id() in seen:
            continue
        seen.add(e.get_id())
        if z3.is_const(e) and e.decl().name() in names:
            return True
        stack.extend(e.children())
    return False


def _post_terms(s: SymState, constants: set[str]) -> list[Expr]:
    terms = [s[name] for name in s.scalar_names if name not in constants]
    return terms + [t for name in s.array_names for t in s.ids(name)]


def check_totality(machine: SymbolicMachine, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> ProofResult:
    """``total:<machine>``: every transition has a post-state wherever its guard holds."""
    t0 = time.perf_counter()
    constants = {f.name for f in machine.fields if f.constant}
    failed: list[str] = []
    unknown: list[str] = []
    cex: dict[str, Any] | None = None
    for t in machine.steps:
        pre, post = machine.state("tot.pre."), machine.state(f"tot.post.{t.name}.")
        params = Params("tot.", t.name)
        formula = t.build(pre, post, params)
        aux_names = {a.decl().name() for a in params.aux}
        chosen = [d for d in params.domain if not _mentions(d, aux_names)]
        defining = [d for d in params.domain if _mentions(d, aux_names)]
        frame = machine.frame(pre, post, formula.writes)
        bound = _post_terms(post, constants) + params.aux
        body = z3.Not(z3.And(*defining, formula.effect, *frame))
        s = z3.Solver()
        s.set("timeout", timeout_ms)
        s.add(machine.domain(pre), machine.all_invariants(pre), formula.guard, *chosen)
        s.add(z3.ForAll(bound, body) if bound else body)
        res = s.check()
        if res == z3.sat:
            failed.append(t.name)
            if cex is None:
                m = s.model()
                cex = {
                    "kind": "guard holds but no post-state satisfies the effect",
                    "transition": t.name,
                    "params": params_values(m, params.created),
                    "state": describe_state(machine, m, pre, None),
                }
        elif res == z3.unknown:
            unknown.append(t.name)
    status: ProofStatus = "failed" if failed else "unknown" if unknown else "proved"
    detail = (
        f"no post-state for {', '.join(failed)}"
        if failed
        else f"solver gave up on {', '.join(unknown)}"
        if unknown
        else f"{len(machine.steps)} transitions total"
    )
    return ProofResult(f"total:{machine.name}", machine.name, status, time.perf_counter() - t0, cex, detail)
