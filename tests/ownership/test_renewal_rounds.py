"""Renewal rounds at scale: a round starts ``renew_every_s`` after the previous one started,
renews the claim closest to expiry first, renews many leases per store transaction, and reports
(stats and one warning) a round that put leases at risk."""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.session.renewal_rounds import RENEWAL_CHUNK
from meerkat_runtime.store.clock import ManualClock
from meerkat_runtime.store.faults import FaultInjectingStore
from meerkat_runtime.store.lease import Fence, Lease, RenewalOutcome
from meerkat_runtime.store.memory import InMemoryRuntimeStore, MemoryStorage
from meerkat_runtime.store.protocol import batched_renewal
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.runtime_session.helpers import make_prompt, run


class CountingStore(InMemoryRuntimeStore):
    """Records the runtime ids of every renewal call (one list per call, ``renew_lease`` or
    ``renew_leases``); each call moves ``clock`` on by ``call_s``."""

    def __init__(self, clock: ManualClock, call_s: float = 0.0, **kwargs: Any) -> None:
        super().__init__(MemoryStorage(), clock=clock, **kwargs)
        self.manual = clock
        self.call_s = call_s
        self.renewals: list[list[str]] = []

    def renew_lease(self, fence: Fence, runtime_id: str, duration_s: float) -> Lease:
        self.renewals.append([runtime_id])
        self.manual.advance(self.call_s)
        return super().renew_lease(fence, runtime_id, duration_s)

    def renew_leases(self, renewals: Sequence[tuple[Fence, str]], duration_s: float) -> list[RenewalOutcome]:
        self.renewals.append([runtime_id for _, runtime_id in renewals])
        self.manual.advance(self.call_s)
        return super().renew_leases(renewals, duration_s)


def machine(store: InMemoryRuntimeStore, clock: ManualClock, **overrides: Any) -> MeerkatMachine:
    settings: dict[str, Any] = {"owner_id": "A", "lease_s": 15.0, "renew_every_s": None, "clock": clock}
    settings.update(overrides)
    return MeerkatMachine.persistent(store, offload_store_calls=False, ownership=OwnershipConfig(**settings))


def test_rounds_start_every_period_after_the_previous_round_started() -> None:
    """Each round takes 3 s of the clock (the store call moves it); with a 5 s period the pause
    after a round is the 2 s left of the period, not another 5 s."""

    async def body() -> None:
        clock = ManualClock()
        store = CountingStore(clock, call_s=3.0)
        m = machine(store, clock, renew_every_s=5.0)
        pauses: list[float] = []
        starts: list[float] = []
        three_rounds = asyncio.Event()

        async def sleep(seconds: float) -> None:
            pauses.append(seconds)
            if len(pauses) == 4:
                three_rounds.set()
                await asyncio.Event().wait()  # park the renewal loop
            clock.advance(seconds)
            starts.append(clock())
            await asyncio.sleep(0)

        m.session_claim_handle().sleep = sleep
        await m.register_session("s")
        await asyncio.wait_for(three_rounds.wait(), 5.0)
        assert pauses == [5.0, 2.0, 2.0, 2.0]
        assert [later - earlier for earlier, later in itertools.pairwise(starts)] == [5.0, 5.0]
        assert len(store.renewals) == 3
        await m.close()

    run(body())


def test_a_round_renews_the_claim_closest_to_expiry_first() -> None:
    async def body() -> None:
        clock = ManualClock()
        store = CountingStore(clock)
        m = machine(store, clock)
        for name in ("s0", "s1", "s2"):
            await m.register_session(name)
            clock.advance(1.0)
        claim = m.session_claim_handle().get(canonical_runtime_id("s0"))
        assert claim is not None
        await m.session_claim_handle().renew(claim)  # s0 now expires last
        store.renewals.clear()
        assert await m.renew_leases_now() == []
        assert [rt for call in store.renewals for rt in call] == [canonical_runtime_id(n) for n in ("s1", "s2", "s0")]
        await m.close()

    run(body())


@pytest.mark.parametrize("sessions", [1, RENEWAL_CHUNK, 2 * RENEWAL_CHUNK + 5])
def test_a_round_of_n_sessions_takes_at_most_ceil_n_over_k_store_calls(sessions: int) -> None:
    async def body() -> None:
        clock = ManualClock()
        store = CountingStore(clock)
        m = machine(store, clock)
        for i in range(sessions):
            await m.register_session(f"s{i}")
        clock.advance(1.0)
        assert await m.renew_leases_now() == []
        assert len(store.renewals) <= math.ceil(sessions / RENEWAL_CHUNK)
        assert sorted(rt for call in store.renewals for rt in call) == sorted(
            canonical_runtime_id(f"s{i}") for i in range(sessions)
        )
        stats = m.renewal_stats()
        assert (stats.rounds, stats.last_round_leases) == (1, sessions)
        assert stats.last_round_transactions == len(store.renewals)
        for i in range(sessions):
            lease = store.load_lease(canonical_runtime_id(f"s{i}"))
            assert lease is not None and lease.expires_at == clock() + 15.0
        await m.close()

    run(body())


