"""z3 encoding of one session: the runtime control lifecycle plus the input lifecycle of ``n``
inputs (docs/semantics.md, "Session runtime").

Runtime scalars: ``phase`` (:class:`RuntimePhase`), ``reg`` (:class:`RegistrationPhase`),
``run`` (current run id, 0: none), ``pre_run`` (phase to return to, -1: none), ``next_run``
(fresh run ids), ``next_pos`` / ``front`` (fresh lane positions at the back / at the head).

Per input: ``iphase`` (-1: never accepted, else :class:`InputPhase`), ``lane`` (0: none,
1: queue, 2: steer), ``mode`` (the lane its handling mode sends it to), ``pos`` (its place in
the lane: the head has the smallest), ``attempts``, ``key`` (idempotency key, 0: none),
``scope`` (supersession scope: kind and key, 0: none) and ``in_run`` (run association).

Encoding choices: lanes are per-input values, so "in exactly one lane, once" holds by
construction and the proofs check that the lane agrees with the phase. The supersession
candidate and the lane position of a recovered input are chosen freely among the allowed ones
(the runtime's deterministic choice is one of them, so the proofs cover it). An executor
success (Staged → Applied → AppliedPendingConsumption → Consumed under one durable write) is
one step.
"""

from __future__ import annotations

from collections.abc import Callable

import z3

from meerkat_model.proofs.symbolic import (
    EntityView,
    Expr,
    FieldSpec,
    Params,
    StepFormula,
    StepProperty,
    SymbolicMachine,
    SymInvariant,
    SymState,
    SymTransition,
    all_ids,
    count,
    in_set,
    pairs,
    some_id,
)
from meerkat_model.vocab.statuses import MAX_STAGE_ATTEMPTS, InputPhase, RegistrationPhase, RuntimePhase

NONE = -1
INIT, IDLE, ATTACHED = int(RuntimePhase.INITIALIZING), int(RuntimePhase.IDLE), int(RuntimePhase.ATTACHED)
RUNNING, RETIRED = int(RuntimePhase.RUNNING), int(RuntimePhase.RETIRED)
STOPPED, DESTROYED = int(RuntimePhase.STOPPED), int(RuntimePhase.DESTROYED)
UNREG, QUEUING = int(RegistrationPhase.UNREGISTERED), int(RegistrationPhase.QUEUING)
ATTACHING, ACTIVE = int(RegistrationPhase.ATTACHING), int(RegistrationPhase.ACTIVE)

ACCEPTED, QUEUED, STAGED = int(InputPhase.ACCEPTED), int(InputPhase.QUEUED), int(InputPhase.STAGED)
APPLIED, APC = int(InputPhase.APPLIED), int(InputPhase.APPLIED_PENDING_CONSUMPTION)
CONSUMED, SUPERSEDED = int(InputPhase.CONSUMED), int(InputPhase.SUPERSEDED)
COALESCED, ABANDONED = int(InputPhase.COALESCED), int(InputPhase.ABANDONED)
IN_RUN_PHASES = (STAGED, APPLIED, APC)
NON_TERMINAL = (ACCEPTED, QUEUED, STAGED, APPLIED, APC)
TERMINAL = (CONSUMED, SUPERSEDED, COALESCED, ABANDONED)
NO_LANE, QUEUE_LANE, STEER_LANE = 0, 1, 2

PHASE_NAMES = {int(p): p.name.title() for p in RuntimePhase}
REG_NAMES = {int(p): p.name.title() for p in RegistrationPhase}
INPUT_NAMES = {NONE: "Absent"} | {int(p): p.name.title().replace("_", "") for p in InputPhase}
LANE_NAMES = {NO_LANE: "none", QUEUE_LANE: "queue", STEER_LANE: "steer"}

FIELDS = (
    FieldSpec("phase", "int"),
    FieldSpec("reg", "int"),
    FieldSpec("run", "int"),
    FieldSpec("pre_run", "int"),
    FieldSpec("next_run", "int"),
    FieldSpec("next_pos", "int"),
    FieldSpec("front", "int"),
    FieldSpec("iphase", "int", per_id=True),
    FieldSpec("lane", "int", per_id=True),
    FieldSpec("mode", "int", per_id=True),
    FieldSpec("pos", "int", per_id=True),
    FieldSpec("attempts", "int", per_id=True),
    FieldSpec("key", "int", per_id=True),
    FieldSpec("scope", "int", per_id=True),
    FieldSpec("in_run", "int", per_id=True),
)

