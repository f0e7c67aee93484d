"""What keeps a stored session from recovering, found without registering it.

:func:`diagnose_session` reads a session's stored rows (through ``scan_input_states``, so a
row that fails its checksum is reported rather than raised), runs the runtime's own recovery
rules (:func:`~meerkat_runtime.session.core.recovery.recover_session`) on the intact rows and,
each time they refuse a row, records it and runs them again without it: the result names
every row recovery would refuse, with its stored bytes, so each can be quarantined — also a
row whose columns beside the payload (``ScannedRow.columns``: finished, key, admission position;
not covered by the row checksum) are malformed or disagree with the record in it, and an active
row whose ``queued`` column (bound to its payload) holds fields the payload does not, which a
restart would recover the row from and then refuse. A stale ``queued`` column (left by a release
that does not know it) is not a problem: the store ignores it and recovery reads the payload. It also
compares the row counts with the high-water mark and checks the lifecycle record and the ops
state, which are not input rows (problems there cannot be quarantined away).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from meerkat_runtime.ops.recovery import load_persisted_ops
from meerkat_runtime.ops.snapshot import PersistedOpsSnapshot
from meerkat_runtime.session.core.recovery import recover_session
from meerkat_runtime.session.machine import stored_session_runtime_id
from meerkat_runtime.session.packed_record import PackedRecord
from meerkat_runtime.session.persistence import columns_problem
from meerkat_runtime.session.row_codec import RowFormatError, decode_record
from meerkat_runtime.store.high_water import HighWater, disagreements
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.records import InputRow, QuarantinedRow, ScannedRow
from meerkat_runtime.vocab.errors import (
    MeerkatError,
    RecoveryCorruption,
    RuntimeDestroyed,
    SnapshotFormatError,
    StoreError,
)

OPS_SALVAGE_HINT = "meerkat_runtime.repair.ops_salvage keeps what follows from the snapshot: docs/ops-registry.md"
"""Appended to an unreadable ops state's problem when salvage can read it: its snapshot decodes
(or there is none) and a journal record does not follow from it."""


@dataclass(frozen=True, slots=True)
class BadRow:
    """An input row recovery refuses: why, its stored bytes, and whether they passed the
    store's integrity check (``False``: damaged after it was written)."""

    input_id: str
    problem: str
    payload: bytes
    intact: bool


@dataclass(frozen=True, slots=True)
class SessionDiagnosis:
    """Everything found for one session. ``recoverable`` after quarantining ``bad_rows`` is
    ``not other_problems``."""

    session_id: str
    runtime_id: str
    rows: int
    """Input rows stored (intact or not)."""
    bad_rows: tuple[BadRow, ...] = ()
    mark: HighWater | None = None
    mark_problems: tuple[str, ...] = ()
    """Counts that disagree with the high-water mark (rows lost behind the store's back)."""
    other_problems: tuple[str, ...] = ()
    """The lifecycle record, the ops state or a store error: not fixable by quarantine."""
    destroyed: bool = False
    quarantined: tuple[QuarantinedRow, ...] = field(default_factory=tuple)

    @property
    def healthy(self) -> bool:
        return not (self.bad_rows or self.mark_problems or self.other_problems)


def _lifecycle(store: RuntimeStore, runtime_id: str, problems: list[str]) -> bytes | None:
    try:
        return store.load_machine_lifecycle(runtime_id)
    except StoreError as exc:
        problems.append(f"lifecycle record: {exc}")
        return None


def _refused_rows(
    store: RuntimeStore, runtime_id: str, lifecycle: bytes | None, rows: list[InputRow], problems: list[str]
) -> tuple[list[tuple[str, str]], bool]:
    """Run recovery until it accepts the remaining rows; return the refused ``(id, why)`` and
    whether the runtime is destroyed."""
    refused: list[tuple[str, str]] = []
    remaining = list(rows)

    def receipt_exists(run_id: str, sequence: int) -> bool:
        return store.load_boundary_receipt(runtime_id, run_id, sequence) is not None

    while True:
        agreeing = HighWater(runtime_id, inputs=len(remaining), lifecycles=int(lifecycle is not None))
        try:
            recover_session(
                runtime_id, lifecycle, remaining, receipt_exists, time.time(), high_water=agreeing, lazy=False
            )
        except RuntimeDestroyed:
            return refused, True
        except RecoveryCorruption as exc:
            if exc.input_id is None or exc.input_id not in {r.input_id for r in remaining}:
                problems.append(str(exc))
                return refused, False
            refused.append((exc.input_id, str(exc)))
            remaining = [r for r in remaining if r.input_id != exc.input_id]
            continue
        except MeerkatError as exc:
            problems.append(f"recovery: {exc}")
        return refused, False


