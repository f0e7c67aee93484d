"""What a store under test must provide, and the two built-in backends.

A *factory* is a zero-argument callable returning a ``StoreBackend``: one fresh, empty
storage location. ``open()`` returns a new handle on that same storage each time (closing one
handle and opening another models a restart). Optional capabilities:

* ``"damage"``: ``damage(row)`` alters the stored payload of one row behind the store's back,
  as a disk fault or a hand edit would; reading it must then fail closed with ``Corrupt``.
* ``"processes"``: ``process_opener()`` names an importable callable and JSON-able arguments
  that open the same storage from another process.
* ``"write_failure"``: ``fail_writes_to(runtime_id, input_id)`` is a context manager during which
  the storage itself fails any write of that input row (a failure in the middle of a commit).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from meerkat_runtime.store.memory import InMemoryRuntimeStore, MemoryStorage, Sealed
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.tables import INPUTS, LIFECYCLES, OPS_RECORDS, OPS_SNAPSHOTS, RECEIPTS, SNAPSHOTS
from meerkat_runtime.store.validation import to_signed64

from meerkat_conformance.stores.failure import NotApplicable

RowKind = Literal["input", "receipt", "session_snapshot", "machine_lifecycle", "ops_snapshot", "ops_record"]
ROW_KINDS: tuple[RowKind, ...] = (
    "input",
    "receipt",
    "session_snapshot",
    "machine_lifecycle",
    "ops_snapshot",
    "ops_record",
)

CAP_DAMAGE = "damage"
CAP_PROCESSES = "processes"
CAP_WRITE_FAILURE = "write_failure"


@dataclass(frozen=True, slots=True)
class RowRef:
    """One stored row: its family, runtime id and key (input id; ``(run_id, sequence)`` for a
    receipt; the 0-based position among appended records for an ops record; unused otherwise)."""

    kind: RowKind
    runtime_id: str
    input_id: str = ""
    run_id: str = ""
    sequence: int = 0
    position: int = 0


class StoreBackend(Protocol):
    name: str
    capabilities: frozenset[str]

    def open(self) -> RuntimeStore:
        """A new handle on this backend's storage."""
        ...

    def damage(self, row: RowRef) -> None:
        """Alter ``row``'s stored payload outside the store (needs ``"damage"``)."""
        ...

    def process_opener(self) -> tuple[str, list[Any]]:
        """``("module:callable", args)`` opening this storage in another process (needs ``"processes"``)."""
        ...

    def fail_writes_to(self, runtime_id: str, input_id: str) -> contextlib.AbstractContextManager[None]:
        """While active, the storage fails writes of that input row (needs ``"write_failure"``)."""
        ...

    def dispose(self) -> None:
        """Release the storage (delete files). Handles must be closed first."""
        ...


StoreFactory = Callable[[], StoreBackend]


def spoil(payload: bytes) -> bytes:
    """A different payload of the same length (one bit flipped), or one byte for an empty one."""
    return bytes([payload[0] ^ 0x01]) + payload[1:] if payload else b"\x01"


class MemoryBackend:
    """``InMemoryRuntimeStore`` handles sharing one ``MemoryStorage``."""

    name = "memory"
    capabilities = frozenset({CAP_DAMAGE})

    def __init__(self) -> None:
        self.storage = MemoryStorage()

    def open(self) -> RuntimeStore:
        return InMemoryRuntimeStore(self.storage)

    def damage(self, row: RowRef) -> None:
        s, rt = self.storage, row.runtime_id
        with s.lock:
            if row.kind == "input":
                s.inputs[rt][row.input_id] = self._spoiled(s.inputs[rt][row.input_id])
            elif row.kind == "receipt":
                key = (row.run_id, row.sequence)
                s.receipts[rt][key] = self._spoiled(s.receipts[rt][key])
            elif row.kind == "ops_record":
                seq, sealed = s.ops_records[rt][row.position]
                s.ops_records[rt][row.position] = (seq, self._spoiled(sealed))
            else:
                table = {
                    "session_snapshot": s.snapshots,
                    "machine_lifecycle": s.lifecycles,
                    "ops_snapshot": s.ops_snapshots,
                }[row.kind]
                table[rt] = self._spoiled(table[rt])

    @staticmethod
    def _spoiled(sealed: Sealed) -> Sealed:
        return spoil(sealed[0]), sealed[1]

    def process_opener(self) -> tuple[str, list[Any]]:
        raise NotApplicable("an in-memory store cannot be shared between processes")

    def fail_writes_to(self, runtime_id: str, input_id: str) -> contextlib.AbstractContextManager[None]:
        raise NotApplicable("the in-memory store has no storage layer that can fail mid-commit")

    def dispose(self) -> None:
        self.storage = MemoryStorage()


