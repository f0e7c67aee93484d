"""The differential check: the z3 encodings say what the executable model does.

The proofs are about the encodings; the verifier explores and the harness runs the executable
model. This check ties them together: for every state of an exploration and every candidate
action, the encoding's transition relation, with the pre-state fixed to the abstraction of the
model's state and the parameters fixed by the action, must

* admit exactly one post-state, equal to the abstraction of the model's successor, under
  exactly the transition the model fired, when the model steps; and
* admit nothing (every transition the action may stand for is refused) when the model refuses.

Each encoding has an :class:`Abstraction` (``ABSTRACTIONS``, one per entry of
``meerkat_model.proofs.runner.ENCODINGS``): the encoded fields of a model state, the transitions
(and parameter values) an action may stand for, and the projection of counters the encoding
keeps in another form (lane positions as ranks). An action the abstraction does not know fails
the check, so an action added to a model without its encoding cannot pass unnoticed.

Queries are answered by one incremental solver per transition (guard and effect asserted once;
each query pushes the pre-state and parameter values), and identical abstract queries are asked
once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import z3

from meerkat_model.machine import Bounds, Machine, Rejected, Stepped
from meerkat_model.proofs.interruptible import interruptible_queries
from meerkat_model.proofs.symbolic import Expr, SymbolicMachine, SymState

Value = int | bool
Values = dict[str, Any]
"""Field name -> value (scalar fields) or list of values (per-id fields)."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A transition an action may stand for, with the values of the parameters the action fixes
    (the others are left free: the encoding must not depend on them)."""

    transition: str
    params: tuple[tuple[str, Value], ...] = ()


@dataclass(frozen=True, slots=True)
class Encoded:
    """How an action is encoded: the transitions it may stand for. ``failed_write``: the action
    is the model's write-failure variant, which the encoding does not model; the model's
    refusal must then leave the encoded state unchanged, and a step is compared as usual.
    ``constants``: configuration constants the action itself decides, overriding the machine's
    (where the encoding leaves a choice open that the model makes per action, such as whether
    a failing run's error is retryable), in the pre-state and the expected post-state."""

    candidates: tuple[Candidate, ...]
    failed_write: bool = False
    constants: tuple[tuple[str, Value], ...] = ()


class NotEncoded(Exception):
    """A state or action outside what the encoding describes (counted, not compared)."""


class Abstraction(Protocol):
    """The encoded view of one executable model. ``simulation``: the encoding abstracts the
    model (one transition stands for many steps, with choices), so a step is checked as a
    simulation — the encoding admits the abstraction of the model's successor under one of the
    candidates, or the step changes nothing encoded — and a refusal is not compared."""

    simulation: bool

    def ids(self, machine: Machine[Any, Any]) -> int:
        """The number of ids the model's bounds give (the encoding is built for as many)."""
        ...

    def constants(self, machine: Machine[Any, Any]) -> Values:
        """The configuration constants of the encoding under the model's bounds."""
        ...

    def state(self, state: Any) -> Values:
        """The encoded fields of ``state`` (``NotEncoded`` when the encoding does not describe it)."""
        ...

    def action(self, action: Any, state: Any) -> Encoded:
        """The transitions ``action`` may stand for in ``state`` (``NotEncoded`` for an action
        outside the encoding's scope; ``ValueError`` for an action the abstraction does not know)."""
        ...

    def normalise(self, values: Values) -> Values:
        """``values`` with the counters the encoding keeps in another form projected out."""
        ...


@dataclass(frozen=True, slots=True)
class Drift:
    """One disagreement between the model and its encoding."""

    state: str
    action: str
    model: str
    encoding: str

    def render(self) -> str:
        return f"state {self.state}\n  action {self.action}\n  model:    {self.model}\n  encoding: {self.encoding}"


@dataclass
class DifferentialReport:
    """What one differential run compared and found."""

    machine: str
    states: int = 0
    pairs: int = 0
    queries: int = 0
    skipped: int = 0
    seconds: float = 0.0
    drifts: list[Drift] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.drifts


def _freeze(values: Mapping[str, Any]) -> Hashable:
    return tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in sorted(values.items()))


