"""z3 encoding of two workers sharing one store (the ownership model, docs/model-ownership.md),
abstracted to what the per-input ownership invariants need, for ``n`` input ids.

The lease: ``owner`` (-1 before the first claim, else a worker), ``token`` (grows by one with
every claim), ``expired``. Per worker ``w`` (0 and 1; fields suffixed ``0`` / ``1``): ``tok``
(the token of its claim, 0: none), ``reg`` (registered: it holds a memory of the session),
``doubt`` (a write's outcome is unknown to it), ``mrec`` (the lifecycle record its memory would
write) and, per input, ``mem`` (the input's status in its memory). The store: ``rec`` (the
lifecycle record), per input ``st``. History: per input ``commits`` (boundary commits the store
took, capped at 2), ``undone`` (the store took a write moving the record away from a halt from a
worker that had not seen it) and ``destroyed``. The constant ``fencing``: whether the store
refuses a write whose token is not the lease's.

The operation registry (ids ``0 .. n-1`` again, one operation per id): per id the store's slot
``ost`` (Absent, or Completed / Failed: :data:`OP_NAMES`) with its completion sequence number
``osq`` (0 when Absent) and the store's next number ``nxt``; per worker per id its registry's
slot ``om`` (Running too) and number ``oq``, and its next number ``nq``. History: ``high`` (the
largest number the store took), ``reused`` (the store took a number twice), ``oundone`` (a stored
terminal operation rewritten to another outcome or number). ``register_op`` is memory only;
``finish_op`` writes the operation terminal with the worker's next number, fenced like every
write (a stale token is ``write_refused``). A claim recovers the registry from the store;
detaching forgets it.

Statuses (:data:`STATUS_NAMES`) are the session model's input phases coarsened: Absent, Queued,
Staged, Consumed, Dropped (Abandoned, Superseded or Coalesced). Records (:data:`RECORD_NAMES`):
Live (no record, Idle), Retired, Stopped, Destroyed.

A worker's session steps are two transitions that over-approximate every session step:
``local`` (no store write: a Queued input may become Staged, a run starting) and ``write`` (a
durable write, fenced). In a write, memory moves each input along the legal moves (Absent →
Queued, or Staged for a run started at once, for a fresh id; Queued → Staged | Dropped;
Staged → Queued | Consumed | Dropped; terminal statuses stay) and its record anywhere except
out of Destroyed; the store takes every row memory changed (a run's input possibly as Queued)
and may take any other row memory holds (an accept writes one row, a full commit every row);
the record is written when memory's changed, else may be. A Staged → Consumed move is a
boundary commit (``commits`` + 1). With ``fencing`` the write needs the writer's token to be
the lease's, else ``write_refused`` detaches the worker; without it the write always lands.
``ambiguous_landed`` / ``ambiguous_lost`` leave the worker in doubt (memory as before, a
Staged input possibly back to Queued), ``reconcile`` replaces memory by the store's recovery
(Staged read back as Queued). ``claim`` (and a takeover) recovers the store into memory and
writes the recovery back under the new token. The differential check
(``meerkat_model.proofs.differential``, simulation mode) shows every step of the executable
model is one of these transitions (or changes nothing here) on the reachable states.
"""

from __future__ import annotations

from collections.abc import Callable

import z3

from meerkat_model.proofs.symbolic import (
    Expr,
    FieldSpec,
    Params,
    StepFormula,
    SymbolicMachine,
    SymInvariant,
    SymState,
    SymTransition,
    in_set,
    per_id_invariant,
)

ABSENT, QUEUED, STAGED, CONSUMED, DROPPED = 0, 1, 2, 3, 4
STATUS_NAMES = {ABSENT: "Absent", QUEUED: "Queued", STAGED: "Staged", CONSUMED: "Consumed", DROPPED: "Dropped"}
LIVE, RETIRED, STOPPED, DESTROYED = 0, 1, 2, 3
RECORD_NAMES = {LIVE: "Live", RETIRED: "Retired", STOPPED: "Stopped", DESTROYED: "Destroyed"}
NO_OWNER = -1
WORKERS = (0, 1)
OP_ABSENT, OP_RUNNING, OP_COMPLETED, OP_FAILED = 0, 1, 2, 3
OP_NAMES = {OP_ABSENT: "Absent", OP_RUNNING: "Running", OP_COMPLETED: "Completed", OP_FAILED: "Failed"}
OP_TERMINAL = (OP_COMPLETED, OP_FAILED)

