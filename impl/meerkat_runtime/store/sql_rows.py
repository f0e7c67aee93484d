"""How the SQL stores (SQLite, PostgreSQL) turn receipts and leases into rows and back.

Both stores keep the same columns and checksums, so a receipt or a lease row is encoded and
verified by the same code whichever database holds it.
"""

from __future__ import annotations

from dataclasses import dataclass

from meerkat_runtime.store import validation as v
from meerkat_runtime.store.integrity import (
    CHECKSUM_BYTES,
    DeferredCheck,
    checksum_prefix,
    row_checksum,
    row_label,
    verified_payload,
)
from meerkat_runtime.store.lease import Lease
from meerkat_runtime.store.records import BoundaryReceipt, FinishedInput, InputRow, RowColumns, unverified_row
from meerkat_runtime.store.tables import INPUTS, LEASES, RECEIPTS
from meerkat_runtime.vocab.errors import Corrupt, WriteFailed


@dataclass(frozen=True, slots=True)
class ReceiptRow:
    """A checked receipt as stored: ``params`` are ``(runtime_id, run_id, sequence as signed
    64-bit, receipt JSON, checksum)``."""

    receipt: BoundaryReceipt
    params: tuple[str, str, int, bytes, str]


def receipt_row(runtime_id: str, receipt: object) -> ReceiptRow:
    """Check ``receipt`` (``WriteFailed`` naming what is wrong) and encode its row."""
    checked = v.check_receipt(runtime_id, receipt, WriteFailed)
    body = v.receipt_json(runtime_id, checked, WriteFailed)
    key = v.receipt_key(checked.run_id, checked.sequence)
    checksum = row_checksum(RECEIPTS, runtime_id, key, body)
    return ReceiptRow(checked, (runtime_id, checked.run_id, v.to_signed64(checked.sequence), body, checksum))


def duplicate_receipt(runtime_id: str, receipt: BoundaryReceipt) -> WriteFailed:
    return WriteFailed(
        runtime_id,
        f"duplicate boundary receipt (run_id={receipt.run_id!r}, sequence={receipt.sequence}); nothing was applied",
    )


def stored_receipt(runtime_id: str, run_id: str, sequence: int, payload: object, checksum: object) -> BoundaryReceipt:
    """The receipt stored under ``(run_id, sequence)``, verified; else ``Corrupt`` naming the row."""
    key = v.receipt_key(run_id, sequence)
    data = verified_payload(RECEIPTS, runtime_id, key, payload, checksum)
    try:
        receipt = BoundaryReceipt.from_json(data)
    except ValueError as exc:
        raise Corrupt(runtime_id, f"row {RECEIPTS}[{key}] is not a valid receipt: {exc}") from exc
    if (receipt.run_id, receipt.sequence) != (run_id, sequence):
        raise Corrupt(runtime_id, f"row {RECEIPTS}[{key}] holds the receipt of another key")
    return receipt


def lease_params(lease: Lease) -> tuple[str, str, int, float, str]:
    """``(runtime_id, owner, token, expires_at, checksum)`` of a lease row."""
    checksum = row_checksum(LEASES, lease.runtime_id, "", lease.payload())
    return lease.runtime_id, lease.owner, lease.token, lease.expires_at, checksum


def stored_lease(runtime_id: str, owner: object, token: object, expires_at: object, checksum: object) -> Lease:
    """The lease in a row's columns, its checksum verified; else ``Corrupt``."""
    if not isinstance(owner, str) or not isinstance(token, int) or not isinstance(expires_at, int | float):
        raise Corrupt(runtime_id, f"row {LEASES}[{runtime_id}] has malformed columns")
    lease = Lease(runtime_id, owner, token, float(expires_at))
    verified_payload(LEASES, runtime_id, "", lease.payload(), checksum)
    return lease


def _index_columns(
    runtime_id: str, input_id: str, finished_at: object, key: object, seq: object
) -> tuple[float | None, str | None, int | None]:
    """The finished-input columns of an input row, type-checked; else ``Corrupt`` naming the row."""
    if (
        (finished_at is not None and (isinstance(finished_at, bool) or not isinstance(finished_at, int | float)))
        or (key is not None and not isinstance(key, str))
        or (seq is not None and (isinstance(seq, bool) or not isinstance(seq, int)))
    ):
        raise Corrupt(runtime_id, f"row {INPUTS}[{input_id}] has malformed finished-input columns")
    return (None if finished_at is None else float(finished_at)), key, seq


def scanned_columns(
    runtime_id: str, input_id: str, finished_at: object, key: object, seq: object
) -> tuple[RowColumns | None, str | None]:
    """The columns beside an input row for ``scan_input_states``: ``(columns, None)``, or
    ``(None, what is wrong)`` when they are not of their types (never raises)."""
    try:
        return RowColumns(*_index_columns(runtime_id, input_id, finished_at, key, seq)), None
    except Corrupt:
        found = ", ".join(
            f"{name} {value!r}"
            for name, value in (("finished_at", finished_at), ("idempotency_key", key), ("admission_seq", seq))
            if value is not None
        )
        return None, f"its finished-input columns are malformed ({found}): recovery refuses the row"


QUEUED_BINDING_BYTES = 2 * CHECKSUM_BYTES
"""What a stored ``queued`` column holds after the runtime's bytes: the row's checksum column
(its hex digits, as ASCII)."""


def bound_queued(queued: bytes | None, checksum: str) -> bytes | None:
    """The ``queued`` column to store with a row whose checksum column is ``checksum``: the
    runtime's bytes followed by that checksum, binding them to that payload (a release that
    does not know the column rewrites the payload and checksum, never the column: the stores'
    reads, :data:`SQLITE_QUEUED` and :data:`POSTGRES_QUEUED`, then return ``NULL`` for it)."""
    return None if queued is None else queued + checksum.encode("ascii")


