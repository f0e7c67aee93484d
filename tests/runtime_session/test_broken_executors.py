"""Executors that break the executor protocol: a plain ``def apply`` (returns a value, not an
awaitable), an ``apply`` that raises before returning an awaitable, an executor without
``apply``. Each call to ``apply`` fails the run like an error the apply raised (the model's
``executor_failed``: retried, then abandoned after the 3rd attempt); the loop lives on and later
inputs run. An executor without a callable ``apply`` or ``control`` is refused when it is
attached (``ExecutorStartFailed``, the model's ``attach_failed``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from meerkat_runtime.session import persistence
from meerkat_runtime.session.completion import Abandoned, Completed, RunFailure
from meerkat_runtime.session.executor import (
    CoreApplyOutput,
    CoreExecutor,
    ExecutorError,
    RunControlCommand,
    RunPrimitive,
    RunResult,
    success_output,
)
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.testing import ScriptedExecutor, Succeed
from meerkat_runtime.vocab.errors import ExecutorStartFailed
from meerkat_runtime.vocab.ids import RunId, canonical_runtime_id
from meerkat_runtime.vocab.runtime import RegistrationPhase, RuntimeState

from tests.runtime_session.helpers import S, make_prompt, persistent, run, view_of


class _SyncApply:
    """``apply`` is a plain function: it returns the output itself, not an awaitable."""

    def __init__(self) -> None:
        self.calls = 0

    def apply(self, run_id: RunId, primitive: RunPrimitive) -> CoreApplyOutput:
        self.calls += 1
        return success_output(primitive, RunResult("x"))

    async def control(self, command: RunControlCommand) -> None:
        return None


class _RaisesAtOnce:
    """``apply`` raises before it returns an awaitable (a plain function that raises)."""

    def __init__(self) -> None:
        self.calls = 0

    def apply(self, run_id: RunId, primitive: RunPrimitive) -> Any:
        self.calls += 1
        raise RuntimeError("apply raised at once")

    async def control(self, command: RunControlCommand) -> None:
        return None


class _RecordsItsTask(_RaisesAtOnce):
    """Like ``_RaisesAtOnce``, noting the task each call to ``apply`` runs in."""

    def __init__(self) -> None:
        super().__init__()
        self.tasks: list[asyncio.Task[Any] | None] = []

    def apply(self, run_id: RunId, primitive: RunPrimitive) -> Any:
        self.tasks.append(asyncio.current_task())
        return super().apply(run_id, primitive)


class _LosesApply:
    """Attached with ``apply`` and ``control``; ``apply`` is then taken away (``del``)."""

    def __init__(self) -> None:
        self.calls = 0
        self.apply = self._apply
        self.control = self._control

    async def _apply(self, run_id: RunId, primitive: RunPrimitive) -> CoreApplyOutput:
        self.calls += 1
        return success_output(primitive)

    async def _control(self, command: RunControlCommand) -> None:
        return None


async def _fails_every_run_and_lives_on(m: MeerkatMachine, calls: Callable[[], int]) -> RunFailure:
    """Two inputs: each is tried 3 times and abandoned (its waiter resolved); the loop is still
    attached and idle afterwards, with nothing in flight. Returns the failure stored with the
    second input."""
    failure = None
    for text in ("first", "second"):
        item = make_prompt(text)
        _, handle = await m.accept_input_with_completion("s", item)
        assert handle is not None
        await m.settle("s")
        assert handle.done(), "the waiter must resolve: the loop must not die"
        assert await handle.wait() == Abandoned("max_attempts_exhausted")
        view = await view_of(m, item)
        assert view.current_state is S.ABANDONED and view.attempts == 3
        failure = view.last_error
    assert calls() == 6
    assert await m.executor_ready("s")
    assert await m.runtime_state("s") is RuntimeState.ATTACHED
    assert await m.registration_phase("s") is RegistrationPhase.ACTIVE
    assert await m.list_active_inputs("s") == []
    assert failure is not None
    return failure


async def _a_good_executor_runs_the_next_input(m: MeerkatMachine) -> None:
    """The session taken back with a working executor: the next input is consumed."""
    await m.unregister_session("s")
    good = ScriptedExecutor(default=Succeed(RunResult("ok")))
    assert await m.register_session_with_executor("s", good)
    item = make_prompt("after")
    _, handle = await m.accept_input_with_completion("s", item)
    assert handle is not None
    await m.settle("s")
    assert handle.done() and await handle.wait() == Completed(RunResult("ok"))


def test_a_plain_def_apply_fails_each_run_and_the_loop_lives_on() -> None:
    async def body() -> None:
        m, _ = persistent()
        executor: Any = _SyncApply()
        assert await m.register_session_with_executor("s", executor)
        failure = await _fails_every_run_and_lives_on(m, lambda: executor.calls)
        assert failure == RunFailure("TypeError", "_SyncApply.apply returned CoreApplyOutput, not an awaitable")
        await _a_good_executor_runs_the_next_input(m)

    run(body())


def test_every_call_to_apply_runs_in_the_apply_task_not_the_loop_task() -> None:
    """One path for every apply: a plain ``def apply`` is called inside the apply task (the one an
    interrupt cancels), as an ``async def apply`` is, never in the loop task itself."""

    async def body() -> None:
        m, _ = persistent()
        executor: Any = _RecordsItsTask()
        assert await m.register_session_with_executor("s", executor)
        loop_task = m._sessions[canonical_runtime_id("s")].loop_task
        _, handle = await m.accept_input_with_completion("s", make_prompt())
        assert handle is not None
        await m.settle("s")
        assert len(executor.tasks) == 3 and loop_task is not None
        assert all(task is not None and task is not loop_task for task in executor.tasks)
        assert len(set(executor.tasks)) == 3  # a task of its own for each attempt

    run(body())


def test_an_apply_raising_before_it_returns_an_awaitable_fails_each_run() -> None:
    async def body() -> None:
        m, _ = persistent()
        executor: Any = _RaisesAtOnce()
        assert await m.register_session_with_executor("s", executor)
        failure = await _fails_every_run_and_lives_on(m, lambda: executor.calls)
        assert failure == RunFailure("RuntimeError", "apply raised at once")
        await _a_good_executor_runs_the_next_input(m)

    run(body())


def test_an_executor_that_lost_its_apply_fails_each_run() -> None:
    async def body() -> None:
        m, _ = persistent()
        executor = _LosesApply()
        assert await m.register_session_with_executor("s", executor)
        del executor.apply
        failure = await _fails_every_run_and_lives_on(m, lambda: 6)
        assert executor.calls == 0
        assert failure.error_type == "AttributeError" and "apply" in failure.message
        await _a_good_executor_runs_the_next_input(m)

    run(body())


@pytest.mark.parametrize("missing", ["apply", "control", "both"])
def test_an_executor_without_a_callable_apply_or_control_is_refused_when_attached(missing: str) -> None:
    class Partial:
        pass

    partial: Any = Partial()
    if missing == "apply":
        partial.control = _SyncApply().control
    if missing == "control":
        partial.apply = _SyncApply().apply
        partial.control = "not callable"

    async def body() -> None:
        m, _ = persistent()
        with pytest.raises(ExecutorStartFailed) as refused:
            await m.register_session_with_executor("s", partial)
        cause = refused.value.cause
        assert isinstance(cause, TypeError)
        assert ("apply" if missing != "control" else "control") in str(cause)
        assert await m.registration_phase("s") is RegistrationPhase.QUEUING
        assert not await m.executor_ready("s")
        item = make_prompt("queued")
        _, handle = await m.accept_input_with_completion("s", item)  # queues, as before the call
        assert handle is not None and not handle.done()
        good: CoreExecutor = ScriptedExecutor(default=Succeed(RunResult("ok")))
        assert await m.ensure_session_with_executor("s", good)
        await m.settle("s")
        assert handle.done() and await handle.wait() == Completed(RunResult("ok"))

    run(body())


def _op_raising_at_once(run_id: str, primitive: RunPrimitive) -> Any:
    raise RuntimeError("op raised at once")


def _plain_def_op(run_id: str, primitive: RunPrimitive) -> Any:
    return "value", success_output(primitive)


@pytest.mark.parametrize(
    ("op", "error"), [(_op_raising_at_once, RuntimeError), (_plain_def_op, TypeError)], ids=["raises", "plain def"]
)
def test_an_accept_and_run_op_that_fails_before_returning_an_awaitable_fails_its_run(
    op: Callable[[str, RunPrimitive], Any], error: type[Exception]
) -> None:
    """As an ``op`` raising inside its coroutine: the caller gets the error, the input is Queued
    again (attempt 1), the runtime Idle; a loop attached afterwards consumes it. (It used to leave
    the runtime Running with the input Staged for ever.)"""

    async def body() -> None:
        m, _ = persistent()
        await m.register_session("s")
        item = make_prompt("direct")
        with pytest.raises(error):
            await m.accept_input_and_run("s", item, op)
        assert await m.runtime_state("s") is RuntimeState.IDLE
        view = await view_of(m, item)
        assert view.current_state is S.QUEUED and view.attempts == 1
        good = ScriptedExecutor(default=Succeed(RunResult("ok")))
        assert await m.ensure_session_with_executor("s", good)
        await m.settle("s")
        assert (await view_of(m, item)).current_state is S.CONSUMED

    run(body())


class _ReturnsTooMuch:
    """Returns a well-formed output whose result is too large for the input's row."""

    def __init__(self, text: str) -> None:
        self.calls = 0
        self.text = text

    async def apply(self, run_id: RunId, primitive: RunPrimitive) -> CoreApplyOutput:
        self.calls += 1
        return success_output(primitive, RunResult(self.text))

    async def control(self, command: RunControlCommand) -> None:
        return None


