"""Errors the application's code raises in unusual forms, and defects in a run's end.

* An executor (or ``op``) error whose ``__str__`` raises is described by its ``repr`` (and if
  that raises too, by a fixed text): the run fails as any executor error does (retried, then
  abandoned) and the loop lives on.
* An ``op`` of ``accept_input_and_run`` raising a ``BaseException`` that is not an ``Exception``
  (``GeneratorExit``, an application's subclass) fails the run (committed: the input requeued)
  and reaches the caller; the session is Idle again.
* Something unexpected escaping the end of a loop's run (here a retry predicate that raises)
  fails the run with that error; should ending it raise again the run is dropped (a persistent
  session reconciles with the store, an ephemeral one puts the input back as before the run) and
  the loop is detached: the session is never left Running with nobody to end the run.

Each test runs on a SQLite file and compares memory with what a new machine reads back.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from meerkat_runtime.events.jsonl import EventLog
from meerkat_runtime.session.completion import Abandoned, Completed, RunFailure
from meerkat_runtime.session.executor import (
    CoreApplyOutput,
    RunControlCommand,
    RunPrimitive,
    RunResult,
    success_output,
)
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.retry import RetryPolicy
from meerkat_runtime.vocab.errors import NotReady
from meerkat_runtime.vocab.ids import RunId
from meerkat_runtime.vocab.runtime import RegistrationPhase, RuntimeState

from tests.runtime_session.helpers import SAME_WORKER, S, make_prompt, reopened, replays, run, snapshot


class BadStr(Exception):
    """An error whose ``__str__`` raises."""

    def __str__(self) -> str:
        raise RuntimeError("str boom")


class Undescribable(Exception):
    """An error whose ``__str__`` and ``__repr__`` both raise."""

    def __str__(self) -> str:
        raise RuntimeError("str boom")

    def __repr__(self) -> str:
        raise RuntimeError("repr boom")


class AppBase(BaseException):
    """An application's ``BaseException`` subclass (not an ``Exception``)."""


class FailsFirst:
    """``apply`` raises ``error`` on its first ``failures`` calls, then succeeds."""

    def __init__(self, error: BaseException, failures: int = 1) -> None:
        self.error = error
        self.failures = failures
        self.calls = 0

    async def apply(self, run_id: RunId, primitive: RunPrimitive) -> CoreApplyOutput:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return success_output(primitive, RunResult("ok"))

    async def control(self, command: RunControlCommand) -> None:
        return None


def test_an_error_is_described_by_its_repr_when_its_str_raises_and_by_a_fixed_text_when_both_raise() -> None:
    from meerkat_runtime.vocab.errors import UNDESCRIBABLE

    assert RunFailure.of(BadStr()) == RunFailure("BadStr", "BadStr()")
    assert RunFailure.of(Undescribable()) == RunFailure("Undescribable", UNDESCRIBABLE)


class Interrupting(BaseException):
    """Raised by an error's ``__str__`` and ``__repr__`` below: not an ``Exception``."""


class RaisesBaseOnStr(Exception):
    def __str__(self) -> str:
        raise Interrupting("str")

    def __repr__(self) -> str:
        raise Interrupting("repr")


def test_an_error_whose_str_and_repr_raise_a_base_exception_is_still_described() -> None:
    from meerkat_runtime.vocab.errors import UNDESCRIBABLE

    assert RunFailure.of(RaisesBaseOnStr()) == RunFailure("RaisesBaseOnStr", UNDESCRIBABLE)


def test_a_direct_run_whose_error_cannot_be_described_fails_and_the_caller_gets_that_error(tmp_path: Path) -> None:
    async def body() -> None:
        machine = MeerkatMachine.persistent(tmp_path / "runtime.sqlite", ownership=SAME_WORKER)
        await machine.register_session("s")
        with pytest.raises(RaisesBaseOnStr):
            await machine.accept_input_and_run("s", make_prompt(), _raising_op(RaisesBaseOnStr()))
        assert [(state, attempts) for _, state, attempts in await snapshot(machine)] == [(S.QUEUED, 1)]
        await machine.close()

    run(body())


