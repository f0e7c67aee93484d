"""Drive real worker processes through takeovers and check what they leave behind.

:func:`run_takeovers` keeps one owner and one standby worker on one SQLite file. Each round it
sends the owner a batch of accepts (new inputs; retries — same idempotency key, new input id —
of every accept that was never acknowledged; and resends of a few acknowledged ones, which must
come back deduplicated), waits for a random number of the
acknowledgements plus a random delay (up to ``max_kill_delay_s``), and SIGKILLs the owner: in
the middle of an accept, a run, a commit, a renewal or while idle. The standby, blocked waiting
for the lease, takes the session over once the dead owner's lease expires; a new standby is
started. Acknowledgements count once the driver has read them (a worker prints one only after
``accept_input`` returned). At the end the last owner drains the queue and closes, and
:mod:`~meerkat_conformance.takeover.verify` checks the store and the run logs.
"""

from __future__ import annotations

import contextlib
import json
import queue
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.ids import canonical_runtime_id

from meerkat_conformance.stores.childproc import child_env
from meerkat_conformance.takeover import worker
from meerkat_conformance.takeover.verify import Ack, check, read_runs, stored_records

SESSION = "takeover"
EVENT_TIMEOUT_S = 30.0


class WorkerFailed(AssertionError):
    """A worker died or answered something the driver did not expect."""


