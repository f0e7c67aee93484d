"""Inductive invariant proofs: initiation (``Init ⇒ Inv``) and consecution
(``Inv ∧ guard ∧ step ⇒ Inv'``) for every invariant and every transition of a symbolic machine.

A failed consecution check yields a counterexample-to-induction: a pre-state satisfying every
invariant, the transition and its parameters, and the post-state breaking the named invariant.
"""

from __future__ import annotations

import time
from typing import Any

import z3

from meerkat_model.proofs.counterexample import describe_state, interesting_ids, params_values, value_of
from meerkat_model.proofs.interruptible import stop_if_interrupted
from meerkat_model.proofs.report import ProofResult, ProofStatus
from meerkat_model.proofs.symbolic import Expr, SymbolicMachine, SymInvariant

DEFAULT_TIMEOUT_MS = 120_000
ASSUME = "assume."
"""Prefix of the literals tracking each invariant assumed in the pre-state (for unsat cores)."""


def _core(s: z3.Solver, *, lemmas: bool = False) -> frozenset[str]:
    """The assumed invariants (and, with ``lemmas``, the frame lemmas) in the unsat core."""
    out = set()
    for lit in s.unsat_core():
        name = str(lit)
        if name.startswith(ASSUME):
            out.add(name[len(ASSUME) :])
        elif lemmas and name.startswith("lemma."):
            out.add(name)
    return frozenset(out)


def _solver(timeout_ms: int) -> z3.Solver:
    s = z3.Solver()
    s.set("timeout", timeout_ms)
    return s


def _broken_id(model: Any, inv: SymInvariant, state: Any) -> int | None:
    if inv.per_id is None:
        return None
    for j in range(state.n):
        if z3.is_false(model.eval(inv.per_id(state, j), model_completion=True)):
            return j
    return None


