"""The runtime on the PostgreSQL store: accept, run and recover after a crash; two workers on one
database with ownership (one takes over after the other's lease expired; the stale one writes
nothing any more)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.outcomes import Accepted, Deduplicated
from meerkat_runtime.session.row_codec import decode_record
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.store.clock import ManualClock
from meerkat_runtime.store.lease import Fence, Lease, RenewalOutcome
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


def test_a_lease_renewal_round_renews_a_chunk_per_transaction_and_loses_only_the_taken_lease(
    pg_dsn: str, pg_schema: str
) -> None:
    """``RENEWAL_CHUNK + 1`` sessions renew in two ``renew_leases`` calls; the one session
    another worker took meanwhile is lost alone, every other lease is extended."""
    from meerkat_runtime.session.renewal_rounds import RENEWAL_CHUNK
    from meerkat_runtime.store.postgres import PostgresRuntimeStore
    from meerkat_runtime.vocab.ids import canonical_runtime_id

    clock = ManualClock()
    calls: list[tuple[str, int]] = []

    class Counting(PostgresRuntimeStore):
        def renew_leases(self, renewals: Sequence[tuple[Fence, str]], duration_s: float) -> list[RenewalOutcome]:
            calls.append(("renew_leases", len(renewals)))
            return super().renew_leases(renewals, duration_s)

        def renew_lease(self, fence: Fence, runtime_id: str, duration_s: float) -> Lease:
            calls.append(("renew_lease", 1))
            return super().renew_lease(fence, runtime_id, duration_s)

    async def body() -> None:
        store = Counting(pg_dsn, schema=pg_schema, clock=clock)
        a = MeerkatMachine.persistent(store, offload_store_calls=False, ownership=config("A", clock), close_store=True)
        names = [f"s{i}" for i in range(RENEWAL_CHUNK + 1)]
        for name in names:
            await a.register_session(name)
        clock.advance(LEASE_S + 1)
        with open_store(pg_dsn, pg_schema, clock=clock) as other:
            other.claim_lease(canonical_runtime_id("s7"), "B", LEASE_S)
        assert await a.renew_leases_now() == [canonical_runtime_id("s7")]
        assert calls == [("renew_leases", RENEWAL_CHUNK), ("renew_leases", 1)]
        assert a.renewal_stats().last_round_transactions == 2
        with open_store(pg_dsn, pg_schema, clock=clock) as reader:
            for name in names:
                lease = reader.load_lease(canonical_runtime_id(name))
                assert lease is not None
                if name == "s7":
                    assert lease.owner == "B"
                else:
                    assert (lease.owner, lease.token, lease.expires_at) == ("A", 1, clock() + LEASE_S)
        await a.close()

    run(body())