class SqliteBackend:
    """``SqliteRuntimeStore`` handles on one file in a private temporary directory."""

    name = "sqlite"
    capabilities = frozenset({CAP_DAMAGE, CAP_PROCESSES, CAP_WRITE_FAILURE})

    def __init__(self, directory: Path | None = None, **store_options: Any) -> None:
        self._own_dir = directory is None
        self.directory = Path(tempfile.mkdtemp(prefix="meerkat-store-")) if directory is None else directory
        self.path = self.directory / "runtime.sqlite3"
        self.store_options = store_options

    def open(self) -> RuntimeStore:
        return SqliteRuntimeStore(self.path, **self.store_options)

    def _raw(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=5.0, isolation_level=None)

    def damage(self, row: RowRef) -> None:
        rt = row.runtime_id
        where: tuple[str, tuple[Any, ...]]
        table, column = {
            "input": (INPUTS, "payload"),
            "receipt": (RECEIPTS, "receipt"),
            "session_snapshot": (SNAPSHOTS, "snapshot"),
            "machine_lifecycle": (LIFECYCLES, "lifecycle"),
            "ops_snapshot": (OPS_SNAPSHOTS, "snapshot"),
            "ops_record": (OPS_RECORDS, "record"),
        }[row.kind]
        conn = self._raw()
        try:
            if row.kind == "input":
                where = ("runtime_id = ? AND input_id = ?", (rt, row.input_id))
            elif row.kind == "receipt":
                where = ("runtime_id = ? AND run_id = ? AND sequence = ?", (rt, row.run_id, to_signed64(row.sequence)))
            elif row.kind == "ops_record":
                seqs = conn.execute(f"SELECT seq FROM {table} WHERE runtime_id = ? ORDER BY seq", (rt,)).fetchall()
                where = ("seq = ?", (seqs[row.position][0],))
            else:
                where = ("runtime_id = ?", (rt,))
            (payload,) = conn.execute(f"SELECT {column} FROM {table} WHERE {where[0]}", where[1]).fetchone()
            conn.execute(f"UPDATE {table} SET {column} = ? WHERE {where[0]}", (spoil(bytes(payload)), *where[1]))
        finally:
            conn.close()

    def process_opener(self) -> tuple[str, list[Any]]:
        return "meerkat_runtime.store.sqlite:SqliteRuntimeStore", [str(self.path)]

    @contextlib.contextmanager
    def fail_writes_to(self, runtime_id: str, input_id: str) -> Iterator[None]:
        def literal(text: str) -> str:
            return "'" + text.replace("'", "''") + "'"

        condition = f"NEW.runtime_id = {literal(runtime_id)} AND NEW.input_id = {literal(input_id)}"
        conn = self._raw()
        try:
            for event in ("INSERT", "UPDATE"):
                conn.execute(
                    f"CREATE TRIGGER conformance_fail_{event.lower()} BEFORE {event} ON {INPUTS} "
                    f"WHEN {condition} BEGIN SELECT RAISE(ABORT, 'conformance: injected storage failure'); END"
                )
            yield
        finally:
            for event in ("insert", "update"):
                conn.execute(f"DROP TRIGGER IF EXISTS conformance_fail_{event}")
            conn.close()

    def dispose(self) -> None:
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)


def memory_factory() -> StoreBackend:
    return MemoryBackend()


def sqlite_factory() -> StoreBackend:
    return SqliteBackend()


PG_DSN_ENV = "MEERKAT_PG_DSN"
"""Names the PostgreSQL server of the built-in ``postgres`` backend (a libpq connection string)."""


def postgres_factory() -> StoreBackend:
    """A fresh schema on the server named by ``MEERKAT_PG_DSN`` (needs the ``postgres`` extra)."""
    from meerkat_conformance.stores.postgres_backend import PostgresBackend

    dsn = os.environ.get(PG_DSN_ENV)
    if not dsn:
        raise NotApplicable(f"no PostgreSQL server configured ({PG_DSN_ENV} is not set)")
    return PostgresBackend(dsn)


BUILT_IN_FACTORIES: dict[str, StoreFactory] = {"memory": memory_factory, "sqlite": sqlite_factory}
"""The in-memory and SQLite backends, and ``postgres`` when ``MEERKAT_PG_DSN`` names a server."""
if os.environ.get(PG_DSN_ENV):
    BUILT_IN_FACTORIES["postgres"] = postgres_factory
