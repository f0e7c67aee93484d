"""``OwnershipAdapter``: two runtime workers on one SQLite file driven by ``OwnershipMachine``
actions.

Each worker is one ``MeerkatMachine`` (owner id ``w0`` / ``w1``, ownership on, renewal only when
the harness asks, every clock a shared ``ManualClock``) on its own event loop and its own store
handle of the same file, with a ``ScriptedExecutor`` whose runs park until the harness releases
them. How the model's actions are driven:

* ``ClaimRegister(w)`` — ``register_session``; ``Release(w)`` — ``unregister_session``;
  ``Renew(w)`` — ``renew_leases_now`` (outcome ``renewed`` or ``lost``);
* ``Expire()`` — the shared clock moves past the lease's end;
* ``CrashWorker(w)`` — worker ``w``'s process dies (its store handle switched off first, its
  event loop abandoned with every task) and a new process with the same owner id starts;
* ``On(w, inner)`` — the session call ``inner`` on worker ``w`` (``BeginAttach`` is
  ``ensure_session_with_executor``, which also finishes the attachment; executor outcomes
  release the parked run); runs the loop starts by itself are the model's ``On(w, StartRun())``;
* ``Ambiguous(w, inner, landed)`` — ``inner`` with its write failing with an unknown outcome,
  after it landed (``FaultInjectingStore(after_write=True)``) or without landing
  (``DroppingStore``), and every read of worker ``w``'s store failing, so the read-back cannot
  settle it: the session is in doubt. Reads keep failing until ``Reconcile(w)``;
* ``Reconcile(w)`` — reads work again and ``interrupt_current_run`` (no run is in flight after
  reconciling, so it changes nothing else) makes the session reconcile first; after an
  ``AmbiguousFinishOp`` it is the registry's ``cancel_wait_all`` (no barrier: it changes nothing
  else) that makes the registry read the store back first;
* ``AmbiguousFinishOp(w, op, outcome, landed)`` — ``FinishOp`` with its write failing as in
  ``Ambiguous`` (after landing, or without) and worker ``w``'s reads failing: the registry is in
  doubt until ``Reconcile(w)``;
* :class:`Reincarnate` ``(w)`` (a harness action: ``CrashWorker(w)`` then ``ClaimRegister(w)``) —
  a new process of worker ``w`` (the same owner id) registers the session while the old one
  lives on; the old process then tries to write (its run in flight ends, it accepts an input),
  and the store must refuse it (its token is stale), then it dies;
* ``RegisterOp(w, op)`` / ``FinishOp(w, op, outcome)`` — operation ``op<op>`` registered (and
  Running), completed or failed in worker ``w``'s ops registry
  (:mod:`meerkat_conformance.ownership.registry`); the observation then also compares the
  registry the store holds and each worker's.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, cast

from meerkat_model.action_record import action_record
from meerkat_model.machine import Rejected, Stepped
from meerkat_model.ownership.actions import (
    Ambiguous,
    AmbiguousFinishOp,
    ClaimRegister,
    CrashWorker,
    Expire,
    FinishOp,
    On,
    Reconcile,
    RegisterOp,
    Release,
    Renew,
)
from meerkat_model.ownership.machine import OwnershipMachine
from meerkat_model.session.actions import (
    Accept,
    AttachFailed,
    BeginAttach,
    Destroy,
    ExecutorFailed,
    ExecutorSucceeded,
    FinishAttach,
    Recycle,
    Reset,
    Retire,
    StartRun,
    Stop,
)
from meerkat_runtime.session.completion import CompletionHandle, LostOwnership
from meerkat_runtime.session.executor import RunResult
from meerkat_runtime.session.inputs import external_event, prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.outcomes import Accepted, Deduplicated
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.session.testing import Block, Fail, ScriptedExecutor, Succeed
from meerkat_runtime.store.clock import ManualClock
from meerkat_runtime.store.faults import READ_METHODS, WRITE_METHODS, FaultInjectingStore, FaultRule
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.errors import MeerkatError
from meerkat_runtime.vocab.ids import canonical_runtime_id

from meerkat_conformance.lockstep.adapter import StepKind
from meerkat_conformance.lockstep.outcome import Err, Ok, Outcome
from meerkat_conformance.ownership import registry
from meerkat_conformance.ownership.stores import DroppingStore
from meerkat_conformance.session.views import completion_text, runtime_input_id, session_observation, stored_view

T = TypeVar("T")

SESSION_ID = "ownership-session"
RUNTIME_ID = canonical_runtime_id(SESSION_ID)
LEASE_S = 10.0
_CONTROL = {
    Retire: "retire_runtime",
    Reset: "reset_runtime",
    Recycle: "recycle_runtime",
    Stop: "stop_runtime",
    Destroy: "destroy_runtime",
}
_RUN_ENDS = (ExecutorSucceeded, ExecutorFailed)
AUTONOMOUS = (StartRun, FinishAttach, AttachFailed)
"""Session steps a worker takes on its own (the harness never drives them)."""
STALE_PROBE_ID = "stale-incarnation-probe"
"""The input a process whose owner re-claimed the session from a new process tries to accept."""


@action_record("reincarnate")
class Reincarnate(NamedTuple):
    """A new process of worker ``w`` registers the session while the old one lives on and
    tries to write: the model's ``CrashWorker(w)`` then ``ClaimRegister(w)``."""

    w: int


