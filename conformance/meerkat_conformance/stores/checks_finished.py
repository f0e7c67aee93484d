"""Finished inputs and compaction: the reads a restart makes (the backlog, not history) and
``compact_inputs``, with the high-water mark kept consistent."""

from __future__ import annotations

from meerkat_runtime.store.high_water import MarkStep, advance
from meerkat_runtime.store.records import BoundaryKind, BoundaryReceipt, FinishedInput, InputRow
from meerkat_runtime.vocab.errors import OwnershipLost, WriteFailed, WriteRefused

from meerkat_conformance.stores.backend import StoreFactory
from meerkat_conformance.stores.failure import expect
from meerkat_conformance.stores.fixtures import RT, RT_OTHER, expect_error, fresh, opened

ACTIVE_A = InputRow("a", b"row a", None, "key-a", 1, b"fields of a")
FINISHED_B = InputRow("b", b"row b", 20.5, "key-b", 2)
FINISHED_C = InputRow("c", b"row c", 10.0, None, 3)
ACTIVE_D = InputRow("d", b"row d", None, None, 4, b"\x00fields of d\xff")


def _listed(row: InputRow) -> FinishedInput:
    assert row.finished_at is not None
    return FinishedInput(row.input_id, row.finished_at, row.idempotency_key, row.admission_seq)


def check_finished_inputs_and_compaction(factory: StoreFactory) -> None:
    """Rows keep ``finished_at``, idempotency key, admission position and ``queued`` as given
    (a finished row carrying ``queued`` is refused, nothing written; finishing a row clears it);
    ``load_active_input_states`` returns exactly the active rows, ``load_finished_inputs`` the
    finished ones without payloads (oldest ``finished_at`` first), ``load_input_state`` one row;
    ``compact_inputs`` deletes named finished rows (skipping missing names), refuses a call
    naming an active row or carrying a stale fence (nothing deleted), advances the mark by the
    rows it deleted, and everything survives a reopen."""
    with fresh(factory) as backend:
        with opened(backend) as store:
            store.persist_input_state(RT, ACTIVE_A)
            store.commit_machine_lifecycle(RT, b"lifecycle", [FINISHED_B, FINISHED_C, ACTIVE_D])
            store.persist_input_state(RT_OTHER, InputRow("b", b"other", 1.0, "key-b", 1))
            expect(store.load_input_states(RT) == [ACTIVE_A, FINISHED_B, FINISHED_C, ACTIVE_D], "all", "rows differ")
            expect(store.load_active_input_states(RT) == [ACTIVE_A, ACTIVE_D], "active", "not exactly the active rows")
            finished = store.load_finished_inputs(RT)
            want = [_listed(FINISHED_C), _listed(FINISHED_B)]
            expect(finished == want, "finished", f"finished inputs are {finished}, expected {want}")
            expect(store.load_input_state(RT, "b") == FINISHED_B, "one row", "load_input_state did not round-trip")
            expect(store.load_input_state(RT, "zz") is None, "one row", "a missing row is not None")
            done_a = InputRow("a", b"row a, finished", 30.0, "key-a", 1)
            store.persist_input_state(RT, done_a)
            expect(store.load_active_input_states(RT) == [ACTIVE_D], "finish", "a finished row is still listed active")
            expect(store.load_input_state(RT, "a") == done_a, "finish", "the finished row kept its queued fields")
            bad = InputRow("x", b"row x", 5.0, None, 9, b"fields")
            expect_error("queued on a finished row", WriteFailed, lambda: store.persist_input_state(RT, bad))
            expect(store.load_input_state(RT, "x") is None, "queued on a finished row", "a refused row was written")
            expect(store.load_finished_inputs(RT)[-1] == _listed(done_a), "finish", "the finished row is not listed")

            mark = store.load_high_water(RT)
            expect_error("active row named", WriteRefused, lambda: store.compact_inputs(RT, ["c", "d"]))
            expect(store.load_high_water(RT) == mark, "active row named", "a refused compaction moved the mark")
            expect(len(store.load_input_states(RT)) == 4, "active row named", "a refused compaction deleted rows")
            removed = store.compact_inputs(RT, ["b", "missing", "b"])
            expect(removed == 1, "compact", f"compact_inputs reported {removed} rows deleted, expected 1")
            mark = advance(mark, RT, MarkStep(inputs_removed=1))
            expect(store.load_high_water(RT) == mark, "compact", "the mark did not follow the compaction")
            expect(store.load_input_state(RT, "b") is None, "compact", "a compacted row can still be read")
            expect(store.load_input_state(RT_OTHER, "b") is not None, "compact", "another runtime's row was deleted")
            expect(
                [f.input_id for f in store.load_finished_inputs(RT)] == ["c", "a"], "compact", "finished list is wrong"
            )
            expect(len(store.load_input_states(RT)) == mark.inputs, "compact", "rows and the mark disagree")

            lease = store.claim_lease(RT, "worker-1", 30.0)
            expect_error("unfenced compaction", OwnershipLost, lambda: store.compact_inputs(RT, ["c"]))
            expect(store.load_input_state(RT, "c") is not None, "unfenced compaction", "a refused call deleted a row")
            expect(store.compact_inputs(RT, ["c"], fence=lease.fence) == 1, "fenced compaction", "row not deleted")
            mark = advance(mark, RT, MarkStep(inputs_removed=1))
        with opened(backend) as store:
            expect(store.load_high_water(RT) == mark, "reopen", "the mark changed across a reopen")
            expect(store.load_active_input_states(RT) == [ACTIVE_D], "reopen", "active rows changed across a reopen")
            expect(
                store.load_finished_inputs(RT) == [_listed(done_a)], "reopen", "finished rows changed across a reopen"
            )


