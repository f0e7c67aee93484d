"""Durability on a real SQLite file: recovery in a fresh process, and after SIGKILL of a writer
in the middle of a burst (every acknowledged terminal transition must come back)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from meerkat_runtime.ops.recovery import load_persisted_ops, open_durable_ops
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.runtime_ops.helpers import bg_spec, completed, result, running

RT = canonical_runtime_id("session-sqlite")
WORKER = OwnershipConfig(owner_id="ops-worker")
"""One stable owner id for every process of these tests: a restarted writer takes the lease back
at once (the killed one held it)."""

RECOVER_AND_CONTINUE = textwrap.dedent(
    """
    import json, sys
    from meerkat_runtime.ops.recovery import open_durable_ops
    from meerkat_runtime.session.ownership import OwnershipConfig
    from meerkat_runtime.store.sqlite import SqliteRuntimeStore
    from meerkat_runtime.vocab.operation import OperationKind, OperationResult, OperationSpec

    path, rt = sys.argv[1], sys.argv[2]
    store = SqliteRuntimeStore(path)
    ops = open_durable_ops(store, rt, compact_every=4, ownership=OwnershipConfig(owner_id="ops-worker"))
    reg = ops.registry
    entries = reg.completion_feed().list_since(0).entries
    report = {
        "recovered": ops.recovered,
        "epoch": ops.epoch_id,
        "cursors": [ops.cursors.agent_applied, ops.cursors.runtime_observed, ops.cursors.runtime_injected],
        "feed": [[e.seq, e.operation_id] for e in entries],
        "tracked": list(reg.view().operation_ids),
    }
    reg.register_operation(OperationSpec("child-proc-op", OperationKind.BACKGROUND_TOOL_OP, "s", "child"))
    reg.provisioning_succeeded("child-proc-op")
    reg.complete_operation("child-proc-op", OperationResult("child-proc-op", "from child"))
    store.close()
    print(json.dumps(report))
    """
)

BURST_WRITER = textwrap.dedent(
    """
    import sys
    from meerkat_runtime.ops.recovery import open_durable_ops
    from meerkat_runtime.session.ownership import OwnershipConfig
    from meerkat_runtime.store.sqlite import SqliteRuntimeStore
    from meerkat_runtime.vocab.operation import OperationKind, OperationResult, OperationSpec

    path, rt = sys.argv[1], sys.argv[2]
    ops = open_durable_ops(
        SqliteRuntimeStore(path), rt, compact_every=8, ownership=OwnershipConfig(owner_id="ops-worker")
    )
    reg = ops.registry
    i = 0
    while True:
        oid = f"burst-{i}"
        reg.register_operation(OperationSpec(oid, OperationKind.BACKGROUND_TOOL_OP, "s", oid))
        reg.provisioning_succeeded(oid)
        reg.complete_operation(oid, OperationResult(oid, "ok"))
        seq = reg.snapshot(oid).completion_seq
        sys.stdout.write(f"ack {oid} {seq}\\n")
        sys.stdout.flush()
        i += 1
    """
)


def run_child(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_fresh_process_recovers_from_a_reopened_sqlite_file(tmp_path: Path) -> None:
    path = str(tmp_path / "ops.sqlite")
    store = SqliteRuntimeStore(path)
    ops = open_durable_ops(store, RT, compact_every=4, ownership=WORKER)
    ids = [completed(ops.registry, f"op{i}") for i in range(10)]
    pending = running(ops.registry, bg_spec("never-finished"))
    ops.cursors.advance_agent_applied(7)
    last = running(ops.registry, bg_spec("last"))
    ops.registry.complete_operation(last, result(last))  # carries the cursor move to disk
    store.close()

    proc = run_child(RECOVER_AND_CONTINUE, path, RT)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["recovered"] and report["epoch"] == ops.epoch_id
    assert report["cursors"] == [7, 0, 0]
    assert report["feed"] == [[i + 1, oid] for i, oid in enumerate([*ids, last])]
    assert pending not in report["tracked"], "non-terminal operations do not survive a restart"

    reopened = SqliteRuntimeStore(path)
    try:
        persisted = load_persisted_ops(reopened, RT)
        assert persisted is not None and persisted.epoch_id == ops.epoch_id
        back = OpsLifecycleRegistry.from_recovered(persisted)
        feed = back.completion_feed().list_since(0)
        assert [e.seq for e in feed.entries] == list(range(1, 13)), "seqs continue across processes"
        assert feed.entries[-1].operation_id == "child-proc-op"
    finally:
        reopened.close()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_every_acknowledged_terminal_survives_sigkill_mid_burst(tmp_path: Path) -> None:
    path = str(tmp_path / "burst.sqlite")
    SqliteRuntimeStore(path).close()
    proc = subprocess.Popen(
        [sys.executable, "-c", BURST_WRITER, path, RT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    acked: list[tuple[str, int]] = []
    try:
        assert proc.stdout is not None
        while len(acked) < 40:
            line = proc.stdout.readline()
            assert line, f"writer died early: {proc.stderr.read() if proc.stderr else ''}"
            _, oid, seq = line.split()
            acked.append((oid, int(seq)))
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    store = SqliteRuntimeStore(path)
    try:
        persisted = load_persisted_ops(store, RT)
        assert persisted is not None
        back = OpsLifecycleRegistry.from_recovered(persisted)
        recovered = {e.operation_id: e.seq for e in back.completion_feed().list_since(0).entries}
        for acked_id, acked_seq in acked:
            assert recovered.get(acked_id) == acked_seq, f"acknowledged {acked_id} (seq {acked_seq}) was lost"
        seqs = sorted(recovered.values())
        assert seqs == list(range(1, len(seqs) + 1)), "no gaps and no reuse"
        # the recovered registry keeps writing from where the killed one stopped
        reopened = open_durable_ops(store, RT, ownership=WORKER)
        after = completed(reopened.registry, "after-crash")
        assert reopened.registry.snapshot(after).completion_seq == seqs[-1] + 1  # type: ignore[union-attr]
    finally:
        store.close()


def test_threads_writing_through_one_sqlite_store_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "threads.sqlite")
    store = SqliteRuntimeStore(path)
    ops = open_durable_ops(store, RT, compact_every=5)
    done: list[str] = []

    def worker(n: int) -> None:
        for i in range(15):
            done.append(completed(ops.registry, f"t{n}-{i}"))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    store.close()
    reopened = SqliteRuntimeStore(path)
    try:
        persisted = load_persisted_ops(reopened, RT)
        assert persisted is not None
        entries = OpsLifecycleRegistry.from_recovered(persisted).completion_feed().list_since(0).entries
        assert sorted(e.operation_id for e in entries) == sorted(done)
        assert [e.seq for e in entries] == list(range(1, 61))
    finally:
        reopened.close()


def test_operations_registered_after_the_snapshot_come_back_in_registration_order(tmp_path: Path) -> None:
    """Registration is not durable and a journal record is written when an operation becomes
    terminal: recovery must still put the operations registered after the last snapshot in
    registration order, not in the order they finished (``view().operation_ids`` and the tie
    order of ``list_operations`` show it)."""
    path = str(tmp_path / "ops.sqlite")
    store = SqliteRuntimeStore(path)
    ops = open_durable_ops(store, RT, compact_every=1000)
    reg = ops.registry
    completed(reg, "first")  # the first write: the snapshot the later records follow
    for oid in ("a", "b", "c"):
        reg.register_operation(bg_spec("same", op_id=oid))
        reg.provisioning_succeeded(oid)
    for oid in ("c", "a", "b"):
        reg.complete_operation(oid, result(oid))
    assert (ops.persistence.compactions, ops.persistence.appended) == (1, 3)
    live_ids = reg.view().operation_ids
    live_listed = [(op.display_name, op.id) for op in reg.list_operations()]
    assert live_ids[1:] == ("a", "b", "c")
    store.close()

    reopened = SqliteRuntimeStore(path)
    try:
        recovered = open_durable_ops(reopened, RT).registry
        assert recovered.view().operation_ids == live_ids
        assert [(op.display_name, op.id) for op in recovered.list_operations()] == live_listed
        assert recovered.view().completed_order == (*live_ids[:1], "c", "a", "b")
    finally:
        reopened.close()
