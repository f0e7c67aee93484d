"""Restart cost against history and backlog, and memory after many consumed inputs.

Usage::

    .venv/bin/python benchmarks/bench_restart.py [--finished N,...] [--pending N,...]
        [--consumed N] [--dir PATH]

* **restart**: an SQLite file (WAL, ``synchronous=FULL``) holds one session with N finished
  inputs (Consumed, each with an idempotency key and its stored outcome) or N pending inputs
  (Queued: recovered without decoding their rows, each decoded when first used). A fresh
  child process opens the file (the page check included), registers the
  session and accepts one new input; the line shows the time from opening the store to that
  first accept returning (and, within it, the store's open with its page check, which reads
  the whole file), the peak resident memory the child gained meanwhile and how many
  inputs the session then shows. These restarts keep every finished input
  (``RetentionPolicy(None, None)``): they measure history that is kept, not compacted. Two more
  lines restart the largest file under the default retention: the first start compacts the
  excess once, the next one is the steady state. The rows are written straight into the store
  in chunks (realistic rows, encoded by the runtime's own codec), not by running N inputs.
* **retention ratio**: the restart time with the largest finished count over the smallest
  (the target is at most 2: restart time follows the backlog, not history).
* **consumed**: one persistent session (SQLite file, ``synchronous=NORMAL`` to keep the run
  short) accepts and runs N inputs through the run loop, once under the default retention and
  once keeping every finished input; each line shows the resident memory the process gained,
  its share per consumed input, and how many inputs the session and the store still hold
  (retention keeps them flat).

Figures and ratios are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from meerkat_model.cli.usage import OneLineParser, interruptible
from meerkat_runtime.session.completion import Completed
from meerkat_runtime.session.core.ledger import HistoryEntry, InputRecord, Lane
from meerkat_runtime.session.executor import RunResult
from meerkat_runtime.session.inputs import prompt
from meerkat_runtime.session.machine import MeerkatMachine, session_runtime_id
from meerkat_runtime.session.persistence import encode_row
from meerkat_runtime.session.retention_policy import DEFAULT_KEEP_FINISHED, RetentionPolicy
from meerkat_runtime.session.row_codec import LifecycleRecord, encode_lifecycle
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.inputs import Consumed, InputLifecycleState
from meerkat_runtime.vocab.runtime import RuntimeState

S = InputLifecycleState
SESSION = "bench"
_CHUNK = 2000
_TEXT = "Summarise the attached quarterly report and list the three largest risks, with owners. " * 2


def _record(i: int, *, finished: bool, now: float) -> InputRecord:
    item = prompt(f"{_TEXT} #{i}", idempotency_key=f"key-{i}", input_id=f"in-{i:07d}")
    record = InputRecord(item, S.QUEUED, Lane.QUEUE, i + 1, now, now)
    record.history.append(HistoryEntry(None, S.ACCEPTED, "accepted", now))
    record.history.append(HistoryEntry(S.ACCEPTED, S.QUEUED, "queued", now))
    if finished:
        for to in (S.STAGED, S.APPLIED, S.APPLIED_PENDING_CONSUMPTION, S.CONSUMED):
            record.move(to, to.value, now)
        record.attempts = 1
        record.terminal = Consumed()
        record.outcome = Completed(RunResult(f"the answer to input {i}: " + "x" * 120, 1, 2, 340))
        record.last_run_id = None
    return record


def write_session(path: Path, count: int, *, finished: bool) -> None:
    """Store one session holding ``count`` finished (or pending) inputs."""
    runtime_id = session_runtime_id(SESSION)
    lifecycle = encode_lifecycle(LifecycleRecord(RuntimeState.IDLE, "epoch-bench"))
    now = time.time() - 60
    with SqliteRuntimeStore(path, synchronous="NORMAL") as store:
        for start in range(0, count, _CHUNK):
            rows: list[InputRow] = [
                encode_row(_record(i, finished=finished, now=now)) for i in range(start, min(count, start + _CHUNK))
            ]
            store.commit_machine_lifecycle(runtime_id, lifecycle, rows)
        if count == 0:
            store.commit_machine_lifecycle(runtime_id, lifecycle, [])


def _rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


async def _restart(path: str, keep: str) -> dict[str, float]:
    before = _rss_kb()
    start = time.perf_counter()
    policy = RetentionPolicy(None, None) if keep == "all" else RetentionPolicy(keep_finished=int(keep))
    machine = MeerkatMachine.persistent(path, retention=policy)
    opened = time.perf_counter() - start
    await machine.register_session(SESSION)
    outcome = await machine.accept_input(SESSION, prompt("after the restart"))
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if not outcome.is_accepted:
        raise RuntimeError(f"the first accept after the restart was not accepted: {outcome}")
    view = await machine.session_view(SESSION)
    await machine.close()
    return {"seconds": elapsed, "open": opened, "rss_kb": peak - before, "inputs": float(len(view.inputs))}


def restart_in_child(path: Path, keep: str = "all") -> dict[str, float]:
    """Open ``path`` in a fresh process and time register + first accept (retention ``keep``:
    ``all`` or a count)."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(path), "--keep", keep], check=True, capture_output=True, text=True
    ).stdout
    figures: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return figures


