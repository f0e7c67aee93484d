"""Crash-durability harness: SIGKILL a writer process at random points and check the file.

Each cycle starts a ``crash_writer`` process (a fresh generation; forked, or a fresh
interpreter with ``launch="exec"``) on the same SQLite file, lets it
commit for a random number of acknowledged commits plus a random sub-millisecond-to-
milliseconds delay, kills it with SIGKILL, drains the acks it managed to print, and then
verifies the file from this process:

* every acknowledged commit of every generation is stored, with all of its rows;
* at most one unacknowledged commit per generation is stored (the one in flight), and only
  the one right after the last ack;
* no commit is stored in part: a receipt is present iff all its rows are; a lifecycle commit's
  rows are all present or all absent; the shared row, the session snapshot and the lifecycle
  record hold the newest stored commit of their kind;
* ops commits (appends and compactions) are all in the recovered ops lifecycle, once each.

A violation raises ``DurabilityViolation`` naming the cycle, generation and commit.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from meerkat_runtime.store.sqlite import SqliteRuntimeStore, Synchronous

from meerkat_conformance.stores import crash_writer
from meerkat_conformance.stores.childproc import child_env
from meerkat_conformance.stores.crash_writer import (
    CRASH_RT,
    ROWS_PER_COMMIT,
    SHARED_ROW,
    commit_id,
    commit_kind,
    ops_ids,
)


class DurabilityViolation(AssertionError):
    """The store lost an acknowledged commit or exposed part of one."""


@dataclass
class Ledger:
    """Commits known stored: generation -> highest stored commit number (all below stored too)."""

    stored: dict[int, int] = field(default_factory=dict)


@dataclass
class CrashStats:
    """What a run of kill cycles did; ``ledger`` is what the file must hold afterwards."""

    kills: int = 0
    acked: int = 0
    in_flight_durable: int = 0
    seconds: float = 0.0
    verify_seconds: float = 0.0
    cycle_ms: list[float] = field(default_factory=list)
    ledger: Ledger = field(default_factory=Ledger)


Launch = Literal["fork", "exec"]


class _Writer:
    """A running crash writer: its pid and the read end of its ack pipe.

    ``exec`` starts a fresh interpreter on ``crash_writer.py``; ``fork`` forks this process
    and runs the same loop in the child (no interpreter start-up, so a cycle is much cheaper).
    Either way the writer is a separate process that dies by SIGKILL.
    """

    def __init__(
        self, path: Path, generation: int, synchronous: Synchronous, launch: Launch, stop_after: int | None = None
    ) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        if launch == "exec":
            extra = [] if stop_after is None else [str(stop_after)]
            self.proc = subprocess.Popen(
                [sys.executable, "-S", str(crash_writer.__file__), str(path), str(generation), synchronous, *extra],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=child_env(),
            )
            assert self.proc.stdout is not None
            self.fd = self.proc.stdout.fileno()
            self.pid = self.proc.pid
            return
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: never returns
            try:
                os.close(read_end)
                crash_writer.run(
                    str(path), generation, synchronous, lambda line: _write_all(write_end, line), stop_after
                )
            finally:
                os._exit(70)
        os.close(write_end)
        self.fd, self.pid = read_end, pid

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)

    def wait(self) -> int:
        """Reap the writer; its return code (``-9`` when SIGKILL ended it)."""
        if self.proc is not None:
            return self.proc.wait()
        _, status = os.waitpid(self.pid, 0)
        return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            assert self.proc.stdout is not None
            self.proc.stdout.close()
        else:
            os.close(self.fd)


def _write_all(fd: int, line: str) -> None:
    data = line.encode()
    while data:
        data = data[os.write(fd, data) :]


class _AckReader:
    """Reads ``ready`` and ack lines from the writer's pipe without blocking past a deadline."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.ready = False
        self.last_ack = 0

    def _consume(self, chunk: bytes) -> None:
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            if line == b"ready":
                self.ready = True
            elif line:
                k = int(line)
                if k != self.last_ack + 1:
                    raise DurabilityViolation(f"writer acked commit {k} after {self.last_ack}")
                self.last_ack = k

    def pump(self, until: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not until():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("crash writer did not make progress in time")
            readable, _, _ = select.select([self.fd], [], [], remaining)
            if readable:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    raise DurabilityViolation("crash writer exited before it was killed")
                self._consume(chunk)

    def wait_ready(self, timeout: float) -> None:
        self.pump(lambda: self.ready, timeout)

    def wait_ack(self, k: int, timeout: float) -> None:
        self.pump(lambda: self.last_ack >= k, timeout)

    def drain(self) -> None:
        """After the kill: read every ack the writer printed before it died."""
        while chunk := os.read(self.fd, 65536):
            self._consume(chunk)


def verify(
    store: SqliteRuntimeStore, ledger: Ledger, generation: int, last_ack: int, cycle: int, *, receipts: bool = True
) -> bool:
    """Check the file against the ledger and this generation's acks; update the ledger.

    Receipts of earlier generations are looked up only when ``receipts`` is true (each is one
    query); rows, records and this generation's receipts are always checked. Returns whether
    the unacknowledged in-flight commit turned out to be stored."""
    rows = {r.input_id: r.payload for r in store.load_input_states(CRASH_RT)}
    ops = ops_ids(store.load_ops_lifecycle(CRASH_RT))
    ops_set = set(ops)
    where = f"cycle {cycle}, generation {generation}"
    if len(ops) != len(ops_set):
        raise DurabilityViolation(f"{where}: an ops commit is stored twice")

    def stored(g: int, k: int) -> bool:
        kind, cid = commit_kind(g, k), commit_id(g, k)
        if kind in ("apply", "lifecycle"):
            prefix = "a" if kind == "apply" else "l"
            present = [f"{prefix}-{g}-{k}-{j}" in rows for j in range(ROWS_PER_COMMIT)]
            if any(present) and not all(present):
                raise DurabilityViolation(f"{where}: {kind} commit {cid} is stored in part ({present})")
            if kind == "apply" and (receipts or g == generation):
                has_receipt = store.load_boundary_receipt(CRASH_RT, f"g{g}", k) is not None
                if has_receipt != all(present):
                    raise DurabilityViolation(f"{where}: receipt of {cid} present={has_receipt}, rows={present}")
            return all(present)
        return cid in ops_set

    ledger.stored[generation] = last_ack
    in_flight = stored(generation, last_ack + 1)
    if in_flight:
        ledger.stored[generation] = last_ack + 1
    if stored(generation, ledger.stored[generation] + 1):
        raise DurabilityViolation(f"{where}: a commit two past the last ack ({last_ack}) is stored")
    newest: dict[str, str] = {}
    for g, top in sorted(ledger.stored.items()):
        for k in range(1, top + 1):
            if not stored(g, k):
                raise DurabilityViolation(f"{where}: acknowledged commit {commit_id(g, k)} ({commit_kind(g, k)}) lost")
            newest[commit_kind(g, k)] = commit_id(g, k)
            if commit_kind(g, k) in ("apply", "lifecycle"):
                newest["shared"] = commit_id(g, k)
    expected_ops = {
        commit_id(g, k)
        for g, top in ledger.stored.items()
        for k in range(1, top + 1)
        if commit_kind(g, k) in ("ops_append", "ops_compact")
    }
    if ops_set != expected_ops:
        extra, lost = sorted(ops_set - expected_ops), sorted(expected_ops - ops_set)
        raise DurabilityViolation(f"{where}: ops commits differ: extra {extra}, lost {lost}")
    checks = {
        "shared row": (rows.get(SHARED_ROW), newest.get("shared", "").encode() or None),
        "session snapshot": (store.load_session_snapshot(CRASH_RT), _tagged("apply", newest.get("apply"))),
        "lifecycle record": (store.load_machine_lifecycle(CRASH_RT), _tagged("life", newest.get("lifecycle"))),
    }
    for what, (got, want) in checks.items():
        if got != want:
            raise DurabilityViolation(f"{where}: {what} is {got!r}, expected {want!r} (newest stored commit)")
    return in_flight


def _tagged(tag: str, cid: str | None) -> bytes | None:
    return None if cid is None else f"{tag}:{cid}".encode()


def run_crash_cycles(
    path: Path,
    *,
    kills: int,
    seed: int = 0,
    synchronous: Synchronous = "FULL",
    max_acks_before_kill: int = 6,
    min_acks_before_kill: int = 0,
    max_delay_ms: float = 3.0,
    timeout: float = 30.0,
    full_check_every: int = 1,
    launch: Launch = "fork",
    progress: Callable[[int, CrashStats], None] | None = None,
    writer_stops_after: int | None = None,
) -> CrashStats:
    """Run ``kills`` kill cycles against the SQLite file at ``path`` (created if absent).

    ``writer_stops_after``: each writer makes exactly that many commits and then waits to be
    killed (a deterministic file for tests that damage a known commit afterwards).

    Every ``full_check_every``-th cycle (and the last) also re-reads every earlier receipt."""
    rng = random.Random(seed)
    stats = CrashStats()
    ledger = stats.ledger
    start = time.perf_counter()
    for cycle in range(1, kills + 1):
        began = time.perf_counter()
        writer = _Writer(path, cycle, synchronous, launch, writer_stops_after)
        returncode: int | None = None
        try:
            reader = _AckReader(writer.fd)
            target = rng.randint(min_acks_before_kill, max(min_acks_before_kill, max_acks_before_kill))
            reader.wait_ready(timeout)
            reader.wait_ack(target, timeout)
            time.sleep(rng.uniform(0, max_delay_ms) / 1000)
            writer.kill()
            returncode = writer.wait()
            reader.drain()
        finally:
            if returncode is None:
                writer.kill()
                writer.wait()
            writer.close()
        if returncode != -signal.SIGKILL:
            raise DurabilityViolation(f"cycle {cycle}: writer ended with {returncode}, not by SIGKILL")
        checked = time.perf_counter()
        store = SqliteRuntimeStore(path)
        try:
            full = cycle % full_check_every == 0 or cycle == kills
            stats.in_flight_durable += verify(store, ledger, cycle, reader.last_ack, cycle, receipts=full)
        finally:
            store.close()
        stats.verify_seconds += time.perf_counter() - checked
        stats.kills += 1
        stats.acked += reader.last_ack
        stats.cycle_ms.append((time.perf_counter() - began) * 1000)
        if progress is not None:
            progress(cycle, stats)
    stats.seconds = time.perf_counter() - start
    return stats
