"""Several processes opening the same new SQLite file at once.

The interleaving that matters is forced, not hoped for: while one store opens a new file,
another process creates the store's schema in that same file, landing just before one chosen
statement of the opening store (each statement it runs outside a transaction in turn, until
the open has no statement left). Whichever statement the creation lands before, the open must
succeed on the schema the other process committed, never refuse the file as not a store. The
other process may also hold its schema transaction open, uncommitted, across one statement of
the open and commit before the next. (The hook is SQLite's statement trace, called as a
statement starts, before it reads the file.)
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from meerkat_conformance.stores.childproc import child_env
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.sqlite_schema import SCHEMA_VERSION, NotAMeerkatStore

RT = "rt-1"

_CREATE = (
    "import sys\n"
    "from meerkat_runtime.store.sqlite import SqliteRuntimeStore\n"
    "from meerkat_runtime.store.records import InputRow\n"
    "with SqliteRuntimeStore(sys.argv[1]) as s:\n"
    "    s.persist_input_state(sys.argv[2], InputRow('from-the-other', b'x'))\n"
)


def _create_in_another_process(path: Path) -> str | None:
    """Open a store on ``path`` in a child process, write one row, close it; what went wrong, if anything."""
    child = subprocess.run(
        [sys.executable, "-c", _CREATE, str(path), RT], env=child_env(), capture_output=True, timeout=120, check=False
    )
    return None if child.returncode == 0 else child.stderr.decode()


_CREATE_HELD = (
    "import sqlite3, sys\n"
    "from meerkat_runtime.store.sqlite_schema import migrate\n"
    "conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)\n"
    "conn.execute('PRAGMA journal_mode = WAL')\n"
    "conn.execute('BEGIN IMMEDIATE')\n"
    "migrate(conn)\n"
    "print('ready', flush=True)\n"
    "sys.stdin.readline()\n"
    "conn.execute('COMMIT')\n"
    "conn.close()\n"
)


class _HeldCreation:
    """Another process creating the store's schema in ``path`` in one transaction that it holds
    open, uncommitted, from :meth:`begin` until :meth:`commit`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.child: subprocess.Popen[str] | None = None

    def begin(self) -> str | None:
        self.child = subprocess.Popen(
            [sys.executable, "-c", _CREATE_HELD, str(self.path)],
            env=child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.child.stdout is not None
        if self.child.stdout.readline().strip() == "ready":
            return None
        return self.child.communicate(timeout=120)[1]

    def commit(self) -> str | None:
        """Let the transaction commit (if :meth:`begin` started it) and wait for the process."""
        child, self.child = self.child, None
        if child is None:
            return None
        _, err = child.communicate("commit\n", timeout=120)
        return None if child.returncode == 0 else err


@dataclass
class _Point:
    """Where ``act`` runs: before the ``before``-th statement (from 0) the store's connections
    start outside a transaction (inside one the other process would wait for this one's lock),
    or, given a string, before the first statement starting with it; never before a statement
    starting with ``never_before``."""

    before: int | str
    act: Callable[[], str | None]
    never_before: str | None = None
    seen: int = 0
    happened: bool = False
    armed: bool = True
    failures: list[str] = field(default_factory=list)

    def statement(self, conn: sqlite3.Connection, sql: str) -> None:
        if not self.armed or self.happened or conn.in_transaction:
            return
        if self.never_before is not None and sql.startswith(self.never_before):
            pass
        elif self.before == self.seen if isinstance(self.before, int) else sql.startswith(self.before):
            self.happened = True
            if (failure := self.act()) is not None:
                self.failures.append(failure)  # an error raised here would be swallowed by sqlite3
        self.seen += 1


@contextmanager
def _interleaved(monkeypatch: pytest.MonkeyPatch, *points: _Point) -> Iterator[None]:
    """Connections opened inside the block run each point's ``act`` at that point (once)."""
    connect: Callable[..., sqlite3.Connection] = sqlite3.connect

    def traced(*args: object, **kwargs: object) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)

        def statement(sql: str) -> None:
            for point in points:
                point.statement(conn, sql)

        conn.set_trace_callback(statement)
        return conn

    with monkeypatch.context() as patch:
        patch.setattr(sqlite3, "connect", traced)
        yield
    for point in points:
        point.armed = False  # later statements of the same connections do nothing
        assert point.failures == []


def _open_while_another_creates(monkeypatch: pytest.MonkeyPatch, path: Path, before: int) -> bool:
    """Open a store on the new ``path`` while another process creates the store in the same
    file, landing before the ``before``-th statement of the open. Returns whether it landed
    during the open (``False``: the open ran fewer statements). The opened store must then hold
    the other process's row and take writes."""
    point = _Point(before, lambda: _create_in_another_process(path))
    with _interleaved(monkeypatch, point):
        store = SqliteRuntimeStore(path, group_commit=False)
    try:
        assert store.settings()["schema_version"] == SCHEMA_VERSION
        if point.happened:
            assert [r.input_id for r in store.load_input_states(RT)] == ["from-the-other"]
        store.persist_input_state(RT, InputRow("from-this-one", b"y"))
    finally:
        store.close()
    return point.happened


@pytest.mark.parametrize("existing", [False, True], ids=["no-file", "zero-byte-file"])
def test_a_store_created_by_another_process_during_the_open_is_opened_at_any_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    """With ``existing``, the file is there, empty (another process's ``connect`` created it)."""
    points = 0
    while True:
        path = tmp_path / f"fresh-{points}.db"
        if existing:
            path.touch()
        if not _open_while_another_creates(monkeypatch, path, points):
            break
        points += 1
    assert points >= 5, "the open ran fewer statements than expected: the sweep covered too little"


def test_a_schema_another_process_holds_uncommitted_during_the_open_is_not_taken_for_a_foreign_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other process's schema transaction is open (uncommitted) as statement ``k`` of the
    open starts, and commits before statement ``k + 1``; ``k`` runs over the statements before
    the open's own write transaction (whose ``BEGIN IMMEDIATE`` waits for the other's lock)."""
    points = 0
    while True:
        path = tmp_path / f"fresh-{points}.db"
        held = _HeldCreation(path)
        begin = _Point(points, held.begin, never_before="BEGIN IMMEDIATE")
        try:
            with _interleaved(monkeypatch, begin, _Point(points + 1, held.commit)):
                store = SqliteRuntimeStore(path, group_commit=False)
        finally:
            held.commit()  # had the open failed before its next statement, the other would wait
        try:
            assert store.settings()["schema_version"] == SCHEMA_VERSION
            store.persist_input_state(RT, InputRow("from-this-one", b"y"))
        finally:
            store.close()
        if not begin.happened:
            break
        points += 1
    assert points >= 4, "the open ran fewer statements than expected: the sweep covered too little"


def _tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


def _add_foreign_table(path: Path) -> str | None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)")
    finally:
        conn.close()
    return None


def test_another_applications_database_is_still_refused_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    _add_foreign_table(path)
    before = path.read_bytes()
    with pytest.raises(NotAMeerkatStore, match="holds other tables"):
        SqliteRuntimeStore(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]


def test_a_file_another_application_fills_just_before_the_schema_is_created_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file was empty when the store first looked; another application's table is there
    when the store holds the write lock to create the schema: the schema is not added to it."""
    path = tmp_path / "app.db"
    point = _Point("BEGIN IMMEDIATE", lambda: _add_foreign_table(path))
    with _interleaved(monkeypatch, point), pytest.raises(NotAMeerkatStore, match="holds other tables"):
        SqliteRuntimeStore(path, group_commit=False)
    assert point.happened
    assert _tables(path) == {"orders"}
