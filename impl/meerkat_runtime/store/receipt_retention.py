"""Which boundary receipts a compaction deletes with the finished inputs it deletes.

A receipt is read back for two things only: right after its own ``atomic_apply`` left the
outcome unknown (the rows it wrote are then still stored: a finished row is compacted only
once the write that finished it is known to have landed), and by a restart for an active row
``Applied``/``AppliedPendingConsumption`` naming it (that row is one of the receipt's
contributing inputs and is still stored). So a receipt whose contributing inputs are all gone
is never read again. ``compact_inputs`` deletes, in its own transaction, every receipt that
names one of the inputs it was asked to compact and whose other contributors (if any) are no
longer stored. A receipt naming no input, or one that cannot be parsed, is kept (the store
cannot tell who may read it). Shared by the memory, SQLite and PostgreSQL stores.

Finding them costs what the compaction compacts, not what the runtime stores: each store keeps,
beside the receipts, one index entry ``(runtime_id, input_id, run_id, sequence)`` per contributor
of each receipt (written with the receipt, in its transaction; for receipts stored before the
index existed, by the schema migration that creates it). A compaction reads the entries of the
inputs it names, then only those receipts (by primary key), and applies the rule to their
stored payloads, exactly as before; it deletes a released receipt's entries with it. A receipt
naming no input has no entry and is never a candidate (it is kept, as the rule says). An entry
whose receipt is gone, or whose receipt no longer names that input (its payload damaged), only
costs a lookup: the rule reads the payload.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import cast

ReceiptKey = tuple[str, int]


def index_entries(receipt_ids: Iterable[str]) -> list[str]:
    """The input ids a receipt's index entries name: its contributors, each once, in order."""
    return list(dict.fromkeys(receipt_ids))


def contributors(payload: object) -> frozenset[str] | None:
    """The ``contributing_input_ids`` of a stored receipt's JSON (bytes, a view or text), ``None`` if
    it cannot be read (such a receipt is kept)."""
    if isinstance(payload, memoryview):
        payload = payload.tobytes()
    try:
        data = json.loads(payload) if isinstance(payload, str | bytes) else None
    except ValueError:
        return None
    ids = data.get("contributing_input_ids") if isinstance(data, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return None
    return frozenset(cast("list[str]", ids))


def released_receipts(
    receipts: Iterable[tuple[str, int, object]],
    compacted: frozenset[str],
    any_stored: Callable[[frozenset[str]], bool],
) -> list[tuple[ReceiptKey, frozenset[str]]]:
    """The keys of ``receipts`` (``(run_id, sequence, payload)``) to delete when the inputs
    ``compacted`` are deleted, each with its contributors (whose index entries go with it):
    those naming one of them whose other contributors are not stored (``any_stored(ids)``:
    whether any of ``ids`` still has an input row)."""
    gone: list[tuple[ReceiptKey, frozenset[str]]] = []
    for run_id, sequence, payload in receipts:
        ids = contributors(payload)
        if not ids or not ids & compacted:
            continue
        rest = ids - compacted
        if rest and any_stored(rest):
            continue
        gone.append(((run_id, sequence), ids))
    return gone