def test_a_backoff_that_would_overflow_waits_its_cap_and_the_loop_lives_on() -> None:
    """``multiplier ** attempt`` past any float (a valid policy: a large multiplier, or many
    attempts) raised ``OverflowError`` out of the loop, which stranded the session's inputs."""
    huge = RetryPolicy(max_attempts=5, backoff_s=0.001, multiplier=1e200, max_backoff_s=0.01)
    assert huge.delay(3) == 0.01
    assert RetryPolicy(max_attempts=2000, backoff_s=0.001, multiplier=2, max_backoff_s=0.01).delay(1025) == 0.01

    async def body() -> None:
        async with MeerkatMachine.ephemeral(retry=huge) as machine:
            await machine.register_session_with_executor("s", FailsFirst(ValueError("apply failed"), failures=3))
            _, handle = await machine.accept_input_with_completion("s", make_prompt())
            assert handle is not None
            assert await asyncio.wait_for(handle.wait(), 30) == Completed(RunResult("ok"))

    run(body())


@pytest.mark.parametrize("error_type", [BadStr, Undescribable])
def test_an_executor_error_whose_str_raises_fails_the_run_and_the_loop_lives_on(
    tmp_path: Path, error_type: type[Exception]
) -> None:
    path = tmp_path / "runtime.sqlite"

    async def body() -> None:
        machine = MeerkatMachine.persistent(path, ownership=SAME_WORKER)
        executor = FailsFirst(error_type())
        await machine.register_session_with_executor("s", executor)
        _, handle = await machine.accept_input_with_completion("s", make_prompt("first"))
        assert handle is not None
        assert await handle.wait() == Completed(RunResult("ok"))
        assert executor.calls == 2
        assert await machine.runtime_state("s") is RuntimeState.ATTACHED
        (view,) = await machine.input_states("s")
        failures = [h.reason for h in view.history if "failed" in h.reason]
        assert failures, view.history
        _, second = await machine.accept_input_with_completion("s", make_prompt("second"))
        assert second is not None
        assert await second.wait() == Completed(RunResult("ok"))
        memory = await snapshot(machine)
        assert [(state, attempts) for _, state, attempts in memory] == [(S.CONSUMED, 2), (S.CONSUMED, 1)]
        await machine.close()
        assert await reopened(path) == memory

    run(body())


