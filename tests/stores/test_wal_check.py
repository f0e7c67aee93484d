"""The write-ahead log check: a log SQLite would silently cut short of committed transactions is
refused before the store opens it; a torn tail (a commit cut short by a crash) and stale frames
of an earlier generation are not damage. Real logs written by the store, copied while open."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from meerkat_conformance.stores.childproc import child_env
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.sqlite_files import OPEN_FILES, read_file_set
from meerkat_runtime.store.sqlite_wal import FRAME_HEADER_BYTES, WalReport, analyse_wal
from meerkat_runtime.vocab.errors import Corrupt

from tests.stores.wal_files import RT, LogSet, copy_set, cut, flip, write_log_set

ROWS = 12
FRAME = FRAME_HEADER_BYTES + 4096


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> LogSet:
    return write_log_set(tmp_path_factory.mktemp("wal"), ROWS)


def _report(log: LogSet, *, shm: bool = True) -> WalReport:
    wal = log.wal.read_bytes() if log.wal.exists() else None
    return analyse_wal(wal, log.shm.read_bytes() if shm and log.shm.exists() else None, db_page_size=4096)


def _loaded(log: LogSet, **options: object) -> int:
    with SqliteRuntimeStore(log.db, **options) as store:  # type: ignore[arg-type]
        return len(store.load_input_states(RT))


def test_an_intact_log_is_recovered_whole(pristine: LogSet, tmp_path: Path) -> None:
    report = _report(pristine)
    frames = len(pristine.frames())
    assert report.ok and not report.torn_tail
    assert report.recovered_frames == report.recorded_frames == frames
    assert report.commits == len(pristine.commit_frames())
    log = copy_set(pristine, tmp_path, "intact")
    with SqliteRuntimeStore(log.db) as store:
        assert store.wal_report is not None and store.wal_report.ok
        assert len(store.load_input_states(RT)) == ROWS


@pytest.mark.parametrize(
    ("where", "delta"),
    [("page data", FRAME_HEADER_BYTES + 700), ("checksum field", 17), ("salt", 9), ("page number", 3)],
)
def test_a_bad_frame_before_later_commits_is_refused(pristine: LogSet, tmp_path: Path, where: str, delta: int) -> None:
    log = copy_set(pristine, tmp_path, "mid")
    middle = pristine.commit_frames()[len(pristine.commit_frames()) // 2]
    flip(log.wal, log.frame_offset(middle) + delta)
    for shm in (True, False):  # the frames after the damage prove it, with or without the wal-index
        report = _report(log, shm=shm)
        assert not report.ok, where
        assert report.first_bad_frame == middle
        assert report.lost_commit_frames and report.lost_commit_frames[-1] == pristine.commit_frames()[-1]
        assert "would be dropped by SQLite" in report.problems[0]
    with pytest.raises(Corrupt, match=r"write-ahead log .* damaged") as info:
        SqliteRuntimeStore(log.db)
    assert info.value.runtime_id == "*" and f"after bad frame {middle}" in str(info.value)


def test_with_the_check_off_sqlite_silently_drops_the_later_commits(pristine: LogSet, tmp_path: Path) -> None:
    log = copy_set(pristine, tmp_path, "off")
    flip(log.wal, log.frame_offset(pristine.commit_frames()[3]) + FRAME_HEADER_BYTES + 10)
    assert _loaded(log, wal_check=False) < ROWS  # what the check prevents: acknowledged rows gone, no error


def test_a_damaged_last_commit_is_caught_by_the_wal_index(pristine: LogSet, tmp_path: Path) -> None:
    log = copy_set(pristine, tmp_path, "last")
    last = pristine.commit_frames()[-1]
    flip(log.wal, log.frame_offset(last) + FRAME_HEADER_BYTES + 5)
    report = _report(log)
    assert not report.ok and report.recorded_frames == last and report.recovered_frames < last
    assert "-shm of the last writer records" in report.problems[0]
    without_index = _report(log, shm=False)  # alone, the log cannot tell it from a torn tail
    assert without_index.ok and without_index.torn_tail


@pytest.mark.parametrize("shape", ["boundary", "inside a frame", "inside the header", "empty", "deleted"])
def test_a_log_cut_short_of_recorded_commits_is_refused(pristine: LogSet, tmp_path: Path, shape: str) -> None:
    log = copy_set(pristine, tmp_path, "cut")
    commits = pristine.commit_frames()
    size = {
        "boundary": log.frame_offset(commits[-3] + 1),
        "inside a frame": log.frame_offset(commits[-2]) + 1000,
        "inside the header": 20,
        "empty": 0,
    }.get(shape)
    if size is None:
        log.wal.unlink()
    else:
        cut(log.wal, size)
    report = _report(log)
    assert not report.ok, shape
    with pytest.raises(Corrupt):
        SqliteRuntimeStore(log.db)


def test_a_log_cut_at_its_end_loses_nothing(pristine: LogSet, tmp_path: Path) -> None:
    log = copy_set(pristine, tmp_path, "end")
    cut(log.wal, log.frame_offset(len(pristine.frames()) + 1))
    assert _report(log).ok
    assert _loaded(log) == ROWS


@pytest.mark.parametrize("tail", ["partial frame", "full frame with a bad checksum"])
def test_a_torn_tail_is_not_damage(pristine: LogSet, tmp_path: Path, tail: str) -> None:
    log = copy_set(pristine, tmp_path, "torn")
    data = log.wal.read_bytes()
    last = data[-FRAME:]
    extra = last[:100] if tail == "partial frame" else last[:FRAME_HEADER_BYTES] + bytes(4096)
    log.wal.write_bytes(data + extra)  # a commit being written when the process died
    report = _report(log)
    assert report.ok and report.torn_tail, report
    assert _loaded(log) == ROWS


def test_stale_frames_of_an_earlier_generation_are_not_damage(tmp_path: Path) -> None:
    log = write_log_set(tmp_path, 30, name="gen", before_copy=26)
    report = _report(log)
    assert report.ok and not report.torn_tail
    assert report.recovered_frames < report.frames
    assert any("earlier log generation" in note for note in report.notes)
    assert _loaded(log) == 30


@pytest.mark.parametrize(("what", "offset"), [("magic", 1), ("salt", 17), ("checksum", 25), ("page size", 10)])
def test_a_damaged_log_header_is_refused(pristine: LogSet, tmp_path: Path, what: str, offset: int) -> None:
    log = copy_set(pristine, tmp_path, "header")
    flip(log.wal, offset)
    for shm in (True, False):
        report = _report(log, shm=shm)
        assert not report.ok and not report.header_valid, (what, shm)


def test_a_damaged_wal_index_is_ignored(pristine: LogSet, tmp_path: Path) -> None:
    log = copy_set(pristine, tmp_path, "shm")
    flip(log.shm, 16)  # mxFrame of the first copy: the two copies disagree
    report = _report(log)
    assert report.ok and report.recorded_frames is None
    assert _loaded(log) == ROWS


def test_a_log_is_not_read_while_another_process_has_the_database_open(pristine: LogSet, tmp_path: Path) -> None:
    log = copy_set(pristine, tmp_path, "busy")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('select count(*) from sqlite_master');"
            "print('ready', flush=True); sys.stdin.read()",
            str(log.db),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        assert read_file_set(str(log.db)).in_use
        with SqliteRuntimeStore(log.db) as store:
            assert store.wal_report is None  # SQLite already recovered it in the other process
            assert len(store.load_input_states(RT)) == ROWS
    finally:
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()


def test_a_second_store_of_this_process_does_not_reread_the_files(pristine: LogSet, tmp_path: Path) -> None:
    log = copy_set(pristine, tmp_path, "twice")
    with SqliteRuntimeStore(log.db) as first:
        assert first.wal_report is not None and OPEN_FILES.count(str(log.db)) == 1
        with SqliteRuntimeStore(log.db) as second:
            assert second.wal_report is None and OPEN_FILES.count(str(log.db)) == 2
            second.persist_input_state(RT, first.load_input_states(RT)[0])
        assert len(first.load_input_states(RT)) == ROWS
    assert OPEN_FILES.count(str(log.db)) == 0


def test_a_refused_open_leaves_nothing_counted_and_the_files_untouched(pristine: LogSet, tmp_path: Path) -> None:
    log = copy_set(pristine, tmp_path, "refused")
    flip(log.wal, log.frame_offset(2) + 100)
    before = {p: p.read_bytes() for p in (log.db, log.wal, log.shm)}
    with pytest.raises(Corrupt):
        SqliteRuntimeStore(log.db)
    assert OPEN_FILES.count(str(log.db)) == 0
    assert {p: p.read_bytes() for p in before} == before