_WORKER_SCALARS = (("tok", "int"), ("reg", "bool"), ("doubt", "bool"), ("mrec", "int"), ("nq", "int"))
FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("owner", "int"),
    FieldSpec("token", "int"),
    FieldSpec("expired", "bool"),
    FieldSpec("rec", "int"),
    FieldSpec("undone", "bool"),
    FieldSpec("destroyed", "bool"),
    *(FieldSpec(f"{name}{w}", sort) for w in WORKERS for name, sort in _WORKER_SCALARS),  # type: ignore[arg-type]
    FieldSpec("st", "int", per_id=True),
    *(FieldSpec(f"mem{w}", "int", per_id=True) for w in WORKERS),
    FieldSpec("commits", "int", per_id=True),
    FieldSpec("nxt", "int"),
    FieldSpec("high", "int"),
    FieldSpec("reused", "bool"),
    FieldSpec("oundone", "bool"),
    FieldSpec("ost", "int", per_id=True),
    FieldSpec("osq", "int", per_id=True),
    *(FieldSpec(f"{name}{w}", "int", per_id=True) for w in WORKERS for name in ("om", "oq")),
    FieldSpec("fencing", "bool", constant=True),
)
_WORKER_FIELDS = frozenset(
    f"{name}{w}" for w in WORKERS for name in ("tok", "reg", "doubt", "mrec", "mem", "nq", "om", "oq")
)


# -- reading and writing one worker's fields --------------------------------------------------


def wf(s: SymState, name: str, w: Expr) -> Expr:
    """Worker ``w``'s scalar field ``name``."""
    return z3.If(w == 0, s[f"{name}0"], s[f"{name}1"])


def wmem(s: SymState, w: Expr, j: int) -> Expr:
    """Input ``j``'s status in worker ``w``'s memory."""
    return z3.If(w == 0, s.ids("mem0")[j], s.ids("mem1")[j])


def wf_id(s: SymState, name: str, w: Expr, j: int) -> Expr:
    """Worker ``w``'s per-id field ``name`` at id ``j``."""
    return z3.If(w == 0, s.ids(f"{name}0")[j], s.ids(f"{name}1")[j])


def holds(s: SymState, w: Expr) -> Expr:
    """Worker ``w``'s claim is the lease's (owner and token): its writes pass the fence."""
    tok = wf(s, "tok", w)
    return z3.And(tok != 0, s["owner"] == w, s["token"] == tok)


def _set_worker(
    pre: SymState,
    post: SymState,
    w: Expr,
    *,
    tok: Expr | None = None,
    reg: Expr | None = None,
    doubt: Expr | None = None,
    mrec: Expr | None = None,
    mem: Callable[[int], Expr] | None = None,
    nq: Expr | None = None,
    om: Callable[[int], Expr] | None = None,
    oq: Callable[[int], Expr] | None = None,
) -> list[Expr]:
    """Worker ``w``'s fields become the given values (``None``: unchanged); the other worker's
    stay. Every worker field is listed in the step's writes (``_WORKER_FIELDS``)."""
    out: list[Expr] = []
    for v in WORKERS:
        mine = w == v
        for name, value in (("tok", tok), ("reg", reg), ("doubt", doubt), ("mrec", mrec), ("nq", nq)):
            key = f"{name}{v}"
            out.append(post[key] == (pre[key] if value is None else z3.If(mine, value, pre[key])))
        for name, per_id in (("mem", mem), ("om", om), ("oq", oq)):
            for j in range(pre.n):
                a, b = pre.ids(f"{name}{v}")[j], post.ids(f"{name}{v}")[j]
                out.append(b == (a if per_id is None else z3.If(mine, per_id(j), a)))
    return out


