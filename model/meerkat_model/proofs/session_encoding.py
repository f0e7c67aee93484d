"""z3 encoding of one session: the input lifecycle of ``n`` inputs, the runtime control
lifecycle and the registration of the session in memory, transition for transition as the
executable model declares them (``meerkat_model.session``, docs/model-session.md).

Runtime scalars: ``phase`` (:class:`RuntimePhase`), ``reg`` (:class:`RegistrationPhase`),
``run`` (current run id, 0: none), ``pre_run`` (phase the run started from, -1: none),
``next_run`` (fresh run ids), ``next_pos`` / ``front`` (fresh lane positions at the back / at
the head).

Constants (configuration, the same in every state of a run): ``max_attempts`` (the retry
policy's attempt limit, the model's ``max_attempts`` bound: any value >= 1, so each proof holds
for every limit) and ``fatal_errors`` (whether a run may fail with an error that is not retried:
the model's ``fatal_errors`` bound; such a failure abandons the input at once, its attempts
raised to the limit).

Per input: ``iphase`` (-1: never accepted, else :class:`InputPhase`), ``lane`` (0: none,
1: queue, 2: steer), ``mode`` (the lane it was accepted for), ``pos`` (its place in the lane:
the head has the smallest), ``attempts``, ``key`` (idempotency key, 0: none), ``scope``
(supersession key, 0: none) and ``in_run`` (run association).

A run ``accept_input_and_run`` started (a *direct* run) has pre-run phase Idle; it needs no
loop, and when it ends with no loop attached the runtime returns to Idle (``*_without_loop``).

Encoding choices: lanes are per-input values, so "in exactly one lane, once" holds by
construction and the proofs check that the lane agrees with the phase. While the session is not
registered (``reg`` Unregistered) the runtime and input fields hold what registering would
recover from the store: a crash, an unregistration or a failed terminal snapshot applies the
recovery rules at once (the stored phase — Attached is stored as Idle, a run is not stored —, the
run's input Queued again at the head of its lane with the attempt not counted), and ``register``
then only claims the registration. The supersession candidate is the model's: the first Queued input
with the key, queue lane first, then lane order. An executor success
(Staged → Applied → AppliedPendingConsumption → Consumed under one durable write) is one step.
Not encoded: ephemeral inputs (dropped on recovery), completion handles and the store's rows
(the model's verifier checks those exhaustively for small bounds).
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
    per_id_invariant,
    some_id,
)
from meerkat_model.vocab.statuses import InputPhase, RegistrationPhase, RuntimePhase

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
ACCEPTING = (IDLE, ATTACHED, RUNNING)

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
    FieldSpec("max_attempts", "int", constant=True),
    FieldSpec("fatal_errors", "bool", constant=True),
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
Scalars = dict[str, Expr]
Builder = Callable[[SymState, SymState, Params], StepFormula]


def non_terminal(x: Expr) -> Expr:
    return z3.And(x >= ACCEPTED, x <= APC)


def tracked(x: Expr) -> Expr:
    return x != NONE


def registered(s: SymState) -> Expr:
    return s["reg"] != UNREG


def with_loop(s: SymState) -> Expr:
    return s["reg"] == ACTIVE


def _eqs(pre: SymState, post: SymState, values: Values, scalars: Scalars) -> tuple[Expr, frozenset[str]]:
    eqs = [post.ids(name)[j] == vals[j] for name, vals in values.items() for j in range(pre.n)]
    eqs += [post[name] == value for name, value in scalars.items()]
    return z3.And(*eqs), frozenset(values) | frozenset(scalars)


def _step(
    guard: Callable[[SymState], Expr],
    scalars: Callable[[SymState], Scalars] | None = None,
    inputs: Callable[[SymState], Values] | None = None,
) -> Builder:
    """A step without parameters: ``guard``, new runtime scalars, new per-input fields."""

    def build(pre: SymState, post: SymState, p: Params) -> StepFormula:
        values = inputs(pre) if inputs is not None else {}
        effect, writes = _eqs(pre, post, values, scalars(pre) if scalars is not None else {})
        return StepFormula(guard(pre), effect, writes)

    return build


def _run_input(pre: SymState) -> list[Expr]:
    """Which input the current run holds (the one in a run phase)."""
    return [
        z3.And(in_set(pre.ids("iphase")[j], IN_RUN_PHASES), pre.ids("in_run")[j] == pre["run"]) for j in range(pre.n)
    ]


# -- admission ---------------------------------------------------------------------------------


def _admits(pre: SymState, k: Expr) -> Expr:
    """Registered, the phase takes input, and ``k`` names an input id never accepted."""
    ph = pre.ids("iphase")
    return z3.And(
        registered(pre), in_set(pre["phase"], ACCEPTING), z3.Or(*(z3.And(k == j, ph[j] == NONE) for j in range(pre.n)))
    )


def _key_used(pre: SymState, key: Expr) -> Expr:
    keys = pre.ids("key")
    return z3.And(key != 0, some_id(pre.n, lambda j: z3.And(tracked(pre.ids("iphase")[j]), keys[j] == key)))


def accept(replaced: int | None) -> Builder:
    """A new input (``id``) becomes Queued at the back of its lane. With ``replaced`` (Superseded
    or Coalesced) an older Queued input with the same supersession key (``other``) takes that
    phase and leaves its lane; without, no Queued input has the key."""

    def build(pre: SymState, post: SymState, p: Params) -> StepFormula:
        n = pre.n
        k = p.int("id", 0, n)
        key, scope, mode = p.int("key", 0), p.int("scope", 0), p.int("lane", QUEUE_LANE, STEER_LANE + 1)
        ph, scopes = pre.ids("iphase"), pre.ids("scope")

        def candidate(j: int) -> Expr:
            return z3.And(scope != 0, ph[j] == QUEUED, scopes[j] == scope)

        if replaced is None:
            other = z3.IntVal(NONE)
            choice = z3.Not(some_id(n, candidate))
        else:
            other = p.int("other", 0, n)
            lane, pos = pre.ids("lane"), pre.ids("pos")

            def first(j: int) -> Expr:
                """``j`` is a candidate and none comes before it: queue lane first, then lane order."""
                ahead = [
                    z3.And(
                        candidate(i),
                        z3.Or(
                            z3.And(lane[i] == QUEUE_LANE, lane[j] == STEER_LANE),
                            z3.And(lane[i] == lane[j], pos[i] < pos[j]),
                        ),
                    )
                    for i in range(n)
                    if i != j
                ]
                return z3.And(candidate(j), z3.Not(z3.Or(*ahead)) if ahead else z3.BoolVal(True))

            choice = z3.And(other != k, z3.Or(*(z3.And(other == j, first(j)) for j in range(n))))
        guard = z3.And(_admits(pre, k), z3.Not(_key_used(pre, key)), choice)
        displaced = [other == j for j in range(n)]
        old_phase = z3.IntVal(QUEUED if replaced is None else replaced)
        values: Values = {
            "iphase": [z3.If(k == j, QUEUED, z3.If(displaced[j], old_phase, ph[j])) for j in range(n)],
            "lane": [z3.If(k == j, mode, z3.If(displaced[j], NO_LANE, pre.ids("lane")[j])) for j in range(n)],
            "mode": [z3.If(k == j, mode, pre.ids("mode")[j]) for j in range(n)],
            "pos": [z3.If(k == j, pre["next_pos"], pre.ids("pos")[j]) for j in range(n)],
            "attempts": [z3.If(k == j, 0, pre.ids("attempts")[j]) for j in range(n)],
            "key": [z3.If(k == j, key, pre.ids("key")[j]) for j in range(n)],
            "scope": [z3.If(k == j, scope, scopes[j]) for j in range(n)],
            "in_run": [z3.If(k == j, 0, pre.ids("in_run")[j]) for j in range(n)],
        }
        effect, writes = _eqs(pre, post, values, {"next_pos": pre["next_pos"] + 1})
        return StepFormula(guard, effect, writes)

    return build


def deduplicate(pre: SymState, post: SymState, p: Params) -> StepFormula:
    """The idempotency key is used by an input in memory: nothing changes."""
    k, key = p.int("id", 0, pre.n), p.int("key", 1)
    return StepFormula(z3.And(_admits(pre, k), _key_used(pre, key)), z3.BoolVal(True), frozenset())


def reject_invalid(pre: SymState, post: SymState, p: Params) -> StepFormula:
    """An invalid input: outcome Rejected, nothing changes."""
    k = p.int("id", 0, pre.n)
    return StepFormula(_admits(pre, k), z3.BoolVal(True), frozenset())


def accept_and_run(pre: SymState, post: SymState, p: Params) -> StepFormula:
    """``accept_input_and_run``: with no loop, no run, nothing queued and the runtime Idle, a new
    input (``id``, queue lane, no supersession key) is accepted and staged at once for a fresh
    run its caller drives; the phase becomes Running with pre-run phase Idle."""
    n = pre.n
    k, key = p.int("id", 0, n), p.int("key", 0)
    lane = pre.ids("lane")
    guard = z3.And(
        _admits(pre, k),
        pre["reg"] == QUEUING,
        pre["phase"] == IDLE,
        pre["run"] == 0,
        all_ids(n, lambda j: lane[j] == NO_LANE),
        z3.Not(_key_used(pre, key)),
    )
    values: Values = {
        "iphase": [z3.If(k == j, STAGED, pre.ids("iphase")[j]) for j in range(n)],
        "mode": [z3.If(k == j, QUEUE_LANE, pre.ids("mode")[j]) for j in range(n)],
        "pos": [z3.If(k == j, pre["next_pos"], pre.ids("pos")[j]) for j in range(n)],
        "attempts": [z3.If(k == j, 1, pre.ids("attempts")[j]) for j in range(n)],
        "key": [z3.If(k == j, key, pre.ids("key")[j]) for j in range(n)],
        "scope": [z3.If(k == j, 0, pre.ids("scope")[j]) for j in range(n)],
        "in_run": [z3.If(k == j, pre["next_run"], pre.ids("in_run")[j]) for j in range(n)],
    }
    scalars = {
        "phase": z3.IntVal(RUNNING),
        "pre_run": z3.IntVal(IDLE),
        "run": pre["next_run"],
        "next_run": pre["next_run"] + 1,
        "next_pos": pre["next_pos"] + 1,
    }
    effect, writes = _eqs(pre, post, values, scalars)
    return StepFormula(guard, effect, writes)


# -- the run loop ------------------------------------------------------------------------------


def start_run(pre: SymState, post: SymState, p: Params) -> StepFormula:
    """With a loop attached, the phase draining (Attached/Retired) and no run in flight, the head
    input (steer lane first) is staged for a fresh run; the phase becomes Running, remembering the
    pre-run phase."""
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
    guard = z3.And(in_set(pre["phase"], (ATTACHED, RETIRED)), with_loop(pre), pre["run"] == 0, head)
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


def ends_retired(s: SymState) -> Expr:
    """The run in flight ends with the runtime Retired (it started Retired, or was retired in
    flight); otherwise it returns to Attached, or to Idle (:func:`ends_idle`)."""
    return z3.Or(s["phase"] == RETIRED, s["pre_run"] == RETIRED)


def ends_idle(s: SymState) -> Expr:
    """The run in flight is a direct one (pre-run phase Idle), not retired, and no loop is
    attached: it ends with the runtime Idle."""
    return z3.And(s["phase"] == RUNNING, s["pre_run"] == IDLE, z3.Not(with_loop(s)))


def ends_attached(s: SymState) -> Expr:
    """The run in flight ends with the runtime Attached: not retired, a loop attached."""
    return z3.And(s["phase"] == RUNNING, in_set(s["pre_run"], (IDLE, ATTACHED)), with_loop(s))


InputChange = Callable[[SymState, int], dict[str, Expr]]


def _run_end(
    on_input: InputChange,
    retired: bool,
    *,
    when: Callable[[SymState, int], Expr] | None = None,
    commit_failed: bool = False,
    idle: bool = False,
) -> Builder:
    """A run ends: ``on_input`` gives the new fields of the run's input; ``retired`` selects the
    runs ending with the runtime Retired, ``idle`` the direct runs ending with no loop (Idle),
    neither the runs ending Attached; ``when`` an extra guard on the input. A failed boundary
    commit (``commit_failed``) also detaches any loop and ends Idle (Retired stays Retired)."""
    after = RETIRED if retired else (IDLE if idle or commit_failed else ATTACHED)

    def build(pre: SymState, post: SymState, p: Params) -> StepFormula:
        n = pre.n
        mine = _run_input(pre)
        cond = (lambda j: mine[j]) if when is None else (lambda j: z3.And(mine[j], when(pre, j)))
        if after == RETIRED:
            ending = ends_retired(pre)
        elif commit_failed:
            ending = z3.And(pre["phase"] == RUNNING, in_set(pre["pre_run"], (IDLE, ATTACHED)))
        else:
            ending = ends_idle(pre) if after == IDLE else ends_attached(pre)
        guard = z3.And(pre["run"] != 0, ending, some_id(n, cond))
        values: Values = {}
        moved = False
        for j in range(n):
            changes = on_input(pre, j)
            moved = moved or "pos" in changes
            for name in ("iphase", "lane", "pos", "attempts"):
                current = pre.ids(name)[j]
                values.setdefault(name, []).append(z3.If(mine[j], changes.get(name, current), current))
        scalars: Scalars = {"phase": z3.IntVal(after), "run": z3.IntVal(0), "pre_run": z3.IntVal(NONE)}
        if commit_failed:
            scalars |= {"reg": z3.IntVal(QUEUING), "front": pre["front"] - 1}
        elif moved:
            scalars["next_pos"] = pre["next_pos"] + 1
        effect, writes = _eqs(pre, post, values, scalars)
        return StepFormula(guard, effect, writes)

    return build


def _consumed(pre: SymState, j: int) -> dict[str, Expr]:
    return {"iphase": z3.IntVal(CONSUMED)}


def _back_of_lane(pre: SymState, j: int) -> dict[str, Expr]:
    """Back of its lane, attempts kept."""
    return {"iphase": z3.IntVal(QUEUED), "lane": pre.ids("mode")[j], "pos": pre["next_pos"]}


def _abandoned(pre: SymState, j: int) -> dict[str, Expr]:
    return {"iphase": z3.IntVal(ABANDONED)}


def _exhausted(pre: SymState, j: int) -> dict[str, Expr]:
    """Abandoned after its last attempt; a fatal error raises its attempts to the limit."""
    att, limit = pre.ids("attempts")[j], pre["max_attempts"]
    return {"iphase": z3.IntVal(ABANDONED), "attempts": z3.If(att < limit, limit, att)}


def _head_of_lane(pre: SymState, j: int) -> dict[str, Expr]:
    """Nothing was written: Queued at the head of its lane, the attempt not counted."""
    return {
        "iphase": z3.IntVal(QUEUED),
        "lane": pre.ids("mode")[j],
        "pos": pre["front"],
        "attempts": pre.ids("attempts")[j] - 1,
    }


def _below_limit(pre: SymState, j: int) -> Expr:
    return pre.ids("attempts")[j] < pre["max_attempts"]


def _at_limit(pre: SymState, j: int) -> Expr:
    """The attempt that failed was the last one, or the error is not retried (``fatal_errors``)."""
    return z3.Or(pre.ids("attempts")[j] >= pre["max_attempts"], pre["fatal_errors"])


def _resting(s: SymState) -> Expr:
    """The phase the store holds: a run is not stored, Attached is stored as Idle."""
    ph = z3.If(s["phase"] == RUNNING, s["pre_run"], s["phase"])
    return z3.If(ph == ATTACHED, z3.IntVal(IDLE), ph)


def _forget(guard: Callable[[SymState], Expr]) -> Builder:
    """Memory is lost (crash, unregister, failed terminal snapshot): the session is
    Unregistered and holds what registering recovers from the store — the stored phase, no run,
    the run's input Queued at the head of its lane with the attempt not counted."""

    def build(pre: SymState, post: SymState, p: Params) -> StepFormula:
        n = pre.n
        mine = _run_input(pre)
        values: Values = {
            "iphase": [z3.If(mine[j], QUEUED, pre.ids("iphase")[j]) for j in range(n)],
            "lane": [z3.If(mine[j], pre.ids("mode")[j], pre.ids("lane")[j]) for j in range(n)],
            "pos": [z3.If(mine[j], pre["front"], pre.ids("pos")[j]) for j in range(n)],
            "attempts": [z3.If(mine[j], pre.ids("attempts")[j] - 1, pre.ids("attempts")[j]) for j in range(n)],
        }
        scalars = {
            "phase": _resting(pre),
            "reg": z3.IntVal(UNREG),
            "run": z3.IntVal(0),
            "pre_run": z3.IntVal(NONE),
            "front": z3.If(pre["run"] != 0, pre["front"] - 1, pre["front"]),
        }
        effect, writes = _eqs(pre, post, values, scalars)
        return StepFormula(guard(pre), effect, writes)

    return build


