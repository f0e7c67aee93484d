"""Identifiers used by the runtime, and the canonical runtime id of a session.

Ids are plain strings at run time (``NewType``) so they serialise without ceremony. New ids
are UUID version 7 (time-ordered), generated here without third-party packages.
"""

from __future__ import annotations

import os
import re
import struct
import threading
import time
import unicodedata
import uuid
from typing import NewType

OperationId = NewType("OperationId", str)
InputId = NewType("InputId", str)
RunId = NewType("RunId", str)
SessionId = NewType("SessionId", str)
RuntimeEpochId = NewType("RuntimeEpochId", str)
LogicalRuntimeId = NewType("LogicalRuntimeId", str)

CANONICAL_RUNTIME_PREFIX = "rt:session:"

MAX_SESSION_ID_BYTES = 1024
"""Longest session id, in UTF-8 bytes."""

MAX_OPERATION_ID_BYTES = 1024
"""Longest operation id a registry accepts, in UTF-8 bytes (the rules of :func:`id_problem`)."""

MAX_RUNTIME_ID_BYTES = MAX_SESSION_ID_BYTES + len(CANONICAL_RUNTIME_PREFIX)
"""Longest runtime id of a new session, in UTF-8 bytes: the longest session id's runtime id.
Stores take longer ones (:func:`stored_id_problem`): earlier releases registered them."""

_NOT_ID_TEXT = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
"""Characters no id may hold: the C0 controls, DEL, and lone surrogates (not UTF-8 text)."""

_SURROGATE = re.compile(r"[\ud800-\udfff]")
"""Lone surrogates: not UTF-8 text, so no stored id holds one either."""

_lock = threading.Lock()
_last_ms = 0
_counter = 0

_RANDOM_BLOCK = 512
"""How many ids' worth of randomness (8 bytes each) one ``os.urandom`` call fetches."""
_random: list[int] = []
"""Unused random 64-bit values of earlier ``os.urandom`` blocks (taken and added under ``_lock``)."""


def _after_fork_in_child() -> None:
    """In a forked child: a fresh lock (another thread of the parent may have held ``_lock`` at
    the fork, and it does not exist in the child to release it) and no random values (parent and
    child never mint ids from the same bytes)."""
    global _lock
    _lock = threading.Lock()
    _random.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _random_block() -> list[int]:
    """A fresh block of random 64-bit values; fetched without ``_lock`` held (the system call
    may block, and a fork meanwhile must not find the lock taken)."""
    return list(struct.unpack(f">{_RANDOM_BLOCK}Q", os.urandom(8 * _RANDOM_BLOCK)))


