"""An ops state two unleased writers left unreadable: salvaged to the snapshot and the records
that follow from it, the lost completions named, and the session registers again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from meerkat_runtime.ops.recovery import DurableOps, load_persisted_ops, open_durable_ops
from meerkat_runtime.repair.diagnosis import OPS_SALVAGE_HINT, diagnose_session
from meerkat_runtime.repair.ops_salvage import OpsStateChanged, salvage_ops, write_salvaged_ops
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.store.lease import Fence
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.errors import LeaseHeld, OwnershipLost, ReadFailed, SnapshotFormatError
from meerkat_runtime.vocab.ids import OperationId, canonical_runtime_id
from meerkat_runtime.vocab.operation import OperationKind, OperationResult, OperationSpec

SESSION = "shared"
RT = canonical_runtime_id(SESSION)


def complete(ops: DurableOps, oid: str) -> None:
    registry = ops.registry
    op = OperationId(oid)
    registry.register_operation(OperationSpec(op, OperationKind.BACKGROUND_TOOL_OP, SESSION, oid))
    registry.provisioning_succeeded(op)
    registry.complete_operation(op, OperationResult(op, oid))


def interleaved(store: SqliteRuntimeStore) -> None:
    """What two unleased writers leave: X's snapshot replaced by Y's, then X's record."""
    x = open_durable_ops(store, RT, session_id=SESSION, ownership=None)
    y = open_durable_ops(store, RT, session_id=SESSION, ownership=None)
    complete(x, "x1")  # X's snapshot
    complete(y, "y1")  # Y's snapshot (another epoch) replaces it
    complete(y, "y2")  # Y's record
    complete(x, "x2")  # X's record: another epoch than the snapshot's
    complete(y, "y3")  # Y's record, after X's


def test_an_interleaved_state_is_salvaged_and_the_session_registers_again(tmp_path: Path) -> None:
    store = SqliteRuntimeStore(str(tmp_path / "ops.sqlite"))
    interleaved(store)
    with pytest.raises(SnapshotFormatError, match="does not match the snapshot's epoch"):
        load_persisted_ops(store, RT)
    salvage = salvage_ops(store, RT)
    assert salvage.kept == 2 and [skip.index for skip in salvage.skipped] == [1]
    assert "ops journal record #1:" in salvage.skipped[0].problem
    assert salvage.lost == ("x2",)
    assert salvage.state is not None
    assert [op.id for op in salvage.state.operations] == ["y1", "y2", "y3"]
    with pytest.raises(SnapshotFormatError):  # salvage_ops reads only
        load_persisted_ops(store, RT)

    write_salvaged_ops(store, salvage)
    recovered = load_persisted_ops(store, RT)
    assert recovered is not None and [op.id for op in recovered.operations] == ["y1", "y2", "y3"]

    async def register() -> None:
        machine = MeerkatMachine.persistent(store, ownership=OwnershipConfig(owner_id="later"))
        await machine.register_session(SESSION)
        registry = await machine.ops_lifecycle_registry(SESSION)
        assert [op.id for op in registry.list_operations()] == ["y1", "y2", "y3"]
        await machine.close()

    asyncio.run(register())


def test_a_salvage_is_written_under_the_lease_and_refused_while_it_is_held(tmp_path: Path) -> None:
    store = SqliteRuntimeStore(str(tmp_path / "ops.sqlite"))
    interleaved(store)
    salvage = salvage_ops(store, RT)
    holder = store.claim_lease(RT, "live-worker", 60.0)
    with pytest.raises(LeaseHeld, match="live-worker"):
        write_salvaged_ops(store, salvage)
    store.release_lease(holder.fence, RT)
    write_salvaged_ops(store, salvage)
    with open_durable_ops(store, RT, session_id=SESSION) as ops:
        assert ops.recovered and len(ops.registry.list_operations()) == 3


def test_the_diagnosis_names_the_unreadable_state_and_the_way_out(tmp_path: Path) -> None:
    store = SqliteRuntimeStore(str(tmp_path / "ops.sqlite"))
    interleaved(store)
    found = diagnose_session(store, SESSION)
    (problem,) = [p for p in found.other_problems if p.startswith("ops state:")]
    assert "does not match the snapshot's epoch" in problem and OPS_SALVAGE_HINT in problem
    write_salvaged_ops(store, salvage_ops(store, RT))
    assert not [p for p in diagnose_session(store, SESSION).other_problems if p.startswith("ops state:")]


def test_a_completion_written_after_the_salvage_was_read_refuses_the_write(tmp_path: Path) -> None:
    store = SqliteRuntimeStore(str(tmp_path / "ops.sqlite"))
    y = open_durable_ops(store, RT, session_id=SESSION, ownership=None)
    x = open_durable_ops(store, RT, session_id=SESSION, ownership=None)
    complete(x, "x1")
    complete(y, "y1")
    complete(y, "y2")
    complete(x, "x2")
    salvage = salvage_ops(store, RT)
    complete(y, "y3")  # acknowledged to Y after the salvage was read
    with pytest.raises(OpsStateChanged, match="changed since the salvage was read"):
        write_salvaged_ops(store, salvage)
    with pytest.raises(SnapshotFormatError):  # nothing was written
        load_persisted_ops(store, RT)

    again = salvage_ops(store, RT)
    assert again.lost == ("x2",)
    write_salvaged_ops(store, again)
    recovered = load_persisted_ops(store, RT)
    assert recovered is not None and [op.id for op in recovered.operations] == ["y1", "y2", "y3"]
    assert store.load_lease(RT) is not None  # claimed although there was none: unfenced writes are refused now
    with pytest.raises(OwnershipLost):
        store.append_ops_record(RT, b"{}")


class _ReleaseFails(SqliteRuntimeStore):
    def release_lease(self, fence: Fence, runtime_id: str) -> None:
        raise ReadFailed(runtime_id, "release failed")


def test_a_failing_release_does_not_hide_the_write_error(tmp_path: Path) -> None:
    store = _ReleaseFails(str(tmp_path / "ops.sqlite"))
    interleaved(store)
    salvage = salvage_ops(store, RT)
    store.delete_ops_lifecycle(RT)  # the state changes after the salvage was read
    with pytest.raises(OpsStateChanged) as raised:
        write_salvaged_ops(store, salvage)
    assert any("release failed" in note for note in raised.value.__notes__)


def test_an_unreadable_snapshot_is_diagnosed_without_the_salvage_hint(tmp_path: Path) -> None:
    store = SqliteRuntimeStore(str(tmp_path / "ops.sqlite"))
    store.persist_ops_lifecycle(RT, b'{"not": "a snapshot"}')
    with pytest.raises(SnapshotFormatError, match="ops snapshot"):
        salvage_ops(store, RT)
    (problem,) = [p for p in diagnose_session(store, SESSION).other_problems if p.startswith("ops state:")]
    assert "ops snapshot" in problem and OPS_SALVAGE_HINT not in problem


def test_journal_records_without_a_snapshot_are_diagnosed_with_the_salvage_hint(tmp_path: Path) -> None:
    store = SqliteRuntimeStore(str(tmp_path / "ops.sqlite"))
    store.append_ops_record(RT, b"{}")
    (problem,) = [p for p in diagnose_session(store, SESSION).other_problems if p.startswith("ops state:")]
    assert "without a base snapshot" in problem and OPS_SALVAGE_HINT in problem
    write_salvaged_ops(store, salvage_ops(store, RT))
    assert load_persisted_ops(store, RT) is None
