"""Several worker processes on one PostgreSQL database, as on several hosts: workers SIGKILLed and
their database connections terminated at random, sessions taken over, nothing lost or doubled.

:func:`run_cluster` starts ``workers`` worker processes (each with its own connection pool) on a
fresh schema of one database and spreads ``sessions`` over them (each worker claims its share at
once and waits for the leases of the others). Every cycle the driver sends each session's owner
a batch of accepts (new idempotency keys; retries — same key, new input id — of every accept
that failed or whose worker died; resends of acknowledged keys, which must come back
deduplicated), lets them run for a random moment, then injects one fault:

* a **kill**: a worker that owns sessions is SIGKILLed; the surviving workers (and the
  replacement started at once) race for its sessions once their leases expire; the time from
  the kill until a new owner reports each session is a takeover, which must stay within the
  lease bound (``lease_s + takeover_slack_s``);
* a **disconnect**: every database connection of one worker is terminated from a separate admin
  connection (``pg_terminate_backend``): idle ones, ones in a transaction, ones committing. The
  store retries what broke before ``COMMIT`` and reports the rest (failed or outcome unknown);
  the worker answers such an accept with a ``nack`` and the driver retries it.

At the end every failed accept is retried until acknowledged, the owners drain their queues and
close, and each session is checked from the store and the run logs with the same rules as the
SQLite takeover harness (:mod:`~meerkat_conformance.takeover.verify`): every acknowledged input
Consumed (by exactly one logged run) or still queued, nothing run again after it was recorded
Consumed, no idempotency key accepted twice.
"""

from __future__ import annotations

import contextlib
import queue
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from meerkat_runtime.store.postgres import PostgresRuntimeStore
from meerkat_runtime.vocab.ids import canonical_runtime_id
from psycopg.conninfo import make_conninfo

from meerkat_conformance.stores.postgres_backend import drop_schema, fresh_schema_name
from meerkat_conformance.takeover.driver import EVENT_TIMEOUT_S, TakeoverReport, Worker, WorkerFailed
from meerkat_conformance.takeover.verify import Ack, read_runs, session_violations, stored_records

Message = dict[str, Any]


@dataclass
class ClusterReport(TakeoverReport):
    """A :class:`TakeoverReport` (every takeover counted) plus the cluster's own figures."""

    cycles: int = 0
    kills: int = 0
    disconnects: int = 0
    backends_terminated: int = 0
    failed_accepts: int = 0
    """Accepts answered with an error (a store failure while connections were terminated)."""
    unknown_landed: int = 0
    """Accepts whose store write ended with an unknown outcome, read back by the runtime as
    stored and acknowledged."""
    unknown_not_landed: int = 0
    """Accepts whose store write ended with an unknown outcome, read back as not stored (failed)."""
    in_doubt: int = 0
    """Accepts that failed with the outcome still unknown (the store could not be read back, or
    the session had not reconciled yet)."""
    sessions: int = 0
    workers: int = 0
    lease_bound_s: float = 0.0
    failure_kinds: Counter[str] = field(default_factory=Counter)
    """The error kinds of the failed accepts."""
    registration_retries: Counter[str] = field(default_factory=Counter)
    """Registrations that failed with a store error and were tried again, by error kind."""
    owners_seen: dict[str, set[int]] = field(default_factory=dict)
    """For each session, the workers that owned it at some point."""

    def render(self) -> str:
        spread = sum(len(w) for w in self.owners_seen.values())
        head = (
            f"{self.cycles} cycles on {self.workers} workers and {self.sessions} sessions: {self.kills} kills, "
            f"{self.disconnects} disconnects ({self.backends_terminated} backends terminated), "
            f"{self.failed_accepts} accepts failed and retried, {spread} session owners in all; "
            f"lease bound {self.lease_bound_s * 1000:.0f} ms\n"
            f"unknown write outcomes of accepts, reconciled by the runtime: {self.unknown_landed} read back as "
            f"stored (acknowledged), {self.unknown_not_landed} as not stored (failed); {self.in_doubt} accepts "
            "failed in doubt\n"
        )
        return head + super().render()


