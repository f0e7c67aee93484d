"""Queued inputs recovered without decoding their rows: a restart reads only what recovery needs.

A restart with a large backlog would otherwise decode every pending row in full (JSON, the input,
its history) before the first new accept. The fields recovery needs of a Queued input (lane,
admission position, attempts, recovery count, timestamps; id and idempotency key are columns of
their own) are stored beside its row as 46 bytes, :func:`queued_fields` (the store's ``queued``
column, written with every write of such a row), ending in a CRC-32 of those fields with the
row's id and key; :meth:`PackedRecord.from_queued` reads them back without touching the
payload. A row stored without them (written by an older release) is read by
:func:`peek_queued` from the start of its payload (compact form, no run attached) with a
pattern; :class:`PackedRecord` is an :class:`~meerkat_runtime.session.core.ledger.InputRecord`
holding those fields and the row's bytes. Its ``input`` and ``history`` are decoded from the
bytes the first time anything reads them (the run loop taking the input, a view, a transition),
with the full decoder, and checked against every field recovery took from the columns.

Only a durable (or derived) input with no run, failure, outcome or persisted form of its own
gets the fields; an ephemeral input, any other phase, fields whose check value does not match
(damaged beside the row), or a row the pattern does not recognise is decoded in full by
recovery as before, with every check (its payload's checksum verified first). The payload of a
row recovered from its fields is verified when it is first decoded: the store returns such a
row before checking it (``InputRow.check``). Should that check fail, the full decode fail, or
the decoded row disagree with what recovery took from the columns, reading the record raises
``RecoveryCorruption`` naming the input (as registration would have), and the run loop reports
it without staging the input (:mod:`meerkat_runtime.session.loop_task`); ``meerkat-runtime
check`` finds the damaged payload without starting the session, as it reads every row.
"""

from __future__ import annotations

import re
import struct
from typing import Any
from zlib import crc32

from meerkat_runtime.session.core.ledger import HistoryEntry, InputRecord, Lane
from meerkat_runtime.session.inputs import Input
from meerkat_runtime.session.row_codec import RowFormatError, decode_record
from meerkat_runtime.store.records import InputRow, PayloadCheck
from meerkat_runtime.vocab.errors import Corrupt, CorruptInputRow, RecoveryCorruption
from meerkat_runtime.vocab.ids import InputId
from meerkat_runtime.vocab.inputs import Durability, InputLifecycleState

_NUMBER = rb"(-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"
_QUEUED = re.compile(
    rb'\{"row_version":2,"input_id":"([^"\\]+)","phase":"queued","lane":"(queue|steer)",'
    rb'"admission_seq":([0-9]+),"attempts":([0-9]+),"recovery_count":([0-9]+),'
    rb'"created_at":' + _NUMBER + rb',"updated_at":' + _NUMBER + rb',"history":\['
    # the history's entries: ``],"input":{`` cannot occur inside a JSON string (its quotes
    # would be escaped), so the first one ends the history
    rb'.*?\],"input":\{"kind":"[a-z_]+","header":\{"id":"([^"\\]+)","timestamp":' + _NUMBER + rb","
    rb'"origin":"[a-z_]+","durability":"([a-z_]+)"(?:,"idempotency_key":"([^"\\]*)")?[,}]',
    re.DOTALL,
)
_OBJECT_FIELDS = (b'"terminal":', b'"outcome":', b'"last_error":')
_DURABILITY = {d.value.encode(): d for d in Durability}
_LANES = {b"queue": Lane.QUEUE, b"steer": Lane.STEER}

_INPUT_SLOT: Any = InputRecord.__dict__["input"]
_HISTORY_SLOT: Any = InputRecord.__dict__["history"]

QueuedFields = tuple[Any, ...]
"""The groups :func:`peek_queued` matched (raw bytes, converted by :meth:`PackedRecord.from_row`)."""


