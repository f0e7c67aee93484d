"""``recover_session`` on a real SQLite file: what it writes back is on disk when ``recover``
returns, and survives a killed process; a fresh process on the reopened file finds the row
recovered (requeued, attempts cleared, recovery counted) and runs it to the end."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from meerkat_runtime.session.row_codec import decode_record
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.runtime_session.helpers import S, persistent, run
from tests.runtime_session.killed_child import first_line_then_kill

CHILD = textwrap.dedent(
    """
    import asyncio, dataclasses, json, sys
    from meerkat_runtime.session.inputs import prompt
    from meerkat_runtime.session.machine import MeerkatMachine
    from meerkat_runtime.session.ownership import OwnershipConfig
    from meerkat_runtime.session.row_codec import decode_record, encode_record
    from meerkat_runtime.store.records import InputRow
    from meerkat_runtime.store.sqlite import SqliteRuntimeStore
    from meerkat_runtime.vocab.ids import canonical_runtime_id
    from meerkat_runtime.vocab.inputs import InputLifecycleState

    async def main(path):
        store = SqliteRuntimeStore(path)
        machine = MeerkatMachine.persistent(store, ownership=OwnershipConfig(owner_id="worker-1"))
        await machine.register_session("s")
        item = prompt("left staged", idempotency_key="k")
        await machine.accept_input("s", item)
        # What a failed boundary commit leaves behind: the row back Staged with one attempt,
        # written under the session's own fence while memory still says Queued.
        rt = canonical_runtime_id("s")
        (row,) = [r for r in store.load_input_states(rt) if r.input_id == item.header.id]
        record = decode_record(row.payload)
        record.phase = InputLifecycleState.STAGED
        record.attempts = 1
        fence = machine.session_claim_handle().get(rt).fence
        store.persist_input_state(rt, InputRow(item.header.id, encode_record(record)), fence=fence)
        report = await machine.recover_session("s")
        sys.stdout.write(json.dumps({"input": item.header.id, "report": dataclasses.asdict(report)}) + "\\n")
        sys.stdout.flush()
        await asyncio.sleep(60)  # killed here: no close, no lease release

    asyncio.run(main(sys.argv[1]))
    """
)


def test_recover_writes_back_before_it_returns_and_a_killed_process_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "runtime.sqlite"
    line = first_line_then_kill(CHILD, path)
    done = json.loads(line)
    assert done["report"] == {"inputs_recovered": 1, "inputs_requeued": 1, "inputs_consumed": 0, "rows_written": 1}

    reopened = SqliteRuntimeStore(path)
    try:
        (row,) = reopened.load_input_states(canonical_runtime_id("s"))
        record = decode_record(row.payload)
        assert row.input_id == done["input"]
        assert record.phase is S.QUEUED and record.attempts == 0 and record.recovery_count == 1
    finally:
        reopened.close()

    async def body() -> None:
        m, store = persistent(SqliteRuntimeStore(path))
        try:
            executor = ScriptedExecutor()
            await m.register_session_with_executor("s", executor)
            await m.settle("s")
            view = await m.input_state("s", done["input"])
            assert view is not None and view.current_state is S.CONSUMED
            assert len(executor.applied) == 1  # it ran once, after the restart
        finally:
            await m.close()
            store.close()

    run(body())