class _Query:
    """One transition's incremental solver, with its pre, post and parameter terms flattened and
    the equalities to concrete values cached (building z3 terms costs more than solving here)."""

    def __init__(self, encoding: SymbolicMachine, name: str) -> None:
        pre, post = encoding.state(f"d.{name}.pre."), encoding.state(f"d.{name}.post.")
        step, params = encoding.instantiate(encoding.transition(name), pre, post, "d.")
        self.solver = z3.Solver()
        self.solver.add(step.guard, step.effect)
        self.ctx = self.solver.ctx
        self.formula = z3.And(step.guard, step.effect)
        self.bound: Expr = self.formula
        self.evaluated = 0
        self.pre_names = _layout(pre)
        self.post_names = _layout(post)
        self.pre_terms = _flat(pre)
        self.post_terms = _flat(post)
        self.post_index = {t.get_id(): k for k, t in enumerate(self.post_terms)}
        pre_index = {t.get_id(): k for k, t in enumerate(self.pre_terms)}
        # post terms that are pre terms too (the configuration constants): their pre value
        self.shared = [(k, pre_index[t.get_id()]) for k, t in enumerate(self.post_terms) if t.get_id() in pre_index]
        self.pre_values: list[Value] = []
        self._values: dict[tuple[bool, int], Expr] = {}
        self._pre_from = (z3.Ast * len(self.pre_terms))(*[t.as_ast() for t in self.pre_terms])
        self._pre_to = (z3.Ast * len(self.pre_terms))()
        self.solver_bound = False
        self.scratch = z3.Solver(ctx=self.ctx)
        shared = {k for k, _ in self.shared}
        self.free = [k for k in range(len(self.post_terms)) if k not in shared]
        """The post terms a step determines (not the configuration constants)."""
        self.params = params.created
        self.bools = [z3.is_bool(t) for t in self.post_terms]
        self._eqs: dict[tuple[int, Value], Expr] = {}
        self._neqs: dict[tuple[int, Value], Expr] = {}
        self._param_eqs: dict[tuple[str, Value], Expr] = {}
        self._post_eqs: dict[tuple[int, Value], Expr] = {}

    def bind(self, values: Values) -> None:
        """Fix the pre-state: substitute it into the step's formula (the solver gets it only
        when a query needs the solver)."""
        flat = _flatten(values, self.pre_names)
        self.pre_values = flat
        to = self._pre_to
        for k, v in enumerate(flat):
            to[k] = self._value(v)
        ref = self.ctx.ref()
        self.bound = z3.BoolRef(z3.Z3_substitute(ref, self.formula.as_ast(), len(flat), self._pre_from, to), self.ctx)
        self.solver_bound = False

    def _bind_solver(self) -> None:
        """Assert the pre-state in the solver (in a new scope)."""
        if self.solver_bound:
            return
        self.solver.push()
        self.solver_bound = True
        ref, raw = self.ctx.ref(), self.solver.solver
        for k, v in enumerate(self.pre_values):
            e = self._eqs.get((k, v))
            if e is None:
                e = self._eqs[(k, v)] = self.pre_terms[k] == _const(v)
            z3.Z3_solver_assert(ref, raw, e.as_ast())

    def unbind(self) -> None:
        if self.solver_bound:
            self.solver.pop()
            self.solver_bound = False

    def _value(self, v: Value) -> Any:
        """The (cached, kept alive) z3 constant of ``v``, as a raw AST."""
        key = (type(v) is bool, int(v))
        c = self._values.get(key)
        if c is None:
            c = self._values[key] = _const(v)
        return c.as_ast()

    def ask(self, params: Mapping[str, Value]) -> tuple[str, Values | None]:
        """What the step does from the bound pre-state with ``params``: ``("refused", None)``,
        ``("stepped", post)``, ``("ambiguous", posts)`` or ``("unknown", None)``."""
        answer, f = self._evaluate(params)
        if answer is not None:
            return answer
        return self._solve(f)

    def _evaluate(self, params: Mapping[str, Value]) -> tuple[tuple[str, Values | None] | None, Expr]:
        """The answer read off the step's formula with the pre-state and ``params`` substituted
        and simplified, when that decides it: ``False`` (refused, as the solver would find), or
        a conjunction of one equation per post-state term fixing it to a value (exactly one
        post-state). Otherwise (a free parameter, an auxiliary term) no answer, and the
        simplified formula for the solver."""
        ctx = self.ctx
        ref = ctx.ref()
        f = self.bound
        if params:
            n = len(params)
            src, dst = (z3.Ast * n)(), (z3.Ast * n)()
            for j, (pname, given) in enumerate(params.items()):
                term = self.params.get(pname)
                if term is None:
                    raise ValueError(f"the transition has no parameter {pname!r}")
                src[j] = term.as_ast()
                dst[j] = self._value(given)
            f = z3.BoolRef(z3.Z3_substitute(ref, f.as_ast(), n, src, dst), ctx)
        f = z3.BoolRef(z3.Z3_simplify(ref, f.as_ast()), ctx)
        a = f.as_ast()
        if _kind(ref, a) == z3.Z3_OP_FALSE:
            return ("refused", None), f
        index = self.post_index
        got: list[Value | None] = [None] * len(self.post_terms)
        for shared, j in self.shared:
            got[shared] = self.pre_values[j]
        if _kind(ref, a) == z3.Z3_OP_AND:
            app = z3.Z3_to_app(ref, a)
            conjuncts = [z3.Z3_get_app_arg(ref, app, i) for i in range(z3.Z3_get_app_num_args(ref, app))]
        else:
            conjuncts = [a]
        ast_id = z3.Z3_get_ast_id
        k: int | None
        for c in conjuncts:
            kind = _kind(ref, c)
            value: Value
            if kind == z3.Z3_OP_EQ:
                app = z3.Z3_to_app(ref, c)
                lhs, rhs = z3.Z3_get_app_arg(ref, app, 0), z3.Z3_get_app_arg(ref, app, 1)
                k = index.get(ast_id(ref, lhs))
                if k is None:
                    lhs, rhs = rhs, lhs
                    k = index.get(ast_id(ref, lhs))
                rkind = _kind(ref, rhs)
                if rkind == z3.Z3_OP_ANUM:
                    value = int(z3.Z3_get_numeral_string(ref, rhs))
                elif rkind in (z3.Z3_OP_TRUE, z3.Z3_OP_FALSE):
                    value = rkind == z3.Z3_OP_TRUE
                else:
                    return None, f
            elif kind == z3.Z3_OP_NOT:
                k = index.get(ast_id(ref, z3.Z3_get_app_arg(ref, z3.Z3_to_app(ref, c), 0)))
                value = False
            else:
                k = index.get(ast_id(ref, c))
                value = True
            if k is None or got[k] is not None:
                return None, f
            got[k] = value
        if any(v is None for v in got):
            return None, f
        return ("stepped", _unflatten(got, self.post_names)), f  # type: ignore[arg-type]

    def _solve(self, f: Expr) -> tuple[str, Values | None]:
        """Ask the scratch solver about ``f`` (the step's formula, pre-state and parameters
        substituted): refused (unsat), or its solution, and whether there is a second one."""
        s, ref, raw = self.scratch, self.ctx.ref(), self.scratch.solver
        s.push()
        try:
            z3.Z3_solver_assert(ref, raw, f.as_ast())
            res = s.check()
            if res == z3.unsat:
                return "refused", None
            if res != z3.sat:
                return "unknown", None
            got = self._read(s.model())
            others = []
            for k in self.free:
                v = got[k]
                e = self._neqs.get((k, v))
                if e is None:
                    e = self._neqs[(k, v)] = self.post_terms[k] != _const(v)
                others.append(e)
            disjuncts = (z3.Ast * len(others))(*[e.as_ast() for e in others])
            another = z3.BoolRef(z3.Z3_mk_or(ref, len(others), disjuncts), self.ctx)
            z3.Z3_solver_assert(ref, raw, another.as_ast())
            first = _unflatten(got, self.post_names)
            if s.check() == z3.sat:
                return "ambiguous", {"first": first, "second": _unflatten(self._read(s.model()), self.post_names)}
            return "stepped", first
        finally:
            s.pop()

    def admits(self, params: Mapping[str, Value], post: Values) -> bool:
        """Whether the bound pre-state, ``params`` and the post-state ``post`` satisfy the step."""
        self._bind_solver()
        s, ref, raw = self.solver, self.ctx.ref(), self.solver.solver
        s.push()
        try:
            for pname, value in params.items():
                z3.Z3_solver_assert(ref, raw, (self.params[pname] == _const(value)).as_ast())
            for k, v in enumerate(_flatten(post, self.post_names)):
                e = self._post_eqs.get((k, v))
                if e is None:
                    e = self._post_eqs[(k, v)] = self.post_terms[k] == _const(v)
                z3.Z3_solver_assert(ref, raw, e.as_ast())
            return bool(s.check() == z3.sat)
        finally:
            s.pop()

    def _read(self, model: Any) -> list[Value]:
        """The post-state in ``model`` (the configuration constants: their pre-state values)."""
        ref, raw = self.ctx.ref(), model.model
        out: list[Value] = []
        cell = (z3.Ast * 1)()
        for term, is_bool in zip(self.post_terms, self.bools, strict=True):
            z3.Z3_model_eval(ref, raw, term.as_ast(), True, cell)
            if is_bool:
                out.append(z3.Z3_get_bool_value(ref, cell[0]) == z3.Z3_L_TRUE)
            else:
                out.append(int(z3.Z3_get_numeral_string(ref, cell[0])))
        for k, j in self.shared:
            out[k] = self.pre_values[j]
        return out


