"""Parallel breadth-first enumeration: level-synchronous, hash-partitioned, forked workers.

``explore(machine, workers=N)`` with ``N > 1`` lands here. The calling process is worker 0
and the hub; it forks ``N - 1`` more workers (``multiprocessing`` with the ``fork`` start
method, so the machine object is inherited and only states and actions cross a pipe). Each
worker is one :class:`~meerkat_model.verifier.search.Partition`, the same search core the
sequential explorer runs as a single partition.

* **Ownership.** A (canonical) state belongs to worker ``hash(machine.partition_key(state))
  % N`` (by default the key is the state itself; see ``search.owner_function``). All workers
  are forked from one interpreter, so ``hash`` agrees between them (string hashing included).
* **Levels.** Every worker expands its own frontier of depth ``L`` (``Partition.expand``). A
  new successor owned by another worker is queued for its owner once, with the global id of
  its parent; later hits of the same state by the same sender are plain dict hits, so each
  state crosses a pipe at most once per sender.
* **Exchange.** At the end of a level every child sends its queued states (one pickled
  batch per destination) to the hub, which forwards the bytes unopened; each owner adds
  the states it did not know at depth ``L + 1`` (the parent sent along is at depth ``L``, so
  the parent chain stays a shortest path) and records, per sender, which local index each
  sent slot became. Then the next level starts; the search stops when no worker has a
  frontier and nothing was sent.
* **Assembly.** Each child sends its records (states, edges column-wise, per-sender slot
  tables; depths and parent ids as flat integer arrays): of its states only the ones the hub
  did not send it, since the hub kept every state it sent (``Partition.sent_states``) and the
  child's slot table from the hub says which local index each became (most of a child's
  states are found by the other workers first: the hand-off shrinks by as much, and the hub
  holds one copy of each state). The hub rebuilds the global
  exploration with :func:`~meerkat_model.verifier.search.assemble`: states numbered level by
  level (worker by worker inside a level), so indexes stay in breadth-first order with the
  initial state at 0, and edges in order of source index (each source's edges in
  ``machine.actions`` order, as sequentially).

The result has the same state set, edges, depths, invariant results, coverage, stuck and
stranded states as the sequential search (the stranded search runs once, in the hub, on the
assembled integer records); within a level the numbering (and so which of several
equally shallow violating states is reported) may differ.

Workers ignore SIGINT; the hub terminates (then kills) them on any error or interrupt, and
notices a worker that died through its process sentinel. The cyclic garbage collector is
paused during the search (states are acyclic tuples) and restored afterwards.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import pickle
import signal
import time
import traceback
from array import array
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from typing import Any

from meerkat_model.machine import Machine
from meerkat_model.verifier.exploration import Exploration
from meerkat_model.verifier.search import (
    ARRAYS,
    LISTS,
    PICKLE_PROTOCOL,
    Partition,
    assemble,
    paused_gc,
    restore_states,
)

ProgressFn = Callable[[int, int, float], None]

POLL_SECONDS = 1.0
"""How often the hub, waiting for a worker, checks that every worker is still alive."""
JOIN_SECONDS = 5.0
"""How long a finished (or terminated) worker is given to exit before it is killed."""


class WorkerError(RuntimeError):
    """A worker process raised (its traceback is in the message) or died."""


def fork_available() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def _child_main(part: Partition, conn: Connection, inherited: list[Connection]) -> None:
    """A forked worker: expand, exchange, repeat; then send the results to the hub."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.disable()
    for other in inherited:
        other.close()
    try:
        while True:
            part.expand()
            out = part.outgoing()
            conn.send(("level", part.report(), [dest for dest, _ in out]))
            for _, payload in out:
                conn.send_bytes(payload)
            stop, senders = conn.recv()
            for sender in senders:
                part.receive(sender, conn.recv_bytes())
            part.finish_level()
            if stop:
                break
        conn.send(("final", part.final_header()))
        conn.send_bytes(pickle.dumps(part.final_lists(omit=0), PICKLE_PROTOCOL))
        for name in ARRAYS:
            conn.send_bytes(getattr(part, name))
    except (EOFError, BrokenPipeError):  # the hub is gone: nothing to report to
        pass
    except BaseException:  # reported to the hub, which raises it
        with contextlib.suppress(OSError):
            conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


