"""Turning a z3 model into readable plain data: field -> value, per-id fields as
``{id: value}`` restricted to the ids that matter, codes decoded to status names."""

from __future__ import annotations

from typing import Any

import z3

from meerkat_model.proofs.symbolic import Expr, SymbolicMachine, SymState


def value_of(model: Any, term: Expr) -> int | bool:
    v = model.eval(term, model_completion=True)
    if z3.is_bool(v):
        return bool(z3.is_true(v))
    return int(v.as_long())


def _decode(machine: SymbolicMachine, name: str, v: int | bool) -> Any:
    labels = machine.labels.get(name)
    if labels is not None and not isinstance(v, bool):
        return labels.get(v, v)
    return v


def params_values(model: Any, params: dict[str, Expr]) -> dict[str, int | bool]:
    return {name: value_of(model, term) for name, term in params.items()}


def interesting_ids(
    machine: SymbolicMachine, model: Any, pre: SymState, post: SymState, params: dict[str, Expr]
) -> list[int]:
    """Ids whose fields changed in the step, plus ids named by an ``id``-like parameter."""
    ids: set[int] = set()
    for name in pre.array_names:
        for j, (a, b) in enumerate(zip(pre.ids(name), post.ids(name), strict=True)):
            if value_of(model, a) != value_of(model, b):
                ids.add(j)
    for pname, term in params.items():
        if pname in ("id", "other") and z3.is_int(term):
            j = value_of(model, term)
            if isinstance(j, int) and 0 <= j < pre.n:
                ids.add(j)
    return sorted(ids)


def describe_state(machine: SymbolicMachine, model: Any, s: SymState, ids: list[int] | None) -> dict[str, Any]:
    """Scalars in full; per-id fields for ``ids`` (all ids when ``None``)."""
    out: dict[str, Any] = {}
    for name in s.scalar_names:
        out[name] = _decode(machine, name, value_of(model, s[name]))
    chosen = list(range(s.n)) if ids is None else ids
    for name in s.array_names:
        terms = s.ids(name)
        out[name] = {j: _decode(machine, name, value_of(model, terms[j])) for j in chosen}
    return out
