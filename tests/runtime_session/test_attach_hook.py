"""The executor's optional attach hook: ``start()`` is awaited once when its run loop is attached;
if it raises, nothing is attached (the model's ``attach_failed``) and the caller gets
``ExecutorStartFailed``; the session keeps queueing input and a later attach works."""

from __future__ import annotations

import pytest
from meerkat_runtime.session.executor import CoreApplyOutput, RunControlCommand, RunPrimitive, success_output
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.vocab.errors import ExecutorStartFailed
from meerkat_runtime.vocab.ids import RunId
from meerkat_runtime.vocab.runtime import RegistrationPhase, RuntimeState

from tests.runtime_session.helpers import S, make_prompt, persistent, run, view_of


class _NoStartExecutor:
    """An executor without the hook (it is optional)."""

    async def apply(self, run_id: RunId, primitive: RunPrimitive) -> CoreApplyOutput:
        return success_output(primitive)

    async def control(self, command: RunControlCommand) -> None:
        return None


def test_a_failing_start_attaches_nothing_and_a_later_attach_works() -> None:
    async def body() -> None:
        m, _ = persistent()
        broken = ScriptedExecutor(start_error=RuntimeError("model server unreachable"))
        with pytest.raises(ExecutorStartFailed) as err:
            await m.ensure_session_with_executor("s", broken)
        assert err.value.kind == "executor_start_failed"
        assert "model server unreachable" in str(err.value)
        assert isinstance(err.value.cause, RuntimeError)
        assert broken.starts == 1
        assert await m.registration_phase("s") is RegistrationPhase.QUEUING
        assert await m.runtime_state("s") is RuntimeState.IDLE
        assert not await m.executor_ready("s")
        item = make_prompt()
        await m.accept_input("s", item)
        await m.settle("s")
        assert broken.applied == []
        assert (await view_of(m, item)).current_state is S.QUEUED
        good = ScriptedExecutor()
        assert await m.ensure_session_with_executor("s", good)
        await m.settle("s")
        assert good.starts == 1
        assert (await view_of(m, item)).current_state is S.CONSUMED

    run(body())


def test_start_is_awaited_once_per_attachment_and_is_optional() -> None:
    async def body() -> None:
        m, _ = persistent()
        ex = ScriptedExecutor()
        assert await m.ensure_session_with_executor("s", ex)
        assert not await m.ensure_session_with_executor("s", ScriptedExecutor())
        assert ex.starts == 1
        await m.register_session("t")
        assert await m.ensure_session_with_executor("t", _NoStartExecutor())
        item = make_prompt()
        await m.accept_input("t", item)
        await m.settle("t")
        assert (await view_of(m, item, "t")).current_state is S.CONSUMED

    run(body())
