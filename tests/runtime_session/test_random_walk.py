"""Seeded random walks over the public API (with store faults and crashes), checking the
session invariants of SPEC.md after every step."""

from __future__ import annotations

import random
from typing import Any

import pytest
from meerkat_runtime.session.executor import RunResult
from meerkat_runtime.session.inputs import HandlingMode, external_event
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.outcomes import Accepted
from meerkat_runtime.session.testing import Block, Cancel, Fail, ScriptedExecutor, Succeed
from meerkat_runtime.session.views import SessionView
from meerkat_runtime.store.faults import FaultInjectingStore
from meerkat_runtime.store.memory import InMemoryRuntimeStore, MemoryStorage
from meerkat_runtime.vocab.errors import MeerkatError
from meerkat_runtime.vocab.inputs import Durability
from meerkat_runtime.vocab.runtime import RuntimeState

from tests.runtime_session.helpers import SAME_WORKER, S, make_prompt, run, stored_rows

WRITES = ("persist_input_state", "commit_machine_lifecycle", "atomic_apply")


def check_invariants(view: SessionView) -> None:
    """SPEC.md input and runtime invariants, on one observation."""
    by_id = {v.input_id: v for v in view.inputs}
    assert len(by_id) == len(view.inputs)
    lanes = list(view.queue) + list(view.steer)
    assert len(lanes) == len(set(lanes)), "an input sits in a lane twice"
    queued = {i for i, v in by_id.items() if v.current_state is S.QUEUED}
    assert set(lanes) == queued, "lanes hold exactly the Queued inputs"
    for i in view.queue:
        assert by_id[i].lane == "queue"
    for i in view.steer:
        assert by_id[i].lane == "steer"
    staged = {i for i, v in by_id.items() if v.current_state in (S.STAGED, S.APPLIED, S.APPLIED_PENDING_CONSUMPTION)}
    assert staged <= set(view.current_run_inputs), "staged inputs belong to the current run"
    running = view.runtime_state is RuntimeState.RUNNING
    assert running == (view.current_run_id is not None) or (
        view.runtime_state is RuntimeState.RETIRED and view.current_run_id is not None
    )
    if view.current_run_id is not None:
        assert view.runtime_state in (RuntimeState.RUNNING, RuntimeState.RETIRED)
        assert view.pre_run_phase is not None
    keys: dict[str, str] = {}
    for v in view.inputs:
        assert v.current_state.is_terminal == (v.terminal_outcome is not None)
        assert v.attempts <= 3
        if v.idempotency_key is not None and not v.current_state.is_terminal:
            assert v.idempotency_key not in keys, "two active inputs share an idempotency key"
            keys[v.idempotency_key] = v.input_id


def assert_recovered(before: SessionView, after: SessionView) -> None:
    """Recovery gives back memory as it was, except that the run in flight is requeued at the
    head of its lane with its attempt not counted, and ephemeral inputs are gone."""
    kept = [v for v in before.inputs if v.durability is not Durability.EPHEMERAL]
    recovered = {v.input_id: v for v in after.inputs}
    assert set(recovered) == {v.input_id for v in kept}
    for v in kept:
        r = recovered[v.input_id]
        if v.input_id in before.current_run_inputs:
            assert (r.current_state, r.attempts) == (S.QUEUED, v.attempts - 1)
        else:
            same = (v.current_state, v.attempts, v.terminal_outcome)
            assert (r.current_state, r.attempts, r.terminal_outcome) == same
    ephemeral = {v.input_id for v in before.inputs} - set(recovered)
    run_lane = [recovered[i].lane for i in before.current_run_inputs if i in recovered]
    for lane in ("queue", "steer"):
        expected = [i for i in getattr(before, lane) if i not in ephemeral]
        if lane in run_lane:
            expected = [i for i in before.current_run_inputs if i in recovered] + expected
        assert list(getattr(after, lane)) == expected, f"{lane} lane order changed across the crash"
    phase = before.runtime_state
    if phase is RuntimeState.RUNNING:
        phase = before.pre_run_phase or RuntimeState.IDLE
    if phase is RuntimeState.ATTACHED:
        phase = RuntimeState.IDLE
    assert after.runtime_state is phase