# -- control -----------------------------------------------------------------------------------


def _abandon_all(s: SymState) -> Values:
    """Every non-terminal input becomes Abandoned and leaves its lane."""
    ph = s.ids("iphase")
    return {
        "iphase": [z3.If(non_terminal(ph[j]), ABANDONED, ph[j]) for j in range(s.n)],
        "lane": [z3.IntVal(NO_LANE)] * s.n,
    }


def _abandon_queued(s: SymState) -> Values:
    """Every Queued input becomes Abandoned and leaves its lane; a run in flight goes on."""
    ph = s.ids("iphase")
    return {
        "iphase": [z3.If(ph[j] == QUEUED, ABANDONED, ph[j]) for j in range(s.n)],
        "lane": [z3.IntVal(NO_LANE)] * s.n,
    }


def _open(s: SymState, *, stopped_ok: bool = False) -> Expr:
    """Registered, not Destroyed, and (unless ``stopped_ok``) not Stopped."""
    closed = (DESTROYED,) if stopped_ok else (STOPPED, DESTROYED)
    return z3.And(registered(s), z3.Not(in_set(s["phase"], closed)))


def _loop_is(loop: bool) -> Callable[[SymState], Expr]:
    return (lambda s: with_loop(s)) if loop else (lambda s: z3.Not(with_loop(s)))


