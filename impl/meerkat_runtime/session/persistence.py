"""The durable side of one session: encodes rows and calls the ``RuntimeStore``.

An ephemeral session has ``store=None`` and every write is a no-op. Store methods are
synchronous; with ``offload=True`` each call runs in a worker thread (``asyncio.to_thread``)
so a slow fsync does not stall other sessions on the event loop, with ``offload=False`` it
runs inline (lower latency for a single session). Callers catch failures, restore their
checkpoint and raise ``DurableWriteFailed``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TypeVar

from meerkat_runtime.session.ledger import InputRecord
from meerkat_runtime.session.row_codec import LifecycleRecord, encode_lifecycle, encode_record
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.records import BoundaryReceipt, InputRow, OpsLifecycleRecords
from meerkat_runtime.vocab.runtime import RuntimeState

T = TypeVar("T")


def encode_row(record: InputRecord) -> InputRow:
    return InputRow(record.input_id, encode_record(record))


class SessionPersistence:
    """Durable writes and reads of one session, keyed by its canonical runtime id."""

    def __init__(self, store: RuntimeStore | None, runtime_id: str, *, offload: bool) -> None:
        self.store = store
        self.runtime_id = runtime_id
        self.offload = offload
        self.epoch_id: str | None = None

    @property
    def durable(self) -> bool:
        return self.store is not None

    async def _call(self, fn: Callable[[], T]) -> T:
        if self.offload:
            return await asyncio.to_thread(fn)
        return fn()

    def _lifecycle(self, phase: RuntimeState) -> bytes:
        if phase is RuntimeState.RUNNING:
            raise ValueError("a lifecycle record never stores Running; pass the durable phase")
        return encode_lifecycle(LifecycleRecord(phase.durable_form, self.epoch_id))

    # --- writes ---------------------------------------------------------------------------

    async def persist_accept(self, records: list[InputRecord], phase: RuntimeState) -> None:
        """Write the new row (and a displaced row) before the accept is acknowledged.

        One row is an upsert; two rows (supersession) are one lifecycle commit so both land
        together.
        """
        store = self.store
        if store is None:
            return
        rows = [encode_row(r) for r in records]
        rt = self.runtime_id
        if len(rows) == 1:
            row = rows[0]
            await self._call(lambda: store.persist_input_state(rt, row))
        else:
            lifecycle = self._lifecycle(phase)
            await self._call(lambda: store.commit_machine_lifecycle(rt, lifecycle, rows))

    async def commit_lifecycle(self, phase: RuntimeState, records: Iterable[InputRecord]) -> None:
        """One transaction: the lifecycle record and every given row."""
        store = self.store
        if store is None:
            return
        rows = [encode_row(r) for r in records]
        lifecycle = self._lifecycle(phase)
        rt = self.runtime_id
        await self._call(lambda: store.commit_machine_lifecycle(rt, lifecycle, rows))

    async def commit_boundary(
        self, receipt: BoundaryReceipt, snapshot: bytes | None, records: Iterable[InputRecord]
    ) -> None:
        """One transaction: session snapshot, boundary receipt and the contributor rows."""
        store = self.store
        if store is None:
            return
        rows = [encode_row(r) for r in records]
        rt = self.runtime_id
        await self._call(lambda: store.atomic_apply(rt, session_snapshot=snapshot, receipt=receipt, rows=rows))

    # --- reads ----------------------------------------------------------------------------

    def load_lifecycle(self) -> bytes | None:
        return self.store.load_machine_lifecycle(self.runtime_id) if self.store is not None else None

    def load_rows(self) -> list[InputRow]:
        return self.store.load_input_states(self.runtime_id) if self.store is not None else []

    def receipt_exists(self, run_id: str, sequence: int) -> bool:
        if self.store is None:
            return False
        return self.store.load_boundary_receipt(self.runtime_id, run_id, sequence) is not None

    def load_ops(self) -> OpsLifecycleRecords | None:
        return self.store.load_ops_lifecycle(self.runtime_id) if self.store is not None else None

    async def read(self, fn: Callable[[], T]) -> T:
        """Run a (possibly slow) read the same way writes run."""
        return await self._call(fn)
