"""``OwnershipConfig``: how a persistent ``MeerkatMachine`` owns its sessions in a shared store.

With ownership on (the default for persistent machines) a machine registers a session only
after it has claimed the session's lease in the store (``claim_lease``), carries the lease's
fence on every durable write of the session (the store refuses a stale one in the write's own
transaction), renews its leases in the background, and releases a lease when the session is
unregistered or the machine closed. ``MeerkatMachine.persistent(store, ownership=None)`` turns
it off (one worker per store only).
"""

from __future__ import annotations

import math
import os
import socket
import time
from dataclasses import dataclass

from meerkat_runtime.store.clock import Clock
from meerkat_runtime.vocab.errors import InvalidSetting
from meerkat_runtime.vocab.ids import uuid7
from meerkat_runtime.vocab.settings import MAX_SECONDS, bounded_seconds


def default_owner_id() -> str:
    """``"<hostname>:<pid>:<uuid7>"``: unique for every machine instance."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid7()}"


MIN_LEASE_S = 0.1
"""The shortest ``lease_s``: a lease must outlast the store writes that claim and renew it
(milliseconds each, more under load), or it has expired by the time its write lands and any
standby may take the session at any moment; and its derived periods (``lease_s / 3``,
``lease_s / 20``) must stay well above zero."""

MIN_PERIOD_S = 0.001
"""The shortest ``renew_every_s`` or ``wait_poll_s`` given explicitly: shorter, a machine would
write renewals or claims to the store without pause."""


def _positive(name: str, value: object, minimum: float = MIN_PERIOD_S) -> float:
    """A duration setting: seconds in ``[minimum, MAX_SECONDS]`` (one year), else ``InvalidSetting``."""
    seconds = bounded_seconds(name, value, MAX_SECONDS)
    if seconds < minimum:
        raise InvalidSetting(f"{name} must be at least {minimum:g} s, got {value!r}")
    return seconds


RENEWALS_PER_LEASE = 3
"""Renewals per lease length when ``renew_every_s`` is not given: a lease survives two missed
renewals."""


class _Derived(float):
    """A renewal period derived from ``lease_s`` (not given): ``dataclasses.replace`` with another
    ``lease_s`` derives it again instead of keeping the old lease's third."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class OwnershipConfig:
    """Ownership settings of one machine.

    * ``owner_id``: the name this machine claims leases under; ``None`` mints
      :func:`default_owner_id` per machine. A stable name (e.g. the worker's host name) lets a
      restarted worker take its sessions back at once: a claim by the lease's own owner always
      succeeds (with a new token), so the previous incarnation's writes are refused.
    * ``lease_s``: how long a claim or renewal holds the lease (store clock); at least
      ``MIN_LEASE_S`` (0.1 s).
    * ``renew_every_s``: period of the background renewal; not given, ``lease_s / 3`` (5 s of
      the default 15 s lease); given, it must be shorter than ``lease_s`` and at least
      ``MIN_PERIOD_S`` (1 ms; so must ``wait_poll_s``; else ``InvalidSetting``). ``None``
      turns automatic renewal off — no background task and no renewal before a run — for
      harnesses that renew explicitly with ``MeerkatMachine.renew_leases_now()``.
    * ``wait_for_lease``: when another owner holds the lease, ``False`` raises ``LeaseHeld`` at
      once; ``True`` waits until the lease can be claimed; a number waits at most that many
      seconds (then ``LeaseHeld``). A claim that timed out waiting for the session's lock in
      the store (``LockWaitTimedOut``: the holder's transaction is still running) is waited
      out the same way.
    * ``wait_poll_s``: how often a waiting registration retries its claim. Not given, it
      sleeps until about the held lease's expiry as the store reported it, at least
      ``min(lease_s / 20, 0.25)`` and at most ``min(lease_s / 4, 1)``, stretched by up to 10 % at
      random (see ``claims.wait_pause``).
    * ``clock``: the machine's clock for its renewal schedule and waiting (default
      ``time.monotonic``). Lease expiry itself is decided by the store, in the store's clock.
    """

    owner_id: str | None = None
    lease_s: float = 15.0
    renew_every_s: float | None = _Derived(15.0 / RENEWALS_PER_LEASE)
    wait_for_lease: bool | float = False
    wait_poll_s: float | None = None
    clock: Clock = time.monotonic

    def __post_init__(self) -> None:
        if self.owner_id is not None and (not isinstance(self.owner_id, str) or not self.owner_id):
            raise InvalidSetting(f"owner_id must be a non-empty string or None, got {self.owner_id!r}")
        lease = _positive("lease_s", self.lease_s, MIN_LEASE_S)
        renew = self.renew_every_s
        if isinstance(renew, _Derived):
            object.__setattr__(self, "renew_every_s", _Derived(lease / RENEWALS_PER_LEASE))
        elif renew is not None and _positive("renew_every_s", renew) >= lease:
            raise InvalidSetting(
                f"renew_every_s ({renew!r}) must be shorter than lease_s ({self.lease_s!r}); "
                f"leave it out to renew every lease_s / {RENEWALS_PER_LEASE}"
            )
        wait = self.wait_for_lease
        if not isinstance(wait, bool) and (
            not isinstance(wait, int | float) or math.isnan(wait) or wait < 0  # inf waits forever
        ):
            raise InvalidSetting(f"wait_for_lease must be a bool or a number of seconds >= 0, got {wait!r}")
        if self.wait_poll_s is not None:
            _positive("wait_poll_s", self.wait_poll_s)
        if not callable(self.clock):
            raise InvalidSetting("clock must be a callable returning seconds")

    @property
    def wait_limit_s(self) -> float:
        """How long a registration waits for a held lease (0: not at all; ``inf``: forever)."""
        if isinstance(self.wait_for_lease, bool):
            return math.inf if self.wait_for_lease else 0.0
        return float(self.wait_for_lease)

    @property
    def poll_s(self) -> float:
        return self.wait_poll_s if self.wait_poll_s is not None else min(self.lease_s / 20, 0.25)
