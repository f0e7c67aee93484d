"""The session encoding (inputs, runtime control, registration): invariants inductive, breaks
caught, table equal to the session model's declared table."""

from __future__ import annotations

import z3
from meerkat_model.catalog import MACHINES
from meerkat_model.machine import Bounds, TransitionDecl
from meerkat_model.proofs import session_encoding as se
from meerkat_model.proofs.drift import check_against_model, check_declared_matches_formulas
from meerkat_model.proofs.induction import prove_invariants
from meerkat_model.proofs.symbolic import Params, StepFormula, SymState, SymTransition
from meerkat_model.proofs.tables import declared_rows, differences, model_rows

from tests.proofs.variants import replace

ALL_SESSION_INVARIANTS = {
    "inductive:runtime.typed",
    "inductive:runtime.running_has_run",
    "inductive:runtime.run_phase",
    "inductive:runtime.loop_phase",
    "inductive:input.typed",
    "inductive:input.untracked_is_clean",
    "inductive:input.queued_in_lane",
    "inductive:input.lane_positions",
    "inductive:input.in_current_run",
    "inductive:input.one_per_run",
    "inductive:input.at_rest",
    "inductive:input.attempts",
    "inductive:input.idempotency_keys_unique",
    "inductive:input.one_live_per_key",
    "inductive:input.quiet_when_closed",
    "step:runtime.destroyed_absorbing",
    "step:input.terminal_absorbing",
}


def test_every_session_invariant_and_step_property_is_proved_over_8_ids() -> None:
    results = prove_invariants(se.build_session_machine(8))
    assert {r.name for r in results} == ALL_SESSION_INVARIANTS
    assert [r.name for r in results if r.status != "proved"] == []


def test_session_encoding_table_equals_the_models_declared_transitions() -> None:
    model = MACHINES["session"](Bounds()).transitions()
    machine = se.build_session_machine(2)
    assert differences(model_rows(model), declared_rows(machine)) == []
    assert len(declared_rows(machine)) == len(model)
    assert {t.name for t in machine.steps} == {d.name for d in model}
    assert check_against_model(machine).status == "proved"
    assert check_declared_matches_formulas(machine).status == "proved"


def test_a_drifted_session_model_table_fails() -> None:
    model = list(MACHINES["session"](Bounds()).transitions())
    drifted = [
        TransitionDecl(d.name, d.entity, d.sources, "Idle") if (d.name, d.entity) == ("retire", "runtime") else d
        for d in model
    ]
    drifted.append(TransitionDecl("pause", "runtime", ("Attached",), "Paused"))
    result = check_against_model(se.build_session_machine(2), lambda: drifted)
    assert result.status == "failed"
    assert result.counterexample is not None
    diffs = result.counterexample["differences"]
    assert any(d.startswith("retire [runtime]: model") for d in diffs)
    assert any(d.startswith("pause [runtime]: declared by the model only") for d in diffs)
    assert len(diffs) == 2


def test_rows_sharing_a_name_and_entity_are_matched_by_their_sources() -> None:
    model = [
        TransitionDecl(d.name, d.entity, d.sources, "Coalesced" if d.target == "Superseded" else d.target)
        for d in MACHINES["session"](Bounds()).transitions()
    ]
    result = check_against_model(se.build_session_machine(2), lambda: model)
    assert result.status == "failed"
    assert result.counterexample is not None
    assert result.counterexample["differences"] == [
        "accept_superseding [input from Queued]: model input: {Queued} → Coalesced "
        "but encoding input: {Queued} → Superseded"
    ]


def _destroy_keeping_inputs() -> SymTransition:
    """``destroy`` that forgets to abandon the inputs."""

    def build(pre: SymState, post: SymState, p: Params) -> StepFormula:
        guard = z3.And(pre["reg"] != se.UNREG, pre["phase"] != se.DESTROYED, pre["reg"] != se.ACTIVE)
        return StepFormula(guard, post["phase"] == se.DESTROYED, frozenset({"phase"}))

    return SymTransition("destroy", "runtime", ("Idle", "Retired", "Stopped"), "Destroyed", build)