class _Tally:
    """Accumulates the checks of one obligation across transitions."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.status: ProofStatus = "proved"
        self.counterexample: dict[str, Any] | None = None
        self.breaking: list[str] = []
        self.unknown: list[str] = []
        self.uses: set[str] = set()

    def record(self, result: Any, seconds: float, where: str, cex: dict[str, Any] | None) -> None:
        stop_if_interrupted()  # after every query: a Ctrl-C lost between two queries still stops
        self.seconds += seconds
        if result == z3.sat:
            self.breaking.append(where)
            if self.counterexample is None:
                self.counterexample = cex
            self.status = "failed"
        elif result == z3.unknown:
            self.unknown.append(where)
            if self.status == "proved":
                self.status = "unknown"

    def result(self, name: str, machine: str, assumes: tuple[str, ...] = ()) -> ProofResult:
        cex = self.counterexample
        if cex is not None and len(self.breaking) > 1:
            cex = {**cex, "also_broken_by": self.breaking[1:]}
        detail = ""
        if self.status == "failed":
            detail = "broken by " + ", ".join(self.breaking)
        elif self.status == "unknown":
            detail = "solver gave up on " + ", ".join(self.unknown)
        if self.status == "proved" and assumes:
            detail = "proved assuming " + ", ".join(assumes)
        return ProofResult(
            name, machine, self.status, self.seconds, cex, detail, assumes if self.status == "proved" else ()
        )


def prove_invariants(machine: SymbolicMachine, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> list[ProofResult]:
    """One result per invariant (``inductive:<name>``) and per step property
    (``step:<name>``), each covering initiation and every transition."""
    pre = machine.state("pre.")
    post = machine.state("post.")
    tallies = {inv.name: _Tally() for inv in machine.invariants}
    step_tallies = {p.name: _Tally() for p in machine.step_properties}

    init = _solver(timeout_ms)
    init.add(machine.domain(pre), machine.initial(pre))
    for inv in machine.invariants:
        init.push()
        init.add(z3.Not(inv.holds(pre)))
        t0 = time.perf_counter()
        res = init.check()
        cex = None
        if res == z3.sat:
            m = init.model()
            broken = _broken_id(m, inv, pre)
            cex = {
                "kind": "initial state violates invariant",
                "invariant": inv.name,
                "transition": "<initial>",
                "broken_id": broken,
                "state": describe_state(machine, m, pre, None if broken is None else [broken]),
            }
        tallies[inv.name].record(res, time.perf_counter() - t0, "<initial>", cex)
        init.pop()

    for t in machine.steps:
        rough = _StepSolver(machine, t.name, pre, post, exact=False, timeout_ms=timeout_ms)
        exact = _StepSolver(machine, t.name, pre, post, exact=True, timeout_ms=timeout_ms)
        for inv in machine.invariants:
            goal = z3.Not(inv.holds(post))
            t0 = time.perf_counter()
            rough.frame(inv.counted)
            res, model, params = rough.check(goal)
            last = rough
            if res != z3.unsat:
                exact.frame(inv.counted)
                res, model, params = exact.check(goal)
                last = exact
            cex = None
            if res == z3.sat:
                broken = _broken_id(model, inv, post)
                cex = _cti(machine, model, t.name, params, pre, post, inv.name, broken, inv.counted)
            tallies[inv.name].record(res, time.perf_counter() - t0, t.name, cex)
            if res == z3.unsat:
                tallies[inv.name].uses |= last.used
        for prop in machine.step_properties:
            t0 = time.perf_counter()
            res, model, params = rough.check(z3.Not(prop.holds(pre, post)))
            last = rough
            if res != z3.unsat:
                res, model, params = exact.check(z3.Not(prop.holds(pre, post)))
                last = exact
            cex = None
            if res == z3.sat:
                cex = _cti(machine, model, t.name, params, pre, post, prop.name, None)
                cex["kind"] = "step breaks property"
            step_tallies[prop.name].record(res, time.perf_counter() - t0, t.name, cex)
            if res == z3.unsat:
                step_tallies[prop.name].uses |= last.used

    assumed = _assumptions({**tallies, **step_tallies})
    results = [
        tallies[inv.name].result(f"inductive:{inv.name}", machine.name, assumed[inv.name]) for inv in machine.invariants
    ]
    results += [
        step_tallies[p.name].result(f"step:{p.name}", machine.name, assumed[p.name]) for p in machine.step_properties
    ]
    return results


def _assumptions(tallies: dict[str, _Tally]) -> dict[str, tuple[str, ...]]:
    """For each obligation, the invariants that did not come back proved and that its proof
    relied on, directly or through proved invariants it relied on (a proof by induction assumes
    every invariant in the pre-state; the unsat cores say which ones it used)."""
    unproved = {name for name, t in tallies.items() if t.status != "proved"}
    closure = {name: {u for u in t.uses if u != name} for name, t in tallies.items()}
    changed = True
    while changed:
        changed = False
        for deps in closure.values():
            extra = set().union(*(closure.get(d, set()) for d in deps)) - deps
            if extra:
                deps |= extra
                changed = True
    return {name: tuple(sorted(closure[name] & unproved)) for name in tallies}


class _StepSolver:
    """``Inv ∧ guard ∧ step`` for one transition, built lazily, queried with one goal at a time.

    By symmetry (every formula treats ids uniformly), the acting id — the ``id`` parameter —
    is fixed to 0: a counterexample acting on id k becomes one acting on id 0 by swapping the
    two ids. ``exact=False`` uses the builders' over-approximations (tried first).
    """

    def __init__(
        self, machine: SymbolicMachine, name: str, pre: Any, post: Any, *, exact: bool, timeout_ms: int
    ) -> None:
        self._args = (machine, name, pre, post, exact, timeout_ms)
        self._solver: z3.Solver | None = None
        self._params: dict[str, Expr] = {}
        self._framed: set[int] = set()
        self._lemmas: dict[str, frozenset[str]] = {}  # tracked frame lemma -> invariants its proof used
        self.used: frozenset[str] = frozenset()
        """The invariants the last unsat ``check`` relied on (frame lemmas resolved)."""

    def _build(self) -> z3.Solver:
        machine, name, pre, post, exact, timeout_ms = self._args
        step, params = machine.instantiate(machine.transition(name), pre, post, "", exact=exact)
        s = _solver(timeout_ms)
        s.add(machine.domain(pre), step.guard, step.effect)
        for inv in machine.invariants:
            s.assert_and_track(inv.holds(pre), z3.Bool(f"{ASSUME}{inv.name}"))
        if "id" in params.created:
            s.add(params.created["id"] == 0)
        self._params = params.created
        return s

    def frame(self, counted: tuple[Any, ...]) -> None:
        """For each counted predicate φ: if the step provably keeps φ at every id other than
        the acting one, assert that (a proved consequence, so adding it is sound)."""
        if self._solver is None:
            self._solver = self._build()
        s = self._solver
        _machine, _name, pre, post, _exact, _timeout = self._args
        first = 1 if "id" in self._params else 0
        for phi in counted:
            if id(phi) in self._framed or first >= pre.n:
                continue
            self._framed.add(id(phi))
            same = [phi(pre, j) == phi(post, j) for j in range(first, pre.n)]
            s.push()
            s.add(z3.Not(z3.And(*same)))
            kept = s.check() == z3.unsat
            deps = _core(s) if kept else frozenset()
            s.pop()
            if kept:
                name = f"lemma.{len(self._lemmas)}"
                self._lemmas[name] = deps
                s.assert_and_track(z3.And(*same), z3.Bool(name))

    def check(self, goal: Expr) -> tuple[Any, Any, dict[str, Expr]]:
        if self._solver is None:
            self._solver = self._build()
        s = self._solver
        s.push()
        s.add(goal)
        try:
            res = s.check()
            if res == z3.unsat:
                used: set[str] = set()
                for name in _core(s, lemmas=True):
                    used |= self._lemmas.get(name, {name})
                self.used = frozenset(used)
            return res, (s.model() if res == z3.sat else None), self._params
        finally:
            s.pop()


def _cti(
    machine: SymbolicMachine,
    model: Any,
    transition: str,
    params: dict[str, Expr],
    pre: Any,
    post: Any,
    invariant: str,
    broken: int | None,
    counted: tuple[Any, ...] = (),
) -> dict[str, Any]:
    """The counterexample to induction in ``model``: the ids the step changed or names, the
    broken id, and every id a counted predicate of the invariant holds at before or after the
    step (so the counts the invariant compares can be read off the report)."""
    shown = set(interesting_ids(machine, model, pre, post, params))
    if broken is not None:
        shown.add(broken)
    for phi in counted:
        shown.update(j for j in range(pre.n) for s in (pre, post) if value_of(model, phi(s, j)) is True)
    ids = sorted(shown)
    return {
        "kind": "counterexample to induction",
        "invariant": invariant,
        "transition": transition,
        "broken_id": broken,
        "params": params_values(model, params),
        "pre": describe_state(machine, model, pre, ids),
        "post": describe_state(machine, model, post, ids),
    }
