"""``OpsAdapter``: one live ``OpsLifecycleRegistry`` on a store, driven by ``OpsMachine`` actions.

The registry is wired exactly as production wires it (``open_durable_ops`` over a
``FaultInjectingStore`` over the disk's store). What a call returns is reduced to the model's
output vocabulary (see ``meerkat_model.ops.machine``): ``("returned", value)``, then every
side effect the call had — watchers it resolved, feed entries it pushed, a ``wait_all`` it
satisfied — read from the watcher/handle objects and the feed, not from the registry's
internals. Outputs are compared as a sorted tuple.

How the model's events are driven, and the one harness action beyond the model's vocabulary:

* ``Crash()`` — the registry and its store handle are abandoned (no close, no flush), a new
  store handle is opened on the same disk and the registry is recovered from it.
* :class:`CrashReadFault` — the same, but the first recovery read fails: the runtime must
  refuse to start with ``store_read_failed`` (never a silent fresh epoch); the retry must
  then recover like ``Crash()``. The model sees a plain ``Crash()``.
* ``Detach()`` — the registry is closed as a machine closes it when its session goes away
  (``registry.close``): every pending watch and the pending handle must raise the closing error
  (``("watchers_released", op, n)``, ``("wait_all_released",)``), the closed registry must
  refuse a change with it, and the session's next registry is recovered from the same store.
* ``DropWatcher(op)`` — the harness drops its last reference to one pending watch of ``op``
  (and runs ``gc.collect()`` when the count did not fall at once); the registry must release
  it: ``("watcher_dropped", op, n)`` with ``n`` the ``watcher_count`` the registry reports
  afterwards. No watch of ``op`` held: ``("no_watch_to_drop", op)``.
* ``WriteFails(inner)`` — the next store write fails (``WriteFailed``) while ``inner`` runs;
  the model's own ``WriteFails`` semantics apply.
* the actions of :mod:`~meerkat_conformance.ops.harness_actions`: a ``wait_all`` barrier
  released by cancelling the task that awaits its handle, or by dropping the handle (both the
  model's ``DropWait``), and consumer cursor moves (no model step).

Beyond the model's view the adapter checks what the model does not hold: every peer-ready
operation reports the peer handle it was given (after recovery too), and the epoch's cursors
move forward only, and come back from a crash as of a durable write: never ahead of what they
were, never behind what they were at the last write the model says reached the store.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Hashable, Sequence
from typing import Any, NamedTuple

from meerkat_model.action_record import action_record
from meerkat_model.machine import Rejected, Stepped
from meerkat_model.ops.actions import (
    DURABLE_CALLS,
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
from meerkat_model.ops.machine import OpsMachine
from meerkat_model.vocab.statuses import OpKind
from meerkat_runtime.ops.config import OpsLifecycleConfig
from meerkat_runtime.ops.recovery import DurableOps, open_durable_ops
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.ops.wait_all import WaitAllHandle
from meerkat_runtime.ops.watch import OperationCompletionWatch
from meerkat_runtime.store.faults import FaultInjectingStore
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.vocab.errors import MeerkatError, SessionNotFound
from meerkat_runtime.vocab.ids import OperationId, canonical_runtime_id
from meerkat_runtime.vocab.operation import (
    OperationKind,
    OperationPeerHandle,
    OperationProgressUpdate,
    OperationResult,
    OperationSpec,
)

from meerkat_conformance.lockstep.adapter import StepKind
from meerkat_conformance.lockstep.disks import Disk
from meerkat_conformance.lockstep.faults import disarm, fail_next_write
from meerkat_conformance.lockstep.outcome import Err, Ok, Outcome
from meerkat_conformance.ops.harness_actions import (
    CANCEL_WAIT_TASK,
    CURSORS,
    DROP_WAIT_HANDLE,
    AdvanceCursor,
    CancelWaitTask,
    DropWaitHandle,
)
from meerkat_conformance.ops.views import (
    handle_view,
    model_op_id,
    observe_registry,
    outcome_pair,
    outcome_pairs,
    runtime_op_id,
)


@action_record("crash_read_fault")
class CrashReadFault(NamedTuple):
    """A crash whose first recovery read fails (the model sees ``Crash()``)."""


OpsHarnessAction = OpsAction | CrashReadFault | CancelWaitTask | DropWaitHandle | AdvanceCursor
"""What the ops adapter executes: a model action, or one of the harness's own."""