def _halt(phase: int, loop: bool) -> Callable[[SymState], Scalars]:
    """Stop/destroy: the phase, no run; an attached loop is detached (Queuing)."""

    def scalars(s: SymState) -> Scalars:
        out: Scalars = {"phase": z3.IntVal(phase), "run": z3.IntVal(0), "pre_run": z3.IntVal(NONE)}
        if loop:
            out["reg"] = z3.IntVal(QUEUING)
        return out

    return scalars


def _phase(phase: int) -> Callable[[SymState], Scalars]:
    return lambda s: {"phase": z3.IntVal(phase)}


def _pn(*codes: int) -> tuple[str, ...]:
    return tuple(PHASE_NAMES[c] for c in codes)


def _rn(*codes: int) -> tuple[str, ...]:
    return tuple(REG_NAMES[c] for c in codes)


def _in(*codes: int) -> tuple[str, ...]:
    return tuple(INPUT_NAMES[c] for c in codes)


REGISTERED = (QUEUING, ATTACHING, ACTIVE)


def _run_end_rows(
    base: str,
    target: int,
    on_input: InputChange,
    when: Callable[[SymState, int], Expr] | None = None,
    *,
    direct: bool = True,
) -> tuple[SymTransition, ...]:
    """``base`` (the runtime back to Attached), ``base_retired`` (ending Retired) and, with
    ``direct``, ``base_without_loop`` (a direct run ending with no loop: Idle)."""
    plain, retired = _run_end(on_input, False, when=when), _run_end(on_input, True, when=when)
    name = INPUT_NAMES[target]
    rows = (
        SymTransition(base, "input", _in(STAGED), name, plain),
        SymTransition(base, "runtime", _pn(RUNNING), "Attached", plain),
        SymTransition(f"{base}_retired", "input", _in(STAGED), name, retired),
        SymTransition(f"{base}_retired", "runtime", _pn(RUNNING, RETIRED), "Retired", retired),
    )
    if not direct:
        return rows
    idle = _run_end(on_input, False, when=when, idle=True)
    return (
        *rows,
        SymTransition(f"{base}_without_loop", "input", _in(STAGED), name, idle),
        SymTransition(f"{base}_without_loop", "runtime", _pn(RUNNING), "Idle", idle),
    )


