"""Bounds of numeric settings: every setting is checked by type and range at construction.

A value out of range raises :class:`~meerkat_runtime.vocab.errors.InvalidSetting` (a
``ValueError``) naming the setting, its range and the value; nothing is built. The bounds keep
every setting inside what the parts below it accept (SQLite's 32-bit busy timeout, ``deque``
lengths, the event loop's timers), so a legal value never fails later with a raw
``OverflowError`` or is silently truncated.
"""

from __future__ import annotations

import math

from meerkat_runtime.vocab.errors import InvalidSetting

MAX_INT32 = 2**31 - 1
"""Largest value of a setting SQLite stores as a C ``int`` (e.g. the busy timeout in ms)."""

MAX_COUNT = 2**40
"""Largest count-like setting (retained operations, records between compactions, ...)."""

MAX_SECONDS = 366 * 24 * 3600.0
"""Longest duration setting, in seconds (one year): lease lengths, renewal periods, waits."""


def bounded_int(name: str, value: object, minimum: int, maximum: int) -> int:
    """``value`` if it is an ``int`` (not a ``bool``) in ``minimum..maximum``; else ``InvalidSetting``."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise InvalidSetting(f"{name} must be an integer in {minimum}..{maximum}, got {value!r}")
    return value


def bounded_seconds(name: str, value: object, maximum: float = MAX_SECONDS) -> float:
    """``value`` as a float if it is a finite number of seconds in ``(0, maximum]``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= maximum
    ):
        raise InvalidSetting(f"{name} must be a number of seconds > 0 and <= {maximum:g}, got {value!r}")
    return float(value)


def bounded_number(name: str, value: object, minimum: float, maximum: float) -> float:
    """``value`` as a float if it is a finite number in ``minimum..maximum``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not minimum <= value <= maximum
    ):
        raise InvalidSetting(f"{name} must be a number in {minimum:g}..{maximum:g}, got {value!r}")
    return float(value)