RUNTIME_ID = canonical_runtime_id("conformance-ops")
CRASH_READ_FAULT = CrashReadFault()
_NO_RETURN = (WaitAll, DropWait, DropWatcher, Crash, Detach, CrashReadFault, CancelWaitTask, DropWaitHandle)
_DROPS = (CancelWaitTask, DropWaitHandle)
_KINDS = {
    int(OpKind.MOB_MEMBER_CHILD): OperationKind.MOB_MEMBER_CHILD,
    int(OpKind.BACKGROUND_TOOL_OP): OperationKind.BACKGROUND_TOOL_OP,
}


def harness_plan(action: Hashable, model_state: Any = None) -> Sequence[Hashable]:
    """The model actions harness action ``action`` stands for (itself, for a model action)."""
    if type(action) is CrashReadFault:
        return (Crash(),)
    if isinstance(action, _DROPS):
        return (DropWait(),)
    if type(action) is AdvanceCursor:
        return ()
    return (action,)


def scenario_context(model_state: Any) -> Hashable:
    """What directed scenarios tell apart when they look for a path to each transition: how
    many operations are active and completed, whether a barrier is pending and how many
    completed operations it pins (so a collect or a retention pass under a barrier gets a path)."""
    barrier = set(model_state.barrier)
    pinned = sum(1 for op in model_state.completed if op in barrier)
    return (model_state.active_count, len(model_state.completed), bool(barrier), pinned)


HARNESS_EXTRAS: tuple[Hashable, ...] = (CRASH_READ_FAULT, CANCEL_WAIT_TASK, DROP_WAIT_HANDLE)
"""The harness actions that are not model actions (for directed scenarios)."""


def sorted_outputs(outputs: Any) -> tuple[Any, ...]:
    """Outputs in a canonical order (the model lists them per effect, the harness per source)."""
    return tuple(sorted(outputs, key=repr))


def _value(call: Callable[..., object], *args: Any) -> Any:
    """Call ``call`` and hand back whatever it returned (compared with the model's value)."""
    return call(*args)


def error_outcome(exc: BaseException) -> Err:
    """A runtime exception as an outcome: its ``kind``, or ``exception:<Type>`` for a crash."""
    if isinstance(exc, MeerkatError):
        return Err(exc.kind, str(exc))
    return Err(f"exception:{type(exc).__name__}", str(exc))


