"""Loading a boundary receipt through the machine: the run's receipt as the store holds it, read
under the session's canonical runtime id; typed errors for what is wrong."""

from __future__ import annotations

import pytest
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.errors import SessionNotFound, ValidationFailed

from tests.runtime_session.helpers import make_prompt, persistent, run, view_of


def test_the_receipt_of_a_committed_run_is_loaded_through_the_machine(tmp_path: object) -> None:
    async def body() -> None:
        store = SqliteRuntimeStore(f"{tmp_path}/rt.db")
        m, _ = persistent(store)
        executor = ScriptedExecutor()
        await m.register_session_with_executor("s", executor)
        item = make_prompt("a", input_id="in-a")
        await m.accept_input("s", item)
        await m.settle("s")
        view = await view_of(m, item)
        assert view.last_run_id is not None and view.last_boundary_sequence is not None
        receipt = await m.load_boundary_receipt("s", view.last_run_id, view.last_boundary_sequence)
        assert receipt is not None
        assert receipt.run_id == view.last_run_id and receipt.sequence == view.last_boundary_sequence
        assert receipt.contributing_input_ids == ("in-a",)
        assert await m.load_boundary_receipt("s", view.last_run_id, view.last_boundary_sequence + 1) is None
        assert await m.load_boundary_receipt("s", "run-unknown", 0) is None
        with pytest.raises(ValidationFailed, match="run id"):
            await m.load_boundary_receipt("s", "", 0)
        with pytest.raises(ValidationFailed, match="sequence"):
            await m.load_boundary_receipt("s", view.last_run_id, -1)
        with pytest.raises(SessionNotFound):
            await m.load_boundary_receipt("other", view.last_run_id, 0)
        await m.close()
        # Another machine on the same file reads the same receipt once it registers the session.
        second = SqliteRuntimeStore(f"{tmp_path}/rt.db")
        again, _ = persistent(second)
        await again.register_session("s")
        loaded = await again.load_boundary_receipt("s", view.last_run_id, view.last_boundary_sequence)
        assert loaded == receipt
        await again.close()
        second.close()
        store.close()

    run(body())


def test_an_ephemeral_machine_has_no_stored_receipts() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        await m.register_session_with_executor("s", ScriptedExecutor())
        item = make_prompt("a")
        await m.accept_input("s", item)
        await m.settle("s")
        view = await view_of(m, item)
        assert view.last_run_id is not None
        assert await m.load_boundary_receipt("s", view.last_run_id, view.last_boundary_sequence or 0) is None
        await m.close()

    run(body())