def _columns_problem(row: ScannedRow) -> str | None:
    """What is wrong with the columns beside an intact row: not of their types, or saying what
    its payload does not (a row that does not decode is left to recovery to name)."""
    if row.malformed is not None:
        return row.malformed
    if row.columns is None:
        return None
    try:
        record = decode_record(row.payload)
    except RowFormatError:
        return None
    return columns_problem(record, *row.columns)


def _queued_problem(store: RuntimeStore, runtime_id: str, scanned: ScannedRow) -> str | None:
    """Why a restart would refuse an intact active row it recovers from its ``queued`` column
    (the store returns the column only while it is bound to the row's payload): the payload
    does not hold the fields in the column. ``None`` when the restart reads the payload instead
    (no column, a stale one, fields failing their check value) or they agree."""
    if scanned.columns is None or scanned.columns.finished_at is not None:
        return None
    try:
        row = store.load_input_state(runtime_id, scanned.input_id)
    except StoreError:
        return None  # the full recovery below names it
    if row is None or row.queued is None or (packed := PackedRecord.from_queued(runtime_id, row)) is None:
        return None
    try:
        packed.unpack()
    except RecoveryCorruption as exc:
        return str(exc)
    return None


def diagnose_session(store: RuntimeStore, session_id: str) -> SessionDiagnosis:
    """Find what keeps ``session_id`` from recovering; reads only. ``ValidationFailed`` for a
    malformed session id; a store that cannot be read at all raises its error."""
    runtime_id = stored_session_runtime_id(session_id)
    mark = store.load_high_water(runtime_id)
    scanned = store.scan_input_states(runtime_id)
    problems: list[str] = []
    lifecycle = _lifecycle(store, runtime_id, problems)
    bad = [
        BadRow(r.input_id, "failed its integrity check (checksum mismatch)", r.payload, False)
        for r in scanned
        if not r.intact
    ]
    for r in scanned:
        if r.intact and (why := _columns_problem(r)) is not None:
            bad.append(BadRow(r.input_id, why, r.payload, True))
    named = {b.input_id for b in bad}
    for r in scanned:
        if r.intact and r.input_id not in named and (why := _queued_problem(store, runtime_id, r)) is not None:
            bad.append(BadRow(r.input_id, why, r.payload, True))
    named = {b.input_id for b in bad}
    intact = [InputRow(r.input_id, r.payload) for r in scanned if r.input_id not in named]
    refused, destroyed = _refused_rows(store, runtime_id, lifecycle, intact, problems)
    payloads = {r.input_id: r.payload for r in intact}
    bad.extend(BadRow(input_id, why, payloads[input_id], True) for input_id, why in refused)
    try:
        load_persisted_ops(store, runtime_id)
    except SnapshotFormatError as exc:
        problems.append(
            f"ops state: {exc} ({OPS_SALVAGE_HINT})" if _salvageable(store, runtime_id) else f"ops state: {exc}"
        )
    except MeerkatError as exc:
        problems.append(f"ops state: {exc}")
    observed = {"inputs": len(scanned), "lifecycles": int(lifecycle is not None)}
    mark_problems = disagreements(mark, observed) if mark is not None or any(observed.values()) else []
    return SessionDiagnosis(
        session_id=session_id,
        runtime_id=runtime_id,
        rows=len(scanned),
        bad_rows=tuple(sorted(bad, key=lambda b: b.input_id)),
        mark=mark,
        mark_problems=tuple(mark_problems),
        other_problems=tuple(problems),
        destroyed=destroyed,
        quarantined=tuple(store.load_quarantined(runtime_id)),
    )


def _salvageable(store: RuntimeStore, runtime_id: str) -> bool:
    """Whether ``salvage_ops`` can read the stored ops state: its base snapshot decodes or there
    is none (only the journal records are then at fault). ``False`` when the store cannot be read."""
    try:
        stored = store.load_ops_lifecycle(runtime_id)
        if stored is not None and stored.snapshot is not None:
            PersistedOpsSnapshot.from_json(stored.snapshot)
    except MeerkatError:
        return False
    return True
