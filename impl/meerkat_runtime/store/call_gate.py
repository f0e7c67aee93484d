"""A gate that lets a store's ``close`` wait for the calls in flight and refuse new ones."""

from __future__ import annotations

import threading


class CallGate:
    """Counts calls in flight; after ``close`` no call may enter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        """Taken directly by ``enter`` and ``leave`` (each store call passes both)."""
        self._cond = threading.Condition(self._lock)
        self._active = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def enter(self) -> bool:
        """Register a call; ``False`` if the gate is closed."""
        with self._lock:
            if self._closed:
                return False
            self._active += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._active -= 1
            if self._active == 0 and self._closed:  # only ``close`` waits on the condition
                self._cond.notify_all()

    def close(self) -> bool:
        """Refuse new calls and wait for calls in flight. ``False`` if it was already closed."""
        with self._cond:
            if self._closed:
                return False
            self._closed = True
            while self._active:
                self._cond.wait()
            return True
