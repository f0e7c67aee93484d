"""Keying checks: ordering of rows and records, isolation between runtime ids, and listing them."""

from __future__ import annotations

import random
from collections.abc import Callable

from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.records import OpsLifecycleRecords
from meerkat_runtime.vocab.errors import ReadFailed

from meerkat_conformance.stores.backend import StoreFactory
from meerkat_conformance.stores.failure import expect
from meerkat_conformance.stores.fixtures import RT, as_dict, expect_error, fresh, opened, receipt, row

SIMILAR_IDS = ("rt:session:a", "rt:session:ab", "rt:session:A", "rt:session:%", "rt:session:_", "rt:session:a'b")


def check_ordering(factory: StoreFactory) -> None:
    """Input rows load ordered by input id (code-point order, whatever the write order);
    appended ops records load in append order (not sorted by content)."""
    ids = [f"in-{n}" for n in (1, 2, 9, 10, 11, 100, 20)] + ["In-0", "in-", "in-\u00e9", "in-~"]
    records = [str(n).encode() for n in range(60, 0, -1)] + [b"10", b"9"]
    with fresh(factory) as backend, opened(backend) as store:
        shuffled = list(ids)
        random.Random(11).shuffle(shuffled)
        for input_id in shuffled:
            store.persist_input_state(RT, row(input_id, input_id))
        got = [r.input_id for r in store.load_input_states(RT)]
        expect(got == sorted(ids), "input order", f"rows came back as {got}, expected {sorted(ids)}")
        for record in records:
            store.append_ops_record(RT, record)
        loaded = store.load_ops_lifecycle(RT)
        expect(loaded == OpsLifecycleRecords(None, tuple(records)), "record order", "records not in append order")
        store.persist_ops_lifecycle(RT, b"snap")
        for record in reversed(records):
            store.append_ops_record(RT, record)
        loaded = store.load_ops_lifecycle(RT)
        expect(
            loaded == OpsLifecycleRecords(b"snap", tuple(reversed(records))),
            "order after compaction",
            "records appended after a snapshot are not in append order",
        )


def check_runtime_isolation(factory: StoreFactory) -> None:
    """Runtime ids that share prefixes, differ in case or hold SQL wildcards never see each
    other's rows, receipts, snapshots, lifecycle records or ops records."""
    with fresh(factory) as backend:
        with opened(backend) as store:
            for n, rt in enumerate(SIMILAR_IDS):
                tag = f"{n}".encode()
                store.persist_input_state(rt, row("shared-id", tag))
                store.persist_input_state(rt, row(f"own-{n}", tag))
                store.atomic_apply(rt, session_snapshot=b"snap-" + tag, receipt=receipt("run", 1, f"own-{n}"), rows=[])
                store.commit_machine_lifecycle(rt, b"life-" + tag, [])
                store.persist_ops_lifecycle(rt, b"ops-" + tag)
                store.append_ops_record(rt, b"rec-" + tag)
            store.delete_ops_lifecycle(SIMILAR_IDS[0])
        with opened(backend) as store:
            expect(store.load_ops_lifecycle(SIMILAR_IDS[0]) is None, "delete", "delete_ops_lifecycle did not delete")
            for n, rt in enumerate(SIMILAR_IDS):
                tag = f"{n}".encode()
                step = f"runtime {rt!r}"
                expect(
                    as_dict(store.load_input_states(rt)) == {"shared-id": tag, f"own-{n}": tag},
                    step,
                    "input rows leaked between runtime ids",
                )
                got = store.load_boundary_receipt(rt, "run", 1)
                expect(got is not None and got.contributing_input_ids == (f"own-{n}",), step, "receipts leaked")
                expect(store.load_session_snapshot(rt) == b"snap-" + tag, step, "session snapshots leaked")
                expect(store.load_machine_lifecycle(rt) == b"life-" + tag, step, "lifecycle records leaked")
                if n:
                    want = OpsLifecycleRecords(b"ops-" + tag, (b"rec-" + tag,))
                    expect(store.load_ops_lifecycle(rt) == want, step, "ops state leaked or was deleted with another")
            expect(store.load_input_states("rt:session:") == [], "prefix", "a prefix of runtime ids matched rows")
            expect(store.load_input_states("rt:session:%") != [], "wildcard", "wildcard id lost its own rows")


def check_runtime_listing(factory: StoreFactory) -> None:
    """``list_runtimes`` names every runtime holding anything (whichever write put it there,
    a lease included), each once, in code-point order; an empty store lists none; a new
    handle lists the same; after ``close`` it raises ``ReadFailed``."""
    writes: dict[str, Callable[[RuntimeStore, str], object]] = {
        "rt:session:b-input": lambda store, rt: store.persist_input_state(rt, row("x", "1")),
        "rt:session:B-receipt": lambda store, rt: store.atomic_apply(
            rt, session_snapshot=None, receipt=receipt("run", 1), rows=[]
        ),
        "rt:session:a-lifecycle": lambda store, rt: store.commit_machine_lifecycle(rt, b"life", []),
        "rt:session:a": lambda store, rt: store.append_ops_record(rt, b"rec"),
        "rt:session:\u00e9-ops": lambda store, rt: store.persist_ops_lifecycle(rt, b"ops"),
        "rt:session:%-lease": lambda store, rt: store.claim_lease(rt, "owner", 60.0),
    }
    with fresh(factory) as backend:
        with opened(backend) as store:
            expect(store.list_runtimes() == [], "empty store", f"an empty store listed {store.list_runtimes()}")
            for rt, write in writes.items():
                write(store, rt)
            store.persist_input_state("rt:session:b-input", row("y", "2"))
            listed = store.list_runtimes()
            expect(listed == sorted(writes), "listing", f"listed {listed}, expected {sorted(writes)}")
        with opened(backend) as store:
            listed = store.list_runtimes()
            expect(listed == sorted(writes), "new handle", f"a new handle listed {listed}")
            store.close()
            expect_error("list_runtimes after close", ReadFailed, store.list_runtimes)
