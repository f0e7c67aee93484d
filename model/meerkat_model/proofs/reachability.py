"""Dead-transition check: every declared transition must be enabled in some reachable state.

Bounded model checking with z3 from the initial state: states ``s0 .. sd`` linked by "some
transition fires", then the transition under test fires from ``sd``. The first depth ``d ≤
max_depth`` where this is satisfiable gives a witness path (``proved``). When no witness exists
within the bound, the transition is ``failed`` if it cannot fire from any state satisfying the
machine's (inductive) invariants — so it is dead in every reachable state — else ``unknown``.
"""

from __future__ import annotations

import time
from typing import Any

import z3

from meerkat_model.proofs.counterexample import describe_state
from meerkat_model.proofs.report import ProofResult
from meerkat_model.proofs.symbolic import Expr, SymbolicMachine, SymState

DEFAULT_DEPTH = 10


class _Unrolling:
    """States s0..sd of a machine and, for each step i, a selector naming the transition fired."""

    def __init__(self, machine: SymbolicMachine) -> None:
        self.machine = machine
        self.states: list[SymState] = [machine.state("s0.")]
        self.selectors: list[Expr] = []

    def step_formula(self, i: int) -> Expr:
        """Some transition fires between ``s_i`` and ``s_{i+1}`` (creating ``s_{i+1}``)."""
        m = self.machine
        if len(self.states) == i + 1:
            self.states.append(m.state(f"s{i + 1}."))
        pre, post = self.states[i], self.states[i + 1]
        sel = z3.Int(f"step{i}")
        self.selectors.append(sel)
        options = []
        for idx, t in enumerate(m.steps):
            f, _ = m.instantiate(t, pre, post, f"step{i}.")
            options.append(z3.And(sel == idx, f.guard, f.effect))
        return z3.Or(*options)

    def fire(self, name: str, i: int) -> Expr:
        """Transition ``name`` fires from ``s_i`` (into a scratch post-state) and changes one
        of the fields it writes — so a no-op instance (terminating nothing, collecting nothing)
        is no witness. A transition that writes nothing (a pure query) only needs to fire."""
        m = self.machine
        pre, post = self.states[i], m.state(f"probe{i}.{name}.")
        f, _ = m.instantiate(m.transition(name), pre, post, f"probe{i}.")
        return z3.And(f.guard, f.effect, changes(m, pre, post, f.writes))

    def path(self, model: Any, depth: int) -> list[str]:
        names = [t.name for t in self.machine.steps]
        return [names[model.eval(self.selectors[i], model_completion=True).as_long()] for i in range(depth)]


def changes(machine: SymbolicMachine, pre: SymState, post: SymState, writes: frozenset[str]) -> Expr:
    """Some field in ``writes`` differs between ``pre`` and ``post`` (true when ``writes`` is empty)."""
    if not writes:
        return z3.BoolVal(True)
    diffs: list[Expr] = []
    for f in machine.fields:
        if f.name not in writes:
            continue
        if f.per_id:
            diffs.extend(a != b for a, b in zip(pre.ids(f.name), post.ids(f.name), strict=True))
        else:
            diffs.append(pre[f.name] != post[f.name])
    return z3.Or(*diffs)


def check_enabled(
    machine: SymbolicMachine, max_depth: int = DEFAULT_DEPTH, timeout_ms: int = 60_000
) -> list[ProofResult]:
    """One result ``enabled:<transition>`` per declared transition."""
    unroll = _Unrolling(machine)
    solver = z3.Solver()
    solver.set("timeout", timeout_ms)
    solver.add(machine.domain(unroll.states[0]), machine.initial(unroll.states[0]))
    pending = [t.name for t in machine.steps]
    found: dict[str, ProofResult] = {}
    seconds = dict.fromkeys(pending, 0.0)
    for depth in range(max_depth + 1):
        for name in list(pending):
            solver.push()
            solver.add(unroll.fire(name, depth))
            t0 = time.perf_counter()
            res = solver.check()
            seconds[name] += time.perf_counter() - t0
            if res == z3.sat:
                path = [*unroll.path(solver.model(), depth), name]
                found[name] = ProofResult(
                    f"enabled:{name}", machine.name, "proved", seconds[name], None, "witness: " + " → ".join(path)
                )
                pending.remove(name)
            solver.pop()
        if not pending or depth == max_depth:
            break
        solver.add(unroll.step_formula(depth))
    for name in pending:
        found[name] = _dead_or_unknown(machine, name, max_depth, seconds[name], timeout_ms)
    return [found[t.name] for t in machine.steps]


def _dead_or_unknown(machine: SymbolicMachine, name: str, depth: int, spent: float, timeout_ms: int) -> ProofResult:
    pre, post = machine.state("dead.pre."), machine.state("dead.post.")
    f, _ = machine.instantiate(machine.transition(name), pre, post, "dead.")
    s = z3.Solver()
    s.set("timeout", timeout_ms)
    s.add(machine.domain(pre), machine.all_invariants(pre), f.guard, f.effect, changes(machine, pre, post, f.writes))
    t0 = time.perf_counter()
    res = s.check()
    spent += time.perf_counter() - t0
    if res == z3.unsat:
        dead: dict[str, Any] = {
            "kind": "dead transition",
            "transition": name,
            "reason": "it cannot fire (with an effect) from any state satisfying the inductive invariants",
        }
        return ProofResult(f"enabled:{name}", machine.name, "failed", spent, dead, "dead: never enabled")
    detail = f"no witness within {depth} steps"
    if res == z3.sat:
        state = describe_state(machine, s.model(), pre, None)
        detail += "; enabled in an invariant-satisfying state not reached (increase the depth)"
        cex: dict[str, Any] = {"kind": "not reached within bound", "transition": name, "state": state}
        return ProofResult(f"enabled:{name}", machine.name, "unknown", spent, cex, detail)
    return ProofResult(f"enabled:{name}", machine.name, "unknown", spent, None, detail)


def shortest_violation(
    machine: SymbolicMachine, invariant: str, max_depth: int = DEFAULT_DEPTH, timeout_ms: int = 60_000
) -> list[tuple[str, dict[str, Any]]] | None:
    """The shortest path (at most ``max_depth`` steps) from the initial state to a state breaking
    ``invariant``: ``[("<initial>", state), (transition, state), ...]``; ``None`` when there is
    none within the bound (raises ``KeyError`` for an unknown invariant)."""
    inv = next((i for i in machine.invariants if i.name == invariant), None)
    if inv is None:
        raise KeyError(f"{machine.name} has no invariant {invariant!r}")
    unroll = _Unrolling(machine)
    solver = z3.Solver()
    solver.set("timeout", timeout_ms)
    solver.add(machine.domain(unroll.states[0]), machine.initial(unroll.states[0]))
    for depth in range(max_depth + 1):
        solver.push()
        solver.add(z3.Not(inv.holds(unroll.states[depth])))
        if solver.check() == z3.sat:
            model = solver.model()
            names = ["<initial>", *unroll.path(model, depth)]
            return [(name, describe_state(machine, model, unroll.states[k], None)) for k, name in enumerate(names)]
        solver.pop()
        if depth < max_depth:
            solver.add(unroll.step_formula(depth))
    return None
