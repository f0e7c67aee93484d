"""The JSON Lines event log keeps a bounded number of files open: a session's file is closed when
it unregisters, the least recently written files beyond ``max_open`` are closed, and a closed
file is reopened in append mode (same file, lines in order, rotation by its size on disk), so
``check-trace`` still reads the logs."""

from __future__ import annotations

import json
import os
from pathlib import Path

from meerkat_runtime.events.jsonl import EventLog
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.runtime_session.helpers import make_prompt, persistent, replays, run


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _lines(log: EventLog, m: MeerkatMachine, session_id: str) -> list[dict[str, object]]:
    path = log.path(canonical_runtime_id(session_id), m.events.source)
    rotated = sorted(path.parent.glob(path.name + ".*"), key=lambda p: -int(p.suffix[1:]))
    docs: list[dict[str, object]] = []
    for file in [*rotated, path]:
        docs += [json.loads(line) for line in file.read_text().splitlines()]
    return docs


def test_unregistered_sessions_leave_no_file_open(tmp_path: Path) -> None:
    async def body() -> tuple[int, int, EventLog]:
        m, _ = persistent()
        log = EventLog(tmp_path)
        m.events.subscribe(log)
        before = _fds()
        for i in range(150):
            await m.register_session(f"chat-{i}")
            await m.accept_input(f"chat-{i}", make_prompt("hi"))
            await m.unregister_session(f"chat-{i}")
        after = _fds()
        await m.close()
        return before, after, log

    before, after, log = run(body())
    assert after - before <= 2
    assert log.open_files == 0
    assert len(list(tmp_path.glob("*.jsonl"))) == 150
    replays(tmp_path, "register", "accept", "unregister")


def test_open_files_stay_within_max_open_and_a_returning_session_appends_in_order(tmp_path: Path) -> None:
    async def body() -> tuple[MeerkatMachine, EventLog, list[int], int]:
        m, _ = persistent()
        log = EventLog(tmp_path, max_open=3)
        m.events.subscribe(log)
        before = _fds()
        counts: list[int] = []
        for i in range(20):  # registered and left registered: only max_open stays open
            await m.register_session(f"s-{i}")
            await m.accept_input(f"s-{i}", make_prompt("hi"))
            counts.append(log.open_files)
        grown = _fds() - before
        for i in range(20):  # every file was closed by now and is reopened in append mode
            await m.accept_input(f"s-{i}", make_prompt("again"))
            counts.append(log.open_files)
        await m.unregister_session("s-0")
        await m.register_session("s-0")  # comes back after its file was closed on unregister
        await m.accept_input("s-0", make_prompt("back"))
        await m.close()
        return m, log, counts, grown

    m, log, counts, grown = run(body())
    assert max(counts) == 3
    assert grown <= 3
    assert log.open_files == 0
    docs = _lines(log, m, "s-0")
    assert [d["rule"] for d in docs] == [
        "register",
        "accept",
        "accept",
        "unregister",
        "register",
        "accept",
        "unregister",
    ]
    assert [d["seq"] for d in docs] == list(range(1, 8))
    replays(tmp_path, "register", "accept", "unregister")


def test_a_reopened_file_rotates_by_its_size_on_disk(tmp_path: Path) -> None:
    async def body() -> tuple[MeerkatMachine, EventLog]:
        m, _ = persistent()
        log = EventLog(tmp_path, max_bytes=1500, max_open=1)
        m.events.subscribe(log)
        await m.register_session("a")
        await m.register_session("b")
        for i in range(12):  # a and b alternate: each write reopens the file
            await m.accept_input("a", make_prompt(f"a{i}"))
            await m.accept_input("b", make_prompt(f"b{i}"))
        await m.close()
        return m, log

    m, log = run(body())
    for session_id in ("a", "b"):
        path = log.path(canonical_runtime_id(session_id), m.events.source)
        files = [path, *path.parent.glob(path.name + ".*")]
        assert len(files) > 2
        assert all(f.stat().st_size <= 1500 for f in files)
        docs = _lines(log, m, session_id)
        assert [d["seq"] for d in docs] == list(range(1, 15))
    replays(tmp_path, "register", "accept", "unregister")


def test_every_valid_session_id_gets_its_own_file_within_the_file_name_limit(tmp_path: Path) -> None:
    long_ascii, long_utf8 = "x" * 300, "é" * 512  # 300 and 1,024 bytes: valid session ids
    session_ids = [long_ascii, long_utf8, "é", "ü", "a.b"]

    async def body() -> tuple[MeerkatMachine, EventLog]:
        m, _ = persistent()
        log = EventLog(tmp_path, max_bytes=400, max_files=None)  # rotating: long names get a suffix
        m.events.subscribe(log)
        for session_id in session_ids:
            await m.register_session(session_id)
            await m.accept_input(session_id, make_prompt("hi"))
        await m.close()
        return m, log

    m, log = run(body())
    assert m.events.delivery_errors == 0
    names = [p.name for p in tmp_path.iterdir()]
    assert max(len(name.encode()) for name in names) <= 255
    assert any(name.endswith(".jsonl.1") for name in names)
    for session_id in session_ids:  # each file holds its own runtime's events, all of them
        lines = _lines(log, m, session_id)
        assert {line["session"] for line in lines} == {session_id}
        assert [line["rule"] for line in lines] == ["register", "accept", "unregister"]
    assert len({log.path(canonical_runtime_id(s), m.events.source) for s in session_ids}) == len(session_ids)
    replays(tmp_path, "register", "accept", "unregister")


def test_a_session_id_of_safe_characters_keeps_its_file_name(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    assert log.path("rt:session:a.b", "host_1-0a1b2c3d").name == "rt_session_a.b.host_1-0a1b2c3d.jsonl"
    assert log.path("rt:session:chat-7", "worker-ff00ff00").name == "rt_session_chat-7.worker-ff00ff00.jsonl"
    altered = log.path("rt:session:a b", "worker-ff00ff00").name  # not the name of "a_b"
    assert altered != log.path("rt:session:a_b", "worker-ff00ff00").name
    assert altered.startswith("rt_session_a_b~")
