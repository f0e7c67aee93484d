"""What a takeover run must leave behind, checked from the store and the workers' run logs.

* every acknowledged input (acknowledged ``accepted`` by some worker) is stored and ends
  Consumed, committed by exactly one run that a worker logged, or back in the queue (Queued);
* no input ran again after it was recorded Consumed: no logged run of it by a later owner (a
  higher lease token), and none by the committing owner after the committing run;
* no idempotency key was accepted twice: at most one ``accepted`` acknowledgement and at most one
  stored input per key, and every ``deduplicated`` acknowledgement names that input.

Violations are collected as text (``TakeoverViolation`` is raised by ``check``).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from meerkat_runtime.session.core.ledger import InputRecord
from meerkat_runtime.session.row_codec import decode_record
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.vocab.inputs import InputLifecycleState


class TakeoverViolation(AssertionError):
    """The store or the run logs break a takeover guarantee."""


@dataclass(frozen=True, slots=True)
class Ack:
    """One acknowledgement a driver recorded after the worker's ``accept_input`` returned."""

    input_id: str
    key: str
    outcome: str
    existing: str | None = None
    session: str = ""


@dataclass(frozen=True, slots=True)
class Run:
    """One run a worker's executor logged (before returning): the owner's token and the run."""

    token: int
    run_id: str
    inputs: tuple[str, ...]
    session: str = ""


def read_runs(paths: Iterable[Path]) -> list[Run]:
    """Every run logged in ``paths`` (a torn last line of a killed worker is ignored)."""
    runs: list[Run] = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                doc = json.loads(line)
            except json.JSONDecodeError:
                continue
            runs.append(Run(int(doc["token"]), str(doc["run"]), tuple(doc["inputs"]), str(doc.get("session", ""))))
    return runs


def stored_records(store: RuntimeStore, runtime_id: str) -> dict[str, InputRecord]:
    return {row.input_id: decode_record(row.payload) for row in store.load_input_states(runtime_id)}


def violations(records: dict[str, InputRecord], acks: list[Ack], runs: list[Run]) -> list[str]:
    """Every broken guarantee, as text (empty when the run is clean)."""
    found: list[str] = []
    by_run = {run.run_id: run for run in runs}
    runs_of: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        for input_id in run.inputs:
            runs_of[input_id].append(run)
    accepted = [ack for ack in acks if ack.outcome == "accepted"]
    for ack in accepted:
        record = records.get(ack.input_id)
        if record is None:
            found.append(f"acknowledged input {ack.input_id} is not stored")
        elif record.phase not in (InputLifecycleState.CONSUMED, InputLifecycleState.QUEUED):
            found.append(f"acknowledged input {ack.input_id} ended {record.phase.value}, not consumed or queued")
    for input_id, record in records.items():
        if record.phase is not InputLifecycleState.CONSUMED:
            continue
        committed = by_run.get(record.last_run_id or "")
        if committed is None or input_id not in committed.inputs:
            found.append(f"input {input_id} is consumed by run {record.last_run_id}, which no worker logged")
            continue
        for run in runs_of[input_id]:
            later_owner = run.token > committed.token
            later_run = run.token == committed.token and run.run_id > committed.run_id
            if later_owner or later_run:
                found.append(
                    f"input {input_id} ran again (run {run.run_id}, token {run.token}) after run "
                    f"{committed.run_id} (token {committed.token}) recorded it consumed"
                )
    accepted_keys = Counter(ack.key for ack in accepted)
    found.extend(f"idempotency key {key!r} was accepted {n} times" for key, n in accepted_keys.items() if n > 1)
    stored_keys: dict[str, list[str]] = defaultdict(list)
    for input_id, record in records.items():
        key = record.input.header.idempotency_key
        if key is not None:
            stored_keys[key].append(input_id)
    found.extend(f"idempotency key {key!r} is stored for {ids}" for key, ids in stored_keys.items() if len(ids) > 1)
    owner_of_key = {ack.key: ack.input_id for ack in accepted}
    stored_ids = {key: ids[0] for key, ids in stored_keys.items()}
    for ack in acks:
        if ack.outcome != "deduplicated":
            continue
        expected = owner_of_key.get(ack.key) or stored_ids.get(ack.key)
        if ack.existing != expected:
            found.append(f"{ack.input_id} was deduplicated against {ack.existing}, but key {ack.key!r} is {expected}")
    return found


def session_violations(
    records_by_session: dict[str, dict[str, InputRecord]], acks: list[Ack], runs: list[Run]
) -> list[str]:
    """:func:`violations` of each session (tokens are per session), prefixed with its name."""
    found: list[str] = []
    for session, records in sorted(records_by_session.items()):
        mine = [a for a in acks if a.session == session]
        logged = [r for r in runs if r.session == session]
        found.extend(f"session {session}: {v}" for v in violations(records, mine, logged))
    return found


def check(records: dict[str, InputRecord], acks: list[Ack], runs: list[Run]) -> None:
    """Raise ``TakeoverViolation`` listing every broken guarantee."""
    found = violations(records, acks, runs)
    if found:
        shown = "\n  ".join(found[:20])
        raise TakeoverViolation(f"{len(found)} takeover violation(s):\n  {shown}")
