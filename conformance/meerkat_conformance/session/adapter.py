"""``SessionAdapter``: one persistent ``MeerkatMachine`` session driven by ``SessionMachine`` actions.

The runtime runs on its own asyncio event loop ("the process"); store calls are made inline
(no worker threads) so every step is deterministic. The run loop drives a
``ScriptedExecutor`` whose every run parks until the harness releases it, so executor outcomes
(success with or without a result, failure, a failing boundary commit or terminal snapshot)
are chosen step by step. After every call the loop is allowed to settle; each run it started on
its own is reported as the model action ``StartRun()``.

The one harness action beyond the model's vocabulary, and how the model's crash is driven:

* :class:`Attach` — ``ensure_session_with_executor``: the model's ``BeginAttach`` then
  ``FinishAttach`` (one runtime call does both), preceded by ``Register`` when the session is
  not registered (the call registers it first).
* ``Crash()`` — the process dies: its event loop is abandoned with every task in it (the store
  handle is switched off first, so nothing the dying process does reaches the disk), and a new
  process opens the same SQLite file. A later ``Register()`` recovers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Hashable, Sequence
from typing import Any, NamedTuple, TypeVar

from meerkat_model.action_record import action_record
from meerkat_model.machine import Rejected, Stepped
from meerkat_model.session.actions import (
    Accept,
    AcceptInvalid,
    AttachFailed,
    BeginAttach,
    BoundaryCommitFails,
    Crash,
    Destroy,
    ExecutorFailed,
    ExecutorSucceeded,
    FinishAttach,
    Interrupt,
    Recycle,
    Register,
    Reset,
    Retire,
    StartRun,
    Stop,
    TerminalSnapshotFails,
    Unregister,
    WriteFails,
)
from meerkat_model.session.machine import SessionMachine
from meerkat_runtime.session.completion import CompletionHandle
from meerkat_runtime.session.executor import RunResult
from meerkat_runtime.session.inputs import HandlingMode, external_event, prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.outcomes import Accepted, Deduplicated
from meerkat_runtime.session.outcomes import Rejected as AcceptRejected
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.session.testing import Block, Fail, ScriptedExecutor, Succeed
from meerkat_runtime.store.faults import FaultInjectingStore
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.vocab.errors import MeerkatError
from meerkat_runtime.vocab.ids import canonical_runtime_id
from meerkat_runtime.vocab.inputs import Durability

from meerkat_conformance.lockstep.adapter import StepKind
from meerkat_conformance.lockstep.disks import Disk
from meerkat_conformance.lockstep.faults import disarm, fail_next_write
from meerkat_conformance.lockstep.outcome import Err, Ok, Outcome
from meerkat_conformance.session.views import (
    handle_text,
    model_input_id,
    runtime_input_id,
    session_observation,
    stored_view,
)

T = TypeVar("T")


@action_record("attach")
class Attach(NamedTuple):
    """``ensure_session_with_executor``: registers when needed, then attaches the runtime loop."""


SESSION_ID = "conformance-session"
RUNTIME_ID = canonical_runtime_id(SESSION_ID)
WORKER = OwnershipConfig(owner_id="conformance-worker", renew_every_s=None)
"""Every simulated process is the same worker restarted (it takes the lease back at once), and
renews nothing on its own."""
ATTACH = Attach()
_ACCEPT_OUTPUTS = frozenset({"accepted", "deduplicated", "rejected"})
_CONTROL = {
    Retire: "retire_runtime",
    Reset: "reset_runtime",
    Recycle: "recycle_runtime",
    Stop: "stop_runtime",
    Destroy: "destroy_runtime",
}
_AUTONOMOUS = (StartRun, FinishAttach, AttachFailed)
_FAULTS = (WriteFails, BoundaryCommitFails, TerminalSnapshotFails)


def harness_action(model_action: Hashable) -> Hashable | None:
    """The harness action that makes the runtime perform ``model_action``: ``BeginAttach``
    is driven by ``Attach()`` (which also finishes the attachment); ``StartRun`` happens
    only when the runtime's loop decides, and ``FinishAttach`` / ``AttachFailed`` are not
    separately drivable (``None``); everything else is itself."""
    if type(model_action) is BeginAttach:
        return ATTACH
    if isinstance(model_action, _AUTONOMOUS):
        return None
    return model_action


def _accept_value(outputs: Sequence[Any]) -> tuple[Any, ...]:
    """The part of the model's outputs a caller of ``accept_input`` sees."""
    out: list[Any] = []
    for item in outputs:
        if item and item[0] in _ACCEPT_OUTPUTS:
            out.append(tuple(item[:2]) if item[0] == "rejected" else tuple(item))
    return tuple(out)


def _error(exc: BaseException) -> Err:
    if isinstance(exc, MeerkatError):
        return Err(exc.kind, str(exc))
    return Err(f"exception:{type(exc).__name__}", str(exc))


