"""The durable side of one session: encodes rows and calls the ``RuntimeStore``.

An ephemeral session has ``store=None`` and every write is a no-op. Store methods are
synchronous; with ``offload=True`` each call runs in a worker thread (``asyncio.to_thread``)
so a slow fsync does not stall other sessions on the event loop, with ``offload=False`` it
runs inline (lower latency for a single session). With ``offload=True`` and a store with
group commit on (:class:`~meerkat_runtime.store.protocol.SubmitsWrites`) no write runs in a
worker thread: while the store's writer is idle and nothing else is ready to run on the event
loop, the write commits at once on the loop's own thread (no thread hop: nobody is waiting for
the loop during the commit); otherwise it is handed to the writer and its commit awaited (it
joins the next batch, the fsync does not hold up the callbacks that are ready, and the writer
wakes the loop once per batch).

:meth:`SessionPersistence.prepare` encodes what a plan writes (an accept's new rows are
encoded and checked to read back, :func:`~meerkat_runtime.session.row_codec.encode_record_checked`:
a row that would not come back is refused with ``InvalidField`` before anything is written);
:meth:`SessionPersistence.persist` performs the write and changes nothing in memory;
:meth:`SessionPersistence.settle` records what the store now holds once the plan was applied;
:meth:`SessionPersistence.read_back` tells, after a write whose outcome the store left unknown,
whether the store holds it. All are called only by :mod:`meerkat_runtime.session.commit`.

Which rows a commit writes: every row the plan changes and every row of the ledger's ``dirty``
set, whose encoding differs from the last encoding written for it (``written``), so a commit
writes exactly the rows that differ from the store, in O(changed rows). ``written`` (and
``lifecycle``, the lifecycle record the store holds) change only after a successful write
(memory never runs ahead of disk). Terminal rows never change again, so their encodings are
not kept once written.

Every write carries the fence of ``claim`` (the session's lease; ``None`` without ownership);
the store checks it in the write's own transaction and refuses a stale one with
``OwnershipLost``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, TypeGuard, TypeVar

from meerkat_runtime.session.claims import SessionClaim
from meerkat_runtime.session.core.ledger import InputLedger, InputRecord
from meerkat_runtime.session.core.plan import BoundaryWrite, Plan, RowsWrite
from meerkat_runtime.session.packed_record import PackedRecord, queued_fields
from meerkat_runtime.session.row_codec import (
    LifecycleRecord,
    RowFormatError,
    encode_lifecycle,
    encode_record,
    encode_record_checked,
)
from meerkat_runtime.store.high_water import HighWater
from meerkat_runtime.store.protocol import RuntimeStore, SubmitsWrites
from meerkat_runtime.store.records import BoundaryReceipt, FinishedInput, InputRow, OpsLifecycleRecords
from meerkat_runtime.vocab.errors import InvalidField
from meerkat_runtime.vocab.ids import InputId
from meerkat_runtime.vocab.inputs import Durability
from meerkat_runtime.vocab.json_limits import MAX_JSON_BYTES
from meerkat_runtime.vocab.runtime import RuntimeState
from meerkat_runtime.vocab.slot_init import slot_init

T = TypeVar("T")
# Bound once: in Python 3.11 a member looked up on its enum class goes through a hook (~1,100 instructions).
_EPHEMERAL = Durability.EPHEMERAL


def row_of(record: InputRecord, payload: bytes) -> InputRow:
    """The stored row of ``record``: its payload and what the store keeps beside it (when it
    finished, its idempotency key — not for an ephemeral input, whose key does not outlive a
    restart —, its admission position and, while it waits to run, the fields a restart
    recovers it from: :func:`~meerkat_runtime.session.packed_record.queued_fields`)."""
    header = record.input.header
    key = None if header.durability is _EPHEMERAL else header.idempotency_key
    if record.phase.is_terminal:
        return InputRow(record.input_id, payload, record.updated_at, key, record.admission_seq)
    return InputRow(record.input_id, payload, None, key, record.admission_seq, queued_fields(record, key))


def columns_problem(
    record: InputRecord, finished_at: float | None, key: str | None, admission_seq: int | None
) -> str | None:
    """What the columns stored beside ``record``'s row (as :func:`row_of` writes them; the row
    checksum covers only the payload) say that the record in its payload does not, or ``None``
    when they agree. Columns an older release left empty (``None``) agree with anything, except
    that a finished row (``finished_at`` set) always carries the record's key."""
    if finished_at is not None and not record.phase.is_terminal:
        return f"its finished_at column says finished, but its payload holds a {record.phase.value} input"
    header = record.input.header
    expected = None if header.durability is Durability.EPHEMERAL else header.idempotency_key
    if (key is not None or finished_at is not None) and key != expected:
        return f"its idempotency_key column ({key!r}) disagrees with the key in its payload ({expected!r})"
    if admission_seq is not None and admission_seq != record.admission_seq:
        return (
            f"its admission_seq column ({admission_seq}) disagrees with the admission position in its payload "
            f"({record.admission_seq})"
        )
    return None


