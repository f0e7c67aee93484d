"""Damage-detection checks: the high-water mark every data write advances in its own
transaction (``meerkat_runtime.store.high_water.advance`` states the rule), the scan that
reports damaged rows instead of raising, and the quarantine that moves one row aside."""

from __future__ import annotations

import threading
from collections.abc import Callable

from meerkat_runtime.store.high_water import HighWater, MarkStep, advance
from meerkat_runtime.store.lease import Fence
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.vocab.errors import OwnershipLost, StoreError, WriteFailed, WriteRefused

from meerkat_conformance.stores.backend import CAP_DAMAGE, RowRef, StoreFactory
from meerkat_conformance.stores.failure import expect
from meerkat_conformance.stores.fixtures import RT, RT_OTHER, as_dict, expect_error, fresh, opened, receipt, row

Write = tuple[str, Callable[[RuntimeStore], object], MarkStep]


def _writes() -> list[Write]:
    """Every data write method, with the step the rule says it makes."""
    return [
        ("new input row", lambda s: s.persist_input_state(RT, row("a", "1")), MarkStep(inputs_added=1)),
        ("update of that row", lambda s: s.persist_input_state(RT, row("a", "2")), MarkStep()),
        (
            "atomic_apply with snapshot",
            lambda s: s.atomic_apply(
                RT, session_snapshot=b"snap", receipt=receipt("r", 1, "a"), rows=[row("a", "3"), row("b", "1")]
            ),
            MarkStep(inputs_added=1, receipts_added=1, session_snapshot=True),
        ),
        (
            "atomic_apply without snapshot, one id twice",
            lambda s: s.atomic_apply(
                RT, session_snapshot=None, receipt=receipt("r", 2), rows=[row("c", "1"), row("c", "2")]
            ),
            MarkStep(inputs_added=1, receipts_added=1),
        ),
        (
            "commit_machine_lifecycle",
            lambda s: s.commit_machine_lifecycle(RT, b"life", [row("b", "2"), row("d", "1")]),
            MarkStep(inputs_added=1, lifecycle=True),
        ),
        ("append_ops_record", lambda s: s.append_ops_record(RT, b"r1"), MarkStep(ops_records_added=1)),
        ("second append_ops_record", lambda s: s.append_ops_record(RT, b"r2"), MarkStep(ops_records_added=1)),
        (
            "persist_ops_lifecycle",
            lambda s: s.persist_ops_lifecycle(RT, b"ops"),
            MarkStep(ops_snapshot=True, ops_records_cleared=True),
        ),
        ("append after compaction", lambda s: s.append_ops_record(RT, b"r3"), MarkStep(ops_records_added=1)),
        (
            "delete_ops_lifecycle",
            lambda s: s.delete_ops_lifecycle(RT),
            MarkStep(ops_snapshot=False, ops_records_cleared=True),
        ),
        (
            "quarantine_row",
            lambda s: s.quarantine_row(RT, "d", "conformance"),
            MarkStep(inputs_removed=1, quarantined_added=1),
        ),
    ]


def check_high_water_mark(factory: StoreFactory) -> None:
    """Every data write advances the runtime's mark exactly as ``high_water.advance`` says
    (``writes`` + 1 and the row counts it changed; an update of a stored input id adds no row);
    refused writes (a duplicate receipt, a malformed row, a stale fence, quarantining a missing
    row) leave it unchanged; other runtimes are untouched; it survives a reopen."""
    with fresh(factory) as backend:
        with opened(backend) as store:
            expect(store.load_high_water(RT) is None, "no writes", "a runtime nothing was written for has a mark")
            expected: HighWater | None = None
            for step, write, change in _writes():
                write(store)
                expected = advance(expected, RT, change)
                got = store.load_high_water(RT)
                expect(got == expected, step, f"the mark is {got}, the rule gives {expected}")
            expect(
                len(store.load_input_states(RT)) == (expected.inputs if expected else -1),
                "final",
                "the mark's input count is not the number of stored rows",
            )
            refused: list[tuple[str, Callable[[], object]]] = [
                (
                    "duplicate receipt",
                    lambda: store.atomic_apply(RT, session_snapshot=None, receipt=receipt("r", 1), rows=[]),
                ),
                ("malformed row", lambda: store.commit_machine_lifecycle(RT, b"l2", [row("e", "1"), row("", "x")])),
                ("missing row", lambda: store.quarantine_row(RT, "nope", "conformance")),
            ]
            for step, call in refused:
                expect_error(step, WriteFailed, call)
                got = store.load_high_water(RT)
                expect(got == expected, step, f"a refused write moved the mark to {got}")
            lease = store.claim_lease(RT, "mark-owner", 60.0)
            stale = Fence("mark-owner", lease.token + 1)
            expect_error("stale fence", OwnershipLost, lambda: store.append_ops_record(RT, b"x", fence=stale))
            expect(store.load_high_water(RT) == expected, "stale fence", "a refused write moved the mark")
            expect(store.load_high_water(RT_OTHER) is None, "isolation", "another runtime got a mark")
        with opened(backend) as store:
            expect(store.load_high_water(RT) == expected, "reopen", "the mark changed across a reopen")


ROUNDS = 4
WRITES_PER_THREAD = 15
APPENDERS = 3
UPSERTERS = 2