def _detach(pre: SymState, post: SymState, w: Expr) -> list[Expr]:
    """Worker ``w`` forgets the session: no memory, no token, not in doubt."""
    return _set_worker(
        pre,
        post,
        w,
        tok=z3.IntVal(0),
        reg=z3.BoolVal(False),
        doubt=z3.BoolVal(False),
        mrec=z3.IntVal(LIVE),
        mem=lambda _j: z3.IntVal(ABSENT),
        nq=z3.IntVal(0),
        om=lambda _j: z3.IntVal(OP_ABSENT),
        oq=lambda _j: z3.IntVal(0),
    )


def recovered(x: Expr) -> Expr:
    """An input's status as recovery reads it from the store (a run is not stored)."""
    return z3.If(x == STAGED, z3.IntVal(QUEUED), x)


def halted(rec: Expr) -> Expr:
    return in_set(rec, (RETIRED, STOPPED, DESTROYED))


def _worker_param(p: Params) -> Expr:
    return p.int("w", 0, len(WORKERS))


def _registered(s: SymState, w: Expr) -> Expr:
    return z3.And(wf(s, "reg", w), z3.Not(wf(s, "doubt", w)))


def _claimable(s: SymState, w: Expr) -> Expr:
    return z3.And(z3.Not(wf(s, "reg", w)), z3.Or(s["owner"] == NO_OWNER, s["expired"], s["owner"] == w))


def _legal_move(old: Expr, new: Expr, stored: Expr) -> Expr:
    """One input's move in memory during a session step that writes."""
    return z3.Or(
        new == old,
        z3.And(old == ABSENT, in_set(new, (QUEUED, STAGED)), stored == ABSENT),
        z3.And(old == QUEUED, in_set(new, (STAGED, DROPPED))),
        z3.And(old == STAGED, in_set(new, (QUEUED, CONSUMED, DROPPED))),
    )


def _record_move(old: Expr, new: Expr) -> Expr:
    return z3.And(in_set(new, RECORD_NAMES), z3.Implies(old == DESTROYED, new == DESTROYED))


def _store_takes(pre: SymState, post: SymState, w: Expr, image: list[Expr], rec_image: Expr) -> list[Expr]:
    """The store takes worker ``w``'s write of the memory ``image`` (per input) and record
    ``rec_image``: every row memory changed, possibly the others memory holds; the record when
    memory's changed, possibly otherwise; boundary commits counted; a halt overwritten by a
    worker whose memory had not seen it marked ``undone``."""
    out: list[Expr] = []
    for j in range(pre.n):
        old, new = wmem(pre, w, j), image[j]
        st, st2 = pre.ids("st")[j], post.ids("st")[j]
        out.append(_legal_move(old, new, st))
        out.append(
            z3.If(
                new != old,
                z3.Or(st2 == new, st2 == recovered(new)),
                z3.If(old != ABSENT, z3.Or(st2 == st, st2 == old), st2 == st),
            )
        )
        c = pre.ids("commits")[j]
        bumped = z3.If(c >= 2, z3.IntVal(2), c + 1)
        out.append(post.ids("commits")[j] == z3.If(z3.And(old == STAGED, new == CONSUMED), bumped, c))
    mrec, rec, rec2 = wf(pre, "mrec", w), pre["rec"], post["rec"]
    out.append(_record_move(mrec, rec_image))
    out.append(z3.If(rec_image != mrec, rec2 == rec_image, z3.Or(rec2 == rec, rec2 == mrec)))
    unseen = z3.And(halted(rec), rec2 != rec, mrec != rec)
    out.append(post["undone"] == z3.Or(pre["undone"], unseen))
    out.append(post["destroyed"] == z3.Or(pre["destroyed"], rec2 == DESTROYED))
    return out


_STORE = frozenset({"st", "rec", "commits", "undone", "destroyed"})
_LEASE = frozenset({"owner", "token", "expired"})


# -- transitions ---------------------------------------------------------------------------


