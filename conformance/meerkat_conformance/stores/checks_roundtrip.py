"""Round-trip checks: what a store is given comes back byte-exact, also after a reopen."""

from __future__ import annotations

import random

from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.records import OpsLifecycleRecords

from meerkat_conformance.stores.backend import StoreFactory
from meerkat_conformance.stores.failure import expect
from meerkat_conformance.stores.fixtures import RT, as_dict, fresh, opened, receipt, row

BIG = bytes(range(256)) * 8192  # 2 MiB, every byte value


def check_input_round_trip(factory: StoreFactory) -> None:
    """Rows come back exact and ordered by input id; an upsert replaces; data survives reopen."""
    samples = {"empty": b"", "binary": b"\x00\xff\x00nul", "big": BIG, "\u00fcnicode-\u00efd": "\u2603".encode()}
    with fresh(factory) as backend:
        with opened(backend) as store:
            expect(store.load_input_states(RT) == [], "fresh store", "rows of an unknown runtime are not []")
            items = list(samples.items())
            random.Random(7).shuffle(items)
            for input_id, payload in items:
                store.persist_input_state(RT, row(input_id, payload))
            loaded = store.load_input_states(RT)
            expect([r.input_id for r in loaded] == sorted(samples), "order", "rows are not ordered by input id")
            expect(as_dict(loaded) == samples, "payloads", "a payload did not round-trip byte-exact")
            store.persist_input_state(RT, row("binary", b"replaced"))
            after = as_dict(store.load_input_states(RT))
            expect(after["binary"] == b"replaced", "upsert", "persisting an existing id did not replace its payload")
            expect(len(after) == len(samples), "upsert", "persisting an existing id added a row")
        with opened(backend) as store:
            expect(as_dict(store.load_input_states(RT)) == after, "reopen", "rows changed across close and reopen")


def check_boundary_round_trip(factory: StoreFactory) -> None:
    """Receipts, snapshots and rows written by ``atomic_apply`` come back, also after reopen."""
    first = receipt("run-1", 1, "in-a", "in-b", digest="sha256:abc", count=7)
    with fresh(factory) as backend:
        with opened(backend) as store:
            expect(store.load_boundary_receipt(RT, "run-1", 1) is None, "fresh store", "unknown receipt is not None")
            expect(store.load_session_snapshot(RT) is None, "fresh store", "unknown session snapshot is not None")
            store.atomic_apply(RT, session_snapshot=b"snap-1", receipt=first, rows=[row("in-a", "A"), row("in-b", "B")])
            expect(store.load_boundary_receipt(RT, "run-1", 1) == first, "receipt", "the receipt did not round-trip")
            expect(store.load_session_snapshot(RT) == b"snap-1", "snapshot", "the snapshot did not round-trip")
            expect(as_dict(store.load_input_states(RT)) == {"in-a": b"A", "in-b": b"B"}, "rows", "rows not written")
            store.atomic_apply(RT, session_snapshot=None, receipt=receipt("run-1", 2), rows=[row("in-a", "A2")])
            expect(store.load_session_snapshot(RT) == b"snap-1", "no snapshot", "snapshot=None replaced the snapshot")
            expect(store.load_boundary_receipt(RT, "run-1", 1) == first, "same run", "a later sequence lost the first")
            for seq in (0, (1 << 63) - 1, 1 << 63, (1 << 64) - 1):
                store.atomic_apply(RT, session_snapshot=None, receipt=receipt("run-edge", seq, f"seq-{seq}"), rows=[])
            for seq in (0, (1 << 63) - 1, 1 << 63, (1 << 64) - 1):
                got = store.load_boundary_receipt(RT, "run-edge", seq)
                expect(got is not None and got.contributing_input_ids == (f"seq-{seq}",), "u64", f"sequence {seq} lost")
            expect(store.load_boundary_receipt(RT, "run-1", 3) is None, "missing", "an unwritten sequence was found")
            store.atomic_apply(RT, session_snapshot=BIG, receipt=receipt("run-2", 1), rows=[])
        with opened(backend) as store:
            expect(store.load_session_snapshot(RT) == BIG, "reopen", "the large snapshot did not survive reopen")
            expect(store.load_boundary_receipt(RT, "run-1", 1) == first, "reopen", "the receipt did not survive reopen")
            expect(as_dict(store.load_input_states(RT))["in-a"] == b"A2", "reopen", "rows did not survive reopen")


def check_lifecycle_round_trip(factory: StoreFactory) -> None:
    """``commit_machine_lifecycle`` replaces the record and upserts rows; survives reopen."""
    with fresh(factory) as backend:
        with opened(backend) as store:
            expect(store.load_machine_lifecycle(RT) is None, "fresh store", "unknown lifecycle is not None")
            store.commit_machine_lifecycle(RT, b"life-1", [row("x", "1"), row("y", "1")])
            expect(store.load_machine_lifecycle(RT) == b"life-1", "commit", "lifecycle did not round-trip")
            store.commit_machine_lifecycle(RT, b"life-2", [])
            expect(store.load_machine_lifecycle(RT) == b"life-2", "replace", "lifecycle was not replaced")
            expect(as_dict(store.load_input_states(RT)) == {"x": b"1", "y": b"1"}, "rows", "rows changed or missing")
            store.commit_machine_lifecycle(RT, b"", [row("y", "2")])
        with opened(backend) as store:
            expect(store.load_machine_lifecycle(RT) == b"", "reopen", "empty lifecycle record did not survive reopen")
            expect(as_dict(store.load_input_states(RT)) == {"x": b"1", "y": b"2"}, "reopen", "rows lost on reopen")


def _ops(store: RuntimeStore) -> OpsLifecycleRecords | None:
    return store.load_ops_lifecycle(RT)


def check_ops_round_trip(factory: StoreFactory) -> None:
    """Appends accumulate after the snapshot; a snapshot compacts them; delete removes both."""
    with fresh(factory) as backend:
        with opened(backend) as store:
            expect(_ops(store) is None, "fresh store", "load_ops_lifecycle of an unknown runtime is not None")
            store.append_ops_record(RT, b"r1")
            store.append_ops_record(RT, b"")
            expect(_ops(store) == OpsLifecycleRecords(None, (b"r1", b"")), "append", "appended records not returned")
            store.persist_ops_lifecycle(RT, b"snap-1")
            expect(_ops(store) == OpsLifecycleRecords(b"snap-1", ()), "compaction", "snapshot did not drop records")
            store.append_ops_record(RT, b"r3")
        with opened(backend) as store:
            expect(_ops(store) == OpsLifecycleRecords(b"snap-1", (b"r3",)), "reopen", "ops state lost on reopen")
            store.persist_ops_lifecycle(RT, b"snap-2")
            expect(_ops(store) == OpsLifecycleRecords(b"snap-2", ()), "replace", "second snapshot did not replace")
            store.delete_ops_lifecycle(RT)
            expect(_ops(store) is None, "delete", "delete_ops_lifecycle left something behind")
            store.delete_ops_lifecycle(RT)
            store.append_ops_record(RT, b"after-delete")
            expect(_ops(store) == OpsLifecycleRecords(None, (b"after-delete",)), "after delete", "append after delete")