async def _consume(path: Path, count: int, retention: RetentionPolicy) -> dict[str, float]:
    store = SqliteRuntimeStore(path, synchronous="NORMAL")
    machine = MeerkatMachine.persistent(store, offload_store_calls=False, close_store=True, retention=retention)
    await machine.register_session(SESSION)
    executor = ScriptedExecutor()
    await machine.register_session_with_executor(SESSION, executor)
    before = _rss_kb()
    batch = 500
    for start in range(0, count, batch):
        handles = []
        for i in range(start, min(count, start + batch)):
            item = prompt(f"{_TEXT} #{i}", idempotency_key=f"k{i}")
            _, handle = await machine.accept_input_with_completion(SESSION, item)
            assert handle is not None
            handles.append(handle)
        for handle in handles:
            await handle.wait()
    grown = _rss_kb() - before
    view = await machine.session_view(SESSION)
    stored = len(store.load_input_states(session_runtime_id(SESSION)))
    await machine.close()
    return {"rss_kb": float(grown), "in_memory": float(len(view.inputs)), "stored": float(stored)}


def _line(label: str, figures: dict[str, float]) -> str:
    return (
        f"{label:<28} restart to first accept {figures['seconds'] * 1000:8.1f} ms "
        f"(store open {figures['open'] * 1000:6.1f} ms)   peak memory +{figures['rss_kb'] / 1024:7.1f} MiB   "
        f"inputs in the session {int(figures['inputs'])}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="bench_restart", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--finished", default="1000,100000", help="finished-input counts (default 1000,100000)")
    parser.add_argument("--pending", default="100000", help="pending-input counts (default 100000; '' for none)")
    parser.add_argument("--consumed", type=int, default=100_000, help="inputs run to completion (default 100000)")
    parser.add_argument("--dir", default=None, help="folder for the database files (default: a temporary one)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--keep", default="all", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(asyncio.run(_restart(args.child, args.keep))))
        return 0
    finished = [int(n) for n in args.finished.split(",") if n]
    pending = [int(n) for n in args.pending.split(",") if n]
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        restarts: dict[int, float] = {}
        for count in finished:
            path = Path(folder) / f"finished-{count}.db"
            write_session(path, count, finished=True)
            figures = restart_in_child(path)
            restarts[count] = figures["seconds"]
            print(_line(f"{count} finished inputs", figures), flush=True)
        steady: float | None = None
        if finished and max(finished) > DEFAULT_KEEP_FINISHED:
            path = Path(folder) / f"finished-{max(finished)}.db"
            first = restart_in_child(path, str(DEFAULT_KEEP_FINISHED))
            print(_line("  same, default retention", first) + " (first start: compacts the excess once)")
            again = restart_in_child(path, str(DEFAULT_KEEP_FINISHED))
            steady = again["seconds"]
            print(_line("  and the next restart", again) + " (target < 200 ms)", flush=True)
        for count in pending:
            path = Path(folder) / f"pending-{count}.db"
            write_session(path, count, finished=False)
            print(_line(f"{count} pending inputs", restart_in_child(path)) + " (target < 1 s)", flush=True)
        if len(restarts) > 1:
            low, high = min(restarts), max(restarts)
            ratio = restarts[high] / restarts[low] if restarts[low] else float("inf")
            print(f"restart with {high} / with {low} finished inputs, all kept: {ratio:.2f}x")
            if steady is not None:
                ratio = steady / restarts[low] if restarts[low] else float("inf")
                print(f"restart with {high} / with {low} past inputs, default retention: {ratio:.2f}x (target <= 2x)")
        if args.consumed > 0:
            policies = (("default retention", RetentionPolicy()), ("all kept", RetentionPolicy(None, None)))
            for label, policy in policies:
                t0 = time.perf_counter()
                figures = asyncio.run(_consume(Path(folder) / f"consumed-{len(label)}.db", args.consumed, policy))
                per_input = figures["rss_kb"] * 1024 / args.consumed
                print(
                    f"{args.consumed} consumed inputs, {label}, in {time.perf_counter() - t0:.1f} s: memory +"
                    f"{figures['rss_kb'] / 1024:.1f} MiB ({per_input:.0f} B per input); the session holds "
                    f"{int(figures['in_memory'])} inputs, the store {int(figures['stored'])} rows",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(interruptible(main, "bench_restart.py"))