def _input_and_run() -> tuple[SymTransition, ...]:
    inp, rt, rg = "input", "runtime", "registration"
    plain, superseding, coalescing = accept(None), accept(SUPERSEDED), accept(COALESCED)
    commit_failed = _run_end(_head_of_lane, False, commit_failed=True)
    commit_failed_retired = _run_end(_head_of_lane, True, commit_failed=True)
    return (
        SymTransition("accept", inp, _in(NONE), "Queued", plain),
        SymTransition("accept", rt, _pn(*ACCEPTING), None, plain),
        SymTransition("accept_superseding", inp, _in(NONE), "Queued", superseding),
        SymTransition("accept_superseding", inp, _in(QUEUED), "Superseded", superseding, subject="other"),
        SymTransition("accept_coalescing", inp, _in(NONE), "Queued", coalescing),
        SymTransition("accept_coalescing", inp, _in(QUEUED), "Coalesced", coalescing, subject="other"),
        SymTransition("deduplicate", inp, _in(NONE), None, deduplicate),
        SymTransition("deduplicate", rt, _pn(*ACCEPTING), None, deduplicate),
        SymTransition("reject_invalid", inp, _in(NONE), None, reject_invalid),
        SymTransition("reject_invalid", rt, _pn(*ACCEPTING), None, reject_invalid),
        SymTransition("accept_and_run", inp, _in(NONE), "Staged", accept_and_run),
        SymTransition("accept_and_run", rt, _pn(IDLE), "Running", accept_and_run),
        SymTransition("start_run", inp, _in(QUEUED), "Staged", start_run),
        SymTransition("start_run", rt, _pn(ATTACHED, RETIRED), "Running", start_run),
        *_run_end_rows("executor_succeeded", CONSUMED, _consumed),
        *_run_end_rows("executor_failed", QUEUED, _back_of_lane, _below_limit),
        *_run_end_rows("executor_failed_exhausted", ABANDONED, _exhausted, _at_limit),
        *_run_end_rows("interrupt", ABANDONED, _abandoned),
        SymTransition("boundary_commit_failed", inp, _in(STAGED), "Queued", commit_failed),
        SymTransition("boundary_commit_failed", rt, _pn(RUNNING), "Idle", commit_failed),
        SymTransition("boundary_commit_failed", rg, _rn(*REGISTERED), "Queuing", commit_failed),
        SymTransition("boundary_commit_failed_retired", inp, _in(STAGED), "Queued", commit_failed_retired),
        SymTransition("boundary_commit_failed_retired", rt, _pn(RUNNING, RETIRED), "Retired", commit_failed_retired),
        SymTransition("boundary_commit_failed_retired", rg, _rn(*REGISTERED), "Queuing", commit_failed_retired),
        SymTransition(
            "terminal_snapshot_failed", rg, _rn(*REGISTERED), "Unregistered", _forget(lambda s: s["run"] != 0)
        ),
        SymTransition(
            "interrupt_noop",
            rt,
            _pn(IDLE, ATTACHED, RETIRED, STOPPED, DESTROYED),
            None,
            _step(lambda s: z3.And(registered(s), s["run"] == 0)),
        ),
    )


