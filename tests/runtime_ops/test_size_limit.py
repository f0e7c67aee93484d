"""Durable state near the document size limit (64 MiB, ``meerkat_runtime.vocab.json_limits``).

Each result is accepted and stored on its own, but the retained results (operations plus the
completion feed) can add up to more than one document may hold. The tests lower the limit
the encoder applies (``ops.wire.MAX_JSON_BYTES``) to ``LIMIT`` bytes and use results of
``RESULT`` bytes, so the registry's snapshot crosses the limit after a few dozen operations
exactly as 100 KB tool results cross 64 MiB after ~330 (readers keep the real limit: every
document written under the lower one is also readable). The registry must keep working: a
compaction that would be over the limit is deferred and the call's journal record written
instead, and recovery from the real SQLite file gives back the registry's durable state.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from meerkat_runtime.ops import wire
from meerkat_runtime.ops.config import OpsLifecycleConfig
from meerkat_runtime.ops.cursors import EpochCursorSnapshot
from meerkat_runtime.ops.persistence import StoreOpsPersistence, durable_part
from meerkat_runtime.ops.recovery import DurableOps, load_persisted_ops, open_durable_ops
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.ops.snapshot import PersistedOpsSnapshot
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.errors import PersistenceFailed
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.runtime_ops.helpers import bg_spec, result, running

RT = canonical_runtime_id("session-1")
LIMIT = 64 * 1024
"""Stands for the 64 MiB document limit."""
RESULT = 1000
"""Stands for a 100 KB tool result (the same ratio to the limit, ~1/65)."""


@pytest.fixture
def low_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(wire, "MAX_JSON_BYTES", LIMIT)
    return LIMIT


def _complete(reg: OpsLifecycleRegistry, n: int, size: int = RESULT, name: str = "fetch") -> list[str]:
    ids = []
    for _ in range(n):
        oid = running(reg, bg_spec(name))
        reg.complete_operation(oid, result(oid, "p" * size))
        ids.append(oid)
    return ids


def _durable(reg: OpsLifecycleRegistry, ops: DurableOps) -> tuple[object, ...]:
    live = reg.capture_persistence_snapshot(ops.epoch_id, ops.cursors.snapshot())
    return durable_part(live)


def _sink(ops: DurableOps) -> StoreOpsPersistence:
    return ops.persistence


def _deferred(ops: DurableOps) -> int:
    return getattr(ops.persistence, "deferred", 0)


def test_retained_results_over_the_limit_do_not_wedge_the_registry(tmp_path: Path, low_limit: int) -> None:
    """The audit's wedge, scaled: every completion, ``collect_completed`` and a tiny result after
    it succeed although the retained results add up to several times the limit."""
    store = SqliteRuntimeStore(tmp_path / "ops.sqlite")
    ops = open_durable_ops(store, RT)
    reg = ops.registry
    ids = _complete(reg, 800)  # old code: PersistenceFailed from op 257 (the first compaction after the first)
    assert reg.view().next_completion_seq == 801
    assert _deferred(ops) >= 1
    feed = reg.completion_feed().list_since(0).entries
    assert [e.operation_id for e in feed] == ids  # feed capacity 1024: nothing trimmed
    collected = reg.collect_completed()
    assert [oid for oid, _ in collected] == ids[-256:]  # max_completed=256 retained, all returned
    tiny = running(reg, bg_spec("tiny"))
    reg.complete_operation(tiny, result(tiny, "tiny"))
    assert reg.completion_feed().watermark() == 801
    store.close()


def test_recovery_after_deferred_compactions_equals_the_live_registry(tmp_path: Path, low_limit: int) -> None:
    path = tmp_path / "ops.sqlite"
    store = SqliteRuntimeStore(path)
    ops = open_durable_ops(store, RT)
    reg = ops.registry
    _complete(reg, 400)
    reg.collect_completed()
    _complete(reg, 30, size=10)
    assert _deferred(ops) >= 1
    expected = _durable(reg, ops)
    feed = reg.completion_feed().list_since(0)
    store.close()

    reopened = SqliteRuntimeStore(path)
    persisted = load_persisted_ops(reopened, RT)
    assert persisted is not None
    assert durable_part(persisted) == expected
    again = open_durable_ops(reopened, RT)
    assert again.registry.completion_feed().list_since(0) == feed
    assert _durable(again.registry, again) == expected
    reopened.close()


def test_restart_with_state_over_the_limit_keeps_writing(tmp_path: Path, low_limit: int) -> None:
    """The audit's restart case, scaled: two results of 30/64 and 40/64 of the limit (30 MB and
    40 MB against 64 MiB) are each stored; after reopening, the first write's compaction would
    be over the limit (even with each result stored once): it is deferred, the writes go on,
    and a second reopen recovers them."""
    path = tmp_path / "ops.sqlite"
    store = SqliteRuntimeStore(path)
    ops = open_durable_ops(store, RT)
    big = running(ops.registry, bg_spec("big"))
    ops.registry.complete_operation(big, result(big, "x" * (LIMIT * 30 // 64)))
    bigger = running(ops.registry, bg_spec("bigger"))
    ops.registry.complete_operation(bigger, result(bigger, "x" * (LIMIT * 40 // 64)))
    store.close()

    store = SqliteRuntimeStore(path)
    ops = open_durable_ops(store, RT)
    tiny = _complete(ops.registry, 3, size=2, name="tiny")  # old code: PersistenceFailed for each
    assert _deferred(ops) == 1 and _sink(ops).compactions == 0
    assert len(ops.registry.collect_completed()) == 5
    expected = _durable(ops.registry, ops)
    store.close()

    store = SqliteRuntimeStore(path)
    again = open_durable_ops(store, RT)
    assert _durable(again.registry, again) == expected
    assert [e.operation_id for e in again.registry.completion_feed().list_since(0).entries] == [big, bigger, *tiny]
    store.close()


def test_a_record_over_the_limit_fails_only_its_call(tmp_path: Path, low_limit: int) -> None:
    store = SqliteRuntimeStore(tmp_path / "ops.sqlite")
    ops = open_durable_ops(store, RT)
    reg = ops.registry
    _complete(reg, 2)
    oid = running(reg, bg_spec("huge"))
    before = _durable(reg, ops)
    with pytest.raises(PersistenceFailed, match=f"over the limit of {LIMIT} bytes"):
        reg.complete_operation(oid, result(oid, "x" * LIMIT))
    assert _durable(reg, ops) == before
    reg.complete_operation(oid, result(oid, "fits"))
    persisted = load_persisted_ops(store, RT)
    assert persisted is not None
    assert durable_part(persisted) == _durable(reg, ops)
    store.close()


def test_snapshot_stores_each_result_once() -> None:
    reg = OpsLifecycleRegistry()
    oid = running(reg, bg_spec("one"))
    reg.complete_operation(oid, result(oid, "R" * 5000))
    snap = reg.capture_persistence_snapshot("epoch-1", EpochCursorSnapshot(0, 0, 0))
    data = snap.to_json()
    assert data.count(b"R" * 5000) == 1  # old code: twice (the operation and its feed entry)
    assert PersistedOpsSnapshot.from_json(data) == snap
    reg.collect_completed()  # the feed keeps the entry; the snapshot holds it once, in the entry
    snap = reg.capture_persistence_snapshot("epoch-1", EpochCursorSnapshot(0, 0, 0))
    data = snap.to_json()
    assert data.count(b"R" * 5000) == 1
    assert PersistedOpsSnapshot.from_json(data) == snap


def test_a_restart_with_a_smaller_feed_keeps_writing_past_the_limit(tmp_path: Path, low_limit: int) -> None:
    """The store's state, over the limit, was written with a larger completion feed than the
    reopened registry keeps: the check before a deferred record compares under the registry's
    own settings (recovery trims the feed to them too), so the calls go on being written."""
    path = tmp_path / "ops.sqlite"
    store = SqliteRuntimeStore(path)
    ops = open_durable_ops(store, RT, config=OpsLifecycleConfig(max_completed=2000))
    _complete(ops.registry, 1500, size=100)
    assert _deferred(ops) >= 1
    store.close()

    store = SqliteRuntimeStore(path)
    ops = open_durable_ops(store, RT, config=OpsLifecycleConfig(max_completed=300))
    _complete(ops.registry, 3, size=5, name="small")  # previously: PersistenceFailed for each
    expected = _durable(ops.registry, ops)
    store.close()

    store = SqliteRuntimeStore(path)
    again = open_durable_ops(store, RT, config=OpsLifecycleConfig(max_completed=300))
    assert _durable(again.registry, again) == expected
    store.close()
