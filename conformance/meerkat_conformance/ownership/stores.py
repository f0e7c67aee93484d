"""The store stack of one harness worker: SQLite file <- :class:`DroppingStore` <-
``FaultInjectingStore``.

``FaultInjectingStore`` makes a write fail before it reaches the file (``WriteFailed``) or after
it did (``after_write``: ``WriteOutcomeUnknown``, the write landed). :class:`DroppingStore` adds
the third case a real connection has: the write is lost and the caller cannot tell (an
exception that is not a ``StoreError``, so its outcome is unknown).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from meerkat_runtime.store.faults import WRITE_METHODS
from meerkat_runtime.store.protocol import RuntimeStore


class ConnectionDropped(ConnectionError):
    """The connection went away while a write was being committed; it did not land."""


class DroppingStore:
    """Delegates every call to ``inner``; while ``drop_writes`` is set a data write raises
    :class:`ConnectionDropped` without reaching ``inner``."""

    def __init__(self, inner: RuntimeStore) -> None:
        self.inner = inner
        self.drop_writes = False

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name not in WRITE_METHODS:
            return attribute
        return self._guarded(name, attribute)

    def _guarded(self, name: str, write: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if self.drop_writes:
                raise ConnectionDropped(f"connection dropped while committing {name}")
            return write(*args, **kwargs)

        return call
