"""Replaying one runtime's session events through the session model.

Input ids are mapped to the model's ints in the order the inputs were accepted (the model
accepts the lowest unused id); idempotency keys and supersession keys (with the input's kind:
the runtime supersedes only inputs of the same kind) are mapped to ints in order of first
appearance. The model state grows one input slot per accepted input, so a trace may hold any
number of inputs.

Each event becomes one model action (:func:`action_for`): ``register`` → ``Register`` (after a
``Crash`` when the model still holds the session in memory: the previous process died, or lost
its lease), the run and control rules → their actions, ``reconcile`` (an in-doubt session
adopting the store) → the ownership model's ``reconcile`` on a one-worker view of the state (a
Destroyed record is adopted, not refused as a registration would be). The event is explained
when the model's step is taken (not rejected), names the event's rule, and agrees with every
entity the event says moved (input, runtime phase, registration), and with the rule's details
(the input a run staged, the recovered phase and active inputs of a registration).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meerkat_model.machine import Bounds, Rejected, Stepped
from meerkat_model.ownership import steps as ownership_steps
from meerkat_model.ownership.state import Lease, OwnershipState, Worker, view
from meerkat_model.session.actions import (
    Accept,
    AcceptAndRun,
    AcceptInvalid,
    AttachFailed,
    BeginAttach,
    BoundaryCommitFails,
    Crash,
    Destroy,
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
)
from meerkat_model.session.machine import SessionMachine
from meerkat_model.session.observe import describe
from meerkat_model.session.state import NO_ID, NO_KEY, Lane, SessionState, Waiter, initial_state
from meerkat_model.vocab.statuses import MAX_STAGE_ATTEMPTS, InputPhase, RegistrationPhase, RuntimePhase
from meerkat_runtime.events.event import ABSENT, UNREGISTERED, LifecycleEvent

from meerkat_conformance.trace.reader import Located

_CONTROL: dict[str, SessionAction] = {}
for _names, _action in (
    (("retire", "retire_without_loop", "retire_noop"), Retire()),
    (("reset", "reset_with_loop"), Reset()),
    (("recycle", "recycle_with_loop"), Recycle()),
    (("stop", "stop_with_loop"), Stop()),
    (("destroy", "destroy_with_loop"), Destroy()),
    (("recover", "recover_noop"), Recover()),
    (("interrupt", "interrupt_retired", "interrupt_without_loop", "interrupt_noop"), Interrupt()),
    (("boundary_commit_failed", "boundary_commit_failed_retired"), BoundaryCommitFails()),
    (("terminal_snapshot_failed",), TerminalSnapshotFails()),
    (("begin_attach", "begin_attach_noop"), BeginAttach()),
    (("finish_attach", "finish_attach_keep_phase"), FinishAttach()),
    (("attach_failed",), AttachFailed()),
    (("unregister",), Unregister()),
    (("start_run",), StartRun()),
    (("register", "register_noop"), Register()),
):
    for _name in _names:
        _CONTROL[_name] = _action

SESSION_RULES = frozenset(
    {
        *_CONTROL,
        "accept",
        "accept_superseding",
        "accept_coalescing",
        "deduplicate",
        "reject_invalid",
        "accept_and_run",
        "executor_succeeded",
        "executor_succeeded_retired",
        "executor_succeeded_without_loop",
        "executor_failed",
        "executor_failed_retired",
        "executor_failed_without_loop",
        "executor_failed_exhausted",
        "executor_failed_exhausted_retired",
        "executor_failed_exhausted_without_loop",
        "reconcile",
    }
)
"""Every rule a session event may carry."""

_PROBES: tuple[SessionAction, ...] = (
    Register(),
    BeginAttach(),
    FinishAttach(),
    AttachFailed(),
    StartRun(),
    ExecutorSucceeded(1),
    ExecutorFailed(),
    BoundaryCommitFails(),
    TerminalSnapshotFails(),
    Interrupt(),
    Retire(),
    Reset(),
    Recycle(),
    Stop(),
    Destroy(),
    Recover(),
    Unregister(),
)


def _spell_phase(phase: InputPhase) -> str:
    return "".join(part.capitalize() for part in phase.name.split("_"))


def _spell(member: RuntimePhase | RegistrationPhase) -> str:
    return member.name.capitalize()


class Unexplained(Exception):
    """The model cannot explain an event; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class SessionReplay:
    """The model's view of one runtime while its events are replayed."""

    max_attempts: int = MAX_STAGE_ATTEMPTS
    state: SessionState = field(default_factory=lambda: initial_state(0))
    ids: dict[str, int] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    idem: dict[str, int] = field(default_factory=dict)
    skeys: dict[str, int] = field(default_factory=dict)
    steps: int = 0
    lost: list[str] = field(default_factory=list)
    """Transitions committed by a dying process that never published them (see ``_after_crash``)."""
    doubt_base: SessionState | None = None
    """The state before the last ``boundary_commit_failed`` or ``unregister`` event marked
    ``details.outcome_unknown`` (the holder in doubt), until the next event: a lost landed write
    starts there."""
    failed_boundary: SessionState | None = None
    """The state before the last ``boundary_commit_failed*`` event, marked or not, until the next
    event: an adopted run end right after it (the adopted flag itself says the commit's outcome was
    unknown and that it landed; logs written before the marker existed lack it) starts there."""
    adopting: str | None = None
    """The source of an adopted run end just replayed (``_adopt_boundary``): its ``reconcile``
    must be the runtime's next event."""
    machine: SessionMachine = field(init=False)

    def __post_init__(self) -> None:
        self.machine = self._machine(self.max_attempts)

    @staticmethod
    def _machine(max_attempts: int) -> SessionMachine:
        return SessionMachine(Bounds({"inputs": 1, "max_attempts": max_attempts, "fatal_errors": 1}))

    # --- the replay -----------------------------------------------------------------------

    def apply(self, located: Located) -> None:
        """Replay one event; :class:`Unexplained` when the model cannot explain it (the state is
        then as before the event)."""
        event = located.event
        limit = event.details.get("max_attempts")
        if isinstance(limit, int) and not isinstance(limit, bool) and limit != self.max_attempts:
            if not 1 <= limit <= 6:
                raise Unexplained(f"max_attempts {limit} is outside the model's bound (1..6)")
            self.max_attempts = limit
            self.machine = self._machine(limit)
        saved = (
            self.state,
            dict(self.ids),
            list(self.names),
            dict(self.idem),
            dict(self.skeys),
            self.doubt_base,
            self.failed_boundary,
            self.adopting,
        )
        try:
            self._apply(event)
        except Unexplained:
            (
                self.state,
                self.ids,
                self.names,
                self.idem,
                self.skeys,
                self.doubt_base,
                self.failed_boundary,
                self.adopting,
            ) = saved
            raise
        self.steps += 1

    def _apply(self, event: LifecycleEvent) -> None:
        rule = event.rule
        adopting, self.adopting = self.adopting, None
        if adopting is not None and (rule != "reconcile" or event.source != adopting):
            # memory still holds what the boundary commit's failure left (the input requeued)
            # while the store took the run's end: only the reconcile makes memory the store's
            raise Unexplained(
                f"an adopted run end must be followed by the reconcile of its worker ({adopting}); "
                f"this is {rule} of {event.source}"
            )
        base, self.doubt_base = self.doubt_base, None
        boundary, self.failed_boundary = self.failed_boundary, None
        if rule in ("boundary_commit_failed", "boundary_commit_failed_retired"):
            self.failed_boundary = self.state
        if _in_doubt(event):
            # the runtime says the holder is in doubt (a write's outcome unknown): keep the state
            # its last write started from (before a marked boundary commit failure, if any)
            self.doubt_base = base if rule == "unregister" and base is not None else self.state
        if rule == "register" and (self.state.memory is not None or base is not None):
            self._after_crash(event, self.state if base is None else base)
            return
        if rule.startswith("executor_succeeded") and event.details.get("adopted") and boundary is not None:
            self._adopt_boundary(event, boundary)
            self.adopting = event.source
            return
        self._apply_one(event)

    def _adopt_boundary(self, event: LifecycleEvent, base: SessionState) -> None:
        """A run's boundary commit whose outcome was unknown, found in the store when its worker
        reconciled: the ownership model's ``ambiguous_write_landed`` — the store took the run's
        end from ``base`` (the state before the published ``boundary_commit_failed``), memory
        kept what the failure left. The event is checked as the run's end from ``base``; the
        worker's ``reconcile`` must come next (``apply`` refuses anything else), and recovers
        memory from the store the adopted write left."""
        current = self.state
        self.state = base
        self._apply_one(event)
        self.state = self.state._replace(memory=current.memory, waiters=current.waiters)

    def _after_crash(self, event: LifecycleEvent, base: SessionState) -> None:
        """A registration after the previous holder died (or lost its lease) without
        unregistering, or after it unregistered in doubt. A process killed between a commit and
        its publication takes that one event with it (the model still holds the session in
        memory: no ``unregister`` was published), and a write whose outcome the holder never
        learnt (it was in doubt — its ``unregister`` or ``boundary_commit_failed`` says so,
        ``details.outcome_unknown`` — and released the session, died or lost its lease before it
        reconciled) is never published although it may have landed (the ownership model's
        ``ambiguous_write_landed``; a boundary commit's failure is then published for memory
        while the store took the run's end). So when crash + register alone does not give what
        the event recovered, the model may first take one durable step from ``base`` — the
        holder's last state, or the state before its last published boundary commit failure or
        before its unregistering — (its run's end, a control command, or an accept of an input
        the event names) — at most one."""
        saved = (self.state, dict(self.ids), list(self.names))
        try:
            if self.state.memory is not None:
                self._step(Crash(), "crash")
            self._apply_one(event)
            return
        except Unexplained as first:
            error = first
        for action, input_id in self._lost_candidates(base, event):
            self.state, self.ids, self.names = base, dict(saved[1]), list(saved[2])
            try:
                if input_id is not None:
                    self.state = _widen(self.state, len(self.names) + 1)
                result = self.machine.step(self.state, action)
                if isinstance(result, Rejected) or result.state is self.state:
                    continue
                self.state = result.state
                if input_id is not None:
                    self.ids[input_id] = len(self.names)
                    self.names.append(input_id)
                if self.state.memory is not None:
                    self._step(Crash(), "crash")
                self._apply_one(event)
                self.lost.append(result.transition)
                return
            except Unexplained:
                continue
        self.state, self.ids, self.names = saved[0], dict(saved[1]), list(saved[2])
        raise error

    def _lost_candidates(self, state: SessionState, event: LifecycleEvent) -> list[tuple[SessionAction, str | None]]:
        out: list[tuple[SessionAction, str | None]] = [
            (action, None)
            for action in (
                ExecutorSucceeded(1),
                ExecutorSucceeded(0),
                ExecutorFailed(),
                ExecutorFailedFatal(),
                Interrupt(),
                Retire(),
                Reset(),
                Recycle(),
                Stop(),
                Destroy(),
            )
        ]
        attrs = event.details.get("attrs")
        if isinstance(attrs, dict):
            for input_id, data in attrs.items():
                if input_id in self.ids or not isinstance(data, dict):
                    continue
                i = len(self.names)
                lane = Lane.STEER if data.get("lane") == "steer" else Lane.QUEUE
                idem = self._key(self.idem, data.get("idempotency_key"))
                skey_raw = data.get("supersession_key")
                skey = self._key(self.skeys, None if skey_raw is None else f"{data.get('kind')}:{skey_raw}")
                for coalesce in (0, 1):
                    out.append((Accept(i, int(lane), idem, skey, coalesce, 0), input_id))
        return out

    def _apply_one(self, event: LifecycleEvent) -> None:
        rule = event.rule
        if rule == "reconcile":
            self._reconcile(event)
            return
        if rule in ("accept", "accept_superseding", "accept_coalescing", "deduplicate"):
            action = self._accept(event)
        elif rule == "reject_invalid":
            action = AcceptInvalid(self._fresh())
        elif rule == "accept_and_run":
            action = self._accept_and_run(event)
        elif rule.startswith("executor_succeeded"):
            with_result = event.details.get("with_result", event.details.get("outcome") != "completed_without_result")
            action = ExecutorSucceeded(1 if with_result else 0)
        elif rule.startswith("executor_failed"):
            action = ExecutorFailedFatal() if event.details.get("retryable") is False else ExecutorFailed()
        elif rule in _CONTROL:
            action = _CONTROL[rule]
        else:
            raise Unexplained(f"unknown session rule {rule!r}")
        before = self.state
        outcome = self._outcome(action) if "outcome" in event.details else None
        stepped = self._step(action, rule)
        if _phase(before) != event.before:
            raise Unexplained(f"the event starts from runtime {event.before}; the model is {_phase(before)}")
        if rule in ("accept", "accept_superseding", "accept_coalescing", "accept_and_run"):
            self._remember_accept(event)
        self._check_changes(event, before, stepped.state)
        self._check_details(event, stepped)
        if "outcome" in event.details and event.details["outcome"] != outcome:
            said = "no outcome (the input is not finished)" if outcome is None else f"outcome {outcome!r}"
            raise Unexplained(
                f"the event's details.outcome is {event.details['outcome']!r}; "
                f"the model gives the input's waiters {said}"
            )

    def _outcome(self, action: SessionAction) -> str | None:
        """What the model's step ``action`` gives a waiter of the input of the run in flight, in
        the runtime's spelling (``completed``, ``completed_without_result``, ``cancelled``,
        ``abandoned``, ``runtime_terminated``); ``None`` when the step does not finish that input.
        Found by taking the step from the current state with that input's waiter pending."""
        memory = self.state.memory
        if memory is None or memory.run == NO_ID or memory.run >= len(self.state.waiters):
            return None
        waiters = list(self.state.waiters)
        waiters[memory.run] = Waiter.PENDING
        result = self.machine.step(self.state._replace(waiters=tuple(waiters)), action)
        if isinstance(result, Rejected):
            return None
        for output in result.outputs:
            if output and output[0] == "resolved" and output[1] == memory.run:
                name = str(output[2])
                if name.startswith("abandoned"):
                    return "abandoned"
                if name.startswith("terminated"):
                    return "runtime_terminated"
                return name
        return None

    def _step(self, action: SessionAction, rule: str) -> Stepped[SessionState]:
        result = self.machine.step(self.state, action)
        if isinstance(result, Rejected):
            raise Unexplained(f"the model refuses {self.machine.action_label(action)}: {result.kind}: {result.detail}")
        if result.transition != rule:
            raise Unexplained(f"the model's {self.machine.action_label(action)} is {result.transition!r}, not {rule!r}")
        self.state = result.state
        return result

    # --- accepts --------------------------------------------------------------------------

    def _fresh(self) -> int:
        """The model id the next accepted input takes, growing the state by one slot if needed."""
        state = self.state
        if None in state.attrs:
            return state.attrs.index(None)
        self.state = _widen(state, len(state.attrs) + 1)
        return len(state.attrs)

    def _accept(self, event: LifecycleEvent) -> SessionAction:
        details = event.details
        input_id = details.get("input")
        if not isinstance(input_id, str):
            raise Unexplained("the event does not name its input (details.input)")
        if event.rule != "deduplicate" and input_id in self.ids:
            raise Unexplained(f"input {input_id!r} was already accepted")
        i = self._fresh()
        lane = Lane.STEER if details.get("lane") == "steer" else Lane.QUEUE
        idem = self._key(self.idem, details.get("idempotency_key"))
        skey_raw = details.get("supersession_key")
        skey = self._key(self.skeys, None if skey_raw is None else f"{details.get('kind')}:{skey_raw}")
        coalesce = 1 if event.rule == "accept_coalescing" else 0
        ephemeral = 1 if details.get("ephemeral") else 0
        if event.rule == "deduplicate":
            return Accept(i, int(Lane.QUEUE), idem, NO_KEY, 0, 0)
        return Accept(i, int(lane), idem, skey, coalesce, ephemeral)

    def _accept_and_run(self, event: LifecycleEvent) -> SessionAction:
        """``accept_input_and_run``: a new input, staged at once for a run its caller drives."""
        input_id = event.details.get("input")
        if not isinstance(input_id, str):
            raise Unexplained("the event does not name its input (details.input)")
        if input_id in self.ids:
            raise Unexplained(f"input {input_id!r} was already accepted")
        return AcceptAndRun(self._fresh(), self._key(self.idem, event.details.get("idempotency_key")))

    @staticmethod
    def _key(keys: dict[str, int], value: object) -> int:
        if value is None:
            return NO_KEY
        text = str(value)
        if text not in keys:
            keys[text] = len(keys)
        return keys[text]

    def _remember_accept(self, event: LifecycleEvent) -> None:
        input_id = str(event.details["input"])
        index = len(self.names)
        self.ids[input_id] = index
        self.names.append(input_id)

    # --- reconciliation -------------------------------------------------------------------

    def _reconcile(self, event: LifecycleEvent) -> None:
        """An in-doubt session adopted the store: the ownership model's ``reconcile`` (memory
        recovered in place from the store, nothing written; a Destroyed record adopted; an
        attached loop kept unless the store says Stopped or Destroyed) on a one-worker view of
        the model's state."""
        memory = self.state.memory
        if memory is None:
            raise Unexplained("reconcile of a session the model does not hold in memory")
        state = self.state
        owned = OwnershipState(
            attrs=state.attrs,
            durable=state.durable,
            destroyed=state.destroyed,
            lease=Lease(0, 1, False),
            workers=(Worker(memory, state.waiters, 1, True),),
            commits=(0,) * len(state.attrs),
            undone=False,
        )
        result = ownership_steps.reconcile(owned, 0)
        if isinstance(result, Rejected):
            raise Unexplained(f"the model refuses reconcile: {result.kind}: {result.detail}")
        self.state = view(result.state, 0)
        adopted = self.state.memory
        assert adopted is not None
        attached = adopted.registration is RegistrationPhase.ACTIVE
        if bool(event.details.get("attached")) != attached:
            raise Unexplained(
                f"the event says the loop {'stayed' if event.details.get('attached') else 'did not stay'} attached; "
                f"the model's reconcile {'keeps' if attached else 'detaches'} it"
            )
        self._check_active(event, self.state)
        if _spell(adopted.phase) != event.after:
            raise Unexplained(f"the store recovers phase {_spell(adopted.phase)}, the event adopted {event.after}")

    # --- agreement checks -----------------------------------------------------------------

    def _status(self, state: SessionState, input_id: str) -> str:
        i = self.ids.get(input_id)
        if i is None or state.memory is None or i >= len(state.memory.rows):
            return ABSENT
        row = state.memory.rows[i]
        return ABSENT if row is None else _spell_phase(row.phase)

    def _check_changes(self, event: LifecycleEvent, before: SessionState, after: SessionState) -> None:
        """The event lists exactly the entities the model's step moved, each moved the same way."""
        listed: dict[tuple[str, str], tuple[str, str]] = {}
        for change in event.changes:
            if change.entity not in ("input", "runtime", "registration"):
                raise Unexplained(f"a session event cannot move a {change.entity!r}")
            key = (change.entity, change.id)
            if key in listed:
                raise Unexplained(f"the event lists {change.entity} {change.id} twice")
            listed[key] = (change.before, change.after)
        moved = self._moved(event, before, after)
        for key, (got_before, got_after) in listed.items():
            entity, name = key
            if key not in moved:
                now = self._current(entity, name, event, after)
                raise Unexplained(
                    f"the event moves {entity} {name} {got_before} -> {got_after}; "
                    f"the model does not move it (it is {now})"
                )
            if moved[key] != (got_before, got_after):
                model_before, model_after = moved[key]
                raise Unexplained(
                    f"the event moves {entity} {name} {got_before} -> {got_after}; "
                    f"the model moves it {model_before} -> {model_after}"
                )
        missing = [key for key in moved if key not in listed]
        if missing:
            said = "; ".join(
                f"{entity} {name} {moved[(entity, name)][0]} -> {moved[(entity, name)][1]}" for entity, name in missing
            )
            raise Unexplained(f"the model moves {said}: the event does not list it (its changes are incomplete)")
        if event.rule not in ("register", "unregister", "terminal_snapshot_failed") and _phase(after) != event.after:
            raise Unexplained(f"the event leaves the runtime {event.after}; the model leaves it {_phase(after)}")

    def _moved(
        self, event: LifecycleEvent, before: SessionState, after: SessionState
    ) -> dict[tuple[str, str], tuple[str, str]]:
        """The entities the model's step moved. A step that drops the session from memory
        (``unregister``, ``terminal_snapshot_failed``) moves only its registration: the runtime
        and its inputs leave memory, the store keeps them. A step that loads it (``register``)
        moves the registration and the runtime; the inputs it recovered are the event's
        ``details.active``, checked on their own."""
        moved: dict[tuple[str, str], tuple[str, str]] = {}
        runtime = event.runtime_id
        if _registration(before) != _registration(after):
            moved[("registration", runtime)] = (_registration(before), _registration(after))
        if after.memory is None:
            return moved
        if _phase(before) != _phase(after):
            moved[("runtime", runtime)] = (_phase(before), _phase(after))
        if before.memory is None:
            return moved
        for name in self.names:
            was, now = self._status(before, name), self._status(after, name)
            if was != now:
                moved[("input", name)] = (was, now)
        return moved

    def _current(self, entity: str, name: str, event: LifecycleEvent, state: SessionState) -> str:
        if entity == "input":
            return self._status(state, name)
        if name != event.runtime_id:
            return f"not this runtime ({event.runtime_id})"
        return _phase(state) if entity == "runtime" else _registration(state)

    def _check_details(self, event: LifecycleEvent, stepped: Stepped[SessionState]) -> None:
        details = event.details
        if event.rule == "start_run":
            staged = next((o for o in stepped.outputs if o and o[0] == "staged"), None)
            want = details.get("input")
            if staged is not None and want is not None and self.names[staged[1]] != want:
                raise Unexplained(f"the model stages input {self.names[staged[1]]!r}, the event staged {want!r}")
        elif event.rule == "deduplicate":
            existing = details.get("existing")
            found = next((o for o in stepped.outputs if o and o[0] == "deduplicated"), None)
            if found is not None and existing is not None and self.names[found[2]] != existing:
                raise Unexplained(
                    f"the model deduplicates against {self.names[found[2]]!r}, the event against {existing!r}"
                )
        elif event.rule == "register":
            self._check_active(event, stepped.state)
            memory = stepped.state.memory
            assert memory is not None
            if _spell(memory.phase) != event.after:
                raise Unexplained(f"the store recovers phase {_spell(memory.phase)}, the event says {event.after}")

    def _check_active(self, event: LifecycleEvent, state: SessionState) -> None:
        active = event.details.get("active")
        if not isinstance(active, dict):
            return
        memory = state.memory
        assert memory is not None
        model = {
            self.names[i]: _spell_phase(row.phase)
            for i, row in enumerate(memory.rows)
            if row is not None and not row.phase.is_terminal and i < len(self.names)
        }
        if model != active:
            missing = sorted(set(model) - set(active))
            extra = sorted(set(active) - set(model))
            raise Unexplained(
                f"the recovered active inputs differ from the model's: "
                f"missing {missing}, unexpected {extra}, model {model}, event {active}"
            )

    # --- reports --------------------------------------------------------------------------

    def described(self) -> dict[str, Any]:
        """The model state, with input numbers replaced by the runtime's input ids."""
        out: dict[str, Any] = {}
        for key, value in describe(self.state).items():
            for prefix in ("input", "stored", "waiter"):
                if key.startswith(prefix) and key[len(prefix) :].split(".")[0].isdigit():
                    number = int(key[len(prefix) :].split(".")[0])
                    name = self.names[number] if number < len(self.names) else f"#{number}"
                    key = key.replace(f"{prefix}{number}", f"{prefix}[{name}]", 1)
                    break
            out[key] = value
        for lane in ("queue", "steer"):
            if isinstance(out.get(lane), list | tuple):
                out[lane] = [self.names[i] if isinstance(i, int) and i < len(self.names) else i for i in out[lane]]
        run = out.get("run")
        if isinstance(run, int) and run != NO_ID and run < len(self.names):
            out["run"] = self.names[run]
        return out

    def enabled(self) -> list[str]:
        """The transitions the model could take now (a fresh accept and every other action)."""
        names: list[str] = []
        probes: list[SessionAction] = list(_PROBES)
        if self.state.memory is not None:
            fresh = self.state.attrs.index(None) if None in self.state.attrs else len(self.state.attrs)
            grown = _widen(self.state, fresh + 1)
            result = self.machine.step(grown, Accept(fresh, int(Lane.QUEUE), NO_KEY, NO_KEY, 0, 0))
            if isinstance(result, Stepped):
                names.append(result.transition)
        for action in probes:
            result = self.machine.step(self.state, action)
            if isinstance(result, Stepped) and result.transition not in names:
                names.append(result.transition)
        if self.state.memory is not None:
            names.append("crash")
        return names


