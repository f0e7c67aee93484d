"""Field checks at the door: the type and range of each field a caller hands the runtime.

Each check raises :class:`~meerkat_runtime.vocab.errors.InvalidField` (kind
``validation_failed``) naming the subject (``input``, ``operation spec``, ...) and the field,
before anything is planned or written. Text must be ``str`` and encodable as UTF-8 (no unpaired
surrogates), integers are ``int`` (never ``bool``) within ``0 .. 2**63 - 1`` unless told
otherwise, numbers are finite. What these checks accept the JSON row codecs store and read back
unchanged.
"""

from __future__ import annotations

import enum
import math
from typing import Any, TypeVar

from meerkat_runtime.vocab.errors import InvalidField

MAX_INT = 2**63 - 1
"""The largest integer a stored field may hold (signed 64-bit, what every store can index)."""

E = TypeVar("E", bound=enum.Enum)


def _kind(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def utf8_size(value: str) -> int:
    """Bytes ``value`` takes as UTF-8 (cheap for ASCII text)."""
    return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))


def text(subject: str, field: str, value: Any, *, optional: bool = False) -> None:
    """``value`` is a ``str`` encodable as UTF-8 (or ``None`` when ``optional``)."""
    if value is None and optional:
        return
    if not isinstance(value, str):
        expected = "a string or None" if optional else "a string"
        raise InvalidField(subject, field, f"must be {expected}, got {_kind(value)}")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidField(subject, field, "is not valid UTF-8 text (it holds an unpaired surrogate)") from None


def nonempty_text(subject: str, field: str, value: Any) -> None:
    """``value`` is a non-empty ``str`` encodable as UTF-8."""
    text(subject, field, value)
    if not value:
        raise InvalidField(subject, field, "must be a non-empty string")


def integer(subject: str, field: str, value: Any, *, minimum: int = 0, maximum: int = MAX_INT) -> None:
    """``value`` is an ``int`` (not a ``bool``) within ``minimum .. maximum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidField(subject, field, f"must be an integer, got {_kind(value)}")
    if not minimum <= value <= maximum:
        raise InvalidField(subject, field, f"must be between {minimum} and {maximum}, got {value}")


def number(subject: str, field: str, value: Any, *, minimum: float = 0.0) -> None:
    """``value`` is a finite ``int`` or ``float`` (not a ``bool``), at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidField(subject, field, f"must be a number, got {_kind(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidField(subject, field, f"must be a finite number, got {value}")
    if value < minimum or (isinstance(value, int) and value > MAX_INT):
        raise InvalidField(subject, field, f"must be at least {minimum} (and at most {MAX_INT}), got {value}")


def flag(subject: str, field: str, value: Any) -> None:
    """``value`` is a ``bool``."""
    if not isinstance(value, bool):
        raise InvalidField(subject, field, f"must be True or False, got {_kind(value)}")


def member(subject: str, field: str, value: Any, cls: type[E], *, optional: bool = False) -> None:
    """``value`` is a member of the enum ``cls`` (or ``None`` when ``optional``)."""
    if value is None and optional:
        return
    if not isinstance(value, cls):
        names = ", ".join(f"{cls.__name__}.{m.name}" for m in cls)
        raise InvalidField(subject, field, f"must be one of {names}, got {_kind(value)} {value!r}")


def instance(subject: str, field: str, value: Any, cls: type | tuple[type, ...], what: str) -> None:
    """``value`` is an instance of ``cls`` (described to the caller as ``what``)."""
    if not isinstance(value, cls):
        raise InvalidField(subject, field, f"must be {what}, got {_kind(value)}")
