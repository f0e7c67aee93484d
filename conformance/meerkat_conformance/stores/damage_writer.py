"""Child process of the damage sweep: writes a real session history to one SQLite file through
the runtime, then exits without closing anything (as a crash would), leaving the database, its
write-ahead log and its wal-index behind.

Argument: one JSON object ``{"path", "sessions", "inputs", "ops"}``. Phase one runs every
session's inputs to completion and completes operations, then checkpoints (so the database
pages hold it); phase two runs more inputs, completes more operations and queues inputs on
sessions without an executor (so the log holds it). Prints one JSON line
``{"acked": {session: [input ids]}}`` once every write was acknowledged, then ``os._exit(0)``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from typing import Any

from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.session.inputs import prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.outcomes import Accepted
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.ids import OperationId
from meerkat_runtime.vocab.operation import OperationKind, OperationResult, OperationSpec


def _complete_ops(registry: OpsLifecycleRegistry, session: str, prefix: str, count: int) -> None:
    for n in range(count):
        op_id = f"{prefix}-{session}-{n}"
        registry.register_operation(
            OperationSpec(OperationId(op_id), OperationKind.BACKGROUND_TOOL_OP, session, op_id, "damage sweep")
        )
        registry.provisioning_succeeded(op_id)
        registry.complete_operation(op_id, OperationResult(op_id, f"{op_id} done", False, n, 0))


async def _accept(machine: MeerkatMachine, session: str, text: str, acked: list[str]) -> None:
    outcome = await machine.accept_input(session, prompt(text))
    if not isinstance(outcome, Accepted):
        raise RuntimeError(f"accept of {text!r} was not accepted: {outcome}")
    acked.append(outcome.input_id)


async def write(spec: dict[str, Any]) -> dict[str, list[str]]:
    path, sessions, inputs, ops = spec["path"], spec["sessions"], spec["inputs"], spec["ops"]
    machine = MeerkatMachine.persistent(SqliteRuntimeStore(path), ownership=None)
    acked: dict[str, list[str]] = {}
    for s in range(sessions):
        session = f"s{s}"
        acked[session] = []
        await machine.register_session_with_executor(session, ScriptedExecutor())
        for n in range(inputs):
            await _accept(machine, session, f"{session} first phase {n} " + "x" * (n * 7 % 150), acked[session])
        await machine.settle(session)
        _complete_ops(await machine.ops_lifecycle_registry(session), session, "a", ops)
    checkpoint = sqlite3.connect(path, isolation_level=None)
    checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    checkpoint.close()
    for s in range(sessions):
        session = f"s{s}"
        for n in range(inputs):
            await _accept(machine, session, f"{session} second phase {n} " + "y" * (n * 11 % 150), acked[session])
        await machine.settle(session)
        _complete_ops(await machine.ops_lifecycle_registry(session), session, "b", ops)
        queued = f"q{s}"  # no executor: its inputs stay queued
        acked[queued] = []
        await machine.register_session(queued)
        for n in range(inputs // 2):
            await _accept(machine, queued, f"{queued} waiting {n}", acked[queued])
    return acked


def main(argv: list[str]) -> None:
    spec = json.loads(argv[0])
    acked = asyncio.run(write(spec))
    print(json.dumps({"acked": acked}), flush=True)
    os._exit(0)  # no close: the log and the wal-index stay, as after a crash


if __name__ == "__main__":
    main(sys.argv[1:])
