"""``OpsLease``: the lease an ``open_durable_ops`` registry holds on its runtime id.

Two processes writing one runtime's ops state without a lease interleave their snapshots and
journal records (each with its own epoch or its own sequence numbers): every write is
acknowledged, and the store then holds a state no reader accepts. ``open_durable_ops`` therefore
claims the runtime's lease in the store before it reads anything (``LeaseHeld`` when another
owner holds it), hands the lease's fence to every write (the store refuses a stale one in the
write's own transaction, ``OwnershipLost``) and releases it on ``close``: the same rules as a
``MeerkatMachine`` session's claim (docs/ownership.md).

Renewal: a renewal is sent before a write once ``renew_every_s`` passed since the last one, and
(unless ``renew_every_s`` is ``None``) a daemon thread renews every held lease every
``renew_every_s``. It holds the leases weakly: a dropped, unclosed ``DurableOps`` stops being
renewed and its lease simply expires. A renewal the store refuses (another owner claimed the
expired lease), a write refused for its fence or a failed ``confirm_owner`` loses the lease:
every later write is refused before it reaches the store, and the ``on_lost`` listeners run
(``open_durable_ops`` closes its registry: waiters raise ``OwnershipLost``).

One renewal thread per store (a renewal stuck in one store delays no other store's leases);
a forked child starts with none (the parent's leases are the parent's to renew).
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable

from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.store.lease import Fence, Lease
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.vocab.errors import LeaseHeld, LockWaitTimedOut, OwnershipLost
from meerkat_runtime.vocab.ids import uuid7

_PROCESS_OWNER: tuple[int, str] | None = None
_PROCESS_OWNER_LOCK = threading.Lock()


def process_owner_id() -> str:
    """``"<hostname>:<pid>:<uuid7>"``, minted once per process (again after a fork): the owner
    id ``open_durable_ops`` claims under when its ``OwnershipConfig`` names none. Another process
    is another owner (``LeaseHeld`` while the lease is live); a second open in the same process
    takes the lease over (a new token: the first handle's writes are then refused)."""
    global _PROCESS_OWNER
    pid = os.getpid()
    with _PROCESS_OWNER_LOCK:
        if _PROCESS_OWNER is None or _PROCESS_OWNER[0] != pid:
            _PROCESS_OWNER = (pid, f"{socket.gethostname()}:{pid}:{uuid7()}")
        return _PROCESS_OWNER[1]


class OpsLease:
    """The lease of one runtime id, claimed by :meth:`claim`. A ``FenceHolder`` for
    ``StoreOpsPersistence``: ``check`` raises once lost, ``lose`` records a refusal."""

    def __init__(self, store: RuntimeStore, runtime_id: str, config: OwnershipConfig, owner: str) -> None:
        self.store = store
        self.runtime_id = runtime_id
        self.config = config
        self.owner = owner
        self.lease: Lease | None = None
        """The lease as the store last returned it."""
        self.renewed_at = 0.0
        """``config.clock`` time at which the last successful claim or renewal was sent."""
        self.lost: OwnershipLost | None = None
        self.released = False
        self.renew_error: Exception | None = None
        """The last renewal failure other than a lost lease (retried at the next renewal)."""
        self._lock = threading.Lock()
        self._on_lost: list[Callable[[OwnershipLost], None]] = []

    def on_lost(self, listener: Callable[[OwnershipLost], None]) -> None:
        """Call ``listener(error)`` once the lease is lost (at once if it already is), on the
        thread that found the loss (the renewal thread, or a writer still inside its write: a
        listener must not wait for that write); a listener's exception is swallowed."""
        with self._lock:
            lost = self.lost
            if lost is None:
                self._on_lost.append(listener)
                return
        with contextlib.suppress(Exception):
            listener(lost)

    def _notify_lost(self, error: OwnershipLost) -> None:
        """Tell the listeners (called once, by whoever recorded the loss, no lock held)."""
        with self._lock:
            listeners, self._on_lost = self._on_lost, []
        for listener in listeners:
            with contextlib.suppress(Exception):
                listener(error)

    @classmethod
    def claim(cls, store: RuntimeStore, runtime_id: str, config: OwnershipConfig) -> OpsLease:
        """Claim the lease of ``runtime_id`` (waiting for a held one as ``config`` says):
        ``LeaseHeld`` when another owner holds it; store errors propagate. Starts the renewal
        thread unless ``config.renew_every_s`` is ``None``."""
        held = cls(store, runtime_id, config, config.owner_id or process_owner_id())
        clock = config.clock
        deadline = clock() + config.wait_limit_s
        while True:
            sent = clock()
            try:
                held.lease = store.claim_lease(runtime_id, held.owner, config.lease_s)
                break
            except (LeaseHeld, LockWaitTimedOut):
                remaining = deadline - clock()
                if remaining <= 0:
                    raise
            time.sleep(min(config.poll_s, remaining) if math.isfinite(remaining) else config.poll_s)
        held.renewed_at = sent
        if config.renew_every_s is not None:
            _start_renewer(held, config.renew_every_s)
        return held

    @property
    def fence(self) -> Fence | None:
        return None if self.lease is None else self.lease.fence

    @property
    def owned(self) -> bool:
        """Claimed, and neither lost nor released."""
        return self.lease is not None and self.lost is None and not self.released

    def check(self) -> None:
        """Raise ``OwnershipLost`` if the lease is lost (or released); renew first if a
        renewal is due, so a write goes out on a lease renewed within ``renew_every_s``."""
        lost = self.lost
        if lost is not None:
            raise OwnershipLost(lost.runtime_id, lost.detail) from lost
        if self.released:
            raise OwnershipLost(self.runtime_id, "the ops registry's lease was released (DurableOps.close)")
        period = self.config.renew_every_s
        if period is not None and self.config.clock() - self.renewed_at >= period:
            self.renew()
            if self.lost is not None:
                self.check()

    def lose(self, error: OwnershipLost) -> None:
        """Record that the store refused the fence (first call wins); renewals stop and the
        ``on_lost`` listeners are called."""
        with self._lock:
            if self.lost is not None:
                return
            self.lost = error
        self._notify_lost(error)

    def renew(self) -> None:
        """Renew the lease once. ``OwnershipLost`` loses it (as :meth:`lose`); any other store
        error is kept in ``renew_error`` (the next renewal retries; the lease may still be this
        owner's)."""
        with self._lock:
            lease = self.lease
            if lease is None or self.lost is not None or self.released:
                return
            sent = self.config.clock()
            try:
                renewed = self.store.renew_lease(lease.fence, self.runtime_id, self.config.lease_s)
            except OwnershipLost as refused:
                self.lost = lost = refused
            except Exception as exc:  # a store failure: retried at the next renewal
                self.renew_error = exc
                return
            else:
                self.lease, self.renewed_at, self.renew_error = renewed, sent, None
                return
        self._notify_lost(lost)

    def release(self) -> None:
        """Stop renewing and, if the lease is still held, expire it in the store now (another
        owner can claim it at once). A failed release is kept in ``renew_error``: the lease
        then simply expires. Idempotent."""
        with self._lock:
            if self.released:
                return
            self.released = True
            lease = self.lease
            if lease is None or self.lost is not None:
                return
            try:
                self.store.release_lease(lease.fence, self.runtime_id)
            except Exception as exc:
                self.renew_error = exc


class _Renewer:
    """One daemon thread per store renewing every held ``OpsLease`` of that store (held weakly)
    on its period, in real (monotonic) time; it ends when no lease is left to renew. Per store: a
    renewal stuck in one store (a busy timeout behind a frozen writer, a hung connection) delays
    no other store's leases."""

    def __init__(self) -> None:
        self._leases: weakref.WeakKeyDictionary[OpsLease, float] = weakref.WeakKeyDictionary()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._added = 0

    def add(self, held: OpsLease, period: float) -> None:
        with self._cond:
            self._leases[held] = time.monotonic() + period
            self._added += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="meerkat-ops-leases", daemon=True)
                self._thread.start()
            self._cond.notify()

    def held(self) -> list[OpsLease]:
        """The leases this renewer still renews (strong references: for inspection only)."""
        with self._cond:
            return list(self._leases)

    def _schedule(self, now: float) -> list[OpsLease] | float | None:
        """Under the condition: forget leases no longer owned, reschedule the due ones and return
        them; else the seconds until the next one is due; ``None`` when none is left. Its
        locals die on return, so nothing here keeps a dropped lease alive while the thread waits."""
        live: list[tuple[OpsLease, float]] = []
        for held, at in list(self._leases.items()):  # strong references while scheduling only
            if held.owned:
                live.append((held, at))
            else:
                del self._leases[held]
        if not live:
            return None
        due = [held for held, at in live if at <= now]
        if not due:
            return min(at for _, at in live) - now
        for held in due:
            period = held.config.renew_every_s
            self._leases[held] = now + (period if period is not None else held.config.lease_s)
        return due

    def tick(self, now: float) -> float | None:
        """Renew every lease due at monotonic ``now``; returns the seconds until the next one is
        due (0 right after renewals), or ``None`` when no lease is left (the thread then ends)."""
        with self._cond:
            due = self._schedule(now)
            if due is None:
                self._thread = None
                return None
            if isinstance(due, float):
                return due
        for held in due:
            with contextlib.suppress(Exception):  # renew keeps its own errors
                held.renew()
        return 0.0  # the locals die here: the thread waits holding no lease

    def _run(self) -> None:
        while True:
            with self._cond:
                added = self._added
            wait = self.tick(time.monotonic())
            if wait is None:
                return
            if wait > 0:
                with self._cond:
                    if self._added == added:  # nothing added since the schedule was made
                        self._cond.wait(wait)


_RENEWERS_LOCK = threading.Lock()
_RENEWERS: weakref.WeakValueDictionary[int, _Renewer] = weakref.WeakValueDictionary()
"""The renewer of each store (by ``id``); a renewer lives while its thread runs."""


def renewer_for(store: RuntimeStore) -> _Renewer:
    """The renewer of ``store``'s leases (created on first use)."""
    with _RENEWERS_LOCK:
        renewer = _RENEWERS.get(id(store))
        if renewer is None:
            renewer = _Renewer()
            _RENEWERS[id(store)] = renewer
        return renewer


def _start_renewer(held: OpsLease, period: float) -> None:
    renewer_for(held.store).add(held, period)


def _after_fork_in_child() -> None:
    """A forked child starts with no renewer and fresh locks: the parent's renewer threads do
    not exist in it (and one may have held a lock at the fork); the parent's leases are the
    parent's to renew."""
    global _RENEWERS_LOCK, _RENEWERS, _PROCESS_OWNER_LOCK
    _RENEWERS_LOCK = threading.Lock()
    _RENEWERS = weakref.WeakValueDictionary()
    _PROCESS_OWNER_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
