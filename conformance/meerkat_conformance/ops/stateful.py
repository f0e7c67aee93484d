"""``OpsLockstepMachine``: Hypothesis drives ``OpsMachine`` and ``OpsLifecycleRegistry`` together.

Operation ids travel through the ``ops`` bundle (filled by ``register``); terminal payloads
are drawn from the model's payload domains. Crash steps abandon the registry and recover it
from the SQLite file (optionally with a failing first read); fault steps make the next store
write fail. A barrier may go away three ways (its handle cancelled, the task awaiting it
cancelled, the handle dropped); a pending watch may be dropped (its last reference released);
the epoch's cursors move between steps. After every step the
base class compares results and observations.

Subclass and override the class attributes to change bounds, disk or (for planted-bug
tests) the registry class.
"""

from __future__ import annotations

from typing import ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, precondition, rule
from meerkat_model.machine import Bounds
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
from meerkat_model.ops.machine import OpsMachine
from meerkat_model.vocab.statuses import OpKind, OpStatus
from meerkat_runtime.ops.registry import OpsLifecycleRegistry

from meerkat_conformance.lockstep.disks import DiskKind, make_disk
from meerkat_conformance.lockstep.driver import Lockstep
from meerkat_conformance.lockstep.stateful import LockstepStateMachine, with_failing_write
from meerkat_conformance.ops.adapter import CRASH_READ_FAULT, OpsAdapter
from meerkat_conformance.ops.harness_actions import CANCEL_WAIT_TASK, CURSORS, DROP_WAIT_HANDLE, AdvanceCursor

HYPOTHESIS_BOUNDS = Bounds({"ids": 3, "kinds": 2, "max_completed": 2, "max_concurrent": 2, "payloads": 1})
"""Bounds of the model the Hypothesis machine runs (data domains only; steps are unbounded)."""

_REFERENCE = OpsMachine(HYPOTHESIS_BOUNDS)
_IDS = st.integers(0, _REFERENCE.bounds.ids - 1)
_KINDS = st.sampled_from([int(OpKind.BACKGROUND_TOOL_OP), int(OpKind.MOB_MEMBER_CHILD)][: _REFERENCE.bounds.kinds])


def _payloads(outcome: OpStatus) -> st.SearchStrategy[str]:
    return st.sampled_from([p for p in _REFERENCE.domains.by_outcome[int(outcome)] if p is not None])


def _reasons(outcome: OpStatus) -> st.SearchStrategy[str | None]:
    return st.sampled_from(_REFERENCE.domains.by_outcome[int(outcome)])


OperationCall = (
    CompleteOperation
    | FailOperation
    | ProvisioningFailed
    | CancelOperation
    | AbortProvisioning
    | MarkRetired
    | ProvisioningSucceeded
    | RequestRetire
    | PeerReady
    | ReportProgress
    | RegisterWatcher
)
"""A call on one operation, drawn with id 0; the rule puts in the id (``call._replace(op=op)``)."""

_TERMINAL_CALLS: st.SearchStrategy[OperationCall] = st.one_of(
    _payloads(OpStatus.COMPLETED).map(lambda p: CompleteOperation(0, p)),
    _payloads(OpStatus.FAILED).map(lambda p: FailOperation(0, p)),
    _payloads(OpStatus.FAILED).map(lambda p: ProvisioningFailed(0, p)),
    _reasons(OpStatus.CANCELLED).map(lambda p: CancelOperation(0, p)),
    _reasons(OpStatus.ABORTED).map(lambda p: AbortProvisioning(0, p)),
    st.just(MarkRetired(0)),
)
_REGISTRY_CALLS: st.SearchStrategy[OpsAction] = st.one_of(
    _payloads(OpStatus.TERMINATED).map(TerminateOwner),
    st.just(CollectCompleted()),
)
_OP_CALLS: st.SearchStrategy[OperationCall] = st.sampled_from(
    [ProvisioningSucceeded(0), RequestRetire(0), PeerReady(0), ReportProgress(0), RegisterWatcher(0)]
)
_FIRST_TERMINAL = int(OpStatus.COMPLETED)
_RARELY = st.integers(0, 3).map(lambda n: n == 3)
"""True about one time in four: how often a durable call runs with a failing store write."""


