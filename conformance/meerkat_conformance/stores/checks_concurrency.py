"""Concurrency checks: writers on several threads (and processes) lose and duplicate nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable

from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.vocab.errors import WriteFailed

from meerkat_conformance.stores import process_writer
from meerkat_conformance.stores.backend import CAP_PROCESSES, StoreFactory
from meerkat_conformance.stores.childproc import child_env
from meerkat_conformance.stores.failure import NotApplicable, StoreConformanceFailure, expect
from meerkat_conformance.stores.fixtures import fresh, opened, receipt, row
from meerkat_conformance.stores.process_writer import write_markers

SHARED = "rt:session:shared"
THREADS = 6
PER_THREAD = 25
PROCESSES = 3
PER_PROCESS = 25


def _run_threads(count: int, work: Callable[[int], None]) -> list[BaseException]:
    errors: list[BaseException] = []
    lock = threading.Lock()

    def target(n: int) -> None:
        try:
            work(n)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=target, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def _verify_markers(store: RuntimeStore, writers: list[str], count: int, step: str) -> None:
    """Every writer's markers are present exactly once, each writer's records in its order."""
    ops = store.load_ops_lifecycle(SHARED)
    records = [r.decode() for r in (ops.appended if ops else ())]
    expected = {f"{w}-{i}" for w in writers for i in range(count)}
    expect(len(records) == len(expected), step, f"{len(records)} records appended, expected {len(expected)}")
    expect(set(records) == expected, step, "some appended records are missing or foreign")
    for w in writers:
        mine = [r for r in records if r.rsplit("-", 1)[0] == w]
        expect(mine == [f"{w}-{i}" for i in range(count)], step, f"records of {w} are out of order")
    rows = {r.input_id for r in store.load_input_states(SHARED)}
    expect(rows == expected, step, "shared input rows were lost or duplicated")
    for w in writers:
        own = f"rt:session:own-{w}"
        for i in range(count):
            got = store.load_boundary_receipt(own, w, i)
            expect(got is not None and got.contributing_input_ids == (f"{w}-{i}",), step, f"receipt {w}#{i} lost")
        expect(store.load_session_snapshot(own) == f"{w}-{count - 1}".encode(), step, f"snapshot of {w} is stale")


def check_concurrent_threads(factory: StoreFactory) -> None:
    """Threads writing through one handle (appends, upserts, atomic applies, interleaved
    reads) lose nothing; of threads racing to store the same receipt exactly one wins."""
    with fresh(factory) as backend, opened(backend) as store:
        writers = [f"thread{n}" for n in range(THREADS)]

        def work(n: int) -> None:
            write_markers(store, SHARED, f"rt:session:own-{writers[n]}", writers[n], PER_THREAD)
            store.load_input_states(SHARED)

        errors = _run_threads(THREADS, work)
        if errors:
            raise StoreConformanceFailure("threads", f"{len(errors)} writer thread(s) failed, first: {errors[0]!r}")
        _verify_markers(store, writers, PER_THREAD, "threads")

        barrier = threading.Barrier(THREADS)
        wins: list[int] = []

        def race(n: int) -> None:
            barrier.wait()
            try:
                snapshot, rows = f"racer-{n}".encode(), [row("race", str(n))]
                store.atomic_apply(SHARED, session_snapshot=snapshot, receipt=receipt("race", 1), rows=rows)
                wins.append(n)
            except WriteFailed:
                pass

        errors = _run_threads(THREADS, race)
        expect(not errors, "receipt race", f"racers failed unexpectedly: {errors[:1]!r}")
        expect(len(wins) == 1, "receipt race", f"{len(wins)} threads stored the same receipt, expected exactly 1")
        winner = str(wins[0]).encode()
        rows = {r.input_id: r.payload for r in store.load_input_states(SHARED)}
        expect(rows["race"] == winner, "receipt race", "a losing racer's rows were applied")
        expect(store.load_session_snapshot(SHARED) == b"racer-" + winner, "receipt race", "a loser's snapshot won")


def check_concurrent_processes(factory: StoreFactory) -> None:
    """Processes writing to the same storage at once (plus this process) lose nothing."""
    with fresh(factory) as backend:
        if CAP_PROCESSES not in backend.capabilities:
            raise NotApplicable("backend storage cannot be shared between processes")
        opener, args = backend.process_opener()
        with opened(backend) as store:
            writers = [f"proc{n}" for n in range(PROCESSES)]
            children = [
                subprocess.Popen(
                    [
                        sys.executable,
                        process_writer.__file__,
                        json.dumps(
                            {
                                "opener": opener,
                                "args": args,
                                "shared": SHARED,
                                "own": f"rt:session:own-{w}",
                                "writer": w,
                                "count": PER_PROCESS,
                            }
                        ),
                    ],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    env=child_env(),
                    text=True,
                )
                for w in writers
            ]
            write_markers(store, SHARED, "rt:session:own-parent", "parent", PER_PROCESS)
            for w, child in zip(writers, children, strict=True):
                out, _ = child.communicate(timeout=120)
                expect(child.returncode == 0, "processes", f"writer {w} exited {child.returncode}: {out.strip()}")
        with opened(backend) as store:
            _verify_markers(store, [*writers, "parent"], PER_PROCESS, "processes")