class _Process:
    """One simulated process: an event loop, a store handle, the runtime and an executor."""

    def __init__(self, disk: Disk, runtime_class: type[MeerkatMachine] = MeerkatMachine) -> None:
        self.loop = asyncio.new_event_loop()
        self.inner: RuntimeStore = disk.open()
        self.store = FaultInjectingStore(self.inner)
        self.runtime = runtime_class.persistent(self.store, offload_store_calls=False, ownership=WORKER)
        self.executor = ScriptedExecutor(default=Block())
        self.runs_seen = 0

    def run(self, awaitable: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await awaitable

        return self.loop.run_until_complete(wrapped())

    def settle(self) -> None:
        async def settle() -> None:
            if await self.runtime.contains_session(SESSION_ID):
                await self.runtime.settle(SESSION_ID)
            for _ in range(3):
                await asyncio.sleep(0)

        self.run(settle())

    def die(self) -> None:
        """Abandon everything without a clean shutdown; nothing more reaches the disk."""
        self.store.closed_mode = True
        tasks = asyncio.all_tasks(self.loop)
        for task in tasks:
            task.cancel()
        if tasks:
            self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self.loop.close()


class SessionAdapter:
    """A persistent session under test, its fault-injecting store and the disk beneath.

    ``runtime_class`` (a ``MeerkatMachine`` subclass) lets a test run an altered runtime, such
    as one with a planted bug; every process the adapter starts (after a crash too) uses it.
    """

    def __init__(
        self, machine: SessionMachine, disk: Disk, *, runtime_class: type[MeerkatMachine] = MeerkatMachine
    ) -> None:
        self.machine = machine
        self.disk = disk
        self.runtime_class = runtime_class
        self.handles: dict[int, CompletionHandle] = {}
        self.duplicate_handles: list[tuple[int, int, CompletionHandle]] = []
        self.process = _Process(disk, runtime_class)

    # --- the adapter protocol -------------------------------------------------------------

    def model_actions(self, action: Hashable, model_state: Any) -> Sequence[Hashable]:
        if type(action) is not Attach:
            return (action,)
        plan: list[Hashable] = []
        if model_state.memory is None:  # ensure_session_with_executor registers first
            plan.append(Register())
            registered = self.machine.step(model_state, Register())
            if not isinstance(registered, Stepped):
                return plan
            model_state = registered.state
        plan.append(BeginAttach())
        begin = self.machine.step(model_state, BeginAttach())
        if isinstance(begin, Stepped) and begin.transition == "begin_attach":
            plan.append(FinishAttach())
        return plan

    def autonomous(self) -> Sequence[Hashable]:
        process = self.process
        started = len(process.executor.applied) - process.runs_seen
        process.runs_seen = len(process.executor.applied)
        return (StartRun(),) * started

    def overdue(self, model_state: Any) -> str | None:
        if isinstance(self.machine.step(model_state, StartRun()), Stepped):
            return "the model would start a run now, but the runtime's loop left the queued input waiting"
        return None

    def step_kind(self, action: Hashable) -> StepKind:
        if type(action) is Crash:
            return StepKind.CRASH
        if isinstance(action, _FAULTS):
            return StepKind.FAULT
        return StepKind.CALL

    def note(self, action: Hashable) -> str:
        match action:
            case Crash():
                return "process dies"
            case WriteFails():
                return "store write fails"
            case BoundaryCommitFails():
                return "atomic_apply fails"
            case TerminalSnapshotFails():
                return "lifecycle commit fails"
        return ""

    def fault_variants(self, action: Hashable) -> list[Hashable]:
        return []

    def expected(self, action: Hashable, result: Stepped[Any] | Rejected) -> Outcome:
        if isinstance(result, Rejected):
            return Err(result.kind, result.detail)
        return Ok(_accept_value(result.outputs))

    def execute(self, action: Hashable) -> Outcome:
        if type(action) is Crash:
            return self._crash()
        if type(action) is WriteFails:
            rules = fail_next_write(self.process.store)
            try:
                return self._call(action.inner)
            finally:
                disarm(self.process.store, rules)
        return self._call(action)

    def observe(self) -> Any:
        process = self.process
        runtime = process.runtime

        async def view() -> Any:
            if not await runtime.contains_session(SESSION_ID):
                return None
            return await runtime.session_view(SESSION_ID)

        observation = session_observation(process.run(view()), self.handles, stored_view(process.inner, RUNTIME_ID))
        mismatched = self._duplicate_handle_mismatches()
        if mismatched:
            observation["duplicate_handles_disagree"] = mismatched
        return observation

    def _duplicate_handle_mismatches(self) -> list[str]:
        """A duplicate's handle must resolve exactly like the still-pending handle of the input
        it duplicates (the model does not track it separately, so the harness checks it here)."""
        out = []
        for dup, existing, handle in self.duplicate_handles:
            original = self.handles.get(existing)
            if original is not None and handle_text(handle) != handle_text(original):
                out.append(f"input {dup}: {handle_text(handle)} but input {existing}: {handle_text(original)}")
        return out

    def model_view(self, model_state: Any) -> Any:
        return self.machine.observe(model_state)

    def close(self) -> None:
        self.handles = {}
        self.process.die()
        self.process.inner.close()
        self.disk.destroy()

    # --- calls ----------------------------------------------------------------------------

    def _crash(self) -> Outcome:
        process = self.process
        if not process.run(process.runtime.contains_session(SESSION_ID)):
            return Err("session_not_found", "no registered session to crash (harness)")
        self.handles = {}
        self.duplicate_handles = []
        process.die()
        self.disk.release(process.inner)
        self.process = _Process(self.disk, self.runtime_class)
        return Ok(())

    def _call(self, action: Hashable) -> Outcome:
        try:
            value = self._dispatch(action)
            self.process.settle()
        except Exception as exc:  # every runtime refusal, and anything unexpected, is compared
            self.process.settle()
            return _error(exc)
        return Ok(value)

    def _dispatch(self, action: Hashable) -> tuple[Any, ...]:
        """Make the runtime call ``action`` stands for; returns what a caller of
        ``accept_input`` sees (nothing for the other calls)."""
        process = self.process
        runtime = process.runtime
        match action:
            case Register():
                process.run(runtime.register_session(SESSION_ID))
                return ()
            case Attach():
                process.run(runtime.ensure_session_with_executor(SESSION_ID, process.executor))
                return ()
            case Accept(i, lane, idem, skey, coalesce, eph):
                return self._accept(i, lane, idem, skey, coalesce, eph)
            case AcceptInvalid(i):
                item = prompt("invalid", durability=Durability.DERIVED, input_id=runtime_input_id(i))
                outcome = process.run(runtime.accept_input(SESSION_ID, item))
                if isinstance(outcome, AcceptRejected):
                    return (("rejected", i),)
                return (("not_rejected", type(outcome).__name__),)
            case Retire() | Reset() | Recycle() | Stop() | Destroy():
                process.run(getattr(runtime, _CONTROL[type(action)])(SESSION_ID))
                return ()
            case Interrupt():
                process.run(runtime.interrupt_current_run(SESSION_ID))
                return ()
            case Unregister():
                process.run(runtime.unregister_session(SESSION_ID))
                return ()
            case ExecutorSucceeded() | ExecutorFailed() | BoundaryCommitFails() | TerminalSnapshotFails():
                return self._executor_step(action)
        raise ValueError(f"the session harness does not know action {action!r}")

    def _accept(self, i: int, lane: int, idem: int, skey: int, coalesce: int, eph: int) -> tuple[Any, ...]:
        item = external_event(
            "conformance",
            f"payload of input {i}",
            handling_mode=HandlingMode.STEER if lane else HandlingMode.QUEUE,
            durability=Durability.EPHEMERAL if eph else Durability.DURABLE,
            idempotency_key=None if idem < 0 else f"idem-{idem}",
            supersession_key=None if skey < 0 else f"skey-{skey}",
            coalesce=bool(coalesce),
            input_id=runtime_input_id(i),
        )
        process = self.process
        outcome, handle = process.run(process.runtime.accept_input_with_completion(SESSION_ID, item))
        if handle is not None and isinstance(outcome, Deduplicated):
            existing = int(model_input_id(outcome.existing_id))
            original = self.handles.get(existing)
            if original is not None and not original.done():  # both now wait for the same run
                self.duplicate_handles.append((i, existing, handle))
        elif handle is not None:
            self.handles[i] = handle
        if isinstance(outcome, Accepted):
            return (("accepted", i),)
        if isinstance(outcome, Deduplicated):
            # a duplicate of a finished input gets a handle already resolved with its stored
            # outcome; the model's flag says whether the duplicate waits for a run in flight
            waiting = handle is not None and not handle.done()
            return (("deduplicated", i, model_input_id(outcome.existing_id), waiting),)
        return (("rejected", i),)

    def _executor_step(
        self, action: ExecutorSucceeded | ExecutorFailed | BoundaryCommitFails | TerminalSnapshotFails
    ) -> tuple[Any, ...]:
        process = self.process
        if not process.run(process.runtime.contains_session(SESSION_ID)):
            raise _HarnessRefusal("session_not_found", "the session is not registered")
        executor = process.executor
        if not executor.parked():
            raise _HarnessRefusal("not_ready", "no run is in flight (nothing is parked in the executor)")
        store = process.store
        match action:
            case ExecutorSucceeded(with_result):
                executor.release(Succeed(RunResult("done") if with_result else None))
            case ExecutorFailed():
                executor.release(Fail())
            case BoundaryCommitFails():
                rule = store.fail_next("atomic_apply")
                executor.release(Succeed())
                process.settle()
                store.remove(rule)
            case TerminalSnapshotFails():
                rule = store.fail_next("commit_machine_lifecycle")
                executor.release(Fail())
                process.settle()
                store.remove(rule)
        return ()


class _HarnessRefusal(MeerkatError):
    """An executor-side step that cannot happen in the runtime's current state."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # type: ignore[misc]
