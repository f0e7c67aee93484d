"""``OpsMachine``: the reference model of the operation registry (seed 001 semantics, with
the decisions of docs/semantics.md).

Action vocabulary (hashable tuples; ids are model ints ``0 .. ids-1``; kinds are
:class:`~meerkat_model.vocab.statuses.OpKind` values; payloads come from
:mod:`meerkat_model.ops.payloads`):

=============================================  ==========================================
action                                         registry call
=============================================  ==========================================
``("register_operation", id, kind)``           ``register_operation(spec)``
``("provisioning_succeeded", id)``             ``provisioning_succeeded(id)``
``("provisioning_failed", id, error)``         ``provisioning_failed(id, error)``
``("abort_provisioning", id, reason)``         ``abort_provisioning(id, reason)`` (reason may be None)
``("peer_ready", id)``                         ``peer_ready(id, handle)``
``("register_watcher", id)``                   ``register_watcher(id)``
``("report_progress", id)``                    ``report_progress(id, ...)``
``("complete_operation", id, result)``         ``complete_operation(id, result)``
``("fail_operation", id, error)``              ``fail_operation(id, error)``
``("cancel_operation", id, reason)``           ``cancel_operation(id, reason)``
``("request_retire", id)``                     ``request_retire(id)``
``("mark_retired", id)``                       ``mark_retired(id)``
``("terminate_owner", reason)``                ``terminate_owner(reason)``
``("collect_completed",)``                     ``collect_completed()``
``("wait_all", (id, ...))``                    ``wait_all(ids)`` (begin, or resolve at once)
``("drop_wait",)``                             the pending ``wait_all`` is dropped/cancelled
``("crash",)``                                 process dies; ``from_recovered`` of the last write
``("write_fails", inner)``                     ``inner`` with the durable write failing
=============================================  ==========================================

Outputs (``Stepped.outputs``), what an observer sees, in order: ``("returned", value)`` (the
call's return value: ``None``, the terminated count, or collected ``((id, outcome), ...)``),
``("watcher_resolved", id, outcome)`` (a watcher registered on a terminal op),
``("watchers_resolved", id, n, outcome)`` (n pending watchers resolved by a terminal step),
``("feed", seq, id, outcome)`` (a completion feed entry), ``("wait_all_satisfied",
((id, outcome), ...))`` (the wait result, request order). An outcome is ``(kind, payload)``,
e.g. ``("completed", "r1")`` or ``("cancelled", None)``.

A ``write_fails`` variant behaves exactly like ``inner`` when ``inner`` is rejected or makes no
durable write; otherwise it is ``Rejected("persistence_failed")`` and the state is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from meerkat_model.machine import Bounds, Invariant, Rejected, Stepped, TransitionDecl
from meerkat_model.ops import steps
from meerkat_model.ops.bounds import OpsBounds
from meerkat_model.ops.candidates import CandidateActions
from meerkat_model.ops.invariants import make_invariants
from meerkat_model.ops.observe import describe_state, observe_state
from meerkat_model.ops.payloads import PayloadDomains
from meerkat_model.ops.state import OpRecord, RegistryState, empty_registry, is_terminal, status_of
from meerkat_model.ops.symmetry import Canonicalizer
from meerkat_model.ops.transitions import ALL_TRANSITIONS
from meerkat_model.vocab import rejections as rj
from meerkat_model.vocab.statuses import OpStatus

Action = tuple[Any, ...]
Result = Stepped[RegistryState] | Rejected

_ACTIVE = (int(OpStatus.PROVISIONING), int(OpStatus.RUNNING), int(OpStatus.RETIRING))
_LIVE = (int(OpStatus.RUNNING), int(OpStatus.RETIRING))
_TERMINAL_NAMES = frozenset(
    {
        "provisioning_failed",
        "abort_provisioning",
        "complete_operation",
        "fail_operation",
        "cancel_operation",
        "mark_retired",
    }
)


class OpsMachine:
    """The operation registry as a finite machine under :class:`OpsBounds` (see module doc)."""

    name = "ops"

    def __init__(self, bounds: Bounds | None = None) -> None:
        self.bounds = OpsBounds.from_bounds(bounds or Bounds())
        self.domains = PayloadDomains(self.bounds.payloads)
        self.ctx = steps.Context(self.bounds, self.domains)
        self._canon = Canonicalizer(self.bounds.ids)
        self._invariants = make_invariants(self.bounds)
        self._dispatch: dict[str, Callable[..., Result]] = {
            "register_operation": steps.register_operation,
            "provisioning_succeeded": steps.provisioning_succeeded,
            "provisioning_failed": steps.provisioning_failed,
            "abort_provisioning": steps.abort_provisioning,
            "peer_ready": steps.peer_ready,
            "register_watcher": steps.register_watcher,
            "report_progress": steps.report_progress,
            "complete_operation": steps.complete_operation,
            "fail_operation": steps.fail_operation,
            "cancel_operation": steps.cancel_operation,
            "request_retire": steps.request_retire,
            "mark_retired": steps.mark_retired,
            "terminate_owner": steps.terminate_owner,
            "collect_completed": steps.collect_completed,
            "wait_all": steps.wait_all,
            "drop_wait": steps.drop_wait,
            "crash": steps.crash,
        }
        self._candidates = CandidateActions(self.bounds, self.domains)
        self._bound: dict[Action, Callable[[RegistryState], Result]] = {}

    # --- the Machine protocol -------------------------------------------------------------

    def initial_state(self) -> RegistryState:
        return empty_registry(self.bounds.ids)

    def step(self, state: RegistryState, action: Action) -> Result:
        bound = self._bound.get(action)
        if bound is None:
            bound = self._bind(action)
        return bound(state)

    def actions(self, state: RegistryState) -> Iterable[Action]:
        """Calls worth trying in ``state`` under the bounds: every accepted call (including
        observable no-ops), plus rejected calls and write-failure variants when the ``probes``
        bound is set (see :mod:`meerkat_model.ops.candidates`)."""
        if self.bounds.probes:
            return self._candidates.probe_actions(state)
        return self._candidates.enabled_actions(state)

    def probe_actions(self, state: RegistryState) -> list[Action]:
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

    def describe(self, state: RegistryState) -> Mapping[str, Any]:
        return describe_state(state, self.domains)

    def action_label(self, action: Action) -> str:
        if action[0] == "write_fails":
            return f"{self.action_label(action[1])} [write fails]"
        args = ", ".join(repr(a) for a in action[1:])
        return f"{action[0]}({args})"

    # --- conformance ----------------------------------------------------------------------

    def observe(self, state: RegistryState) -> dict[str, Any]:
        """Plain data an observer of the runtime registry can read (ids are model ints)."""
        return observe_state(state, self.domains)

    # --- helpers --------------------------------------------------------------------------

    def _bind(self, action: Action) -> Callable[[RegistryState], Result]:
        """The step function of ``action`` with its arguments bound (cached per action)."""
        name, args, ctx = action[0], action[1:], self.ctx
        if name == "write_fails":
            inner = action[1]

            def failing(state: RegistryState) -> Result:
                return self._step_with_failed_write(state, inner)

            bound = failing
        else:
            fn = self._dispatch.get(name)
            if fn is None:
                raise ValueError(f"unknown ops action {action!r}")
            if len(args) == 1:
                (arg,) = args

                def bound(state: RegistryState) -> Result:
                    return fn(ctx, state, arg)
            else:

                def bound(state: RegistryState) -> Result:
                    return fn(ctx, state, *args)

        try:
            self._bound[action] = bound
        except TypeError:
            raise ValueError(f"ops action {action!r} is not hashable") from None
        return bound

    def _step_with_failed_write(self, state: RegistryState, inner: Action) -> Result:
        result = self.step(state, inner)
        if steps.writes_durably(state, result):
            return Rejected(rj.PERSISTENCE_FAILED, f"{inner[0]}: the store refused the durable write")
        return result
