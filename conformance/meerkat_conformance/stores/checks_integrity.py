"""Integrity checks: damaged rows fail closed with ``Corrupt``; malformed arguments are
refused with a typed error that names what was wrong."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, cast

from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.vocab.errors import Corrupt, ReadFailed, StoreError, WriteFailed

from meerkat_conformance.stores.backend import CAP_DAMAGE, ROW_KINDS, RowKind, RowRef, StoreFactory
from meerkat_conformance.stores.failure import NotApplicable, expect
from meerkat_conformance.stores.fixtures import RT, RT_OTHER, as_dict, expect_error, fresh, opened, receipt, row

DAMAGED_INPUT = "input-damaged"
DAMAGED_RUN = "run-damaged"


def _write_everything(store: RuntimeStore, rt: str) -> None:
    store.atomic_apply(
        rt,
        session_snapshot=b"snapshot of " + rt.encode(),
        receipt=receipt(DAMAGED_RUN, 5, DAMAGED_INPUT),
        rows=[row(DAMAGED_INPUT, "payload"), row("input-intact", "payload")],
    )
    store.commit_machine_lifecycle(rt, b"lifecycle of " + rt.encode(), [])
    store.persist_ops_lifecycle(rt, b"ops of " + rt.encode())
    store.append_ops_record(rt, b"record 0")
    store.append_ops_record(rt, b"record 1")


def _reader(store: RuntimeStore, kind: RowKind) -> Callable[[str], object]:
    readers: dict[RowKind, Callable[[str], object]] = {
        "input": store.load_input_states,
        "receipt": lambda rt: store.load_boundary_receipt(rt, DAMAGED_RUN, 5),
        "session_snapshot": store.load_session_snapshot,
        "machine_lifecycle": store.load_machine_lifecycle,
        "ops_snapshot": store.load_ops_lifecycle,
        "ops_record": store.load_ops_lifecycle,
    }
    return readers[kind]


def _ref(kind: RowKind) -> RowRef:
    return RowRef(kind, RT, input_id=DAMAGED_INPUT, run_id=DAMAGED_RUN, sequence=5, position=1)


def check_damaged_rows_fail_closed(factory: StoreFactory) -> None:
    """For every row family: a row damaged behind the store's back makes its read raise
    ``Corrupt`` naming the runtime id (and the input or run id where there is one); the same
    family of another runtime and the other families of the same runtime still load."""
    for kind in ROW_KINDS:
        with fresh(factory) as backend:
            if CAP_DAMAGE not in backend.capabilities:
                raise NotApplicable("backend offers no damage hook")
            with opened(backend) as store:
                _write_everything(store, RT)
                _write_everything(store, RT_OTHER)
                intact = {k: _reader(store, k)(RT) for k in ROW_KINDS}
            backend.damage(_ref(kind))
            mentions = (RT, *{"input": (DAMAGED_INPUT,), "receipt": (DAMAGED_RUN,)}.get(kind, ()))
            with opened(backend) as store:
                expect_error(f"damaged {kind}", Corrupt, functools.partial(_reader(store, kind), RT), mentions=mentions)
                _reader(store, kind)(RT_OTHER)
                for other in ROW_KINDS:
                    if other != kind and {other, kind} != {"ops_snapshot", "ops_record"}:
                        got = _reader(store, other)(RT)
                        expect(got == intact[other], f"damaged {kind}", f"undamaged {other} no longer loads the same")


def check_malformed_arguments_refused(factory: StoreFactory) -> None:
    """Empty runtime ids, non-bytes payloads, bad receipts and out-of-range sequences raise
    ``WriteFailed``/``ReadFailed`` before anything is written."""
    bad_any = cast(Any, None)
    with fresh(factory) as backend, opened(backend) as store:
        writes: dict[str, Callable[[], object]] = {
            "empty runtime id": lambda: store.persist_input_state("", row("a", "1")),
            "non-string runtime id": lambda: store.append_ops_record(cast(Any, 7), b"r"),
            "empty input id": lambda: store.persist_input_state(RT, row("", "1")),
            "non-row": lambda: store.commit_machine_lifecycle(RT, b"l", [cast(Any, ("a", b"1"))]),
            "non-bytes lifecycle": lambda: store.commit_machine_lifecycle(RT, cast(Any, "l"), []),
            "non-bytes snapshot": lambda: store.atomic_apply(
                RT, session_snapshot=cast(Any, "s"), receipt=receipt("r", 1), rows=[]
            ),
            "non-receipt": lambda: store.atomic_apply(RT, session_snapshot=None, receipt=bad_any, rows=[]),
            "negative sequence": lambda: store.atomic_apply(
                RT, session_snapshot=None, receipt=receipt("r", -1), rows=[]
            ),
            "sequence above u64": lambda: store.atomic_apply(
                RT, session_snapshot=None, receipt=receipt("r", 1 << 64), rows=[]
            ),
            "empty run id": lambda: store.atomic_apply(RT, session_snapshot=None, receipt=receipt("", 1), rows=[]),
        }
        for step, call in writes.items():
            expect_error(step, WriteFailed, call)
        reads: dict[str, Callable[[], object]] = {
            "empty runtime id (read)": lambda: store.load_input_states(""),
            "negative sequence (read)": lambda: store.load_boundary_receipt(RT, "r", -1),
        }
        for step, call in reads.items():
            expect_error(step, ReadFailed, call)
        expect(store.load_input_states(RT) == [], "nothing written", "a refused write stored a row")
        expect(store.load_machine_lifecycle(RT) is None, "nothing written", "a refused write stored a lifecycle")
        expect(store.load_session_snapshot(RT) is None, "nothing written", "a refused write stored a snapshot")
        expect(store.load_boundary_receipt(RT, "r", 1) is None, "nothing written", "a refused write stored a receipt")
        expect(as_dict(store.load_input_states(RT)) == {}, "nothing written", "rows appeared")
        err = expect_error("kind", StoreError, lambda: store.persist_input_state(RT, InputRow("x", bad_any)))
        expect(err.kind == "store_write_failed", "kind", f"error kind is {err.kind!r}")