def _claim(pre: SymState, post: SymState, p: Params) -> StepFormula:
    """Claim the lease (none, expired or the claimant's own; token + 1), recover the store into
    memory and write the recovery back. A Destroyed store is refused (``claim_refused``)."""
    w = _worker_param(p)
    token = pre["token"] + 1
    guard = z3.And(_claimable(pre, w), pre["rec"] != DESTROYED)
    effect = [post["owner"] == w, post["token"] == token, z3.Not(post["expired"]), post["rec"] == pre["rec"]]
    effect += [post.ids("st")[j] == recovered(pre.ids("st")[j]) for j in range(pre.n)]
    effect += _set_worker(
        pre,
        post,
        w,
        tok=token,
        reg=z3.BoolVal(True),
        doubt=z3.BoolVal(False),
        mrec=pre["rec"],
        mem=lambda j: recovered(pre.ids("st")[j]),
        nq=pre["nxt"],
        om=lambda j: pre.ids("ost")[j],
        oq=lambda j: pre.ids("osq")[j],
    )
    return StepFormula(guard, z3.And(*effect), _LEASE | {"st", "rec"} | _WORKER_FIELDS)


def _claim_refused(pre: SymState, post: SymState, p: Params) -> StepFormula:
    """A claim whose recovery fails: the fresh claim released at once, its token spent."""
    w = _worker_param(p)
    effect = z3.And(post["owner"] == w, post["token"] == pre["token"] + 1, post["expired"])
    return StepFormula(_claimable(pre, w), effect, _LEASE)


def _renew(pre: SymState, post: SymState, p: Params) -> StepFormula:
    w = _worker_param(p)
    return StepFormula(z3.And(wf(pre, "reg", w), holds(pre, w)), z3.Not(post["expired"]), frozenset({"expired"}))


def _renew_lost(pre: SymState, post: SymState, p: Params) -> StepFormula:
    """Another worker claimed: the worker detaches (``ownership_lost``)."""
    w = _worker_param(p)
    guard = z3.And(wf(pre, "reg", w), z3.Not(holds(pre, w)))
    return StepFormula(guard, z3.And(*_detach(pre, post, w)), _WORKER_FIELDS)


def _expire(pre: SymState, post: SymState, p: Params) -> StepFormula:
    guard = z3.And(pre["owner"] != NO_OWNER, z3.Not(pre["expired"]))
    return StepFormula(guard, post["expired"], frozenset({"expired"}))


def _release(pre: SymState, post: SymState, p: Params) -> StepFormula:
    """Unregister: memory gone; the lease expires now if the worker still holds it."""
    w = _worker_param(p)
    effect = [post["expired"] == z3.Or(pre["expired"], holds(pre, w)), *_detach(pre, post, w)]
    return StepFormula(wf(pre, "reg", w), z3.And(*effect), _WORKER_FIELDS | {"expired"})


def _crash(pre: SymState, post: SymState, p: Params) -> StepFormula:
    """The worker's process dies; the lease is left to expire."""
    w = _worker_param(p)
    return StepFormula(wf(pre, "reg", w), z3.And(*_detach(pre, post, w)), _WORKER_FIELDS)


def _local(pre: SymState, post: SymState, p: Params) -> StepFormula:
    """A session step that writes nothing: a Queued input may become Staged (a run starts)."""
    w = _worker_param(p)

    chosen = [_choice(p, f"m{j}", wmem(pre, w, j)) for j in range(pre.n)]
    effect = _set_worker(pre, post, w, mem=lambda j: chosen[j])
    return StepFormula(_registered(pre, w), z3.And(*effect), _WORKER_FIELDS)


def _choice(p: Params, name: str, old: Expr) -> Expr:
    """A fresh auxiliary status: ``old``, or Staged when ``old`` is Queued."""
    x = p.aux_int(name)
    p.domain.append(z3.Or(x == old, z3.And(old == QUEUED, x == STAGED)))
    return x


def _image(p: Params, n: int) -> tuple[list[Expr], Expr]:
    return [p.aux_int(f"img{j}") for j in range(n)], p.aux_int("img_rec")


