"""Records a ``RuntimeStore`` keeps. Payloads are opaque bytes owned by the runtime.

A store never interprets an input row's payload or a lifecycle record; it only keys,
orders, checksums and commits them. Boundary receipts are structured because their key
``(runtime_id, run_id, sequence)`` must be unique.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple, Protocol

from meerkat_runtime.vocab.json_limits import MAX_JSON_BYTES, check_size, load_json
from meerkat_runtime.vocab.slot_init import slot_init


class PayloadCheck(Protocol):
    """A store's integrity check of a payload it returned unverified: returns if ``payload``
    matches ``checksum`` (the check value stored with the row ``input_id``), else raises
    ``Corrupt`` naming the row."""

    def __call__(self, input_id: str, payload: bytes, checksum: str) -> None: ...


@slot_init
@dataclass(frozen=True, slots=True)
class InputRow:
    """One persisted input: its id and the runtime's serialised state for it, plus what the
    runtime tells the store about it so that a restart need not read finished rows: when it
    finished (``finished_at``, runtime clock; ``None`` while it is active), its idempotency key,
    its admission position and, for an input waiting to run, ``queued``: the fields a restart
    recovers it from without reading the payload (bytes the runtime writes and reads; ``None``
    for any other row). A store keeps these beside the payload and never derives them from it.

    ``check`` and ``checksum`` are set only on a row a store returned before verifying its
    payload (``load_active_input_states`` may do so for a row carrying ``queued``, which a
    restart need not decode): :meth:`verified_payload` performs the check. They take no part in
    comparisons, and a store ignores them on a write (after checking the payload with them)."""

    input_id: str
    payload: bytes
    finished_at: float | None = None
    idempotency_key: str | None = None
    admission_seq: int | None = None
    queued: bytes | None = None
    checksum: str | None = field(default=None, compare=False, repr=False)
    check: PayloadCheck | None = field(default=None, compare=False, repr=False)

    def verified_payload(self) -> bytes:
        """The payload, its integrity verified now if the store deferred it (``Corrupt`` naming
        the row when it fails)."""
        check, checksum = self.check, self.checksum
        if check is not None and checksum is not None:
            check(self.input_id, self.payload, checksum)
        return self.payload


_new = object.__new__
(
    _set_input_id,
    _set_payload,
    _set_finished_at,
    _set_key,
    _set_seq,
    _set_queued,
    _set_checksum,
    _set_check,
) = (InputRow.__dict__[f.name].__set__ for f in fields(InputRow))


def unverified_row(
    input_id: str, payload: bytes, key: str | None, seq: int | None, queued: bytes, checksum: str, check: PayloadCheck
) -> InputRow:
    """``InputRow(input_id, payload, None, key, seq, queued, checksum, check)``: an active row
    returned before its payload is verified, built by setting its fields directly (a frozen
    dataclass's ``__init__`` sets each through ``object.__setattr__``, about twice the cost,
    and a restart builds one per pending row)."""
    row: InputRow = _new(InputRow)
    _set_input_id(row, input_id)
    _set_payload(row, payload)
    _set_finished_at(row, None)
    _set_key(row, key)
    _set_seq(row, seq)
    _set_queued(row, queued)
    _set_checksum(row, checksum)
    _set_check(row, check)
    return row


class FinishedInput(NamedTuple):
    """What a store lists of a finished input without reading its payload
    (``RuntimeStore.load_finished_inputs``). A named tuple: a restart builds one per finished
    input, so it must be cheap."""

    input_id: str
    finished_at: float
    idempotency_key: str | None
    admission_seq: int | None


class BoundaryKind(enum.Enum):
    IMMEDIATE = "immediate"
    RUN_START = "run_start"
    RUN_CHECKPOINT = "run_checkpoint"


@dataclass(frozen=True, slots=True)
class BoundaryReceipt:
    """Proof that a run committed a boundary: which inputs contributed, in order."""

    run_id: str
    sequence: int
    boundary: BoundaryKind
    contributing_input_ids: tuple[str, ...]
    conversation_digest: str | None = None
    message_count: int = 0

    def to_json(self, *, max_bytes: int = MAX_JSON_BYTES) -> bytes:
        """The stored form: compact key-sorted JSON; ``JsonLimitExceeded`` (a ``ValueError``) if
        it is over ``max_bytes``, the size :meth:`from_json` reads (its nesting is fixed), so a
        receipt that could not be read back is never returned to be written."""
        data = json.dumps(
            {
                "run_id": self.run_id,
                "sequence": self.sequence,
                "boundary": self.boundary.value,
                "contributing_input_ids": list(self.contributing_input_ids),
                "conversation_digest": self.conversation_digest,
                "message_count": self.message_count,
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        check_size(data, max_bytes)
        return data

    @staticmethod
    def from_json(data: bytes) -> BoundaryReceipt:
        """Parse a stored receipt; raises ``ValueError`` naming the malformed field."""
        doc: Any = load_json(data)
        if not isinstance(doc, dict):
            raise ValueError("boundary receipt must be a JSON object")
        run_id, seq, boundary = doc.get("run_id"), doc.get("sequence"), doc.get("boundary")
        ids, digest, count = (
            doc.get("contributing_input_ids"),
            doc.get("conversation_digest"),
            doc.get("message_count", 0),
        )
        if not isinstance(run_id, str):
            raise ValueError("boundary receipt 'run_id' must be a string")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise ValueError("boundary receipt 'sequence' must be a non-negative integer")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValueError("boundary receipt 'contributing_input_ids' must be a list of strings")
        if digest is not None and not isinstance(digest, str):
            raise ValueError("boundary receipt 'conversation_digest' must be a string or null")
        if not isinstance(count, int) or isinstance(count, bool):
            raise ValueError("boundary receipt 'message_count' must be an integer")
        try:
            kind = BoundaryKind(boundary)
        except ValueError:
            raise ValueError(f"boundary receipt 'boundary' has unknown value {boundary!r}") from None
        return BoundaryReceipt(run_id, seq, kind, tuple(ids), digest, count)


class RowColumns(NamedTuple):
    """What an input row stores beside its payload, as ``InputRow`` carries it."""

    finished_at: float | None
    idempotency_key: str | None
    admission_seq: int | None


@dataclass(frozen=True, slots=True)
class ScannedRow:
    """One input row as stored, read without failing on damage: ``intact`` says whether its
    payload passed the store's integrity check (``scan_input_states``). ``columns``: the
    columns beside the payload (``None``: the store did not read them); ``malformed``: what is
    wrong with them when they cannot be read as their types (then ``columns`` is ``None``).
    The checksum covers only the payload: whether the columns agree with it is for the reader
    of the payload to say. Equality compares the row (id, bytes, ``intact``) only: a store need
    not read the columns."""

    input_id: str
    payload: bytes
    intact: bool
    columns: RowColumns | None = field(default=None, compare=False)
    malformed: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class QuarantinedRow:
    """An input row moved out of the runtime's rows by ``quarantine_row``: its stored bytes
    (kept exactly as found), whether they were intact, why it was moved and when (store clock)."""

    input_id: str
    payload: bytes
    intact: bool
    reason: str
    quarantined_at: float

    def sealed_form(self) -> bytes:
        """What a store's checksum of the quarantine row covers: every field, the bytes last."""
        head = f"{self.input_id}\n{int(self.intact)}\n{self.reason}\n{self.quarantined_at!r}\n"
        return head.encode("utf-8", "surrogatepass") + self.payload


@dataclass(frozen=True, slots=True)
class OpsLifecycleRecords:
    """What a store holds for one runtime's operation registry.

    ``snapshot`` is the last full (compacted) snapshot, or ``None``; ``appended`` are the
    O(1) terminal-transition records written since, oldest first.
    """

    snapshot: bytes | None
    appended: tuple[bytes, ...]
