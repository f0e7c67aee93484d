"""Transition tables: the rows an encoding declares, the rows its formulas actually allow
(derived with z3), and the rows the executable model declares — and the differences between
them, so the encoding cannot drift from the model.

A row is ``(entity, sources, target)`` keyed by ``"<transition> [<entity>]"`` (a transition
moving several entities has one row per entity); when one transition has several rows for the
same entity (``accept_superseding`` moves the new input Absent -> Queued and the older one
Queued -> Superseded), each is keyed by its sources too: ``"<transition> [<entity> from
<sources>]"``, so rows are matched by (name, entity, sources) and compared on their target. A
target equal to the only source means "unchanged" and is normalised to ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import z3

from meerkat_model.machine import TransitionDecl
from meerkat_model.proofs.symbolic import SymbolicMachine


@dataclass(frozen=True, slots=True)
class Row:
    entity: str
    sources: frozenset[str]
    target: str | None

    def __str__(self) -> str:
        return f"{self.entity}: {{{', '.join(sorted(self.sources))}}} → {self.target or 'unchanged'}"


def normalise(entity: str, sources: Iterable[str], target: str | None) -> Row:
    src = frozenset(sources)
    if target is not None and src == {target}:
        target = None
    return Row(entity, src, target)


def row_key(name: str, entity: str, sources: Iterable[str] | None = None) -> str:
    if sources is None:
        return f"{name} [{entity}]"
    return f"{name} [{entity} from {', '.join(sorted(set(sources)))}]"


def row_keys(rows: Sequence[tuple[str, str, Sequence[str]]]) -> list[str]:
    """The key of each ``(name, entity, sources)`` row: ``name [entity]``, with the sources
    added when the same name and entity have several rows."""
    seen: dict[tuple[str, str], int] = {}
    for name, entity, _ in rows:
        seen[(name, entity)] = seen.get((name, entity), 0) + 1
    return [row_key(name, entity, sources if seen[(name, entity)] > 1 else None) for name, entity, sources in rows]


def declared_rows(machine: SymbolicMachine) -> dict[str, Row]:
    """The table the encoding declares for its transitions."""
    keys = row_keys([(t.name, t.entity, t.sources) for t in machine.transitions])
    return {k: normalise(t.entity, t.sources, t.target) for k, t in zip(keys, machine.transitions, strict=True)}


def model_rows(decls: Sequence[TransitionDecl]) -> dict[str, Row]:
    """The table an executable model declares (its ``transitions()``)."""
    keys = row_keys([(d.name, d.entity, d.sources) for d in decls])
    return {k: normalise(d.entity, d.sources, d.target) for k, d in zip(keys, decls, strict=True)}


def derived_rows(machine: SymbolicMachine) -> dict[str, Row]:
    """The table the encoding's formulas allow, read off by z3 for the entity of each
    transition: a status is a source when the transition can fire for a subject in it from a
    state satisfying the invariants; the target is the status the subject can change to.

    The subject is the id named by the row's ``subject`` parameter, else by the ``id``
    parameter, else an id whose status changes; by symmetry id 0 stands for every id. Rows are
    keyed as the declared ones (by their declared sources when a name has several rows for one
    entity).
    """
    pre, post = machine.state("tbl.pre."), machine.state("tbl.post.")
    rows: dict[str, Row] = {}
    keys = row_keys([(t.name, t.entity, t.sources) for t in machine.transitions])
    for key, t in zip(keys, machine.transitions, strict=True):
        view = machine.entities[t.entity]
        step, params = machine.instantiate(t, pre, post, "tbl.")
        before, after = view.status(pre, 0), view.status(post, 0)
        subject = z3.BoolVal(True)
        if view.per_id:
            named = t.subject or ("id" if "id" in params.created else None)
            if named is not None:
                subject = params.created[named] == 0
            else:
                forgotten = z3.BoolVal(False) if view.removed is None else after == view.removed
                subject = z3.And(before != after, z3.Not(forgotten))
        s = z3.Solver()
        s.add(machine.domain(pre), machine.all_invariants(pre), step.guard, step.effect, subject)
        sources = {label for code, label in view.labels.items() if _sat(s, before == code)}
        targets = {
            label
            for code, label in view.labels.items()
            if code != view.removed and _sat(s, z3.And(after == code, before != after))
        }
        target = next(iter(targets)) if len(targets) == 1 else None
        if len(targets) > 1:
            target = " | ".join(sorted(targets))
        rows[key] = normalise(t.entity, sources, target)
    return rows


def _sat(s: z3.Solver, extra: object) -> bool:
    s.push()
    s.add(extra)
    try:
        return bool(s.check() == z3.sat)
    finally:
        s.pop()


def differences(
    expected: Mapping[str, Row],
    actual: Mapping[str, Row],
    *,
    entities: Iterable[str] | None = None,
    left: str = "model",
    right: str = "encoding",
) -> list[str]:
    """Readable differences between two tables (restricted to ``entities`` when given)."""
    keep = None if entities is None else set(entities)
    exp = {k: v for k, v in expected.items() if keep is None or v.entity in keep}
    act = {k: v for k, v in actual.items() if keep is None or v.entity in keep}
    out = [f"{name}: declared by the {left} only ({exp[name]})" for name in sorted(exp.keys() - act.keys())]
    out += [f"{name}: declared by the {right} only ({act[name]})" for name in sorted(act.keys() - exp.keys())]
    for name in sorted(exp.keys() & act.keys()):
        if exp[name] != act[name]:
            out.append(f"{name}: {left} {exp[name]} but {right} {act[name]}")
    return out
