"""``SessionMachine``: the reference model of one persistent session's runtime.

The state (``meerkat_model.session.state``) keeps memory and the store side by side, so crashes
and recovery are ordinary steps. Input ids are small ints ``0..inputs-1``; the harness maps them
to runtime ids. Semantics: docs/semantics.md, "Session runtime".

Actions are the records of :mod:`meerkat_model.session.actions`, each standing for one runtime
call or event: ``Register`` (``register_session``, recovering from the store), ``BeginAttach`` /
``FinishAttach`` / ``AttachFailed`` (attaching the runtime loop), ``Accept(i, lane, idem, skey,
coalesce, ephemeral)`` and ``AcceptInvalid(i)`` (``accept_input``), ``AcceptAndRun(i, idem)``
(``accept_input_and_run``: a run its caller drives, without a loop), ``StartRun`` (the loop
stages the next input), ``ExecutorSucceeded(with_result)`` / ``ExecutorFailed`` /
``ExecutorCancelled`` / ``BoundaryCommitFails`` / ``TerminalSnapshotFails`` (how a run ends),
``Interrupt``, the control
operations ``Retire`` / ``Reset`` / ``Recycle`` / ``Stop`` / ``Destroy`` / ``Recover`` (the store
re-read in place), ``Unregister``,
``Crash`` (the process dies; a later ``Register`` recovers) and ``WriteFails(inner)`` (``inner``
with the store's next write failing: ``durable_write_failed``, nothing changes).

Outputs are tuples such as ``("accepted", i)``, ``("deduplicated", i, existing, has_handle)``,
``("rejected", i, reason)``, ``("staged", i, attempt)``, ``("consumed", i)``,
``("requeued", i, attempts)``, ``("abandoned", i, reason)``, ``("superseded", old, new)``,
``("resolved", i, waiter_outcome)``, ``("error", kind, what)``, ``("direct_result", i, outcome)``
(what the caller of ``accept_input_and_run`` is told when its run ends).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from meerkat_model.machine import Bounds, Invariant, Machine, Rejected, Statuses, StepCheck, Stepped, TransitionDecl
from meerkat_model.session import admission, control, registration, run_loop
from meerkat_model.session.actions import (
    CONTROL,
    WRITES_WHEN_OK,
    Accept,
    AcceptAndRun,
    AcceptInvalid,
    AttachFailed,
    BeginAttach,
    BoundaryCommitFails,
    Crash,
    Destroy,
    ExecutorCancelled,
    ExecutorFailed,
    ExecutorFailedFatal,
    ExecutorSucceeded,
    FinishAttach,
    Interrupt,
    Recover,
    Recycle,
    Register,
    Reset,
    Retire,
    SessionAction,
    StartRun,
    Stop,
    TerminalSnapshotFails,
    Unregister,
    WriteFails,
)
from meerkat_model.session.admission import deduplicating_input
from meerkat_model.session.bounds import SessionBounds
from meerkat_model.session.check_memo import remembered_with_views
from meerkat_model.session.fast_steps import FastSteps
from meerkat_model.session.invariants import HANDLE_READERS, STEP_CHECKS, invariants_for
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
from meerkat_model.session.step_claims import refuses_by_status, status_key, write_failing_pairs
from meerkat_model.session.step_memo import StepMemo
from meerkat_model.session.symmetry import canonical
from meerkat_model.session.transitions import SESSION_GIVE_UPS, SESSION_TRANSITIONS, status_name
from meerkat_model.vocab import rejections
from meerkat_model.vocab.statuses import RegistrationPhase, RuntimePhase

StepResult = Stepped[SessionState] | Rejected

_AcceptChoice = tuple[int, Accept, tuple[SessionAction, ...]]
"""Accepts of one fresh input with one idempotency key: the key, the single accept offered
when the key deduplicates, and every accept (with its write-failure variant) offered otherwise."""


def _refuse(detail: str) -> Callable[[SessionState], StepResult]:
    refused = Rejected(rejections.VALIDATION_FAILED, detail)
    return lambda state: refused


class SessionMachine(Machine[SessionState, SessionAction]):
    """The session runtime under ``bounds`` (see ``meerkat_model.session.bounds``). With
    ``memo`` (the default) step results and most invariant results are remembered per core
    (``meerkat_model.session.step_memo``, ``meerkat_model.session.check_memo``);
    :meth:`clear_step` is the step without that memory."""

    name = "session"

    def __init__(self, bounds: Bounds | None = None, *, memo: bool = True) -> None:
        self.bounds = SessionBounds.from_bounds(bounds or Bounds())
        b = self.bounds
        # Every action is built once here and shared by every state.
        register: tuple[SessionAction, ...] = (Register(),)
        self._unregistered = (*register, WriteFails(register[0])) if b.write_failures else register
        self._accepts = [self._accept_choices(i) for i in range(b.inputs)]
        self._invalid = [AcceptInvalid(i) for i in range(b.inputs)] if b.invalid else []
        self._direct = [self._direct_choices(i) for i in range(b.inputs)] if b.direct else []
        attach = (Register(), BeginAttach(), FinishAttach(), AttachFailed())
        idle: list[SessionAction] = [StartRun()]
        running: list[SessionAction] = [ExecutorSucceeded(1), ExecutorSucceeded(0)]
        if b.failures:
            running += [ExecutorFailed(), BoundaryCommitFails(), TerminalSnapshotFails()]
            if b.fatal_errors:
                running.append(ExecutorFailedFatal())
        rest: list[SessionAction] = []
        if b.interrupt:
            interrupt = Interrupt()
            idle.append(interrupt)
            running += [interrupt, ExecutorCancelled()]
            if b.write_failures:
                running.append(WriteFails(interrupt))
        if b.control:
            for action in (*CONTROL, Recover()):
                rest.append(action)
                if b.write_failures:
                    rest.append(WriteFails(action))
        if b.unregister:
            rest.append(Unregister())
        if b.crash:
            rest.append(Crash())
        self._idle_tail = (*attach, *idle, *rest)
        self._running_tail = (*attach, *running, *rest)
        shared: list[SessionAction] = [*self._unregistered, *self._invalid, *self._idle_tail, *self._running_tail]
        for choices in self._accepts:
            for _, deduplicated, accepts in choices:
                shared += [deduplicated, *accepts]
        for direct in self._direct:
            shared += direct
        # Every action is shared by every state, so its step function is bound once too,
        # keyed by the record's identity (this machine keeps each keyed record alive); any
        # other action is bound when it is stepped.
        self._bound = {id(a): self.bind(a) for a in shared}
        self._partition_keys: dict[tuple[Attrs | None, ...], Hashable] = {}
        # Every step changes handles only by resolving pending ones, but an accept (it creates
        # its input's handle) and a crash (it drops them all): ``StepMemo`` records the others
        # from one run.
        resolves_only = [a for a in shared if not isinstance(a, Accept | Crash)]
        # the steps whose refusals are a function of the session's status share them between cores
        keyed = [a for a in shared if refuses_by_status(a)]
        # the priciest steps' work shared by what they read (``fast_steps``), beneath the memory
        self._fast = FastSteps(self.clear_step, self._bound, shared) if memo else None
        self._memo = (
            StepMemo(
                self._fast.step if self._fast is not None else self.clear_step,
                shared,
                resolves_only=resolves_only,
                refusal_key=status_key,
                keyed=keyed,
                write_failing=write_failing_pairs(shared),
            )
            if memo
            else None
        )
        # the memory answers for ``step`` only when a subclass does not override it
        self._step_memo = self._memo if type(self).step is SessionMachine.step else None
        if self._step_memo is not None:
            self.step = self._step_memo.step  # type: ignore[method-assign]  # the same step, one call less
        checks = invariants_for(b.max_attempts)
        self._invariants = checks
        if memo:
            self._invariants, (statuses,) = remembered_with_views(checks, HANDLE_READERS, (self.clear_statuses,))
            if type(self).statuses is SessionMachine.statuses:  # not overridden: the view, one call less
                self.statuses = statuses  # type: ignore[method-assign,assignment]

    def _accept_choices(self, i: int) -> list[_AcceptChoice]:
        b = self.bounds
        lanes = (Lane.QUEUE, Lane.STEER) if b.steer else (Lane.QUEUE,)
        skeys = (NO_KEY, *range(b.super_keys))
        coalesces = (0, 1) if b.coalesce else (0,)
        ephemerals = (0, 1) if b.ephemeral else (0,)
        out: list[_AcceptChoice] = []
        for idem in (NO_KEY, *range(b.idem_keys)):
            fresh: list[SessionAction] = []
            for lane in lanes:
                for skey in skeys:
                    for coalesce in coalesces if skey != NO_KEY else (0,):
                        for eph in ephemerals:
                            action = Accept(i, int(lane), idem, skey, coalesce, eph)
                            fresh.append(action)
                            if b.write_failures and idem == NO_KEY and skey == NO_KEY and not eph:
                                fresh.append(WriteFails(action))
            out.append((idem, Accept(i, int(Lane.QUEUE), idem, NO_KEY, 0, 0), tuple(fresh)))
        return out

    def _direct_choices(self, i: int) -> tuple[SessionAction, ...]:
        """``accept_input_and_run`` of input ``i``: with each idempotency key (or none), and
        without a key with the store write failing."""
        b = self.bounds
        out: list[SessionAction] = [AcceptAndRun(i, idem) for idem in (NO_KEY, *range(b.idem_keys))]
        if b.write_failures:
            out.append(WriteFails(AcceptAndRun(i, NO_KEY)))
        return tuple(out)

    # --- the protocol -------------------------------------------------------------------

    def initial_state(self) -> SessionState:
        return initial_state(self.bounds.inputs)

    def actions(self, state: SessionState) -> Sequence[SessionAction]:
        """Every call worth trying in ``state`` (some are refused): accepts of the first input
        id not used yet (one per idempotency key that deduplicates; accept-and-run with each
        key), then registration and
        attachment, the run's start or its ends, interrupt, control, unregister, crash."""
        memory = state.memory
        if memory is None:
            return self._unregistered
        out: list[SessionAction] = []
        attrs = state.attrs
        if None in attrs:
            fresh = attrs.index(None)
            for idem, deduplicated, accepts in self._accepts[fresh]:
                if deduplicating_input(state, idem) is not None:
                    out.append(deduplicated)
                else:
                    out.extend(accepts)
            if self._invalid:
                out.append(self._invalid[fresh])
            if self._direct:
                out.extend(self._direct[fresh])
        out.extend(self._idle_tail if memory.run == NO_ID else self._running_tail)
        return out

    def search_actions(self, state: SessionState) -> Sequence[SessionAction]:
        """:meth:`actions` less the ones the step memory knows :meth:`step` refuses on the
        state's core (with ``memo`` and :meth:`step` not overridden; else :meth:`actions`)."""
        memo = self._step_memo
        if memo is None:
            return self.actions(state)
        return memo.enabled(state, self.actions)

    def step(self, state: SessionState, action: SessionAction) -> StepResult:
        """The runtime call ``action`` on ``state``; anything that is not a session action, or a
        malformed one, is refused with ``validation_failed``. The same as :meth:`clear_step`,
        replayed from the step memory when a state with the same core met ``action`` before."""
        memo = self._memo
        return memo.step(state, action) if memo is not None else self.clear_step(state, action)

    def clear_step(self, state: SessionState, action: SessionAction) -> StepResult:
        """:meth:`step` computed from the step functions, without the step memory."""
        call = self._bound.get(id(action))
        if call is None:
            call = self.bind(action)
        result = call(state)
        if isinstance(result, Stepped) and result.state is not state:
            kept = forget_spent_attributes(result.state)
            if kept is not result.state:
                return Stepped(kept, result.outputs, result.transition)
        return result

    def bind(self, action: SessionAction, *, write_ok: bool = True) -> Callable[[SessionState], StepResult]:
        """The step function of ``action`` (with the store's next write failing unless
        ``write_ok``), before the spent attributes are forgotten."""
        match action:
            case Accept(i, lane, idem, skey, coalesce, eph):
                try:
                    attrs = Attrs(Lane(lane), int(idem), int(skey), bool(eph))
                    index, coalescing = int(i), bool(coalesce)
                except (TypeError, ValueError) as exc:
                    return _refuse(f"malformed accept action {action!r}: {exc}")

                def accept(state: SessionState) -> StepResult:
                    return admission.accept(state, index, attrs, coalescing, write_ok=write_ok)

                return accept
            case AcceptAndRun(i, idem):
                try:
                    index, key = int(i), int(idem)
                except (TypeError, ValueError) as exc:
                    return _refuse(f"malformed accept_and_run action {action!r}: {exc}")

                def accept_and_run(state: SessionState) -> StepResult:
                    return admission.accept_and_run(state, index, key, write_ok=write_ok)

                return accept_and_run
            case AcceptInvalid(i):
                try:
                    invalid = int(i)
                except (TypeError, ValueError) as exc:
                    return _refuse(f"malformed accept_invalid action {action!r}: {exc}")
                return lambda state: admission.accept_invalid(state, invalid)
            case Register():
                limit = self.bounds.max_attempts
                return lambda state: registration.register(state, write_ok=write_ok, max_attempts=limit)
            case BeginAttach():
                return registration.begin_attach
            case FinishAttach():
                return registration.finish_attach
            case AttachFailed():
                return registration.attach_failed
            case StartRun():
                return run_loop.start_run
            case ExecutorSucceeded(with_result):
                result = bool(with_result)
                return lambda state: run_loop.executor_succeeded(state, result)
            case ExecutorFailed():
                limit = self.bounds.max_attempts
                return lambda state: run_loop.executor_failed(state, limit)
            case ExecutorFailedFatal():
                limit = self.bounds.max_attempts
                return lambda state: run_loop.executor_failed(state, limit, retryable=False)
            case ExecutorCancelled():
                return run_loop.executor_cancelled
            case BoundaryCommitFails():
                return run_loop.boundary_commit_fails
            case TerminalSnapshotFails():
                return run_loop.terminal_snapshot_fails
            case Interrupt():
                return lambda state: run_loop.interrupt(state, write_ok=write_ok)
            case Retire():
                return lambda state: control.retire(state, write_ok=write_ok)
            case Reset():
                return lambda state: control.reset(state, write_ok=write_ok)
            case Recycle():
                return lambda state: control.recycle(state, write_ok=write_ok)
            case Stop():
                return lambda state: control.stop(state, write_ok=write_ok)
            case Destroy():
                return lambda state: control.destroy(state, write_ok=write_ok)
            case Recover():
                limit = self.bounds.max_attempts
                return lambda state: control.recover(state, write_ok=write_ok, max_attempts=limit)
            case Unregister():
                return registration.unregister
            case Crash():
                return registration.crash
            case WriteFails(inner):
                if type(inner) not in WRITES_WHEN_OK:
                    return _refuse(f"{inner!r} has no store write to fail")
                return self.bind(inner, write_ok=False)
        return _refuse(f"not a session action: {action!r}")

    def invariants(self) -> Sequence[Invariant[SessionState]]:
        """The invariants under this machine's attempt limit (with ``memo``, the ones that do not
        read the handles remembered per core: ``meerkat_model.session.check_memo``)."""
        return self._invariants

    def canonical(self, state: SessionState) -> SessionState:
        return canonical(state)

    def partition_key(self, state: SessionState) -> Hashable:
        """The state's attributes: the parallel search gives every state with the same
        attributes to one worker. Every memory that shares work between states is keyed by
        something the attributes are part of (the core of the step and invariant memory, the
        attributes, memory and destroyed flag of the fast committing steps, the store key of
        the steps that read only the store), so each is served by one worker; and only accepts
        (a new input) and the forgetting of spent attributes change them, so most successors
        stay with the worker that found them (``step_claims.attributes_kept``).

        The key is the attributes with each absent input's ``None`` spelled ``()``: ``hash(None)``
        differs between runs of Python 3.11, ``hash(())`` does not, so the split of the states
        between workers is the same in every run."""
        attrs = state[0]
        key = self._partition_keys.get(attrs)
        if key is None:
            key = self._partition_keys[attrs] = tuple(() if a is None else a for a in attrs)
        return key

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

    def give_ups(self) -> Mapping[str, str]:
        """Crash, unregister, the control operations that abandon work, an interrupt, the last
        failed attempt and a failed lifecycle commit that unregisters (``SESSION_GIVE_UPS``)."""
        return SESSION_GIVE_UPS

    def describe(self, state: SessionState) -> Mapping[str, Any]:
        return describe(state)

    def statuses(self, state: SessionState) -> Statuses:
        """Registration (``Unregistered`` when not in memory), runtime phase and each input's
        phase (``Absent`` before it is accepted); ``None`` for what is not in memory. With
        ``memo`` (and this method not overridden) remembered per core beside the invariants."""
        return self.clear_statuses(state)

    def clear_statuses(self, state: SessionState) -> Statuses:
        """:meth:`statuses` computed from the state (a function of its core)."""
        m = state.memory
        if m is None:
            inputs = tuple(["Absent" if a is None else None for a in state.attrs])
            return (("registration", "Unregistered"), ("runtime", None), ("input", inputs))
        rows = m.rows
        inputs = tuple(
            [
                "Absent" if a is None else (None if (r := rows[i]) is None else status_name(r.phase))
                for i, a in enumerate(state.attrs)
            ]
        )
        return (("registration", status_name(m.registration)), ("runtime", status_name(m.phase)), ("input", inputs))

    def subjects(self, action: SessionAction) -> Sequence[tuple[str, int]]:
        """The input an accept names."""
        if type(action) is WriteFails:
            return self.subjects(action.inner)
        if isinstance(action, Accept | AcceptInvalid):
            return (("input", action.i),)
        return ()

    def step_checks(self) -> Sequence[StepCheck[SessionState, SessionAction]]:
        return STEP_CHECKS

    def action_label(self, action: SessionAction) -> str:
        return action_label(action)

    # --- for the conformance harness ------------------------------------------------------

    def observe(self, state: SessionState) -> dict[str, Any]:
        """Plain data comparable with what the runtime exposes (see ``meerkat_model.session.observe``)."""
        return observe(state)