def test_a_round_on_sqlite_commits_one_transaction_per_chunk(tmp_path: Path) -> None:
    async def body() -> None:
        sessions = RENEWAL_CHUNK + 3
        store = SqliteRuntimeStore(tmp_path / "db.sqlite")
        config = OwnershipConfig(owner_id="A", renew_every_s=None)
        async with MeerkatMachine.persistent(store, ownership=config, close_store=True) as m:
            for i in range(sessions):
                await m.register_session(f"s{i}")
            before = store.commit_count
            assert await m.renew_leases_now() == []
            assert store.commit_count - before <= math.ceil(sessions / RENEWAL_CHUNK)
            assert m.renewal_stats().last_round_transactions == 2

    run(body())


def test_a_lost_lease_in_a_chunk_loses_that_session_only() -> None:
    async def body() -> None:
        clock = ManualClock()
        store = CountingStore(clock)
        m = machine(store, clock)
        await m.register_session("kept")
        await m.register_session("taken")
        clock.advance(16.0)  # both leases expired; another owner takes one
        other = InMemoryRuntimeStore(store.storage, clock=clock)
        other.claim_lease(canonical_runtime_id("taken"), "B", 15.0)
        assert await m.renew_leases_now() == [canonical_runtime_id("taken")]
        assert len(store.renewals) == 1
        kept = m.session_claim_handle().get(canonical_runtime_id("kept"))
        assert kept is not None and kept.owned and kept.renew_error is None
        await m.accept_input("kept", make_prompt("still mine"))
        await m.close()

    run(body())


def test_a_slow_round_is_counted_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """Leases of 15 s (manual renewal: a round is slow past 15 / 2); each chunk's store call
    takes 6 s of the clock, so a round of two chunks takes 12 s and the second chunk is sent
    8 s (> 15 / 2) after its claim's previous renewal."""

    async def body() -> None:
        clock = ManualClock()
        store = CountingStore(clock)
        m = machine(store, clock)
        for i in range(RENEWAL_CHUNK + 1):
            await m.register_session(f"s{i}")
        clock.advance(2.0)
        store.call_s = 6.0
        with caplog.at_level(logging.WARNING, logger="meerkat_runtime.session"):
            assert await m.renew_leases_now() == []
        stats = m.renewal_stats()
        assert stats.slow_rounds == 1 and stats.last_round_s == 12.0 and stats.late_renewals == 1
        warnings = [r for r in caplog.records if "lease renewal round" in r.getMessage()]
        assert len(warnings) == 1 and "took 12.000 s" in warnings[0].getMessage()
        store.call_s = 0.0
        await m.renew_leases_now()  # quick, but the first chunk's renewals are 12 s apart: late
        assert m.renewal_stats().late_renewals == 1 + RENEWAL_CHUNK
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="meerkat_runtime.session"):
            await m.renew_leases_now()
        assert not [r for r in caplog.records if "lease renewal round" in r.getMessage()]
        assert m.renewal_stats().slow_rounds == 1
        await m.close()

    run(body())


def test_a_store_that_changes_renew_lease_alone_is_renewed_one_lease_at_a_time() -> None:
    clock = ManualClock()

    class OwnRenew(InMemoryRuntimeStore):
        def renew_lease(self, fence: Fence, runtime_id: str, duration_s: float) -> Lease:
            return super().renew_lease(fence, runtime_id, duration_s)

    assert batched_renewal(InMemoryRuntimeStore(clock=clock)) is not None
    assert batched_renewal(CountingStore(clock)) is not None
    assert batched_renewal(OwnRenew(clock=clock)) is None
    assert batched_renewal(FaultInjectingStore(InMemoryRuntimeStore(clock=clock))) is None


def test_a_batch_answer_of_the_wrong_length_is_kept_as_a_renewal_error_and_nothing_is_lost() -> None:
    class ShortAnswer(CountingStore):
        def renew_leases(self, renewals: Sequence[tuple[Fence, str]], duration_s: float) -> list[RenewalOutcome]:
            return super().renew_leases(renewals, duration_s)[:-1]

    async def body() -> None:
        clock = ManualClock()
        store = ShortAnswer(clock)
        m = machine(store, clock)
        await m.register_session("a")
        await m.register_session("b")
        assert await m.renew_leases_now() == []
        for name in ("a", "b"):
            claim = m.session_claim_handle().get(canonical_runtime_id(name))
            assert claim is not None and claim.owned
            assert claim.renew_error is not None and "returned 1 outcomes for 2 leases" in str(claim.renew_error)
        await m.close()

    run(body())