def _boundary_commit_failed_counting_attempt() -> SymTransition:
    """``boundary_commit_failed`` that puts the input back without un-counting its attempt."""
    real = se._run_end(se._head_of_lane, False, commit_failed=True)

    def build(pre: SymState, post: SymState, p: Params) -> StepFormula:
        scratch = [z3.Int(f"scratch.attempts[{j}]") for j in range(pre.n)]
        arrays = {name: (scratch if name == "attempts" else post.ids(name)) for name in post.array_names}
        shadow = SymState(pre.n, {name: post[name] for name in post.scalar_names}, arrays)
        step = real(pre, shadow, p)
        keep = [post.ids("attempts")[j] == pre.ids("attempts")[j] for j in range(pre.n)]
        return StepFormula(step.guard, z3.And(step.effect, *keep), step.writes)

    return SymTransition("boundary_commit_failed", "input", ("Staged",), "Queued", build)


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
    assert cex is not None and cex["transition"] == "destroy"
    assert cex["invariant"] == "input.quiet_when_closed"
    assert cex["post"]["phase"] == "Destroyed"
    # An input left non-terminal: Queued, or Staged by a run accept_input_and_run started.
    assert any(phase in ("Queued", "Staged") for phase in cex["post"]["iphase"].values())


def test_a_boundary_commit_failure_counting_the_attempt_breaks_the_attempt_cap() -> None:
    machine = se.build_session_machine(3, replace(se.session_transitions(), _boundary_commit_failed_counting_attempt()))
    results = {r.name: r for r in prove_invariants(machine)}
    broken = results["inductive:input.attempts"]
    assert broken.status == "failed"
    cex = broken.counterexample
    assert cex is not None
    assert cex["transition"] == "boundary_commit_failed" and cex["invariant"] == "input.attempts"
    j = cex["broken_id"]
    assert cex["pre"]["iphase"][j] == "Staged" and cex["post"]["iphase"][j] == "Queued"
    assert cex["post"]["attempts"][j] == cex["post"]["max_attempts"]  # queued with its budget spent
    assert [r.name for r in results.values() if r.status == "failed"] == ["inductive:input.attempts"]


def _executor_failed_with_a_fixed_limit() -> SymTransition:
    """``executor_failed`` that requeues below a fixed limit of 3 instead of the configured one."""

    def below_three(pre: SymState, j: int) -> z3.ExprRef:
        return pre.ids("attempts")[j] < 3

    real = se._run_end(se._back_of_lane, False, when=below_three)
    return SymTransition("executor_failed", "input", ("Staged",), "Queued", real)


def test_the_attempt_limit_is_the_configured_constant_not_three() -> None:
    machine = se.build_session_machine(2, replace(se.session_transitions(), _executor_failed_with_a_fixed_limit()))
    results = {r.name: r for r in prove_invariants(machine)}
    broken = results["inductive:input.attempts"]
    assert broken.status == "failed"
    cex = broken.counterexample
    assert cex is not None and cex["transition"] == "executor_failed"
    j = cex["broken_id"]
    assert cex["post"]["iphase"][j] == "Queued"
    assert cex["post"]["max_attempts"] < 3 and cex["post"]["attempts"][j] >= cex["post"]["max_attempts"]


def _guard_at(attempts: int, limit: int, fatal: bool) -> bool:
    """Whether ``executor_failed_exhausted`` may end a run of input 0 at its ``attempts``-th attempt."""
    machine = se.build_session_machine(1)
    pre, post = machine.state("pre."), machine.state("post.")
    formula, _params = machine.instantiate(machine.transition("executor_failed_exhausted"), pre, post, "t.")
    solver = z3.Solver()
    solver.add(
        machine.all_invariants(pre),
        machine.domain(pre),
        pre["max_attempts"] == limit,
        pre["fatal_errors"] == fatal,
        pre.ids("iphase")[0] == se.STAGED,
        pre.ids("attempts")[0] == attempts,
        pre["phase"] == se.RUNNING,
        pre["pre_run"] == se.ATTACHED,
        formula.guard,
    )
    return solver.check() == z3.sat


def test_a_fatal_error_abandons_before_the_limit_and_only_with_fatal_errors_on() -> None:
    assert _guard_at(1, 3, fatal=True)
    assert not _guard_at(1, 3, fatal=False)
    assert not _guard_at(2, 3, fatal=False)
    assert _guard_at(3, 3, fatal=False)
    assert _guard_at(1, 1, fatal=False)


def test_leaving_destroyed_breaks_the_absorbing_step_property() -> None:
    machine = se.build_session_machine(2, (*se.session_transitions(), _resurrect()))
    results = {r.name: r for r in prove_invariants(machine)}
    broken = results["step:runtime.destroyed_absorbing"]
    assert broken.status == "failed"
    cex = broken.counterexample
    assert cex is not None and cex["transition"] == "resurrect"
    assert cex["pre"]["phase"] == "Destroyed" and cex["post"]["phase"] == "Stopped"