def _write(pre: SymState, post: SymState, p: Params) -> StepFormula:
    """A session step that writes: fenced (the writer's token is the lease's) when ``fencing``."""
    w = _worker_param(p)
    image, rec_image = _image(p, pre.n)
    guard = z3.And(_registered(pre, w), z3.Or(z3.Not(pre["fencing"]), holds(pre, w)))
    effect = _store_takes(pre, post, w, image, rec_image)
    effect += _set_worker(pre, post, w, mrec=rec_image, mem=lambda j: image[j])
    return StepFormula(guard, z3.And(*effect), _STORE | _WORKER_FIELDS)


def _write_refused(pre: SymState, post: SymState, p: Params) -> StepFormula:
    """The store refuses a stale token: nothing written, the worker detaches."""
    w = _worker_param(p)
    guard = z3.And(_registered(pre, w), pre["fencing"], z3.Not(holds(pre, w)))
    return StepFormula(guard, z3.And(*_detach(pre, post, w)), _WORKER_FIELDS)


def _ambiguous_landed(pre: SymState, post: SymState, p: Params) -> StepFormula:
    """A write whose outcome is unknown to its writer (the store unreadable); the store took it."""
    w = _worker_param(p)
    image, rec_image = _image(p, pre.n)
    guard = z3.And(_registered(pre, w), z3.Or(z3.Not(pre["fencing"]), holds(pre, w)))
    effect = _store_takes(pre, post, w, image, rec_image) + _doubt(pre, post, w)
    return StepFormula(guard, z3.And(*effect), _STORE | _WORKER_FIELDS)


def _ambiguous_lost(pre: SymState, post: SymState, p: Params) -> StepFormula:
    """A write whose outcome is unknown to its writer; the store did not take it."""
    w = _worker_param(p)
    return StepFormula(_registered(pre, w), z3.And(*_doubt(pre, post, w)), _WORKER_FIELDS)


def _doubt(pre: SymState, post: SymState, w: Expr) -> list[Expr]:
    """Worker ``w`` left in doubt: memory as before, except that a Staged input may be back in
    its lane (a boundary commit that did not return)."""
    out: list[Expr] = []
    for v in WORKERS:
        mine = w == v
        for name in ("tok", "reg", "mrec", "nq"):
            out.append(post[f"{name}{v}"] == pre[f"{name}{v}"])
        for name in ("om", "oq"):
            out += [b == a for a, b in zip(pre.ids(f"{name}{v}"), post.ids(f"{name}{v}"), strict=True)]
        out.append(post[f"doubt{v}"] == z3.Or(mine, pre[f"doubt{v}"]))
        for j in range(pre.n):
            a, b = pre.ids(f"mem{v}")[j], post.ids(f"mem{v}")[j]
            back = z3.And(mine, a == STAGED, b == QUEUED)
            out.append(z3.Or(b == a, back))
    return out


def _reconcile(pre: SymState, post: SymState, p: Params) -> StepFormula:
    """Worker ``w`` in doubt reads the store again: memory := its recovery."""
    w = _worker_param(p)
    guard = z3.And(wf(pre, "reg", w), wf(pre, "doubt", w))
    effect = _set_worker(
        pre, post, w, doubt=z3.BoolVal(False), mrec=pre["rec"], mem=lambda j: recovered(pre.ids("st")[j])
    )
    return StepFormula(guard, z3.And(*effect), _WORKER_FIELDS)


def _at(values: list[Expr], k: Expr) -> Expr:
    """``values[k]`` for a symbolic id ``k`` in range (an ``If`` chain)."""
    term = values[-1]
    for j in range(len(values) - 2, -1, -1):
        term = z3.If(k == j, values[j], term)
    return term


def _register_op(pre: SymState, post: SymState, p: Params) -> StepFormula:
    """Worker ``w`` registers operation ``id`` (Absent in its registry): memory only."""
    w = _worker_param(p)
    k = p.int("id", 0, pre.n)
    om = [wf_id(pre, "om", w, j) for j in range(pre.n)]
    guard = z3.And(_registered(pre, w), _at(om, k) == OP_ABSENT)
    effect = _set_worker(pre, post, w, om=lambda j: z3.If(k == j, z3.IntVal(OP_RUNNING), om[j]))
    return StepFormula(guard, z3.And(*effect), _WORKER_FIELDS)