Values = dict[str, list[Expr]]


def non_terminal(x: Expr) -> Expr:
    return z3.And(x >= ACCEPTED, x <= APC)


def tracked(x: Expr) -> Expr:
    return x != NONE


def _loop_idle(s: SymState) -> Expr:
    """The phase "Idle" stands for: Attached when a loop is attached, Idle otherwise."""
    return z3.If(s["reg"] == ACTIVE, z3.IntVal(ATTACHED), z3.IntVal(IDLE))


def _eqs(pre: SymState, post: SymState, values: Values, scalars: dict[str, Expr]) -> tuple[Expr, frozenset[str]]:
    eqs = [post.ids(name)[j] == vals[j] for name, vals in values.items() for j in range(pre.n)]
    eqs += [post[name] == value for name, value in scalars.items()]
    return z3.And(*eqs), frozenset(values) | frozenset(scalars)


def _abandon_all(pre: SymState) -> Values:
    """Every non-terminal input becomes Abandoned and leaves its lane."""
    ph = pre.ids("iphase")
    return {
        "iphase": [z3.If(non_terminal(ph[j]), ABANDONED, ph[j]) for j in range(pre.n)],
        "lane": [z3.IntVal(NO_LANE)] * pre.n,
    }


def _run_input(pre: SymState) -> list[Expr]:
    """Which input the current run holds (the one in a run phase)."""
    return [
        z3.And(in_set(pre.ids("iphase")[j], IN_RUN_PHASES), pre.ids("in_run")[j] == pre["run"]) for j in range(pre.n)
    ]


def _end_run(pre: SymState) -> dict[str, Expr]:
    return {"phase": pre["pre_run"], "run": z3.IntVal(0), "pre_run": z3.IntVal(NONE)}


# -- input transitions -------------------------------------------------------------------------


def accept_input(pre: SymState, post: SymState, p: Params) -> StepFormula:
    """A new input becomes Queued at the back of its lane; an older Queued input of the same
    supersession scope (``other``, when ``supersedes``) becomes Superseded or Coalesced."""
    n = pre.n
    k, other = p.int("id", 0, n), p.int("other", 0, n)
    key, scope, mode = p.int("key", 0), p.int("scope", 0), p.int("lane", QUEUE_LANE, STEER_LANE + 1)
    supersedes, coalesce = p.bool("supersedes"), p.bool("coalesce")
    ph, keys = pre.ids("iphase"), pre.ids("key")
    candidate = z3.And(
        other != k, z3.Or(*(z3.And(other == j, ph[j] == QUEUED, pre.ids("scope")[j] == scope) for j in range(n)))
    )
    guard = z3.And(
        in_set(pre["phase"], (IDLE, ATTACHED, RUNNING)),
        z3.Or(*(z3.And(k == j, ph[j] == NONE) for j in range(n))),
        z3.Implies(key != 0, all_ids(n, lambda j: keys[j] != key)),
        z3.Implies(supersedes, z3.And(scope != 0, candidate)),
        # without supersession there is no candidate to supersede
        z3.Implies(
            z3.Not(supersedes),
            z3.Or(scope == 0, z3.Not(some_id(n, lambda j: z3.And(ph[j] == QUEUED, pre.ids("scope")[j] == scope)))),
        ),
    )
    old_phase = z3.If(coalesce, COALESCED, SUPERSEDED)
    displaced = [z3.And(supersedes, other == j) for j in range(n)]
    values: Values = {
        "iphase": [z3.If(k == j, QUEUED, z3.If(displaced[j], old_phase, ph[j])) for j in range(n)],
        "lane": [z3.If(k == j, mode, z3.If(displaced[j], NO_LANE, pre.ids("lane")[j])) for j in range(n)],
        "mode": [z3.If(k == j, mode, pre.ids("mode")[j]) for j in range(n)],
        "pos": [z3.If(k == j, pre["next_pos"], pre.ids("pos")[j]) for j in range(n)],
        "attempts": [z3.If(k == j, 0, pre.ids("attempts")[j]) for j in range(n)],
        "key": [z3.If(k == j, key, keys[j]) for j in range(n)],
        "scope": [z3.If(k == j, scope, pre.ids("scope")[j]) for j in range(n)],
        "in_run": [z3.If(k == j, 0, pre.ids("in_run")[j]) for j in range(n)],
    }
    effect, writes = _eqs(pre, post, values, {"next_pos": pre["next_pos"] + 1})
    return StepFormula(guard, effect, writes)


