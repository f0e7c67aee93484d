"""Leases in the built-in stores beyond what the conformance suite checks: the injectable
clock, the checksum of the SQLite lease row, typed refusals, commit failures whose outcome is
unknown, and fault injection of the ownership calls."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from meerkat_conformance.lockstep.faults import fail_next_write
from meerkat_runtime.store.clock import ManualClock
from meerkat_runtime.store.faults import LEASE_METHODS, FaultInjectingStore
from meerkat_runtime.store.lease import Fence, Lease
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.tables import LEASES
from meerkat_runtime.vocab.errors import (
    Corrupt,
    LeaseHeld,
    OwnershipLost,
    ReadFailed,
    StoreError,
    WriteFailed,
    WriteOutcomeUnknown,
    WriteRefused,
)

RT = "rt:session:leases"
Opener = Callable[[ManualClock], RuntimeStore]


@pytest.fixture(params=["memory", "sqlite"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    if request.param == "memory":
        yield lambda clock: InMemoryRuntimeStore(clock=clock)
    else:
        yield lambda clock: SqliteRuntimeStore(tmp_path / "leases.sqlite3", clock=clock)


def test_expiry_follows_the_injected_clock(opener: Opener) -> None:
    clock = ManualClock(100.0)
    store = opener(clock)
    assert store.claim_lease(RT, "A", 5) == Lease(RT, "A", 1, 105.0)
    clock.advance(4.999)
    with pytest.raises(LeaseHeld):
        store.claim_lease(RT, "B", 5)
    clock.advance(0.001)  # now == expires_at: expired
    assert store.claim_lease(RT, "B", 5) == Lease(RT, "B", 2, 110.0)
    store.release_lease(Fence("B", 2), RT)
    assert store.load_lease(RT) == Lease(RT, "B", 2, 105.0)  # expired now; owner and token kept
    store.close()


def test_refusals_are_typed_and_say_nothing_happened(opener: Opener) -> None:
    store = opener(ManualClock())
    lease = store.claim_lease(RT, "A", 5)
    with pytest.raises(LeaseHeld) as held:
        store.claim_lease(RT, "B", 5)
    with pytest.raises(OwnershipLost) as lost:
        store.persist_input_state(RT, InputRow("x", b"1"), fence=Fence("A", lease.token + 1))
    for err in (held.value, lost.value):
        assert isinstance(err, WriteRefused) and isinstance(err, WriteFailed)
        assert not err.outcome_unknown and err.runtime_id == RT
    assert (held.value.owner, held.value.expires_at) == ("A", lease.expires_at)
    assert store.load_input_states(RT) == []
    store.close()


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.persist_input_state(RT, InputRow("x", b"1"), fence="A:1"),
        lambda s: s.persist_input_state(RT, InputRow("x", b"1"), fence=Fence("", 1)),
        lambda s: s.persist_input_state(RT, InputRow("x", b"1"), fence=Fence("A", 0)),
        lambda s: s.persist_input_state(RT, InputRow("x", b"1"), fence=Fence("A", True)),
        lambda s: s.claim_lease(RT, "", 5),
        lambda s: s.claim_lease(RT, "A", 0),
        lambda s: s.claim_lease(RT, "A", float("nan")),
        lambda s: s.renew_lease(None, RT, 5),
        lambda s: s.release_lease(Fence("A", -1), RT),
        lambda s: s.claim_lease("", "A", 5),
    ],
)
def test_malformed_ownership_arguments_are_refused_before_anything_is_written(
    opener: Opener, call: Callable[[Any], object]
) -> None:
    store = opener(ManualClock())
    with pytest.raises(WriteFailed):
        call(store)
    assert store.load_lease(RT) is None and store.load_input_states(RT) == []
    with pytest.raises(ReadFailed):
        store.load_lease("")
    store.close()


def test_a_damaged_sqlite_lease_row_fails_closed(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = SqliteRuntimeStore(path)
    lease = store.claim_lease(RT, "A", 60)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"UPDATE {LEASES} SET token = token + 1 WHERE runtime_id = ?", (RT,))  # a hand edit
    conn.close()
    with pytest.raises(Corrupt, match=f"{LEASES}"):
        store.load_lease(RT)
    with pytest.raises(Corrupt):
        store.persist_input_state(RT, InputRow("x", b"1"), fence=lease.fence)
    with pytest.raises(Corrupt):
        store.claim_lease(RT, "B", 60)
    store.close()


def test_a_new_row_is_fenced_against_the_lease_row_as_it_is_now(tmp_path: Path) -> None:
    """A new input row is inserted by one statement that checks the lease row itself, against the
    row this process last verified: a lease row changed behind the store's back since (a new
    holder, a damaged checksum, a lease claimed on an unleased runtime) is read and checked, and
    the write is refused with nothing written."""
    path = tmp_path / "s.sqlite3"
    clock = ManualClock(100.0)
    store = SqliteRuntimeStore(path, clock=clock)
    other = SqliteRuntimeStore(path, clock=clock)
    try:
        lease = store.claim_lease(RT, "A", 5)
        store.persist_input_state(RT, InputRow("a", b"1"), fence=lease.fence)  # the lease row verified
        store.persist_input_state(RT, InputRow("b", b"1"), fence=lease.fence)  # one guarded statement
        clock.advance(5)
        taken = other.claim_lease(RT, "B", 60)  # expired: another holder, token moved on
        with pytest.raises(OwnershipLost):
            store.persist_input_state(RT, InputRow("c", b"1"), fence=lease.fence)
        store.persist_input_state(RT, InputRow("d", b"1"), fence=taken.fence)
        store.persist_input_state(RT, InputRow("e", b"1"), fence=taken.fence)
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute(f"UPDATE {LEASES} SET checksum = 'x' || checksum WHERE runtime_id = ?", (RT,))
        conn.close()
        with pytest.raises(Corrupt, match=LEASES):
            store.persist_input_state(RT, InputRow("f", b"1"), fence=taken.fence)
        assert [r.input_id for r in store.load_input_states(RT)] == ["a", "b", "d", "e"]
        free = "rt:session:unleased"
        store.persist_input_state(free, InputRow("a", b"1"))  # no fence, no lease: one statement
        other.claim_lease(free, "B", 60)
        with pytest.raises(OwnershipLost):
            store.persist_input_state(free, InputRow("b", b"1"))
        assert [r.input_id for r in store.load_input_states(free)] == ["a"]
        mark = store.load_high_water(free)
        assert mark is not None and (mark.writes, mark.inputs) == (1, 1)
    finally:
        other.close()
        store.close()


class _CommitFails(sqlite3.Connection):
    """A connection whose COMMIT reports an I/O error: ``after`` the commit took effect (the
    acknowledgement was lost) or before it (the transaction is still open)."""

    after = True

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT" and self.armed:
            self.armed = False
            if _CommitFails.after:
                super().execute(sql)
            raise sqlite3.OperationalError("disk I/O error")
        return super().execute(sql, *args)

    armed = False


@pytest.mark.parametrize("group_commit", [False, True])
@pytest.mark.parametrize("landed", [True, False])
def test_a_failing_commit_is_outcome_unknown_only_when_it_may_have_landed(
    tmp_path: Path, landed: bool, group_commit: bool
) -> None:
    store = SqliteRuntimeStore(tmp_path / "s.sqlite3", group_commit=group_commit)
    conn = sqlite3.connect(tmp_path / "s.sqlite3", factory=_CommitFails, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    store._pool._local.conn = conn  # this thread's connection (an idle writer lets the caller commit)
    if group_commit:
        store._pool._opener = lambda: conn  # and the writer thread's, opened with its first batch
    _CommitFails.after = landed
    assert isinstance(conn, _CommitFails)
    conn.armed = True
    expected: type[StoreError] = WriteOutcomeUnknown if landed else WriteFailed
    with pytest.raises(expected) as info:
        store.persist_input_state(RT, InputRow("x", b"1"))
    assert info.value.outcome_unknown is landed
    assert [r.input_id for r in store.load_input_states(RT)] == (["x"] if landed else [])
    conn.close()
    store.close()


def test_fault_injection_covers_the_ownership_calls() -> None:
    store = FaultInjectingStore(InMemoryRuntimeStore())
    assert {"claim_lease", "renew_lease", "release_lease", "load_lease"} == LEASE_METHODS
    store.fail_next("claim_lease")
    with pytest.raises(WriteFailed, match="injected fault"):
        store.claim_lease(RT, "A", 5)
    assert store.inner.load_lease(RT) is None
    lease = store.claim_lease(RT, "A", 5)
    store.fail_next("load_lease")
    with pytest.raises(ReadFailed):
        store.load_lease(RT)
    rules = fail_next_write(store)  # "the next data write fails" leaves the ownership calls alone
    assert store.renew_lease(lease.fence, RT, 5).token == 1
    for rule in rules:
        store.remove(rule)
    store.fail_always("*")
    for call in (
        lambda: store.renew_lease(lease.fence, RT, 5),
        lambda: store.release_lease(lease.fence, RT),
        lambda: store.load_lease(RT),
    ):
        with pytest.raises(StoreError, match="injected fault"):
            call()
    store.clear()
    store.fail_next("renew_lease", after_write=True)
    with pytest.raises(WriteOutcomeUnknown) as info:
        store.renew_lease(lease.fence, RT, 50)
    assert info.value.outcome_unknown
    renewed = store.load_lease(RT)
    assert renewed is not None and renewed.expires_at > lease.expires_at  # the renewal landed
    assert store.calls("renew_lease") == 3