Layout = list[tuple[str, int | None]]


def _layout(s: SymState) -> Layout:
    out: Layout = [(name, None) for name in s.scalar_names]
    out += [(name, j) for name in s.array_names for j in range(s.n)]
    return out


def _flat(s: SymState) -> list[Expr]:
    return [s[name] for name in s.scalar_names] + [t for name in s.array_names for t in s.ids(name)]


def _flatten(values: Values, layout: Layout) -> list[Value]:
    try:
        return [values[name] if j is None else values[name][j] for name, j in layout]
    except KeyError as exc:
        raise ValueError(f"the abstraction gives no value for {exc}") from None


def _unflatten(flat: list[Value], layout: Layout) -> Values:
    out: Values = {}
    for (name, j), v in zip(layout, flat, strict=True):
        if j is None:
            out[name] = v
        else:
            out.setdefault(name, []).append(v)
    return out


class _Oracle:
    """Answers "what does transition t do from this pre-state with these parameters"; the
    pre-state of the current model state is bound once per transition solver."""

    def __init__(self, encoding: SymbolicMachine) -> None:
        self.encoding = encoding
        self._queries: dict[str, _Query] = {}
        self._bound: list[_Query] = []
        self._pre: Values = {}
        self.queries = 0

    def start(self, pre: Values) -> None:
        """Bind ``pre`` for the queries that follow (until the next ``start``)."""
        for q in self._bound:
            q.unbind()
        self._bound = []
        self._pre = pre

    def _query(self, name: str) -> _Query:
        q = self._queries.get(name)
        if q is None:
            q = self._queries[name] = _Query(self.encoding, name)
        if q not in self._bound:
            q.bind(self._pre)
            self._bound.append(q)
        self.queries += 1
        return q

    def ask(self, name: str, params: Mapping[str, Value]) -> tuple[str, Values | None]:
        """``("refused", None)``, ``("stepped", post)`` or ``("ambiguous", posts)``."""
        return self._query(name).ask(params)

    def admits(self, name: str, params: Mapping[str, Value], post: Values) -> bool:
        """Whether transition ``name`` can step from the bound pre-state to ``post``."""
        return self._query(name).admits(params, post)


