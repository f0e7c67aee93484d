"""One worker process of the takeover harnesses.

Run as ``python worker.py '<json spec>'``. Spec keys: ``store`` (``{"kind": "sqlite", "path",
"synchronous"}`` or ``{"kind": "postgres", "dsn", "schema"}``; the older top-level ``path`` and
``synchronous`` mean SQLite), ``owner``, ``sessions`` (or one ``session``), ``first`` (the
sessions to claim at once; the others are claimed after ``standby_after_s``), ``lease_s``,
``renew_every_s``, ``run_log`` and ``seed``.

The worker opens the store with a ``MeerkatMachine`` (ownership on, waiting for leases) and
registers every session with an executor, each in its own task that waits for the lease; it
prints ``{"event": "owner", "session": s, "token": n}`` once it owns one. When it loses one (a
refused write or renewal: another worker took it over) it prints ``{"event": "lost", "session":
s}`` and waits for that lease again (a registration that fails with a store error prints
``{"event": "retrying", ...}`` and is tried again). It reads commands from stdin, one JSON object per line:

* ``{"op": "accept", "session": s, "id": ..., "key": ...}`` → ``{"ack": id, "session": s,
  "outcome": "accepted" | "deduplicated", "existing": id | null}``, printed only after
  ``accept_input`` returned; if it raised: ``{"nack": id, "session": s, "kind": ...}`` (the input
  may or may not be stored; the driver retries with the same idempotency key, and the runtime
  reconciles the session with the store after an unknown outcome by itself). Both carry
  ``"store_unknown"``: whether the accept's store write ended with an unknown outcome (the
  runtime then read the store back: acknowledged if the write had landed); a ``nack`` also
  carries ``"in_doubt"``: the store could not be read back either (the session reconciles
  before its next step);
* ``{"op": "drain"}`` → ``{"event": "drained", "left": n}`` once no input of a session it owns
  is left to run;
* ``{"op": "close"}`` → closes the machine (releasing its leases) and exits 0.

The executor appends one JSON line per run to ``run_log`` — ``{"session", "token", "run",
"inputs"}`` — flushed and fsynced before it returns, so a run that may have been committed is
always in the log. Any other error is printed as ``{"event": "error", ...}`` and exits 3.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import os
import random
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from meerkat_runtime.session.executor import CoreApplyOutput, RunPrimitive, success_output
from meerkat_runtime.session.inputs import prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.outcomes import Deduplicated
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.vocab.errors import MeerkatError, OwnershipLost, WriteOutcomeUnknown
from meerkat_runtime.vocab.ids import canonical_runtime_id

DRAIN_WAIT_S = 45.0
"""How long ``drain`` waits for the owned sessions' queues to empty (the drivers wait 60 s)."""


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


class UnknownOutcomes:
    """Tells whether a data write of the store made for one accept raised
    ``WriteOutcomeUnknown``. The store's write methods are wrapped; a write counts for the
    accept whose :meth:`watch` context it runs in (the runtime makes an accept's write in the
    caller's task, or in a thread that copies its context), so writes of runs or of other
    accepts of the same session are never attributed to it."""

    _probe: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("unknown_outcomes", default=None)

    def __init__(self, store: RuntimeStore) -> None:
        for name in ("persist_input_state", "commit_machine_lifecycle", "atomic_apply"):
            setattr(store, name, self._wrapped(name, getattr(store, name)))

    def _wrapped(self, name: str, inner: Callable[..., None]) -> Callable[..., None]:
        def write(*args: Any, **kwargs: Any) -> None:
            try:
                inner(*args, **kwargs)
            except WriteOutcomeUnknown:
                probe = self._probe.get()
                if probe is not None:
                    probe.append(name)
                raise

        return write

    @contextlib.contextmanager
    def watch(self) -> Iterator[list[str]]:
        """Within the block, the names of the writes that raised ``WriteOutcomeUnknown``."""
        probe: list[str] = []
        token = self._probe.set(probe)
        try:
            yield probe
        finally:
            self._probe.reset(token)


def open_store(spec: dict[str, Any]) -> RuntimeStore:
    """The store a spec names (see the module docstring)."""
    store = spec.get("store") or {"kind": "sqlite", "path": spec["path"], "synchronous": spec["synchronous"]}
    if store["kind"] == "postgres":
        from meerkat_runtime.store.postgres import PostgresRuntimeStore

        return PostgresRuntimeStore(store["dsn"], schema=store["schema"], max_connections=4)
    from meerkat_runtime.store.sqlite import SqliteRuntimeStore

    return SqliteRuntimeStore(store["path"], synchronous=store["synchronous"])


class LoggingExecutor:
    """Runs every input successfully after a short random pause, logging the run first."""

    def __init__(self, log: TextIO, session: str, seed: int) -> None:
        self.log = log
        self.session = session
        self.rng = random.Random(seed)
        self.token = 0

    async def apply(self, run_id: str, primitive: RunPrimitive) -> CoreApplyOutput:
        await asyncio.sleep(self.rng.uniform(0, 0.002))
        record = {"session": self.session, "token": self.token, "run": run_id}
        record["inputs"] = list(primitive.contributing_input_ids)
        self.log.write(json.dumps(record) + "\n")
        self.log.flush()
        os.fsync(self.log.fileno())
        return success_output(primitive)

    async def control(self, command: object) -> None:
        return None