def encode_row(record: InputRecord) -> InputRow:
    """The stored row of ``record`` (a record recovered without decoding its row and unchanged
    since: that row, :meth:`~meerkat_runtime.session.packed_record.PackedRecord.stored_row`)."""
    if isinstance(record, PackedRecord) and (row := record.stored_row()) is not None:
        return row
    return row_of(record, encode_record(record))


def encode_new_row(record: InputRecord) -> InputRow:
    """Encode a row about to be admitted, checking it reads back (``InvalidField`` if not)."""
    try:
        return row_of(record, encode_record_checked(record))
    except RowFormatError as exc:
        raise InvalidField("input", "input", f"cannot be stored and read back: {exc}") from None


def _submits_writes(store: object) -> TypeGuard[SubmitsWrites]:
    """Whether ``store`` itself (its class, not a wrapper forwarding attributes) submits writes
    to a group-commit writer: the submitted call runs on the caller's thread, so a wrapper that
    adds work (a delay, a fault) around the store's methods keeps the ordinary call path."""
    return (
        isinstance(store, SubmitsWrites)
        and callable(getattr(type(store), "submit_write_on", None))
        and getattr(store, "group_commit", False) is True
    )


def _loop_quiet(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether the running event loop ``loop`` has no other callback ready to run (a
    standard-library loop's ready queue is empty); ``False`` for a loop that does not show its
    queue."""
    ready = getattr(loop, "_ready", None)
    return ready is not None and not ready


class RowTooLarge(RowFormatError):
    """An input's row is over the size a reader accepts (a run's result made it too large): it
    is never written."""

    def __init__(self, input_id: InputId, size: int) -> None:
        super().__init__(
            f"the row of input {input_id!r} cannot be stored: {size} bytes, over the limit of {MAX_JSON_BYTES} bytes"
        )
        self.input_id = input_id
        self.size = size


class StoredSession(NamedTuple):
    """What recovery reads of one session, in the order it is read: the high-water mark first
    (before the rows it vouches for), the lifecycle record, the active rows, the finished
    inputs (listed, not decoded)."""

    high_water: HighWater | None
    lifecycle: bytes | None
    rows: list[InputRow]
    finished: list[FinishedInput]


@slot_init
@dataclass(frozen=True, slots=True)
class Written:
    """What one write stores: the rows (with the records they encode), the dirty ids it covers
    (equal to the store once it succeeded), the lifecycle record and the boundary receipt it
    carries, and the session snapshot of a boundary."""

    rows: list[InputRow] = field(default_factory=list)
    records: list[InputRecord] = field(default_factory=list)
    covered: set[InputId] = field(default_factory=set)
    lifecycle: bytes | None = None
    receipt: BoundaryReceipt | None = None
    snapshot: bytes | None = None


NOTHING_WRITTEN = Written()


class SessionPersistence:
    """Durable writes and reads of one session, keyed by its canonical runtime id."""

    def __init__(self, store: RuntimeStore | None, runtime_id: str, *, offload: bool, claim: SessionClaim) -> None:
        self.store = store
        self.runtime_id = runtime_id
        self.offload = offload
        self.claim = claim
        """This machine's claim on the runtime id; its fence goes with every store write."""
        self.epoch_id: str | None = None
        self.written: dict[InputId, bytes] = {}
        """The last encoding written (or loaded) for each non-terminal row."""
        self.lifecycle: bytes | None = None
        """The lifecycle record the store holds (as last written or loaded)."""
        self._submitting = store if offload and _submits_writes(store) else None

    @property
    def durable(self) -> bool:
        return self.store is not None

    async def _call(self, fn: Callable[[], T]) -> T:
        if self.offload:
            return await asyncio.to_thread(fn)
        return fn()

    async def _write(self, fn: Callable[[], None]) -> None:
        """One store write: committed at once on the loop's thread while the store's writer is
        idle and the loop has nothing else ready, else submitted to the writer (the write joins
        its next batch); without a group-commit writer, an ordinary call (offloaded: in a worker
        thread). The running loop is looked up once here, for the quiet-loop check and the
        submission (in Python 3.11 each lookup is a ``getpid`` system call)."""
        submitting = self._submitting
        if submitting is None:
            await self._call(fn)
            return
        loop = asyncio.get_running_loop()
        if submitting.writer_idle() and _loop_quiet(loop):
            fn()  # nothing else is ready to run on the loop: commit here, no thread hop
            return
        await submitting.submit_write_on(loop, fn)

    def _lifecycle(self, phase: RuntimeState) -> bytes:
        if phase is RuntimeState.RUNNING:
            raise ValueError("a lifecycle record never stores Running; pass the durable phase")
        return encode_lifecycle(LifecycleRecord(phase.durable_form, self.epoch_id))

    # --- what the store holds -------------------------------------------------------------

    def loaded(self, rows: Mapping[InputId, bytes], lifecycle: bytes | None) -> None:
        """Remember what recovery read: the stored encodings of the non-terminal rows and the
        lifecycle record (replacing what was remembered before)."""
        self.written = dict(rows)
        self.lifecycle = lifecycle

    def _rows_differing(self, plan: Plan, ledger: InputLedger) -> Written:
        """The plan's rows and the ledger's dirty rows whose encoding differs from the last one
        written, in admission order (as the plan leaves them); a plan replacing the ledger
        (``recover``) is compared through its own. ``RowFormatError`` if such a row is over the
        size a reader accepts (a run's result made it too large): it is never written."""
        ledger = plan.ledger if plan.ledger is not None else ledger
        covered = set(ledger.dirty)
        covered.update(plan.records)
        records = [r for i in covered if (r := plan.records.get(i) or ledger.records.get(i)) is not None]
        if len(records) > 1:
            records.sort(key=lambda r: r.admission_seq)
        rows: list[InputRow] = []
        changed: list[InputRecord] = []
        for record in records:
            row = encode_row(record)
            if self.written.get(record.input_id) != row.payload:
                if len(row.payload) > MAX_JSON_BYTES:
                    raise RowTooLarge(record.input_id, len(row.payload))
                rows.append(row)
                changed.append(record)
        return Written(rows, changed, covered)

    def may_outgrow(self, input_ids: Iterable[InputId], growth: int) -> bool:
        """Whether a row of ``input_ids`` grown by up to ``growth`` bytes since it was last
        written could be over the size a reader accepts (always for a row not written here)."""
        limit = MAX_JSON_BYTES
        return any((row := self.written.get(i)) is None or len(row) + growth > limit for i in input_ids)

    def too_large(self, plan: Plan, ledger: InputLedger, input_ids: Iterable[InputId]) -> RowTooLarge | None:
        """The :class:`RowTooLarge` that writing ``plan`` would raise for a row of ``input_ids``
        (``None`` when every such row fits). Encodes the rows; writes nothing."""
        try:
            self._rows_differing(plan, ledger)
        except RowTooLarge as exc:
            return exc if exc.input_id in set(input_ids) else None
        return None

    # --- writes ---------------------------------------------------------------------------

    def prepare(self, plan: Plan, ledger: InputLedger) -> Written:
        """Encode what ``plan.write`` stores (reads ``ledger``, changes nothing):

        * :class:`RowsWrite` (accept): the plan's rows only, each checked to read back
          (:func:`encode_new_row`); two rows (supersession) also carry the lifecycle record;
        * :class:`LifecycleWrite`: the plan's durable phase and every row that differs from
          the store;
        * :class:`BoundaryWrite`: the receipt, the session snapshot and every row that differs
          from the store.
        """
        write = plan.write
        if write is None or self.store is None:
            return self.unwritten(plan, ledger)
        if isinstance(write, RowsWrite):
            records = list(plan.records.values())
            rows = [encode_new_row(r) for r in records]
            lifecycle = None if len(rows) == 1 else self._lifecycle(plan.durable_phase())
            return Written(rows, records, set(), lifecycle)
        written = self._rows_differing(plan, ledger)
        if isinstance(write, BoundaryWrite):
            return Written(written.rows, written.records, written.covered, None, write.receipt, write.session_snapshot)
        lifecycle = self._lifecycle(plan.durable_phase())
        return Written(written.rows, written.records, written.covered, lifecycle)

    async def persist(self, plan: Plan, ledger: InputLedger, prepared: Written | None = None) -> Written:
        """Perform ``plan.write`` in one store call (one transaction) and return what was
        written; raises whatever the encoding or the store raised. Changes nothing in memory.
        ``prepared`` is :meth:`prepare`'s result for the plan (computed here when omitted). A
        plan that writes nothing, and any plan of an ephemeral session, performs no I/O: one
        row is ``persist_input_state``, rows with a lifecycle record one
        ``commit_machine_lifecycle``, a receipt one ``atomic_apply``."""
        written = prepared if prepared is not None else self.prepare(plan, ledger)
        store = self.store
        if plan.write is None or store is None:
            return written
        rt, fence, rows = self.runtime_id, self.claim.fence, written.rows
        receipt, lifecycle, snapshot = written.receipt, written.lifecycle, written.snapshot
        if receipt is not None:
            await self._write(
                lambda: store.atomic_apply(rt, session_snapshot=snapshot, receipt=receipt, rows=rows, fence=fence)
            )
        elif lifecycle is not None:
            await self._write(lambda: store.commit_machine_lifecycle(rt, lifecycle, rows, fence=fence))
        else:
            row = rows[0]
            await self._write(lambda: store.persist_input_state(rt, row, fence=fence))
        return written

    async def read_back(self, written: Written) -> bool | None:
        """After a write whose outcome the store left unknown: ``True`` if the store holds
        everything ``written`` carried, ``False`` if it holds exactly what it held before (the
        write did not land), ``None`` if the store cannot be read or holds neither."""
        try:
            return await self._call(lambda: self._landed(written))
        except Exception:
            return None

    def _landed(self, written: Written) -> bool | None:
        store, rt = self.store, self.runtime_id
        if store is None:
            return None
        stored: dict[str, bytes | None] = {}
        for row in written.rows:
            found = store.load_input_state(rt, row.input_id)
            stored[row.input_id] = None if found is None else found.payload
        after = all(stored.get(row.input_id) == row.payload for row in written.rows)
        before = all(stored.get(row.input_id) == self.written.get(InputId(row.input_id)) for row in written.rows)
        if written.lifecycle is not None:
            lifecycle = store.load_machine_lifecycle(rt)
            after = after and lifecycle == written.lifecycle
            before = before and lifecycle == self.lifecycle
        receipt = written.receipt
        if receipt is not None:
            present = store.load_boundary_receipt(rt, receipt.run_id, receipt.sequence) is not None
            after, before = after and present, before and not present
        if after:
            return True
        return False if before else None

    def lifecycle_holds(self, phase: RuntimeState, pre_run_phase: RuntimeState | None) -> bool:
        """Whether the stored lifecycle record (as last written or loaded) is the one a commit
        would write for ``phase`` (Running: its ``pre_run_phase``)."""
        if phase is RuntimeState.RUNNING:
            phase = pre_run_phase or RuntimeState.IDLE
        return self.lifecycle is not None and self.lifecycle == self._lifecycle(phase)

    def needs_io(self, plan: Plan) -> bool:
        """Whether :meth:`persist` would call the store for ``plan``."""
        return plan.write is not None and self.store is not None

    def unwritten(self, plan: Plan, ledger: InputLedger) -> Written:
        """What a plan that needs no I/O counts as written: nothing for a memory-only plan or
        an accept; for a commit of an ephemeral session, every row (nothing is left to write)."""
        if plan.write is None or isinstance(plan.write, RowsWrite):
            return NOTHING_WRITTEN
        ledger = plan.ledger if plan.ledger is not None else ledger
        covered = set(ledger.dirty)
        covered.update(plan.records)
        return Written([], [], covered)

    def settle(self, written: Written, ledger: InputLedger) -> None:
        """After a successful write, once its plan was applied: remember what the store now
        holds for the written rows, and clear the dirty marks the write covered."""
        for row, record in zip(written.rows, written.records, strict=True):
            if record.phase.is_terminal:
                self.written.pop(record.input_id, None)
            else:
                self.written[record.input_id] = row.payload
        if written.lifecycle is not None:
            self.lifecycle = written.lifecycle
        if written.covered:
            ledger.dirty -= written.covered

    # --- reads ----------------------------------------------------------------------------

    def load_high_water(self) -> HighWater | None:
        return self.store.load_high_water(self.runtime_id) if self.store is not None else None

    def load_lifecycle(self) -> bytes | None:
        return self.store.load_machine_lifecycle(self.runtime_id) if self.store is not None else None

    def load_rows(self) -> list[InputRow]:
        """The rows recovery decodes: the active ones (finished ones are only listed)."""
        return self.store.load_active_input_states(self.runtime_id) if self.store is not None else []

    def load_finished(self) -> list[FinishedInput]:
        return self.store.load_finished_inputs(self.runtime_id) if self.store is not None else []

    def load_stored(self) -> StoredSession:
        """Everything recovery reads of the session, in one read (the mark first)."""
        high_water = self.load_high_water()
        return StoredSession(high_water, self.load_lifecycle(), self.load_rows(), self.load_finished())

    def load_row(self, input_id: InputId) -> InputRow | None:
        return self.store.load_input_state(self.runtime_id, input_id) if self.store is not None else None

    def load_all_rows(self) -> list[InputRow]:
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
