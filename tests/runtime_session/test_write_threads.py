"""Where a session's durable write commits with store calls offloaded and group commit on: with
the store's writer idle and nothing else ready on the event loop, on the loop's own thread (no
thread hop); with other callbacks ready, off the loop (on the store's writer thread), so the
fsync does not hold them up; acknowledged only after its commit either way."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from meerkat_runtime.session.inputs import prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.store.sqlite import Body, SqliteRuntimeStore


@contextmanager
def _one_callback_always_ready() -> Iterator[None]:
    """While the block runs, the running loop always has one callback ready (it is never quiet)."""
    loop = asyncio.get_running_loop()
    spinning = True

    def spin() -> None:
        if spinning:
            loop.call_soon(spin)

    spin()
    try:
        yield
    finally:
        spinning = False


class _ThreadRecording(SqliteRuntimeStore):
    """Records the thread each input row's statements ran on: the thread of the transaction that
    commits the row (the caller's, or the store's writer). With ``repeatable`` the recording body
    keeps the row write's mark that it may run twice (a batch of such writes runs without
    savepoints), else it runs as any write."""

    def __init__(self, path: Path, repeatable: bool) -> None:
        super().__init__(path)
        self.threads: list[str] = []
        self.repeatable = repeatable

    def _write(self, runtime_id: str, what: str, body: Body) -> None:
        if what != "persist_input_state":
            super()._write(runtime_id, what, body)
            return

        def recorded(conn: sqlite3.Connection) -> object:
            self.threads.append(threading.current_thread().name)
            return body(conn)

        if self.repeatable:
            recorded.repeatable = getattr(body, "repeatable", False)  # type: ignore[attr-defined]
        super()._write(runtime_id, what, recorded)


@pytest.fixture(params=[True, False], ids=["repeatable", "savepoints"])
def repeatable(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def test_a_lone_write_on_a_quiet_loop_commits_on_the_loop_thread(tmp_path: Path, repeatable: bool) -> None:
    async def scenario() -> tuple[list[str], int, int]:
        store = _ThreadRecording(tmp_path / "s.sqlite3", repeatable)
        machine = MeerkatMachine.persistent(store, close_store=True)
        await machine.register_session("s")
        for i in range(5):
            await machine.accept_input("s", prompt(f"hello {i}"))
        before = store.commit_count
        await machine.close()
        reopened = SqliteRuntimeStore(tmp_path / "s.sqlite3")
        try:
            rows = len(reopened.load_input_states("rt:session:s"))
        finally:
            reopened.close()
        return store.threads, before, rows

    threads, commits, rows = asyncio.run(scenario())
    assert threads == [threading.main_thread().name] * 5
    assert rows == 5 and commits >= 5


def test_a_write_with_other_callbacks_ready_leaves_the_loop_thread(tmp_path: Path, repeatable: bool) -> None:
    async def scenario() -> list[str]:
        store = _ThreadRecording(tmp_path / "s.sqlite3", repeatable)
        machine = MeerkatMachine.persistent(store, close_store=True)
        await machine.register_session("s")
        with _one_callback_always_ready():
            for i in range(5):
                await machine.accept_input("s", prompt(f"hello {i}"))
        await machine.close()
        return store.threads

    threads = asyncio.run(scenario())
    assert len(threads) == 5
    assert threading.main_thread().name not in threads
    assert all(name.startswith("meerkat-sqlite-writer") for name in threads)


class _ProtocolSignatureStore(SqliteRuntimeStore):
    """A store written against :class:`~meerkat_runtime.store.protocol.SubmitsWrites` as
    documented: ``submit_write_on(loop, call)``, no other argument. Counts its submissions."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.submitted = 0

    def submit_write_on(self, loop: asyncio.AbstractEventLoop, call: Callable[[], None]) -> asyncio.Future[None]:
        self.submitted += 1
        return super().submit_write_on(loop, call)


def test_a_store_with_the_documented_submit_signature_accepts_concurrent_inputs(tmp_path: Path) -> None:
    """Concurrent accepts of several sessions, with other callbacks ready so that each write is
    submitted: the session calls ``submit_write_on`` with the protocol's arguments only, and every
    accept commits."""

    async def scenario() -> tuple[list[object], int, int]:
        store = _ProtocolSignatureStore(tmp_path / "s.sqlite3")
        machine = MeerkatMachine.persistent(store, close_store=True)
        names = [f"s{i}" for i in range(4)]
        for name in names:
            await machine.register_session(name)
        with _one_callback_always_ready():
            results = await asyncio.gather(
                *(machine.accept_input(n, prompt(f"hello {i}")) for i in range(2) for n in names),
                return_exceptions=True,
            )
        submitted = store.submitted
        await machine.close()
        reopened = SqliteRuntimeStore(tmp_path / "s.sqlite3")
        try:
            rows = sum(len(reopened.load_input_states(f"rt:session:{n}")) for n in names)
        finally:
            reopened.close()
        return list(results), submitted, rows

    results, submitted, rows = asyncio.run(scenario())
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert submitted == 8
    assert rows == 8
