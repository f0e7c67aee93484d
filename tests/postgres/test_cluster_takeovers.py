"""Three worker processes on one PostgreSQL database, as on three hosts: 40 cycles of random
SIGKILLs of workers and terminated database connections; every acknowledged input is Consumed
exactly once or still queued, no idempotency key is accepted twice, every takeover stays within
the lease bound."""

from __future__ import annotations

from pathlib import Path

import pytest
from meerkat_conformance.takeover.cluster import run_cluster

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
