"""On PostgreSQL too, compaction deletes the boundary receipts of the finished inputs it deletes
(and the mark follows), so a long-lived session's receipts stay bounded by the rows it keeps."""

from __future__ import annotations

from meerkat_runtime.session.completion import Completed
from meerkat_runtime.session.executor import RunResult
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.retention_policy import RetentionPolicy
from meerkat_runtime.session.row_codec import decode_record
from meerkat_runtime.session.testing import ScriptedExecutor, Succeed

from tests.ownership.helpers import RT
from tests.postgres.helpers import admin, open_store
from tests.runtime_session.helpers import make_prompt, run

KEEP = 4
HORIZON = KEEP + RetentionPolicy(keep_finished=KEEP).count_slack


def test_receipts_stay_bounded_over_many_runs(pg_dsn: str, pg_schema: str) -> None:
    async def body() -> None:
        m = MeerkatMachine.persistent(open_store(pg_dsn, pg_schema), retention=RetentionPolicy(keep_finished=KEEP))
        await m.register_session_with_executor("s", ScriptedExecutor(default=Succeed(RunResult("ok"))))
        for i in range(60):
            _, handle = await m.accept_input_with_completion("s", make_prompt(f"q{i}"))
            assert handle is not None and await handle.wait() == Completed(RunResult("ok"))
        await m.close()

    run(body())
    with open_store(pg_dsn, pg_schema) as store:
        rows = store.load_input_states(RT)
        mark = store.load_high_water(RT)
        readable = 0
        for row in rows:
            record = decode_record(row.payload)
            assert record.last_run_id is not None and record.last_boundary_sequence is not None
            readable += store.load_boundary_receipt(RT, record.last_run_id, record.last_boundary_sequence) is not None
    with admin(pg_dsn) as conn:  # the table itself, not only the mark
        stored = conn.execute(f"SELECT count(*) FROM {pg_schema}.runtime_boundary_receipts").fetchone()
    assert mark is not None and len(rows) <= HORIZON
    assert stored is not None and stored[0] == mark.receipts == len(rows) == readable
