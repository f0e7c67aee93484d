"""Many threads registering and finishing operations at once: counts and sequences stay exact."""

from __future__ import annotations

import asyncio
import threading

from meerkat_runtime.ops.config import OpsLifecycleConfig
from meerkat_runtime.ops.recovery import load_persisted_ops, open_durable_ops
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.vocab.errors import MaxConcurrentExceeded
from meerkat_runtime.vocab.operation import Cancelled, Completed

from tests.runtime_ops.helpers import bg_spec, result

THREADS = 8
PER_THREAD = 150


def hammer(reg: OpsLifecycleRegistry, worker: int, finished: list[str]) -> None:
    for i in range(PER_THREAD):
        spec = bg_spec(f"w{worker}", op_id=f"w{worker}-{i}")
        while True:
            try:
                reg.register_operation(spec)
                break
            except MaxConcurrentExceeded:
                continue
        reg.provisioning_succeeded(spec.id)
        reg.report_progress(spec.id)
        if i % 3 == 0:
            reg.cancel_operation(spec.id, "half")
        else:
            reg.complete_operation(spec.id, result(spec.id))
        finished.append(spec.id)


def run_threads(reg: OpsLifecycleRegistry) -> list[str]:
    finished: list[str] = []
    threads = [threading.Thread(target=hammer, args=(reg, w, finished)) for w in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return finished


def test_concurrent_threads_keep_counts_and_sequences_exact() -> None:
    reg = OpsLifecycleRegistry.with_config(max_completed=100_000, max_concurrent=5)
    finished = run_threads(reg)
    total = THREADS * PER_THREAD
    assert len(finished) == total
    view = reg.view()
    assert view.active_count == 0 and len(view.operation_ids) == total
    entries = reg.completion_feed().list_since(0).entries
    assert [e.seq for e in entries] == list(range(1, total + 1))
    assert sorted(e.operation_id for e in entries) == sorted(finished)
    assert [e.operation_id for e in entries] == list(view.completed_order)
    outcomes = [reg.snapshot(oid).terminal_outcome for oid in finished]  # type: ignore[union-attr]
    assert sum(isinstance(o, Cancelled) for o in outcomes) == THREADS * len(range(0, PER_THREAD, 3))
    assert all(isinstance(o, Cancelled | Completed) for o in outcomes)


def test_concurrent_durable_transitions_are_all_recoverable() -> None:
    store = InMemoryRuntimeStore()
    config = OpsLifecycleConfig(max_completed=2000)
    ops = open_durable_ops(store, "rt:session:threads", config=config, compact_every=16)
    finished = run_threads(ops.registry)
    persisted = load_persisted_ops(store, "rt:session:threads")
    assert persisted is not None
    back = OpsLifecycleRegistry.from_recovered(persisted)
    entries = back.completion_feed().list_since(0).entries
    assert sorted(e.operation_id for e in entries) == sorted(finished)
    assert [e.seq for e in entries] == list(range(1, len(finished) + 1))


def test_watchers_from_many_event_loops_each_resolve_once() -> None:
    reg = OpsLifecycleRegistry()
    ids = [f"op-{i}" for i in range(16)]
    for oid in ids:
        reg.register_operation(bg_spec(oid, op_id=oid))
        reg.provisioning_succeeded(oid)
    got: list[object] = []
    ready = threading.Barrier(len(ids) + 1)

    def loop_thread(oid: str) -> None:
        async def main() -> object:
            watch = reg.register_watcher(oid)
            ready.wait()
            return await asyncio.wait_for(watch.wait(), 10)

        got.append(asyncio.run(main()))

    threads = [threading.Thread(target=loop_thread, args=(oid,)) for oid in ids]
    for t in threads:
        t.start()
    ready.wait()
    finisher = [threading.Thread(target=reg.complete_operation, args=(oid, result(oid))) for oid in ids]
    for t in finisher:
        t.start()
    for t in [*threads, *finisher]:
        t.join(30)
    assert sorted(got, key=repr) == sorted((Completed(result(oid)) for oid in ids), key=repr)
