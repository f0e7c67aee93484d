"""The durable side of one session: encodes rows and calls the ``RuntimeStore``.

An ephemeral session has ``store=None`` and every write is a no-op. Store methods are
synchronous; with ``offload=True`` each call runs in a worker thread (``asyncio.to_thread``)
so a slow fsync does not stall other sessions on the event loop, with ``offload=False`` it
runs inline (lower latency for a single session). Callers catch failures, restore their
checkpoint and raise ``DurableWriteFailed``.

Which rows a commit writes: every row of the ledger's ``dirty`` set whose encoding differs from
the last encoding written for it (``written``), so a commit writes exactly the rows that differ
from the store, in O(changed rows). ``written`` and ``dirty`` change only after a successful
write; a failed write changes neither (memory never runs ahead of disk). Terminal rows never
change again, so their encodings are not kept once written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from meerkat_runtime.session.ledger import InputLedger, InputRecord
from meerkat_runtime.session.row_codec import LifecycleRecord, encode_lifecycle, encode_record
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.records import BoundaryReceipt, InputRow, OpsLifecycleRecords
from meerkat_runtime.vocab.ids import InputId
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
        self.written: dict[InputId, bytes] = {}
        """The last encoding written (or loaded) for each non-terminal row."""

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

    # --- what the store holds -------------------------------------------------------------

    def loaded(self, rows: Mapping[InputId, bytes]) -> None:
        """Remember the stored encodings of rows read back by recovery (non-terminal rows)."""
        self.written.update(rows)

    def _pending(self, ledger: InputLedger) -> tuple[list[InputRow], list[InputRecord]]:
        """The dirty rows whose encoding differs from the last one written, in admission order."""
        records = [r for i in ledger.dirty if (r := ledger.records.get(i)) is not None]
        if len(records) > 1:
            records.sort(key=lambda r: r.admission_seq)
        rows: list[InputRow] = []
        changed: list[InputRecord] = []
        for record in records:
            row = encode_row(record)
            if self.written.get(record.input_id) != row.payload:
                rows.append(row)
                changed.append(record)
        return rows, changed

    def _done(self, rows: Iterable[InputRow], records: Iterable[InputRecord]) -> None:
        """After a successful write: remember what the store now holds for ``rows``."""
        for row, record in zip(rows, records, strict=True):
            if record.phase.is_terminal:
                self.written.pop(record.input_id, None)
            else:
                self.written[record.input_id] = row.payload

    # --- writes ---------------------------------------------------------------------------

    async def persist_accept(self, records: list[InputRecord], phase: RuntimeState) -> None:
        """Write the new row (and a displaced row) before the accept is acknowledged.

        One row is an upsert; two rows (supersession) are one lifecycle commit so both land
        together. Other dirty rows are left for the next commit.
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
        self._done(rows, records)

    async def _commit_dirty(
        self, ledger: InputLedger, write: Callable[[RuntimeStore, str, list[InputRow]], None]
    ) -> None:
        """Call ``write(store, runtime_id, rows)`` (one transaction) with every row of the ledger
        that differs from the store; after it succeeds, those rows are clean. Ephemeral: nothing
        is written and every row is clean."""
        store = self.store
        if store is None:
            ledger.dirty.clear()
            return
        considered = set(ledger.dirty)
        rows, records = self._pending(ledger)
        rt = self.runtime_id
        await self._call(lambda: write(store, rt, rows))
        self._done(rows, records)
        ledger.dirty -= considered

    async def commit_lifecycle(self, phase: RuntimeState, ledger: InputLedger) -> None:
        """One transaction: the lifecycle record and every row that differs from the store."""
        await self._commit_dirty(
            ledger,
            lambda store, rt, rows: store.commit_machine_lifecycle(rt, self._lifecycle(phase), rows),
        )

    async def commit_boundary(self, receipt: BoundaryReceipt, snapshot: bytes | None, ledger: InputLedger) -> None:
        """One transaction: session snapshot, boundary receipt and every row that differs from
        the store (the contributors among them)."""
        await self._commit_dirty(
            ledger,
            lambda store, rt, rows: store.atomic_apply(rt, session_snapshot=snapshot, receipt=receipt, rows=rows),
        )

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