def unbound_queued(column: bytes, checksum: object) -> bytes | None:
    """The runtime's bytes of a stored ``queued`` column if it was written with the row's
    current payload (it ends with ``checksum``, the row's checksum column); ``None`` when it is
    stale (written for an earlier payload, or unbound: by a release before the binding), so
    the runtime reads the row from its verified payload instead. What the stores' reads compute
    in SQL (:data:`SQLITE_QUEUED`, :data:`POSTGRES_QUEUED`)."""
    size = QUEUED_BINDING_BYTES
    if type(checksum) is str and len(column) >= size and column[-size:] == checksum.encode("utf-8", "surrogatepass"):
        return column[:-size]
    return None


SQLITE_QUEUED = (
    f"CASE WHEN length(queued) >= {QUEUED_BINDING_BYTES} AND substr(queued, -{QUEUED_BINDING_BYTES}) = "
    f"CAST(checksum AS BLOB) THEN substr(queued, 1, length(queued) - {QUEUED_BINDING_BYTES}) END"
)
"""The ``queued`` column as SQLite reads it: :func:`unbound_queued` in SQL (a text value is never
equal to a blob, so a column of the wrong type reads as ``NULL`` too), so a restart receives the
runtime's bytes without a Python step per row."""

POSTGRES_QUEUED = (
    f"CASE WHEN length(queued) >= {QUEUED_BINDING_BYTES} AND substring(queued FROM length(queued) - "
    f"{QUEUED_BINDING_BYTES - 1}) = convert_to(checksum, 'UTF8') THEN substring(queued FROM 1 FOR "
    f"length(queued) - {QUEUED_BINDING_BYTES}) END"
)
"""The ``queued`` column as PostgreSQL reads it (:func:`unbound_queued` in SQL)."""


def stored_row(
    runtime_id: str,
    input_id: object,
    payload: object,
    checksum: object,
    finished_at: object,
    key: object,
    seq: object,
    queued: object = None,
) -> InputRow:
    """An input row read with the columns beside its payload, its payload checksum verified
    (a ``queued`` column that is not bytes reads as ``None``: the runtime then decodes the
    payload; ``queued`` as the stores read it: a stale one is already ``None``,
    :func:`unbound_queued`)."""
    row_id = str(input_id)
    data = verified_payload(INPUTS, runtime_id, row_id, payload, checksum)
    at, checked_key, checked_seq = _index_columns(runtime_id, row_id, finished_at, key, seq)
    fields = bytes(queued) if isinstance(queued, bytes | memoryview) and at is None else None
    return InputRow(row_id, data, at, checked_key, checked_seq, fields)


def stored_rows(runtime_id: str, rows: list[tuple[object, ...]]) -> list[InputRow]:
    """The active input rows of ``(input_id, payload, checksum, finished_at, key, seq, queued)``
    rows, ``queued`` as the stores read it (``NULL`` when stale: :func:`unbound_queued`). A
    well-typed row carrying ``queued`` is returned with its payload's check deferred
    (``InputRow.check``: a restart recovers it from ``queued`` and verifies the payload when the
    row is first decoded); every other row's checksum is verified now (``Corrupt`` naming the
    first damaged row), the common well-typed one in this short pass (a restart reads the whole
    backlog), any other through :func:`stored_row`."""
    check = DeferredCheck(INPUTS, runtime_id)
    prefix = checksum_prefix(INPUTS, runtime_id)
    found: list[InputRow] = []
    append = found.append
    copy = prefix.copy
    for row in rows:
        input_id, payload, checksum, finished_at, key, seq, queued = row
        if (
            type(input_id) is not str
            or type(payload) is not bytes
            or finished_at is not None
            or (key is not None and type(key) is not str)
            or (seq is not None and type(seq) is not int)
            or (queued is not None and type(queued) is not bytes)
        ):
            append(stored_row(runtime_id, *row))
        elif queued is not None and type(checksum) is str:
            append(unverified_row(input_id, payload, key, seq, queued, checksum, check))
        else:
            # checksum_from, inlined: the same digest (length-prefixed id, then the payload)
            h = copy()
            name = input_id.encode("utf-8", "surrogatepass")
            h.update(len(name).to_bytes(8, "big") + name)
            h.update(payload)
            if h.hexdigest() != checksum:
                raise Corrupt(
                    runtime_id, f"row {row_label(INPUTS, input_id)} failed its integrity check (checksum mismatch)"
                )
            append(InputRow(input_id, payload, None, key, seq, queued))
    return found


def finished_input(runtime_id: str, input_id: object, finished_at: object, key: object, seq: object) -> FinishedInput:
    """One entry of ``load_finished_inputs`` (its columns type-checked)."""
    row_id = str(input_id)
    at, checked_key, checked_seq = _index_columns(runtime_id, row_id, finished_at, key, seq)
    if at is None:
        raise Corrupt(runtime_id, f"row {INPUTS}[{row_id}] is listed as finished without finished_at")
    return FinishedInput(row_id, at, checked_key, checked_seq)


def finished_inputs(runtime_id: str, rows: list[tuple[object, ...]]) -> list[FinishedInput]:
    """The entries of ``load_finished_inputs`` from ``(input_id, finished_at, key, seq)``
    rows: the common well-typed row is taken as it is, any other is checked column by column."""
    found: list[FinishedInput] = []
    make = FinishedInput._make
    for row in rows:
        input_id, at, key, seq = row
        if (
            type(input_id) is str
            and type(at) is float
            and (key is None or type(key) is str)
            and (seq is None or type(seq) is int)
        ):
            found.append(make(row))
        else:
            found.append(finished_input(runtime_id, input_id, at, key, seq))
    return found