def _control() -> tuple[SymTransition, ...]:
    inp, rt, rg = "input", "runtime", "registration"

    def retiring(loop: bool) -> Callable[[SymState], Expr]:
        return lambda s: z3.And(_open(s), s["phase"] != RETIRED, _loop_is(loop)(s))

    def quiet(loop: bool) -> Callable[[SymState], Expr]:
        return lambda s: z3.And(_open(s), s["run"] == 0, _loop_is(loop)(s))

    def halting(loop: bool, *, stopped_ok: bool) -> Callable[[SymState], Expr]:
        return lambda s: z3.And(_open(s, stopped_ok=stopped_ok), _loop_is(loop)(s))

    retire_without_loop = _step(retiring(False), _phase(RETIRED), _abandon_queued)
    reset = _step(quiet(False), _phase(IDLE), _abandon_all)
    reset_with_loop = _step(quiet(True), _phase(ATTACHED), _abandon_all)
    stop = _step(halting(False, stopped_ok=False), _halt(STOPPED, False), _abandon_all)
    stop_with_loop = _step(halting(True, stopped_ok=False), _halt(STOPPED, True), _abandon_all)
    destroy = _step(halting(False, stopped_ok=True), _halt(DESTROYED, False), _abandon_all)
    destroy_with_loop = _step(halting(True, stopped_ok=True), _halt(DESTROYED, True), _abandon_all)
    # recover: memory := recovery of the store in place. What the encoding holds is what memory
    # and store agree on, so both forms leave it unchanged; whether the store needs its rows
    # written back (``recover``) or not (``recover_noop``) is in the store's rows, not encoded.
    # In the model only a retire during a run leaves rows to normalise, so ``recover`` is Retired.
    recovering = _step(lambda s: z3.And(_open(s, stopped_ok=True), s["run"] == 0))
    recovering_retired = _step(lambda s: z3.And(_open(s, stopped_ok=True), s["run"] == 0, s["phase"] == RETIRED))
    return (
        SymTransition("retire", rt, _pn(ATTACHED, RUNNING), "Retired", _step(retiring(True), _phase(RETIRED))),
        SymTransition("retire_without_loop", rt, _pn(IDLE, RUNNING), "Retired", retire_without_loop),
        SymTransition("retire_without_loop", inp, _in(QUEUED), "Abandoned", retire_without_loop),
        SymTransition("retire_noop", rt, _pn(RETIRED), None, _step(lambda s: z3.And(_open(s), s["phase"] == RETIRED))),
        SymTransition("reset", rt, _pn(IDLE, RETIRED), "Idle", reset),
        SymTransition("reset", inp, _in(QUEUED), "Abandoned", reset),
        SymTransition("reset_with_loop", rt, _pn(ATTACHED, RETIRED), "Attached", reset_with_loop),
        SymTransition("reset_with_loop", inp, _in(QUEUED), "Abandoned", reset_with_loop),
        SymTransition("recycle", rt, _pn(IDLE, RETIRED), "Idle", _step(quiet(False), _phase(IDLE))),
        SymTransition(
            "recycle_with_loop", rt, _pn(ATTACHED, RETIRED), "Attached", _step(quiet(True), _phase(ATTACHED))
        ),
        SymTransition("stop", rt, _pn(IDLE, RUNNING, RETIRED), "Stopped", stop),
        SymTransition("stop", inp, _in(QUEUED, STAGED), "Abandoned", stop),
        SymTransition("stop_with_loop", rt, _pn(ATTACHED, RUNNING, RETIRED), "Stopped", stop_with_loop),
        SymTransition("stop_with_loop", inp, _in(QUEUED, STAGED), "Abandoned", stop_with_loop),
        SymTransition("stop_with_loop", rg, _rn(ACTIVE), "Queuing", stop_with_loop),
        SymTransition("destroy", rt, _pn(IDLE, RUNNING, RETIRED, STOPPED), "Destroyed", destroy),
        SymTransition("destroy", inp, _in(QUEUED, STAGED), "Abandoned", destroy),
        SymTransition(
            "destroy_with_loop", rt, _pn(ATTACHED, RUNNING, RETIRED, STOPPED), "Destroyed", destroy_with_loop
        ),
        SymTransition("destroy_with_loop", inp, _in(QUEUED, STAGED), "Abandoned", destroy_with_loop),
        SymTransition("destroy_with_loop", rg, _rn(ACTIVE), "Queuing", destroy_with_loop),
        SymTransition("recover", rt, _pn(RETIRED), None, recovering_retired),
        SymTransition("recover_noop", rt, _pn(IDLE, ATTACHED, RETIRED, STOPPED), None, recovering),
    )