class _Child:
    def __init__(self, index: int, process: Any, conn: Connection) -> None:
        self.index, self.process, self.conn = index, process, conn

    def _wait(self) -> None:
        while True:
            ready = wait([self.conn, self.process.sentinel], POLL_SECONDS)
            if self.conn in ready:
                return
            if ready:
                raise WorkerError(f"worker {self.index} exited unexpectedly (exit code {self.process.exitcode})")

    def recv(self) -> Any:
        self._wait()
        try:
            message = self.conn.recv()
        except EOFError:
            raise WorkerError(f"worker {self.index} closed its pipe unexpectedly") from None
        if isinstance(message, tuple) and message and message[0] == "error":
            raise WorkerError(f"worker {self.index} failed:\n{message[1]}")
        return message

    def recv_bytes(self) -> bytes:
        self._wait()
        try:
            return self.conn.recv_bytes()
        except EOFError:
            raise WorkerError(f"worker {self.index} closed its pipe unexpectedly") from None


def _shutdown(children: list[_Child], *, graceful: bool) -> None:
    """Make sure no worker outlives the call: join finished ones, terminate then kill the rest."""
    for child in children:
        child.conn.close()
    if graceful:
        for child in children:
            child.process.join(JOIN_SECONDS)
    for child in children:
        if child.process.is_alive():
            child.process.terminate()
    for child in children:
        child.process.join(JOIN_SECONDS)
        if child.process.is_alive():
            child.process.kill()
            child.process.join(JOIN_SECONDS)


def explore_parallel(
    machine: Machine[Any, Any],
    *,
    workers: int,
    symmetry: bool,
    progress: ProgressFn | None,
    max_states: int | None,
    check_describe: bool = False,
) -> Exploration:
    """``explore`` with ``workers`` processes (see the module doc)."""
    with paused_gc():
        exploration = _run(machine, workers, symmetry, progress, max_states, check_describe)
    if progress is not None:
        progress(exploration.states, 0, exploration.elapsed)
    return exploration


def _run(
    machine: Machine[Any, Any],
    n: int,
    symmetry: bool,
    progress: ProgressFn | None,
    max_states: int | None,
    check_describe: bool,
) -> Exploration:
    started = time.perf_counter()
    ctx = multiprocessing.get_context("fork")
    children: list[_Child] = []
    graceful = False
    try:
        hub = Partition(machine, symmetry, 0, n, max_states, check_describe=check_describe)
        parent_ends: list[Connection] = []
        for w in range(1, n):
            part = Partition(machine, symmetry, w, n, max_states, check_describe=check_describe)
            parent_end, child_end = ctx.Pipe()
            process = ctx.Process(
                target=_child_main,
                args=(part, child_end, [*parent_ends, parent_end]),
                name=f"meerkat-explore-{w}",
                daemon=True,
            )
            process.start()
            child_end.close()
            parent_ends.append(parent_end)
            children.append(_Child(w, process, parent_end))

        while True:
            hub.expand()
            inbound: list[list[tuple[int, bytes]]] = [[] for _ in range(n)]
            for dest, payload in hub.outgoing():
                inbound[dest].append((0, payload))
            reports = [hub.report()]
            for child in children:
                _, report, dests = child.recv()
                reports.append(report)
                for dest in dests:
                    inbound[dest].append((child.index, child.recv_bytes()))
            states, frontier, found = (sum(r[k] for r in reports) for k in range(3))
            stopped = any(r[3] for r in reports)
            stop = (
                (not any(inbound) and found == 0)
                or stopped
                or (max_states is not None and states + found >= max_states)
            )
            for child in children:
                batches = inbound[child.index]
                child.conn.send((stop, [sender for sender, _ in batches]))
                for _, payload in batches:
                    child.conn.send_bytes(payload)
            for sender, payload in inbound[0]:
                hub.receive(sender, payload)
            hub.finish_level()
            if progress is not None:  # exact figures as of the start of the level just expanded
                progress(states, frontier, time.perf_counter() - started)
            if stop:
                break

        parts: list[dict[str, Any]] = [hub.result()]
        for child in children:
            tag, header = child.recv()
            if tag != "final":
                raise WorkerError(f"worker {child.index}: unexpected message {tag!r}")
            header.update(zip(LISTS, pickle.loads(child.recv_bytes()), strict=True))
            header["state_list"] = restore_states(
                header["state_list"], header["states"], header["inbox"][0], hub.sent_states[child.index]
            )
            for name in ARRAYS:
                header[name] = _int_array(child.recv_bytes())
            parts.append(header)
        graceful = True
    except (ConnectionError, EOFError) as exc:
        raise WorkerError(f"lost contact with a worker: {exc!r}") from exc
    finally:
        _shutdown(children, graceful=graceful)
    complete = not any(p["stopped"] for p in parts) and not (
        max_states is not None and sum(p["states"] for p in parts) >= max_states
    )
    return assemble(
        machine,
        symmetry,
        n,
        parts,
        lambda: time.perf_counter() - started,
        complete=complete,
        check_describe=check_describe,
    )


def _int_array(data: bytes) -> array[int]:
    out = array("q")
    out.frombytes(data)
    return out