def _uuid7_int() -> int:
    """The 128-bit value of a new UUID v7 (see :func:`uuid7`)."""
    global _last_ms, _counter
    with _lock:
        now = time.time_ns() // 1_000_000
        if now <= _last_ms:
            now = _last_ms
            _counter += 1
            if _counter > 0xFFF:
                now += 1
                _counter = 0
        else:
            _counter = 0
        _last_ms = now
        counter = _counter
        rand = _random.pop() if _random else None
    if rand is None:
        # Out of random values: this caller fetches a block of its own, takes one value and
        # hands the rest over. Two callers refilling at once each take from their own block, and
        # a value is handed out only once: by this pop, or by a pop under the lock.
        block = _random_block()
        rand = block.pop()
        with _lock:
            _random.extend(block)
    value = (now & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return value


def uuid7() -> uuid.UUID:
    """Return a new UUID v7: 48-bit unix milliseconds, then a per-millisecond counter and randomness.

    Ids minted by one process are strictly increasing, so sorting them sorts by creation. The
    random bits come from ``os.urandom``, fetched in blocks for many ids at once (a forked
    child fetches its own).
    """
    return uuid.UUID(int=_uuid7_int())


def _uuid7_text() -> str:
    """``str(uuid7())`` without building the ``UUID`` object."""
    h = f"{_uuid7_int():032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_input_id() -> InputId:
    """Mint a fresh, time-ordered input id."""
    return InputId(_uuid7_text())


def new_run_id() -> RunId:
    """Mint a fresh, time-ordered run id."""
    return RunId(_uuid7_text())


def new_epoch_id() -> RuntimeEpochId:
    """Mint a fresh runtime epoch id."""
    return RuntimeEpochId(_uuid7_text())


def new_session_id() -> SessionId:
    """Mint a fresh session id."""
    return SessionId(_uuid7_text())


def session_id_of(runtime_id: str) -> str:
    """The session id of a canonical runtime id (``rt:session:<id>``); other ids as they are."""
    if runtime_id.startswith(CANONICAL_RUNTIME_PREFIX) and len(runtime_id) > len(CANONICAL_RUNTIME_PREFIX):
        return runtime_id[len(CANONICAL_RUNTIME_PREFIX) :]
    return runtime_id


def id_problem(text: str, max_bytes: int) -> str | None:
    """What is wrong with ``text`` as a session, runtime or operation id, as a phrase following the id's
    name (``None`` when nothing is): empty, a control character (C0 controls U+0000..U+001F and
    DEL U+007F: they cannot be typed on a command line or shown in one table row), a lone
    surrogate (not UTF-8 text), more than ``max_bytes`` UTF-8 bytes, whitespace at either end
    (``" x"`` and ``"x "`` would be sessions apart from ``"x"`` that a table shows alike), or
    text not in Unicode NFC form (a second spelling of an id that looks the same: ``"e\u0301"``
    beside ``"\u00e9"``)."""
    if not text:
        return "must not be empty"
    bad = None if text.isprintable() else _NOT_ID_TEXT.search(text)  # controls, surrogates: not printable
    if bad is not None:
        char, at = bad.group(), bad.start()
        if char >= "\ud800":
            return _lone_surrogate(char, at)
        return (
            f"contains a control character (U+{ord(char):04X} at index {at}); "
            "C0 controls U+0000..U+001F and DEL U+007F are not allowed"
        )
    if len(text) > max_bytes // 4:  # fewer characters cannot exceed max_bytes
        size = len(text.encode("utf-8"))
        if size > max_bytes:
            return f"is {size} UTF-8 bytes long; at most {max_bytes} are allowed"
    return _spelling_problem(text)


def _spelling_problem(text: str) -> str | None:
    """Why non-empty ``text`` could be mistaken for another id, as a phrase (``None`` when it
    cannot): whitespace at either end, or text not in Unicode NFC form."""
    if text[0].isspace() or text[-1].isspace():
        end, char = ("starts", text[0]) if text[0].isspace() else ("ends", text[-1])
        return f"{end} with whitespace (U+{ord(char):04X}); strip it (id.strip())"
    if not text.isascii() and not unicodedata.is_normalized("NFC", text):
        return (
            f"is not in Unicode NFC form ({ascii(text) if len(text) <= 60 else 'spelled'} is a second spelling of an "
            "id that looks the same); use unicodedata.normalize('NFC', id)"
        )
    return None


def unambiguous(text: str) -> bool:
    """Whether ``text`` shows as itself without being mistaken for another id: printable, no
    whitespace at either end, and in Unicode NFC form (the stores take ids that are not:
    earlier releases registered them)."""
    return text.isprintable() and (not text or _spelling_problem(text) is None)


def stored_id_problem(text: str) -> str | None:
    """What is wrong with ``text`` as a runtime id a store takes, or as the session id of a
    session already stored (``None`` when nothing is): empty, or not UTF-8 text (a lone
    surrogate). The rule of earlier releases, which registered sessions under any such id: a
    store can hold ids :func:`id_problem` refuses, and reads and writes them as they are."""
    if not text:
        return "must not be empty"
    if not text.isprintable():  # a lone surrogate is not printable
        bad = _SURROGATE.search(text)
        if bad is not None:
            return _lone_surrogate(bad.group(), bad.start())
    return None


def _lone_surrogate(char: str, at: int) -> str:
    """The problem of an id holding the lone surrogate ``char`` at index ``at``."""
    return f"contains a lone surrogate (U+{ord(char):04X} at index {at}); it must be UTF-8 text"


def id_in_message(text: str, limit: int = 60) -> str:
    """``text`` as an error message shows an id: its ``repr``, cut after ``limit`` characters."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} characters)"


def canonical_runtime_id(session_id: SessionId | str) -> LogicalRuntimeId:
    """The one runtime id under which a session's state is stored: ``rt:session:<session id>``.

    A bare session UUID (the legacy alias) is never a runtime id; passing an already
    canonical id returns it unchanged. A session id that is not a ``str`` is a ``ValueError``
    (``None`` is not the session ``"None"``); ``MeerkatMachine`` checks the other rules of session
    ids (:func:`id_problem`) before it gets here.
    """
    if not isinstance(session_id, str):
        raise ValueError(f"session id must be a str, got {type(session_id).__name__}")
    text = session_id
    if not text:
        raise ValueError("session id must not be empty")
    if text.startswith(CANONICAL_RUNTIME_PREFIX):
        return LogicalRuntimeId(text)
    return LogicalRuntimeId(CANONICAL_RUNTIME_PREFIX + text)