def _registration() -> tuple[SymTransition, ...]:
    rt, rg = "runtime", "registration"
    finish = _step(
        lambda s: z3.And(s["reg"] == ATTACHING, s["phase"] == IDLE),
        lambda s: {"reg": z3.IntVal(ACTIVE), "phase": z3.IntVal(ATTACHED)},
    )
    return (
        SymTransition(
            "register",
            rg,
            _rn(UNREG),
            "Queuing",
            _step(lambda s: z3.And(s["reg"] == UNREG, s["phase"] != DESTROYED), lambda s: {"reg": z3.IntVal(QUEUING)}),
        ),
        SymTransition("register_noop", rg, _rn(*REGISTERED), None, _step(registered)),
        SymTransition(
            "begin_attach",
            rg,
            _rn(QUEUING),
            "Attaching",
            _step(
                lambda s: z3.And(s["reg"] == QUEUING, z3.Not(in_set(s["phase"], (STOPPED, DESTROYED)))),
                lambda s: {"reg": z3.IntVal(ATTACHING)},
            ),
        ),
        SymTransition(
            "begin_attach_noop",
            rg,
            _rn(ATTACHING, ACTIVE),
            None,
            _step(lambda s: in_set(s["reg"], (ATTACHING, ACTIVE))),
        ),
        SymTransition("finish_attach", rg, _rn(ATTACHING), "Active", finish),
        SymTransition("finish_attach", rt, _pn(IDLE), "Attached", finish),
        SymTransition(
            "finish_attach_keep_phase",
            rg,
            _rn(ATTACHING),
            "Active",
            _step(lambda s: z3.And(s["reg"] == ATTACHING, s["phase"] != IDLE), lambda s: {"reg": z3.IntVal(ACTIVE)}),
        ),
        SymTransition(
            "attach_failed",
            rg,
            _rn(ATTACHING),
            "Queuing",
            _step(lambda s: s["reg"] == ATTACHING, lambda s: {"reg": z3.IntVal(QUEUING)}),
        ),
        SymTransition("unregister", rg, _rn(*REGISTERED), "Unregistered", _forget(registered)),
        SymTransition("crash", rg, _rn(*REGISTERED), "Unregistered", _forget(registered)),
    )


