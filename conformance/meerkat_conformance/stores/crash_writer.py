"""Writer process of the crash-durability harness; it is killed at random points.

``python -S crash_writer.py PATH GENERATION SYNCHRONOUS [STOP_AFTER]`` (with ``meerkat_runtime``
importable) opens the SQLite store at PATH and commits forever (or, with ``STOP_AFTER``, that many
commits, then waits to be killed): commit ``k`` of generation ``g`` is of the kind
``commit_kind(g, k)``. After each commit *returns* it prints ``<k>`` on stdout (the ack). It
prints ``ready`` once the store is open. Every commit is recognisable by its payloads, so a
reader can tell which commits are stored and whether any is stored only in part.

Kinds (runtime ``CRASH_RT``):

* ``apply``: ``atomic_apply`` with snapshot ``apply:g:k``, receipt ``(g<g>, k)`` and rows
  ``a-g-k-0..2`` plus the shared row ``shared`` = ``g:k``.
* ``lifecycle``: ``commit_machine_lifecycle`` with record ``life:g:k`` and rows ``l-g-k-0..2``
  plus ``shared`` = ``g:k``.
* ``ops_append``: ``append_ops_record`` of ``g:k``.
* ``ops_compact``: ``persist_ops_lifecycle`` of a JSON list of every ops commit id so far
  (recovered at start-up plus this generation's), ``g:k`` included.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Literal, NoReturn

from meerkat_runtime.store.records import BoundaryKind, BoundaryReceipt, InputRow, OpsLifecycleRecords
from meerkat_runtime.store.sqlite import SqliteRuntimeStore

CRASH_RT = "rt:session:crash"
ROWS_PER_COMMIT = 3
SHARED_ROW = "shared"

CommitKind = Literal["apply", "lifecycle", "ops_append", "ops_compact"]


def commit_kind(generation: int, k: int) -> CommitKind:
    """The kind of commit ``k`` of ``generation`` (deterministic, so a reader can tell)."""
    slot = (k * 2654435761 + generation * 40503) % 10
    if slot < 4:
        return "apply"
    if slot < 7:
        return "lifecycle"
    return "ops_compact" if slot == 9 else "ops_append"


def commit_id(generation: int, k: int) -> str:
    return f"{generation}:{k}"


def ops_ids(loaded: OpsLifecycleRecords | None) -> list[str]:
    """Every ops commit id a stored ops lifecycle holds: the snapshot's list, then the records."""
    if loaded is None:
        return []
    ids: list[str] = list(json.loads(loaded.snapshot)) if loaded.snapshot is not None else []
    ids.extend(r.decode() for r in loaded.appended)
    return ids


def commit(store: SqliteRuntimeStore, generation: int, k: int, ops_so_far: list[str]) -> None:
    cid = commit_id(generation, k)
    kind = commit_kind(generation, k)
    shared = InputRow(SHARED_ROW, cid.encode())
    if kind == "apply":
        ids = [f"a-{generation}-{k}-{j}" for j in range(ROWS_PER_COMMIT)]
        store.atomic_apply(
            CRASH_RT,
            session_snapshot=f"apply:{cid}".encode(),
            receipt=BoundaryReceipt(f"g{generation}", k, BoundaryKind.RUN_CHECKPOINT, tuple(ids)),
            rows=[*(InputRow(i, cid.encode()) for i in ids), shared],
        )
    elif kind == "lifecycle":
        ids = [f"l-{generation}-{k}-{j}" for j in range(ROWS_PER_COMMIT)]
        rows = [*(InputRow(i, cid.encode()) for i in ids), shared]
        store.commit_machine_lifecycle(CRASH_RT, f"life:{cid}".encode(), rows)
    elif kind == "ops_append":
        store.append_ops_record(CRASH_RT, cid.encode())
        ops_so_far.append(cid)
    else:
        store.persist_ops_lifecycle(CRASH_RT, json.dumps([*ops_so_far, cid]).encode())
        ops_so_far.append(cid)


def run(
    path: str, generation: int, synchronous: str, emit: Callable[[str], None], stop_after: int | None = None
) -> NoReturn:
    """Open the store, say ``ready``, then commit and ack until killed (after ``stop_after`` commits,
    if given, it only waits to be killed, so the file holds exactly those commits)."""
    store = SqliteRuntimeStore(path, synchronous="NORMAL" if synchronous == "NORMAL" else "FULL")
    ops_so_far = ops_ids(store.load_ops_lifecycle(CRASH_RT))
    emit("ready\n")
    k = 0
    while True:
        if stop_after is not None and k >= stop_after:
            time.sleep(3600)
            continue
        k += 1
        commit(store, generation, k, ops_so_far)
        emit(f"{k}\n")


def _emit_stdout(line: str) -> None:
    sys.stdout.write(line)
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    run(argv[0], int(argv[1]), argv[2], _emit_stdout, int(argv[3]) if len(argv) > 3 else None)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