def test_an_executor_error_whose_str_raises_abandons_the_input_after_its_attempts_with_its_repr(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runtime.sqlite"

    async def body() -> None:
        machine = MeerkatMachine.persistent(path, ownership=SAME_WORKER)
        await machine.register_session_with_executor("s", FailsFirst(BadStr(), failures=3))
        _, handle = await machine.accept_input_with_completion("s", make_prompt())
        assert handle is not None
        outcome = await handle.wait()
        assert isinstance(outcome, Abandoned) and outcome.error == RunFailure("BadStr", "BadStr()")
        memory = await snapshot(machine)
        await machine.close()
        assert [(state, attempts) for _, state, attempts in memory] == [(S.ABANDONED, 3)]
        assert await reopened(path) == memory

    run(body())


def _raising_op(error: BaseException) -> Any:
    async def op(run_id: str, primitive: RunPrimitive) -> tuple[str, CoreApplyOutput]:
        raise error

    return op


async def _ok(run_id: str, primitive: RunPrimitive) -> tuple[str, CoreApplyOutput]:
    return "v", success_output(primitive, RunResult("ok"))


@pytest.mark.parametrize("make_error", [BadStr, GeneratorExit, lambda: AppBase("x")])
def test_a_direct_run_whose_op_raises_an_unusual_error_fails_the_run_and_the_caller_gets_that_error(
    tmp_path: Path, make_error: Any
) -> None:
    path = tmp_path / "runtime.sqlite"

    async def body() -> None:
        machine = MeerkatMachine.persistent(path, ownership=SAME_WORKER)
        await machine.register_session("s")
        error = make_error()
        # the call runs as a task of its own, whose error is read rather than thrown into this
        # coroutine (asyncio throws a task's error into its awaiter, and a GeneratorExit thrown
        # through an await closes the awaiting coroutines instead)
        call = asyncio.ensure_future(machine.accept_input_and_run("s", make_prompt(), _raising_op(error)))
        await asyncio.wait({call})
        assert isinstance(call.exception(), type(error))
        assert await machine.runtime_state("s") is RuntimeState.IDLE
        memory = await snapshot(machine)
        assert [(state, attempts) for _, state, attempts in memory] == [(S.QUEUED, 1)]
        (view,) = await machine.input_states("s")
        assert view.last_error is not None and view.last_error.error_type == type(error).__name__
        with pytest.raises(NotReady, match="queued input"):  # the requeued input runs first
            await machine.accept_input_and_run("s", make_prompt("again"), _ok)
        await machine.close()
        assert await reopened(path) == memory
        async with MeerkatMachine.persistent(path, ownership=SAME_WORKER) as again:
            await again.register_session_with_executor("s", FailsFirst(RuntimeError("unused"), failures=0))
            await again.settle("s")
            assert [(state, attempts) for _, state, attempts in await snapshot(again)] == [(S.CONSUMED, 2)]

    run(body())


class EndDefect(BaseException):
    """Stands for a defect in a run's end: not an ``Exception``, so the retry policy's guard
    around its predicate (which logs an ``Exception`` and retries) lets it through."""


class RaisingPredicate:
    """A retry predicate that raises ``EndDefect`` on its first ``failures`` calls (a defect in
    the run's end)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self, error: BaseException) -> bool:
        self.calls += 1
        if self.calls <= self.failures:
            raise EndDefect(f"predicate broke on call {self.calls}")
        return True


def test_a_defect_in_a_loop_runs_end_fails_the_run_with_that_error_and_the_loop_lives_on(tmp_path: Path) -> None:
    path = tmp_path / "runtime.sqlite"

    async def body() -> None:
        predicate = RaisingPredicate(failures=1)
        machine = MeerkatMachine.persistent(path, ownership=SAME_WORKER, retry=RetryPolicy(retryable=predicate))
        log = EventLog(tmp_path / "events")
        machine.events.subscribe(log)
        await machine.register_session_with_executor("s", FailsFirst(ValueError("apply failed")))
        _, handle = await machine.accept_input_with_completion("s", make_prompt())
        assert handle is not None
        assert await handle.wait() == Completed(RunResult("ok"))
        assert await machine.runtime_state("s") is RuntimeState.ATTACHED
        (view,) = await machine.input_states("s")
        assert any("failed" in h.reason for h in view.history)
        assert predicate.calls == 2  # the end of the first attempt, then its failure with that error
        memory = await snapshot(machine)
        assert [(state, attempts) for _, state, attempts in memory] == [(S.CONSUMED, 2)]
        await machine.close()
        log.close()
        assert await reopened(path) == memory

    run(body())
    replays(tmp_path / "events", "executor_failed", "executor_succeeded")


async def _stranded(machine: MeerkatMachine) -> None:
    """The loop's run cannot be ended (the predicate always raises): the run is dropped and the
    loop detached; the session is not Running; a fresh executor attached then runs the input."""
    await machine.register_session_with_executor("s", FailsFirst(ValueError("apply failed"), failures=99))
    _, handle = await machine.accept_input_with_completion("s", make_prompt())
    assert handle is not None
    while await machine.registration_phase("s") is not RegistrationPhase.QUEUING:
        await asyncio.sleep(0.01)
    await machine.settle("s")
    assert await machine.runtime_state("s") is RuntimeState.IDLE
    assert isinstance(await machine.last_error("s"), EndDefect)
    assert [(state, attempts) for _, state, attempts in await snapshot(machine)] == [(S.QUEUED, 0)]
    assert not handle.done()
    assert await machine.ensure_session_with_executor("s", FailsFirst(ValueError("unused"), failures=0))
    assert await handle.wait() == Completed(RunResult("ok"))


def test_a_run_whose_end_keeps_failing_is_dropped_as_the_store_holds_it_and_the_loop_detached(tmp_path: Path) -> None:
    path = tmp_path / "runtime.sqlite"

    async def body() -> None:
        retry = RetryPolicy(retryable=RaisingPredicate(failures=1_000))
        machine = MeerkatMachine.persistent(path, ownership=SAME_WORKER, retry=retry)
        log = EventLog(tmp_path / "events")
        machine.events.subscribe(log)
        await _stranded(machine)
        memory = await snapshot(machine)
        assert [(state, attempts) for _, state, attempts in memory] == [(S.CONSUMED, 1)]
        await machine.close()
        log.close()
        assert await reopened(path) == memory

    run(body())
    replays(tmp_path / "events", "reconcile", "executor_succeeded")


def test_an_ephemeral_run_whose_end_keeps_failing_goes_back_to_its_lane_and_the_loop_detached(tmp_path: Path) -> None:
    async def body() -> None:
        retry = RetryPolicy(retryable=RaisingPredicate(failures=1_000))
        async with MeerkatMachine.ephemeral(retry=retry) as machine:
            log = EventLog(tmp_path / "events")
            machine.events.subscribe(log)
            await _stranded(machine)
        log.close()

    run(body())
    replays(tmp_path / "events", "boundary_commit_failed", "executor_succeeded")


def test_a_direct_run_whose_end_cannot_be_committed_is_dropped_and_the_session_is_idle_again(tmp_path: Path) -> None:
    path = tmp_path / "runtime.sqlite"

    async def body() -> None:
        retry = RetryPolicy(retryable=RaisingPredicate(failures=1_000))
        machine = MeerkatMachine.persistent(path, ownership=SAME_WORKER, retry=retry)
        log = EventLog(tmp_path / "events")
        machine.events.subscribe(log)
        await machine.register_session("s")
        with pytest.raises(EndDefect):
            await machine.accept_input_and_run("s", make_prompt(), _raising_op(ValueError("op failed")))
        assert await machine.runtime_state("s") is RuntimeState.IDLE
        memory = await snapshot(machine)
        assert [(state, attempts) for _, state, attempts in memory] == [(S.QUEUED, 0)]
        await machine.close()
        log.close()
        assert await reopened(path) == memory

    run(body())
    replays(tmp_path / "events", "boundary_commit_failed", "reconcile")


def test_a_retry_predicate_that_raises_is_logged_and_the_error_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An ``Exception`` from the application's predicate is not a defect of the run's end: the
    error counts as retryable and the next attempt runs."""

    def predicate(error: BaseException) -> bool:
        raise LookupError("the predicate is broken")

    async def body() -> None:
        machine = MeerkatMachine.persistent(
            tmp_path / "runtime.sqlite", ownership=SAME_WORKER, retry=RetryPolicy(retryable=predicate)
        )
        await machine.register_session_with_executor("s", FailsFirst(ValueError("apply failed")))
        _, handle = await machine.accept_input_with_completion("s", make_prompt())
        assert handle is not None
        assert await handle.wait() == Completed(RunResult("ok"))
        assert [(state, attempts) for _, state, attempts in await snapshot(machine)] == [(S.CONSUMED, 2)]
        assert await machine.runtime_state("s") is RuntimeState.ATTACHED
        await machine.close()

    run(body())
    assert "retryable predicate raised" in caplog.text
