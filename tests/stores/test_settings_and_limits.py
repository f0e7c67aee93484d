"""Settings and stored data never raise raw exceptions: every numeric setting is bounded,
unusable paths are refused at construction, decoded JSON has size and nesting limits, and a
damaged page is refused on open with a ``Corrupt`` naming where."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from meerkat_runtime.ops.config import OpsLifecycleConfig
from meerkat_runtime.ops.journal import JournalRecord
from meerkat_runtime.ops.persistence import StoreOpsPersistence
from meerkat_runtime.ops.recovery import load_persisted_ops
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.ops.snapshot import PersistedOpsSnapshot
from meerkat_runtime.ops.wire import dump_document
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.session.row_codec import RowFormatError, decode_lifecycle, decode_record
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.store.records import BoundaryReceipt, InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.errors import (
    Corrupt,
    InvalidField,
    InvalidSetting,
    MeerkatError,
    PersistenceFailed,
    SnapshotFormatError,
    WriteFailed,
)
from meerkat_runtime.vocab.json_limits import (
    MAX_JSON_BYTES,
    MAX_JSON_DEPTH,
    JsonLimitExceeded,
    check_depth,
    check_size,
    depth,
    load_json,
)

from tests.runtime_ops.helpers import bg_spec, completed, result, running

RT = "rt:session:limits"


def _nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


# --- numeric settings -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: SqliteRuntimeStore(":memory:", busy_timeout_ms=2**31), "busy_timeout_ms"),
        (lambda: SqliteRuntimeStore(":memory:", busy_timeout_ms=-1), "busy_timeout_ms"),
        (lambda: SqliteRuntimeStore(":memory:", busy_timeout_ms=True), "busy_timeout_ms"),
        (lambda: SqliteRuntimeStore(":memory:", busy_timeout_ms=5.5), "busy_timeout_ms"),
        (lambda: SqliteRuntimeStore(":memory:", integrity_check="thorough"), "integrity_check"),
        (lambda: SqliteRuntimeStore(":memory:", wal_check=1), "wal_check"),
        (lambda: SqliteRuntimeStore(":memory:", synchronous="OFF"), "synchronous"),
        (lambda: SqliteRuntimeStore(":memory:", clock=5), "clock"),
        (lambda: OpsLifecycleConfig(max_completed=2**62), "max_completed"),
        (lambda: OpsLifecycleConfig(max_completed=-1), "max_completed"),
        (lambda: OpsLifecycleConfig(max_concurrent=2**62), "max_concurrent"),
        (lambda: OpsLifecycleRegistry.with_config(max_completed=2**62), "max_completed"),
        (lambda: StoreOpsPersistence(InMemoryRuntimeStore(), RT, compact_every=0), "compact_every"),
        (lambda: StoreOpsPersistence(InMemoryRuntimeStore(), RT, compact_every=2**62), "compact_every"),
        (lambda: StoreOpsPersistence(InMemoryRuntimeStore(), RT, compact_ratio=float("nan")), "compact_ratio"),
        (lambda: StoreOpsPersistence(InMemoryRuntimeStore(), "", compact_every=1), "runtime_id"),
        (lambda: OwnershipConfig(lease_s=1e12), "lease_s"),
        (lambda: OwnershipConfig(lease_s=float("inf")), "lease_s"),
        (lambda: OwnershipConfig(renew_every_s=0.0), "renew_every_s"),
        (lambda: OwnershipConfig(wait_poll_s=10**9), "wait_poll_s"),
        (lambda: OwnershipConfig(lease_s=5e-324), "lease_s must be at least 0.1 s"),
        (lambda: OwnershipConfig(lease_s=0.09), "lease_s must be at least 0.1 s"),
        (lambda: OwnershipConfig(lease_s=1.0, renew_every_s=1e-12), "renew_every_s must be at least 0.001 s"),
        (lambda: OwnershipConfig(wait_poll_s=1e-9), "wait_poll_s must be at least 0.001 s"),
    ],
)
def test_an_out_of_range_setting_is_refused_naming_it(build: Any, name: str) -> None:
    with pytest.raises(InvalidSetting, match=name) as info:
        build()
    assert isinstance(info.value, ValueError) and info.value.kind == "invalid_setting"


def test_the_shortest_lease_derives_periods_well_above_zero() -> None:
    config = OwnershipConfig(lease_s=0.1)
    assert config.renew_every_s == pytest.approx(0.1 / 3) and config.poll_s == pytest.approx(0.005)


@pytest.mark.parametrize("reading", [float("nan"), float("inf"), -float("inf"), None, "12", True])
@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_store_clock_that_returns_no_finite_time_is_refused_and_nothing_is_leased(
    tmp_path: Path, kind: str, reading: object
) -> None:
    """An expiry of ``inf`` would hold the session for ever against every other owner; ``nan``
    compares false with every time. Claims, renewals and releases refuse such a reading, naming
    the clock, and write nothing."""
    readings = [1_000.0]
    clock: Any = lambda: readings[-1]  # noqa: E731
    store = (
        InMemoryRuntimeStore(clock=clock) if kind == "memory" else SqliteRuntimeStore(tmp_path / "s.db", clock=clock)
    )
    try:
        lease = store.claim_lease(RT, "owner", 10.0)
        readings.append(reading)  # type: ignore[arg-type]
        for call in (
            lambda: store.claim_lease("rt-other", "owner", 10.0),
            lambda: store.renew_lease(lease.fence, RT, 10.0),
            lambda: store.release_lease(lease.fence, RT),
        ):
            with pytest.raises(InvalidSetting, match="store's clock must return a finite number"):
                call()
        assert store.load_lease("rt-other") is None
        assert store.load_lease(RT) == lease
    finally:
        store.close()


def test_the_largest_busy_timeout_reaches_sqlite_unchanged() -> None:
    with SqliteRuntimeStore(":memory:", busy_timeout_ms=2**31 - 1) as store:
        assert store.settings()["busy_timeout"] == 2**31 - 1


def test_a_lease_longer_than_a_year_is_refused_by_the_store() -> None:
    store = InMemoryRuntimeStore()
    with pytest.raises(WriteFailed, match="lease duration"):
        store.claim_lease(RT, "owner", 1e12)
    assert store.load_lease(RT) is None


# --- paths ----------------------------------------------------------------------------------


def test_unusable_paths_are_refused_at_construction(tmp_path: Path) -> None:
    a_file = tmp_path / "plain.txt"
    a_file.write_text("not a folder")
    cases: list[tuple[Any, str]] = [
        ("", "must not be empty"),
        (str(a_file / "store.db"), "is a regular file, not a folder"),
        (str(a_file / "deeper" / "store.db"), "is a regular file, not a folder"),
        (str(tmp_path), "is a folder"),
        ("bad\x00name.db", "NUL"),
        (42, "string or os.PathLike"),
    ]
    for path, needle in cases:
        with pytest.raises(InvalidSetting, match=needle):
            SqliteRuntimeStore(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.txt"]  # nothing was created


def test_a_read_only_store_needs_an_existing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidSetting, match="existing database file"):
        SqliteRuntimeStore(tmp_path / "missing.db", read_only=True)
    with pytest.raises(InvalidSetting, match="existing database file"):
        SqliteRuntimeStore(":memory:", read_only=True)
    assert not (tmp_path / "missing.db").exists()


def test_a_read_only_store_reads_and_refuses_writes_and_creates_no_files(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    with SqliteRuntimeStore(path) as store:
        store.persist_input_state(RT, InputRow("a", b"1"))
    before = sorted(p.name for p in tmp_path.iterdir())
    content = path.read_bytes()
    with SqliteRuntimeStore(path, read_only=True) as store:
        assert store.load_input_states(RT) == [InputRow("a", b"1")]
        with pytest.raises(WriteFailed, match="read-only"):
            store.persist_input_state(RT, InputRow("b", b"1"))
    assert sorted(p.name for p in tmp_path.iterdir()) == before == ["ro.db"]
    assert path.read_bytes() == content


# --- the page check on open ---------------------------------------------------------------


def _table_leaf(path: Path, table: str) -> int:
    raw = sqlite3.connect(path)
    try:
        (page,) = raw.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
        return int(page)
    finally:
        raw.close()


def test_a_damaged_page_is_refused_on_open_naming_its_table(tmp_path: Path) -> None:
    path = tmp_path / "page.db"
    with SqliteRuntimeStore(path) as store:
        for n in range(5):
            store.persist_input_state(RT, InputRow(f"in-{n}", b"x" * 300))
    page = _table_leaf(path, "runtime_input_states")
    data = bytearray(path.read_bytes())
    offset = (page - 1) * 4096
    data[offset + 8 : offset + 10] = b"\xff\xf0"  # the first cell pointer: off the end of the page
    path.write_bytes(bytes(data))
    with pytest.raises(Corrupt, match="quick_check") as info:
        SqliteRuntimeStore(path)
    assert "(runtime_input_states) cell 0: Offset 65520 out of range" in str(info.value)
    assert info.value.runtime_id == "*"
    with pytest.raises(Corrupt, match="integrity_check"):
        SqliteRuntimeStore(path, integrity_check="full")
    with SqliteRuntimeStore(path, integrity_check="off") as store, pytest.raises(Corrupt):
        store.load_input_states(RT)  # off: the damage surfaces at the first read instead


# --- JSON limits ----------------------------------------------------------------------------


def test_load_json_refuses_deep_and_large_documents_without_recursion_errors() -> None:
    assert load_json(_nested(MAX_JSON_DEPTH)) == json.loads(_nested(MAX_JSON_DEPTH))
    for levels in (MAX_JSON_DEPTH + 1, 5_000, 200_000):
        with pytest.raises(JsonLimitExceeded, match="nested"):
            load_json(_nested(levels))
    with pytest.raises(JsonLimitExceeded, match="exceeds the limit"):
        load_json(b'"' + b"x" * 100 + b'"', max_bytes=50)
    check_size(b"x" * 50, 50)  # at the limit: read
    with pytest.raises(JsonLimitExceeded, match=r"^document of 51 bytes exceeds the limit of 50 bytes$"):
        check_size(b"x" * 51, 50)
    assert depth({"a": [1, {"b": []}]}) == 4 and depth("scalar") == 0
    with pytest.raises(JsonLimitExceeded):
        check_depth(json.loads(_nested(200)))


def test_every_decoder_of_stored_data_refuses_a_deep_document_with_its_typed_error() -> None:
    deep = b'{"format": ' + _nested(100_000) + b"}"
    with pytest.raises(SnapshotFormatError, match="JSON limits"):
        PersistedOpsSnapshot.from_json(deep)
    with pytest.raises(SnapshotFormatError, match="JSON limits"):
        JournalRecord.from_json(deep, "record")
    with pytest.raises(ValueError, match="nested"):
        BoundaryReceipt.from_json(deep)
    with pytest.raises(RowFormatError, match="nested"):
        decode_record(deep)
    with pytest.raises(RowFormatError, match="nested"):
        decode_lifecycle(deep)


def test_a_stored_receipt_nested_too_deep_is_corrupt_not_a_recursion_error(tmp_path: Path) -> None:
    from meerkat_runtime.store.integrity import row_checksum

    path = tmp_path / "r.db"
    with SqliteRuntimeStore(path) as store:
        store.persist_input_state(RT, InputRow("a", b"1"))
    body = _nested(100_000)
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute(
        "INSERT INTO runtime_boundary_receipts VALUES (?, 'run', 1, ?, ?)",
        (RT, body, row_checksum("runtime_boundary_receipts", RT, "run#1", body)),
    )
    raw.close()
    with SqliteRuntimeStore(path) as store, pytest.raises(Corrupt, match="nested"):
        store.load_boundary_receipt(RT, "run", 1)


def test_an_operation_result_too_deep_to_read_back_is_never_stored() -> None:
    """A result's fields are scalars checked at the door, so content nested beyond the JSON
    depth limit is refused there (naming the field), before anything is written or applied."""
    store = InMemoryRuntimeStore()
    registry = OpsLifecycleRegistry()
    registry.attach_persistence(StoreOpsPersistence(store, RT), "epoch", _cursors())
    oid = running(registry, bg_spec("deep"))
    deep: Any = "leaf"
    for _ in range(MAX_JSON_DEPTH + 5):
        deep = [deep]
    bad = result(oid)
    bad = type(bad)(oid, deep, False, 1, 0)  # content nested beyond the limit
    stored, mark = store.load_ops_lifecycle(RT), store.load_high_water(RT)
    with pytest.raises(InvalidField, match="'content' must be a string"):  # refused at the door
        registry.complete_operation(oid, bad)
    snapshot = registry.snapshot(oid)
    assert snapshot is not None and snapshot.status.value == "running"  # not applied
    assert (store.load_ops_lifecycle(RT), store.load_high_water(RT)) == (stored, mark)  # nothing written
    with pytest.raises(SnapshotFormatError, match="nested deeper"):  # and the writer never encodes one
        dump_document({"content": deep})


def test_the_ops_writer_refuses_a_document_over_the_size_limit() -> None:
    """The size twin of the nesting refusal: a document larger than a reader accepts is never
    returned to be written, and the error names its size and the limit."""
    small = {"content": "x" * 100}
    size = len(dump_document(small))
    assert dump_document(small, max_bytes=size) == dump_document(small)  # at the limit: written
    message = f"^document cannot be stored: it is {size} bytes, over the limit of {size - 1} bytes$"
    with pytest.raises(SnapshotFormatError, match=message):
        dump_document(small, max_bytes=size - 1)


def test_an_operation_result_too_large_to_read_back_is_never_stored(tmp_path: Path) -> None:
    """A result whose content is a string passes the door whatever its length; the journal
    record carrying it would be over the size a reader accepts, so the writer refuses it before
    the store is called: the call fails naming the size and the limit, the operation is still
    running in memory, the store holds what it held, the registry goes on (the operation then
    completes with a result that fits), and the store reads back after reopening."""
    path = tmp_path / "ops.db"
    with SqliteRuntimeStore(path) as store:
        registry = OpsLifecycleRegistry()
        sink = StoreOpsPersistence(store, RT)
        registry.attach_persistence(sink, "epoch", _cursors())
        first = completed(registry, "first")  # the first write: the full snapshot
        oid = running(registry, bg_spec("huge"))
        stored, mark = store.load_ops_lifecycle(RT), store.load_high_water(RT)
        huge = result(oid, "x" * (MAX_JSON_BYTES + 1))
        refusal = (
            "rolled back: the durable write failed: document cannot be stored: "
            rf"it is \d+ bytes, over the limit of {MAX_JSON_BYTES} bytes$"
        )  # refused before the store was called: no read-back, no "ambiguous failure"
        with pytest.raises(PersistenceFailed, match=refusal) as refused:
            registry.complete_operation(oid, huge)
        del huge, refused  # about 64 MiB each way: freed before going on
        snapshot = registry.snapshot(oid)
        assert snapshot is not None and snapshot.status.value == "running"  # not applied
        assert (store.load_ops_lifecycle(RT), store.load_high_water(RT)) == (stored, mark)  # nothing written
        registry.complete_operation(oid, result(oid, "fits"))  # not in doubt: the next call is written
        assert (sink.compactions, sink.appended) == (1, 1)  # appended: the journal was left as trusted
    with SqliteRuntimeStore(path) as store:
        recovered = load_persisted_ops(store, RT)
    assert recovered is not None
    assert sorted((op.spec.id, op.status.value) for op in recovered.operations) == sorted(
        [(first, "completed"), (oid, "completed")]
    )


def _cursors() -> Any:
    from meerkat_runtime.ops.cursors import EpochCursorState

    return EpochCursorState()


def test_errors_are_typed_meerkat_errors() -> None:
    assert issubclass(InvalidSetting, MeerkatError) and issubclass(InvalidSetting, ValueError)