def _in_doubt(event: LifecycleEvent) -> bool:
    """A ``boundary_commit_failed*`` or ``unregister`` event the runtime marked
    ``details.outcome_unknown``: a write of the session may have landed unpublished."""
    return (
        event.rule in ("unregister", "boundary_commit_failed", "boundary_commit_failed_retired")
        and event.details.get("outcome_unknown") is True
    )


def _phase(state: SessionState) -> str:
    return UNREGISTERED if state.memory is None else _spell(state.memory.phase)


def _registration(state: SessionState) -> str:
    return UNREGISTERED if state.memory is None else _spell(state.memory.registration)


def _widen(state: SessionState, n: int) -> SessionState:
    """``state`` with ``n`` input slots (the new ones never used)."""
    extra = n - len(state.attrs)
    if extra <= 0:
        return state
    none: tuple[None, ...] = (None,) * extra
    durable = state.durable._replace(
        rows=(*state.durable.rows, *none), receipts=(*state.durable.receipts, *(False,) * extra)
    )
    memory = state.memory
    if memory is not None:
        memory = memory._replace(rows=(*memory.rows, *none))
    return state._replace(
        attrs=(*state.attrs, *none),
        durable=durable,
        memory=memory,
        waiters=(*state.waiters, *(Waiter.NONE,) * extra),
    )