@dataclass
class _Key:
    """One accept the driver wants acknowledged: its idempotency key, the input id sent last."""

    session: str
    idem: str
    sent: str
    attempt: int = 0
    state: str = "new"  # inflight | failed | acked
    worker: int = -1


class _Cluster:
    """The driver's view: live workers, session owners, idempotency keys in flight."""

    def __init__(self, dsn: str, schema: str, directory: Path, settings: dict[str, Any], rng: random.Random) -> None:
        self.dsn, self.schema, self.directory, self.settings, self.rng = dsn, schema, directory, settings, rng
        self.events: queue.Queue[Message | None] = queue.Queue()
        self.workers: dict[int, Worker] = {}
        self.all_workers: list[Worker] = []
        self.killed: set[int] = set()
        self.owners: dict[str, int | None] = {s: None for s in settings["sessions"]}
        self.tokens: dict[str, int] = {s: 0 for s in settings["sessions"]}
        self.keys: dict[str, _Key] = {}
        self.by_id: dict[str, str] = {}
        self.acks: list[Ack] = []
        self.awaiting: dict[str, float] = {}
        self.finished: dict[int, Message] = {}

    def spawn(self, first: list[str]) -> Worker:
        number = len(self.all_workers)
        owner = f"worker-{number}"
        spec = {
            "store": {
                "kind": "postgres",
                "dsn": make_conninfo(self.dsn, application_name=owner),
                "schema": self.schema,
            },
            "owner": owner,
            "sessions": self.settings["sessions"],
            "first": first,
            "standby_after_s": self.settings["standby_after_s"],
            "lease_s": self.settings["lease_s"],
            "renew_every_s": self.settings["renew_every_s"],
            "run_log": str(self.directory / f"runs-{number}.jsonl"),
            "seed": self.rng.randrange(1 << 30),
        }
        worker = Worker(number, spec, self.events)
        self.workers[number] = worker
        self.all_workers.append(worker)
        return worker

    # --- messages -------------------------------------------------------------------------
    def handle(self, message: Message | None, report: ClusterReport) -> None:
        assert message is not None
        number = int(message["worker"])
        session = message.get("session", "")
        if "ack" in message or "nack" in message:
            input_id = message.get("ack") or message["nack"]
            key = self.keys.get(self.by_id.get(input_id, ""))
            if key is None or key.sent != input_id or key.state != "inflight":
                raise WorkerFailed(f"answer {message!r} for an accept that is not in flight")
            if "ack" in message:
                key.state = "acked"
                self.acks.append(Ack(input_id, key.idem, message["outcome"], message["existing"], session))
                report.unknown_landed += bool(message.get("store_unknown"))
            else:
                key.state = "failed"
                report.failed_accepts += 1
                report.failure_kinds[str(message.get("kind"))] += 1
                if message.get("in_doubt"):
                    report.in_doubt += 1
                elif message.get("store_unknown"):
                    report.unknown_not_landed += 1
            return
        event = message.get("event")
        if event == "owner":
            token = int(message["token"])
            if token == self.tokens[session] and self.owners[session] not in (None, number):
                raise WorkerFailed(f"two workers report token {token} for session {session}")
            if token > self.tokens[session]:
                self.tokens[session] = token
                self.owners[session] = number
                report.owners_seen.setdefault(session, set()).add(number)
                if session in self.awaiting:
                    report.takeover_s.append(time.monotonic() - self.awaiting.pop(session))
                    report.takeovers += 1
        elif event == "lost":
            if self.owners.get(session) == number:
                self.owners[session] = None
        elif event == "exited":
            if number not in self.killed:
                raise WorkerFailed(f"worker {number} exited unexpectedly: {self.all_workers[number].stderr_tail()}")
            for key in self.keys.values():
                if key.state == "inflight" and key.worker == number:
                    key.state = "failed"
        elif event in ("drained", "closed"):
            self.finished[number] = message
        elif event == "retrying":
            report.registration_retries[str(message.get("kind"))] += 1
            if report.registration_retries.total() > 200:
                raise WorkerFailed(f"registrations keep failing: {message!r}")
        else:
            raise WorkerFailed(f"worker {number}: {message!r}; {self.all_workers[number].stderr_tail()}")

    def pump_for(self, seconds: float, report: ClusterReport) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self.handle(self.events.get(timeout=left), report)
            except queue.Empty:
                return

    def pump_until(self, done: Any, timeout: float, what: str, report: ClusterReport) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerFailed(f"timed out after {timeout:.0f} s waiting for {what}")
            with contextlib.suppress(queue.Empty):
                self.handle(self.events.get(timeout=min(left, 0.2)), report)

    # --- accepts --------------------------------------------------------------------------
    def send_accepts(self, report: ClusterReport, *, new: bool) -> None:
        for session, number in self.owners.items():
            if number is None or number not in self.workers:
                continue
            worker = self.workers[number]
            commands: list[tuple[str, _Key]] = []
            for name, key in self.keys.items():
                if key.session == session and key.state == "failed":
                    key.attempt += 1
                    key.sent = f"{name}-retry{key.attempt}"
                    commands.append((name, key))
                    report.retried += 1
            if new:
                acked = sorted(k.idem for k in self.keys.values() if k.session == session and k.state == "acked")
                for idem in self.rng.sample(acked, min(len(acked), self.rng.randint(0, 1))):
                    again = f"{idem}-again{len(self.keys)}"
                    self.keys[again] = _Key(session, idem, again)
                    commands.append((again, self.keys[again]))
                    report.resent += 1
                for _ in range(self.rng.randint(*self.settings["batch"])):
                    name = f"k{len(self.keys)}-{session}"
                    self.keys[name] = _Key(session, name, f"in-{name}")
                    commands.append((name, self.keys[name]))
            for name, key in commands:
                key.state, key.worker = "inflight", number
                self.by_id[key.sent] = name
                worker.send({"op": "accept", "session": session, "id": key.sent, "key": key.idem})

    def settled(self) -> bool:
        return all(k.state == "acked" for k in self.keys.values())

    # --- faults ---------------------------------------------------------------------------
    def kill(self, report: ClusterReport) -> bool:
        owning = sorted({n for n in self.owners.values() if n is not None and n in self.workers})
        if not owning:
            return False
        victim = self.workers.pop(self.rng.choice(owning))
        self.killed.add(victim.number)
        victim.sigkill()
        killed_at = time.monotonic()
        self.pump_for(0, report)
        for session, number in self.owners.items():
            if number == victim.number:
                self.owners[session] = None
                self.awaiting[session] = killed_at
        self.spawn([])
        bound = self.settings["lease_s"] * 4 + EVENT_TIMEOUT_S
        self.pump_until(lambda: not self.awaiting, bound, f"the takeover of {sorted(self.awaiting)}", report)
        report.kills += 1
        return True

    def disconnect(self, report: ClusterReport) -> None:
        number = self.rng.choice(sorted(self.workers))
        with psycopg.connect(self.dsn, autocommit=True) as admin:
            row = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
                (f"worker-{number}",),
            ).fetchone()
        report.backends_terminated += int(row[0]) if row else 0
        report.disconnects += 1