def _kind(ref: Any, a: Any) -> int:
    """The declaration kind of the raw AST ``a`` (``Z3_OP_UNINTERPRETED`` for a non-application)."""
    if z3.Z3_get_ast_kind(ref, a) == z3.Z3_NUMERAL_AST:
        return int(z3.Z3_OP_ANUM)
    if z3.Z3_get_ast_kind(ref, a) != z3.Z3_APP_AST:
        return int(z3.Z3_OP_UNINTERPRETED)
    return int(z3.Z3_get_decl_kind(ref, z3.Z3_get_app_decl(ref, z3.Z3_to_app(ref, a))))


def _const(v: Value) -> Expr:
    return z3.BoolVal(v) if isinstance(v, bool) else z3.IntVal(v)


def _changes(a: Values, b: Values) -> str:
    keys = [k for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]
    return ", ".join(f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in keys) or "(none)"


def compare(
    model: Machine[Any, Any],
    encoding: SymbolicMachine,
    abstraction: Abstraction,
    states: Iterable[Any],
    actions: Any = None,
    *,
    limit: int = 20,
) -> DifferentialReport:
    """Compare ``model`` with ``encoding`` on every state of ``states`` and every candidate action
    (``actions(state)``, default the model's ``probe_actions`` when it has them, else its
    ``actions``); stops collecting after ``limit`` drifts."""
    t0 = time.perf_counter()
    report = DifferentialReport(model.name)
    oracle = _Oracle(encoding)
    constants = abstraction.constants(model)
    propose = actions or getattr(model, "probe_actions", model.actions)
    seen: set[Hashable] = set()
    label = model.action_label
    for state in states:
        report.states += 1
        try:
            pre = {**abstraction.state(state), **constants}
        except NotEncoded:
            report.skipped += 1
            continue
        except Exception as exc:  # a malformed state: reported, never an abort
            report.drifts.append(Drift(repr(state), "-", f"the abstraction raised {type(exc).__name__}: {exc}", "-"))
            continue
        frozen_pre = _freeze(pre)
        oracle.start(pre)
        for action in propose(state):
            if len(report.drifts) >= limit:
                break
            report.pairs += 1
            try:
                result = model.step(state, action)
            except Exception as exc:
                report.drifts.append(Drift(repr(state), label(action), f"raised {type(exc).__name__}: {exc}", "-"))
                continue
            try:
                encoded = abstraction.action(action, state)
            except NotEncoded:
                report.skipped += 1
                continue
            except ValueError as exc:  # an action the abstraction does not know fails the check
                report.drifts.append(Drift(repr(state), label(action), str(exc), "-"))
                continue
            chosen = dict(encoded.constants)
            after = None
            if isinstance(result, Stepped):
                try:
                    after = abstraction.normalise({**abstraction.state(result.state), **constants, **chosen})
                except NotEncoded as exc:  # an encoded step must stay inside the encoding
                    report.drifts.append(
                        Drift(repr(state), label(action), f"{result.transition} to a state outside it: {exc}", "-")
                    )
                    continue
                except Exception as exc:  # a malformed successor: reported, never an abort
                    report.drifts.append(
                        Drift(repr(state), label(action), f"{result.transition}; the abstraction raised {exc!r}", "-")
                    )
                    continue
            expected: Hashable = (
                (result.transition, _freeze(after))
                if isinstance(result, Stepped) and after is not None
                else ("refused",)
            )
            key = (frozen_pre, encoded, expected)
            if key in seen:
                continue
            seen.add(key)
            if chosen:
                oracle.start({**pre, **chosen})
            if abstraction.simulation:
                drift = _simulates(oracle, encoded, result, pre, after)
            else:
                drift = _check(oracle, abstraction, encoded, result, after)
            if chosen:
                oracle.start(pre)
            if drift is not None:
                report.drifts.append(Drift(repr(state), label(action), drift[0], drift[1]))
        if len(report.drifts) >= limit:
            break
    oracle.start({})
    report.queries = oracle.queries
    report.seconds = time.perf_counter() - t0
    return report


