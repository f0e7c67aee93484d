"""On PostgreSQL too, compaction deletes the boundary receipts of the finished inputs it deletes
(and the mark follows), so a long-lived session's receipts stay bounded by the rows it keeps;
it finds them through the receipt index, which the upgrade to version 6 fills."""

from __future__ import annotations

from meerkat_runtime.session.completion import Completed
from meerkat_runtime.session.executor import RunResult
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.retention_policy import RetentionPolicy
from meerkat_runtime.session.row_codec import decode_record
from meerkat_runtime.session.testing import ScriptedExecutor, Succeed
from meerkat_runtime.store.postgres_schema import SCHEMA_VERSION
from meerkat_runtime.store.records import BoundaryKind, BoundaryReceipt, InputRow

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


def _receipt(run_id: str, *inputs: str) -> BoundaryReceipt:
    return BoundaryReceipt(run_id, 0, BoundaryKind.RUN_CHECKPOINT, inputs, None, len(inputs))


def test_a_version_5_schema_gets_the_index_of_its_stored_receipts(pg_dsn: str, pg_schema: str) -> None:
    """The upgrade to version 6 writes the index entries of every stored receipt (none for one
    that does not parse), so compactions after it release the receipts stored before it."""
    with open_store(pg_dsn, pg_schema) as store:
        for n in range(3):
            row = InputRow(f"i{n}", b"row", 1.0 + n, None, n)
            store.atomic_apply(RT, session_snapshot=None, receipt=_receipt(f"r{n}", row.input_id), rows=[row])
        store.atomic_apply(RT, session_snapshot=None, receipt=_receipt("r-both", "i1", "i2"), rows=[])
        store.atomic_apply(RT, session_snapshot=None, receipt=_receipt("r-none"), rows=[])
    with admin(pg_dsn) as conn:  # what version 5 left: no index; one receipt that does not parse
        conn.execute(f"DROP TABLE {pg_schema}.runtime_receipt_inputs")
        conn.execute(f"UPDATE {pg_schema}.meerkat_schema_version SET version = 5")
        conn.execute(f"UPDATE {pg_schema}.runtime_boundary_receipts SET receipt = '\\x7b'::bytea WHERE run_id = 'r2'")
    with open_store(pg_dsn, pg_schema) as store:
        assert store.settings()["schema_version"] == SCHEMA_VERSION == 6
        assert store.compact_inputs(RT, ["i0", "i1", "i2"]) == 3
        mark = store.load_high_water(RT)
        assert mark is not None and mark.receipts == 2  # r0, r1, r-both released
        for run_id in ("r0", "r1", "r-both"):
            assert store.load_boundary_receipt(RT, run_id, 0) is None, run_id
        assert store.load_boundary_receipt(RT, "r-none", 0) is not None
    with admin(pg_dsn) as conn:
        kept = conn.execute(f"SELECT run_id FROM {pg_schema}.runtime_boundary_receipts ORDER BY run_id").fetchall()
        entries = conn.execute(f"SELECT count(*) FROM {pg_schema}.runtime_receipt_inputs").fetchone()
    assert kept == [("r-none",), ("r2",)] and entries == (0,)
