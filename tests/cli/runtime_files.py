"""Store files written by a real runtime, for the ``meerkat-runtime`` command tests."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from meerkat_runtime import (
    MeerkatMachine,
    OperationId,
    OperationKind,
    OperationResult,
    OperationSpec,
    RunResult,
    ScriptedExecutor,
    prompt,
)
from meerkat_runtime.session.testing import Fail, Succeed
from meerkat_runtime.store.sqlite_schema import migrate
from meerkat_runtime.store.tables import INPUTS, LEASES, LIFECYCLES, OPS_RECORDS, OPS_SNAPSHOTS, RECEIPTS, SNAPSHOTS

ERROR = "model timed out"


@dataclass(frozen=True)
class Written:
    """What the runtime wrote: session ``alpha`` has a consumed input (``done``, with a result),
    an abandoned one (``failed``, three failed runs) and a queued one (``queued``), and three
    operations (two completed, one failed); session ``beta`` has one queued input."""

    path: Path
    done: str
    failed: str
    queued: str
    beta: str
    operations: tuple[str, ...]


async def _write(path: Path) -> Written:
    executor = ScriptedExecutor(Succeed(RunResult("the answer")), Fail(ERROR), Fail(ERROR), Fail(ERROR))
    async with MeerkatMachine.persistent(path) as machine:
        await machine.register_session_with_executor("alpha", executor)
        ids = []
        for text in ("first", "second"):
            _, handle = await machine.accept_input_with_completion("alpha", prompt(text))
            assert handle is not None
            await handle.wait()
            ids.append(handle.input_id)
        registry = await machine.ops_lifecycle_registry("alpha")
        operations = []
        for n in range(3):
            spec = OperationSpec(OperationId(f"op-{n}"), OperationKind.BACKGROUND_TOOL_OP, "alpha", f"tool {n}")
            registry.register_operation(spec)
            registry.provisioning_succeeded(spec.id)
            if n < 2:
                registry.complete_operation(spec.id, OperationResult(spec.id, f"result {n}", False, 5, 0))
            else:
                registry.fail_operation(spec.id, "tool crashed")
            operations.append(spec.id)
        await machine.unregister_session("alpha")  # the queued input stays queued
        await machine.register_session("alpha")
        queued = await machine.accept_input("alpha", prompt("third"))
        await machine.register_session("beta")
        beta = await machine.accept_input("beta", prompt("waiting"))
    return Written(path, ids[0], ids[1], queued.input_id, beta.input_id, tuple(operations))


def write_sessions(path: Path) -> Written:
    return asyncio.run(_write(path))


def copy_file(written: Written, folder: Path) -> Written:
    """The same store in another folder (tests that damage or migrate a file use a copy)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / written.path.name
    shutil.copyfile(written.path, target)
    return Written(target, written.done, written.failed, written.queued, written.beta, written.operations)


def as_version_3(written: Written, folder: Path) -> Path:
    """A file at schema version 3 (before high-water marks and the quarantine) holding the
    rows of ``written``: what an older release left."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "v3.db"
    conn = sqlite3.connect(target, isolation_level=None)
    try:
        conn.execute("BEGIN")
        migrate(conn, target=3)
        conn.execute("ATTACH DATABASE ? AS src", (f"file:{written.path}?mode=ro",))
        for table in (INPUTS, RECEIPTS, SNAPSHOTS, LIFECYCLES, OPS_SNAPSHOTS, OPS_RECORDS, LEASES):
            columns = ", ".join(c[1] for c in conn.execute(f"PRAGMA main.table_info({table})"))
            conn.execute(f"INSERT INTO main.{table} ({columns}) SELECT {columns} FROM src.{table}")
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE src")
        conn.execute("PRAGMA journal_mode = DELETE")
    finally:
        conn.close()
    return target


def schema_version(path: Path) -> int:
    """The schema version a store file records, read without changing the file."""
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return int(conn.execute("SELECT version FROM meerkat_schema_version").fetchone()[0])
    finally:
        conn.close()