def session_transitions() -> tuple[SymTransition, ...]:
    """Every row of the model's declared table (``SESSION_TRANSITIONS``), in its order."""
    return _input_and_run() + _control() + _registration()


# -- invariants --------------------------------------------------------------------------------


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
        z3.Implies(ph == QUEUED, att < s["max_attempts"]),
        z3.Implies(ph == STAGED, z3.And(att >= 1, att <= s["max_attempts"])),
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
        in_set(s["phase"], (IDLE, ATTACHED, RUNNING, RETIRED, STOPPED, DESTROYED)),
        in_set(s["reg"], tuple(REG_NAMES)),
        s["run"] >= 0,
        s["next_run"] >= 1,
        s["run"] < s["next_run"],
        s["next_pos"] >= 0,
        s["front"] < 0,
    )


def _running_has_run(s: SymState) -> Expr:
    loop_run = z3.And(s["run"] != 0, s["pre_run"] != IDLE)
    return z3.And(
        z3.Implies(s["phase"] == RUNNING, s["run"] != 0),
        z3.Implies(s["run"] != 0, registered(s)),
        z3.Implies(loop_run, s["reg"] == ACTIVE),
    )


def _run_phase(s: SymState) -> Expr:
    with_run = z3.And(in_set(s["phase"], (RUNNING, RETIRED)), in_set(s["pre_run"], (IDLE, ATTACHED, RETIRED)))
    return z3.If(s["run"] != 0, with_run, s["pre_run"] == NONE)