ROW_LIMIT = 64 * 1024
"""The row size limit these tests use instead of ``MAX_JSON_BYTES`` (64 MiB), so that a result
too large for its row is small enough to build quickly."""


def test_a_result_too_large_for_its_row_fails_each_run_and_the_loop_lives_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad output known before anything is written: each run fails as an executor failure
    (``executor_failed``: the attempt counted, abandoned after the 3rd with the error stored,
    the waiter resolved), never as a failed boundary commit (which would detach the loop and
    leave the waiter pending with the attempt not counted)."""
    monkeypatch.setattr(persistence, "MAX_JSON_BYTES", ROW_LIMIT)

    async def body() -> None:
        m, _ = persistent()
        executor = _ReturnsTooMuch("x" * ROW_LIMIT)
        assert await m.register_session_with_executor("s", executor)
        failure = await _fails_every_run_and_lives_on(m, lambda: executor.calls)
        assert failure.error_type == "ExecutorError", failure
        assert "cannot be stored" in failure.message and f"over the limit of {ROW_LIMIT} bytes" in failure.message
        assert await m.last_error("s") is None  # no failed boundary commit
        await _a_good_executor_runs_the_next_input(m)

    run(body())


def test_an_accept_and_run_op_whose_result_is_too_large_fails_its_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same for ``accept_input_and_run``: the caller gets the ``ExecutorError``, the input is
    Queued again with the attempt counted, the runtime Idle."""
    monkeypatch.setattr(persistence, "MAX_JSON_BYTES", ROW_LIMIT)

    async def op(run_id: str, primitive: RunPrimitive) -> tuple[str, CoreApplyOutput]:
        return "value", success_output(primitive, RunResult("x" * ROW_LIMIT))

    async def body() -> None:
        m, _ = persistent()
        await m.register_session("s")
        item = make_prompt("direct")
        with pytest.raises(ExecutorError, match="cannot be stored"):
            await m.accept_input_and_run("s", item, op)
        assert await m.runtime_state("s") is RuntimeState.IDLE
        view = await view_of(m, item)
        assert view.current_state is S.QUEUED and view.attempts == 1

    run(body())


def test_a_result_that_fits_is_not_encoded_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rows are encoded before the boundary commit only when the result could make one too
    large: an ordinary result is checked by its length alone."""
    checked: list[object] = []
    too_large = persistence.SessionPersistence.too_large

    def counted(self: persistence.SessionPersistence, *args: Any) -> Any:
        checked.append(args)
        return too_large(self, *args)

    monkeypatch.setattr(persistence.SessionPersistence, "too_large", counted)

    async def body() -> None:
        m, _ = persistent()
        assert await m.register_session_with_executor("s", ScriptedExecutor(default=Succeed(RunResult("ok"))))
        _, handle = await m.accept_input_with_completion("s", make_prompt())
        assert handle is not None and await handle.wait() == Completed(RunResult("ok"))

    run(body())
    assert checked == []
