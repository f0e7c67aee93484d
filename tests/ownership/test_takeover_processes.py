"""Real worker processes on one SQLite file, the owner SIGKILLed at random points and a waiting
worker taking over once the lease expires: 50 takeovers, then every guarantee is checked from the
store and the workers' run logs (and the checks are shown to catch each kind of violation)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from meerkat_conformance.takeover.driver import run_takeovers
from meerkat_conformance.takeover.verify import Ack, Run, stored_records, violations
from meerkat_runtime.session.core.ledger import InputRecord
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.vocab.ids import InputId, canonical_runtime_id, new_run_id
from meerkat_runtime.vocab.inputs import InputLifecycleState

from tests.runtime_session.helpers import make_prompt

TAKEOVERS = 50


@pytest.mark.slow
def test_fifty_takeovers_of_killed_owners_lose_nothing_and_run_nothing_twice(tmp_path: Path) -> None:
    report = run_takeovers(tmp_path, takeovers=TAKEOVERS, seed=20261125, lease_s=0.25, renew_every_s=0.08)
    assert report.ok, report.render() + "\n" + "\n".join(report.violations)
    assert report.takeovers == TAKEOVERS
    assert report.accepted >= TAKEOVERS and report.consumed >= report.accepted and report.queued == 0
    assert report.resent > 0 and report.deduplicated >= report.resent  # acknowledged keys came back deduplicated
    assert report.runs_logged >= report.consumed
    assert all(t > 0 for t in report.takeover_s) and len(report.takeover_s) == TAKEOVERS


# --- the checks catch what they are for --------------------------------------------------------


def _clean() -> tuple[dict[str, InputRecord], list[Ack], list[Run]]:
    """Three inputs accepted (keys k0..k2) and consumed by owner token 1, as a worker would leave them."""

    async def body() -> dict[str, InputRecord]:
        store = InMemoryRuntimeStore()
        m = MeerkatMachine.persistent(store)
        await m.register_session_with_executor("s", ScriptedExecutor())
        for n in range(3):
            await m.accept_input("s", make_prompt(f"p{n}", idempotency_key=f"k{n}", input_id=f"in-{n}"))
        await m.settle("s")
        await m.close()
        return stored_records(store, canonical_runtime_id("s"))

    records = asyncio.run(body())
    acks = [Ack(f"in-{n}", f"k{n}", "accepted") for n in range(3)]
    runs = [Run(1, str(r.last_run_id), (i,)) for i, r in records.items()]
    return records, acks, runs


def test_a_clean_run_has_no_violations() -> None:
    records, acks, runs = _clean()
    assert all(r.phase is InputLifecycleState.CONSUMED for r in records.values())
    assert violations(records, acks, runs) == []


def test_a_lost_acknowledged_input_is_reported() -> None:
    records, acks, runs = _clean()
    del records["in-1"]
    assert violations(records, acks, runs) == ["acknowledged input in-1 is not stored"]


def test_a_run_after_the_input_was_recorded_consumed_is_reported() -> None:
    records, acks, runs = _clean()
    committed = next(r for r in runs if r.inputs == ("in-0",))
    later_owner = Run(2, new_run_id(), ("in-0",))
    same_owner_later = Run(1, "~" + committed.run_id, ("in-0",))  # sorts after the committing run
    earlier = Run(1, "0" + committed.run_id, ("in-0",))  # a run before the commit: allowed
    found = violations(records, acks, [*runs, later_owner, same_owner_later, earlier])
    assert len(found) == 2 and all("in-0 ran again" in f for f in found)


def test_a_commit_by_a_run_nobody_logged_is_reported() -> None:
    records, acks, runs = _clean()
    found = violations(records, acks, [r for r in runs if r.inputs != ("in-2",)])
    assert found == [f"input in-2 is consumed by run {records['in-2'].last_run_id}, which no worker logged"]


def test_an_idempotency_key_accepted_twice_is_reported() -> None:
    records, acks, runs = _clean()
    twin = records["in-0"]
    header = replace(twin.input.header, id=InputId("in-9"))
    records["in-9"] = replace(twin, input=replace(twin.input, header=header))
    found = violations(records, [*acks, Ack("in-9", "k0", "accepted")], runs)
    assert "idempotency key 'k0' was accepted 2 times" in found
    assert "idempotency key 'k0' is stored for ['in-0', 'in-9']" in found


def test_a_deduplication_against_the_wrong_input_is_reported() -> None:
    records, acks, runs = _clean()
    found = violations(records, [*acks, Ack("in-0-again", "k0", "deduplicated", "in-1")], runs)
    assert found == ["in-0-again was deduplicated against in-1, but key 'k0' is in-0"]
