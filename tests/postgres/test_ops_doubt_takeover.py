"""The operation registry's unknown write outcome on a real server, with a takeover: worker A's
completion of an operation is cut off inside COMMIT (its backend terminated: rolled back, the
outcome unknown) and A cannot read the store back; A's lease expires, worker B takes the session
over and completes the same operation id with another result under the same number. When A can
read again, the store looks exactly as A's own write would have left it: A must not take B's
write for its own (its watcher never sees A's result); it finds the lease gone and stops."""

from __future__ import annotations

import pytest
from meerkat_runtime.ops.journal import persisted_from_records
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.store.clock import ManualClock
from meerkat_runtime.store.faults import READ_METHODS, FaultInjectingStore
from meerkat_runtime.vocab.errors import OwnershipLost, PersistenceFailed
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.ownership.helpers import LEASE_S, config
from tests.postgres.helpers import admin, named, open_store, terminator
from tests.runtime_ops.helpers import bg_spec, result, running
from tests.runtime_session.helpers import run


def _sleep_in_ops_commit(dsn: str, schema: str) -> None:
    """A deferred trigger: every ops journal record written makes its COMMIT sleep."""
    with admin(dsn) as conn:
        conn.execute(
            f"CREATE FUNCTION {schema}.slow_ops_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "PERFORM pg_sleep(60); RETURN NEW; END $$"
        )
        conn.execute(
            f"CREATE CONSTRAINT TRIGGER slow_ops_commit AFTER INSERT ON {schema}.runtime_ops_records "
            f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {schema}.slow_ops_commit()"
        )


def test_a_registry_write_cut_in_commit_is_not_taken_for_the_new_owners_write(pg_dsn: str, pg_schema: str) -> None:
    clock = ManualClock()
    name = f"ops-doubt-{pg_schema}"
    store_a = FaultInjectingStore(open_store(named(pg_dsn, name), pg_schema, clock=clock))
    store_b = open_store(pg_dsn, pg_schema, clock=clock)
    a = MeerkatMachine.persistent(store_a, offload_store_calls=False, ownership=config("A", clock))
    b = MeerkatMachine.persistent(store_b, offload_store_calls=False, ownership=config("B", clock))

    async def body() -> None:
        await a.register_session("s")
        registry_a = await a.ops_lifecycle_registry("s")
        first = running(registry_a, bg_spec(op_id="first", owner="s"))
        registry_a.complete_operation(first, result(first))
        late = running(registry_a, bg_spec(op_id="late", owner="s"))
        watch = registry_a.register_watcher(late)
        _sleep_in_ops_commit(pg_dsn, pg_schema)
        unreadable = [store_a.fail_always(method) for method in sorted(READ_METHODS)]
        with terminator(pg_dsn, name, times=1) as killed, pytest.raises(PersistenceFailed) as caught:
            registry_a.complete_operation(late, result(late, "A-version"))
        assert killed[0] == 1 and caught.value.outcome_unknown and registry_a.in_doubt
        with admin(pg_dsn) as conn:
            conn.execute(f"DROP TRIGGER slow_ops_commit ON {pg_schema}.runtime_ops_records")

        clock.advance(LEASE_S + 1)
        await b.register_session("s")  # takeover: A's write never landed
        registry_b = await b.ops_lifecycle_registry("s")
        assert registry_b.snapshot(late) is None
        running(registry_b, bg_spec(op_id=late, owner="s"))
        registry_b.complete_operation(late, result(late, "B-version"))
        assert registry_b.snapshot(late).completion_seq == 2  # type: ignore[union-attr]

        for rule in unreadable:
            store_a.remove(rule)
        with pytest.raises(OwnershipLost):
            registry_a.register_operation(bg_spec(op_id="after", owner="s"))
        assert not registry_a.in_doubt
        if watch.done():  # released with the closing error, never with A's result
            with pytest.raises(OwnershipLost):
                watch.result()
        assert [e.operation_id for e in registry_a.completion_feed().entries()] == ["first"]
        await b.close()
        await a.close()

    run(body())
    with open_store(pg_dsn, pg_schema) as check:
        rt = canonical_runtime_id("s")
        stored = persisted_from_records(check.load_ops_lifecycle(rt), rt)
    assert stored is not None
    outcomes = {op.id: op.terminal_outcome for op in stored.operations}
    assert outcomes["late"] is not None and outcomes["late"].result.content == "B-version"  # type: ignore[union-attr]
