"""Transition tables: the encodings' declared rows, the rows their formulas allow, and the
executable model's declared transitions must agree."""

from __future__ import annotations

from meerkat_model.catalog import MACHINES
from meerkat_model.machine import Bounds, TransitionDecl
from meerkat_model.proofs.drift import check_against_model, check_declared_matches_formulas
from meerkat_model.proofs.ops_encoding import build_ops_machine
from meerkat_model.proofs.session_encoding import build_session_machine
from meerkat_model.proofs.tables import declared_rows, derived_rows, differences, model_rows


def test_ops_encoding_table_equals_the_models_declared_transitions() -> None:
    model = MACHINES["ops"](Bounds()).transitions()
    diffs = differences(model_rows(model), declared_rows(build_ops_machine(2)))
    assert diffs == []
    assert check_against_model(build_ops_machine(2)).status == "proved"


def test_declared_rows_are_what_the_formulas_allow() -> None:
    for machine in (build_ops_machine(2), build_session_machine(2)):
        assert differences(declared_rows(machine), derived_rows(machine), left="declared", right="derived") == []
        assert check_declared_matches_formulas(machine).status == "proved"


def test_a_declared_row_the_formulas_do_not_allow_is_reported() -> None:
    from dataclasses import replace

    machine = build_ops_machine(2)
    wrong = tuple(
        replace(t, sources=("Provisioning", "Running")) if t.name == "request_retire" else t
        for t in machine.transitions
    )
    result = check_declared_matches_formulas(build_ops_machine(2, wrong))
    assert result.status == "failed"
    assert result.counterexample is not None
    assert result.counterexample["differences"] == [
        "request_retire [operation]: declared operation: {Provisioning, Running} → Retiring "
        "but derived operation: {Running} → Retiring"
    ]


def test_a_drifted_model_table_is_reported() -> None:
    model = list(MACHINES["ops"](Bounds()).transitions())
    drifted = [
        TransitionDecl(d.name, d.entity, ("Running",), d.target) if d.name == "complete_operation" else d for d in model
    ]
    drifted.append(TransitionDecl("pause_operation", "operation", ("Running",), "Paused"))
    result = check_against_model(build_ops_machine(2), lambda: drifted)
    assert result.status == "failed"
    assert result.counterexample is not None
    diffs = result.counterexample["differences"]
    assert any(d.startswith("complete_operation [operation]: model") for d in diffs)
    assert any(d.startswith("pause_operation [operation]: declared by the model only") for d in diffs)
    assert len(diffs) == 2


def test_a_missing_model_is_unknown_not_proved() -> None:
    def unavailable() -> list[TransitionDecl]:
        raise KeyError("no such machine")

    result = check_against_model(build_ops_machine(2), unavailable)
    assert result.status == "unknown"