def _check(
    oracle: _Oracle,
    abstraction: Abstraction,
    encoded: Encoded,
    result: Stepped[Any] | Rejected,
    after: Values | None,
) -> tuple[str, str] | None:
    """``None`` when the encoding agrees with ``result``, else (model side, encoding side)."""
    answers = []
    for cand in encoded.candidates:
        verdict, post = oracle.ask(cand.transition, dict(cand.params))
        if verdict != "refused":
            answers.append((cand.transition, verdict, post))
    if isinstance(result, Rejected):
        model_side = f"refused ({result.kind}: {result.detail})"
        if encoded.failed_write or not answers:
            return None
        return model_side, "; ".join(f"{t} {v}: {post}" for t, v, post in answers)
    assert after is not None
    model_side = f"{result.transition} to {after}"
    if len(answers) != 1:
        fired = ", ".join(f"{t} ({v})" for t, v, _ in answers) or "refused by every candidate"
        return model_side, f"{fired} (candidates {[c.transition for c in encoded.candidates]})"
    transition, verdict, post = answers[0]
    if verdict != "stepped" or post is None:
        return model_side, f"{transition} {verdict}: {post}"
    got = abstraction.normalise(post)
    if transition != result.transition or got != after:
        return model_side, f"{transition} to {got} (differs in {_changes(after, got)})"
    return None


