"""A session whose run's boundary commit failed on PostgreSQL (its backend terminated while the
COMMIT was held by a deferred trigger) resumes by itself: the machine attaches its executor again
once the store answers, and the inputs queued before and after run to completion without the
application attaching a loop again."""

from __future__ import annotations

import asyncio

from meerkat_runtime.session.completion import Completed, CompletionHandle
from meerkat_runtime.session.executor import CoreApplyOutput, RunPrimitive, RunResult, success_output
from meerkat_runtime.session.inputs import prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.session.run_end import BoundaryCommitFailed
from meerkat_runtime.vocab.inputs import InputLifecycleState

from tests.postgres.helpers import admin, named, open_store, terminator
from tests.runtime_session.helpers import run


class _Executor:
    """Succeeds every run; counts its starts (the attach hook) and records the runs."""

    def __init__(self) -> None:
        self.starts = 0
        self.runs: list[tuple[str, ...]] = []

    async def start(self) -> None:
        self.starts += 1

    async def apply(self, run_id: str, primitive: RunPrimitive) -> CoreApplyOutput:
        self.runs.append(tuple(primitive.contributing_input_ids))
        return success_output(primitive, RunResult("ok"))

    async def control(self, command: object) -> None:
        return None


def _hold_consumed_rows(dsn: str, schema: str) -> None:
    """A deferred trigger that holds a COMMIT writing a finished input row (a run's boundary
    commit) for half a second, so the test can terminate its backend while it is in flight."""
    with admin(dsn) as conn:
        conn.execute(
            f"CREATE FUNCTION {schema}.test_hold() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.finished_at IS NOT NULL THEN PERFORM pg_sleep(0.5); END IF; RETURN NEW; END $$"
        )
        conn.execute(
            f"CREATE CONSTRAINT TRIGGER test_hold AFTER INSERT OR UPDATE ON {schema}.runtime_input_states "
            f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {schema}.test_hold()"
        )


async def _resolved(handle: CompletionHandle | None) -> object:
    assert handle is not None
    async with asyncio.timeout(60):  # a guard against a hang, not a timing check
        return await handle.wait()


def test_a_backend_terminated_during_a_run_ends_commit_resumes_by_itself(pg_dsn: str, pg_schema: str) -> None:
    name = f"reattach-{pg_schema}"
    store = open_store(named(pg_dsn, name), pg_schema, timeout_s=3)
    _hold_consumed_rows(pg_dsn, pg_schema)

    async def body() -> None:
        machine = MeerkatMachine.persistent(store, ownership=OwnershipConfig(owner_id="w1", lease_s=6.0))
        executor = _Executor()
        await machine.register_session_with_executor("s", executor)
        with terminator(pg_dsn, name, times=1) as killed:
            _, first = await machine.accept_input_with_completion("s", prompt("first", input_id="in-1"))
            assert await _resolved(first) == Completed(RunResult("ok"))
        assert killed[0] == 1
        assert isinstance(await machine.last_error("s"), BoundaryCommitFailed)  # the terminated COMMIT
        assert executor.starts == 2  # told to stop, then attached again by the machine
        _, second = await machine.accept_input_with_completion("s", prompt("second", input_id="in-2"))
        assert await _resolved(second) == Completed(RunResult("ok"))
        assert await machine.list_active_inputs("s") == []
        for input_id in ("in-1", "in-2"):
            view = await machine.input_state("s", input_id)
            assert view is not None and view.current_state is InputLifecycleState.CONSUMED
        assert executor.runs[-1] == ("in-2",)
        await machine.close()

    try:
        run(body())
    finally:
        store.close()
