"""Limits on JSON read back from storage: size and nesting, checked before and after decoding.

Every decoder of stored data (ops snapshots and journal records, boundary receipts, lifecycle
records, input rows) parses through :func:`load_json`, so a document that is too large or
nested too deeply is refused with :class:`JsonLimitExceeded` (a ``ValueError`` naming the limit)
instead of exhausting memory or raising ``RecursionError``. Encoders of documents whose
content comes from callers check the size (:func:`check_size`) and the nesting
(:func:`check_depth`) before writing, so nothing is stored that could not be read back.

Limits: :data:`MAX_JSON_BYTES` (64 MiB) per document and :data:`MAX_JSON_DEPTH` (128) levels of
nested arrays and objects (the document itself is level 1).
"""

from __future__ import annotations

import json
from typing import Any

MAX_JSON_BYTES = 64 * 1024 * 1024
"""Largest stored JSON document a decoder reads (bytes of its UTF-8 text)."""

MAX_JSON_DEPTH = 128
"""Deepest nesting of arrays and objects a stored document may have."""


class JsonLimitExceeded(ValueError):
    """A JSON document is larger or nested deeper than the limits allow."""


def load_json(data: bytes | str, *, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decode one JSON document within the limits.

    Raises :class:`JsonLimitExceeded` for a document over ``max_bytes`` or nested deeper than
    ``max_depth``, and ``ValueError`` (``json.JSONDecodeError`` or ``UnicodeDecodeError``) for
    text that is not JSON; never ``RecursionError`` or ``MemoryError`` from nesting.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    check_size(raw, max_bytes)
    try:
        doc = json.loads(raw.decode("utf-8") if isinstance(data, bytes) else data)  # stored JSON is UTF-8
    except RecursionError:
        raise JsonLimitExceeded(f"document is nested deeper than the limit of {max_depth} levels") from None
    check_encoded_depth(doc, raw, max_depth)
    return doc


def check_size(encoded: bytes, max_bytes: int = MAX_JSON_BYTES) -> None:
    """Raise :class:`JsonLimitExceeded` if the JSON text ``encoded`` is over ``max_bytes``: the
    size check of :func:`load_json`, also made by encoders before writing."""
    if len(encoded) > max_bytes:
        raise JsonLimitExceeded(f"document of {len(encoded)} bytes exceeds the limit of {max_bytes} bytes")


def check_encoded_depth(value: Any, encoded: bytes, max_depth: int = MAX_JSON_DEPTH) -> None:
    """:func:`check_depth` of ``value`` given its JSON text ``encoded``: a text with at most
    ``max_depth`` opening brackets cannot nest deeper, so only larger documents are walked."""
    if encoded_may_nest_deeper(encoded, max_depth):
        check_depth(value, max_depth)


def encoded_may_nest_deeper(encoded: bytes, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text ``encoded`` has more than ``max_depth`` opening brackets (else it
    cannot nest deeper than ``max_depth``)."""
    return encoded.count(b"[") + encoded.count(b"{") > max_depth


def depth(value: Any) -> int:
    """Levels of nested lists and dicts in ``value`` (0 for a scalar); iterative, any depth."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        pending.extend((child, level + 1) for child in children if isinstance(child, dict | list | tuple))
    return deepest


def check_depth(value: Any, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise :class:`JsonLimitExceeded` if ``value`` nests deeper than ``max_depth``."""
    found = depth(value)
    if found > max_depth:
        raise JsonLimitExceeded(f"document is nested {found} levels deep; the limit is {max_depth}")
