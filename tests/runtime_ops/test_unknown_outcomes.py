"""A terminal transition whose write's outcome the store left unknown: the registry reads the
store back and becomes what it holds, at once or — when it cannot be read — before its next
change (refusing changes meanwhile). A terminal outcome the store holds is never rewritten and
a completion sequence number is never issued twice. On SQLite and the in-memory store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from meerkat_runtime.ops.cursors import EpochCursorState
from meerkat_runtime.ops.persistence import OpsDurableWrite
from meerkat_runtime.ops.recovery import DEFAULT_OPS_OWNERSHIP, DurableOps, load_persisted_ops, open_durable_ops
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.store.faults import FaultInjectingStore
from meerkat_runtime.store.memory import InMemoryRuntimeStore, MemoryStorage
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.errors import InvalidTransition, PersistenceFailed, WriteOutcomeUnknown
from meerkat_runtime.vocab.operation import Cancelled, Completed, OperationStatus

from tests.runtime_ops.helpers import bg_spec, completed, result, running
from tests.runtime_session.disks import NotWrittenButUnknown

RT = "rt:session:ops-doubt"


@pytest.fixture(params=["memory", "sqlite"])
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[FaultInjectingStore, Any]]:
    inner: Any = (
        InMemoryRuntimeStore(MemoryStorage())
        if request.param == "memory"
        else SqliteRuntimeStore(tmp_path / "ops.sqlite", synchronous="NORMAL")
    )
    yield FaultInjectingStore(inner), inner
    inner.close()


def _seqs(store: Any) -> dict[str, tuple[OperationStatus, int | None]]:
    persisted = load_persisted_ops(store, RT)
    assert persisted is not None
    return {op.id: (op.status, op.completion_seq) for op in persisted.operations if op.status.is_terminal}


def _b_running_before_an_unwritten_append(
    store: FaultInjectingStore, *, ownership: OwnershipConfig | None = DEFAULT_OPS_OWNERSHIP
) -> tuple[NotWrittenButUnknown, DurableOps, str]:
    """Ops opened on ``store`` with ``ownership`` (``None``: without the runtime's lease) through a
    wrapper whose ``append_ops_record`` fails unwritten with its outcome reported unknown once
    armed (it is not yet); ``first`` completed (the base snapshot) and ``b`` running."""
    ambiguous = NotWrittenButUnknown(store, "append_ops_record")
    ambiguous.armed = False
    ops = open_durable_ops(ambiguous, RT, ownership=ownership)
    completed(ops.registry, "first")
    return ambiguous, ops, running(ops.registry, bg_spec("b"))


def test_a_landed_terminal_write_completes_the_call(opened: tuple[FaultInjectingStore, Any]) -> None:
    store, _ = opened
    ops = open_durable_ops(store, RT)
    first = completed(ops.registry, "first")
    b = running(ops.registry, bg_spec("b"))
    store.fail_next("append_ops_record", after_write=True)
    ops.registry.complete_operation(b, result(b))
    assert store.injected("append_ops_record") == 1
    with pytest.raises(InvalidTransition):
        ops.registry.cancel_operation(b)
    assert _seqs(store) == {first: (OperationStatus.COMPLETED, 1), b: (OperationStatus.COMPLETED, 2)}


def test_a_registry_in_doubt_refuses_changes_then_applies_what_the_store_holds(
    opened: tuple[FaultInjectingStore, Any],
) -> None:
    store, _ = opened
    ops = open_durable_ops(store, RT)
    first = completed(ops.registry, "first")
    b = running(ops.registry, bg_spec("b"))
    watch = ops.registry.register_watcher(b)
    store.fail_next("append_ops_record", after_write=True)
    unreadable = store.fail_always("load_ops_lifecycle")
    with pytest.raises(PersistenceFailed) as err:
        ops.registry.complete_operation(b, result(b))
    assert err.value.outcome_unknown and ops.registry.in_doubt
    for change in (
        lambda: ops.registry.register_operation(bg_spec("c")),
        lambda: ops.registry.cancel_operation(b),
        lambda: ops.registry.report_progress(b),
    ):
        with pytest.raises(PersistenceFailed, match="still unknown") as refused:
            change()
        assert refused.value.outcome_unknown
    snapshot = ops.registry.snapshot(b)  # reads never wait for the doubt
    assert snapshot is not None and snapshot.status is OperationStatus.RUNNING and not watch.done()
    store.remove(unreadable)
    c = running(ops.registry, bg_spec("c"))  # reconciles first: the completion landed
    assert not ops.registry.in_doubt
    assert watch.done() and ops.registry.snapshot(b).terminal_outcome == Completed(result(b))  # type: ignore[union-attr]
    ops.registry.complete_operation(c, result(c))
    assert [e.seq for e in ops.registry.completion_feed().entries()] == [1, 2, 3]
    assert {oid: seq for oid, (_, seq) in _seqs(store).items()} == {first: 1, b: 2, c: 3}


def test_a_registry_in_doubt_drops_a_call_the_store_does_not_hold(opened: tuple[FaultInjectingStore, Any]) -> None:
    store, _ = opened
    ambiguous, ops, b = _b_running_before_an_unwritten_append(store)
    ambiguous.armed = True  # the next append fails unwritten, its outcome reported unknown
    store.fail_next("load_ops_lifecycle")
    with pytest.raises(PersistenceFailed) as err:
        ops.registry.complete_operation(b, result(b, "lost"))
    assert err.value.outcome_unknown
    ops.registry.complete_operation(b, result(b, "again"))  # reconciles (dropped), then completes
    assert ops.registry.snapshot(b).terminal_outcome == Completed(result(b, "again"))  # type: ignore[union-attr]
    assert ops.registry.snapshot(b).completion_seq == 2  # type: ignore[union-attr]
    assert _seqs(store)[b] == (OperationStatus.COMPLETED, 2)


def test_another_writers_terminal_write_of_the_same_operation_is_not_taken_for_the_one_in_doubt(
    opened: tuple[FaultInjectingStore, Any],
) -> None:
    """A's completion of ``b`` never landed and could not be read back; another writer of the
    runtime (no lease here to tell them apart) then completed ``b`` with another result under
    the same number. The stored registry has the shape A expected (``b`` completed with number
    2, next number 3) but not A's outcome: A stays in doubt and publishes nothing."""
    store, inner = opened
    ambiguous, ops, b = _b_running_before_an_unwritten_append(store, ownership=None)
    watch = ops.registry.register_watcher(b)
    ambiguous.armed = True
    unreadable = store.fail_always("load_ops_lifecycle")
    with pytest.raises(PersistenceFailed) as err:
        ops.registry.complete_operation(b, result(b, "mine"))
    assert err.value.outcome_unknown and ops.registry.in_doubt
    other = open_durable_ops(inner, RT, ownership=None)  # recovers what the store holds: ``b`` is not there
    assert other.registry.snapshot(b) is None
    running(other.registry, bg_spec("b", op_id=b))
    other.registry.complete_operation(b, result(b, "theirs"))
    store.remove(unreadable)
    assert _seqs(store)[b] == (OperationStatus.COMPLETED, 2)
    with pytest.raises(PersistenceFailed, match="still unknown") as refused:
        ops.registry.register_operation(bg_spec("c"))
    assert refused.value.outcome_unknown and ops.registry.in_doubt
    assert not watch.done()
    assert ops.registry.snapshot(b).status is OperationStatus.RUNNING  # type: ignore[union-attr]
    assert [e.seq for e in ops.registry.completion_feed().entries()] == [1]


def test_a_sink_that_cannot_be_read_back_keeps_the_registry_in_doubt_until_detached() -> None:
    class UnknownSink:
        def persist(self, write: OpsDurableWrite) -> None:
            raise WriteOutcomeUnknown(RT, "the acknowledgement was lost")

        def close(self) -> None:
            pass

    reg = OpsLifecycleRegistry()
    reg.attach_persistence(UnknownSink(), "epoch", EpochCursorState())
    a = running(reg, bg_spec("a"))
    with pytest.raises(PersistenceFailed):
        reg.complete_operation(a, result(a))
    assert reg.in_doubt
    with pytest.raises(PersistenceFailed, match="still unknown"):
        reg.register_operation(bg_spec("b"))
    reg.detach_persistence()
    reg.complete_operation(a, result(a))
    assert not reg.in_doubt


def test_protection_off_a_stored_terminal_outcome_is_rewritten(
    opened: tuple[FaultInjectingStore, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(OpsLifecycleRegistry, "_outcome_unknown", staticmethod(lambda sink, error: False))
    store, _ = opened
    ops = open_durable_ops(store, RT)
    completed(ops.registry, "first")  # the base snapshot: the next write appends
    b = running(ops.registry, bg_spec("b"))
    store.fail_next("append_ops_record", after_write=True)
    with pytest.raises(PersistenceFailed):
        ops.registry.complete_operation(b, result(b))
    assert ops.registry.snapshot(b).status is OperationStatus.RUNNING  # type: ignore[union-attr]
    ops.registry.cancel_operation(b, "changed my mind")  # accepted: memory is behind the store
    persisted = load_persisted_ops(store, RT)
    assert persisted is not None
    stored = persisted.operation(b)
    assert stored is not None and stored.terminal_outcome == Cancelled("changed my mind")
