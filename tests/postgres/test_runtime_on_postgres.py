"""The runtime on the PostgreSQL store: accept, run and recover after a crash; two workers on one
database with ownership (one takes over after the other's lease expired; the stale one writes
nothing any more)."""

from __future__ import annotations

import pytest
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.outcomes import Accepted, Deduplicated
from meerkat_runtime.session.row_codec import decode_record
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.store.clock import ManualClock
from meerkat_runtime.vocab.errors import LeaseHeld, OwnershipLost
from meerkat_runtime.vocab.inputs import InputLifecycleState

from tests.ownership.helpers import LEASE_S, RT, config
from tests.postgres.helpers import open_store
from tests.runtime_session.helpers import make_prompt, run


def test_accepted_inputs_run_and_survive_a_crash(pg_dsn: str, pg_schema: str) -> None:
    async def body() -> None:
        first = MeerkatMachine.persistent(open_store(pg_dsn, pg_schema))
        await first.register_session_with_executor("s", ScriptedExecutor())
        done = make_prompt("one", idempotency_key="k1")
        assert isinstance(await first.accept_input("s", done), Accepted)
        await first.settle("s")
        await first.halt()  # a crash: nothing released, nothing flushed beyond what was committed
        second = MeerkatMachine.persistent(open_store(pg_dsn, pg_schema), ownership=config("B", ManualClock()))
        with pytest.raises(LeaseHeld):  # the crashed worker's lease is still live
            await second.register_session("s")
        await second.close()

    run(body())
    with open_store(pg_dsn, pg_schema) as store:
        records = [decode_record(r.payload) for r in store.load_input_states(RT)]
    assert [r.phase for r in records] == [InputLifecycleState.CONSUMED]


def test_a_takeover_fences_off_the_stale_worker(pg_dsn: str, pg_schema: str) -> None:
    clock = ManualClock()

    def worker(owner: str) -> MeerkatMachine:
        store = open_store(pg_dsn, pg_schema, clock=clock)
        return MeerkatMachine.persistent(store, offload_store_calls=False, ownership=config(owner, clock))

    async def body() -> None:
        a, b = worker("A"), worker("B")
        await a.register_session("s")
        with pytest.raises(LeaseHeld, match="'A'"):
            await b.register_session("s")
        first = make_prompt(idempotency_key="k")
        assert isinstance(await a.accept_input("s", first), Accepted)
        clock.advance(LEASE_S + 1)
        await b.register_session("s")
        again = await b.accept_input("s", make_prompt(idempotency_key="k"))
        assert isinstance(again, Deduplicated) and again.existing_id == first.header.id
        with pytest.raises(OwnershipLost):
            await a.accept_input("s", make_prompt(idempotency_key="k2"))
        await a.close()
        await b.close()

    run(body())
    with open_store(pg_dsn, pg_schema) as store:
        keys = [decode_record(r.payload).input.header.idempotency_key for r in store.load_input_states(RT)]
        lease = store.load_lease(RT)
    assert keys == ["k"]
    assert lease is not None and (lease.owner, lease.token) == ("B", 2)
