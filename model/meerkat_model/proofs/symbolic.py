"""Symbolic machines: states as named z3 terms over a fixed number of ids, transitions as
guard + effect formulas, invariants as predicates.

A :class:`SymbolicMachine` is what the induction prover and the reachability checker consume.
Each machine is built for ``n`` ids; per-id fields are lists of ``n`` z3 terms, so every
formula is quantifier-free and the solver decides it exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import z3

Sort = Literal["int", "bool"]
Expr = Any  # a z3 term; z3 ships no type information


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One state variable. ``per_id`` fields hold one term per id; ``constant`` fields are
    configuration shared by the pre- and post-state of every step."""

    name: str
    sort: Sort
    per_id: bool = False
    constant: bool = False


def _const(name: str, sort: Sort) -> Expr:
    return z3.Int(name) if sort == "int" else z3.Bool(name)


class SymState:
    """A symbolic state: scalar terms by name (``s["active"]``) and per-id lists
    (``s.ids("status")``)."""

    def __init__(self, n: int, scalars: dict[str, Expr], arrays: dict[str, list[Expr]]) -> None:
        self.n = n
        self._scalars = scalars
        self._arrays = arrays

    def __getitem__(self, name: str) -> Expr:
        return self._scalars[name]

    def ids(self, name: str) -> list[Expr]:
        return self._arrays[name]

    @property
    def scalar_names(self) -> list[str]:
        return list(self._scalars)

    @property
    def array_names(self) -> list[str]:
        return list(self._arrays)


class Params:
    """Fresh parameter constants of one step (the acting id, a chosen kind, witnesses).

    Every constant is named ``<prefix><transition>.<name>`` so unrolled steps never share
    parameters; ``domain`` collects the range constraints of the created parameters.
    """

    def __init__(self, prefix: str, transition: str, *, exact: bool = True) -> None:
        self._prefix = f"{prefix}{transition}."
        self.exact = exact
        self.created: dict[str, Expr] = {}
        self.domain: list[Expr] = []
        self.aux: list[Expr] = []
        """The auxiliary terms (defined by constraints in ``domain``, chosen by the solver)."""

    def int(self, name: str, lo: int | None = None, hi: int | None = None) -> Expr:
        """A fresh integer parameter with ``lo <= x < hi`` when bounds are given."""
        x = z3.Int(self._prefix + name)
        self.created[name] = x
        if lo is not None:
            self.domain.append(x >= lo)
        if hi is not None:
            self.domain.append(x < hi)
        return x

    def bool(self, name: str) -> Expr:
        x = z3.Bool(self._prefix + name)
        self.created[name] = x
        return x

    def aux_int(self, name: str) -> Expr:
        """A fresh auxiliary integer (defined by constraints in ``domain``)."""
        x = z3.Int(self._prefix + name)
        self.aux.append(x)
        return x

    def aux_bool(self, name: str) -> Expr:
        """A fresh auxiliary (defined by constraints in ``domain``, not a caller's choice)."""
        x = z3.Bool(self._prefix + name)
        self.aux.append(x)
        return x


@dataclass(frozen=True, slots=True)
class StepFormula:
    """A transition instance: ``guard`` over the pre-state and parameters, ``effect`` relating
    pre and post for the fields in ``writes`` (all other fields are framed unchanged)."""

    guard: Expr
    effect: Expr
    writes: frozenset[str]


@dataclass(frozen=True, slots=True)
class SymTransition:
    """One declared transition with its entity table row and its formula builder."""

    name: str
    entity: str
    sources: tuple[str, ...]
    target: str | None
    build: Callable[[SymState, SymState, Params], StepFormula]
    subject: str | None = None
    """For a per-id entity: the parameter naming the id this row is about (default: ``id`` when
    the step has one, else an id whose status the step changes). Several rows may share a name
    (one per entity, or per role of an id) and must then share ``build``."""


@dataclass(frozen=True, slots=True)
class SymInvariant:
    """A named state predicate. ``per_id``, when given, is the same property for one id; it lets
    a counterexample name the id that broke it."""

    name: str
    description: str
    holds: Callable[[SymState], Expr]
    per_id: Callable[[SymState, int], Expr] | None = None
    counted: tuple[Callable[[SymState, int], Expr], ...] = ()
    """Per-id predicates this invariant counts; the prover first tries to show a step leaves
    them unchanged at every id it does not act on (which keeps the count check cheap)."""


@dataclass(frozen=True, slots=True)
class StepProperty:
    """A two-state property every transition must keep (e.g. an absorbing phase)."""

    name: str
    description: str
    holds: Callable[[SymState, SymState], Expr]


@dataclass(frozen=True, slots=True)
class EntityView:
    """How to read one entity's status from a symbolic state (for deriving the transition
    table from the encoding). ``per_id`` entities are read at an id; ``removed`` is the code
    of "record forgotten" (an id evicted or collected in the same step), ignored as a target."""

    per_id: bool
    status: Callable[[SymState, int], Expr]
    labels: Mapping[int, str]
    removed: int | None = None