def _finish_op(pre: SymState, post: SymState, p: Params) -> StepFormula:
    """Worker ``w`` finishes its running operation ``id`` with ``outcome`` and its next number,
    fenced (the writer's token is the lease's) when ``fencing``: the store takes the operation
    terminal with that number and the number after it as its next."""
    w = _worker_param(p)
    k = p.int("id", 0, pre.n)
    outcome = p.int("outcome", OP_COMPLETED, OP_FAILED + 1)
    seq = wf(pre, "nq", w)
    om = [wf_id(pre, "om", w, j) for j in range(pre.n)]
    guard = z3.And(_registered(pre, w), _at(om, k) == OP_RUNNING, z3.Or(z3.Not(pre["fencing"]), holds(pre, w)))
    ost, osq = pre.ids("ost"), pre.ids("osq")
    old, old_seq = _at(ost, k), _at(osq, k)
    rewritten = z3.And(in_set(old, OP_TERMINAL), z3.Or(old != outcome, old_seq != seq))
    effect = [
        post["nxt"] == seq + 1,
        post["high"] == z3.If(seq > pre["high"], seq, pre["high"]),
        post["reused"] == z3.Or(pre["reused"], seq <= pre["high"]),
        post["oundone"] == z3.Or(pre["oundone"], rewritten),
    ]
    for j in range(pre.n):
        effect.append(post.ids("ost")[j] == z3.If(k == j, outcome, ost[j]))
        effect.append(post.ids("osq")[j] == z3.If(k == j, seq, osq[j]))
    oq = [wf_id(pre, "oq", w, j) for j in range(pre.n)]
    effect += _set_worker(
        pre,
        post,
        w,
        nq=seq + 1,
        om=lambda j: z3.If(k == j, outcome, om[j]),
        oq=lambda j: z3.If(k == j, seq, oq[j]),
    )
    writes = _WORKER_FIELDS | {"nxt", "high", "reused", "oundone", "ost", "osq"}
    return StepFormula(guard, z3.And(*effect), writes)


def ownership_transitions() -> tuple[SymTransition, ...]:
    """Every transition, on the entity ``lease`` (status Free/Held/Expired)."""
    rows: list[tuple[str, Callable[[SymState, SymState, Params], StepFormula]]] = [
        ("claim", _claim),
        ("claim_refused", _claim_refused),
        ("renew", _renew),
        ("renew_lost", _renew_lost),
        ("expire", _expire),
        ("release", _release),
        ("crash", _crash),
        ("local", _local),
        ("write", _write),
        ("write_refused", _write_refused),
        ("ambiguous_landed", _ambiguous_landed),
        ("ambiguous_lost", _ambiguous_lost),
        ("reconcile", _reconcile),
        ("register_op", _register_op),
        ("finish_op", _finish_op),
    ]
    return tuple(SymTransition(name, "lease", (), None, build) for name, build in rows)


# -- invariants ----------------------------------------------------------------------------


def _typed(s: SymState) -> Expr:
    parts = [in_set(s["owner"], (NO_OWNER, *WORKERS)), s["token"] >= 0, in_set(s["rec"], RECORD_NAMES)]
    for v in WORKERS:
        parts.append(in_set(s[f"mrec{v}"], RECORD_NAMES))
        parts += [in_set(x, STATUS_NAMES) for x in s.ids(f"mem{v}")]
    parts += [in_set(x, STATUS_NAMES) for x in s.ids("st")]
    parts += [z3.And(c >= 0, c <= 2) for c in s.ids("commits")]
    parts += [s["nxt"] >= 1, s["high"] >= 0]
    parts += [in_set(x, (OP_ABSENT, *OP_TERMINAL)) for x in s.ids("ost")]
    parts += [q >= 0 for q in s.ids("osq")]
    for v in WORKERS:
        parts += [in_set(x, OP_NAMES) for x in s.ids(f"om{v}")]
        parts += [s[f"nq{v}"] >= 0, *(q >= 0 for q in s.ids(f"oq{v}"))]
    return z3.And(*parts)


