"""The prover fixes the acting id to 0 by symmetry; check that this loses nothing: with the
acting id free, the same obligations hold and the same broken variant is caught."""

from __future__ import annotations

import z3
from meerkat_model.proofs.ops_encoding import build_ops_machine, ops_transitions
from meerkat_model.proofs.symbolic import SymbolicMachine

from tests.proofs.variants import complete_without_outcome, replace


def _free_acting_id_results(machine: SymbolicMachine) -> dict[tuple[str, str], bool]:
    """``(transition, invariant) -> preserved`` with the acting id unconstrained."""
    pre, post = machine.state("pre."), machine.state("post.")
    out: dict[tuple[str, str], bool] = {}
    for t in machine.transitions:
        step, _ = machine.instantiate(t, pre, post, "")
        s = z3.Solver()
        s.add(machine.domain(pre), machine.all_invariants(pre), step.guard, step.effect)
        for inv in machine.invariants:
            s.push()
            s.add(z3.Not(inv.holds(post)))
            out[(t.name, inv.name)] = s.check() == z3.unsat
            s.pop()
    return out


def test_free_acting_id_agrees_with_the_symmetric_proof() -> None:
    from meerkat_model.proofs.induction import prove_invariants

    for transitions in (ops_transitions(), replace(ops_transitions(), complete_without_outcome())):
        machine = build_ops_machine(3, transitions)
        free = _free_acting_id_results(machine)
        fixed = {r.name.removeprefix("inductive:"): r for r in prove_invariants(machine)}
        for inv in machine.invariants:
            preserved_everywhere = all(ok for (_, name), ok in free.items() if name == inv.name)
            assert (fixed[inv.name].status == "proved") == preserved_everywhere, inv.name