class Worker:
    """The sessions of one worker process and the commands it serves."""

    def __init__(self, spec: dict[str, Any], log: TextIO) -> None:
        self.spec = spec
        self.store = open_store(spec)
        self.unknown = UnknownOutcomes(self.store)
        ownership = OwnershipConfig(
            owner_id=spec["owner"],
            lease_s=spec["lease_s"],
            renew_every_s=spec["renew_every_s"],
            wait_for_lease=True,
            wait_poll_s=spec["lease_s"] / 25,
        )
        self.machine = MeerkatMachine.persistent(self.store, ownership=ownership)
        self.sessions: list[str] = spec.get("sessions") or [spec["session"]]
        self.owned: set[str] = set()
        self.log = log
        self.rng = random.Random(spec["seed"])

    async def hold(self, session: str, delay: float) -> None:
        """Wait for the session's lease, own it until it is lost, and wait again. A failed
        registration (a store error while claiming or recovering) is retried; anything else
        ends the process."""
        try:
            await asyncio.sleep(delay)
            while True:
                try:
                    await self.own(session)
                except MeerkatError as exc:
                    kind = getattr(exc, "kind", type(exc).__name__)
                    emit({"event": "retrying", "session": session, "kind": kind, "detail": str(exc)})
                    with contextlib.suppress(MeerkatError):
                        await self.machine.unregister_session(session)
                    await asyncio.sleep(self.spec["lease_s"] / 10)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            emit({"event": "error", "kind": type(exc).__name__, "detail": f"holding {session}: {exc}"})
            os._exit(3)

    async def own(self, session: str) -> None:
        runtime_id = canonical_runtime_id(session)
        executor = LoggingExecutor(self.log, session, self.rng.randrange(1 << 30))
        await self.machine.register_session_with_executor(session, executor)
        claim = self.machine.session_claim_handle().get(runtime_id)
        assert claim is not None and claim.fence is not None
        lost = asyncio.Event()
        claim.on_lost(lambda _error: lost.set())
        executor.token = claim.fence.token
        self.owned.add(session)
        emit({"event": "owner", "session": session, "token": claim.fence.token})
        await lost.wait()
        self.owned.discard(session)
        emit({"event": "lost", "session": session})
        with contextlib.suppress(MeerkatError):
            await self.machine.unregister_session(session)

    async def accept(self, command: dict[str, Any]) -> None:
        session = command.get("session") or self.sessions[0]
        item = prompt(command["id"], idempotency_key=command["key"], input_id=command["id"])
        reply: dict[str, Any] = {"session": session}
        with self.unknown.watch() as unknown:
            try:
                outcome = await self.machine.accept_input(session, item)
            except MeerkatError as exc:
                if not self.spec.get("sessions") and isinstance(exc, OwnershipLost):
                    raise  # the single-session harness never expects to lose its session while alive
                reply |= {
                    "nack": command["id"],
                    "kind": getattr(exc, "kind", type(exc).__name__),
                    "in_doubt": bool(getattr(exc, "outcome_unknown", False)),
                    "detail": str(exc),
                }
            else:
                reply |= {
                    "ack": command["id"],
                    "outcome": "deduplicated" if isinstance(outcome, Deduplicated) else "accepted",
                    "existing": outcome.existing_id if isinstance(outcome, Deduplicated) else None,
                }
        emit(reply | {"store_unknown": bool(unknown)})

    async def drain(self) -> int:
        """Run every queued input of the sessions this worker owns. A run loop a failed boundary
        commit detached (its connection was terminated during the commit) is not attached again
        here: the machine attaches it again by itself once the store answers (``reattach``), so
        this only waits (at most ``DRAIN_WAIT_S`` in all)."""
        left = 0
        deadline = asyncio.get_running_loop().time() + DRAIN_WAIT_S
        for session in sorted(self.owned):
            while True:
                left = len(await self.machine.list_active_inputs(session))
                if not left:
                    break
                claim = self.machine.session_claim_handle().get(canonical_runtime_id(session))
                if claim is None or claim.fence is None or not claim.owned:
                    break
                if asyncio.get_running_loop().time() > deadline:
                    return left
                if await self.machine.executor_ready(session):
                    await self.machine.settle(session)
                await asyncio.sleep(0.005)
            if left:
                return left
        return left

    async def serve(self) -> int:
        first = set(self.spec.get("first") or self.sessions)
        standby_after = float(self.spec.get("standby_after_s", 0.0))
        holders = [
            asyncio.create_task(self.hold(s, 0.0 if s in first else standby_after), name=f"hold {s}")
            for s in self.sessions
        ]
        loop = asyncio.get_running_loop()
        try:
            while True:
                line = await loop.run_in_executor(None, sys.stdin.readline)
                if not line:
                    return 0
                command = json.loads(line)
                if command["op"] == "accept":
                    await self.accept(command)
                elif command["op"] == "drain":
                    emit({"event": "drained", "left": await self.drain()})
                elif command["op"] == "close":
                    for holder in holders:
                        holder.cancel()
                    await self.machine.close()
                    self.store.close()
                    emit({"event": "closed"})
                    return 0
        finally:
            for holder in holders:
                holder.cancel()


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    try:
        with open(spec["run_log"], "a", encoding="utf-8") as log:
            return asyncio.run(Worker(spec, log).serve())
    except Exception as exc:
        emit({"event": "error", "kind": getattr(exc, "kind", type(exc).__name__), "detail": str(exc)})
        return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
