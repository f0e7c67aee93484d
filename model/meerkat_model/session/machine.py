"""``SessionMachine``: the reference model of one persistent session's runtime.

The state (``meerkat_model.session.state``) keeps memory and the store side by side, so crashes
and recovery are ordinary steps. Input ids are small ints ``0..inputs-1``; the harness maps them
to runtime ids. Semantics: docs/semantics.md, "Session runtime".

Action vocabulary (hashable tuples, first element the name) and the runtime call each stands for:

====================================================  ==============================================
action                                                runtime
====================================================  ==============================================
``("register",)``                                     ``register_session`` (recovers from the store)
``("begin_attach",)``                                 ``ensure_session_with_executor`` claims the loop
``("finish_attach",)``                                the loop is published (registration Active)
``("attach_failed",)``                                spawning the loop failed; the claim is released
``("accept", i, lane, idem, skey, coalesce, eph)``    ``accept_input`` of a new input ``i`` (with a
                                                      completion handle): ``lane`` 0 queue / 1 steer;
                                                      ``idem`` idempotency key or -1; ``skey``
                                                      supersession key or -1; ``coalesce`` 1: coalesce
                                                      instead of supersede; ``eph`` 1: ephemeral
``("accept_invalid", i)``                             ``accept_input`` of an invalid input (a prompt
                                                      with durability derived): outcome Rejected
``("start_run",)``                                    the loop stages the next input, calls the executor
``("executor_succeeded", with_result)``               the executor returns (``with_result`` 1: a result)
``("executor_failed",)``                              the executor fails
``("boundary_commit_fails",)``                        the executor succeeds; ``atomic_apply`` fails
``("terminal_snapshot_fails",)``                      the executor fails; the lifecycle commit fails
``("interrupt",)``                                    ``interrupt_current_run``
``("retire",)`` ``("reset",)`` ``("recycle",)``         ``retire_runtime`` / ``reset_runtime`` /
``("stop",)`` ``("destroy",)``                        ``recycle_runtime`` / ``stop_runtime`` /
                                                      ``destroy_runtime``
``("unregister",)``                                   ``unregister_session``
``("crash",)``                                        the process dies (nothing shut down); follow
                                                      with ``("register",)`` to recover
``("write_fails", inner)``                            ``inner`` (accept, interrupt, a control
                                                      operation, register) with the store's next
                                                      write failing: ``durable_write_failed``,
                                                      nothing changes
====================================================  ==============================================

Outputs are tuples such as ``("accepted", i)``, ``("deduplicated", i, existing, has_handle)``,
``("rejected", i, reason)``, ``("staged", i, attempt)``, ``("consumed", i)``,
``("requeued", i, attempts)``, ``("abandoned", i, reason)``, ``("superseded", old, new)``,
``("resolved", i, waiter_outcome)``, ``("error", kind, what)``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping, Sequence
from typing import Any

from meerkat_model.machine import Bounds, Invariant, Rejected, Stepped, TransitionDecl
from meerkat_model.session import admission, control, registration, run_loop
from meerkat_model.session.admission import deduplicating_input
from meerkat_model.session.bounds import SessionBounds
from meerkat_model.session.invariants import INVARIANTS
from meerkat_model.session.observe import action_label, describe, observe
from meerkat_model.session.state import (
    NO_ID,
    NO_KEY,
    Attrs,
    Lane,
    SessionState,
    Waiter,
    forget_spent_attributes,
    initial_state,
)
from meerkat_model.session.symmetry import canonical
from meerkat_model.session.transitions import SESSION_TRANSITIONS
from meerkat_model.vocab import rejections
from meerkat_model.vocab.statuses import RegistrationPhase, RuntimePhase

Action = tuple[Any, ...]
StepResult = Stepped[SessionState] | Rejected

_CONTROL = (("retire",), ("reset",), ("recycle",), ("stop",), ("destroy",))
_WRITES_WHEN_OK = frozenset({"accept", "interrupt", "retire", "reset", "recycle", "stop", "destroy", "register"})


class SessionMachine:
    """The session runtime under ``bounds`` (see ``meerkat_model.session.bounds``)."""

    name = "session"

    def __init__(self, bounds: Bounds | None = None) -> None:
        self.bounds = SessionBounds.from_bounds(bounds or Bounds())

    # --- the protocol -------------------------------------------------------------------

    def initial_state(self) -> SessionState:
        return initial_state(self.bounds.inputs)

    def actions(self, state: SessionState) -> Iterator[Action]:
        b = self.bounds
        memory = state.memory
        if memory is None:
            yield ("register",)
            if b.write_failures:
                yield ("write_fails", ("register",))
            return
        fresh = next((i for i, a in enumerate(state.attrs) if a is None), None)
        if fresh is not None:
            yield from self._accepts(state, fresh)
            if b.invalid:
                yield ("accept_invalid", fresh)
        yield ("register",)
        yield ("begin_attach",)
        yield ("finish_attach",)
        yield ("attach_failed",)
        if memory.run == NO_ID:
            yield ("start_run",)
        else:
            yield ("executor_succeeded", 1)
            yield ("executor_succeeded", 0)
            if b.failures:
                yield ("executor_failed",)
                yield ("boundary_commit_fails",)
                yield ("terminal_snapshot_fails",)
        if b.interrupt:
            yield ("interrupt",)
            if b.write_failures and memory.run != NO_ID:
                yield ("write_fails", ("interrupt",))
        if b.control:
            for action in _CONTROL:
                yield action
                if b.write_failures:
                    yield ("write_fails", action)
        if b.unregister:
            yield ("unregister",)
        if b.crash:
            yield ("crash",)

    def _accepts(self, state: SessionState, i: int) -> Iterator[Action]:
        b = self.bounds
        lanes = (Lane.QUEUE, Lane.STEER) if b.steer else (Lane.QUEUE,)
        idems = (NO_KEY, *range(b.idem_keys))
        skeys = (NO_KEY, *range(b.super_keys))
        coalesces = (0, 1) if b.coalesce else (0,)
        ephemerals = (0, 1) if b.ephemeral else (0,)
        for idem in idems:
            if deduplicating_input(state, idem) is not None:
                yield ("accept", i, int(Lane.QUEUE), idem, NO_KEY, 0, 0)
                continue
            for lane in lanes:
                for skey in skeys:
                    for coalesce in coalesces if skey != NO_KEY else (0,):
                        for eph in ephemerals:
                            action = ("accept", i, int(lane), idem, skey, coalesce, eph)
                            yield action
                            if b.write_failures and idem == NO_KEY and skey == NO_KEY and not eph:
                                yield ("write_fails", action)

    def step(self, state: SessionState, action: Action) -> StepResult:
        if not isinstance(action, tuple) or not action:
            return Rejected(rejections.VALIDATION_FAILED, f"not an action: {action!r}")
        if action[0] == "write_fails":
            if len(action) != 2 or not isinstance(action[1], tuple) or not action[1]:
                return Rejected(rejections.VALIDATION_FAILED, f"malformed write_fails action: {action!r}")
            inner = action[1]
            if inner[0] not in _WRITES_WHEN_OK:
                return Rejected(rejections.VALIDATION_FAILED, f"{inner[0]!r} has no store write to fail")
            return self._dispatch(state, inner, write_ok=False)
        result = self._dispatch(state, action, write_ok=True)
        if isinstance(result, Stepped) and result.state is not state:
            return Stepped(forget_spent_attributes(result.state), result.outputs, result.transition)
        return result

    def _dispatch(self, state: SessionState, action: Action, *, write_ok: bool) -> StepResult:
        name, args = action[0], action[1:]
        try:
            if name == "accept":
                i, lane, idem, skey, coalesce, eph = args
                attrs = Attrs(Lane(lane), int(idem), int(skey), bool(eph))
                return admission.accept(state, int(i), attrs, bool(coalesce), write_ok=write_ok)
            if name == "accept_invalid":
                (i,) = args
                return admission.accept_invalid(state, int(i))
            if name == "executor_succeeded":
                (with_result,) = args
                return run_loop.executor_succeeded(state, bool(with_result))
        except (TypeError, ValueError) as exc:
            return Rejected(rejections.VALIDATION_FAILED, f"malformed {name} action {action!r}: {exc}")
        if args:
            return Rejected(rejections.VALIDATION_FAILED, f"{name} takes no arguments: {action!r}")
        if name in _WITH_WRITE:
            return _WITH_WRITE[name](state, write_ok=write_ok)
        if name in _PLAIN:
            return _PLAIN[name](state)
        return Rejected(rejections.VALIDATION_FAILED, f"unknown action {name!r}")

    def invariants(self) -> Sequence[Invariant[SessionState]]:
        return INVARIANTS

    def canonical(self, state: SessionState) -> SessionState:
        return canonical(state)

    def obligations(self, state: SessionState) -> Sequence[str]:
        """Work the session still owes: a run to finish, queued work to drain while a loop is
        attached and the phase drains, an attachment to finish, pending handles to resolve."""
        m = state.memory
        out: list[str] = []
        if m is not None:
            if m.run != NO_ID:
                out.append(f"run of input {m.run} must end")
            elif (
                m.registration is RegistrationPhase.ACTIVE
                and m.phase in (RuntimePhase.ATTACHED, RuntimePhase.RETIRED)
                and (m.queue or m.steer)
            ):
                out.append("queued input must be drained by the attached loop")
            if m.registration is RegistrationPhase.ATTACHING:
                out.append("runtime loop attachment must finish")
        out.extend(f"handle of input {i} is pending" for i, w in enumerate(state.waiters) if w is Waiter.PENDING)
        return out

    def transitions(self) -> Sequence[TransitionDecl]:
        return SESSION_TRANSITIONS

    def describe(self, state: SessionState) -> Mapping[str, Any]:
        return describe(state)

    def action_label(self, action: Hashable) -> str:
        return action_label(action)

    # --- for the conformance harness ------------------------------------------------------

    def observe(self, state: SessionState) -> dict[str, Any]:
        """Plain data comparable with what the runtime exposes (see ``meerkat_model.session.observe``)."""
        return observe(state)


_WITH_WRITE = {
    "interrupt": run_loop.interrupt,
    "retire": control.retire,
    "reset": control.reset,
    "recycle": control.recycle,
    "stop": control.stop,
    "destroy": control.destroy,
    "register": registration.register,
}

_PLAIN = {
    "begin_attach": registration.begin_attach,
    "finish_attach": registration.finish_attach,
    "attach_failed": registration.attach_failed,
    "unregister": registration.unregister,
    "crash": registration.crash,
    "start_run": run_loop.start_run,
    "executor_failed": run_loop.executor_failed,
    "boundary_commit_fails": run_loop.boundary_commit_fails,
    "terminal_snapshot_fails": run_loop.terminal_snapshot_fails,
}