def _write_at_once(store: RuntimeStore, rt: str) -> int:
    """A compactor, appenders (appending until the compactor is done, so appends race every
    compaction, the last one included) and upserters of the same input ids write ``rt`` at
    once, after one record appended first (so that a compaction always has a record to clear,
    however the threads are scheduled); returns how many writes were made."""
    store.append_ops_record(rt, b"before")
    compacted = threading.Event()
    made = [0] * (APPENDERS + 1 + UPSERTERS)
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(made))

    def compactor(slot: int) -> None:
        try:
            for i in range(WRITES_PER_THREAD):
                store.persist_ops_lifecycle(rt, f"snapshot-{i}".encode())
                made[slot] += 1
        finally:
            compacted.set()

    def appender(slot: int) -> None:
        while not compacted.is_set() or made[slot] < WRITES_PER_THREAD:
            store.append_ops_record(rt, f"{slot}-{made[slot]}".encode())
            made[slot] += 1

    def upserter(slot: int) -> None:
        for i in range(WRITES_PER_THREAD):
            store.persist_input_state(rt, row(f"in-{i}", str(slot)))
            made[slot] += 1

    def run(work: Callable[[int], None], slot: int) -> None:
        try:
            barrier.wait()
            work(slot)
        except BaseException as exc:
            errors.append(exc)
            compacted.set()

    works = [compactor, *[appender] * APPENDERS, *[upserter] * UPSERTERS]
    threads = [threading.Thread(target=run, args=(work, slot)) for slot, work in enumerate(works)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expect(not errors, rt, f"{len(errors)} writer thread(s) failed, first: {errors[:1]!r}")
    return 1 + sum(made)


def check_high_water_mark_concurrent(factory: StoreFactory) -> None:
    """Threads writing one runtime at once keep its mark exact: appends racing compactions
    (the mark's ``ops_records`` is the number of records left), upserts of the same new input
    ids from several threads (each id counted once), ``writes`` counting every write."""
    with fresh(factory) as backend, opened(backend) as store:
        for round_ in range(ROUNDS):
            rt = f"rt:session:concurrent-mark-{round_}"
            writes = _write_at_once(store, rt)
            mark = store.load_high_water(rt)
            ops = store.load_ops_lifecycle(rt)
            records = len(ops.appended) if ops is not None else -1
            inputs = len(store.load_input_states(rt))
            got = None if mark is None else (mark.writes, mark.ops_records, mark.ops_snapshots, mark.inputs)
            expect(
                got == (writes, records, 1, inputs),
                f"round {round_}",
                f"the mark (writes, ops_records, ops_snapshots, inputs) is {got}; the store holds "
                f"{(writes, records, 1, inputs)}",
            )


def check_quarantine(factory: StoreFactory) -> None:
    """``quarantine_row`` moves one input row (intact or damaged) into the quarantine in one
    transaction, keeping its bytes, with the reason and whether it was intact; the row leaves
    ``load_input_states``; a missing row is ``WriteRefused`` and a stale fence ``OwnershipLost``
    with nothing moved; ``scan_input_states`` returns a damaged row (``intact`` false) instead
    of raising; ``load_quarantined`` lists moves oldest first and survives a reopen."""
    with fresh(factory) as backend:
        with opened(backend) as store:
            store.commit_machine_lifecycle(RT, b"life", [row("keep", "k"), row("bad", "b"), row("odd", "o")])
            store.persist_input_state(RT_OTHER, row("bad", "other runtime"))
            scanned = store.scan_input_states(RT)
            expect(
                [(r.input_id, r.payload, r.intact) for r in scanned]
                == [("bad", b"b", True), ("keep", b"k", True), ("odd", b"o", True)],
                "scan",
                f"scan returned {scanned}",
            )
            expect_error("missing row", WriteRefused, lambda: store.quarantine_row(RT, "nope", "x"), mentions=(RT,))
            moved = store.quarantine_row(RT, "odd", "does not decode")
            expect(
                (moved.input_id, moved.payload, moved.intact, moved.reason) == ("odd", b"o", True, "does not decode"),
                "quarantine intact row",
                f"moved {moved}",
            )
            expect(as_dict(store.load_input_states(RT)) == {"keep": b"k", "bad": b"b"}, "after move", "row not moved")
            expect(as_dict(store.load_input_states(RT_OTHER)) == {"bad": b"other runtime"}, "isolation", "moved too")
            lease = store.claim_lease(RT, "q-owner", 60.0)
            stale = Fence("q-owner", lease.token + 1)
            expect_error("unfenced", OwnershipLost, lambda: store.quarantine_row(RT, "keep", "x"))
            expect_error("stale fence", OwnershipLost, lambda: store.quarantine_row(RT, "keep", "x", fence=stale))
            expect("keep" in as_dict(store.load_input_states(RT)), "refused", "a refused quarantine moved the row")
            store.release_lease(lease.fence, RT)
            lease = store.claim_lease(RT, "q-owner", 60.0)
        damaged = CAP_DAMAGE in backend.capabilities
        if damaged:
            backend.damage(RowRef("input", RT, input_id="bad"))
        with opened(backend) as store:
            if damaged:
                expect_error("damaged read", StoreError, lambda: store.load_input_states(RT))
                flags = {r.input_id: r.intact for r in store.scan_input_states(RT)}
                expect(flags == {"bad": False, "keep": True}, "scan of a damaged row", f"scan flags {flags}")
            second = store.quarantine_row(RT, "bad", "checksum", fence=lease.fence)
            expect(second.intact is not damaged, "damaged row", f"intact is {second.intact} for the damaged row")
            expect(len(second.payload) > 0, "damaged row", "the damaged row's bytes were not kept")
            expect(as_dict(store.load_input_states(RT)) == {"keep": b"k"}, "after second move", "rows left wrong")
        with opened(backend) as store:
            kept = store.load_quarantined(RT)
            expect([q.input_id for q in kept] == ["odd", "bad"], "reopen", f"quarantine holds {kept}")
            expect(kept[0] == moved, "reopen", "the quarantined row changed across a reopen")
            mark = store.load_high_water(RT)
            expect(mark is not None and (mark.inputs, mark.quarantined) == (1, 2), "mark", f"the mark is {mark}")