_FIELDS = struct.Struct("<BBqqqdd")
"""The stored fields of a Queued input: format (1), lane (0 queue, 1 steer), admission
position, attempts, recovery count, created and updated (runtime clock); then a CRC-32."""
_STORED = struct.Struct("<BBqqqddI")
"""The fields and their check value, as read back in one unpack."""
_FORMAT = 1
_LANE_CODES = {Lane.QUEUE: 0, Lane.STEER: 1}
_CODE_LANES = (Lane.QUEUE, Lane.STEER)
# Bound once: in Python 3.11 a member looked up on its enum class goes through a hook (~1,100 instructions).
_QUEUED_PHASE, _EPHEMERAL = InputLifecycleState.QUEUED, Durability.EPHEMERAL
QUEUED_FIELDS_SIZE = _STORED.size


def _check_value(input_id: str, key: str | None, body: bytes) -> int:
    """CRC-32 of the fields with the row's id and idempotency key (keys are never empty)."""
    return crc32((input_id + "\x1f" + (key or "")).encode("utf-8", "surrogatepass") + body)


def _unpacked(input_id: str, key: str | None, data: bytes) -> tuple[Any, ...] | None:
    """The fields stored as ``data`` beside the row ``input_id`` (idempotency key ``key``),
    or ``None`` when they do not match their check value or their format."""
    if len(data) != QUEUED_FIELDS_SIZE:
        return None
    fields = _STORED.unpack(data)
    version, lane, seq, attempts, recovery_count, _, _, check = fields
    if (
        check != _check_value(input_id, key, data[:-4])
        or version != _FORMAT
        or lane > 1
        or seq < 0
        or attempts < 0
        or recovery_count < 0
    ):
        return None
    return fields


def queued_problem(input_id: str, key: str | None, data: bytes) -> str | None:
    """What is wrong with the fields stored as ``data`` beside the row ``input_id`` (idempotency
    key ``key`` as stored), or ``None`` if recovery can read the row from them."""
    if _unpacked(input_id, key, data) is not None:
        return None
    if len(data) != QUEUED_FIELDS_SIZE:
        return f"its recovery fields are {len(data)} bytes, not {QUEUED_FIELDS_SIZE}"
    if int.from_bytes(data[-4:], "little") != _check_value(input_id, key, data[:-4]):
        return "its recovery fields fail their check value (CRC-32 over them, the input id and the idempotency key)"
    return "its recovery fields have an unknown format or a value out of range"


def queued_fields(record: InputRecord, key: str | None) -> bytes | None:
    """The bytes stored beside the row of ``record`` (idempotency key ``key`` as stored) from
    which a restart recovers it without decoding the row, or ``None`` when the record is not a
    Queued durable input with nothing but its input and history (module docstring)."""
    fields = _fields_of(record, key)
    if fields is None or record.input.header.durability is _EPHEMERAL:
        return None
    return fields


def _fields_of(record: InputRecord, key: str | None) -> bytes | None:
    """:func:`queued_fields` without its check of the durability (read from the input, the only
    one that decodes a :class:`PackedRecord`)."""
    if (
        record.phase is not _QUEUED_PHASE
        or record.last_run_id is not None
        or record.last_boundary_sequence is not None
        or record.terminal is not None
        or record.stored_input is not None
        or record.outcome is not None
        or record.last_error is not None
    ):
        return None
    try:
        body = _FIELDS.pack(
            _FORMAT,
            _LANE_CODES[record.lane],
            record.admission_seq,
            record.attempts,
            record.recovery_count,
            record.created_at,
            record.updated_at,
        )
    except (struct.error, OverflowError):  # a number out of range: the row is decoded instead
        return None
    return body + _check_value(record.input_id, key, body).to_bytes(4, "little")


def peek_queued(payload: bytes) -> QueuedFields | None:
    """The recovery fields of a Queued row this release wrote (compact form, no run or failure
    recorded), read without decoding it; ``None`` when the row is not such a row (decode it).

    The run fields (``last_run_id``, ``last_boundary_sequence``) are written after the input,
    and their values are a string or a number: a row ending in ``}}`` (the input's object, then
    the row's) has neither. The fields whose values are objects (``terminal``, ``outcome``,
    ``last_error``) would also end it so: a row naming one of them as a key anywhere (a quote
    inside a JSON string is escaped, so only a key reads ``"name":``) is decoded in full."""
    found = _QUEUED.match(payload)
    if found is None or not payload.endswith(b"}}") or any(name in payload for name in _OBJECT_FIELDS):
        return None
    fields = found.groups()
    if fields[0] != fields[7] or fields[9] not in _DURABILITY:
        return None
    return fields