def start_run(pre: SymState, post: SymState, p: Params) -> StepFormula:
    """With a loop attached and no run in flight, the head input (steer lane first) is staged
    for a fresh run; the phase becomes Running, remembering the pre-run phase."""
    n = pre.n
    k = p.int("id", 0, n)
    lane, pos = pre.ids("lane"), pre.ids("pos")
    head = z3.Or(
        *(
            z3.And(
                k == j,
                pre.ids("iphase")[j] == QUEUED,
                lane[j] != NO_LANE,
                z3.Implies(lane[j] == QUEUE_LANE, z3.And(*(lane[i] != STEER_LANE for i in range(n)))),
                z3.And(*(z3.Implies(lane[i] == lane[j], pos[i] >= pos[j]) for i in range(n))),
            )
            for j in range(n)
        )
    )
    guard = z3.And(in_set(pre["phase"], (ATTACHED, RETIRED)), pre["reg"] == ACTIVE, pre["run"] == 0, head)
    values: Values = {
        "iphase": [z3.If(k == j, STAGED, pre.ids("iphase")[j]) for j in range(n)],
        "lane": [z3.If(k == j, NO_LANE, lane[j]) for j in range(n)],
        "attempts": [z3.If(k == j, pre.ids("attempts")[j] + 1, pre.ids("attempts")[j]) for j in range(n)],
        "in_run": [z3.If(k == j, pre["next_run"], pre.ids("in_run")[j]) for j in range(n)],
    }
    scalars = {
        "phase": z3.IntVal(RUNNING),
        "pre_run": pre["phase"],
        "run": pre["next_run"],
        "next_run": pre["next_run"] + 1,
    }
    effect, writes = _eqs(pre, post, values, scalars)
    return StepFormula(guard, effect, writes)


def _run_end(
    on_input: Callable[[SymState, int], dict[str, Expr]],
    extra: Callable[[SymState], dict[str, Expr]],
    when: Callable[[SymState, int], Expr] | None = None,
) -> Callable[[SymState, SymState, Params], StepFormula]:
    """A run ends: ``on_input`` gives the new fields of the run's input (``iphase``, ``lane``,
    ``pos``, ``attempts``); ``extra`` the runtime scalars; ``when`` an extra guard on the input."""

    def build(pre: SymState, post: SymState, p: Params) -> StepFormula:
        n = pre.n
        mine = _run_input(pre)
        cond = (lambda j: mine[j]) if when is None else (lambda j: z3.And(mine[j], when(pre, j)))
        guard = z3.And(pre["run"] != 0, in_set(pre["phase"], (RUNNING, RETIRED)), some_id(n, cond))
        values: Values = {}
        for j in range(n):
            changes = on_input(pre, j)
            for name in ("iphase", "lane", "pos", "attempts"):
                current = pre.ids(name)[j]
                values.setdefault(name, []).append(z3.If(mine[j], changes.get(name, current), current))
        scalars = extra(pre)
        scalars.setdefault("next_pos", pre["next_pos"] + 1)
        scalars.setdefault("front", pre["front"])
        effect, writes = _eqs(pre, post, values, scalars)
        return StepFormula(guard, effect, writes)

    return build


def _succeeded(pre: SymState, j: int) -> dict[str, Expr]:
    return {"iphase": z3.IntVal(CONSUMED)}


def _failed(pre: SymState, j: int) -> dict[str, Expr]:
    """Back of its lane, attempts kept."""
    return {"iphase": z3.IntVal(QUEUED), "lane": pre.ids("mode")[j], "pos": pre["next_pos"]}


