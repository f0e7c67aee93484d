"""Row integrity: a checksum that binds a stored payload to the table and key it lives under.

Every row a built-in store writes carries ``row_checksum(table, runtime_id, key, payload)``.
On read the checksum is recomputed; a mismatch means the row was damaged (or moved to another
key) outside the store, and the read fails closed with ``Corrupt`` naming the runtime id and
the row key. The checksum detects accidental and hand-made damage; it is not a signature.
"""

from __future__ import annotations

import hashlib

from meerkat_runtime.vocab.errors import Corrupt

CHECKSUM_BYTES = 16
"""Size of the BLAKE2b digest; stored as 32 hex characters."""


_PREFIX_LIMIT = 4096
_prefixes: dict[tuple[str, str], hashlib.blake2b] = {}
"""The digest state after the table name and runtime id, per pair (copied, never updated)."""


def _length_prefixed(h: hashlib.blake2b, part: str) -> None:
    encoded = part.encode("utf-8", "surrogatepass")
    h.update(len(encoded).to_bytes(8, "big"))
    h.update(encoded)


def _prefix(table: str, runtime_id: str) -> hashlib.blake2b:
    """The memoised digest state after ``table`` and ``runtime_id`` (never updated: copy it)."""
    prefix = _prefixes.get((table, runtime_id))
    if prefix is None:
        prefix = hashlib.blake2b(digest_size=CHECKSUM_BYTES)
        _length_prefixed(prefix, table)
        _length_prefixed(prefix, runtime_id)
        if len(_prefixes) >= _PREFIX_LIMIT:
            _prefixes.clear()
        _prefixes[(table, runtime_id)] = prefix
    return prefix


def checksum_prefix(table: str, runtime_id: str) -> hashlib.blake2b:
    """The digest state of :func:`row_checksum` after the table name and runtime id: a read of
    many rows of one runtime finishes it for each row with :func:`checksum_from`."""
    return _prefix(table, runtime_id).copy()


def checksum_from(prefix: hashlib.blake2b, key: str, payload: bytes) -> str:
    """:func:`row_checksum` continued from ``prefix`` (left unchanged) with the row key and
    payload."""
    h = prefix.copy()
    _length_prefixed(h, key)
    h.update(payload)
    return h.hexdigest()


def row_checksum(table: str, runtime_id: str, key: str, payload: bytes) -> str:
    """Hex BLAKE2b digest over the table name, runtime id, row key and payload (each name
    length-prefixed)."""
    return checksum_from(_prefix(table, runtime_id), key, payload)


def row_label(table: str, key: str, runtime_id: str = "") -> str:
    """How errors name a row: ``table[key]``; a row keyed by its runtime alone (``key`` empty)
    as ``table[runtime_id]``."""
    return f"{table}[{key or runtime_id}]"


def verified_payload(table: str, runtime_id: str, key: str, payload: object, checksum: object) -> bytes:
    """Return ``payload`` if it is bytes and matches ``checksum``; else raise ``Corrupt``."""
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise Corrupt(
            runtime_id,
            f"row {row_label(table, key, runtime_id)} has a payload of type {type(payload).__name__}, not bytes",
        )
    data = bytes(payload)
    if not isinstance(checksum, str) or checksum != row_checksum(table, runtime_id, key, data):
        raise Corrupt(
            runtime_id, f"row {row_label(table, key, runtime_id)} failed its integrity check (checksum mismatch)"
        )
    return data


class DeferredCheck:
    """The check of payloads a read returned before verifying them
    (:class:`~meerkat_runtime.store.records.PayloadCheck`): one per read, shared by its rows."""

    __slots__ = ("runtime_id", "table")

    def __init__(self, table: str, runtime_id: str) -> None:
        self.table = table
        self.runtime_id = runtime_id

    def __call__(self, input_id: str, payload: bytes, checksum: str) -> None:
        verified_payload(self.table, self.runtime_id, input_id, payload, checksum)
