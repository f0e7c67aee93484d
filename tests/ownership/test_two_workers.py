"""The two-workers scenario, reproduced on one SQLite file: without ownership both workers
accept the same idempotency key, one ignores the other's stop, both hand out the same completion
sequence numbers and the next start fails with ``recovery_corruption``; with ownership (the
default) none of it can happen."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.outcomes import Accepted, Deduplicated
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.session.row_codec import decode_record
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.store.clock import ManualClock
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.errors import LeaseHeld, NotReady, OwnershipLost, RecoveryCorruption, ValidationFailed
from meerkat_runtime.vocab.runtime import RuntimeState

from tests.ownership.helpers import LEASE_S, RT, config
from tests.runtime_ops.helpers import bg_spec, result, running
from tests.runtime_session.helpers import make_prompt, run


@dataclass
class File:
    path: Path
    clock: ManualClock

    def machine(self, owner: str | None) -> MeerkatMachine:
        """A worker on the file: owner ``None`` has ownership off."""
        store = SqliteRuntimeStore(self.path, synchronous="NORMAL", clock=self.clock)
        ownership = None if owner is None else config(owner, self.clock)
        return MeerkatMachine.persistent(store, offload_store_calls=False, ownership=ownership)

    def keys(self) -> list[str | None]:
        with SqliteRuntimeStore(self.path) as store:
            return [decode_record(r.payload).input.header.idempotency_key for r in store.load_input_states(RT)]


@pytest.fixture
def file(tmp_path: Path) -> Iterator[File]:
    yield File(tmp_path / "runtime.sqlite3", ManualClock())


def test_without_ownership_both_workers_accept_the_same_idempotency_key(file: File) -> None:
    async def body() -> None:
        a, b = file.machine(None), file.machine(None)
        await a.register_session("s")
        await b.register_session("s")
        assert isinstance(await a.accept_input("s", make_prompt(idempotency_key="k")), Accepted)
        assert isinstance(await b.accept_input("s", make_prompt(idempotency_key="k")), Accepted)
        assert file.keys() == ["k", "k"]  # the bug: one key, two inputs

    run(body())


def test_with_ownership_an_idempotency_key_is_accepted_once(file: File) -> None:
    async def body() -> None:
        a, b = file.machine("A"), file.machine("B")
        await a.register_session("s")
        with pytest.raises(LeaseHeld, match="'A'"):
            await b.register_session("s")
        first = make_prompt(idempotency_key="k")
        assert isinstance(await a.accept_input("s", first), Accepted)
        file.clock.advance(LEASE_S + 1)  # a stalls past its lease; b takes over
        await b.register_session("s")
        again = await b.accept_input("s", make_prompt(idempotency_key="k"))
        assert isinstance(again, Deduplicated) and again.existing_id == first.header.id
        with pytest.raises(OwnershipLost):  # the stale owner writes nothing any more
            await a.accept_input("s", make_prompt(idempotency_key="k2"))
        assert file.keys() == ["k"]

    run(body())


def test_without_ownership_a_stop_is_ignored_by_the_other_worker(file: File) -> None:
    async def body() -> None:
        a, b = file.machine(None), file.machine(None)
        ex_b = ScriptedExecutor()
        await a.register_session_with_executor("s", ScriptedExecutor())
        await b.register_session_with_executor("s", ex_b)
        await a.stop_runtime("s")
        for i in range(5):
            await b.accept_input("s", make_prompt(f"after the stop {i}"))
        await b.settle("s")
        assert len(ex_b.applied) == 5  # the bug: the stopped runtime keeps running inputs

    run(body())


def test_with_ownership_a_durable_stop_holds_for_the_next_owner(file: File) -> None:
    async def body() -> None:
        a, b = file.machine("A"), file.machine("B")
        ex_b = ScriptedExecutor()
        await a.register_session_with_executor("s", ScriptedExecutor())
        with pytest.raises(LeaseHeld):
            await b.register_session_with_executor("s", ex_b)
        await a.stop_runtime("s")
        await a.close()
        with pytest.raises(NotReady):
            await b.register_session_with_executor("s", ex_b)
        assert await b.runtime_state("s") is RuntimeState.STOPPED
        with pytest.raises(NotReady):
            await b.accept_input("s", make_prompt("after the stop"))
        assert ex_b.applied == []

    run(body())


def test_without_ownership_both_workers_hand_out_the_same_completion_sequence_numbers(file: File) -> None:
    async def body() -> None:
        a, b = file.machine(None), file.machine(None)
        await a.register_session("s")
        await b.register_session("s")
        issued: dict[str, list[int]] = {}
        for name, m in (("a", a), ("b", b)):
            registry = await m.ops_lifecycle_registry("s")
            for i in range(3):
                op = running(registry, bg_spec(f"{name}{i}", owner="s"))
                registry.complete_operation(op, result(op))
            issued[name] = [entry.seq for entry in registry.completion_feed().entries()]
        assert issued["a"] == issued["b"] == [1, 2, 3]  # the bug: sequence numbers reused

    run(body())


def test_with_ownership_completion_sequence_numbers_are_never_reused(file: File) -> None:
    async def body() -> None:
        a, b = file.machine("A"), file.machine("B")
        await a.register_session("s")
        registry_a = await a.ops_lifecycle_registry("s")
        for i in range(3):
            op = running(registry_a, bg_spec(f"a{i}", owner="s"))
            registry_a.complete_operation(op, result(op))
        late = running(registry_a, bg_spec("late", owner="s"))
        file.clock.advance(LEASE_S + 1)
        await b.register_session("s")
        with pytest.raises(OwnershipLost):
            registry_a.complete_operation(late, result(late))
        registry_b = await b.ops_lifecycle_registry("s")
        op = running(registry_b, bg_spec("b0", owner="s"))
        registry_b.complete_operation(op, result(op))
        assert [entry.seq for entry in registry_b.completion_feed().entries()] == [1, 2, 3, 4]

    run(body())


def test_without_ownership_the_next_start_fails_with_recovery_corruption(file: File) -> None:
    async def body() -> None:
        a, b = file.machine(None), file.machine(None)
        await a.register_session("s")
        await b.register_session("s")
        await a.accept_input("s", make_prompt("by a"))
        await b.accept_input("s", make_prompt("by b"))
        with pytest.raises(RecoveryCorruption, match="admission position"):
            await file.machine(None).register_session("s")  # the bug: every acknowledged input stranded

    run(body())


def test_with_ownership_the_next_start_recovers_every_acknowledged_input(file: File) -> None:
    async def body() -> None:
        a, b = file.machine("A"), file.machine("B")
        await a.register_session("s")
        with pytest.raises(LeaseHeld):
            await b.register_session("s")
        by_a = make_prompt("by a")
        await a.accept_input("s", by_a)
        file.clock.advance(LEASE_S + 1)
        await b.register_session("s")
        by_b = make_prompt("by b")
        await b.accept_input("s", by_b)
        await b.close()
        c = file.machine("C")
        await c.register_session("s")
        ids = {view.input_id for view in await c.input_states("s")}
        assert ids == {by_a.header.id, by_b.header.id}

    run(body())


def test_the_prefixed_spelling_never_reaches_the_same_runtime_as_a_second_session(file: File) -> None:
    async def body() -> None:
        m = file.machine("A")
        await m.register_session("foo")
        with pytest.raises(ValidationFailed, match="runtime-id prefix"):
            await m.register_session("rt:session:foo")
        await m.accept_input("foo", make_prompt(idempotency_key="k"))
        with pytest.raises(ValidationFailed):
            await m.accept_input("rt:session:foo", make_prompt(idempotency_key="k"))
        assert len(m.session_claim_handle().claims()) == 1

    run(body())


def test_default_ownership_protects_workers_that_configure_nothing(file: File) -> None:
    async def body() -> None:
        a = MeerkatMachine.persistent(SqliteRuntimeStore(file.path))
        b = MeerkatMachine.persistent(SqliteRuntimeStore(file.path))
        assert a.ownership == b.ownership == OwnershipConfig()
        await a.register_session("s")
        with pytest.raises(LeaseHeld):
            await b.register_session("s")
        await a.close()
        await b.register_session("s")
        await b.close()

    run(body())
