"""Executors that break the protocol (a plain ``def apply``, an ``apply`` raising before it returns
an awaitable, an executor whose ``apply`` is gone): the events the runtime records are explained
by the session model's existing ``executor_failed`` / ``executor_failed_exhausted`` steps (the
same steps as an ``apply`` raising inside its coroutine), and a working executor attached after
an unregister runs the next input (``executor_succeeded``)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from meerkat_conformance.trace.check import check_trace
from meerkat_runtime.events.jsonl import EventLog
from meerkat_runtime.session.executor import CoreApplyOutput, RunControlCommand, RunPrimitive, success_output
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.ids import RunId

from tests.runtime_session.helpers import make_prompt


class _SyncApply:
    def apply(self, run_id: RunId, primitive: RunPrimitive) -> CoreApplyOutput:
        return success_output(primitive)

    async def control(self, command: RunControlCommand) -> None:
        return None


class _RaisesAtOnce:
    def apply(self, run_id: RunId, primitive: RunPrimitive) -> Any:
        raise RuntimeError("apply raised at once")

    async def control(self, command: RunControlCommand) -> None:
        return None


class _LosesApply:
    def __init__(self) -> None:
        self.apply = self._apply
        self.control = self._control

    async def _apply(self, run_id: RunId, primitive: RunPrimitive) -> CoreApplyOutput:
        return success_output(primitive)

    async def _control(self, command: RunControlCommand) -> None:
        return None


def _record(directory: Path) -> None:
    async def body() -> None:
        store = SqliteRuntimeStore(directory.parent / "broken.sqlite")
        log = EventLog(directory)
        m = MeerkatMachine.persistent(store)
        m.events.subscribe(log)
        broken: tuple[Any, ...] = (_SyncApply(), _RaisesAtOnce(), _LosesApply())
        for n, executor in enumerate(broken):
            await m.register_session_with_executor("s", executor)
            if isinstance(executor, _LosesApply):
                del executor.apply
            await m.accept_input("s", make_prompt(f"broken {n}", input_id=f"in-{n}"))
            await m.settle("s")
            await m.unregister_session("s")
        await m.register_session_with_executor("s", ScriptedExecutor())
        await m.accept_input("s", make_prompt("good", input_id="in-good"))
        await m.settle("s")
        await m.close()
        log.close()
        store.close()

    asyncio.run(body())


def test_broken_executors_fail_runs_through_the_models_executor_failed_steps(tmp_path: Path) -> None:
    directory = tmp_path / "trace"
    _record(directory)
    verdict = check_trace([directory])
    assert verdict.ok, verdict.rejection
    assert verdict.rules.get("executor_failed") == 6  # two retried attempts per broken executor
    assert verdict.rules.get("executor_failed_exhausted") == 3  # the third attempt abandons
    assert verdict.rules.get("executor_succeeded") == 1
    assert verdict.rules.get("start_run") == 10