class PackedRecord(InputRecord):
    """A recovered Queued input whose row is decoded on first use (module docstring)."""

    __slots__ = ("packed", "packed_check", "packed_fields", "packed_id", "packed_key", "packed_sum", "runtime_id")

    packed: bytes | None
    """The row's payload, until it is decoded."""
    packed_id: InputId
    packed_key: str | None
    packed_fields: bytes | None
    """The fields to write the row back with, without decoding it (:meth:`add_fields`)."""
    packed_sum: str | None
    packed_check: PayloadCheck | None
    """The store's check of ``packed`` with ``packed_sum`` (``InputRow.check``), until done."""
    runtime_id: str

    @classmethod
    def from_queued(cls, runtime_id: str, row: InputRow) -> PackedRecord | None:
        """The record of an active row stored with its :func:`queued_fields`, read from them and
        the row's columns without its payload (whose integrity check the store may have left
        for the first decode, ``InputRow.check``); ``None`` when the row has none, or they do
        not match their check value or their format (decode the row in full)."""
        data = row.queued
        input_id, key = row.input_id, row.idempotency_key
        fields = None if data is None else _unpacked(input_id, key, data)
        if fields is None:
            return None
        _, lane, seq, attempts, recovery_count, created_at, updated_at, _ = fields
        rec = cls.__new__(cls)
        rec.packed = row.payload
        rec.packed_id = InputId(input_id)
        rec.packed_key = key
        rec.packed_fields = None
        rec.packed_sum = row.checksum
        rec.packed_check = row.check
        rec.runtime_id = runtime_id
        rec.phase = InputLifecycleState.QUEUED
        rec.lane = _CODE_LANES[lane]
        rec.admission_seq = seq
        rec.attempts = attempts
        rec.recovery_count = recovery_count
        rec.created_at = created_at
        rec.updated_at = updated_at
        rec.terminal = None
        rec.last_run_id = None
        rec.last_boundary_sequence = None
        rec.stored_input = None
        rec.outcome = None
        rec.last_error = None
        return rec

    @classmethod
    def from_row(cls, runtime_id: str, row: InputRow, fields: QueuedFields) -> PackedRecord:
        """The record of a row :func:`peek_queued` read from its (verified) payload
        (``ValueError``/``UnicodeDecodeError`` if a field does not convert: decode that row in
        full)."""
        rec = cls.__new__(cls)
        rec.packed = row.verified_payload()
        rec.packed_id = InputId(fields[0].decode())
        rec.packed_key = None if fields[10] is None else fields[10].decode()
        rec.packed_fields = None
        rec.packed_sum = None
        rec.packed_check = None
        rec.runtime_id = runtime_id
        rec.phase = InputLifecycleState.QUEUED
        rec.lane = _LANES[fields[1]]
        rec.admission_seq = int(fields[2])
        rec.attempts = int(fields[3])
        rec.recovery_count = int(fields[4])
        rec.created_at = float(fields[5])
        rec.updated_at = float(fields[6])
        rec.terminal = None
        rec.last_run_id = None
        rec.last_boundary_sequence = None
        rec.stored_input = None
        rec.outcome = None
        rec.last_error = None
        return rec

    @staticmethod
    def durability(fields: QueuedFields) -> Durability:
        return _DURABILITY[fields[9]]

    @staticmethod
    def idempotency_key(fields: QueuedFields) -> str | None:
        key: bytes | None = fields[10]
        return None if key is None else key.decode()

    def unpack(self) -> None:
        """Decode the row now (a no-op once decoded); ``RecoveryCorruption`` names the input if
        its payload fails the integrity check the store left for now (``CorruptInputRow``, also
        a ``Corrupt``), or does not decode as the input it was recovered as."""
        payload = self.packed
        if payload is None:
            return
        try:
            full = decode_record(self._verified(payload))
        except RowFormatError as exc:
            raise self._corruption(str(exc)) from None
        if full.input_id != self.packed_id or full.phase is not InputLifecycleState.QUEUED:
            raise self._corruption(f"holds {full.input_id!r} {full.phase.value}, recovered as a queued input")
        header = full.input.header
        if (
            (full.lane, full.admission_seq, full.attempts, full.recovery_count, full.created_at, full.updated_at)
            != (self.lane, self.admission_seq, self.attempts, self.recovery_count, self.created_at, self.updated_at)
            or header.idempotency_key != self.packed_key
            or full.last_run_id is not None
            or full.last_boundary_sequence is not None
            or full.terminal is not None
            or full.stored_input is not None
            or full.outcome is not None
            or full.last_error is not None
        ):
            raise self._corruption("does not hold the fields it was recovered with")
        _INPUT_SLOT.__set__(self, full.input)
        _HISTORY_SLOT.__set__(self, full.history)
        self.packed = self.packed_fields = self.packed_sum = None

    def _verified(self, payload: bytes) -> bytes:
        """``payload`` once the check the store left for later passed (``CorruptInputRow``, a
        ``Corrupt`` and a ``RecoveryCorruption`` naming the input, if it fails)."""
        check, checksum = self.packed_check, self.packed_sum
        if check is not None and checksum is not None:
            try:
                check(self.packed_id, payload, checksum)
            except Corrupt as exc:
                raise CorruptInputRow(self.runtime_id, self.packed_id, exc.detail) from None
            self.packed_check = None
        return payload

    def stored_row(self) -> InputRow | None:
        """For a record still packed that :meth:`add_fields` gave fields and that has not changed
        since (its fields are still those): the row to store for it, its payload as stored with
        those fields, without decoding it; else ``None`` (decode and encode it)."""
        payload, fields = self.packed, self.packed_fields
        if payload is None or fields is None or fields != _fields_of(self, self.packed_key):
            return None
        return InputRow(self.packed_id, self._verified(payload), None, self.packed_key, self.admission_seq, fields)

    def add_fields(self) -> bool:
        """For a row read from its payload's start (stored without fields beside it, by an older
        release): let it be written back with its fields and its payload unchanged
        (:meth:`stored_row`); ``False`` if it would carry none."""
        fields = _fields_of(self, self.packed_key)
        if self.packed is None or fields is None:
            return False
        self.packed_fields = fields
        return True

    def _corruption(self, what: str) -> RecoveryCorruption:
        return RecoveryCorruption(
            f"store corruption in runtime {self.runtime_id!r}: input row {self.packed_id!r}: {what}",
            runtime_id=self.runtime_id,
            input_id=self.packed_id,
        )

    @property
    def input(self) -> Input:
        self.unpack()
        value: Input = _INPUT_SLOT.__get__(self)
        return value

    @input.setter
    def input(self, value: Input) -> None:
        self.unpack()
        _INPUT_SLOT.__set__(self, value)

    @property
    def history(self) -> list[HistoryEntry]:
        self.unpack()
        value: list[HistoryEntry] = _HISTORY_SLOT.__get__(self)
        return value

    @history.setter
    def history(self, value: list[HistoryEntry]) -> None:
        self.unpack()
        _HISTORY_SLOT.__set__(self, value)

    @property
    def input_id(self) -> InputId:
        return self.packed_id

    def copy(self) -> InputRecord:
        """A plain decoded copy."""
        self.unpack()
        return InputRecord(
            self.input,
            self.phase,
            self.lane,
            self.admission_seq,
            self.created_at,
            self.updated_at,
            self.attempts,
            self.terminal,
            self.last_run_id,
            self.last_boundary_sequence,
            list(self.history),
            self.recovery_count,
            self.stored_input,
            self.outcome,
            self.last_error,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InputRecord):
            return NotImplemented
        return _fields(self) == _fields(other)

    __hash__ = None  # type: ignore[assignment]


def unpack(record: InputRecord) -> None:
    """Decode ``record`` now if it is a :class:`PackedRecord` (``RecoveryCorruption`` if its row
    does not decode)."""
    if isinstance(record, PackedRecord):
        record.unpack()


def _fields(record: InputRecord) -> tuple[object, ...]:
    return (
        record.input,
        record.phase,
        record.lane,
        record.admission_seq,
        record.created_at,
        record.updated_at,
        record.attempts,
        record.terminal,
        record.last_run_id,
        record.last_boundary_sequence,
        record.history,
        record.recovery_count,
        record.stored_input,
        record.outcome,
        record.last_error,
    )
