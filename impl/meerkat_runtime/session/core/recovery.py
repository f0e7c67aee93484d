"""Crash recovery of one persistent session from its stored lifecycle record and input rows.

Rules (docs/semantics.md, "Crash recovery"):

* lifecycle record: none → Idle; Destroyed → registration refused (``RuntimeDestroyed``);
  a record naming a phase that is never persisted (Initializing, Attached, Running) or an
  unreadable record → ``RecoveryCorruption``;
* Accepted and Staged rows come back Queued; Applied / AppliedPendingConsumption rows become
  Consumed when their boundary receipt ``(last_run_id, last_boundary_sequence)`` is stored,
  else Queued (replayed); a run that never committed is not counted as an attempt (a crash
  does not consume the retry budget); terminal rows stay terminal and keep their
  idempotency keys;
* finished inputs are not read: the store lists them (``load_finished_inputs``: id, key,
  admission position, when they finished) and only that is kept — their keys keep
  deduplicating, their ids stay taken, the admission counter continues past them; their rows
  are read when something asks for one (a duplicate key's stored outcome, ``input_state``).
  A row the store lists as active that decodes as finished (written by an older release,
  without its finished-input columns) is taken as finished and written back with them;
* Queued rows are not decoded either: the fields recovery checks are read from the bytes
  stored beside the row (``InputRow.queued``; for a row an older release wrote, from the
  row's start) and the rest is decoded, and the payload's checksum verified if the store left
  that for later, when first used (:mod:`~meerkat_runtime.session.packed_record`;
  ``lazy=False`` decodes every row now, as the repair tooling's diagnosis does). A row read
  without usable fields beside it is written back with them by the registration's write-back
  (not ``in_place``; its payload unchanged), so the next restart reads its fields;
* ephemeral inputs are dropped (an ephemeral input's finished row is listed without its key,
  and observations do not show it after a restart);
* what was loaded must agree with the runtime's high-water mark (the lifecycle record present
  or not, the number of input rows: active rows plus listed finished inputs), else
  ``Corrupt`` names the counts that disagree
  (:func:`meerkat_runtime.store.high_water.compare_session`);
* rows that contradict each other fail with ``RecoveryCorruption`` naming the row (its
  ``input_id`` set, so it can be quarantined): an
  unreadable or inconsistent row, two rows claiming one idempotency key or one admission
  position, active rows under a Stopped record, an active row with more than 3 attempts, a
  max-attempts abandon with fewer than 3 attempts.

With ``in_place=True`` (a live session reconciling with the store after a write whose
outcome was unknown, :mod:`meerkat_runtime.session.reconcile`) a Destroyed record is read like
any other (active rows under it are corruption) and ephemeral rows are kept: the session is
still running, so its ephemeral inputs are still wanted. ``live`` (``recover``) names the inputs
memory holds: a stored ephemeral row not among them (left by an earlier process, whose
registration dropped it) stays dropped.

:func:`recover_session` is pure apart from the receipt look-ups it is given.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from meerkat_runtime.session.core.ledger import FinishedRef, InputLedger, InputRecord, Lane
from meerkat_runtime.session.core.session_core import SessionCore
from meerkat_runtime.session.packed_record import PackedRecord, QueuedFields, peek_queued, queued_fields
from meerkat_runtime.session.row_codec import RowFormatError, decode_lifecycle, decode_record
from meerkat_runtime.store.high_water import HighWater, compare_session
from meerkat_runtime.store.records import FinishedInput, InputRow
from meerkat_runtime.vocab.errors import RecoveryCorruption, RuntimeDestroyed
from meerkat_runtime.vocab.ids import InputId
from meerkat_runtime.vocab.inputs import (
    MAX_STAGE_ATTEMPTS,
    Abandoned,
    AbandonKind,
    Consumed,
    Durability,
    InputLifecycleState,
)
from meerkat_runtime.vocab.runtime import RuntimeState

S = InputLifecycleState

_PERSISTABLE = frozenset({RuntimeState.IDLE, RuntimeState.RETIRED, RuntimeState.STOPPED, RuntimeState.DESTROYED})


@dataclass(slots=True)
class RecoveryResult:
    """The rebuilt session core and the rows recovery changed (to be written back; they are
    marked dirty in the core's ledger); ``stored`` holds the stored encodings of the rows that
    were non-terminal on disk."""

    core: SessionCore
    epoch_id: str | None
    had_record: bool
    changed: list[InputRecord] = field(default_factory=list)
    stored: dict[InputId, bytes] = field(default_factory=dict)
    relisted: list[InputRecord] = field(default_factory=list)
    """Finished rows stored without their finished-input columns, to be written back with them."""
    dropped_ephemeral: int = 0
    requeued: int = 0
    consumed: int = 0


def corruption(runtime_id: str, what: str, input_id: str | None = None) -> RecoveryCorruption:
    return RecoveryCorruption(
        f"store corruption in runtime {runtime_id!r}: {what}", runtime_id=runtime_id, input_id=input_id
    )


def recover_session(
    runtime_id: str,
    lifecycle: bytes | None,
    rows: list[InputRow],
    receipt_exists: Callable[[str, int], bool],
    now: float,
    *,
    in_place: bool = False,
    high_water: HighWater | None,
    max_attempts: int = MAX_STAGE_ATTEMPTS,
    finished: Sequence[FinishedInput] = (),
    live: Collection[str] | None = None,
    lazy: bool = True,
) -> RecoveryResult:
    """Rebuild a session from stored data: ``rows`` are the rows the store holds as active
    (every row, for a store read whole) and ``finished`` the finished inputs it lists without
    their rows. Raises ``Corrupt`` (the data disagrees with the high-water mark
    ``high_water``, read before it), ``RuntimeDestroyed`` (unless ``in_place``) or
    ``RecoveryCorruption``. With ``lazy`` (the default) Queued rows are read without being
    decoded (:mod:`~meerkat_runtime.session.packed_record`); without it every row is decoded
    and checked now."""
    compare_session(runtime_id, high_water, lifecycle=lifecycle is not None, inputs=len(rows) + len(finished))
    phase = RuntimeState.IDLE
    epoch_id: str | None = None
    if lifecycle is not None:
        try:
            record = decode_lifecycle(lifecycle)
        except RowFormatError as exc:
            raise corruption(runtime_id, f"lifecycle record: {exc}") from None
        if record.runtime_state is RuntimeState.DESTROYED and not in_place:
            raise RuntimeDestroyed(runtime_id)
        if record.runtime_state not in _PERSISTABLE:
            raise corruption(runtime_id, f"lifecycle record names phase {record.runtime_state.value}, never persisted")
        phase, epoch_id = record.runtime_state, record.epoch_id

    core = SessionCore(runtime_id, phase)
    core.max_attempts = max_attempts
    result = RecoveryResult(core, epoch_id, lifecycle is not None)
    ledger = core.ledger
    seen_seq: dict[int, str] = {}
    queued: list[InputRecord] = []
    _list_finished(runtime_id, ledger, finished)
    halted = phase in (RuntimeState.STOPPED, RuntimeState.DESTROYED)
    records, stored, keys = ledger.records, result.stored, ledger.keys
    from_queued = PackedRecord.from_queued
    unfielded: list[str] = []
    top = ledger.next_admission_seq
    for row in rows:
        packed: PackedRecord | None = None
        if lazy and row.finished_at is None:
            # a Queued row read without decoding it: from the fields stored beside it, else
            # (a row an older release wrote, or fields that fail their check) from the start
            # of its payload, or decoded below
            packed = None if row.queued is None else from_queued(runtime_id, row)
            if packed is None:
                unfielded.append(row.input_id)
                if (fast := _packed(runtime_id, row)) is not None:
                    fields, packed = fast
                    if PackedRecord.durability(fields) is Durability.EPHEMERAL and (
                        not in_place or (live is not None and packed.packed_id not in live)
                    ):
                        result.dropped_ephemeral += 1
                        continue
        if packed is not None:  # the same checks as a decoded row's
            input_id = packed.packed_id
            seq = packed.admission_seq
            if halted or packed.attempts > max_attempts or seq in seen_seq:
                _check_active(runtime_id, phase, packed, seen_seq, max_attempts)
            seen_seq[seq] = input_id
            stored[input_id] = row.payload
            queued.append(packed)
            key = packed.packed_key
            if key is not None:
                if key in keys:
                    _claim_key(runtime_id, ledger, input_id, key)  # raises: the key is taken
                keys[key] = input_id
            records[input_id] = packed
            if seq >= top:
                top = seq + 1
            continue
        try:
            rec = decode_record(row.verified_payload())
        except RowFormatError as exc:
            raise corruption(runtime_id, f"input row {row.input_id!r}: {exc}", row.input_id) from None
        if rec.input_id != row.input_id:
            raise corruption(runtime_id, f"input row {row.input_id!r} holds input {rec.input_id!r}", row.input_id)
        if rec.phase.is_terminal and row.finished_at is None:
            result.relisted.append(rec)
        if rec.input.header.durability is Durability.EPHEMERAL and (
            not in_place or (live is not None and rec.input_id not in live)
        ):
            result.dropped_ephemeral += 1
            continue
        problem = _row_problem(rec, max_attempts)
        if problem is not None:
            raise corruption(runtime_id, f"input row {rec.input_id!r}: {problem}", rec.input_id)
        if not rec.phase.is_terminal:
            result.stored[rec.input_id] = row.payload
            _normalise(rec, receipt_exists, now, result)
        if not rec.phase.is_terminal:
            _check_active(runtime_id, phase, rec, seen_seq, max_attempts)
            queued.append(rec)
        _claim_key(runtime_id, ledger, rec.input_id, rec.input.header.idempotency_key)
        ledger.records[rec.input_id] = rec
        if rec.phase.is_terminal:
            ledger.note_finished(rec)
        top = max(top, rec.admission_seq + 1)
    ledger.next_admission_seq = top
    if unfielded and not in_place:
        _write_fields_back(ledger, stored, unfielded)
    for rec in result.changed:
        ledger.mark(rec.input_id)
    for rec in result.relisted:
        ledger.mark(rec.input_id)
    queued.sort(key=attrgetter("admission_seq"))
    for lane in Lane:  # each lane in admission order (an identity test: an enum's hash is a Python call)
        ledger.lane(lane).extend([rec.input_id for rec in queued if rec.lane is lane])
    return result


def _packed(runtime_id: str, row: InputRow) -> tuple[QueuedFields, PackedRecord] | None:
    """A Queued row read without decoding it from the start of its payload (checksum verified
    first; :mod:`~meerkat_runtime.session.packed_record`), or ``None``: decode it in full."""
    fields = peek_queued(row.verified_payload())
    if fields is None:
        return None
    try:
        packed = PackedRecord.from_row(runtime_id, row, fields)
    except (ValueError, UnicodeDecodeError):
        return None
    return (fields, packed) if packed.packed_id == row.input_id else None


def _write_fields_back(ledger: InputLedger, stored: dict[InputId, bytes], input_ids: list[str]) -> None:
    """Rows recovered without usable fields beside them (an older release's, or fields that
    failed their check) whose record would have them are written back by the registration's
    write-back, in its transaction, with them: marked dirty and not remembered as written. A
    row read from its payload's start keeps its payload as stored (it is not decoded now)."""
    records = ledger.records
    for input_id in input_ids:
        rec = records.get(InputId(input_id))
        if rec is None:
            continue
        if isinstance(rec, PackedRecord):
            with_fields = rec.add_fields()
        else:
            with_fields = queued_fields(rec, rec.input.header.idempotency_key) is not None
        if with_fields:
            ledger.mark(rec.input_id)
            stored.pop(rec.input_id, None)


def _check_active(
    runtime_id: str, phase: RuntimeState, rec: InputRecord, seen_seq: dict[int, str], max_attempts: int
) -> None:
    """The checks of an active row: not more attempts than allowed, not under a halted runtime,
    its own admission position."""
    if rec.attempts > max_attempts:
        what = f"input row {rec.input_id!r}: active row with {rec.attempts} attempts (more than {max_attempts})"
        raise corruption(runtime_id, what, rec.input_id)
    if phase in (RuntimeState.STOPPED, RuntimeState.DESTROYED):
        what = f"input row {rec.input_id!r} is {rec.phase.value} under a {phase.value.capitalize()} runtime"
        raise corruption(runtime_id, what, rec.input_id)
    other = seen_seq.get(rec.admission_seq)
    if other is not None:
        what = f"input row {rec.input_id!r} shares admission position {rec.admission_seq} with {other!r}"
        raise corruption(runtime_id, what, rec.input_id)
    seen_seq[rec.admission_seq] = rec.input_id


def _claim_key(runtime_id: str, ledger: InputLedger, input_id: InputId, key: str | None) -> None:
    """Give ``key`` to ``input_id``; a key two rows claim is corruption naming the second."""
    if key is None:
        return
    owner = ledger.keys.get(key)
    if owner is not None:
        what = f"input row {input_id!r} reuses idempotency key {key!r} of {owner!r}"
        raise corruption(runtime_id, what, input_id)
    ledger.keys[key] = input_id


def _list_finished(runtime_id: str, ledger: InputLedger, finished: Sequence[FinishedInput]) -> None:
    """Keep what the store lists of the finished inputs: ids, keys and admission positions
    (one pass, no row read; a key listed twice is corruption naming the second row)."""
    keys, listed, top = ledger.keys, ledger.finished, ledger.next_admission_seq
    last = next((ref.finished_at for ref in reversed(listed.values())), -math.inf)
    for input_id, finished_at, key, seq in finished:
        if finished_at < last:
            ledger.finished_in_order = False
        last = finished_at
        if key is not None:
            owner = keys.get(key)
            if owner is not None:
                what = f"input row {input_id!r} reuses idempotency key {key!r} of {owner!r}"
                raise corruption(runtime_id, what, input_id)
            keys[key] = InputId(input_id)
        listed[InputId(input_id)] = FinishedRef(finished_at, key, seq, True)
        if seq is not None and seq >= top:
            top = seq + 1
    ledger.next_admission_seq = top


def _row_problem(rec: InputRecord, max_attempts: int) -> str | None:
    terminal = rec.terminal
    if isinstance(terminal, Abandoned) and terminal.reason.kind is AbandonKind.MAX_ATTEMPTS_EXHAUSTED:
        recorded = terminal.reason.attempts
        if rec.attempts < max_attempts or recorded != rec.attempts:
            return f"abandoned for exhausted attempts after {rec.attempts} attempts (outcome says {recorded})"
    if not rec.phase.is_terminal and rec.attempts > max_attempts:
        return f"active row with {rec.attempts} attempts (more than {max_attempts})"
    return None


def _normalise(
    rec: InputRecord, receipt_exists: Callable[[str, int], bool], now: float, result: RecoveryResult
) -> None:
    if rec.phase in (S.ACCEPTED, S.STAGED):
        if rec.phase is S.STAGED:
            rec.attempts = max(rec.attempts - 1, 0)  # the interrupted run is not counted
        rec.move(S.QUEUED, f"recovered from {rec.phase.value}", now)
        rec.last_run_id = None
        rec.last_boundary_sequence = None
        rec.recovery_count += 1
        result.changed.append(rec)
        result.requeued += 1
    elif rec.phase in (S.APPLIED, S.APPLIED_PENDING_CONSUMPTION):
        run_id, seq = rec.last_run_id, rec.last_boundary_sequence
        if run_id is not None and seq is not None and receipt_exists(run_id, seq):
            rec.terminal = Consumed()
            rec.move(S.CONSUMED, "recovered: boundary receipt already committed", now)
            result.consumed += 1
        else:
            rec.attempts = max(rec.attempts - 1, 0)  # the run never committed; it is not counted
            rec.move(S.QUEUED, "recovered: missing boundary receipt; replayed", now)
            rec.last_run_id = None
            rec.last_boundary_sequence = None
            result.requeued += 1
        rec.recovery_count += 1
        result.changed.append(rec)