def run_cluster(
    dsn: str,
    directory: Path,
    *,
    cycles: int = 30,
    workers: int = 3,
    sessions: int = 6,
    seed: int = 0,
    lease_s: float = 0.5,
    renew_every_s: float | None = None,
    batch: tuple[int, int] = (1, 3),
    kill_share: float = 0.5,
    max_delay_s: float = 0.05,
    takeover_slack_s: float = 3.0,
    keep_schema: bool = False,
) -> ClusterReport:
    """Run ``cycles`` faults on a fresh schema of the database ``dsn`` names (see the module
    docstring). Raises ``WorkerFailed`` if a worker misbehaves; guarantee violations are in
    the report (``report.ok``)."""
    start = time.monotonic()
    rng = random.Random(seed)
    faults = random.Random(seed + 1)
    names = [f"s{n}" for n in range(sessions)]
    schema = fresh_schema_name("cluster")
    report = ClusterReport(lease_s=lease_s, sessions=sessions, workers=workers)
    report.lease_bound_s = lease_s + takeover_slack_s
    settings = {
        "sessions": names,
        "lease_s": lease_s,
        "renew_every_s": renew_every_s if renew_every_s is not None else lease_s / 3,
        "standby_after_s": 1.0,
        "batch": batch,
    }
    PostgresRuntimeStore(dsn, schema=schema).close()  # create the schema once, before the workers race
    cluster = _Cluster(dsn, schema, directory, settings, rng)
    try:
        for n in range(workers):
            cluster.spawn(names[n::workers])
        cluster.pump_until(lambda: None not in cluster.owners.values(), EVENT_TIMEOUT_S, "every session owned", report)
        for _ in range(cycles):
            cluster.send_accepts(report, new=True)
            if faults.random() < kill_share:
                cluster.pump_for(rng.uniform(0, max_delay_s), report)
                if not cluster.kill(report):
                    cluster.disconnect(report)
            else:  # while the accepts (and the runs they start) are still going on
                cluster.pump_for(rng.uniform(0, max_delay_s / 10), report)
                cluster.disconnect(report)
                cluster.pump_for(max_delay_s, report)
            report.cycles += 1
        deadline = time.monotonic() + 4 * EVENT_TIMEOUT_S
        while not cluster.settled():
            if time.monotonic() > deadline:
                raise WorkerFailed("accepts still unacknowledged at the end")
            cluster.send_accepts(report, new=False)
            cluster.pump_for(0.2, report)
        for number, worker in list(cluster.workers.items()):
            cluster.finished.pop(number, None)
            worker.send({"op": "drain"})
            cluster.pump_until(lambda n=number: n in cluster.finished, 60, f"worker {number} to drain", report)
            if cluster.finished[number].get("left"):
                raise WorkerFailed(f"worker {number} could not drain: {cluster.finished[number]}")
        for number, worker in list(cluster.workers.items()):
            cluster.killed.add(number)  # its exit is expected now
            worker.send({"op": "close"})
        for worker in cluster.workers.values():
            worker.process.wait(timeout=30)
    finally:
        for worker in cluster.all_workers:
            if worker.process.poll() is None:
                worker.sigkill()
            worker._close_pipes()

    try:
        with PostgresRuntimeStore(dsn, schema=schema) as store:
            records = {s: stored_records(store, canonical_runtime_id(s)) for s in names}
        runs = read_runs(w.run_log for w in cluster.all_workers if w.run_log.exists())
    finally:
        if not keep_schema:
            drop_schema(dsn, schema)
    acks = cluster.acks
    report.accepted = sum(1 for a in acks if a.outcome == "accepted")
    report.deduplicated = sum(1 for a in acks if a.outcome == "deduplicated")
    report.consumed = sum(1 for rs in records.values() for r in rs.values() if r.phase.is_terminal)
    report.queued = sum(len(rs) for rs in records.values()) - report.consumed
    report.runs_logged = len(runs)
    report.repeated_runs = len(runs) - report.consumed
    report.violations = session_violations(records, acks, runs)
    report.violations += [
        f"a takeover took {t * 1000:.0f} ms, beyond the lease bound of {report.lease_bound_s * 1000:.0f} ms"
        for t in report.takeover_s
        if t > report.lease_bound_s
    ]
    report.seconds = time.monotonic() - start
    return report
