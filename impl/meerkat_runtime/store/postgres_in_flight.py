"""Writes of the PostgreSQL store whose ``COMMIT`` outcome is unknown and that may still be
running on the server.

When the connection breaks while ``COMMIT`` is in flight, the server's backend may live on and
commit afterwards: the network failed rather than the server, or the commit waits for a
synchronous standby. A read made meanwhile on another connection does not see the write,
although it is about to land. The runtime reads the store back right after an unknown outcome
and trusts what it reads (docs/semantics.md, "Unknown write outcomes"), so such a read must
not happen.

Every data write holds its runtime's advisory lock until its transaction has ended, committed
or rolled back; taking that lock therefore proves the transaction over. The store takes it
(shared, within the ``lock_timeout`` every transaction of the store sets) before it raises
``WriteOutcomeUnknown``. If it cannot be had — the transaction still runs, or the server
cannot be reached — the runtime stays *unsettled*: every read of it through this store first
tries again and fails with ``ReadFailed`` (or the caller's error) while the lock is still not
granted, so nothing reads the runtime before the write's outcome is final. A new owner on another host is ordered after
the transaction by its claim, which takes the same lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from meerkat_runtime.store.postgres_transactions import Transactions
from meerkat_runtime.vocab.errors import StoreError


class InFlightCommits:
    """The runtimes of one store with a write whose transaction may still be running."""

    def __init__(self, tx: Transactions, lock_key: Callable[[str], int]) -> None:
        self._tx = tx
        self._lock_key = lock_key
        self._lock = threading.Lock()
        self._unsettled: dict[str, int] = {}
        self._next = 0

    def after_unknown_outcome(self, runtime_id: str) -> bool:
        """Called when a write of ``runtime_id`` raised ``WriteOutcomeUnknown``: wait until its
        transaction has ended; ``False`` if that could not be confirmed (the runtime stays
        unsettled)."""
        with self._lock:
            self._next += 1
            self._unsettled[runtime_id] = self._next
        return self._settle(runtime_id)

    def before_read(self, runtime_id: str, what: str, error: type[StoreError]) -> None:
        """Raise ``error`` if a write of ``runtime_id`` may still be committing (after trying
        once more to confirm it has ended)."""
        with self._lock:
            if runtime_id not in self._unsettled:
                return
        if self._tx.gate.closed:
            return  # the read itself reports the closed store
        if not self._settle(runtime_id):
            raise error(
                runtime_id,
                f"{what}: a write whose COMMIT outcome is unknown may still be committing on the server "
                f"(its lock was not granted within {self._tx.timeout_ms} ms); nothing is read until it has ended",
            )

    def _settle(self, runtime_id: str) -> bool:
        with self._lock:
            ticket = self._unsettled.get(runtime_id)
        if ticket is None:
            return True
        first = f"SELECT pg_advisory_xact_lock_shared({self._lock_key(runtime_id)})"
        try:
            self._tx.write(runtime_id, "waiting for a write whose outcome is unknown", lambda conn: None, first=first)
        except StoreError:
            return False
        with self._lock:
            if self._unsettled.get(runtime_id) == ticket:  # no later unknown outcome meanwhile
                del self._unsettled[runtime_id]
        return True
