"""A subscriber raising anything — a ``BaseException`` that is not an ``Exception`` too
(``SystemExit`` from ``sys.exit`` in a handler, ``KeyboardInterrupt``, an application's
subclass) — is logged and counted; the transition it was told about has committed and its
follow-up happens all the same: the accepted input runs, the started run is applied, the
finished run's waiter resolves. Checked on a SQLite file, memory against a new machine's read."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from meerkat_runtime.events.event import LifecycleEvent
from meerkat_runtime.session.completion import CompletedWithoutResult
from meerkat_runtime.session.executor import CoreApplyOutput, RunPrimitive, RunResult, success_output
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.vocab.inputs import InputLifecycleState
from meerkat_runtime.vocab.runtime import RuntimeState

from tests.runtime_session.helpers import SAME_WORKER, make_prompt, reopened, run, snapshot


class AppBase(BaseException):
    """An application's ``BaseException`` subclass."""


ERRORS = [AppBase, SystemExit, KeyboardInterrupt]


class RaisesOnce:
    """Raises ``error`` at the first event named ``rule``."""

    def __init__(self, rule: str, error: type[BaseException]) -> None:
        self.rule = rule
        self.error = error
        self.raised = 0

    def __call__(self, event: LifecycleEvent) -> None:
        if event.rule == self.rule and not self.raised:
            self.raised += 1
            raise self.error(f"subscriber raised at {event.rule}")


@pytest.mark.parametrize("error", ERRORS)
@pytest.mark.parametrize("rule", ["accept", "start_run", "executor_succeeded"])
def test_a_subscriber_raising_a_base_exception_neither_reaches_the_runtime_nor_strands_the_input(
    tmp_path: Path, rule: str, error: type[BaseException], caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "runtime.sqlite"

    async def body() -> None:
        machine = MeerkatMachine.persistent(path, ownership=SAME_WORKER)
        subscriber = RaisesOnce(rule, error)
        machine.events.subscribe(subscriber)
        await machine.register_session_with_executor("s", ScriptedExecutor())
        _, first = await machine.accept_input_with_completion("s", make_prompt("first"))
        assert first is not None
        assert await first.wait() == CompletedWithoutResult()
        _, second = await machine.accept_input_with_completion("s", make_prompt("second"))
        assert second is not None
        assert await second.wait() == CompletedWithoutResult()
        assert subscriber.raised == 1
        assert machine.events.delivery_errors == 1
        assert await machine.runtime_state("s") is RuntimeState.ATTACHED
        memory = await snapshot(machine)
        assert [(state, attempts) for _, state, attempts in memory] == [(InputLifecycleState.CONSUMED, 1)] * 2
        await machine.close()
        assert await reopened(path) == memory

    with caplog.at_level(logging.ERROR, logger="meerkat_runtime.events"):
        run(body())
    assert any(f"failed on {rule}" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("error", ERRORS)
def test_a_subscriber_raising_a_base_exception_at_a_direct_runs_end_does_not_reach_its_caller(
    tmp_path: Path, error: type[BaseException]
) -> None:
    path = tmp_path / "runtime.sqlite"

    async def op(run_id: str, primitive: RunPrimitive) -> tuple[str, CoreApplyOutput]:
        return "value", success_output(primitive, RunResult("ok"))

    async def body() -> None:
        machine = MeerkatMachine.persistent(path, ownership=SAME_WORKER)
        machine.events.subscribe(RaisesOnce("executor_succeeded_without_loop", error))
        await machine.register_session("s")
        assert await machine.accept_input_and_run("s", make_prompt(), op) == "value"
        assert await machine.runtime_state("s") is RuntimeState.IDLE
        assert await machine.accept_input_and_run("s", make_prompt("again"), op) == "value"
        memory = await snapshot(machine)
        await machine.close()
        assert [(state, attempts) for _, state, attempts in memory] == [(InputLifecycleState.CONSUMED, 1)] * 2
        assert await reopened(path) == memory

    run(body())
