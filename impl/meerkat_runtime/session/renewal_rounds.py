"""What a machine's lease renewal rounds took, and the warning when a round put leases at risk.

A round renews every live claim of the machine (:meth:`SessionClaimRegistry.renew_all`). A lease
is at risk when its renewal is sent late: more than ``lease_s / 2`` after the claim's previous
renewal (the background renewal normally sends it ``renew_every_s`` after), or in a round
longer than ``lease_s - renew_every_s`` (the last lease of that round may already have expired
in the store, where any standby can claim it). Such a round logs one warning on the
``meerkat_runtime.session`` logger naming both counts and the round's time; the numbers are in
:class:`RenewalStats` (``MeerkatMachine.renewal_stats()``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.store.lease import RENEW_BATCH_MAX

_log = logging.getLogger("meerkat_runtime.session")

RENEWAL_CHUNK = min(128, RENEW_BATCH_MAX)
"""Leases renewed per store transaction by a store with ``renew_leases``: short enough that a
chunk holds the store's write lock only briefly (accepts run between chunks)."""


@dataclass(frozen=True, slots=True)
class RenewalStats:
    """Counts since the machine started, and the last and longest round. Times are in seconds
    of the machine's clock (``OwnershipConfig.clock``)."""

    rounds: int = 0
    """Renewal rounds finished (background and ``renew_leases_now``)."""
    last_round_s: float = 0.0
    longest_round_s: float = 0.0
    last_round_leases: int = 0
    """Leases the last round renewed (or tried to)."""
    last_round_transactions: int = 0
    """Store calls the last round made: one per chunk of leases, or one per lease."""
    late_renewals: int = 0
    """Renewals sent more than ``lease_s / 2`` after the claim's previous renewal."""
    slow_rounds: int = 0
    """Rounds longer than ``lease_s - renew_every_s`` (``lease_s / 2`` without automatic renewal)."""


class RenewalRound:
    """One round in progress: its start, and the late renewals it sent."""

    def __init__(self, config: OwnershipConfig, leases: int) -> None:
        self.config = config
        self.leases = leases
        self.started = config.clock()
        self.transactions = 0
        self.late = 0
        self._late_after = config.lease_s / 2

    def note_sent(self, previous_renewal: float) -> None:
        """A renewal of a claim last renewed at ``previous_renewal`` is being sent now."""
        if self.config.clock() - previous_renewal > self._late_after:
            self.late += 1


class RenewalRecorder:
    """Keeps :class:`RenewalStats` across rounds and warns about a round that put leases at risk."""

    def __init__(self) -> None:
        self._stats = RenewalStats()

    def start(self, config: OwnershipConfig, leases: int) -> RenewalRound:
        return RenewalRound(config, leases)

    def finish(self, round_: RenewalRound) -> None:
        config = round_.config
        took = max(0.0, config.clock() - round_.started)
        period = config.renew_every_s
        slow_after = config.lease_s - period if period is not None else config.lease_s / 2
        slow = took > slow_after
        s = self._stats
        self._stats = RenewalStats(
            rounds=s.rounds + 1,
            last_round_s=took,
            longest_round_s=max(s.longest_round_s, took),
            last_round_leases=round_.leases,
            last_round_transactions=round_.transactions,
            late_renewals=s.late_renewals + round_.late,
            slow_rounds=s.slow_rounds + int(slow),
        )
        if slow or round_.late:
            _log.warning(
                "lease renewal round of %d leases took %.3f s (lease %.3f s, renewed every %s s): %d renewals were "
                "sent more than lease_s / 2 after the previous one; leases may expire in the store and be taken "
                "by another worker (this machine holds more sessions than it can renew in time, or its event "
                "loop or store is stalled)",
                round_.leases,
                took,
                config.lease_s,
                "-" if period is None else f"{period:g}",
                round_.late,
            )

    def stats(self) -> RenewalStats:
        return self._stats
