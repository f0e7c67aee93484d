"""Writer process of the group-commit crash test; it is killed at random points.

``python -S group_crash_writer.py PATH THREADS`` opens the SQLite store at PATH (group commit
on, ``synchronous=FULL``) and starts ``THREADS`` threads; thread ``t`` writes rows
``t-000000``, ``t-000001``, ... of runtime ``rt:session:crash-<t>`` for ever, each with
``persist_input_state``, and after each write *returns* prints ``ack <t> <k>`` on stdout (the
acknowledgement). Every 20 acknowledgements of thread 0 it prints ``stats <batches> <writes>``
(the writer's counters), so the reader can tell that writes did share transactions. It prints
``ready`` once the store is open.
"""

from __future__ import annotations

import sys
import threading

from meerkat_runtime.store.records import InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore


def runtime_of(thread: int) -> str:
    return f"rt:session:crash-{thread}"


def row_id(k: int) -> str:
    return f"row-{k:06d}"


def payload(thread: int, k: int) -> bytes:
    return f"{thread}:{k}".encode() * 20


def main(path: str, threads: int) -> None:
    store = SqliteRuntimeStore(path, synchronous="FULL")
    out = threading.Lock()

    def say(line: str) -> None:
        with out:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def write(thread: int) -> None:
        rt = runtime_of(thread)
        k = 0
        while True:
            store.persist_input_state(rt, InputRow(row_id(k), payload(thread, k)))
            say(f"ack {thread} {k}")
            if thread == 0 and k % 20 == 0:
                batches, writes, _ = store.group_commit_stats()
                say(f"stats {batches} {writes}")
            k += 1

    say("ready")
    workers = [threading.Thread(target=write, args=(t,), daemon=True) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
