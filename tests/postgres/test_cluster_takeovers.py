"""Three worker processes on one PostgreSQL database, as on three hosts: 40 cycles of random
SIGKILLs of workers and terminated database connections; every acknowledged input is Consumed
exactly once or still queued, no idempotency key is accepted twice, every takeover stays within
the lease bound. And the simulation's check on the case its workers once had to guard against
themselves, made deterministic: an accept whose COMMIT outcome is unknown, retried with the same
idempotency key as the driver retries it."""

from __future__ import annotations

from pathlib import Path

import pytest
from meerkat_conformance.takeover.cluster import run_cluster
from meerkat_conformance.takeover.verify import Ack, stored_records, violations
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.outcomes import Accepted, Deduplicated
from meerkat_runtime.vocab.errors import DurableWriteFailed
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.postgres.helpers import admin, cut_while_sleeping, named, open_store, terminator
from tests.postgres.relay import CuttableProxy
from tests.runtime_session.helpers import make_prompt, run

CYCLES = 40


@pytest.mark.slow
def test_killed_and_disconnected_workers_lose_nothing_and_accept_nothing_twice(pg_dsn: str, tmp_path: Path) -> None:
    report = run_cluster(pg_dsn, tmp_path, cycles=CYCLES, workers=3, sessions=6, seed=20261206, lease_s=0.5)
    assert report.ok, report.render() + "\n" + "\n".join(report.violations)
    assert report.cycles == CYCLES and report.kills + report.disconnects == CYCLES
    assert report.kills >= 10 and report.disconnects >= 10
    assert report.takeovers >= report.kills and len(report.takeover_s) == report.takeovers
    assert max(report.takeover_s) <= report.lease_bound_s
    assert report.backends_terminated > 0
    assert report.accepted >= CYCLES and report.consumed >= report.accepted and report.queued == 0
    assert report.resent > 0 and report.deduplicated >= report.resent
    assert all(len(owners) >= 1 for owners in report.owners_seen.values()) and len(report.owners_seen) == 6
    assert len(set().union(*report.owners_seen.values())) >= 3  # the sessions were spread over the workers


def _sleep_in_commit(dsn: str, schema: str, seconds: float) -> None:
    """A deferred trigger: every input row written makes its COMMIT sleep ``seconds``."""
    with admin(dsn) as conn:
        conn.execute(
            f"CREATE FUNCTION {schema}.slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"PERFORM pg_sleep({seconds}); RETURN NEW; END $$"
        )
        conn.execute(
            f"CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT OR UPDATE ON {schema}.runtime_input_states "
            f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {schema}.slow_commit()"
        )


@pytest.mark.parametrize("commit", ["lands", "is_rolled_back"])
def test_an_accept_with_an_unknown_outcome_retried_with_its_key_is_accepted_once(
    pg_dsn: str, pg_schema: str, commit: str
) -> None:
    """The driver's protocol on one accept: the connection breaks while its COMMIT is in flight
    (cut at the network while the server finishes the commit, or the backend terminated inside
    COMMIT, which rolls it back); a failed accept is retried with the same key under a new input
    id, an acknowledged one resent. The simulation's verifier finds nothing wrong: the runtime
    read the store back instead of trusting either memory or a retry."""
    name = f"driver-{pg_schema}"
    proxy = CuttableProxy(named(pg_dsn, name))
    store = open_store(proxy.dsn, pg_schema, max_connections=2)
    acks: list[Ack] = []

    async def accept(machine: MeerkatMachine, input_id: str) -> bool:
        item = make_prompt(input_id, idempotency_key="k", input_id=input_id)
        try:
            outcome = await machine.accept_input("s", item)
        except DurableWriteFailed as failed:
            assert failed.read_back and not failed.outcome_unknown  # known not stored after reading back
            return False
        kind = "deduplicated" if isinstance(outcome, Deduplicated) else "accepted"
        existing = outcome.existing_id if isinstance(outcome, Deduplicated) else None
        assert isinstance(outcome, Accepted | Deduplicated)
        acks.append(Ack(input_id, "k", kind, existing, "s"))
        return True

    async def body() -> None:
        machine = MeerkatMachine.persistent(store)
        await machine.register_session("s")
        _sleep_in_commit(pg_dsn, pg_schema, 1 if commit == "lands" else 60)
        if commit == "lands":
            with cut_while_sleeping(pg_dsn, name, proxy) as cut:
                assert await accept(machine, "in-k")  # read back: stored, so acknowledged
            assert cut[0] >= 1
        else:
            with terminator(pg_dsn, name, times=1) as killed:
                assert not await accept(machine, "in-k")  # read back: not stored
            assert killed[0] == 1
        with admin(pg_dsn) as conn:
            conn.execute(f"DROP TRIGGER slow_commit ON {pg_schema}.runtime_input_states")
        if commit != "lands":
            assert await accept(machine, "in-k-retry1")
        assert await accept(machine, "in-k-again")  # an acknowledged key sent again
        await machine.close()

    run(body())
    proxy.close()
    with open_store(pg_dsn, pg_schema) as check:
        records = stored_records(check, canonical_runtime_id("s"))
    assert [a.outcome for a in acks] == ["accepted", "deduplicated"]
    assert list(records) == [acks[0].input_id] and acks[1].existing == acks[0].input_id
    assert violations(records, acks, []) == []