class Worker:
    """One worker process and a thread reading its stdout into a queue."""

    def __init__(
        self, number: int, spec: dict[str, Any], lines: queue.Queue[dict[str, Any] | None] | None = None
    ) -> None:
        self.number = number
        self.owner = spec["owner"]
        self.run_log = Path(spec["run_log"])
        self.process = subprocess.Popen(
            [sys.executable, worker.__file__, json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env(),
            text=True,
        )
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue() if lines is None else lines
        """Messages, each tagged ``"worker": number``, then ``None`` when the output ended (a
        queue shared by several workers gets one ``{"worker": n, "event": "exited"}`` instead)."""
        self._shared = lines is not None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.token = 0

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                message = {"event": "garbage", "line": line}
            message["worker"] = self.number
            self.lines.put(message)
        self.lines.put({"worker": self.number, "event": "exited"} if self._shared else None)

    def send(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def next(self, timeout: float = EVENT_TIMEOUT_S) -> dict[str, Any] | None:
        """The next message, ``None`` once the process's output ended."""
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise WorkerFailed(f"worker {self.owner} said nothing for {timeout} s") from None

    def expect_event(self, event: str, timeout: float = EVENT_TIMEOUT_S) -> dict[str, Any]:
        message = self.next(timeout)
        if message is None or message.get("event") != event:
            raise WorkerFailed(f"worker {self.owner}: expected {event!r}, got {message!r}; {self.stderr_tail()}")
        return message

    def sigkill(self) -> None:
        """SIGKILL the process and wait until everything it printed has been queued."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self._reader.join(timeout=10)

    def kill(self) -> list[dict[str, Any]]:
        """SIGKILL the process and return every message it printed that was not read yet (own
        queue only)."""
        self.sigkill()
        left: list[dict[str, Any]] = []
        while (message := self.lines.get()) is not None:
            left.append(message)
        self._close_pipes()
        return left

    def stderr_tail(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return "(running)"
        return "stderr: " + self.process.stderr.read()[-2000:]

    def _close_pipes(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


@dataclass
class TakeoverReport:
    takeovers: int = 0
    accepted: int = 0
    deduplicated: int = 0
    retried: int = 0
    resent: int = 0
    """Accepts of an acknowledged idempotency key sent again (each must be deduplicated)."""
    consumed: int = 0
    queued: int = 0
    runs_logged: int = 0
    repeated_runs: int = 0
    """Runs of an input beyond its committed one (at-least-once delivery: a run the owner died in)."""
    takeover_s: list[float] = field(default_factory=list)
    """From the kill of an owner until its successor reported it owns the session."""
    lease_s: float = 0.0
    seconds: float = 0.0
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def render(self) -> str:
        latency = (
            f"takeover after kill p50 {statistics.median(self.takeover_s) * 1000:.0f} ms, "
            f"max {max(self.takeover_s) * 1000:.0f} ms (lease {self.lease_s * 1000:.0f} ms)"
            if self.takeover_s
            else "no takeover"
        )
        status = "OK" if self.ok else f"FAILED ({len(self.violations)} violations)"
        return (
            f"{status}: {self.takeovers} takeovers, {self.accepted} inputs acknowledged "
            f"({self.deduplicated} deduplicated; {self.retried} unacknowledged accepts retried, "
            f"{self.resent} acknowledged ones resent), {self.consumed} consumed, "
            f"{self.queued} queued, {self.runs_logged} runs logged ({self.repeated_runs} repeated before "
            f"their commit)\n    {latency}; {self.seconds:.1f} s total"
        )


Synchronous = Literal["FULL", "NORMAL"]


def run_takeovers(
    directory: Path,
    *,
    takeovers: int = 50,
    seed: int = 0,
    lease_s: float = 0.25,
    renew_every_s: float = 0.08,
    batch: tuple[int, int] = (1, 6),
    max_kill_delay_s: float = 0.02,
    synchronous: Synchronous = "NORMAL",
) -> TakeoverReport:
    """Run ``takeovers`` owner kills on a new SQLite file in ``directory``; see the module
    docstring. Raises ``WorkerFailed`` if a worker misbehaves; guarantee violations are in the
    report (``report.ok``)."""
    start = time.monotonic()
    rng = random.Random(seed)
    path = directory / "runtime.sqlite3"
    report = TakeoverReport(lease_s=lease_s)
    workers: list[Worker] = []

    def spawn() -> Worker:
        number = len(workers)
        spec = {
            "path": str(path),
            "owner": f"worker-{number}",
            "session": SESSION,
            "lease_s": lease_s,
            "renew_every_s": renew_every_s,
            "synchronous": synchronous,
            "run_log": str(directory / f"runs-{number}.jsonl"),
            "seed": rng.randrange(1 << 30),
        }
        started = Worker(number, spec)
        workers.append(started)
        return started

    acks: list[Ack] = []
    pending: dict[str, tuple[str, int]] = {}  # key -> (input id sent last, attempt)
    serial = 0

    def record(message: dict[str, Any]) -> None:
        if "ack" not in message:
            raise WorkerFailed(f"unexpected message {message!r}")
        input_id = message["ack"]
        keys = [k for k, (sent, _) in pending.items() if sent == input_id]
        if len(keys) != 1:
            raise WorkerFailed(f"acknowledgement of {input_id}, which is not awaiting one")
        del pending[keys[0]]
        key = keys[0]
        acks.append(Ack(input_id, key, message["outcome"], message["existing"]))

    try:
        owner = spawn()
        owner.token = owner.expect_event("owner")["token"]
        standby = spawn()
        for _ in range(takeovers):
            commands = []
            for key, (_, attempt) in list(pending.items()):  # retry what was never acknowledged
                retry_id = f"{key}-retry{attempt + 1}"
                pending[key] = (retry_id, attempt + 1)
                commands.append({"op": "accept", "id": retry_id, "key": key})
                report.retried += 1
            acknowledged = sorted({a.key for a in acks if a.outcome == "accepted"} - set(pending))
            for key in rng.sample(acknowledged, min(len(acknowledged), rng.randint(0, 2))):
                serial += 1
                pending[key] = (f"{key}-again{serial}", 0)
                commands.append({"op": "accept", "id": f"{key}-again{serial}", "key": key})
                report.resent += 1
            for _ in range(rng.randint(*batch)):
                serial += 1
                key = f"k{serial}"
                pending[key] = (f"in-{serial}", 0)
                commands.append({"op": "accept", "id": f"in-{serial}", "key": key})
            for command in commands:
                owner.send(command)
            for _ in range(rng.randint(0, len(commands))):
                message = owner.next()
                if message is None:
                    raise WorkerFailed(f"owner {owner.owner} died: {owner.stderr_tail()}")
                record(message)
            time.sleep(rng.uniform(0, max_kill_delay_s))
            killed = time.monotonic()
            for message in owner.kill():
                record(message)
            successor = standby.expect_event("owner")
            report.takeover_s.append(time.monotonic() - killed)
            if successor["token"] <= owner.token:
                raise WorkerFailed(f"token went from {owner.token} to {successor['token']} in a takeover")
            standby.token = successor["token"]
            owner, standby = standby, spawn()
            report.takeovers += 1
        for key, (_, attempt) in list(pending.items()):
            retry_id = f"{key}-retry{attempt + 1}"
            pending[key] = (retry_id, attempt + 1)
            owner.send({"op": "accept", "id": retry_id, "key": key})
            report.retried += 1
        while pending:
            message = owner.next()
            if message is None:
                raise WorkerFailed(f"owner {owner.owner} died: {owner.stderr_tail()}")
            record(message)
        standby.kill()
        owner.send({"op": "drain"})
        drained = owner.expect_event("drained", timeout=60)
        if drained["left"]:
            raise WorkerFailed(f"the last owner could not drain its queue: {drained}")
        owner.send({"op": "close"})
        owner.expect_event("closed")
        owner.process.wait(timeout=30)
    finally:
        for w in workers:
            if w.process.poll() is None:
                w.kill()
            w._close_pipes()

    with SqliteRuntimeStore(path) as store:
        records = stored_records(store, canonical_runtime_id(SESSION))
    runs = read_runs(w.run_log for w in workers if w.run_log.exists())
    report.accepted = sum(1 for a in acks if a.outcome == "accepted")
    report.deduplicated = sum(1 for a in acks if a.outcome == "deduplicated")
    report.consumed = sum(1 for r in records.values() if r.phase.is_terminal)
    report.queued = len(records) - report.consumed
    report.runs_logged = len(runs)
    report.repeated_runs = len(runs) - report.consumed
    try:
        check(records, acks, runs)
    except AssertionError as exc:
        report.violations = str(exc).splitlines()[1:]
    report.seconds = time.monotonic() - start
    return report