def _tokens(s: SymState) -> Expr:
    """A worker registered iff it holds a token, never above the lease's; none before a claim."""
    parts = [z3.Implies(s["owner"] == NO_OWNER, s["token"] == 0)]
    for v in WORKERS:
        tok = s[f"tok{v}"]
        parts += [tok >= 0, tok <= s["token"], s[f"reg{v}"] == (tok >= 1)]
    return z3.And(*parts)


def _clean(s: SymState) -> Expr:
    """An unregistered worker holds nothing: no memory, not in doubt, record Live."""
    parts = []
    for v in WORKERS:
        empty = z3.And(
            z3.Not(s[f"doubt{v}"]),
            s[f"mrec{v}"] == LIVE,
            s[f"nq{v}"] == 0,
            *(x == ABSENT for x in s.ids(f"mem{v}")),
            *(x == OP_ABSENT for x in s.ids(f"om{v}")),
            *(q == 0 for q in s.ids(f"oq{v}")),
        )
        parts.append(z3.Implies(z3.Not(s[f"reg{v}"]), empty))
    return z3.And(*parts)


def _cls(x: Expr) -> Expr:
    return recovered(x)


def _owner_agrees(s: SymState, j: int | None = None) -> Expr:
    parts = []
    for v in WORKERS:
        ids = range(s.n) if j is None else (j,)
        same = [_cls(s.ids(f"mem{v}")[i]) == _cls(s.ids("st")[i]) for i in ids]
        if j is None:
            same.append(s[f"mrec{v}"] == s["rec"])
        parts.append(z3.Implies(z3.And(_registered(s, z3.IntVal(v)), holds(s, z3.IntVal(v))), z3.And(*same)))
    return z3.And(*parts)


def _registry_agrees(s: SymState, j: int | None = None) -> Expr:
    """The lease holder's registry (registered, in doubt or not) is the store's: per id the same
    terminal slot and number (Absent or Running in memory: Absent in the store); the same next
    number."""
    parts = []
    for v in WORKERS:
        ids = range(s.n) if j is None else (j,)
        same = []
        for i in ids:
            om, ost = s.ids(f"om{v}")[i], s.ids("ost")[i]
            terminal = in_set(om, OP_TERMINAL)
            same.append(z3.If(terminal, z3.And(ost == om, s.ids("osq")[i] == s.ids(f"oq{v}")[i]), ost == OP_ABSENT))
        if j is None:
            same.append(s[f"nq{v}"] == s["nxt"])
        parts.append(z3.Implies(z3.And(s[f"reg{v}"], holds(s, z3.IntVal(v))), z3.And(*same)))
    return z3.And(*parts)


def _store_numbers(s: SymState, j: int | None = None) -> Expr:
    """The store's numbers: ``high`` is the next number less one; a stored terminal operation's
    number is between 1 and ``high``; an Absent one has none."""
    parts = [s["high"] == s["nxt"] - 1] if j is None else []
    for i in range(s.n) if j is None else (j,):
        ost, osq = s.ids("ost")[i], s.ids("osq")[i]
        parts.append(z3.If(ost == OP_ABSENT, osq == 0, z3.And(osq >= 1, osq <= s["high"])))
    return z3.And(*parts)


