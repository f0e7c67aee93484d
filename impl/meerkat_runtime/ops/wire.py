"""Path-aware readers for JSON documents: every malformed field raises ``SnapshotFormatError``
naming the field's path (e.g. ``operations[2].status``). Documents are decoded within the
size and nesting limits of :mod:`meerkat_runtime.vocab.json_limits`, and a document is written
only if it stays within them (so every stored snapshot and record can be read back)."""

from __future__ import annotations

import enum
import json
from typing import Any, TypeVar

from meerkat_runtime.vocab.errors import SnapshotFormatError
from meerkat_runtime.vocab.json_limits import (
    MAX_JSON_BYTES,
    MAX_JSON_DEPTH,
    JsonLimitExceeded,
    check_encoded_depth,
    load_json,
)

E = TypeVar("E", bound=enum.Enum)

_TOO_DEEP = f"document cannot be stored: it is nested deeper than {MAX_JSON_DEPTH} levels"


def parse_document(data: bytes | str, what: str) -> dict[str, Any]:
    """Decode ``data`` as one JSON object."""
    try:
        doc = load_json(data)
    except JsonLimitExceeded as exc:
        raise SnapshotFormatError(f"{what} exceeds the JSON limits: {exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise SnapshotFormatError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise SnapshotFormatError(f"{what} must be a JSON object, got {type(doc).__name__}")
    return doc


class DocumentTooLarge(SnapshotFormatError):
    """The encoder refused a document over the size limit; ``size`` and ``limit`` in bytes."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"document cannot be stored: it is {size} bytes, over the limit of {limit} bytes")
        self.size = size
        self.limit = limit


def dump_document(doc: dict[str, Any], *, max_bytes: int | None = None) -> bytes:
    """Compact, key-sorted UTF-8 JSON; ``SnapshotFormatError`` if the document would exceed the
    size limit (``max_bytes``, by default this module's ``MAX_JSON_BYTES``, the readers'
    :data:`~meerkat_runtime.vocab.json_limits.MAX_JSON_BYTES`; :class:`DocumentTooLarge`) or the
    nesting limit: a reader would refuse it, so it is never returned to be written."""
    limit = MAX_JSON_BYTES if max_bytes is None else max_bytes
    try:
        data = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    except RecursionError:
        raise SnapshotFormatError(_TOO_DEEP) from None
    if len(data) > limit:
        raise DocumentTooLarge(len(data), limit)
    try:
        check_encoded_depth(doc, data)
    except JsonLimitExceeded:
        raise SnapshotFormatError(_TOO_DEEP) from None
    return data


def _fail(path: str, expected: str, value: Any) -> SnapshotFormatError:
    return SnapshotFormatError(f"field {path!r} must be {expected}, got {value!r}")


def field(doc: dict[str, Any], key: str, path: str) -> Any:
    if key not in doc:
        raise SnapshotFormatError(f"field {path + key!r} is missing")
    return doc[key]


def req_str(doc: dict[str, Any], key: str, path: str = "", *, allow_empty: bool = False) -> str:
    value = field(doc, key, path)
    if not isinstance(value, str) or (not allow_empty and not value):
        raise _fail(path + key, "a string" if allow_empty else "a non-empty string", value)
    return value


def opt_str(doc: dict[str, Any], key: str, path: str = "") -> str | None:
    value = field(doc, key, path)
    if value is not None and not isinstance(value, str):
        raise _fail(path + key, "a string or null", value)
    return value


def req_int(doc: dict[str, Any], key: str, path: str = "", *, minimum: int = 0) -> int:
    value = field(doc, key, path)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(path + key, f"an integer >= {minimum}", value)
    return value


def opt_int(doc: dict[str, Any], key: str, path: str = "", *, minimum: int = 0) -> int | None:
    value = field(doc, key, path)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(path + key, f"an integer >= {minimum} or null", value)
    return value


def req_bool(doc: dict[str, Any], key: str, path: str = "") -> bool:
    value = field(doc, key, path)
    if not isinstance(value, bool):
        raise _fail(path + key, "a boolean", value)
    return value


def req_list(doc: dict[str, Any], key: str, path: str = "") -> list[Any]:
    value = field(doc, key, path)
    if not isinstance(value, list):
        raise _fail(path + key, "a list", value)
    return value


def req_obj(doc: dict[str, Any], key: str, path: str = "") -> dict[str, Any]:
    value = field(doc, key, path)
    if not isinstance(value, dict):
        raise _fail(path + key, "an object", value)
    return value


def opt_obj(doc: dict[str, Any], key: str, path: str = "") -> dict[str, Any] | None:
    value = field(doc, key, path)
    if value is not None and not isinstance(value, dict):
        raise _fail(path + key, "an object or null", value)
    return value


def as_obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, "an object", value)
    return value


def as_str(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(path, "a non-empty string", value)
    return value


def as_opt_int(value: Any, path: str) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise _fail(path, "an integer >= 0 or null", value)
    return value


def req_enum(doc: dict[str, Any], key: str, enum_type: type[E], path: str = "") -> E:
    value = field(doc, key, path)
    try:
        return enum_type(value)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in enum_type)
        raise SnapshotFormatError(
            f"field {path + key!r} has unknown value {value!r} (expected one of {allowed})"
        ) from None


def check_header(doc: dict[str, Any], fmt: str, supported: int, what: str, *, oldest: int | None = None) -> int:
    """Check ``format`` and ``version`` (``oldest`` .. ``supported``; only ``supported`` if
    ``oldest`` is not given); unknown versions are refused, naming both."""
    found = doc.get("format")
    if found != fmt:
        raise SnapshotFormatError(f"{what}: field 'format' must be {fmt!r}, got {found!r}")
    version = doc.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise SnapshotFormatError(f"{what}: field 'version' must be an integer, got {version!r}")
    low = supported if oldest is None else oldest
    if not low <= version <= supported:
        reads = f"version {supported}" if low == supported else f"versions {low} to {supported}"
        raise SnapshotFormatError(
            f"{what}: unsupported version {version} (this runtime reads {reads}); "
            "upgrade the runtime or restore a snapshot it wrote"
        )
    return version
