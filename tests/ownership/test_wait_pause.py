"""How long a registration waiting for a held lease sleeps between claims: towards the lease's
expiry as the store reported it (bounded), or the fixed ``wait_poll_s`` when one is given."""

from __future__ import annotations

from meerkat_runtime.session.claims import WAIT_JITTER, WAIT_PAUSE_CAP_S, wait_pause
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.store.lease import Lease, claim_outcome
from meerkat_runtime.vocab.errors import LeaseHeld, LockWaitTimedOut


def _held(remaining_s: float | None) -> LeaseHeld:
    return LeaseHeld("rt", "other", 100.0, remaining_s=remaining_s)


def test_a_refused_claim_reports_how_long_the_lease_has_left() -> None:
    current = Lease("rt", "other", 3, 130.0)
    try:
        claim_outcome("rt", current, "me", 10.0, 100.0)
    except LeaseHeld as held:
        assert held.remaining_s == 30.0
    else:
        raise AssertionError("the claim of a live lease was not refused")


def test_the_pause_runs_to_the_expiry_within_its_bounds() -> None:
    config = OwnershipConfig(lease_s=20.0)  # poll_s 0.25, bound min(5 s, 1 s)
    assert wait_pause(config, _held(0.8), 0.0) == 0.8
    assert wait_pause(config, _held(2.0), 0.0) == WAIT_PAUSE_CAP_S == 1.0
    assert wait_pause(config, _held(60.0), 0.0) == WAIT_PAUSE_CAP_S
    assert wait_pause(config, _held(0.001), 0.0) == config.poll_s
    assert wait_pause(config, _held(None), 0.0) == config.poll_s
    assert wait_pause(config, LockWaitTimedOut("rt", "busy"), 0.0) == config.poll_s
    assert wait_pause(config, _held(0.5), 0.999) == 0.5 * (1 + WAIT_JITTER * 0.999)
    short = OwnershipConfig(lease_s=2.0)  # poll_s 0.1, bound lease_s / 4 = 0.5 s
    assert wait_pause(short, _held(1.5), 0.0) == 0.5


def test_a_given_poll_period_is_kept() -> None:
    config = OwnershipConfig(lease_s=20.0, wait_poll_s=0.5)
    assert wait_pause(config, _held(2.0), 0.0) == 0.5
    assert wait_pause(config, _held(0.01), 0.0) == 0.5
