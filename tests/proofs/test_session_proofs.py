"""The session encoding (runtime control + inputs): invariants inductive, breaks caught."""

from __future__ import annotations

import z3
from meerkat_model.proofs import session_encoding as se
from meerkat_model.proofs.induction import prove_invariants
from meerkat_model.proofs.symbolic import Params, StepFormula, SymState, SymTransition

from tests.proofs.variants import replace


def test_every_session_invariant_and_step_property_is_proved_over_8_ids() -> None:
    results = prove_invariants(se.build_session_machine(8))
    names = {r.name for r in results}
    assert {
        "inductive:runtime.running_has_run",
        "inductive:runtime.run_phase",
        "inductive:input.queued_in_lane",
        "inductive:input.in_current_run",
        "inductive:input.one_live_per_key",
        "step:runtime.destroyed_absorbing",
    } <= names
    assert [r.name for r in results if r.status != "proved"] == []


def _destroy_keeping_inputs() -> SymTransition:
    """``destroy_runtime`` that forgets to abandon the inputs."""

    def build(pre: SymState, post: SymState, p: Params) -> StepFormula:
        scalars = se._detached(se.DESTROYED)(pre)
        eqs = [post[name] == value for name, value in scalars.items()]
        return StepFormula(pre["phase"] != se.DESTROYED, z3.And(*eqs), frozenset(scalars))

    return SymTransition("destroy_runtime", "runtime", ("Idle",), "Destroyed", build)


def _resurrect() -> SymTransition:
    """A control step that may leave Destroyed."""

    def build(pre: SymState, post: SymState, p: Params) -> StepFormula:
        return StepFormula(z3.BoolVal(True), post["phase"] == se.STOPPED, frozenset({"phase"}))

    return SymTransition("resurrect", "runtime", ("Destroyed",), "Stopped", build)


def test_destroy_without_abandoning_breaks_quiet_when_closed() -> None:
    machine = se.build_session_machine(3, replace(se.session_transitions(), _destroy_keeping_inputs()))
    results = {r.name: r for r in prove_invariants(machine)}
    broken = results["inductive:input.quiet_when_closed"]
    assert broken.status == "failed"
    cex = broken.counterexample
    assert cex is not None and cex["transition"] == "destroy_runtime"
    assert cex["post"]["phase"] == "Destroyed"
    assert any(phase in ("Queued", "Staged") for phase in cex["post"]["iphase"].values())


def test_leaving_destroyed_breaks_the_absorbing_step_property() -> None:
    machine = se.build_session_machine(2, (*se.session_transitions(), _resurrect()))
    results = {r.name: r for r in prove_invariants(machine)}
    broken = results["step:runtime.destroyed_absorbing"]
    assert broken.status == "failed"
    cex = broken.counterexample
    assert cex is not None and cex["transition"] == "resurrect"
    assert cex["pre"]["phase"] == "Destroyed" and cex["post"]["phase"] == "Stopped"