def _receipt(run_id: str, *inputs: str) -> BoundaryReceipt:
    return BoundaryReceipt(run_id, 0, BoundaryKind.RUN_CHECKPOINT, inputs, None, len(inputs))


def check_compaction_releases_receipts(factory: StoreFactory) -> None:
    """``compact_inputs`` deletes, in its transaction, the boundary receipts naming a compacted
    input once none of their contributing inputs is stored (the mark's ``receipts`` follows),
    and keeps every other one: a receipt of a kept row, of an active row, of another runtime, one
    naming a stored input besides a compacted one, one naming no input; so receipts stay bounded
    by the rows kept, and a receipt that can still be read back is never deleted."""
    with fresh(factory) as backend:
        with opened(backend) as store:
            done = [InputRow(i, f"row {i}".encode(), 1.0 + n, None, n) for n, i in enumerate("befg")]
            active = InputRow("h", b"row h", None, None, 9, b"fields")
            for run, row in zip(("r-b", "r-e", "r-f", "r-g"), done, strict=True):
                store.atomic_apply(RT, session_snapshot=None, receipt=_receipt(run, row.input_id), rows=[row])
            store.atomic_apply(RT, session_snapshot=None, receipt=_receipt("r-h", "h"), rows=[active])
            store.atomic_apply(RT, session_snapshot=None, receipt=_receipt("r-fg", "f", "g"), rows=[])
            store.atomic_apply(RT, session_snapshot=None, receipt=_receipt("r-none"), rows=[])
            store.atomic_apply(RT_OTHER, session_snapshot=None, receipt=_receipt("r-b", "b"), rows=[done[0]])
            mark = store.load_high_water(RT)
            expect(store.compact_inputs(RT, ["b", "f"]) == 2, "compact", "rows not deleted")
            mark = advance(mark, RT, MarkStep(inputs_removed=2, receipts_removed=2))
            expect(store.load_high_water(RT) == mark, "compact", "the mark does not count the released receipts")
            for run in ("r-b", "r-f"):
                expect(store.load_boundary_receipt(RT, run, 0) is None, "compact", f"receipt {run} was kept")
            for run in ("r-e", "r-g", "r-h", "r-fg", "r-none"):
                expect(store.load_boundary_receipt(RT, run, 0) is not None, "compact", f"receipt {run} was deleted")
            expect(store.load_boundary_receipt(RT_OTHER, "r-b", 0) is not None, "compact", "another runtime's receipt")
            expect(store.compact_inputs(RT, ["g", "b"]) == 1, "last contributor", "row g not deleted")
            mark = advance(mark, RT, MarkStep(inputs_removed=1, receipts_removed=2))
            expect(store.load_high_water(RT) == mark, "last contributor", "the mark does not follow")
            for run in ("r-g", "r-fg"):
                expect(store.load_boundary_receipt(RT, run, 0) is None, "last contributor", f"receipt {run} was kept")
            expect(store.compact_inputs(RT, ["g"]) == 0, "retry", "a retried compaction deleted a row")
            mark = advance(mark, RT, MarkStep())
            expect(store.load_high_water(RT) == mark, "retry", "a retried compaction moved the counts")
        with opened(backend) as store:
            expect(store.load_high_water(RT) == mark, "reopen", "the mark changed across a reopen")
            kept = [r for r in ("r-e", "r-h", "r-none") if store.load_boundary_receipt(RT, r, 0) is not None]
            expect(len(kept) == 3, "reopen", f"receipts kept across a reopen: {kept}")