class Walk:
    def __init__(self, rng: random.Random, persistent: bool) -> None:
        self.rng = rng
        self.storage = MemoryStorage()
        self.persistent = persistent
        self.store: FaultInjectingStore | None = None
        self.machine = self._machine()
        self.executor = ScriptedExecutor(default=Block())
        self.acked: set[str] = set()
        self.destroyed = False

    def _machine(self) -> MeerkatMachine:
        if not self.persistent:
            return MeerkatMachine.ephemeral()
        self.store = FaultInjectingStore(InMemoryRuntimeStore(self.storage))
        return MeerkatMachine.persistent(self.store, offload_store_calls=self.rng.random() < 0.5, ownership=SAME_WORKER)

    async def step(self) -> None:
        rng, m = self.rng, self.machine
        action = rng.choice(
            ["accept"] * 8
            + ["release"] * 6
            + ["attach"] * 3
            + ["crash"] * 2
            + ["interrupt", "retire", "reset", "recycle", "wake", "fault", "fault", "unregister"]
            + (["stop", "destroy"] if rng.random() < 0.08 else [])
        )
        try:
            if action == "accept":
                await self._accept()
            elif action == "release":
                if self.executor.parked():
                    outcomes: list[Succeed | Fail | Cancel] = [Succeed(RunResult("ok")), Succeed(), Fail(), Cancel()]
                    self.executor.release(rng.choice(outcomes))
            elif action == "attach":
                self.executor = ScriptedExecutor(default=Block())
                await m.ensure_session_with_executor("s", self.executor)
            elif action == "interrupt":
                await m.interrupt_current_run("s")
            elif action in ("retire", "reset", "recycle", "stop", "destroy"):
                await getattr(m, f"{action}_runtime")("s")
            elif action == "wake":
                await m.wake("s")
            elif action == "fault" and self.store is not None:
                self.store.fail_next(rng.choice(WRITES))
            elif action == "crash" and self.persistent:
                before = await m.session_view("s")
                await m.halt()
                self.machine = self._machine()
                await self._register()
                if not self.destroyed:
                    assert_recovered(before, await self.machine.session_view("s"))
            elif action == "unregister":
                await m.unregister_session("s")
                await self._register()
        except MeerkatError:
            pass
        if await self.machine.contains_session("s"):
            await self.machine.settle("s")
        if await self.machine.contains_session("s"):  # a terminal-snapshot failure unregisters it
            check_invariants(await self.machine.session_view("s"))
        else:
            await self._register()

    async def _register(self) -> None:
        try:
            await self.machine.register_session("s")
        except MeerkatError as exc:
            if exc.kind == "destroyed":
                self.destroyed = True
                return
            if self.store is not None:
                self.store.clear()
            await self.machine.register_session("s")
        if self.persistent:
            known = {v.input_id for v in await self.machine.input_states("s")}
            assert self.acked <= known, "an acknowledged durable input was lost"

    async def _accept(self) -> None:
        rng = self.rng
        key = rng.choice([None, None, "k1", "k2"])
        if rng.random() < 0.3:
            item: Any = external_event(
                "tick", supersession_key=rng.choice(["a", "b"]), coalesce=rng.random() < 0.5, idempotency_key=key
            )
        else:
            mode = HandlingMode.STEER if rng.random() < 0.25 else HandlingMode.QUEUE
            item = make_prompt(handling_mode=mode, idempotency_key=key)
        outcome = await self.machine.accept_input("s", item)
        if isinstance(outcome, Accepted) and self.store is not None:
            assert outcome.input_id in {r.input_id for r in stored_rows(self.store, "s")}
            if item.header.durability is Durability.DURABLE:
                self.acked.add(outcome.input_id)


@pytest.mark.parametrize("persistent", [False, True])
@pytest.mark.parametrize("seed", range(12))
def test_random_walk_keeps_the_invariants(seed: int, persistent: bool) -> None:
    async def body() -> None:
        walk = Walk(random.Random(seed * 2 + int(persistent)), persistent)
        await walk.machine.register_session("s")
        for _ in range(60):
            if walk.destroyed:
                break
            await walk.step()
        await walk.machine.halt()

    run(body())