class OpsAdapter:
    """A registry under test, its fault-injecting store and the disk beneath."""

    def __init__(
        self,
        machine: OpsMachine,
        disk: Disk,
        *,
        registry_class: type[OpsLifecycleRegistry] = OpsLifecycleRegistry,
    ) -> None:
        self.machine = machine
        self.disk = disk
        self.registry_class = registry_class
        bounds = machine.bounds
        self.config = OpsLifecycleConfig(bounds.max_completed, bounds.max_concurrent or None)
        self.watches: list[tuple[int, OperationCompletionWatch]] = []
        self.wait: WaitAllHandle | None = None
        self.peer_handles: dict[int, OperationPeerHandle] = {}
        """The peer handle each operation was given when it reported peer-ready."""
        self.peer_counter = 0
        self.cursors = [0, 0, 0]
        """What the epoch's cursors must read now (forward-only)."""
        self.cursors_written = [0, 0, 0]
        """The cursors as they were at the last durable write the model made."""
        self.cursor_problems: list[str] = []
        self.model_disk: Any = ()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.store, self.faults = self._open_store()
        self.durable = self._recover()
        self.feed_seen = self.registry.completion_feed().watermark()

    # --- wiring ---------------------------------------------------------------------------

    @property
    def registry(self) -> OpsLifecycleRegistry:
        return self.durable.registry

    def _open_store(self) -> tuple[RuntimeStore, FaultInjectingStore]:
        inner = self.disk.open()
        return inner, FaultInjectingStore(inner)

    def _recover(self) -> DurableOps:
        durable = open_durable_ops(self.faults, RUNTIME_ID, config=self.config)
        if self.registry_class is not OpsLifecycleRegistry:
            durable.registry.__class__ = self.registry_class
        return durable

    def _crash(self, read_fault: bool) -> tuple[Any, ...]:
        """Abandon the process state and recover from the disk; returns extra outputs that
        only appear when the runtime mishandled the injected read fault."""
        old_store = self.store
        self.watches = []
        self.wait = None
        self.store, self.faults = self._open_store()
        self.disk.release(old_store)
        extra: tuple[Any, ...] = ()
        if read_fault:
            self.faults.fail_next("load_ops_lifecycle")
            try:
                self.durable = self._recover()
                extra = (("recovery_ignored_read_fault",),)
            except MeerkatError as exc:
                if exc.kind != "store_read_failed":
                    extra = (("recovery_failed_with", exc.kind),)
            self.faults.clear()
        self.durable = self._recover()
        self.feed_seen = self.registry.completion_feed().watermark()
        self._check_recovered_cursors()
        return extra

    def _detach(self) -> tuple[Any, ...]:
        """Close the registry as a machine does when its session goes away; report the waiters
        it released with the closing error, then recover the session's next registry from the
        same store. Anything else the close did (a waiter left pending or resolved otherwise, a
        change the closed registry accepted) is reported as an extra output."""
        old = self.registry
        old.close(lambda: SessionNotFound("conformance"))
        out: list[Any] = []
        released: dict[int, int] = {}
        for op, watch in self.watches:
            try:
                watch.result(timeout=0)
            except SessionNotFound:
                released[op] = released.get(op, 0) + 1
            except BaseException as exc:
                out.append(("watcher_not_released", op, type(exc).__name__))
            else:
                out.append(("watcher_not_released", op, "resolved"))
        out.extend(("watchers_released", op, n) for op, n in released.items())
        self.watches = []
        wait, self.wait = self.wait, None
        if wait is not None and not wait.done():
            out.append(("wait_all_not_released",))
        elif wait is not None:
            try:
                wait.result(timeout=0)
            except SessionNotFound:
                out.append(("wait_all_released",))
            except BaseException as exc:
                out.append(("wait_all_not_released", type(exc).__name__))
        try:
            old.collect_completed()
        except SessionNotFound:
            pass
        else:
            out.append(("closed_registry_changed",))
        self.durable = self._recover()
        self.feed_seen = self.registry.completion_feed().watermark()
        self._check_recovered_cursors()
        return tuple(out)

    def _check_recovered_cursors(self) -> None:
        """Recovered cursors lie between their values at the last durable write and their
        values before the crash; they then become what the cursors must read."""
        recovered = self.durable.cursors.snapshot()
        for index, name in enumerate(CURSORS):
            got = getattr(recovered, name)
            low, high = self.cursors_written[index], self.cursors[index]
            if not low <= got <= high:
                self.cursor_problems.append(f"{name} recovered as {got}, expected between {low} and {high}")
            self.cursors[index] = got
            self.cursors_written[index] = min(self.cursors_written[index], got)

    # --- the adapter protocol -------------------------------------------------------------

    def model_actions(self, action: Hashable, model_state: Any) -> Sequence[Hashable]:
        return harness_plan(action)

    def autonomous(self) -> Sequence[Hashable]:
        """The registry never acts on its own."""
        return ()

    def overdue(self, model_state: Any) -> str | None:
        return None

    def step_kind(self, action: Hashable) -> StepKind:
        if type(action) in (Crash, CrashReadFault, Detach):
            return StepKind.CRASH
        if type(action) is WriteFails:
            return StepKind.FAULT
        return StepKind.CALL

    def fault_variants(self, action: Hashable) -> list[Hashable]:
        return [WriteFails(action)] if isinstance(action, DURABLE_CALLS) else []

    def note(self, action: Hashable) -> str:
        if type(action) is Crash:
            return "crash + recover"
        if type(action) is CrashReadFault:
            return "crash + recover, first read fails"
        if type(action) is Detach:
            return "the session goes away: the registry is closed, the next one recovered"
        if type(action) is WriteFails:
            return "store write fails"
        if type(action) is CancelWaitTask:
            return "the task awaiting the handle is cancelled"
        if type(action) is DropWaitHandle:
            return "the handle is dropped"
        return ""

    def execute(self, action: Hashable) -> Outcome:
        if type(action) is WriteFails:
            rules = fail_next_write(self.faults)
            try:
                return self._call(action.inner)
            finally:
                disarm(self.faults, rules)
        return self._call(action)

    def expected(self, action: Hashable, result: Stepped[Any] | Rejected) -> Outcome:
        if isinstance(result, Rejected):
            return Err(result.kind, result.detail)
        if type(action) is AdvanceCursor:
            return Ok((("returned", max(self.cursors[action.cursor], action.seq)),))
        return Ok(sorted_outputs(result.outputs))

    def observe(self) -> Any:
        view = observe_registry(self.registry)
        snapshot = self.durable.cursors.snapshot()
        view["cursors"] = [getattr(snapshot, name) for name in CURSORS]
        if self.cursor_problems:
            view["cursor_problems"] = list(self.cursor_problems)
        return view

    def model_view(self, model_state: Any) -> Any:
        """The model's view, plus what only the harness tracks: the peer handles and the
        cursors. Seeing the model's durable image change (a write reached the store) records
        the cursors as that write stored them."""
        if model_state.disk != self.model_disk:
            self.model_disk = model_state.disk
            self.cursors_written = list(self.cursors)
        view = self.machine.observe(model_state)
        for op, op_view in view["ops"].items():
            handle = self.peer_handles.get(op) if op_view["peer_ready"] else None
            op_view["peer_handle"] = handle_view(handle)
        view["cursors"] = list(self.cursors)
        return view

    def close(self) -> None:
        self.watches = []
        self.wait = None
        if self.loop is not None:
            self.loop.close()
        self.store.close()
        self.disk.destroy()

    # --- calls ----------------------------------------------------------------------------

    def _call(self, action: Hashable) -> Outcome:
        try:
            returned, extra = self._dispatch(action)
        except Exception as exc:  # every runtime refusal, and anything unexpected, is compared
            return error_outcome(exc)
        if type(action) is RegisterOperation:
            self.peer_handles.pop(action.op, None)  # a new operation under that id
        outputs: list[Any] = list(extra)
        if not isinstance(action, _NO_RETURN):
            outputs.append(("returned", returned))
        outputs.extend(self._harvest())
        return Ok(sorted_outputs(outputs))

    def _dispatch(self, action: Hashable) -> tuple[Any, tuple[Any, ...]]:
        """The registry call ``action`` stands for: what it returned, and the outputs only the
        harness sees at once (a watcher resolved on registration, a crash's findings)."""
        reg = self.registry
        match action:
            case Crash():
                return None, self._crash(read_fault=False)
            case CrashReadFault():
                return None, self._crash(read_fault=True)
            case Detach():
                return None, self._detach()
            case RegisterOperation(op, kind):
                runtime_kind = _KINDS[kind]
                spec = OperationSpec(
                    id=OperationId(runtime_op_id(op)),
                    kind=runtime_kind,
                    owner_session_id="conformance",
                    display_name=runtime_op_id(op),
                    expect_peer_channel=runtime_kind is OperationKind.MOB_MEMBER_CHILD,
                )
                return _value(reg.register_operation, spec), ()
            case RegisterWatcher(op):
                watch = reg.register_watcher(runtime_op_id(op))
                if watch.done():
                    return None, (("watcher_resolved", op, outcome_pair(watch.outcome())),)
                self.watches.append((op, watch))
                return None, ()
            case DropWatcher(op):
                return None, self._drop_watcher(op)
            case WaitAll(members):
                self.wait = reg.wait_all([runtime_op_id(i) for i in members])
                return None, ()
            case DropWait():
                return None, self._drop_wait()
            case TerminateOwner(reason):
                return _value(reg.terminate_owner, reason), ()
            case CollectCompleted():
                return outcome_pairs(reg.collect_completed()), ()
            case ProvisioningSucceeded(op):
                return _value(reg.provisioning_succeeded, runtime_op_id(op)), ()
            case RequestRetire(op):
                return _value(reg.request_retire, runtime_op_id(op)), ()
            case MarkRetired(op):
                return _value(reg.mark_retired, runtime_op_id(op)), ()
            case PeerReady(op):
                self.peer_counter += 1
                name = f"peer-{op}-{self.peer_counter}"
                handle = OperationPeerHandle(name, f"inproc://conformance/{name}", f"id-{self.peer_counter}")
                returned = _value(reg.peer_ready, runtime_op_id(op), handle)
                self.peer_handles[op] = handle
                return returned, ()
            case AdvanceCursor(cursor, seq):
                advance = getattr(self.durable.cursors, f"advance_{CURSORS[cursor]}")
                value = advance(seq)
                self.cursors[cursor] = max(self.cursors[cursor], seq)
                return value, ()
            case CancelWaitTask():
                return None, self._cancel_wait_task()
            case DropWaitHandle():
                return None, self._drop_wait_handle()
            case ReportProgress(op):
                return _value(reg.report_progress, runtime_op_id(op), OperationProgressUpdate("working", 50.0)), ()
            case CompleteOperation(op, result):
                oid = runtime_op_id(op)
                return _value(reg.complete_operation, oid, OperationResult(oid, result)), ()
            case FailOperation(op, error):
                return _value(reg.fail_operation, runtime_op_id(op), error), ()
            case ProvisioningFailed(op, error):
                return _value(reg.provisioning_failed, runtime_op_id(op), error), ()
            case CancelOperation(op, reason):
                return _value(reg.cancel_operation, runtime_op_id(op), reason), ()
            case AbortProvisioning(op, reason):
                return _value(reg.abort_provisioning, runtime_op_id(op), reason), ()
        raise ValueError(f"the ops harness does not know action {action!r}")

    def _drop_watcher(self, op: int) -> tuple[Any, ...]:
        """Drop the harness's last reference to the newest pending watch of ``op``, let the
        collector take it, and report the watchers the registry still counts for ``op``."""
        for index in range(len(self.watches) - 1, -1, -1):
            if self.watches[index][0] == op and not self.watches[index][1].done():
                break
        else:
            return (("no_watch_to_drop", op),)
        del self.watches[index]
        held = sum(1 for watched, _ in self.watches if watched == op)
        count = self._watcher_count(op)
        if count != held:  # not released when its count fell to zero: let the collector run first
            gc.collect()
            count = self._watcher_count(op)
        return (("watcher_dropped", op, count),)

    def _watcher_count(self, op: int) -> int | None:
        """The registry's ``watcher_count`` of ``op`` (any call drains the dropped watches)."""
        view = self.registry.snapshot(runtime_op_id(op))
        return None if view is None else view.watcher_count

    def _cancel_wait_task(self) -> tuple[Any, ...]:
        """Await the pending handle in a task, then cancel the task."""
        handle, self.wait = self.wait, None
        if handle is None or handle.done():
            return self._drop_wait_of(handle)
        loop = self.loop = self.loop or asyncio.new_event_loop()

        async def cancelled() -> bool:
            task = asyncio.ensure_future(handle.wait())
            await asyncio.sleep(0)  # the task now awaits the handle
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                return True
            except MeerkatError:
                return True
            return False

        return () if loop.run_until_complete(cancelled()) and handle.done() else (("wait_task_cancel_refused",),)

    def _drop_wait_handle(self) -> tuple[Any, ...]:
        """Drop the last reference to the pending handle and let the collector take it."""
        handle, self.wait = self.wait, None
        if handle is None or handle.done():
            return self._drop_wait_of(handle)
        del handle
        gc.collect()
        self.registry.view()  # any call drains the barriers of dropped handles
        return ()

    def _drop_wait_of(self, handle: WaitAllHandle | None) -> tuple[Any, ...]:
        """No pending handle to drop: as ``DropWait`` without one."""
        self.wait = handle
        return self._drop_wait()

    def _drop_wait(self) -> tuple[Any, ...]:
        handle, self.wait = self.wait, None
        if handle is not None and not handle.done():
            return () if handle.cancel() else (("wait_cancel_refused",),)
        if self.registry.cancel_wait_all():
            return (("cancelled_unknown_barrier",),)
        return ()

    def _harvest(self) -> list[Any]:
        """Side effects since the last call: resolved watchers, new feed entries, a satisfied wait."""
        out: list[Any] = []
        resolved: dict[tuple[int, Any], int] = {}
        pending: list[tuple[int, OperationCompletionWatch]] = []
        for op_id, watch in self.watches:
            if watch.done():
                key = (op_id, outcome_pair(watch.outcome()))
                resolved[key] = resolved.get(key, 0) + 1
            else:
                pending.append((op_id, watch))
        self.watches = pending
        out.extend(("watchers_resolved", op_id, n, outcome) for (op_id, outcome), n in resolved.items())
        batch = self.registry.completion_feed().list_since(self.feed_seen)
        for entry in batch.entries:
            out.append(("feed", entry.seq, model_op_id(entry.operation_id), outcome_pair(entry.terminal_outcome)))
        self.feed_seen = max(self.feed_seen, batch.watermark)
        if self.wait is not None and self.wait.done():
            handle, self.wait = self.wait, None
            try:
                result = handle.result(timeout=0)
            except MeerkatError as exc:
                out.append(("wait_all_failed", exc.kind))
            else:
                out.append(("wait_all_satisfied", outcome_pairs(result.outcomes)))
        return out