def _exhausted(pre: SymState, j: int) -> dict[str, Expr]:
    return {"iphase": z3.IntVal(ABANDONED)}


def _below_limit(pre: SymState, j: int) -> Expr:
    return pre.ids("attempts")[j] < MAX_STAGE_ATTEMPTS


def _at_limit(pre: SymState, j: int) -> Expr:
    return pre.ids("attempts")[j] >= MAX_STAGE_ATTEMPTS


def _requeued(pre: SymState, j: int) -> dict[str, Expr]:
    """Nothing was written: head of its lane, the attempt not counted."""
    return {
        "iphase": z3.IntVal(QUEUED),
        "lane": pre.ids("mode")[j],
        "pos": pre["front"],
        "attempts": pre.ids("attempts")[j] - 1,
    }


def _cancelled(pre: SymState, j: int) -> dict[str, Expr]:
    return {"iphase": z3.IntVal(ABANDONED)}


def _commit_failed(pre: SymState) -> dict[str, Expr]:
    return {
        "phase": z3.IntVal(IDLE),
        "reg": z3.IntVal(QUEUING),
        "run": z3.IntVal(0),
        "pre_run": z3.IntVal(NONE),
        "next_pos": pre["next_pos"],
        "front": pre["front"] - 1,
    }


def _no_pos(extra: Callable[[SymState], dict[str, Expr]]) -> Callable[[SymState], dict[str, Expr]]:
    """``extra`` for a run end that puts nothing back into a lane."""

    def scalars(pre: SymState) -> dict[str, Expr]:
        return {**extra(pre), "next_pos": pre["next_pos"]}

    return scalars


# -- runtime control ---------------------------------------------------------------------------


def _control(
    guard: Callable[[SymState], Expr],
    scalars: Callable[[SymState], dict[str, Expr]],
    inputs: Callable[[SymState], Values] | None,
) -> Callable[[SymState, SymState, Params], StepFormula]:
    def build(pre: SymState, post: SymState, p: Params) -> StepFormula:
        values = inputs(pre) if inputs is not None else {}
        effect, writes = _eqs(pre, post, values, scalars(pre))
        return StepFormula(guard(pre), effect, writes)

    return build


def _retire_scalars(s: SymState) -> dict[str, Expr]:
    in_flight = s["run"] != 0
    return {"phase": z3.IntVal(RETIRED), "pre_run": z3.If(in_flight, z3.IntVal(RETIRED), s["pre_run"])}


def _retire_inputs(s: SymState) -> Values:
    """Without a loop every non-terminal input is abandoned; with one, they keep draining."""
    ph, lane = s.ids("iphase"), s.ids("lane")
    loop = s["reg"] == ACTIVE
    return {
        "iphase": [z3.If(z3.And(z3.Not(loop), non_terminal(ph[j])), ABANDONED, ph[j]) for j in range(s.n)],
        "lane": [z3.If(loop, lane[j], NO_LANE) for j in range(s.n)],
    }


def _detached(phase: int) -> Callable[[SymState], dict[str, Expr]]:
    def scalars(s: SymState) -> dict[str, Expr]:
        reg = z3.If(s["reg"] == UNREG, z3.IntVal(UNREG), z3.IntVal(QUEUING))
        return {"phase": z3.IntVal(phase), "reg": reg, "run": z3.IntVal(0), "pre_run": z3.IntVal(NONE)}

    return scalars


def _resting(s: SymState) -> Expr:
    """The phase the store holds: a run is not persisted, Attached is written as Idle."""
    ph = s["phase"]
    resting = z3.If(ph == RUNNING, s["pre_run"], ph)
    return z3.If(z3.Or(resting == ATTACHED, resting == INIT), z3.IntVal(IDLE), resting)


def crash_recover(resting: tuple[int, ...]) -> Callable[[SymState, SymState, Params], StepFormula]:
    """Restart from the store when the stored phase is in ``resting``: that phase, no loop, no
    run; the staged input comes back Queued with the attempt not counted (the stage was never
    written; lane position chosen freely); terminal inputs and keys kept. (A Stopped session
    restarts exactly as it was: that case is a no-op and omitted.)"""

    def build(pre: SymState, post: SymState, p: Params) -> StepFormula:
        step = _crash_recover(pre, post, p)
        return StepFormula(z3.And(step.guard, in_set(_resting(pre), resting)), step.effect, step.writes)

    return build


