"""Two workers on one store in one process, with a manual clock: the set-up the ownership
tests share (and the one a two-worker harness uses)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.store.clock import Clock, ManualClock
from meerkat_runtime.store.faults import FaultInjectingStore
from meerkat_runtime.store.lease import Fence
from meerkat_runtime.store.memory import InMemoryRuntimeStore, MemoryStorage
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.records import BoundaryReceipt, InputRow
from meerkat_runtime.vocab.ids import canonical_runtime_id

LEASE_S = 10.0
RT = canonical_runtime_id("s")


def config(owner: str, clock: Clock, **overrides: Any) -> OwnershipConfig:
    """Manual renewal (none in the background), leases of ``LEASE_S``, the machine on ``clock``."""
    settings: dict[str, Any] = {"owner_id": owner, "lease_s": LEASE_S, "renew_every_s": None, "clock": clock}
    settings.update(overrides)
    return OwnershipConfig(**settings)


@dataclass
class Workers:
    clock: ManualClock
    storage: MemoryStorage
    a: MeerkatMachine
    b: MeerkatMachine
    store_a: FaultInjectingStore
    store_b: FaultInjectingStore

    def expire(self) -> None:
        """Let every lease granted so far expire (store clock)."""
        self.clock.advance(LEASE_S + 1)

    def reader(self) -> InMemoryRuntimeStore:
        return InMemoryRuntimeStore(self.storage, clock=self.clock)


def two_workers(**overrides: Any) -> Workers:
    """Machines ``a`` (owner ``"A"``) and ``b`` (owner ``"B"``), each with its own store handle
    (a ``FaultInjectingStore``) on one shared storage, all on one manual clock (unless
    ``clock=`` in ``overrides`` gives the machines another)."""
    clock = ManualClock()
    storage = MemoryStorage()
    store_a = FaultInjectingStore(InMemoryRuntimeStore(storage, clock=clock))
    store_b = FaultInjectingStore(InMemoryRuntimeStore(storage, clock=clock))
    machine_clock = overrides.pop("clock", clock)
    a = MeerkatMachine.persistent(store_a, offload_store_calls=False, ownership=config("A", machine_clock, **overrides))
    b = MeerkatMachine.persistent(store_b, offload_store_calls=False, ownership=config("B", machine_clock, **overrides))
    return Workers(clock, storage, a, b, store_a, store_b)


class FenceRecordingStore(InMemoryRuntimeStore):
    """Records ``(method, fence)`` of every write call."""

    def __init__(self, storage: MemoryStorage | None = None, **kwargs: Any) -> None:
        super().__init__(storage, **kwargs)
        self.writes: list[tuple[str, Fence | None]] = []

    def persist_input_state(self, runtime_id: str, row: InputRow, *, fence: Fence | None = None) -> None:
        self.writes.append(("persist_input_state", fence))
        super().persist_input_state(runtime_id, row, fence=fence)

    def atomic_apply(
        self,
        runtime_id: str,
        *,
        session_snapshot: bytes | None,
        receipt: BoundaryReceipt,
        rows: Sequence[InputRow],
        fence: Fence | None = None,
    ) -> None:
        self.writes.append(("atomic_apply", fence))
        super().atomic_apply(runtime_id, session_snapshot=session_snapshot, receipt=receipt, rows=rows, fence=fence)

    def commit_machine_lifecycle(
        self, runtime_id: str, lifecycle: bytes, rows: Sequence[InputRow], *, fence: Fence | None = None
    ) -> None:
        self.writes.append(("commit_machine_lifecycle", fence))
        super().commit_machine_lifecycle(runtime_id, lifecycle, rows, fence=fence)

    def append_ops_record(self, runtime_id: str, record: bytes, *, fence: Fence | None = None) -> None:
        self.writes.append(("append_ops_record", fence))
        super().append_ops_record(runtime_id, record, fence=fence)

    def persist_ops_lifecycle(self, runtime_id: str, snapshot: bytes, *, fence: Fence | None = None) -> None:
        self.writes.append(("persist_ops_lifecycle", fence))
        super().persist_ops_lifecycle(runtime_id, snapshot, fence=fence)


def store_of(machine: MeerkatMachine) -> RuntimeStore:
    store = machine._store
    assert store is not None
    return store
