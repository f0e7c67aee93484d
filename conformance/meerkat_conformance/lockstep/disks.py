"""Durable storage that outlives a simulated process: each ``open()`` returns a fresh store
handle over the same data, as a restarted process would get.

``SqliteDisk`` keeps one SQLite file in a private temporary directory (kind ``sqlite``: the
store's group commit on, as by default; ``sqlite-unbatched``: off, one transaction per write
on the calling thread); ``MemoryDisk`` keeps
one :class:`~meerkat_runtime.store.memory.MemoryStorage` (fast, for the exhaustive replay);
``PostgresDisk`` keeps one fresh schema on the PostgreSQL server named by ``MEERKAT_PG_DSN``
(needs the ``postgres`` extra).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Literal, Protocol

from meerkat_runtime.store.memory import InMemoryRuntimeStore, MemoryStorage
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.sqlite import SqliteRuntimeStore

from meerkat_conformance.stores.backend import PG_DSN_ENV

DiskKind = Literal["sqlite", "sqlite-unbatched", "memory", "postgres"]
DISK_KINDS: tuple[DiskKind, ...] = ("sqlite", "sqlite-unbatched", "memory", "postgres")


class Disk(Protocol):
    """Storage that survives a crash of the process using it."""

    def open(self) -> RuntimeStore:
        """A new store handle over the surviving data."""
        ...

    def release(self, store: RuntimeStore) -> None:
        """Let go of a handle a crashed process held (no flush, no clean shutdown implied)."""
        ...

    def destroy(self) -> None:
        """Delete the data for good."""
        ...


class SqliteDisk:
    """One SQLite database file in its own temporary directory."""

    def __init__(self, synchronous: Literal["FULL", "NORMAL"] = "NORMAL", *, group_commit: bool = True) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="meerkat-conformance-"))
        self.path = self.directory / "runtime.sqlite3"
        self.synchronous: Literal["FULL", "NORMAL"] = synchronous
        self.group_commit = group_commit

    def open(self) -> RuntimeStore:
        return SqliteRuntimeStore(self.path, synchronous=self.synchronous, group_commit=self.group_commit)

    def release(self, store: RuntimeStore) -> None:
        # Committed transactions are already in the file; closing only returns descriptors.
        store.close()

    def destroy(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


class MemoryDisk:
    """A ``MemoryStorage`` shared by every handle."""

    def __init__(self) -> None:
        self.storage = MemoryStorage()

    def open(self) -> RuntimeStore:
        return InMemoryRuntimeStore(self.storage)

    def release(self, store: RuntimeStore) -> None:
        """Nothing to release: the storage is shared with the next handle."""

    def destroy(self) -> None:
        self.storage = MemoryStorage()


class PostgresDisk:
    """One fresh schema of a PostgreSQL database; a crashed process's handle is closed (its
    connections end, rolling back whatever it had not committed)."""

    def __init__(self, dsn: str | None = None) -> None:
        from meerkat_conformance.stores.postgres_backend import fresh_schema_name

        found = dsn or os.environ.get(PG_DSN_ENV)
        if not found:
            raise ValueError(f"the postgres disk needs a server: set {PG_DSN_ENV} to a libpq connection string")
        self.dsn: str = found
        self.schema = fresh_schema_name("lockstep")

    def open(self) -> RuntimeStore:
        from meerkat_runtime.store.postgres import PostgresRuntimeStore

        return PostgresRuntimeStore(self.dsn, schema=self.schema, max_connections=2)

    def release(self, store: RuntimeStore) -> None:
        store.close()

    def destroy(self) -> None:
        from meerkat_conformance.stores.postgres_backend import drop_schema

        drop_schema(self.dsn, self.schema)


def make_disk(kind: DiskKind) -> Disk:
    """A fresh, empty disk of ``kind``."""
    if kind == "sqlite":
        return SqliteDisk()
    if kind == "sqlite-unbatched":
        return SqliteDisk(group_commit=False)
    if kind == "memory":
        return MemoryDisk()
    if kind == "postgres":
        return PostgresDisk()
    raise ValueError(f"unknown disk kind {kind!r}; use 'sqlite', 'sqlite-unbatched', 'memory' or 'postgres'")