def _crash_recover(pre: SymState, post: SymState, p: Params) -> StepFormula:
    n = pre.n
    ph = pre["phase"]
    phase = _resting(pre)
    mine = _run_input(pre)
    fresh = [p.int(f"pos[{j}]") for j in range(n)]
    for j in range(n):
        p.domain.append(z3.And(fresh[j] > pre["front"], fresh[j] < pre["next_pos"]))
    for i, j in pairs(n):
        p.domain.append(z3.Implies(z3.And(mine[i], pre.ids("lane")[j] != NO_LANE), fresh[i] != pre.ids("pos")[j]))
        p.domain.append(z3.Implies(z3.And(mine[j], pre.ids("lane")[i] != NO_LANE), fresh[j] != pre.ids("pos")[i]))
    values: Values = {
        "iphase": [z3.If(mine[j], QUEUED, pre.ids("iphase")[j]) for j in range(n)],
        "lane": [z3.If(mine[j], pre.ids("mode")[j], pre.ids("lane")[j]) for j in range(n)],
        "pos": [z3.If(mine[j], fresh[j], pre.ids("pos")[j]) for j in range(n)],
        "attempts": [z3.If(mine[j], pre.ids("attempts")[j] - 1, pre.ids("attempts")[j]) for j in range(n)],
    }
    scalars = {"phase": phase, "reg": z3.IntVal(QUEUING), "run": z3.IntVal(0), "pre_run": z3.IntVal(NONE)}
    effect, writes = _eqs(pre, post, values, scalars)
    guard = z3.And(ph != DESTROYED, pre["reg"] != UNREG)
    return StepFormula(guard, effect, writes)


ALL_PHASES = tuple(int(p) for p in RuntimePhase)


def _pn(*codes: int) -> tuple[str, ...]:
    return tuple(PHASE_NAMES[c] for c in codes)


def _in(*codes: int) -> tuple[str, ...]:
    return tuple(INPUT_NAMES[c] for c in codes)


def not_running(s: SymState) -> Expr:
    return s["run"] == 0


