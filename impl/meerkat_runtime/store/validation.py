"""Argument checks shared by the built-in stores, run before any write starts.

A rejected argument raises ``WriteFailed`` (or ``ReadFailed`` for a read) naming the argument,
and nothing is written. Receipt sequences are unsigned 64-bit integers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeGuard

from meerkat_runtime.store.lease import RENEW_BATCH_MAX, Fence
from meerkat_runtime.store.records import BoundaryKind, BoundaryReceipt, InputRow
from meerkat_runtime.vocab.errors import Corrupt, StoreError, WriteFailed
from meerkat_runtime.vocab.ids import stored_id_problem
from meerkat_runtime.vocab.json_limits import JsonLimitExceeded
from meerkat_runtime.vocab.settings import MAX_SECONDS

MAX_SEQUENCE = (1 << 64) - 1
"""Largest boundary sequence number a store accepts (unsigned 64-bit)."""


def runtime_label(runtime_id: object) -> str:
    """The runtime id as errors show it, even when it is not a string (an over-long one cut)."""
    if isinstance(runtime_id, str):
        return runtime_id if len(runtime_id) <= _LABEL_CHARS else f"{runtime_id[:_LABEL_CHARS]}..."
    return f"{runtime_id!r:.{_LABEL_CHARS}}"


_LABEL_CHARS = 80


def _is_text(value: object) -> TypeGuard[str]:
    """A non-empty string that encodes as UTF-8 (no lone surrogates)."""
    if not isinstance(value, str) or not value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_runtime_id(runtime_id: object, error: type[StoreError]) -> str:
    """A runtime id: a non-empty UTF-8 string, for reads and writes alike
    (:func:`~meerkat_runtime.vocab.ids.stored_id_problem`). Earlier releases registered sessions
    under any such id, so a store can hold ids with control characters or longer than a new
    session's id may be; they stay readable and writable. The stricter rules of new session ids
    (:func:`~meerkat_runtime.vocab.ids.id_problem`) are ``MeerkatMachine``'s, not the store's."""
    if not isinstance(runtime_id, str):
        raise error(runtime_label(runtime_id), "runtime id must be a non-empty UTF-8 string")
    problem = stored_id_problem(runtime_id)
    if problem is not None:
        raise error(runtime_label(runtime_id), f"runtime id {problem}")
    return runtime_id


MAX_REASON_CHARS = 4096
"""Longest quarantine reason a store accepts."""


def check_input_id(runtime_id: str, input_id: object, error: type[StoreError]) -> str:
    if not _is_text(input_id):
        raise error(runtime_id, "input id must be a non-empty UTF-8 string")
    return input_id


def check_reason(runtime_id: str, reason: object, error: type[StoreError]) -> str:
    """A quarantine reason: a non-empty UTF-8 string of at most ``MAX_REASON_CHARS`` characters."""
    if not _is_text(reason) or len(reason) > MAX_REASON_CHARS:
        raise error(
            runtime_id, f"quarantine reason must be a non-empty UTF-8 string of at most {MAX_REASON_CHARS} characters"
        )
    return reason


def check_bytes(runtime_id: str, what: str, value: object, error: type[StoreError]) -> bytes:
    if not isinstance(value, bytes):
        raise error(runtime_id, f"{what} must be bytes, got {type(value).__name__}")
    return value


def check_rows(runtime_id: str, rows: Sequence[InputRow], error: type[StoreError]) -> list[InputRow]:
    """Every row passes :func:`check_row`."""
    return [check_row(runtime_id, index, row, error) for index, row in enumerate(rows)]


def check_row(runtime_id: str, index: int, row: object, error: type[StoreError]) -> InputRow:
    """``row`` (``rows[index]`` in errors) is an ``InputRow`` with a non-empty string id and
    bytes payload (and, if it was read without its payload being verified, a payload that
    passes the check now)."""
    if not isinstance(row, InputRow):
        raise error(runtime_id, f"rows[{index}] must be an InputRow, got {type(row).__name__}")
    if not _is_text(row.input_id):
        raise error(runtime_id, f"rows[{index}].input_id must be a non-empty UTF-8 string")
    check_bytes(runtime_id, f"rows[{index}] ({row.input_id!r}).payload", row.payload, error)
    _check_row_index(runtime_id, f"rows[{index}] ({row.input_id!r})", row, error)
    try:
        row.verified_payload()  # a row read back unverified is not written before it is checked
    except Corrupt as exc:
        raise error(runtime_id, f"rows[{index}] ({row.input_id!r}) was read unverified: {exc.detail}") from exc
    return row


MAX_ADMISSION_SEQ = (1 << 63) - 1
"""Largest admission position a store accepts (signed 64-bit)."""


def _check_row_index(runtime_id: str, where: str, row: InputRow, error: type[StoreError]) -> None:
    """``finished_at`` a finite number >= 0 or ``None``; ``idempotency_key`` a non-empty UTF-8
    string or ``None``; ``admission_seq`` an integer in 0..2**63-1 or ``None``; ``queued`` bytes or
    ``None``, and ``None`` on a finished row."""
    at = row.finished_at
    if at is not None and (not isinstance(at, int | float) or isinstance(at, bool) or not math.isfinite(at) or at < 0):
        raise error(runtime_id, f"{where}.finished_at must be a finite number >= 0 or None, got {at!r}")
    key = row.idempotency_key
    if key is not None and not _is_text(key):
        raise error(runtime_id, f"{where}.idempotency_key must be a non-empty UTF-8 string or None")
    seq = row.admission_seq
    if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= MAX_ADMISSION_SEQ):
        raise error(runtime_id, f"{where}.admission_seq must be an integer in 0..2**63-1 or None, got {seq!r}")
    queued = row.queued
    if queued is not None and (type(queued) is not bytes or at is not None):
        raise error(runtime_id, f"{where}.queued must be bytes on an active row, or None")


def check_input_ids(runtime_id: str, input_ids: object, error: type[StoreError]) -> list[str]:
    """A sequence (not a string) of input ids, each a non-empty UTF-8 string; duplicates dropped."""
    if isinstance(input_ids, str | bytes) or not isinstance(input_ids, Sequence):
        raise error(runtime_id, f"input_ids must be a sequence of input ids, got {type(input_ids).__name__}")
    return list(dict.fromkeys(check_input_id(runtime_id, i, error) for i in input_ids))


def check_run_key(runtime_id: str, run_id: object, sequence: object, error: type[StoreError]) -> tuple[str, int]:
    if not _is_text(run_id):
        raise error(runtime_id, "receipt run_id must be a non-empty UTF-8 string")
    if not isinstance(sequence, int) or isinstance(sequence, bool) or not 0 <= sequence <= MAX_SEQUENCE:
        raise error(runtime_id, f"receipt sequence must be an integer in 0..2**64-1, got {sequence!r}")
    return run_id, sequence


def check_receipt(runtime_id: str, receipt: object, error: type[StoreError]) -> BoundaryReceipt:
    if not isinstance(receipt, BoundaryReceipt):
        raise error(runtime_id, f"receipt must be a BoundaryReceipt, got {type(receipt).__name__}")
    check_run_key(runtime_id, receipt.run_id, receipt.sequence, error)
    if not isinstance(receipt.boundary, BoundaryKind):
        raise error(runtime_id, "receipt boundary must be a BoundaryKind")
    if not all(isinstance(i, str) for i in receipt.contributing_input_ids):
        raise error(runtime_id, "receipt contributing_input_ids must be strings")
    if receipt.conversation_digest is not None and not isinstance(receipt.conversation_digest, str):
        raise error(runtime_id, "receipt conversation_digest must be a string or None")
    if not isinstance(receipt.message_count, int) or isinstance(receipt.message_count, bool):
        raise error(runtime_id, "receipt message_count must be an integer")
    return receipt


def receipt_json(runtime_id: str, receipt: BoundaryReceipt, error: type[StoreError]) -> bytes:
    """The stored form of a checked receipt; ``error`` naming the receipt, its size and the
    limit if a reader would refuse it (:meth:`BoundaryReceipt.to_json`)."""
    try:
        return receipt.to_json()
    except JsonLimitExceeded as exc:
        raise error(
            runtime_id,
            f"boundary receipt (run_id={receipt.run_id!r}, sequence={receipt.sequence}) cannot be stored: {exc}; "
            "nothing was applied",
        ) from None


def receipt_key(run_id: str, sequence: int) -> str:
    """Row key of a receipt, as checksums and errors use it."""
    return f"{run_id}#{sequence}"


def to_signed64(sequence: int) -> int:
    """Store an unsigned 64-bit sequence in a signed 64-bit column (same bit pattern)."""
    return sequence - (1 << 64) if sequence >= 1 << 63 else sequence


def from_signed64(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


def check_owner(runtime_id: str, owner: object, error: type[StoreError]) -> str:
    if not _is_text(owner):
        raise error(runtime_id, "lease owner must be a non-empty UTF-8 string")
    return owner


def check_duration(runtime_id: str, duration_s: object, error: type[StoreError]) -> float:
    """A lease duration: a finite number of seconds greater than zero and at most
    ``MAX_SECONDS`` (one year)."""
    if (
        not isinstance(duration_s, int | float)
        or isinstance(duration_s, bool)
        or not math.isfinite(duration_s)
        or not 0 < duration_s <= MAX_SECONDS
    ):
        raise error(
            runtime_id,
            f"lease duration must be a finite number of seconds > 0 and <= {MAX_SECONDS:g}, got {duration_s!r}",
        )
    return float(duration_s)


def check_fence(runtime_id: str, fence: object, error: type[StoreError]) -> Fence | None:
    """``None`` or a ``Fence`` with a non-empty owner and a positive integer token."""
    if fence is None:
        return None
    if not isinstance(fence, Fence):
        raise error(runtime_id, f"fence must be a Fence or None, got {type(fence).__name__}")
    check_owner(runtime_id, fence.owner, error)
    if not isinstance(fence.token, int) or isinstance(fence.token, bool) or fence.token < 1:
        raise error(runtime_id, f"fence token must be a positive integer, got {fence.token!r}")
    return fence


def check_required_fence(runtime_id: str, fence: object, error: type[StoreError]) -> Fence:
    checked = check_fence(runtime_id, fence, error)
    if checked is None:
        raise error(runtime_id, "a fence is required")
    return checked


def check_renewals(
    renewals: object, duration_s: object, scope: str
) -> tuple[float, list[tuple[str, Fence] | StoreError]]:
    """The arguments of ``renew_leases``: ``renewals`` a sequence of at most
    ``RENEW_BATCH_MAX`` pairs ``(fence, runtime_id)`` and a valid duration (else ``WriteFailed``
    for the whole call, named ``scope``). Per pair, the checked ``(runtime_id, fence)`` or the
    ``WriteFailed`` that ``renew_lease`` would raise for it (a repeated runtime id is refused)."""
    if not isinstance(renewals, Sequence) or isinstance(renewals, str | bytes):
        raise WriteFailed(scope, "renew_leases: renewals must be a sequence of (fence, runtime_id) pairs")
    if len(renewals) > RENEW_BATCH_MAX:
        raise WriteFailed(scope, f"renew_leases: at most {RENEW_BATCH_MAX} leases per call, got {len(renewals)}")
    duration = check_duration(scope, duration_s, WriteFailed)
    seen: set[str] = set()
    items: list[tuple[str, Fence] | StoreError] = []
    for pair in renewals:
        try:
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise WriteFailed(scope, f"renew_leases: expected a (fence, runtime_id) pair, got {pair!r}")
            rt = check_runtime_id(pair[1], WriteFailed)
            fence = check_required_fence(rt, pair[0], WriteFailed)
            if rt in seen:
                raise WriteFailed(rt, "renew_leases: the runtime id is repeated in one call")
        except StoreError as refused:
            items.append(refused)
            continue
        seen.add(rt)
        items.append((rt, fence))
    return duration, items