@dataclass(frozen=True)
class SymbolicMachine:
    """A machine encoded for z3 over ``n`` ids."""

    name: str
    n: int
    fields: tuple[FieldSpec, ...]
    initial: Callable[[SymState], Expr]
    domain: Callable[[SymState], Expr]
    transitions: tuple[SymTransition, ...]
    invariants: tuple[SymInvariant, ...]
    step_properties: tuple[StepProperty, ...] = ()
    labels: Mapping[str, Mapping[int, str]] = field(default_factory=dict)
    entities: Mapping[str, EntityView] = field(default_factory=dict)
    _constants: dict[str, Expr] = field(default_factory=dict, repr=False, compare=False)

    def state(self, prefix: str) -> SymState:
        """Fresh state variables named ``<prefix><field>`` (constants are shared)."""
        scalars: dict[str, Expr] = {}
        arrays: dict[str, list[Expr]] = {}
        for f in self.fields:
            if f.constant:
                if f.name not in self._constants:
                    self._constants[f.name] = _const(f.name, f.sort)
                scalars[f.name] = self._constants[f.name]
            elif f.per_id:
                arrays[f.name] = [_const(f"{prefix}{f.name}[{j}]", f.sort) for j in range(self.n)]
            else:
                scalars[f.name] = _const(prefix + f.name, f.sort)
        return SymState(self.n, scalars, arrays)

    @property
    def steps(self) -> tuple[SymTransition, ...]:
        """One row per transition name (the first declared): the steps to prove and fire."""
        seen: set[str] = set()
        out: list[SymTransition] = []
        for t in self.transitions:
            if t.name not in seen:
                seen.add(t.name)
                out.append(t)
        return tuple(out)

    def transition(self, name: str) -> SymTransition:
        for t in self.transitions:
            if t.name == name:
                return t
        raise KeyError(f"{self.name} has no transition {name!r}")

    def instantiate(
        self, t: SymTransition, pre: SymState, post: SymState, prefix: str, *, exact: bool = True
    ) -> tuple[StepFormula, Params]:
        """Build ``t`` between ``pre`` and ``post``; the effect includes the frame conditions.
        ``exact=False`` lets builders over-approximate (allow more post-states): an invariant
        preserved by the over-approximation is preserved by the exact step."""
        params = Params(prefix, t.name, exact=exact)
        formula = t.build(pre, post, params)
        unknown = formula.writes - {f.name for f in self.fields}
        if unknown:
            raise ValueError(f"{self.name}.{t.name} writes undeclared fields {sorted(unknown)}")
        frame = self.frame(pre, post, formula.writes)
        guard = z3.And(formula.guard, *params.domain)
        return StepFormula(guard, z3.And(formula.effect, *frame), formula.writes), params

    def frame(self, pre: SymState, post: SymState, writes: Iterable[str]) -> list[Expr]:
        written = set(writes)
        eqs: list[Expr] = []
        for f in self.fields:
            if f.constant or f.name in written:
                continue
            if f.per_id:
                eqs.extend(a == b for a, b in zip(pre.ids(f.name), post.ids(f.name), strict=True))
            else:
                eqs.append(pre[f.name] == post[f.name])
        return eqs

    def all_invariants(self, s: SymState) -> Expr:
        return z3.And(*(inv.holds(s) for inv in self.invariants))


# -- small formula helpers shared by the encodings -------------------------------------------


def per_id_invariant(name: str, description: str, body: Callable[[SymState, int], Expr]) -> SymInvariant:
    """The invariant "``body`` holds at every id", keeping ``body`` so a counterexample can
    name the id that broke it."""
    return SymInvariant(name, description, lambda s: all_ids(s.n, lambda j: body(s, j)), body)


def count(flags: Sequence[Expr]) -> Expr:
    """Number of true terms among ``flags``."""
    if not flags:
        return z3.IntVal(0)
    return z3.Sum([z3.If(b, 1, 0) for b in flags])


def in_set(x: Expr, values: Iterable[int]) -> Expr:
    return z3.Or(*(x == v for v in values))


def at_id(k: Expr, j: int) -> Expr:
    """``k`` (a symbolic id) denotes id ``j``."""
    return k == j


def all_ids(n: int, body: Callable[[int], Expr]) -> Expr:
    return z3.And(*(body(j) for j in range(n))) if n else z3.BoolVal(True)


def some_id(n: int, body: Callable[[int], Expr]) -> Expr:
    return z3.Or(*(body(j) for j in range(n))) if n else z3.BoolVal(False)


def pairs(n: int) -> Iterable[tuple[int, int]]:
    """Unordered pairs of distinct ids."""
    for i in range(n):
        for j in range(i + 1, n):
            yield i, j