def session_transitions() -> tuple[SymTransition, ...]:
    rt, inp = "runtime", "input"
    return (
        SymTransition(
            "register_session",
            rt,
            _pn(INIT),
            "Idle",
            _control(
                lambda s: z3.And(s["phase"] == INIT, s["reg"] == UNREG),
                lambda s: {"phase": z3.IntVal(IDLE), "reg": z3.IntVal(QUEUING)},
                None,
            ),
        ),
        SymTransition(
            "attach_loop",
            rt,
            _pn(IDLE),
            "Attached",
            _control(
                lambda s: z3.And(s["phase"] == IDLE, s["reg"] == QUEUING),
                lambda s: {"phase": z3.IntVal(ATTACHED), "reg": z3.IntVal(ACTIVE)},
                None,
            ),
        ),
        SymTransition("accept_input", inp, _in(NONE), "Queued", accept_input),
        SymTransition("start_run", inp, _in(QUEUED), "Staged", start_run),
        SymTransition("executor_succeeded", inp, _in(STAGED), "Consumed", _run_end(_succeeded, _no_pos(_end_run))),
        SymTransition("executor_failed", inp, _in(STAGED), "Queued", _run_end(_failed, _end_run, _below_limit)),
        SymTransition(
            "executor_failed_exhausted",
            inp,
            _in(STAGED),
            "Abandoned",
            _run_end(_exhausted, _no_pos(_end_run), _at_limit),
        ),
        SymTransition("boundary_commit_failed", inp, _in(STAGED), "Queued", _run_end(_requeued, _commit_failed)),
        SymTransition("interrupt", inp, _in(STAGED), "Abandoned", _run_end(_cancelled, _no_pos(_end_run))),
        SymTransition(
            "retire_runtime",
            rt,
            _pn(IDLE, ATTACHED, RUNNING, RETIRED),
            "Retired",
            _control(lambda s: in_set(s["phase"], (IDLE, ATTACHED, RUNNING, RETIRED)), _retire_scalars, _retire_inputs),
        ),
        SymTransition(
            "reset",
            rt,
            _pn(INIT, IDLE, RETIRED),
            "Idle",
            _control(
                lambda s: z3.And(not_running(s), s["reg"] != ACTIVE, in_set(s["phase"], (INIT, IDLE, RETIRED))),
                lambda s: {"phase": z3.IntVal(IDLE)},
                _abandon_all,
            ),
        ),
        SymTransition(
            "reset_with_loop",
            rt,
            _pn(ATTACHED, RETIRED),
            "Attached",
            _control(
                lambda s: z3.And(not_running(s), s["reg"] == ACTIVE, in_set(s["phase"], (ATTACHED, RETIRED))),
                lambda s: {"phase": z3.IntVal(ATTACHED)},
                _abandon_all,
            ),
        ),
        SymTransition(
            "recycle",
            rt,
            _pn(IDLE, RETIRED),
            "Idle",
            _control(
                lambda s: z3.And(not_running(s), s["reg"] != ACTIVE, in_set(s["phase"], (IDLE, RETIRED))),
                lambda s: {"phase": z3.IntVal(IDLE)},
                None,
            ),
        ),
        SymTransition(
            "recycle_with_loop",
            rt,
            _pn(ATTACHED, RETIRED),
            "Attached",
            _control(
                lambda s: z3.And(not_running(s), s["reg"] == ACTIVE, in_set(s["phase"], (ATTACHED, RETIRED))),
                lambda s: {"phase": z3.IntVal(ATTACHED)},
                None,
            ),
        ),
        SymTransition(
            "stop_runtime",
            rt,
            _pn(INIT, IDLE, ATTACHED, RUNNING, RETIRED),
            "Stopped",
            _control(
                lambda s: in_set(s["phase"], (INIT, IDLE, ATTACHED, RUNNING, RETIRED)), _detached(STOPPED), _abandon_all
            ),
        ),
        SymTransition(
            "destroy_runtime",
            rt,
            _pn(INIT, IDLE, ATTACHED, RUNNING, RETIRED, STOPPED),
            "Destroyed",
            _control(lambda s: s["phase"] != DESTROYED, _detached(DESTROYED), _abandon_all),
        ),
        SymTransition("crash_recover", rt, _pn(INIT, IDLE, ATTACHED, RUNNING), "Idle", crash_recover((IDLE,))),
        SymTransition("crash_recover_retired", rt, _pn(RUNNING, RETIRED), "Retired", crash_recover((RETIRED,))),
    )


# -- invariants --------------------------------------------------------------------------------


def _per_id(name: str, description: str, body: Callable[[SymState, int], Expr]) -> SymInvariant:
    return SymInvariant(name, description, lambda s: all_ids(s.n, lambda j: body(s, j)), body)


def _typed(s: SymState, j: int) -> Expr:
    return z3.And(
        s.ids("iphase")[j] >= NONE,
        s.ids("iphase")[j] <= ABANDONED,
        in_set(s.ids("lane")[j], (NO_LANE, QUEUE_LANE, STEER_LANE)),
        z3.Implies(tracked(s.ids("iphase")[j]), in_set(s.ids("mode")[j], (QUEUE_LANE, STEER_LANE))),
        s.ids("key")[j] >= 0,
        s.ids("in_run")[j] >= 0,
        s.ids("in_run")[j] < s["next_run"],
    )


def _untracked_clean(s: SymState, j: int) -> Expr:
    return z3.Implies(
        z3.Not(tracked(s.ids("iphase")[j])),
        z3.And(s.ids("lane")[j] == NO_LANE, s.ids("key")[j] == 0, s.ids("in_run")[j] == 0),
    )


def _queued_in_lane(s: SymState, j: int) -> Expr:
    lane = s.ids("lane")[j]
    return z3.And(
        (s.ids("iphase")[j] == QUEUED) == (lane != NO_LANE), z3.Implies(lane != NO_LANE, lane == s.ids("mode")[j])
    )


