"""``meerkat_runtime.inspection`` reads any ``RuntimeStore`` through its read methods: the same
summaries on the in-memory store as the command prints for SQLite, and a store whose reads fail
is reported per session, not raised."""

from __future__ import annotations

import asyncio

from meerkat_runtime import InMemoryRuntimeStore, MeerkatMachine, ScriptedExecutor, prompt
from meerkat_runtime.inspection.inputs import find_input, session_inputs
from meerkat_runtime.inspection.sessions import summarize_sessions
from meerkat_runtime.store.faults import FaultInjectingStore
from meerkat_runtime.vocab.ids import canonical_runtime_id


def _written(store: InMemoryRuntimeStore) -> str:
    async def main() -> str:
        async with MeerkatMachine.persistent(store, offload_store_calls=False) as machine:
            await machine.register_session_with_executor("a", ScriptedExecutor())
            _, handle = await machine.accept_input_with_completion("a", prompt("one"))
            assert handle is not None
            await handle.wait()
            await machine.register_session("b")
            await machine.accept_input("b", prompt("two"))
            return handle.input_id

    return asyncio.run(main())


def test_summaries_of_an_in_memory_store() -> None:
    store = InMemoryRuntimeStore()
    done = _written(store)
    found = {s.session_id: s for s in summarize_sessions(store)}
    assert list(found) == ["a", "b"]
    assert found["a"].inputs == {"consumed": 1} and found["b"].inputs == {"queued": 1}
    assert found["a"].lease is not None and found["a"].problems == ()
    (row,) = session_inputs(store, canonical_runtime_id("a"))
    assert row.input_id == done and row.record is not None and row.record.attempts == 1
    (where,) = find_input(store, done, store.list_runtimes())
    assert where.runtime_id == canonical_runtime_id("a")


def test_a_failing_read_is_named_in_the_summary() -> None:
    inner = InMemoryRuntimeStore()
    _written(inner)
    store = FaultInjectingStore(inner)
    store.fail_always("scan_input_states")
    found = summarize_sessions(store)
    assert [s.inputs for s in found] == [{}, {}]
    assert all(len(s.problems) == 1 and "input rows" in s.problems[0] for s in found)