def _loop_phase(s: SymState) -> Expr:
    return z3.And(
        z3.Implies(s["phase"] == ATTACHED, s["reg"] == ACTIVE), z3.Implies(s["phase"] == IDLE, s["reg"] != ACTIVE)
    )


def session_invariants() -> tuple[SymInvariant, ...]:
    return (
        SymInvariant(
            "runtime.typed",
            "phases and counters take declared values (never Initializing: registering recovers the stored phase)",
            _runtime_typed,
        ),
        SymInvariant(
            "runtime.running_has_run",
            "Running ⇒ a current run; a run ⇒ registered; a run of the loop (pre-run phase not Idle) ⇒ a loop attached",
            _running_has_run,
        ),
        SymInvariant(
            "runtime.run_phase",
            "current run ⇒ Running or Retired with a pre-run phase; no run ⇒ no pre-run phase",
            _run_phase,
        ),
        SymInvariant("runtime.loop_phase", "Attached ⇒ a loop attached; Idle ⇒ none", _loop_phase),
        per_id_invariant("input.typed", "phases, lanes, attempts and run associations take declared values", _typed),
        per_id_invariant(
            "input.untracked_is_clean", "an input never accepted has no lane, key or run", _untracked_clean
        ),
        per_id_invariant("input.queued_in_lane", "Queued ⇔ in a lane (the one it was accepted for)", _queued_in_lane),
        SymInvariant(
            "input.lane_positions",
            "lane positions are distinct and between the head and back counters",
            _lane_positions,
        ),
        per_id_invariant("input.in_current_run", "staged/applied inputs belong to the current run", _in_current_run),
        SymInvariant(
            "input.one_per_run",
            "a current run holds exactly one input; no run holds none",
            _run_has_one_input,
            counted=(_in_run_phase,),
        ),
        per_id_invariant(
            "input.at_rest",
            "Accepted, Applied and AppliedPendingConsumption exist only inside one durable step",
            _at_rest,
        ),
        per_id_invariant(
            "input.attempts", "Queued ⇒ attempts < max_attempts; Staged ⇒ 1 ≤ attempts ≤ max_attempts", _attempts
        ),
        SymInvariant("input.idempotency_keys_unique", "an idempotency key names at most one input", _keys_unique),
        SymInvariant("input.one_live_per_key", "idempotency key ⇒ at most one non-terminal input", _one_live_per_key),
        per_id_invariant(
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
    """Nothing registered, nothing stored: registering recovers Idle (no lifecycle record)."""
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
        s["phase"] == IDLE,
        s["reg"] == UNREG,
        s["run"] == 0,
        s["pre_run"] == NONE,
        s["next_run"] == 1,
        s["next_pos"] == 0,
        s["front"] == -1,
    )


def _domain(s: SymState) -> Expr:
    return s["max_attempts"] >= 1


def build_session_machine(n: int, transitions: tuple[SymTransition, ...] | None = None) -> SymbolicMachine:
    """One session with ``n`` inputs. ``transitions`` replaces the declared rows."""
    if n < 1:
        raise ValueError(f"need at least one input id, got {n}")
    return SymbolicMachine(
        name="session",
        n=n,
        fields=FIELDS,
        initial=_initial,
        domain=_domain,
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
            "registration": EntityView(False, lambda s, _j: s["reg"], REG_NAMES),
        },
    )