def _lane_positions(s: SymState) -> Expr:
    lane, pos = s.ids("lane"), s.ids("pos")
    below = all_ids(s.n, lambda j: z3.Implies(lane[j] != NO_LANE, z3.And(pos[j] > s["front"], pos[j] < s["next_pos"])))
    distinct = z3.And(
        *(z3.Implies(z3.And(lane[i] != NO_LANE, lane[i] == lane[j]), pos[i] != pos[j]) for i, j in pairs(s.n))
    )
    return z3.And(below, distinct)


def _in_current_run(s: SymState, j: int) -> Expr:
    return z3.Implies(in_set(s.ids("iphase")[j], IN_RUN_PHASES), z3.And(s["run"] != 0, s.ids("in_run")[j] == s["run"]))


def _in_run_phase(s: SymState, j: int) -> Expr:
    return in_set(s.ids("iphase")[j], IN_RUN_PHASES)


def _run_has_one_input(s: SymState) -> Expr:
    return count([in_set(x, IN_RUN_PHASES) for x in s.ids("iphase")]) == z3.If(s["run"] != 0, 1, 0)


def _attempts(s: SymState, j: int) -> Expr:
    ph, att = s.ids("iphase")[j], s.ids("attempts")[j]
    return z3.And(
        att >= 0,
        z3.Implies(ph == QUEUED, att < MAX_STAGE_ATTEMPTS),
        z3.Implies(ph == STAGED, z3.And(att >= 1, att <= MAX_STAGE_ATTEMPTS)),
    )


def _at_rest(s: SymState, j: int) -> Expr:
    return z3.Not(in_set(s.ids("iphase")[j], (ACCEPTED, APPLIED, APC)))


def _keys_unique(s: SymState) -> Expr:
    key = s.ids("key")
    return z3.And(*(z3.Implies(key[i] != 0, key[i] != key[j]) for i, j in pairs(s.n)))


def _one_live_per_key(s: SymState) -> Expr:
    key, ph = s.ids("key"), s.ids("iphase")
    return z3.And(
        *(
            z3.Implies(z3.And(key[i] != 0, key[i] == key[j]), z3.Not(z3.And(non_terminal(ph[i]), non_terminal(ph[j]))))
            for i, j in pairs(s.n)
        )
    )


def _quiet_when_closed(s: SymState, j: int) -> Expr:
    return z3.Implies(in_set(s["phase"], (INIT, STOPPED, DESTROYED)), z3.Not(non_terminal(s.ids("iphase")[j])))


def _runtime_typed(s: SymState) -> Expr:
    return z3.And(
        in_set(s["phase"], ALL_PHASES),
        in_set(s["reg"], tuple(REG_NAMES)),
        s["run"] >= 0,
        s["next_run"] >= 1,
        s["run"] < s["next_run"],
        s["next_pos"] >= 0,
        s["front"] < 0,
    )


def _running_has_run(s: SymState) -> Expr:
    return z3.And(z3.Implies(s["phase"] == RUNNING, s["run"] != 0), z3.Implies(s["run"] != 0, s["reg"] == ACTIVE))


def _run_phase(s: SymState) -> Expr:
    with_run = z3.And(in_set(s["phase"], (RUNNING, RETIRED)), in_set(s["pre_run"], (ATTACHED, RETIRED)))
    return z3.If(s["run"] != 0, with_run, s["pre_run"] == NONE)


def _loop_phase(s: SymState) -> Expr:
    return z3.And(
        z3.Implies(s["phase"] == ATTACHED, s["reg"] == ACTIVE), z3.Implies(s["phase"] == IDLE, s["reg"] != ACTIVE)
    )


