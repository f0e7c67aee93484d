"""``renew_leases`` on PostgreSQL with one lease row locked by another transaction: the batch
skips that row (``FOR UPDATE SKIP LOCKED``) and renews the others; the locked pair alone gets
what ``renew_lease`` gives for it (here ``LockWaitTimedOut`` after the store's lock timeout), and
a pair without a row gets ``renew_lease``'s refusal, each in its place."""

from __future__ import annotations

from meerkat_runtime.store.lease import Lease
from meerkat_runtime.vocab.errors import LockWaitTimedOut, OwnershipLost

from tests.postgres.helpers import admin, open_store

OWNER = "owner-a"


def test_one_locked_lease_row_fails_alone(pg_dsn: str, pg_schema: str) -> None:
    rts = [f"rt:session:locked-{k}" for k in range(5)]
    unclaimed = "rt:session:locked-none"
    with open_store(pg_dsn, pg_schema, timeout_s=0.5) as store:
        before = [store.claim_lease(rt, OWNER, 30.0) for rt in rts]
        pairs = [(lease.fence, lease.runtime_id) for lease in before] + [(before[0].fence, unclaimed)]
        with admin(pg_dsn) as blocker, blocker.transaction():
            blocker.execute(f"SELECT 1 FROM {pg_schema}.runtime_leases WHERE runtime_id = %s FOR UPDATE", (rts[2],))
            outcomes = store.renew_leases(pairs, 60.0)
        assert len(outcomes) == len(pairs)
        assert isinstance(outcomes[2], LockWaitTimedOut)
        assert isinstance(outcomes[5], OwnershipLost)
        for k in (0, 1, 3, 4):
            renewed = outcomes[k]
            assert isinstance(renewed, Lease), (k, renewed)
            assert (renewed.runtime_id, renewed.owner, renewed.token) == (rts[k], OWNER, before[k].token)
            assert renewed.expires_at > before[k].expires_at
            assert store.load_lease(rts[k]) == renewed
        assert store.load_lease(rts[2]) == before[2]  # the locked pair changed nothing
        assert store.load_lease(unclaimed) is None
        # the row free again, the same pair alone is renewed as renew_lease renews it
        (again,) = store.renew_leases([pairs[2]], 60.0)
        assert isinstance(again, Lease) and again.token == before[2].token and again.expires_at > before[2].expires_at
