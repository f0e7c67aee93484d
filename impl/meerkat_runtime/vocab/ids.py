"""Identifiers used by the runtime, and the canonical runtime id of a session.

Ids are plain strings at run time (``NewType``) so they serialise without ceremony. New ids
are UUID version 7 (time-ordered), generated here without third-party packages.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from typing import NewType

OperationId = NewType("OperationId", str)
InputId = NewType("InputId", str)
RunId = NewType("RunId", str)
SessionId = NewType("SessionId", str)
RuntimeEpochId = NewType("RuntimeEpochId", str)
LogicalRuntimeId = NewType("LogicalRuntimeId", str)

CANONICAL_RUNTIME_PREFIX = "rt:session:"

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> uuid.UUID:
    """Return a new UUID v7: 48-bit unix milliseconds, then a per-millisecond counter and randomness.

    Ids minted by one process are strictly increasing, so sorting them sorts by creation.
    """
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
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (now & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand
    return uuid.UUID(int=value)


def new_input_id() -> InputId:
    """Mint a fresh, time-ordered input id."""
    return InputId(str(uuid7()))


def new_run_id() -> RunId:
    """Mint a fresh, time-ordered run id."""
    return RunId(str(uuid7()))


def new_epoch_id() -> RuntimeEpochId:
    """Mint a fresh runtime epoch id."""
    return RuntimeEpochId(str(uuid7()))


def new_session_id() -> SessionId:
    """Mint a fresh session id."""
    return SessionId(str(uuid7()))


def session_id_of(runtime_id: str) -> str:
    """The session id of a canonical runtime id (``rt:session:<id>``); other ids as they are."""
    if runtime_id.startswith(CANONICAL_RUNTIME_PREFIX) and len(runtime_id) > len(CANONICAL_RUNTIME_PREFIX):
        return runtime_id[len(CANONICAL_RUNTIME_PREFIX) :]
    return runtime_id


def canonical_runtime_id(session_id: SessionId | str) -> LogicalRuntimeId:
    """The one runtime id under which a session's state is stored: ``rt:session:<session id>``.

    A bare session UUID (the legacy alias) is never a runtime id; passing an already
    canonical id returns it unchanged.
    """
    text = str(session_id)
    if not text:
        raise ValueError("session id must not be empty")
    if text.startswith(CANONICAL_RUNTIME_PREFIX):
        return LogicalRuntimeId(text)
    return LogicalRuntimeId(CANONICAL_RUNTIME_PREFIX + text)
