"""Group commit survives a real kill: a writer process with eight threads sharing transactions
is killed with SIGKILL at random points; every write it acknowledged is stored, intact, and
the high-water marks agree with the rows."""

from __future__ import annotations

import os
import random
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import meerkat_conformance.stores.group_crash_writer as writer
import pytest
from meerkat_runtime.store.sqlite import SqliteRuntimeStore

THREADS = 8
KILLS = 4


def _run_until_killed(path: Path, rng: random.Random) -> tuple[dict[int, int], list[tuple[int, int]]]:
    """Start the writer, kill it after a random number of acknowledgements; return the highest
    acknowledged ``k`` per thread and the stats lines seen."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, writer.__file__, str(path), str(THREADS)], stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    acked: dict[int, int] = {}
    stats: list[tuple[int, int]] = []
    target = rng.randint(50, 400)
    seen = 0
    buffer = b""
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 60
    try:
        while seen < target and time.monotonic() < deadline:
            if not selector.select(timeout=1):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                parts = line.decode().split()
                if parts[0] == "ack":
                    acked[int(parts[1])] = max(acked.get(int(parts[1]), -1), int(parts[2]))
                    seen += 1
                elif parts[0] == "stats":
                    stats.append((int(parts[1]), int(parts[2])))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        selector.close()
    assert seen >= target, f"the writer acknowledged only {seen} writes before the deadline"
    return acked, stats


@pytest.mark.parametrize("seed", [1, 2])
def test_no_acknowledged_write_is_lost_when_a_group_committing_writer_is_killed(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    shared = False
    for kill in range(KILLS):
        path = tmp_path / f"crash-{kill}.sqlite3"
        acked, stats = _run_until_killed(path, rng)
        shared = shared or any(writes > batches for batches, writes in stats)
        with SqliteRuntimeStore(path) as store:
            for thread, last in acked.items():
                rows = {row.input_id: row.payload for row in store.load_input_states(writer.runtime_of(thread))}
                for k in range(last + 1):
                    assert rows.get(writer.row_id(k)) == writer.payload(thread, k), (thread, k)
                mark = store.load_high_water(writer.runtime_of(thread))
                assert mark is not None and mark.inputs == len(rows) == mark.writes
    assert shared, "no batch held more than one write: the test did not exercise group commit"