def _simulates(
    oracle: _Oracle, encoded: Encoded, result: Stepped[Any] | Rejected, pre: Values, after: Values | None
) -> tuple[str, str] | None:
    """``None`` when the encoding admits the model's step (or the step changes nothing encoded,
    or the model refused), else (model side, encoding side)."""
    if isinstance(result, Rejected) or after is None or after == pre:
        return None
    for cand in encoded.candidates:
        if oracle.admits(cand.transition, dict(cand.params), after):
            return None
    names = [c.transition for c in encoded.candidates]
    return (
        f"{result.transition} to {after}",
        f"no candidate admits it (candidates {names}; changes {_changes(pre, after)})",
    )


def actions_of(*pairs: tuple[type, Sequence[str]]) -> dict[type, tuple[str, ...]]:
    """A table from action record class to the transitions it may stand for."""
    return {cls: tuple(names) for cls, names in pairs}


def run_differential(
    profile: str = "ci",
    machines: Sequence[str] | None = None,
    *,
    stride: int = 1,
    limit: int = 20,
    part: tuple[int, int] = (0, 1),
    models: Mapping[str, Callable[[Bounds], Machine[Any, Any]]] | None = None,
    encodings: Mapping[str, Callable[[int], SymbolicMachine]] | None = None,
) -> list[DifferentialReport]:
    """The differential check of every encoded machine (or ``machines``) on the reachable states
    of the catalog ``profile``: every ``stride``-th state in discovery order (1: all of them),
    and of those the ``k``-th of every ``n`` for ``part = (k, n)`` (the parts of one run are
    disjoint and cover it, so they can run in parallel). ``models`` and ``encodings`` replace
    the catalog's machine or encoding by name (a variant with a planted drift)."""
    from meerkat_model.catalog import MACHINES, PROFILES
    from meerkat_model.proofs.abstractions import ABSTRACTIONS
    from meerkat_model.proofs.runner import ENCODINGS

    if stride < 1:
        raise ValueError(f"stride must be at least 1, got {stride}")
    k, n = part
    if not 0 <= k < n:
        raise ValueError(f"part must be (k, n) with 0 <= k < n, got {part}")
    reports = []
    for name in machines or tuple(ENCODINGS):
        model = {**MACHINES, **(models or {})}[name](PROFILES[profile][name])
        abstraction = ABSTRACTIONS[name]()
        encoding = {**ENCODINGS, **(encodings or {})}[name](abstraction.ids(model))
        states = reachable_states(model)[::stride][k::n]
        with interruptible_queries():
            reports.append(compare(model, encoding, abstraction, states, limit=limit))
    return reports


_REACHABLE: dict[tuple[type, str], list[Any]] = {}


def reachable_states(model: Machine[Any, Any]) -> list[Any]:
    """Every state of ``model`` reachable under its bounds, in discovery order. Explored once
    per process for each catalog machine and bounds (the parts of one run share it)."""
    from meerkat_model.catalog import MACHINES
    from meerkat_model.verifier.explore import explore

    if type(model) not in set(MACHINES.values()):
        return explore(model).state_list
    key = (type(model), repr(getattr(model, "bounds", None)))
    found = _REACHABLE.get(key)
    if found is None:
        found = _REACHABLE[key] = explore(model).state_list
    return found


def render(reports: Sequence[DifferentialReport]) -> str:
    lines = []
    for r in reports:
        lines.append(
            f"differential {r.machine}: {r.states:,} states, {r.pairs:,} (state, action) pairs, {r.queries:,} "
            f"solver queries, {r.skipped:,} outside the encoding, {len(r.drifts)} drift(s) in {r.seconds:.1f} s"
        )
        lines.extend("  " + d.render().replace("\n", "\n  ") for d in r.drifts)
    return "\n".join(lines)
