"""Making a runtime's unreadable ops state readable again, naming what is given up.

Recovery refuses an ops state whose journal records do not follow from its snapshot (e.g.
``ops journal record #1: epoch ... does not match the snapshot's epoch ...``: two unleased
writers interleaved their writes). :func:`salvage_ops` reads the stored snapshot and replays the
records one by one in order, keeping each that follows from the state before it and skipping
(and naming, with the operations it made terminal) each that does not. It reads only, and keeps
the stored records it read. :func:`write_salvaged_ops` then replaces the stored state with the
salvaged one (a full snapshot: every journal record is dropped), under a claim of the runtime's
lease released right after (``LeaseHeld`` while a live writer holds it: stop it first). Under
that claim it reads the stored records again and refuses (``OpsStateChanged``, nothing written)
when they differ from what the salvage read: a completion written in between would otherwise be
overwritten without being named. The claim is made even when the runtime had no lease, so the
lease row exists from then on and unfenced writers of the runtime are refused.

The skipped records' completions are lost from the ops state: ``OpsSalvage.lost`` names them so
they can be redone or reported. A snapshot that itself does not read cannot be salvaged
(``SnapshotFormatError``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from meerkat_runtime.ops.journal import JournalRecord, replay
from meerkat_runtime.ops.snapshot import PersistedOpsSnapshot
from meerkat_runtime.repair.quarantine import REPAIR_LEASE_S, REPAIR_OWNER
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.records import OpsLifecycleRecords
from meerkat_runtime.vocab.errors import SnapshotFormatError, WriteRefused


class OpsStateChanged(WriteRefused):
    """``write_salvaged_ops`` found other stored ops records than the salvage was made from (a
    writer wrote in between); nothing was written: salvage the state again."""

    kind: ClassVar[str] = "ops_state_changed"


@dataclass(frozen=True, slots=True)
class SkippedRecord:
    """A journal record the salvage left out: its position, why, and the operation ids it
    made terminal (empty when it does not even decode)."""

    index: int
    problem: str
    operation_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OpsSalvage:
    """What :func:`salvage_ops` found: the salvaged state (``None``: nothing stored), how many
    records were kept, the skipped ones, and the stored records it was made from (``read``:
    :func:`write_salvaged_ops` refuses when the store no longer holds exactly these)."""

    runtime_id: str
    state: PersistedOpsSnapshot | None
    kept: int
    skipped: tuple[SkippedRecord, ...]
    read: OpsLifecycleRecords | None = field(repr=False)

    @property
    def lost(self) -> tuple[str, ...]:
        """Operation ids made terminal by a skipped record and not terminal in the salvaged state."""
        terminal = set() if self.state is None else {op.id for op in self.state.operations if op.status.is_terminal}
        ids = dict.fromkeys(oid for skip in self.skipped for oid in skip.operation_ids if oid not in terminal)
        return tuple(ids)


def salvage_ops(store: RuntimeStore, runtime_id: str) -> OpsSalvage:
    """The readable part of ``runtime_id``'s stored ops state (see the module docstring). Reads
    only; store read errors propagate."""
    stored = store.load_ops_lifecycle(runtime_id)
    if stored is None or stored.snapshot is None:
        skipped = (
            ()
            if stored is None
            else tuple(
                SkippedRecord(n, "journal record without a base snapshot", _terminated(data))
                for n, data in enumerate(stored.appended)
            )
        )
        return OpsSalvage(runtime_id, None, 0, skipped, stored)
    state = PersistedOpsSnapshot.from_json(stored.snapshot)
    kept, skips = 0, []
    for n, data in enumerate(stored.appended):
        try:
            record = JournalRecord.from_json(data, f"ops journal record #{n} of runtime {runtime_id!r}")
            state = replay(state, [record])
        except SnapshotFormatError as exc:
            problem = str(exc).replace("ops journal record #0:", f"ops journal record #{n}:", 1)
            skips.append(SkippedRecord(n, problem, _terminated(data)))
        else:
            kept += 1
    return OpsSalvage(runtime_id, state, kept, tuple(skips), stored)


def write_salvaged_ops(
    store: RuntimeStore, salvage: OpsSalvage, *, owner: str = REPAIR_OWNER, lease_s: float = REPAIR_LEASE_S
) -> None:
    """Replace the stored ops state of ``salvage.runtime_id`` with ``salvage.state`` (a full
    snapshot; the journal is dropped), under a claim of the runtime's lease by ``owner``
    (``LeaseHeld`` while another owner holds it live), released after; the lease row stays, so
    unfenced writers are refused from then on. ``OpsStateChanged`` (nothing written) when the
    store holds other ops records than ``salvage.read``. Nothing to do when nothing was salvaged
    and nothing skipped. A failing release does not hide the write's own error."""
    runtime_id = salvage.runtime_id
    if salvage.state is None and not salvage.skipped:
        return
    data = None if salvage.state is None else salvage.state.to_json()
    lease = store.claim_lease(runtime_id, owner, lease_s)
    try:
        if store.load_ops_lifecycle(runtime_id) != salvage.read:
            raise OpsStateChanged(
                runtime_id, "the stored ops state changed since the salvage was read: salvage it again (salvage_ops)"
            )
        if data is None:
            store.delete_ops_lifecycle(runtime_id, fence=lease.fence)
        else:
            store.persist_ops_lifecycle(runtime_id, data, fence=lease.fence)
    except BaseException as exc:
        try:
            store.release_lease(lease.fence, runtime_id)
        except Exception as release_error:
            exc.add_note(f"releasing the lease of {runtime_id!r} afterwards failed too: {release_error!r}")
        raise
    store.release_lease(lease.fence, runtime_id)


def _terminated(data: bytes) -> tuple[str, ...]:
    try:
        return tuple(op.id for op in JournalRecord.from_json(data, "skipped record").terminated)
    except SnapshotFormatError:
        return ()
