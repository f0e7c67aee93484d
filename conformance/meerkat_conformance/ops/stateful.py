"""``OpsLockstepMachine``: Hypothesis drives ``OpsMachine`` and ``OpsLifecycleRegistry`` together.

Operation ids travel through the ``ops`` bundle (filled by ``register``); terminal payloads
are drawn from the model's payload domains. Crash steps abandon the registry and recover it
from the SQLite file (optionally with a failing first read); fault steps make the next store
write fail. After every step the base class compares results and observations.

Subclass and override the class attributes to change bounds, disk or (for planted-bug
tests) the registry class.
"""

from __future__ import annotations

from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, precondition, rule
from meerkat_model.machine import Bounds
from meerkat_model.ops.machine import OpsMachine
from meerkat_model.vocab.statuses import OpKind, OpStatus
from meerkat_runtime.ops.registry import OpsLifecycleRegistry

from meerkat_conformance.lockstep.disks import DiskKind, make_disk
from meerkat_conformance.lockstep.driver import Lockstep
from meerkat_conformance.lockstep.stateful import LockstepStateMachine, with_failing_write
from meerkat_conformance.ops.adapter import CRASH_READ_FAULT, OpsAdapter

HYPOTHESIS_BOUNDS = Bounds({"ids": 3, "kinds": 2, "max_completed": 2, "max_concurrent": 2, "payloads": 1})
"""Bounds of the model the Hypothesis machine runs (data domains only; steps are unbounded)."""

_REFERENCE = OpsMachine(HYPOTHESIS_BOUNDS)
_IDS = st.integers(0, _REFERENCE.bounds.ids - 1)
_KINDS = st.sampled_from([int(OpKind.BACKGROUND_TOOL_OP), int(OpKind.MOB_MEMBER_CHILD)][: _REFERENCE.bounds.kinds])


def _payloads(outcome: OpStatus) -> st.SearchStrategy[Any]:
    return st.sampled_from(_REFERENCE.domains.by_outcome[int(outcome)])


_TERMINAL_CALLS: st.SearchStrategy[tuple[Any, ...]] = st.one_of(
    _payloads(OpStatus.COMPLETED).map(lambda p: ("complete_operation", p)),
    _payloads(OpStatus.FAILED).map(lambda p: ("fail_operation", p)),
    _payloads(OpStatus.FAILED).map(lambda p: ("provisioning_failed", p)),
    _payloads(OpStatus.CANCELLED).map(lambda p: ("cancel_operation", p)),
    _payloads(OpStatus.ABORTED).map(lambda p: ("abort_provisioning", p)),
    st.just(("mark_retired",)),
)
_REGISTRY_CALLS: st.SearchStrategy[tuple[Any, ...]] = st.one_of(
    _payloads(OpStatus.TERMINATED).map(lambda r: ("terminate_owner", r)),
    st.just(("collect_completed",)),
)
_OP_CALLS = st.sampled_from(
    ["provisioning_succeeded", "request_retire", "peer_ready", "report_progress", "register_watcher"]
)
_RARELY = st.integers(0, 3).map(lambda n: n == 3)
"""True about one time in four: how often a durable call runs with a failing store write."""


def _terminal_action(op: int, call: tuple[Any, ...]) -> tuple[Any, ...]:
    return (call[0], op, *call[1:])


class OpsLockstepMachine(LockstepStateMachine):
    """Lockstep of the operation registry; see the module docstring."""

    BOUNDS: ClassVar[Bounds] = HYPOTHESIS_BOUNDS
    DISK: ClassVar[DiskKind] = "sqlite"
    REGISTRY_CLASS: ClassVar[type[OpsLifecycleRegistry]] = OpsLifecycleRegistry

    GUIDED_LAST = ("register_watcher", "wait_all", "drop_wait", "terminate_owner", "collect_completed")

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

    def _something_to_lose(self) -> bool:
        """A crash is only interesting when the process holds something (or the disk does)."""
        state = self.model_state
        return bool(state.active_count or state.barrier or state.disk)

    # --- registration and non-terminal calls ---------------------------------------------

    @rule(target=ops, op=_IDS, kind=_KINDS)
    def register_operation(self, op: int, kind: int) -> int:
        self.act(("register_operation", op, kind))
        return op

    @rule(op=ops, name=_OP_CALLS)
    def operation_call(self, op: int, name: str) -> None:
        """A non-terminal per-operation call."""
        self.act((name, op))

    @rule(op=_IDS, name=_OP_CALLS)
    def call_on_any_id(self, op: int, name: str) -> None:
        """A call on an id that may never have been registered (``not_found``)."""
        self.act((name, op))

    # --- terminal and registry-wide calls, optionally with a failing store write -----------

    @rule(op=ops, call=_TERMINAL_CALLS, write_fails=_RARELY)
    def terminal_call(self, op: int, call: tuple[Any, ...], write_fails: bool) -> None:
        self.act(with_failing_write(_terminal_action(op, call), write_fails))

    @precondition(_registry_has_work)
    @rule(call=_REGISTRY_CALLS, write_fails=_RARELY)
    def registry_call(self, call: tuple[Any, ...], write_fails: bool) -> None:
        """``terminate_owner(reason)`` or ``collect_completed()``."""
        self.act(with_failing_write(call, write_fails))

    @rule(members=st.lists(ops, max_size=3).map(tuple))
    def wait_all(self, members: tuple[int, ...]) -> None:
        self.act(("wait_all", members))

    @precondition(_has_barrier)
    @rule()
    def drop_wait(self) -> None:
        self.act(("drop_wait",))

    # --- crashes --------------------------------------------------------------------------

    @precondition(_something_to_lose)
    @rule(read_fails=st.booleans())
    def crash(self, read_fails: bool) -> None:
        """The process dies; the registry is recovered from the SQLite file (whose first
        read fails when ``read_fails``)."""
        self.act(CRASH_READ_FAULT if read_fails else ("crash",))