class OpsLockstepMachine(LockstepStateMachine):
    """Lockstep of the operation registry; see the module docstring."""

    BOUNDS: ClassVar[Bounds] = HYPOTHESIS_BOUNDS
    DISK: ClassVar[DiskKind] = "sqlite"
    REGISTRY_CLASS: ClassVar[type[OpsLifecycleRegistry]] = OpsLifecycleRegistry

    GUIDED_EXCLUDE = frozenset({Crash, Detach, WriteFails})
    GUIDED_LAST = (RegisterWatcher, WaitAll, DropWait, TerminateOwner, CollectCompleted)

    ops = Bundle("ops")

    def make_lockstep(self) -> Lockstep:
        machine = OpsMachine(type(self).BOUNDS)
        adapter = OpsAdapter(machine, make_disk(type(self).DISK), registry_class=type(self).REGISTRY_CLASS)
        return Lockstep(machine, adapter)

    def _has_barrier(self) -> bool:
        return bool(self.model_state.barrier)

    def _registry_has_work(self) -> bool:
        state = self.model_state
        return bool(state.active_count or state.completed)

    def _watched(self) -> list[int]:
        """The active operations with a pending watcher (in the model)."""
        ops = self.model_state.ops
        return [op for op, rec in enumerate(ops) if rec and rec.watchers and rec.status < _FIRST_TERMINAL]

    def _has_watcher(self) -> bool:
        return bool(self._watched())

    def _something_to_lose(self) -> bool:
        """A crash is only interesting when the process holds something (or the disk does)."""
        state = self.model_state
        return bool(state.active_count or state.barrier or state.disk)

    # --- registration and non-terminal calls ---------------------------------------------

    @rule(target=ops, op=_IDS, kind=_KINDS)
    def register_operation(self, op: int, kind: int) -> int:
        self.act(RegisterOperation(op, kind))
        return op

    @rule(op=ops, call=_OP_CALLS)
    def operation_call(self, op: int, call: OperationCall) -> None:
        """A non-terminal per-operation call."""
        self.act(call._replace(op=op))

    @rule(op=_IDS, call=_OP_CALLS)
    def call_on_any_id(self, op: int, call: OperationCall) -> None:
        """A call on an id that may never have been registered (``not_found``)."""
        self.act(call._replace(op=op))

    @precondition(_has_watcher)
    @rule(pick=st.integers(0, 7))
    def drop_watcher(self, pick: int) -> None:
        """The last reference to a pending watch of an active operation is dropped."""
        watched = self._watched()
        self.act(DropWatcher(watched[pick % len(watched)]))

    # --- terminal and registry-wide calls, optionally with a failing store write -----------

    @rule(op=ops, call=_TERMINAL_CALLS, write_fails=_RARELY)
    def terminal_call(self, op: int, call: OperationCall, write_fails: bool) -> None:
        self.act(with_failing_write(call._replace(op=op), write_fails, WriteFails))

    @precondition(_registry_has_work)
    @rule(call=_REGISTRY_CALLS, write_fails=_RARELY)
    def registry_call(self, call: OpsAction, write_fails: bool) -> None:
        """``terminate_owner(reason)`` or ``collect_completed()``."""
        self.act(with_failing_write(call, write_fails, WriteFails))

    @rule(members=st.lists(ops, max_size=3).map(tuple))
    def wait_all(self, members: tuple[int, ...]) -> None:
        self.act(WaitAll(members))

    @precondition(_has_barrier)
    @rule(how=st.sampled_from(["cancel", "cancel_task", "drop_handle"]))
    def drop_wait(self, how: str) -> None:
        """The barrier goes away: its handle is cancelled, the task awaiting it is cancelled,
        or the handle is dropped."""
        self.act({"cancel": DropWait(), "cancel_task": CANCEL_WAIT_TASK, "drop_handle": DROP_WAIT_HANDLE}[how])

    @rule(cursor=st.integers(0, len(CURSORS) - 1), seq=st.integers(0, 6))
    def advance_cursor(self, cursor: int, seq: int) -> None:
        """A consumer cursor of the epoch moves (never backward)."""
        self.act(AdvanceCursor(cursor, seq))

    # --- crashes --------------------------------------------------------------------------

    @precondition(_something_to_lose)
    @rule(read_fails=st.booleans())
    def crash(self, read_fails: bool) -> None:
        """The process dies; the registry is recovered from the SQLite file (whose first
        read fails when ``read_fails``)."""
        self.act(CRASH_READ_FAULT if read_fails else Crash())

    @precondition(_something_to_lose)
    @rule()
    def detach(self) -> None:
        """The session goes away while the process lives: the registry is closed (its waiters
        released with the closing error) and the next one recovered from the SQLite file."""
        self.act(Detach())
