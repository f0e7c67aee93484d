"""``OpsMachine``: the reference model of the operation registry (seed 001 semantics, with
the decisions of docs/semantics.md).

Actions are the records of :mod:`meerkat_model.ops.actions`, one per registry call
(``CompleteOperation(op, result)`` stands for ``complete_operation(id, result)``), plus
``DropWatcher`` (a pending watch of an active operation is dropped), ``DropWait`` (the pending
``wait_all`` is dropped), ``Crash`` (the process dies; ``from_recovered`` of the last write),
``Detach`` (the session goes away while the process lives: its waiters are released, then as
``Crash``) and ``WriteFails(inner)`` (``inner`` with the durable write failing). Ids are model
ints ``0 .. ids-1``; payloads come from :mod:`meerkat_model.ops.payloads`.

Outputs (``Stepped.outputs``), what an observer sees, in order: ``("returned", value)`` (the
call's return value: ``None``, the terminated count, or collected ``((id, outcome), ...)``),
``("watcher_resolved", id, outcome)`` (a watcher registered on a terminal op),
``("watchers_resolved", id, n, outcome)`` (n pending watchers resolved by a terminal step),
``("feed", seq, id, outcome)`` (a completion feed entry), ``("wait_all_satisfied",
((id, outcome), ...))`` (the wait result, request order), ``("watchers_released", id, n)`` and
``("wait_all_released",)`` (waiters released with an error by ``Detach``),
``("watcher_dropped", id, n)`` (a dropped watch released; n watchers still pending). An outcome is ``(kind, payload)``,
e.g. ``("completed", "r1")`` or ``("cancelled", None)``.

A ``WriteFails`` action behaves exactly like its ``inner`` action when ``inner`` is rejected or
makes no durable write; otherwise it is ``Rejected("persistence_failed")`` and the state is
unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from meerkat_model.action_record import action_name
from meerkat_model.machine import Bounds, Invariant, Machine, Rejected, Statuses, StepCheck, Stepped, TransitionDecl
from meerkat_model.ops import steps
from meerkat_model.ops.actions import (
    AbortProvisioning,
    CancelOperation,
    CollectCompleted,
    CompleteOperation,
    Crash,
    Detach,
    DropWait,
    DropWatcher,
    FailOperation,
    MarkRetired,
    OpsAction,
    PeerReady,
    ProvisioningFailed,
    ProvisioningSucceeded,
    RegisterOperation,
    RegisterWatcher,
    ReportProgress,
    RequestRetire,
    TerminateOwner,
    WaitAll,
    WriteFails,
)
from meerkat_model.ops.bounds import OpsBounds
from meerkat_model.ops.candidates import CandidateActions
from meerkat_model.ops.invariants import make_invariants, make_step_checks
from meerkat_model.ops.observe import describe_state, observe_state
from meerkat_model.ops.payloads import PayloadDomains
from meerkat_model.ops.state import OpRecord, RegistryState, empty_registry, is_terminal, status_of
from meerkat_model.ops.symmetry import Canonicalizer
from meerkat_model.ops.transitions import ALL_TRANSITIONS, GIVE_UPS, IDLE, SIDE_EFFECTS, STATUS_NAMES, WAITING
from meerkat_model.vocab import rejections as rj

Result = Stepped[RegistryState] | Rejected


class OpsMachine(Machine[RegistryState, OpsAction]):
    """The operation registry as a finite machine under :class:`OpsBounds` (see module doc)."""

    name = "ops"

    def __init__(self, bounds: Bounds | None = None, *, fast_paths: bool = True) -> None:
        """``fast_paths=False`` runs the terminal, collecting and crash steps through the plain
        effects only (the reference the fast paths are compared with; see
        :mod:`meerkat_model.ops.remembered`)."""
        self.bounds = OpsBounds.from_bounds(bounds or Bounds())
        self.domains = PayloadDomains(self.bounds.payloads)
        self.ctx = steps.Context(self.bounds, self.domains, fast_paths)
        self._canon = Canonicalizer(self.bounds.ids)
        self._invariants = make_invariants(self.bounds)
        self._step_checks = make_step_checks(self.bounds)
        self._candidates = CandidateActions(self.bounds, self.domains)
        # The candidate actions are built once and shared by every state, so their step
        # functions are bound once too, keyed by the record's identity (the candidates keep
        # every keyed record alive); any other action is bound when it is stepped.
        self._bound = {id(a): self._prepared(a) for a in self._candidates.every_action()}
        # the two status views (without and with a barrier) of each distinct tuple of slots
        self._status_views: dict[tuple[Any, ...], tuple[Statuses, Statuses]] = {}

    # --- the Machine protocol -------------------------------------------------------------

    def initial_state(self) -> RegistryState:
        return empty_registry(self.bounds.ids)

    def step(self, state: RegistryState, action: OpsAction) -> Result:
        """The registry call ``action`` on ``state``. A record from another machine (or not a
        record at all) is a usage error (``ValueError``), as is an id outside the bounds or a
        payload outside its domain."""
        bound = self._bound.get(id(action))
        if bound is None:
            return self.bind(action)(state)
        call, args = bound
        return call(self.ctx, state, *args)

    def bind(self, action: OpsAction) -> Callable[[RegistryState], Result]:
        """The step function of ``action``: its registry call with the arguments bound."""
        call, args = self._call(action)
        ctx = self.ctx
        return lambda state: call(ctx, state, *args)

    def _prepared(self, action: OpsAction) -> tuple[Callable[..., Result], tuple[Any, ...]]:
        """What :meth:`step` calls for ``action``: :meth:`_call`, or the step function of a
        subclass that overrides :meth:`bind`."""
        if type(self).bind is OpsMachine.bind:
            return self._call(action)
        bound = self.bind(action)
        return (lambda ctx, state: bound(state)), ()

    def _call(self, action: OpsAction) -> tuple[Callable[..., Result], tuple[Any, ...]]:
        """The registry call of ``action`` and its arguments after the context and the state
        (:meth:`step` calls it without a closure in between)."""
        match action:
            case RegisterOperation(op, kind):
                return steps.register_operation, (op, kind)
            case ProvisioningSucceeded(op):
                return steps.provisioning_succeeded, (op,)
            case ProvisioningFailed(op, error):
                return steps.provisioning_failed, (op, error)
            case AbortProvisioning(op, reason):
                return steps.abort_provisioning, (op, reason)
            case PeerReady(op):
                return steps.peer_ready, (op,)
            case RegisterWatcher(op):
                return steps.register_watcher, (op,)
            case DropWatcher(op):
                return steps.drop_watcher, (op,)
            case ReportProgress(op):
                return steps.report_progress, (op,)
            case CompleteOperation(op, result):
                return steps.complete_operation, (op, result)
            case FailOperation(op, error):
                return steps.fail_operation, (op, error)
            case CancelOperation(op, reason):
                return steps.cancel_operation, (op, reason)
            case RequestRetire(op):
                return steps.request_retire, (op,)
            case MarkRetired(op):
                return steps.mark_retired, (op,)
            case TerminateOwner(reason):
                return steps.terminate_owner, (reason,)
            case CollectCompleted():
                return steps.collect_completed, ()
            case WaitAll(members):
                return steps.wait_all, (members,)
            case DropWait():
                return steps.drop_wait, ()
            case Crash():
                return steps.crash, ()
            case Detach():
                return steps.detach, ()
            case WriteFails(inner):
                return (lambda ctx, state: self._step_with_failed_write(state, inner)), ()
        raise ValueError(f"unknown ops action {action!r}")

    def actions(self, state: RegistryState) -> list[OpsAction]:
        """Calls worth trying in ``state`` under the bounds: every accepted call (including
        observable no-ops), plus rejected calls and write-failure variants when the ``probes``
        bound is set (see :mod:`meerkat_model.ops.candidates`)."""
        if self.bounds.probes:
            return self._candidates.probe_actions(state)
        return self._candidates.enabled_actions(state)

    def probe_actions(self, state: RegistryState) -> list[OpsAction]:
        """Every call worth comparing in ``state``, whatever the ``probes`` bound: the enabled
        ones, the ones the model rejects, and the write-failure variants of durable calls."""
        return self._candidates.probe_actions(state)

    def invariants(self) -> Sequence[Invariant[RegistryState]]:
        return self._invariants

    def canonical(self, state: RegistryState) -> RegistryState:
        return self._canon.canonical(state)

    def obligations(self, state: RegistryState) -> Sequence[str]:
        """A pending barrier must eventually be satisfied; pending watchers must be resolved."""
        out: list[str] = []
        if state.barrier:
            waiting = [i for i in state.barrier if not is_terminal(status_of(state.ops[i]))]
            out.append(f"wait_all{state.barrier} waits for {waiting}")
        for i, rec in enumerate(state.ops):
            if isinstance(rec, OpRecord) and rec.watchers:
                out.append(f"{rec.watchers} watcher(s) of operation {i} await its outcome")
        return out

    def transitions(self) -> Sequence[TransitionDecl]:
        return ALL_TRANSITIONS

    def give_ups(self) -> Mapping[str, str]:
        """Cancel, abort, terminate_owner, a dropped wait and a crash (``GIVE_UPS``)."""
        return GIVE_UPS

    def describe(self, state: RegistryState) -> Mapping[str, Any]:
        return describe_state(state, self.domains)

    def statuses(self, state: RegistryState) -> Statuses:
        """Each operation's status (``Absent`` when not tracked) and the registry's (``Waiting``
        while a barrier is active)."""
        ops = state[0]
        views = self._status_views.get(ops)
        if views is None:
            names = STATUS_NAMES
            statuses = tuple([names.get(rec[0], f"<{rec[0]}>") if rec else "Absent" for rec in ops])
            views = self._status_views[ops] = (
                (("operation", statuses), ("registry", IDLE)),
                (("operation", statuses), ("registry", WAITING)),
            )
        return views[1] if state[4] else views[0]

    def subjects(self, action: OpsAction) -> Sequence[tuple[str, int]]:
        """The operation a per-operation call names."""
        if type(action) is WriteFails:
            return self.subjects(action.inner)
        op = getattr(action, "op", None)
        return (("operation", op),) if isinstance(op, int) else ()

    def side_effects(self) -> Sequence[TransitionDecl]:
        return SIDE_EFFECTS

    def step_checks(self) -> Sequence[StepCheck[RegistryState, OpsAction]]:
        return self._step_checks

    def action_label(self, action: OpsAction) -> str:
        """``complete_operation(0, 'r1')``; a failing write: ``<inner label> [write fails]``."""
        if type(action) is WriteFails:
            return f"{self.action_label(action.inner)} [write fails]"
        args = ", ".join(repr(a) for a in action)
        return f"{action_name(action)}({args})"

    # --- conformance ----------------------------------------------------------------------

    def observe(self, state: RegistryState) -> dict[str, Any]:
        """Plain data an observer of the runtime registry can read (ids are model ints)."""
        return observe_state(state, self.domains)

    # --- helpers --------------------------------------------------------------------------

    def _step_with_failed_write(self, state: RegistryState, inner: OpsAction) -> Result:
        result = self.step(state, inner)
        if steps.writes_durably(state, result):
            return Rejected(rj.PERSISTENCE_FAILED, f"{action_name(inner)}: the store refused the durable write")
        return result
