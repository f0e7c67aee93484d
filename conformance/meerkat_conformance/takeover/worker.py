"""One worker process of the takeover harness.

Run as ``python worker.py '<json spec>'`` (spec keys: ``path``, ``owner``, ``session``,
``lease_s``, ``renew_every_s``, ``synchronous``, ``run_log``, ``seed``). The worker opens the
SQLite file with a ``MeerkatMachine`` (ownership on, waiting for the lease), registers the
session with an executor and prints ``{"event": "owner", "token": n}`` once it owns it. Then it
reads commands from stdin, one JSON object per line, and answers each on stdout:

* ``{"op": "accept", "id": ..., "key": ...}`` → ``{"ack": id, "outcome": "accepted" |
  "deduplicated", "existing": id | null}``, printed only after ``accept_input`` returned;
* ``{"op": "drain"}`` → ``{"event": "drained", "left": n}`` once no input is left to run;
* ``{"op": "close"}`` → closes the machine (releasing the lease) and exits 0.

The executor appends one JSON line per run to ``run_log`` — ``{"token", "run", "inputs"}`` —
flushed and fsynced before it returns, so a run that may have been committed is always in the
log. An ``OwnershipLost`` (or any other error) is printed as ``{"event": "error", ...}`` and
exits 3.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
from typing import Any, TextIO

from meerkat_runtime.session.executor import CoreApplyOutput, RunPrimitive, success_output
from meerkat_runtime.session.inputs import prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.outcomes import Deduplicated
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.ids import canonical_runtime_id


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


class LoggingExecutor:
    """Runs every input successfully after a short random pause, logging the run first."""

    def __init__(self, log: TextIO, seed: int) -> None:
        self.log = log
        self.rng = random.Random(seed)
        self.token = 0

    async def apply(self, run_id: str, primitive: RunPrimitive) -> CoreApplyOutput:
        await asyncio.sleep(self.rng.uniform(0, 0.002))
        record = {"token": self.token, "run": run_id, "inputs": list(primitive.contributing_input_ids)}
        self.log.write(json.dumps(record) + "\n")
        self.log.flush()
        os.fsync(self.log.fileno())
        return success_output(primitive)

    async def control(self, command: object) -> None:
        return None


async def serve(spec: dict[str, Any]) -> int:
    store = SqliteRuntimeStore(spec["path"], synchronous=spec["synchronous"])
    ownership = OwnershipConfig(
        owner_id=spec["owner"],
        lease_s=spec["lease_s"],
        renew_every_s=spec["renew_every_s"],
        wait_for_lease=True,
        wait_poll_s=spec["lease_s"] / 25,
    )
    machine = MeerkatMachine.persistent(store, ownership=ownership)
    session = spec["session"]
    with open(spec["run_log"], "a", encoding="utf-8") as log:
        executor = LoggingExecutor(log, spec["seed"])
        await machine.register_session_with_executor(session, executor)
        claim = machine.session_claim_handle().get(canonical_runtime_id(session))
        assert claim is not None and claim.fence is not None
        executor.token = claim.fence.token
        emit({"event": "owner", "token": claim.fence.token})
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return 0
            command = json.loads(line)
            if command["op"] == "accept":
                item = prompt(command["id"], idempotency_key=command["key"], input_id=command["id"])
                outcome = await machine.accept_input(session, item)
                existing = outcome.existing_id if isinstance(outcome, Deduplicated) else None
                kind = "deduplicated" if isinstance(outcome, Deduplicated) else "accepted"
                emit({"ack": command["id"], "outcome": kind, "existing": existing})
            elif command["op"] == "drain":
                while left := len(await machine.list_active_inputs(session)):
                    await machine.settle(session)
                    await asyncio.sleep(0.001)
                    if not await machine.executor_ready(session):
                        break
                emit({"event": "drained", "left": left})
            elif command["op"] == "close":
                await machine.close()
                store.close()
                emit({"event": "closed"})
                return 0


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    try:
        return asyncio.run(serve(spec))
    except Exception as exc:
        emit({"event": "error", "kind": getattr(exc, "kind", type(exc).__name__), "detail": str(exc)})
        return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