def _error(exc: BaseException) -> Err:
    if isinstance(exc, MeerkatError):
        return Err(exc.kind, str(exc))
    return Err(f"exception:{type(exc).__name__}", str(exc))


def _handle_text(handle: CompletionHandle) -> str:
    outcome = handle.outcome() if handle.done() else None
    if outcome is None:
        return "pending"
    return "ownership_lost" if isinstance(outcome, LostOwnership) else completion_text(outcome)


class _Worker:
    """One worker process: an event loop, its store stack, the runtime and an executor."""

    def __init__(self, name: str, path: Path, clock: ManualClock) -> None:
        self.loop = asyncio.new_event_loop()
        self.file = SqliteRuntimeStore(path, synchronous="NORMAL", clock=clock)
        self.dropping = DroppingStore(self.file)
        self.store = FaultInjectingStore(cast(RuntimeStore, self.dropping))
        config = OwnershipConfig(owner_id=name, lease_s=LEASE_S, renew_every_s=None, clock=clock)
        # reattach off: the session model attaches a loop only through the attach actions this
        # harness drives; the machine's own re-attach after boundary_commit_failed would be a
        # step the model never took.
        self.runtime = MeerkatMachine.persistent(
            self.store, offload_store_calls=False, ownership=config, reattach=False
        )
        self.executor = ScriptedExecutor(default=Block())
        self.runs_seen = 0
        self.handles: dict[int, CompletionHandle] = {}
        self.unreadable: list[FaultRule] = []

    def run(self, awaitable: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await awaitable

        return self.loop.run_until_complete(wrapped())

    def settle(self) -> None:
        async def settle() -> None:
            if await self.runtime.contains_session(SESSION_ID):
                await self.runtime.settle(SESSION_ID)
            for _ in range(3):
                await asyncio.sleep(0)

        self.run(settle())

    def readable(self) -> None:
        for rule in self.unreadable:
            self.store.remove(rule)
        self.unreadable = []

    def die(self) -> None:
        """Abandon everything without a clean shutdown; nothing more reaches the file."""
        self.store.closed_mode = True
        tasks = asyncio.all_tasks(self.loop)
        for task in tasks:
            task.cancel()
        if tasks:
            self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self.loop.close()
        self.file.close()


class OwnershipAdapter:
    """Two workers on one SQLite file in a private temporary directory (removed by ``close``)."""

    def __init__(self, machine: OwnershipMachine) -> None:
        self.machine = machine
        self.directory = Path(tempfile.mkdtemp(prefix="meerkat-ownership-"))
        self.path = self.directory / "runtime.sqlite3"
        self.clock = ManualClock()
        self.observer = SqliteRuntimeStore(self.path, synchronous="NORMAL", clock=self.clock)
        self.workers = [_Worker(f"w{w}", self.path, self.clock) for w in range(machine.bounds.workers)]
        self.registry_in_doubt: set[int] = set()
        """Workers whose registry (not session) was left in doubt by ``AmbiguousFinishOp``."""

    # --- the adapter protocol -------------------------------------------------------------

    def model_actions(self, action: Hashable, model_state: Any) -> Sequence[Hashable]:
        """``On(w, BeginAttach())`` also finishes the attachment (one runtime call);
        ``Reincarnate(w)`` is a crash and a claim."""
        if isinstance(action, Reincarnate):
            return (CrashWorker(action.w), ClaimRegister(action.w))
        if isinstance(action, On) and type(action.inner) is BeginAttach:
            begin = self.machine.step(model_state, action)
            if isinstance(begin, Stepped) and begin.transition == "begin_attach":
                return (action, On(action.w, FinishAttach()))
        return (action,)

    def autonomous(self) -> Sequence[Hashable]:
        out: list[Hashable] = []
        for w, worker in enumerate(self.workers):
            started = len(worker.executor.applied) - worker.runs_seen
            worker.runs_seen = len(worker.executor.applied)
            out += [On(w, StartRun())] * started
        return out

    def overdue(self, model_state: Any) -> str | None:
        for w in range(len(self.workers)):
            if isinstance(self.machine.step(model_state, On(w, StartRun())), Stepped):
                return f"the model would start a run on worker {w} now, but its loop left the queued input waiting"
        return None

    def step_kind(self, action: Hashable) -> StepKind:
        if isinstance(action, CrashWorker | Reincarnate):
            return StepKind.CRASH
        if isinstance(action, Ambiguous | AmbiguousFinishOp | Expire):
            return StepKind.FAULT
        return StepKind.CALL

    def note(self, action: Hashable) -> str:
        match action:
            case CrashWorker(w):
                return f"worker {w}'s process dies"
            case Reincarnate(w):
                return f"a new process of worker {w} re-claims; the old one tries to write"
            case Expire():
                return "the clock passes the lease's end"
            case Ambiguous(w, _, landed) | AmbiguousFinishOp(w, _, _, landed):
                how = "after it landed" if landed else "without landing"
                return f"worker {w}'s write fails {how}, outcome unknown; its store cannot be read"
        return ""

    def fault_variants(self, action: Hashable) -> list[Hashable]:
        return []

    def expected(self, action: Hashable, result: Stepped[Any] | Rejected) -> Outcome:
        if isinstance(result, Rejected):
            return Err(result.kind, result.detail)
        if isinstance(action, On | Ambiguous) and isinstance(action.inner, _RUN_ENDS):
            return Ok(())  # the run ends inside the loop; what it did shows in the observations
        if isinstance(action, Renew):
            return Ok(("lost",) if result.transition == "renew_lost" else ("renewed",))
        first = result.outputs[0] if result.outputs else ()
        if first and first[0] == "error":
            return Err(str(first[1]), str(first[2]))
        if isinstance(action, On) and isinstance(action.inner, Accept):
            return Ok(tuple(item for item in result.outputs if item[0] in ("accepted", "deduplicated")))
        return Ok(())

    def execute(self, action: Hashable) -> Outcome:
        if isinstance(action, ClaimRegister | CrashWorker | Release | Reincarnate):
            self.registry_in_doubt.discard(action.w)
        match action:
            case Expire():
                self.clock.advance(LEASE_S + 1)
                return Ok(())
            case CrashWorker(w):
                return self._crash(w)
            case Reincarnate(w):
                return self._reincarnate(w)
            case Renew(w):
                worker = self.workers[w]
                lost = worker.run(worker.runtime.renew_leases_now())
                worker.settle()
                if lost:  # the session is detached; nothing is left in doubt
                    worker.readable()
                    self.registry_in_doubt.discard(w)
                return Ok(("lost",) if lost else ("renewed",))
            case Ambiguous(w, inner, landed):
                return self._ambiguous(w, bool(landed), lambda: self._session_call(w, inner))
            case AmbiguousFinishOp(w, op, outcome, landed):
                finished = self._ambiguous(w, bool(landed), lambda: self._finish(w, op, outcome))
                if isinstance(finished, Err) and finished.kind == "persistence_failed":
                    self.registry_in_doubt.add(w)
                return finished
            case Reconcile(w):
                self.workers[w].readable()
                if w in self.registry_in_doubt:
                    self.registry_in_doubt.discard(w)
                    return self._call(w, lambda worker: self._registry_call(worker, registry.read_back))
                return self._call(w, lambda worker: worker.runtime.interrupt_current_run(SESSION_ID))
            case ClaimRegister(w):
                self.workers[w].readable()
                return self._call(w, lambda worker: worker.runtime.register_session(SESSION_ID))
            case Release(w):
                self.workers[w].readable()
                return self._call(w, lambda worker: worker.runtime.unregister_session(SESSION_ID))
            case On(w, inner):
                return self._session_call(w, inner)
            case RegisterOp(w, op):
                return self._call(w, lambda worker: self._registry_call(worker, registry.register, SESSION_ID, op))
            case FinishOp(w, op, outcome):
                return self._finish(w, op, outcome)
        return Err("harness", f"the ownership harness does not know action {action!r}")

    def observe(self) -> Any:
        lease = self.observer.load_lease(RUNTIME_ID)
        lease_seen = None
        if lease is not None:
            owner = int(lease.owner[1:])
            lease_seen = {"owner": owner, "token": lease.token, "expired": lease.expired(self.clock())}
        stored = stored_view(self.observer, RUNTIME_ID)
        workers = []
        registries = []
        for worker in self.workers:
            seen = session_observation(worker.run(self._view(worker)), {}, stored)
            seen["waiters"] = {i: _handle_text(h) for i, h in worker.handles.items()}
            workers.append(seen)
            registries.append(worker.run(self._registry_view(worker)))
        stored_ops, next_seq = registry.stored_registry(self.observer, RUNTIME_ID)
        ops = {"stored": stored_ops, "next_seq": next_seq, "workers": registries}
        return {"lease": lease_seen, "workers": workers, "ops": ops}

    def model_view(self, model_state: Any) -> Any:
        seen = self.machine.observe(model_state)
        for worker in seen["workers"]:
            del worker["in_doubt"]  # not observable from outside the runtime
        return seen

    def close(self) -> None:
        for worker in self.workers:
            worker.die()
        self.observer.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    # --- calls ----------------------------------------------------------------------------

    @staticmethod
    async def _view(worker: _Worker) -> Any:
        runtime = worker.runtime
        if not await runtime.contains_session(SESSION_ID):
            return None
        return await runtime.session_view(SESSION_ID)

    @staticmethod
    async def _registry_view(worker: _Worker) -> Any:
        runtime = worker.runtime
        if not await runtime.contains_session(SESSION_ID):
            return None
        return registry.worker_registry(await runtime.ops_lifecycle_registry(SESSION_ID))

    @staticmethod
    async def _registry_call(worker: _Worker, call: Any, *args: Any) -> tuple[()]:
        call(await worker.runtime.ops_lifecycle_registry(SESSION_ID), *args)
        return ()

    def _crash(self, w: int) -> Outcome:
        worker = self.workers[w]
        if not worker.run(worker.runtime.contains_session(SESSION_ID)):
            return Err("session_not_found", "no registered session to crash (harness)")
        worker.die()
        self.workers[w] = _Worker(f"w{w}", self.path, self.clock)
        return Ok(())

    def _reincarnate(self, w: int) -> Outcome:
        """A new process of worker ``w`` registers the session; the old one, still alive, then
        tries to write. Its writes must not reach the store: what landed anyway is returned
        as an extra output (the model expects none)."""
        old = self.workers[w]
        if not old.run(old.runtime.contains_session(SESSION_ID)):
            return Err("session_not_found", "no registered session to re-claim (harness)")
        old.readable()
        new = _Worker(f"w{w}", self.path, self.clock)
        self.workers[w] = new
        outcome = self._call(w, lambda worker: worker.runtime.register_session(SESSION_ID))
        if isinstance(outcome, Err):
            old.die()
            return outcome
        before = stored_view(self.observer, RUNTIME_ID)
        if old.executor.parked():
            old.executor.release(Succeed())
        try:
            old.run(old.runtime.accept_input(SESSION_ID, prompt("from a stale process", input_id=STALE_PROBE_ID)))
            old.settle()
        except Exception:  # refused (ownership lost), or anything else: only the store matters
            pass
        after = stored_view(self.observer, RUNTIME_ID)
        old.die()
        return outcome if after == before else Ok((("stale_write_landed", repr(after)),))

    def _call(self, w: int, call: Any) -> Outcome:
        worker = self.workers[w]
        try:
            value = worker.run(call(worker))
        except Exception as exc:  # every runtime refusal, and anything unexpected, is compared
            worker.settle()
            return _error(exc)
        worker.settle()
        return Ok(value if isinstance(value, tuple) else ())

    def _finish(self, w: int, op: int, outcome: int) -> Outcome:
        return self._call(w, lambda worker: self._registry_call(worker, registry.finish, op, outcome))

    def _ambiguous(self, w: int, landed: bool, call: Callable[[], Outcome]) -> Outcome:
        worker = self.workers[w]
        store = worker.store
        armed = [store.fail_next(method, after_write=True) for method in sorted(WRITE_METHODS)] if landed else []
        worker.dropping.drop_writes = not landed
        worker.unreadable = [store.fail_always(method) for method in sorted(READ_METHODS)]
        try:
            outcome = call()
        finally:
            worker.dropping.drop_writes = False
            for rule in armed:
                store.remove(rule)
        if not (isinstance(outcome, Err) and outcome.kind in ("durable_write_failed", "persistence_failed")):
            worker.readable()  # refused for ownership: the session is detached, not in doubt
        return outcome

    def _session_call(self, w: int, inner: Any) -> Outcome:
        match inner:
            case BeginAttach():
                return self._call(
                    w, lambda worker: worker.runtime.ensure_session_with_executor(SESSION_ID, worker.executor)
                )
            case Accept(i, _, _, _, _, _):
                return self._call(w, lambda worker: self._accept(worker, i))
            case Retire() | Reset() | Recycle() | Stop() | Destroy():
                name = _CONTROL[type(inner)]
                return self._call(w, lambda worker: getattr(worker.runtime, name)(SESSION_ID))
            case ExecutorSucceeded(with_result):
                return self._release(w, Succeed(RunResult("done") if with_result else None))
            case ExecutorFailed():
                return self._release(w, Fail())
        return Err("harness", f"the ownership harness does not drive {inner!r}")

    async def _accept(self, worker: _Worker, i: int) -> tuple[Any, ...]:
        item = external_event("conformance", f"payload of input {i}", input_id=runtime_input_id(i))
        outcome, handle = await worker.runtime.accept_input_with_completion(SESSION_ID, item)
        if handle is not None and isinstance(outcome, Accepted):
            worker.handles[i] = handle
        if isinstance(outcome, Accepted):
            return (("accepted", i),)
        if isinstance(outcome, Deduplicated):
            return (("deduplicated", i),)
        return (("rejected", i),)

    def _release(self, w: int, outcome: Succeed | Fail) -> Outcome:
        worker = self.workers[w]
        if not worker.executor.parked():
            return Err("not_ready", "no run is in flight (nothing is parked in the executor)")
        worker.executor.release(outcome)
        worker.settle()
        return Ok(())
