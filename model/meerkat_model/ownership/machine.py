"""``OwnershipMachine``: several workers (each one ``MeerkatMachine``) sharing one store.

The state (``meerkat_model.ownership.state``) holds the store (the session model's durable
part plus the lease) and each worker's memory of the session (the session model's memory).
A worker's session steps are the session model's rules applied to its view; this machine adds
claims, renewals, expiry, takeover, release, crashes, the fence on every durable write, and
writes whose outcome is unknown (``meerkat_model.ownership.steps``). Semantics:
docs/semantics.md, "Ownership (several workers on one store)" and "Unknown write outcomes".

Bounds: ``meerkat_model.ownership.bounds`` (``fencing=0`` switches the fence off: the store
ignores tokens, and the verifier finds the shortest trace that breaks an invariant).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from meerkat_model.machine import Bounds, Invariant, Machine, Rejected, Stepped, TransitionDecl
from meerkat_model.ownership import op_steps, steps
from meerkat_model.ownership.actions import (
    Ambiguous,
    AmbiguousFinishOp,
    ClaimRegister,
    CrashWorker,
    Expire,
    FinishOp,
    On,
    OwnershipAction,
    Reconcile,
    RegisterOp,
    Release,
    Renew,
)
from meerkat_model.ownership.bounds import OwnershipBounds
from meerkat_model.ownership.invariants import INVARIANTS
from meerkat_model.ownership.observe import action_label, describe, observe
from meerkat_model.ownership.op_slots import ABSENT, COMPLETED, OUTCOMES, RUNNING
from meerkat_model.ownership.state import NO_OWNER, OwnershipState, holds_fence, initial_state, view
from meerkat_model.ownership.symmetry import canonical
from meerkat_model.ownership.transitions import GIVE_UPS, ownership_transitions
from meerkat_model.session.actions import (
    CONTROL,
    Accept,
    AttachFailed,
    Crash,
    ExecutorSucceeded,
    Recover,
    Recycle,
    Register,
    Reset,
    SessionAction,
    Unregister,
)
from meerkat_model.session.machine import SessionMachine
from meerkat_model.vocab import rejections

StepResult = Stepped[OwnershipState] | Rejected

_REPLACED = (Register, Unregister, Crash)
"""Session actions this machine replaces with its own (claim, release, crash of a worker)."""
_NOT_OFFERED = (*_REPLACED, AttachFailed, Reset, Recycle, Recover)
"""Session actions a worker is not offered: the replaced ones, and ones whose effect on the
store is another worker-local full commit already covered (reset, recycle, recover; a failed
attach writes nothing). ``step`` still takes them."""


def _refuse(detail: str) -> Callable[[OwnershipState], StepResult]:
    refused = Rejected(rejections.VALIDATION_FAILED, detail)
    return lambda state: refused


class OwnershipMachine(Machine[OwnershipState, OwnershipAction]):
    """``workers`` workers on one store under ``bounds`` (see ``meerkat_model.ownership.bounds``)."""

    name = "ownership"

    def __init__(self, bounds: Bounds | None = None) -> None:
        self.bounds = OwnershipBounds.from_bounds(bounds or Bounds())
        b = self.bounds
        self.session = SessionMachine(Bounds(_session_values(b)))
        self._workers = range(b.workers)
        self._expire = Expire()
        values = _session_values(b)
        enabled = {k for k, v in values.items() if v} | ({"ops"} if b.ops else set())
        enabled |= {"accepts"} if b.accepts else set()
        enabled |= {"ambiguous"} if b.ambiguous else set()
        enabled |= {"readback"} if b.readback else set()
        self._transitions = ownership_transitions(frozenset(enabled))
        self._bound: dict[OwnershipAction, Callable[[OwnershipState], StepResult]] = {}
        self._registry_probes: list[list[OwnershipAction]] = [[] for _ in self._workers]
        for w in self._workers:
            for op in range(b.ops):
                self._registry_probes[w].append(RegisterOp(w, op))
                self._registry_probes[w] += [FinishOp(w, op, outcome) for outcome in OUTCOMES]

    # --- the protocol -------------------------------------------------------------------

    def initial_state(self) -> OwnershipState:
        return initial_state(self.bounds.session.inputs, self.bounds.workers, self.bounds.ops)

    def actions(self, state: OwnershipState) -> Sequence[OwnershipAction]:
        """Per worker: claim and register when it holds no session; otherwise its session
        actions (each with an ambiguous-write variant when it writes), its registry's steps
        (register an untracked operation, finish a running one), renew, release, crash, or
        reconcile alone when it is in doubt. Then the passing of time. With ``probes`` every
        registry call of every worker is offered too, whatever the operation's state (the ones
        the model refuses are tried and must be refused)."""
        out: list[OwnershipAction] = []
        b = self.bounds
        for w in self._workers:
            worker = state.workers[w]
            if b.probes:
                out += self._registry_probes[w]
            if worker.memory is None:
                out.append(ClaimRegister(w))
                continue
            if worker.in_doubt:
                out += [Reconcile(w), Renew(w), Release(w), CrashWorker(w)]
                continue
            for inner in self.session.actions(view(state, w)):
                if isinstance(inner, _NOT_OFFERED) or (not b.accepts and isinstance(inner, Accept)):
                    continue
                out.append(On(w, inner))
                if b.ambiguous and _ambiguous_candidate(inner):
                    out += [Ambiguous(w, inner, 1), Ambiguous(w, inner, 0)]
            for op, slot in enumerate(worker.ops):
                if slot == RUNNING and b.ambiguous:  # one outcome: settling a write in doubt ignores it
                    out += [AmbiguousFinishOp(w, op, COMPLETED, 1), AmbiguousFinishOp(w, op, COMPLETED, 0)]
                if b.probes:
                    continue
                if slot == RUNNING:
                    out += [FinishOp(w, op, outcome) for outcome in OUTCOMES]
                elif slot == ABSENT:
                    out.append(RegisterOp(w, op))
            out += [Renew(w), Release(w), CrashWorker(w)]
        if state.lease.owner != NO_OWNER and not state.lease.expired:
            out.append(self._expire)
        return out

    def step(self, state: OwnershipState, action: OwnershipAction) -> StepResult:
        """The runtime call or event ``action`` on ``state``; anything malformed is refused with
        ``validation_failed``."""
        call = self._bound.get(action)
        if call is None:
            call = self._bound[action] = self.bind(action)
        return call(state)

    def bind(self, action: OwnershipAction) -> Callable[[OwnershipState], StepResult]:
        """The step function of ``action``."""
        b = self.bounds
        fencing = b.fencing
        bind = self.session.bind
        if isinstance(action, Expire):
            return steps.expire
        w = getattr(action, "w", None)
        if not isinstance(w, int) or not 0 <= w < b.workers:
            return _refuse(f"{action!r}: no such worker")
        match action:
            case RegisterOp(_, op) | FinishOp(_, op) | AmbiguousFinishOp(_, op) if not (
                isinstance(op, int) and 0 <= op < b.ops
            ):
                return _refuse(f"{action!r}: no such operation id")
            case RegisterOp(_, op):
                return lambda state: op_steps.register_op(state, w, op)
            case FinishOp(_, op, outcome):
                if outcome not in OUTCOMES:
                    return _refuse(f"{action!r}: no such outcome")
                return lambda state: op_steps.finish_op(state, w, op, outcome, fencing)
            case AmbiguousFinishOp(_, op, outcome, landed):
                if outcome not in OUTCOMES or landed not in (0, 1):
                    return _refuse(f"{action!r}: no such outcome")
                return lambda state: op_steps.ambiguous_finish_op(state, w, op, outcome, bool(landed), fencing)
            case ClaimRegister():
                return lambda state: steps.claim_register(state, w, b)
            case Renew():
                return lambda state: steps.renew(state, w)
            case Release():
                return lambda state: steps.release(state, w)
            case CrashWorker():
                return lambda state: steps.crash(state, w)
            case Reconcile():
                readback = b.readback
                return lambda state: (
                    op_steps.reconcile_op(state, w, readback) if state.workers[w].pending else steps.reconcile(state, w)
                )
            case On(_, inner):
                if isinstance(inner, _REPLACED):
                    return _refuse(f"{inner!r} is done by the ownership actions")
                return lambda state: steps.session_step(state, w, inner, bind, fencing)
            case Ambiguous(_, inner, landed):
                if not _ambiguous_candidate(inner):
                    return _refuse(f"{inner!r} has no write whose outcome can be unknown")
                took = bool(landed)
                return lambda state: steps.ambiguous(state, w, inner, took, bind, fencing)
        return _refuse(f"not an ownership action: {action!r}")

    def invariants(self) -> Sequence[Invariant[OwnershipState]]:
        return INVARIANTS

    def canonical(self, state: OwnershipState) -> OwnershipState:
        return canonical(state)

    def obligations(self, state: OwnershipState) -> Sequence[str]:
        """A worker in doubt must reconcile; the worker holding the lease owes what the session
        model says it owes."""
        out: list[str] = []
        for w, worker in enumerate(state.workers):
            if worker.in_doubt:
                out.append(f"worker {w} must reconcile")
            elif worker.memory is not None and holds_fence(state, w):
                out.extend(f"worker {w}: {o}" for o in self.session.obligations(view(state, w)))
        return out

    def transitions(self) -> Sequence[TransitionDecl]:
        return self._transitions

    def give_ups(self) -> Mapping[str, str]:
        """The worker's crash and unregister (``GIVE_UPS``) and the session model's give-ups,
        those of them a worker can take under these bounds."""
        declared = {t.name for t in self._transitions}
        return {name: why for name, why in {**self.session.give_ups(), **GIVE_UPS}.items() if name in declared}

    def describe(self, state: OwnershipState) -> Mapping[str, Any]:
        return describe(state)

    def action_label(self, action: OwnershipAction) -> str:
        return action_label(action)

    # --- for the conformance harness ------------------------------------------------------

    def observe(self, state: OwnershipState) -> dict[str, Any]:
        """Plain data comparable with what the runtime workers expose (``observe`` module)."""
        return observe(state)


def _ambiguous_candidate(inner: SessionAction) -> bool:
    """Session actions whose write may be left with an unknown outcome: a plain accept, a
    control operation and a run's boundary commit (with a result)."""
    if isinstance(inner, Accept):
        return inner.idem < 0 and inner.skey < 0 and not inner.ephemeral
    return inner in CONTROL or inner == ExecutorSucceeded(1)


def _session_values(b: OwnershipBounds) -> dict[str, int]:
    s = b.session
    return {
        "inputs": s.inputs,
        "steer": int(s.steer),
        "idem_keys": s.idem_keys,
        "super_keys": s.super_keys,
        "coalesce": int(s.coalesce),
        "ephemeral": int(s.ephemeral),
        "invalid": int(s.invalid),
        "failures": int(s.failures),
        "interrupt": int(s.interrupt),
        "control": int(s.control),
        "unregister": int(s.unregister),
        "crash": int(s.crash),
        "write_failures": int(s.write_failures),
        "max_attempts": s.max_attempts,
        "fatal_errors": int(s.fatal_errors),
        "direct": int(s.direct),
    }