def session_invariants() -> tuple[SymInvariant, ...]:
    return (
        SymInvariant("runtime.typed", "phases and counters take declared values", _runtime_typed),
        SymInvariant(
            "runtime.running_has_run", "Running ⇒ a current run; a current run ⇒ a loop attached", _running_has_run
        ),
        SymInvariant(
            "runtime.run_phase",
            "current run ⇒ Running or Retired with a pre-run phase; no run ⇒ no pre-run phase",
            _run_phase,
        ),
        SymInvariant("runtime.loop_phase", "Attached ⇔ loop attached (while idle)", _loop_phase),
        _per_id("input.typed", "phases, lanes, attempts and run associations take declared values", _typed),
        _per_id("input.untracked_is_clean", "an input never accepted has no lane, key or run", _untracked_clean),
        _per_id("input.queued_in_lane", "Queued ⇔ in a lane (the one of its handling mode)", _queued_in_lane),
        SymInvariant(
            "input.lane_positions",
            "lane positions are distinct and between the head and back counters",
            _lane_positions,
        ),
        _per_id("input.in_current_run", "staged/applied inputs belong to the current run", _in_current_run),
        SymInvariant(
            "input.one_per_run",
            "a current run holds exactly one input; no run holds none",
            _run_has_one_input,
            counted=(_in_run_phase,),
        ),
        _per_id(
            "input.at_rest",
            "Accepted, Applied and AppliedPendingConsumption exist only inside one durable step",
            _at_rest,
        ),
        _per_id("input.attempts", "Queued ⇒ attempts < 3; Staged ⇒ 1 ≤ attempts ≤ 3", _attempts),
        SymInvariant("input.idempotency_keys_unique", "an idempotency key names at most one input", _keys_unique),
        SymInvariant("input.one_live_per_key", "idempotency key ⇒ at most one non-terminal input", _one_live_per_key),
        _per_id(
            "input.quiet_when_closed", "Initializing/Stopped/Destroyed ⇒ no non-terminal input", _quiet_when_closed
        ),
    )


def session_step_properties() -> tuple[StepProperty, ...]:
    def destroyed(pre: SymState, post: SymState) -> Expr:
        return z3.Implies(pre["phase"] == DESTROYED, post["phase"] == DESTROYED)

    def terminal_inputs(pre: SymState, post: SymState) -> Expr:
        return all_ids(
            pre.n,
            lambda j: z3.Implies(
                z3.Not(z3.Or(non_terminal(pre.ids("iphase")[j]), pre.ids("iphase")[j] == NONE)),
                post.ids("iphase")[j] == pre.ids("iphase")[j],
            ),
        )

    return (
        StepProperty("runtime.destroyed_absorbing", "Destroyed is never left", destroyed),
        StepProperty("input.terminal_absorbing", "a terminal input phase is never left", terminal_inputs),
    )


def _initial(s: SymState) -> Expr:
    blank = all_ids(
        s.n,
        lambda j: z3.And(
            s.ids("iphase")[j] == NONE,
            s.ids("lane")[j] == NO_LANE,
            s.ids("attempts")[j] == 0,
            s.ids("key")[j] == 0,
            s.ids("scope")[j] == 0,
            s.ids("in_run")[j] == 0,
            s.ids("pos")[j] == 0,
            s.ids("mode")[j] == QUEUE_LANE,
        ),
    )
    return z3.And(
        blank,
        s["phase"] == INIT,
        s["reg"] == UNREG,
        s["run"] == 0,
        s["pre_run"] == NONE,
        s["next_run"] == 1,
        s["next_pos"] == 0,
        s["front"] == -1,
    )


def build_session_machine(n: int, transitions: tuple[SymTransition, ...] | None = None) -> SymbolicMachine:
    """One session with ``n`` inputs. ``transitions`` replaces the declared rows."""
    if n < 1:
        raise ValueError(f"need at least one input id, got {n}")
    return SymbolicMachine(
        name="session",
        n=n,
        fields=FIELDS,
        initial=_initial,
        domain=lambda s: z3.BoolVal(True),
        transitions=session_transitions() if transitions is None else transitions,
        invariants=session_invariants(),
        step_properties=session_step_properties(),
        labels={
            "phase": PHASE_NAMES,
            "pre_run": {NONE: "None"} | PHASE_NAMES,
            "reg": REG_NAMES,
            "iphase": INPUT_NAMES,
            "lane": LANE_NAMES,
            "mode": LANE_NAMES,
        },
        entities={
            "input": EntityView(True, lambda s, j: s.ids("iphase")[j], INPUT_NAMES),
            "runtime": EntityView(False, lambda s, _j: s["phase"], PHASE_NAMES),
        },
    )
