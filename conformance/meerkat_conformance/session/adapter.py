"""``SessionAdapter``: one persistent ``MeerkatMachine`` session driven by ``SessionMachine`` actions.

The runtime runs on its own asyncio event loop ("the process"); store calls are made inline (no
worker threads), so everything the runtime does happens in event-loop turns the adapter drives
itself. The run loop drives a ``ScriptedExecutor`` whose every run parks until the harness
releases it, so executor outcomes (success with or without a result, failure with a retryable
error or with one the runtime's ``RetryPolicy`` does not retry, cancellation by the executor, a
failing boundary commit or terminal snapshot) are chosen step by step; a run
``accept_input_and_run`` started parks in a second scripted executor, and its caller's result is
reported (``("direct_result", i, outcome)``) by the step during which the call returned. After
every call the process runs until the session is at rest (its loop waiting or parked in the
executor, the direct caller parked or done, for a few consecutive turns); each run the loop
started on its own is reported as the model action ``StartRun()``.

A call that does not finish, or a session that does not come to rest, within ``MAX_TURNS``
event-loop turns raises :class:`~meerkat_conformance.lockstep.adapter.RuntimeStuck` (the
lockstep driver reports it as a disagreement with the trace). The bound counts turns, not
seconds: a stuck runtime is found in a fraction of a second whatever the machine's load, and
shrinking never waits out a timeout.

Inputs are of several kinds (``input_kinds``); the runtime must report, in memory and in every
stored row, the kind each input was given. The harness actions beyond the model's vocabulary are
in :mod:`~meerkat_conformance.session.harness_actions`. ``Crash()`` — the process dies: its event
loop is abandoned with every task in it (the store handle is switched off first, so nothing the
dying process does reaches the disk), and a new process opens the same storage; a later
``Register()`` recovers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Hashable, Sequence
from typing import Any, TypeVar

from meerkat_model.action_record import action_name
from meerkat_model.machine import Rejected, Stepped
from meerkat_model.session.actions import (
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
from meerkat_model.session.machine import SessionMachine
from meerkat_model.session.state import NO_ID
from meerkat_runtime.session.completion import CompletionHandle
from meerkat_runtime.session.executor import CoreApplyOutput, ExecutorError, RunPrimitive, RunResult
from meerkat_runtime.session.executor import ExecutorCancelled as RunCancelled
from meerkat_runtime.session.inputs import Input, prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.outcomes import Accepted, Deduplicated
from meerkat_runtime.session.outcomes import Rejected as AcceptRejected
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.session.retry import RetryPolicy
from meerkat_runtime.session.testing import Block, Cancel, Fail, ScriptedExecutor, Succeed
from meerkat_runtime.store.faults import FaultInjectingStore
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.records import BoundaryKind, BoundaryReceipt
from meerkat_runtime.vocab.errors import MeerkatError
from meerkat_runtime.vocab.ids import RunId, canonical_runtime_id
from meerkat_runtime.vocab.inputs import Durability

from meerkat_conformance.lockstep.adapter import RuntimeStuck, StepKind
from meerkat_conformance.lockstep.disks import Disk
from meerkat_conformance.lockstep.faults import disarm, fail_next_write
from meerkat_conformance.lockstep.outcome import Err, Ok, Outcome
from meerkat_conformance.session.harness_actions import (
    ATTACH,
    ATTACH_FAILS,
    DUPLICATE_RECEIPT,
    INTERRUPT_IGNORED,
    TAKEOVER,
    Attach,
    AttachFails,
    DuplicateReceipt,
    InterruptIgnored,
    Takeover,
    UnknownWrite,
)
from meerkat_conformance.session.input_kinds import input_kind, make_input
from meerkat_conformance.session.views import (
    handle_text,
    model_input_id,
    runtime_input_id,
    session_observation,
    stored_view,
)

T = TypeVar("T")

SESSION_ID = "conformance-session"
RUNTIME_ID = canonical_runtime_id(SESSION_ID)
WORKER = OwnershipConfig(owner_id="conformance-worker", renew_every_s=None)
"""Every simulated process is the same worker restarted (it takes the lease back at once), and
renews nothing on its own."""
MAX_TURNS = 20_000
"""Event-loop turns a call may take, or a session may take to come to rest, before the runtime
is reported stuck (a call normally takes a handful)."""
SETTLE_TURNS = 3
"""Consecutive turns the session must be at rest for the adapter to move on."""
STALE_PROBE_ID = "stale-probe"
"""The input a process that lost its session to a takeover tries to accept (it must not land)."""

_SHOWN = frozenset({"accepted", "deduplicated", "rejected", "direct_result"})
_CONTROL = {
    Retire: "retire_runtime",
    Reset: "reset_runtime",
    Recycle: "recycle_runtime",
    Stop: "stop_runtime",
    Destroy: "destroy_runtime",
    Recover: "recover_session",
}
_AUTONOMOUS = (StartRun, FinishAttach, AttachFailed)
_FAULTS = (
    WriteFails,
    UnknownWrite,
    BoundaryCommitFails,
    TerminalSnapshotFails,
    DuplicateReceipt,
    AttachFails,
    InterruptIgnored,
)
_RUN_ENDS = (
    ExecutorSucceeded,
    ExecutorFailed,
    ExecutorFailedFatal,
    ExecutorCancelled,
    BoundaryCommitFails,
    TerminalSnapshotFails,
)


class FatalExecutorError(ExecutorError):
    """The error of a run that fails with an error the harness's retry policy does not retry
    (the model's ``ExecutorFailedFatal``)."""


def _retryable(error: BaseException) -> bool:
    return not isinstance(error, FatalExecutorError)


def retry_policy(machine: SessionMachine) -> RetryPolicy:
    """The runtime's retry policy under the model's bounds: its ``max_attempts``, and every
    error retried but :class:`FatalExecutorError`."""
    return RetryPolicy(max_attempts=machine.bounds.max_attempts, retryable=_retryable)


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


def harness_plan(machine: SessionMachine, action: Hashable, model_state: Any) -> Sequence[Hashable]:
    """The model actions harness action ``action`` stands for in ``model_state`` (see
    :mod:`~meerkat_conformance.session.harness_actions`); a model action stands for itself."""
    match action:
        case Attach() | AttachFails():
            return _attach_plan(machine, model_state, FinishAttach() if type(action) is Attach else AttachFailed())
        case InterruptIgnored():
            return (Interrupt(),)
        case DuplicateReceipt():
            return (BoundaryCommitFails(),)
        case Takeover():
            return (Crash(), Register())
        case UnknownWrite(inner, landed):
            return (inner,) if landed or _writes_what_is_stored(machine, inner, model_state) else (WriteFails(inner),)
    return (action,)


def _writes_what_is_stored(machine: SessionMachine, action: SessionAction, model_state: Any) -> bool:
    """Whether ``action`` succeeds leaving the store as it was: its write carries what the
    store already holds, so a read-back after an unknown outcome finds it there whether it
    landed or not, and the runtime rightly takes it as landed."""
    result = machine.step(model_state, action)
    return isinstance(result, Stepped) and result.state.durable == model_state.durable


def _attach_plan(machine: SessionMachine, model_state: Any, finish: Hashable) -> list[Hashable]:
    plan: list[Hashable] = []
    if model_state.memory is None:  # ensure_session_with_executor registers first
        plan.append(Register())
        registered = machine.step(model_state, Register())
        if not isinstance(registered, Stepped):
            return plan
        model_state = registered.state
    plan.append(BeginAttach())
    begin = machine.step(model_state, BeginAttach())
    if isinstance(begin, Stepped) and begin.transition == "begin_attach":
        plan.append(finish)
    return plan


def runtime_moves(machine: Any, model_state: Any) -> Sequence[Hashable]:
    """What the runtime does on its own from ``model_state``: its loop starts a run."""
    return (StartRun(),)


def scenario_context(model_state: Any) -> Hashable:
    """What directed scenarios tell apart when they look for a path to each transition: the
    registration and runtime phase, whether a run is in flight, how many inputs each lane
    holds, and in the store how many inputs are queued and how many were tried before (so a
    failure with another input waiting, and a recovery of requeued inputs, get a path each)."""
    memory = model_state.memory
    durable = model_state.durable
    stored = (len(durable.queue), sum(1 for row in durable.rows if row is not None and row.attempts > 0))
    if memory is None:
        return (None, *stored)
    return (memory.registration, memory.phase, memory.run != NO_ID, len(memory.queue), len(memory.steer), *stored)


HARNESS_EXTRAS: tuple[Hashable, ...] = (ATTACH_FAILS, INTERRUPT_IGNORED, DUPLICATE_RECEIPT, TAKEOVER)
"""The harness actions that are not the steering of a model action (for directed scenarios)."""


def shown_outputs(outputs: Sequence[Any]) -> tuple[Any, ...]:
    """The part of the model's outputs a caller sees (what ``accept_input`` returned, what the
    caller of a direct run was told), in a canonical order."""
    out: list[Any] = []
    for item in outputs:
        if item and item[0] in _SHOWN:
            out.append(tuple(item[:2]) if item[0] == "rejected" else tuple(item))
    return tuple(sorted(out, key=repr))


def _error(exc: BaseException) -> Err:
    if isinstance(exc, MeerkatError):
        return Err(exc.kind, str(exc))
    return Err(f"exception:{type(exc).__name__}", str(exc))


def caller_outcome(task: asyncio.Task[Any]) -> str:
    """How a finished ``accept_input_and_run`` call ended, in the model's words."""
    if task.cancelled():
        return "cancelled"
    exc = task.exception()
    if exc is None:
        return "returned"
    if isinstance(exc, RunCancelled):
        return "executor_cancelled"
    if isinstance(exc, ExecutorError):
        return "executor_failed"
    return _error(exc).kind


async def _turn() -> None:
    await asyncio.sleep(0)


class _Process:
    """One simulated process: an event loop, a store handle, the runtime and its executors."""

    def __init__(self, disk: Disk, runtime_class: type[MeerkatMachine], retry: RetryPolicy) -> None:
        self.loop = asyncio.new_event_loop()
        self.inner: RuntimeStore = disk.open()
        self.store = FaultInjectingStore(self.inner)
        # reattach off: the model attaches a loop only through its own attach actions
        # (begin_attach / finish_attach, which this harness drives); a loop the machine attached
        # by itself after boundary_commit_failed would be a step the model never took.
        self.runtime = runtime_class.persistent(
            self.store, offload_store_calls=False, ownership=WORKER, retry=retry, reattach=False
        )
        self.executor = ScriptedExecutor(default=Block())
        """The executor of the session's run loop."""
        self.direct_executor = ScriptedExecutor(default=Block())
        """Where the runs ``accept_input_and_run`` starts park."""
        self.runs_seen = 0
        self.direct: dict[int, asyncio.Task[Any]] = {}
        """The ``accept_input_and_run`` calls in flight, by input."""
        self.spawned: list[asyncio.Task[Any]] = []
        """Every task the adapter started in this process (their errors are retrieved at death)."""

    def turn(self) -> None:
        """Let the event loop run one turn."""
        self.loop.run_until_complete(_turn())

    def run(self, awaitable: Awaitable[T], what: str = "the call") -> T:
        """Run ``awaitable`` to its end; ``RuntimeStuck`` if it takes more than ``MAX_TURNS``."""

        async def bounded() -> asyncio.Future[T]:
            task = asyncio.ensure_future(awaitable)
            for _ in range(MAX_TURNS):
                if task.done():
                    break
                await asyncio.sleep(0)
            return task

        task = self.loop.run_until_complete(bounded())
        if task.done():
            return task.result()
        task.cancel()
        self.turns(SETTLE_TURNS)
        raise RuntimeStuck(f"{what} did not return within {MAX_TURNS} event-loop turns")

    def turns(self, count: int) -> None:
        for _ in range(count):
            self.turn()

    def parked_executor(self) -> ScriptedExecutor | None:
        """The executor a run is parked in (there is at most one run), if any."""
        for executor in (self.executor, self.direct_executor):
            if executor.parked():
                return executor
        return None

    def at_rest(self) -> bool:
        busy = any(not task.done() for task in self.direct.values())
        if busy and not self.direct_executor.parked():
            return False
        return self.runtime.settled_now(SESSION_ID)

    def settle(self, what: str = "the call") -> None:
        """Run turns until the session is at rest for ``SETTLE_TURNS`` turns in a row."""

        async def quiet() -> bool:
            calm = 0
            for _ in range(MAX_TURNS):
                await asyncio.sleep(0)
                calm = calm + 1 if self.at_rest() else 0
                if calm >= SETTLE_TURNS:
                    return True
            return False

        if not self.loop.run_until_complete(quiet()):
            raise RuntimeStuck(f"after {what} the session did not come to rest within {MAX_TURNS} event-loop turns")

    def die(self) -> None:
        """Abandon everything without a clean shutdown; nothing more reaches the disk."""
        self.store.closed_mode = True
        seen: set[asyncio.Task[Any]] = set()
        for _ in range(MAX_TURNS):
            pending = [task for task in asyncio.all_tasks(self.loop) if not task.done()]
            if not pending:
                break
            for task in pending:
                seen.add(task)
                task.cancel()
            self.turn()
        for task in (*seen, *self.spawned):
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: a dying task's error is not reported
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
        self.kinds: dict[int, str] = {}
        """The kind of runtime input each model input was submitted as (survives crashes)."""
        self.retry = retry_policy(machine)
        self.process = _Process(disk, runtime_class, self.retry)

    # --- the adapter protocol -------------------------------------------------------------

    def model_actions(self, action: Hashable, model_state: Any) -> Sequence[Hashable]:
        return harness_plan(self.machine, action, model_state)

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
        if isinstance(action, Crash | Takeover):
            return StepKind.CRASH
        if isinstance(action, _FAULTS):
            return StepKind.FAULT
        return StepKind.CALL

    def note(self, action: Hashable) -> str:
        match action:
            case Crash():
                return "process dies"
            case Takeover():
                return "a new process takes over; the old one tries to write"
            case WriteFails():
                return "store write fails"
            case UnknownWrite(_, landed):
                return f"store write outcome unknown ({'landed' if landed else 'did not land'}), reads work"
            case BoundaryCommitFails():
                return "atomic_apply fails"
            case DuplicateReceipt():
                return "the run's receipt is already stored"
            case TerminalSnapshotFails():
                return "lifecycle commit fails"
            case AttachFails():
                return "the executor's start() raises"
            case InterruptIgnored():
                return "the executor ignores CancelCurrentRun"
        return ""

    def fault_variants(self, action: Hashable) -> list[Hashable]:
        return []

    def expected(self, action: Hashable, result: Stepped[Any] | Rejected) -> Outcome:
        if isinstance(result, Rejected):
            return Err(result.kind, result.detail)
        if type(action) is AttachFails and result.transition == "attach_failed":
            kind, what = next((o[1], o[2]) for o in result.outputs if o and o[0] == "error")
            return Err(kind, what)
        return Ok(shown_outputs(result.outputs))

    def execute(self, action: Hashable) -> Outcome:
        match action:
            case Crash():
                return self._crash()
            case Takeover():
                return self._takeover()
            case WriteFails(inner):
                rules = fail_next_write(self.process.store)
                try:
                    return self._call(inner)
                finally:
                    disarm(self.process.store, rules)
            case UnknownWrite(inner, landed):
                rules = fail_next_write(self.process.store, unknown=True, landed=bool(landed))
                try:
                    return self._call(inner)
                finally:
                    disarm(self.process.store, rules)
            case InterruptIgnored():
                executors = (self.process.executor, self.process.direct_executor)
                for executor in executors:
                    executor.ignore_cancel = True
                try:
                    return self._call(Interrupt())
                finally:
                    for executor in executors:
                        executor.ignore_cancel = False
        return self._call(action)

    def observe(self) -> Any:
        process = self.process
        runtime = process.runtime

        async def view() -> Any:
            if not await runtime.contains_session(SESSION_ID):
                return None
            return await runtime.session_view(SESSION_ID)

        session = process.run(view(), "reading the session view")
        stored_kinds: dict[int | str, str] = {}
        stored = stored_view(process.inner, RUNTIME_ID, kinds=stored_kinds)
        observation = session_observation(session, self.handles, stored)
        observation["kinds"] = {
            "memory": {} if session is None else {model_input_id(v.input_id): v.kind for v in session.inputs},
            "stored": stored_kinds,
        }
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
        view = self.machine.observe(model_state)
        view["kinds"] = {
            "memory": {i: self.kinds[i] for i in view["inputs"]},
            "stored": {i: self.kinds[i] for i in view["stored"]["inputs"]},
        }
        return view

    def close(self) -> None:
        self.handles = {}
        self.process.die()
        self.process.inner.close()
        self.disk.destroy()

    # --- processes ------------------------------------------------------------------------

    def _forget_callers(self) -> None:
        """The callers of the process that goes away go with it (handles, a direct run)."""
        self.handles = {}
        self.duplicate_handles = []
        self.process.direct = {}

    def _crash(self) -> Outcome:
        process = self.process
        if not process.run(process.runtime.contains_session(SESSION_ID)):
            return Err("session_not_found", "no registered session to crash (harness)")
        self._forget_callers()
        process.die()
        self.disk.release(process.inner)
        self.process = _Process(self.disk, self.runtime_class, self.retry)
        return Ok(())

    def _takeover(self) -> Outcome:
        old = self.process
        if not old.run(old.runtime.contains_session(SESSION_ID)):
            return Err("session_not_found", "no registered session to take over (harness)")
        self._forget_callers()
        new = _Process(self.disk, self.runtime_class, self.retry)
        self.process = new
        try:
            new.run(new.runtime.register_session(SESSION_ID), "register_session")
            new.settle("register_session")
        except RuntimeStuck:
            old.die()
            raise
        except Exception as exc:
            old.die()
            self.disk.release(old.inner)
            return _error(exc)
        findings = self._stale_writes(old)
        old.die()
        self.disk.release(old.inner)
        return Ok(findings)

    def _stale_writes(self, old: _Process) -> tuple[Any, ...]:
        """Let the process that lost the session try to write: its run in flight succeeds, and
        it accepts an input. The store must refuse both (its fence is stale); returns what
        landed anyway (nothing, when fencing works)."""
        before = stored_view(self.process.inner, RUNTIME_ID)
        parked = old.parked_executor()
        if parked is not None:
            parked.release(Succeed())
        probe = prompt("written by a process that lost its session", input_id=STALE_PROBE_ID)
        try:
            old.run(old.runtime.accept_input(SESSION_ID, probe), "the stale accept")
            old.settle("the stale writes")
        except Exception:  # refused (ownership lost), or anything else: only the store matters
            pass
        after = stored_view(self.process.inner, RUNTIME_ID)
        if after == before:
            return ()
        return (("stale_write_landed", repr(after)),)

    # --- calls ----------------------------------------------------------------------------

    def _call(self, action: Hashable) -> Outcome:
        label = action_name(action)
        try:
            value = self._dispatch(action)
        except RuntimeStuck:
            raise
        except Exception as exc:  # every runtime refusal, and anything unexpected, is compared
            self.process.settle(label)
            return self._with_direct(_error(exc))
        self.process.settle(label)
        return self._with_direct(Ok(value))

    def _with_direct(self, outcome: Outcome) -> Outcome:
        """``outcome`` plus the result of a direct run's call that returned meanwhile."""
        direct = self.process.direct
        done = [i for i, task in direct.items() if task.done()]
        if not done:
            return outcome
        results = tuple(("direct_result", i, caller_outcome(direct.pop(i))) for i in done)
        if isinstance(outcome, Ok):
            return Ok(tuple(sorted((*outcome.value, *results), key=repr)))
        return Err(f"{outcome.kind} (and {results})", outcome.message)

    def _dispatch(self, action: Hashable) -> tuple[Any, ...]:
        """Make the runtime call ``action`` stands for; returns what its caller sees (what
        ``accept_input`` returned; nothing for the other calls)."""
        process = self.process
        runtime = process.runtime
        match action:
            case Register():
                process.run(runtime.register_session(SESSION_ID), "register_session")
                return ()
            case Attach():
                process.run(runtime.ensure_session_with_executor(SESSION_ID, process.executor), "attach")
                return ()
            case AttachFails():
                broken = ScriptedExecutor(start_error=RuntimeError("the executor could not start (harness)"))
                process.run(runtime.ensure_session_with_executor(SESSION_ID, broken), "attach")
                return ()
            case Accept(i, lane, idem, skey, coalesce, eph):
                return self._accept(i, lane, idem, skey, coalesce, eph)
            case AcceptAndRun(i, idem):
                return self._accept_and_run(i, idem)
            case AcceptInvalid(i):
                item = prompt("invalid", durability=Durability.DERIVED, input_id=runtime_input_id(i))
                outcome = process.run(runtime.accept_input(SESSION_ID, item), "accept_input")
                if isinstance(outcome, AcceptRejected):
                    return (("rejected", i),)
                return (("not_rejected", type(outcome).__name__),)
            case Retire() | Reset() | Recycle() | Stop() | Destroy() | Recover():
                name = _CONTROL[type(action)]
                process.run(getattr(runtime, name)(SESSION_ID), name)
                return ()
            case Interrupt():
                process.run(runtime.interrupt_current_run(SESSION_ID), "interrupt_current_run")
                return ()
            case Unregister():
                process.run(runtime.unregister_session(SESSION_ID), "unregister_session")
                return ()
            case _ if isinstance(action, (*_RUN_ENDS, DuplicateReceipt)):
                return self._executor_step(action)
        raise ValueError(f"the session harness does not know action {action!r}")

    def _accept(self, i: int, lane: int, idem: int, skey: int, coalesce: int, eph: int) -> tuple[Any, ...]:
        item = make_input(i, lane, idem, skey, coalesce, eph)
        process = self.process
        call = process.runtime.accept_input_with_completion(SESSION_ID, item)
        outcome, handle = process.run(call, "accept_input_with_completion")
        if handle is not None and isinstance(outcome, Deduplicated):
            existing = int(model_input_id(outcome.existing_id))
            original = self.handles.get(existing)
            if original is not None and not original.done():  # both now wait for the same run
                self.duplicate_handles.append((i, existing, handle))
        elif handle is not None:
            self.handles[i] = handle
        if isinstance(outcome, Accepted):
            self.kinds[i] = input_kind(i, lane, idem, skey, coalesce)
            return (("accepted", i),)
        if isinstance(outcome, Deduplicated):
            # a duplicate of a finished input gets a handle already resolved with its stored
            # outcome; the model's flag says whether the duplicate waits for a run in flight
            waiting = handle is not None and not handle.done()
            return (("deduplicated", i, model_input_id(outcome.existing_id), waiting),)
        return (("rejected", i),)

    def _accept_and_run(self, i: int, idem: int) -> tuple[Any, ...]:
        """``accept_input_and_run``: the call parks in the direct executor once its run starts
        (``Ok`` accepted), or ends at once with the refusal."""
        process = self.process
        item: Input = make_input(i, 0, idem, -1, 0, 0)
        executor = process.direct_executor

        async def op(run_id: str, primitive: RunPrimitive) -> tuple[str, CoreApplyOutput]:
            return "returned", await executor.apply(RunId(run_id), primitive)

        task = process.loop.create_task(process.runtime.accept_input_and_run(SESSION_ID, item, op))
        process.direct[i] = task
        process.spawned.append(task)
        process.settle("accept_input_and_run")
        if task.done():  # refused before its run started
            del process.direct[i]
            task.result()  # raises the refusal
            return (("returned_at_once", i),)
        self.kinds[i] = input_kind(i, 0, idem, -1, 0)
        return (("accepted", i),)

    def _executor_step(self, action: Hashable) -> tuple[Any, ...]:
        process = self.process
        if not process.run(process.runtime.contains_session(SESSION_ID)):
            raise _HarnessRefusal("session_not_found", "the session is not registered")
        executor = process.parked_executor()
        if executor is None:
            raise _HarnessRefusal("not_ready", "no run is in flight (nothing is parked in an executor)")
        store = process.store
        match action:
            case ExecutorSucceeded(with_result):
                executor.release(Succeed(RunResult("done") if with_result else None))
            case ExecutorFailed():
                executor.release(Fail())
            case ExecutorFailedFatal():
                executor.release(Fail(error=FatalExecutorError("the executor failed for good (harness)")))
            case ExecutorCancelled():
                executor.release(Cancel())
            case BoundaryCommitFails():
                rule = store.fail_next("atomic_apply")
                executor.release(Succeed())
                process.settle("the failing boundary commit")
                store.remove(rule)
            case DuplicateReceipt():
                self._store_receipt_of(executor)
                executor.release(Succeed())
            case TerminalSnapshotFails():
                rule = store.fail_next("commit_machine_lifecycle")
                executor.release(Fail())
                process.settle("the failing lifecycle commit")
                store.remove(rule)
        return ()

    def _store_receipt_of(self, executor: ScriptedExecutor) -> None:
        """Store, as the session's owner, a boundary receipt with the parked run's id and the
        sequence the runtime will give its boundary, so that its commit finds it taken."""
        run_id, inputs = executor.applied[-1]
        claim = self.process.runtime.session_claim_handle().get(RUNTIME_ID)
        fence = None if claim is None else claim.fence
        receipt = BoundaryReceipt(str(run_id), 0, BoundaryKind.RUN_START, tuple(str(i) for i in inputs))
        self.process.inner.atomic_apply(RUNTIME_ID, session_snapshot=None, receipt=receipt, rows=[], fence=fence)


class _HarnessRefusal(MeerkatError):
    """An executor-side step that cannot happen in the runtime's current state."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # type: ignore[misc]