def ownership_invariants() -> tuple[SymInvariant, ...]:
    return (
        SymInvariant("ownership.typed", "value ranges of every field", _typed),
        SymInvariant("lease.tokens", "registered iff a token; tokens never above the lease's", _tokens),
        SymInvariant("worker.unregistered_is_clean", "an unregistered worker holds no memory", _clean),
        SymInvariant(
            "owner.agrees_with_store",
            "the lease holder, registered and not in doubt, agrees with the store on every input "
            "(Staged read as Queued) and on the lifecycle record",
            lambda s: _owner_agrees(s),
            lambda s, j: _owner_agrees(s, j),
        ),
        per_id_invariant(
            "input.consumed_once",
            "no_input_consumed_twice: the store took at most one boundary commit per input",
            lambda s, j: s.ids("commits")[j] <= 1,
        ),
        per_id_invariant(
            "input.consumed_stays_consumed",
            "consumed_stays_consumed: an input the store recorded Consumed is still Consumed there",
            lambda s, j: z3.Implies(s.ids("commits")[j] >= 1, s.ids("st")[j] == CONSUMED),
        ),
        SymInvariant(
            "runtime.halt_never_undone",
            "halt_never_undone: no write moved a stored halt away from a worker that had not seen it; "
            "destroyed stays Destroyed",
            lambda s: z3.And(z3.Not(s["undone"]), z3.Implies(s["destroyed"], s["rec"] == DESTROYED)),
        ),
        SymInvariant(
            "op.owner_registry_agrees",
            "owner_registry_agrees_with_store (also for a holder in doubt): the holder's registry holds "
            "the store's terminal operations with their numbers, and the store's next number",
            lambda s: _registry_agrees(s),
            lambda s, j: _registry_agrees(s, j),
        ),
        SymInvariant(
            "op.store_numbers",
            "strengthening: the store's next number is one above the largest it took; stored numbers "
            "lie between 1 and it",
            lambda s: _store_numbers(s),
            lambda s, j: _store_numbers(s, j),
        ),
        SymInvariant(
            "op.seqs_never_reused",
            "completion_seqs_never_reused: the store never took a completion sequence number twice",
            lambda s: z3.Not(s["reused"]),
        ),
        SymInvariant(
            "op.terminal_never_undone",
            "op_terminal_never_undone: no stored terminal operation was rewritten to another outcome or number",
            lambda s: z3.Not(s["oundone"]),
        ),
    )


def _initial(s: SymState) -> Expr:
    parts = [s["owner"] == NO_OWNER, s["token"] == 0, s["expired"], s["rec"] == LIVE]
    parts += [z3.Not(s["undone"]), z3.Not(s["destroyed"])]
    for v in WORKERS:
        parts += [s[f"tok{v}"] == 0, z3.Not(s[f"reg{v}"]), z3.Not(s[f"doubt{v}"]), s[f"mrec{v}"] == LIVE]
        parts += [x == ABSENT for x in s.ids(f"mem{v}")]
    parts += [x == ABSENT for x in s.ids("st")]
    parts += [c == 0 for c in s.ids("commits")]
    parts += [s["nxt"] == 1, s["high"] == 0, z3.Not(s["reused"]), z3.Not(s["oundone"])]
    parts += [x == OP_ABSENT for x in s.ids("ost")] + [q == 0 for q in s.ids("osq")]
    for v in WORKERS:
        parts += [s[f"nq{v}"] == 0, *(x == OP_ABSENT for x in s.ids(f"om{v}")), *(q == 0 for q in s.ids(f"oq{v}"))]
    return z3.And(*parts)


def build_ownership_machine(
    n: int, *, fencing: bool = True, transitions: tuple[SymTransition, ...] | None = None
) -> SymbolicMachine:
    """Two workers on one store with ``n`` input ids; ``fencing`` fixes the store's fence (the
    proofs need it on; off, z3 finds the double run). ``transitions`` replaces the rows."""
    if n < 1:
        raise ValueError(f"need at least one input id, got {n}")
    return SymbolicMachine(
        name="ownership",
        n=n,
        fields=FIELDS,
        initial=_initial,
        domain=lambda s: s["fencing"] == fencing,
        transitions=ownership_transitions() if transitions is None else transitions,
        invariants=ownership_invariants(),
        labels={
            "rec": RECORD_NAMES,
            "mrec0": RECORD_NAMES,
            "mrec1": RECORD_NAMES,
            "st": STATUS_NAMES,
            "mem0": STATUS_NAMES,
            "mem1": STATUS_NAMES,
            "ost": OP_NAMES,
            "om0": OP_NAMES,
            "om1": OP_NAMES,
        },
    )
