"""The runtime names, for every rule the model declares, the core method that decides it and
the shell function that drives it; the table covers exactly the model's rules and every name
in it exists."""

from __future__ import annotations

import inspect

import pytest
from meerkat_model.catalog import MACHINES, PROFILES
from meerkat_runtime.ops.transitions import OPS_RULES
from meerkat_runtime.session.transitions import SESSION_RULES
from meerkat_runtime.vocab.transitions import RuleBinding, resolve

BINDINGS = {"session": SESSION_RULES, "ops": OPS_RULES}


def _declared(machine: str) -> set[str]:
    return {decl.name for decl in MACHINES[machine](PROFILES["tiny"][machine]).transitions()}


@pytest.mark.parametrize("machine", sorted(BINDINGS))
def test_the_bindings_cover_exactly_the_declared_rules(machine: str) -> None:
    bound = [b.rule for b in BINDINGS[machine]]
    assert len(bound) == len(set(bound)), "a rule is bound twice"
    declared = _declared(machine)
    assert set(bound) - declared == set(), "bound but not declared by the model"
    assert declared - set(bound) == set(), "declared by the model but not bound in the runtime"


@pytest.mark.parametrize("binding", [*SESSION_RULES, *OPS_RULES], ids=lambda b: b.rule)
def test_every_named_method_exists(binding: RuleBinding) -> None:
    shell = resolve(binding.shell)
    assert callable(shell), binding.shell
    if binding.core is None:
        assert binding.note, f"{binding.rule}: a rule without a core method says what happens instead"
        return
    core = resolve(binding.core)
    assert callable(core), binding.core
    assert not inspect.iscoroutinefunction(core), f"{binding.core}: the core never awaits"


def test_core_methods_are_named_as_the_rule_they_decide() -> None:
    """A core method bound to a single rule carries that rule's name; one shared by several
    rules (``accept``, ``executor_failed``...) is named as one of them or their common stem."""
    for binding in (*SESSION_RULES, *OPS_RULES):
        if binding.core is None:
            continue
        method = binding.core.rsplit(".", 1)[1]
        assert binding.rule.startswith(method) or method == "accept", binding


def test_resolve_names_what_is_missing() -> None:
    with pytest.raises(LookupError, match="'no_such_rule'"):
        resolve("session.core.session_core.SessionCore.no_such_rule")
    with pytest.raises(LookupError, match="no such module"):
        resolve("no_such_package.thing")
