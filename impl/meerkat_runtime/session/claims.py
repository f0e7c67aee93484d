"""``SessionClaimRegistry``: the one live claim per canonical runtime id of a ``MeerkatMachine``.

A :class:`SessionClaim` is this machine's hold on one runtime id. With ownership on it carries
the lease's :class:`~meerkat_runtime.store.lease.Fence`, which every durable write of the
session hands to the store; with ownership off (or for an ephemeral machine) its fence is
``None`` and it only serialises registration in this process.

Lifecycle of a claim: :meth:`SessionClaimRegistry.acquire` claims the lease in the store
(waiting for a held one if configured) before anything of the session is read; renewals keep it
(in the background, a round starting every ``renew_every_s`` after the previous round started,
and before a run starts when a renewal is overdue);
:meth:`SessionClaimRegistry.release` expires it in the store when the session is unregistered.
A claim is **lost** when the store refuses its fence (``OwnershipLost`` from a renewal or from
any write): :meth:`SessionClaim.lose` records the error at once — every later write of the
session is refused before it reaches the store — and then tells the listeners (the machine
detaches the session) on the event loop. ``lose`` may be called from any thread (the operation
registry writes from its callers' threads).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from meerkat_runtime.session.ownership import OwnershipConfig, default_owner_id
from meerkat_runtime.session.renewal_rounds import RENEWAL_CHUNK, RenewalRecorder, RenewalStats
from meerkat_runtime.store.lease import Fence, Lease, RenewalOutcome
from meerkat_runtime.store.protocol import RuntimeStore, batched_renewal
from meerkat_runtime.vocab.errors import LeaseHeld, LockWaitTimedOut, OwnershipLost, StoreError, WriteFailed
from meerkat_runtime.vocab.ids import LogicalRuntimeId

T = TypeVar("T")

LostListener = Callable[[OwnershipLost], None]


WAIT_JITTER = 0.1
"""A waiting registration's pause is stretched by up to this fraction at random, so standbys
that saw the same expiry do not all claim at once."""

WAIT_PAUSE_CAP_S = 1.0
"""The longest a waiting registration sleeps between claims of a held lease (unless
``lease_s / 4`` is shorter): a lease its holder releases is noticed within about that long."""


def wait_pause(config: OwnershipConfig, refusal: LeaseHeld | LockWaitTimedOut, jitter: float) -> float:
    """How long a registration waiting for a lease sleeps after ``refusal`` (``jitter`` in
    ``[0, 1)``). With ``wait_poll_s`` given: that period. Otherwise, for a held lease whose
    remaining time the store gave, until about its expiry, but at least ``poll_s`` and at most
    ``min(lease_s / 4, WAIT_PAUSE_CAP_S)`` (a released lease is noticed within that bound); else
    ``poll_s``."""
    pause = config.poll_s
    if config.wait_poll_s is None and isinstance(refusal, LeaseHeld) and refusal.remaining_s is not None:
        bound = max(config.poll_s, min(config.lease_s / 4, WAIT_PAUSE_CAP_S))
        pause = min(max(refusal.remaining_s, config.poll_s), bound)
    return pause * (1 + WAIT_JITTER * jitter)


class SessionClaim:
    """This machine's claim on one runtime id (see the module docstring)."""

    def __init__(
        self,
        registry: SessionClaimRegistry,
        runtime_id: LogicalRuntimeId,
        lease: Lease | None,
        claimed_at: float,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.runtime_id = runtime_id
        self.lease = lease
        """The lease as the store last returned it (``None`` without ownership)."""
        self.fence: Fence | None = None if lease is None else lease.fence
        self.renewed_at = claimed_at
        """Machine-clock time at which the last successful claim or renewal was sent."""
        self.lost: OwnershipLost | None = None
        self.released = False
        self.renew_error: Exception | None = None
        """The last renewal failure other than a lost lease (retried at the next period)."""
        self._registry = registry
        self._loop = loop
        self._lock = threading.Lock()
        self._listeners: list[LostListener] = []
        self.renew_lock = asyncio.Lock()

    @property
    def owned(self) -> bool:
        """Held with a lease (ownership on) and neither lost nor released."""
        return self.fence is not None and self.lost is None and not self.released

    def check(self) -> None:
        """Raise ``OwnershipLost`` (caused by the refusal that ended this claim) if it is lost."""
        lost = self.lost
        if lost is not None:
            raise OwnershipLost(lost.runtime_id, lost.detail) from lost

    def on_lost(self, listener: LostListener) -> None:
        """Call ``listener(error)`` on the event loop once the claim is lost."""
        with self._lock:
            self._listeners.append(listener)

    def lose(self, error: OwnershipLost) -> None:
        """Record that the store refused this claim's fence (first call wins) and notify the
        listeners on the event loop. Thread-safe; never blocks."""
        with self._lock:
            if self.lost is not None:
                return
            self.lost = error
            listeners = list(self._listeners)
        for listener in listeners:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody left to tell
                self._loop.call_soon_threadsafe(listener, error)

    async def ensure_fresh(self) -> None:
        """Renew now if a renewal is overdue (e.g. after the process stalled), so a run never
        starts on a lease this machine cannot vouch for. No-op without automatic renewal."""
        if self._registry.renewal_due(self):
            await self._registry.renew(self)


class SessionClaimRegistry:
    """One live :class:`SessionClaim` per canonical runtime id, and the machine's renewals.

    ``config`` is ``None`` when ownership is off (or the machine is ephemeral): claims then
    carry no fence and touch no store.
    """

    def __init__(self, store: RuntimeStore | None, config: OwnershipConfig | None, *, offload: bool) -> None:
        self._store = store if config is not None else None
        self.config = config if store is not None else None
        self.owner_id: str | None = None
        if self.config is not None:
            self.owner_id = self.config.owner_id or default_owner_id()
        self._offload = offload
        self._claims: dict[LogicalRuntimeId, SessionClaim] = {}
        self._locks: dict[LogicalRuntimeId, asyncio.Lock] = {}
        self._renewer: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        """Set by :meth:`stop_waiting`: a registration waiting for another owner's lease gives up."""
        self._jitter = random.Random()
        self._round_lock = asyncio.Lock()
        """Held by a renewal round: rounds run one at a time (a round holds many claims' locks)."""
        self._rounds = RenewalRecorder()
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        """The background renewal's pause between rounds (a test replaces it)."""

    # --- lookup ---------------------------------------------------------------------------

    def get(self, runtime_id: str) -> SessionClaim | None:
        """The live (or lost but not yet forgotten) claim of ``runtime_id``."""
        return self._claims.get(LogicalRuntimeId(runtime_id))

    def claims(self) -> list[SessionClaim]:
        return list(self._claims.values())

    def lock(self, runtime_id: LogicalRuntimeId) -> asyncio.Lock:
        """The lock that serialises registering ``runtime_id`` in this machine."""
        return self._locks.setdefault(runtime_id, asyncio.Lock())

    def unlock_idle(self, runtime_id: LogicalRuntimeId, lock: asyncio.Lock) -> None:
        if not lock.locked() and self._locks.get(runtime_id) is lock:
            del self._locks[runtime_id]

    async def settle_registrations(self) -> None:
        """Wait until no registration holds a lock (each finishes, or gives up, first): the
        machine is closing. Waiting registrations stop waiting for another owner's lease."""
        self._closing.set()
        while busy := [lock for lock in self._locks.values() if lock.locked()]:
            for lock in busy:
                async with lock:
                    pass

    # --- claim and release ----------------------------------------------------------------

    async def acquire(self, runtime_id: LogicalRuntimeId) -> SessionClaim:
        """Claim ``runtime_id`` (call with :meth:`lock` held). With ownership on this claims the
        lease in the store first: ``LeaseHeld`` when another owner holds it (after waiting, if
        configured); store errors propagate. A lost claim is replaced."""
        existing = self._claims.get(runtime_id)
        if existing is not None and existing.lost is None:
            return existing
        loop = asyncio.get_running_loop()
        config, store = self.config, self._store
        if config is None or store is None:
            claim = SessionClaim(self, runtime_id, None, 0.0, loop)
        else:
            owner = self.owner_id
            assert owner is not None
            sent, lease = await self._claim_lease(store, config, runtime_id, owner)
            claim = SessionClaim(self, runtime_id, lease, sent, loop)
            self._start_renewer(config)
        self._claims[runtime_id] = claim
        return claim

    async def _claim_lease(
        self, store: RuntimeStore, config: OwnershipConfig, runtime_id: LogicalRuntimeId, owner: str
    ) -> tuple[float, Lease]:
        clock = config.clock
        deadline = clock() + config.wait_limit_s
        while True:
            sent = clock()
            try:
                return sent, await self._call(lambda: store.claim_lease(runtime_id, owner, config.lease_s))
            except (LeaseHeld, LockWaitTimedOut) as exc:  # held, or its holder's transaction still runs
                remaining = deadline - clock()
                if remaining <= 0 or self._closing.is_set():
                    raise
                pause = wait_pause(config, exc, self._jitter.random())
            pause = min(pause, remaining) if math.isfinite(remaining) else pause
            with contextlib.suppress(TimeoutError):  # a closing machine wakes the wait at once
                await asyncio.wait_for(self._closing.wait(), pause)

    async def release(self, claim: SessionClaim) -> None:
        """Forget ``claim`` and, if it still holds the lease, expire the lease in the store now,
        after any renewal of it in flight has ended. A failed release is kept in
        ``claim.renew_error``: the lease then simply expires."""
        self.forget(claim)
        if claim.released:
            return
        claim.released = True
        store, fence = self._store, claim.fence
        if store is None or fence is None or claim.lost is not None:
            return
        # A renewal of this claim in flight (alone, or in a round's batch) holds the lock: it
        # would renew the lease again after the release (a release keeps owner and token, so the
        # store cannot tell it from an expired lease nobody took). Released after it, the lease
        # stays released; later renewals skip a released claim.
        async with claim.renew_lock:
            try:
                await self._call(lambda: store.release_lease(fence, claim.runtime_id))
            except StoreError as exc:
                claim.renew_error = exc

    def forget(self, claim: SessionClaim) -> None:
        """Drop ``claim`` from the registry without touching the store (a crash does this)."""
        if self._claims.get(claim.runtime_id) is claim:
            del self._claims[claim.runtime_id]

    # --- renewal --------------------------------------------------------------------------

    def renewal_due(self, claim: SessionClaim) -> bool:
        """Whether an automatic renewal of ``claim`` is overdue (one and a half periods passed)."""
        config = self.config
        if config is None or config.renew_every_s is None or not claim.owned:
            return False
        return config.clock() - claim.renewed_at >= 1.5 * config.renew_every_s

    async def renew(self, claim: SessionClaim) -> None:
        """Renew ``claim``'s lease once. ``OwnershipLost`` loses the claim; any other store error
        is kept in ``claim.renew_error`` (the next period retries)."""
        store, config = self._store, self.config
        if store is None or config is None:
            return
        async with claim.renew_lock:
            fence = claim.fence
            if fence is None or not claim.owned:
                return
            sent = config.clock()
            try:
                outcome: RenewalOutcome | Exception = await self._call(
                    lambda: store.renew_lease(fence, claim.runtime_id, config.lease_s)
                )
            except Exception as exc:
                outcome = exc
            _settle(claim, outcome, sent)

    async def renew_all(self) -> list[SessionClaim]:
        """Renew every live claim now, the one closest to expiry (renewed longest ago) first;
        returns the claims found lost. A store with ``renew_leases`` renews up to
        ``RENEWAL_CHUNK`` leases per transaction, yielding to the event loop between chunks;
        another store one lease per call. A round that put a lease's margin at risk is logged
        (see :meth:`renewal_stats`)."""
        config = self.config
        if self._store is None or config is None:
            return [claim for claim in self.claims() if claim.lost is not None]
        async with self._round_lock:
            due = sorted((claim for claim in self.claims() if claim.owned), key=lambda claim: claim.renewed_at)
            round_ = self._rounds.start(config, len(due))
            batch = batched_renewal(self._store)
            if batch is None:
                for index, claim in enumerate(due):
                    if index and index % RENEWAL_CHUNK == 0:
                        await asyncio.sleep(0)  # store calls made inline never yield by themselves
                    round_.note_sent(claim.renewed_at)
                    round_.transactions += 1
                    await self.renew(claim)
            else:
                for first in range(0, len(due), RENEWAL_CHUNK):
                    if first:
                        await asyncio.sleep(0)  # let accepts and other writes in between chunks
                    await self._renew_chunk(batch, config, due[first : first + RENEWAL_CHUNK], round_.note_sent)
                    round_.transactions += 1
            self._rounds.finish(round_)
        return [claim for claim in self.claims() if claim.lost is not None]

    async def _renew_chunk(
        self,
        batch: Callable[[Sequence[tuple[Fence, str]], float], list[RenewalOutcome]],
        config: OwnershipConfig,
        chunk: list[SessionClaim],
        note_sent: Callable[[float], None],
    ) -> None:
        """Renew ``chunk`` in one ``renew_leases`` call, each outcome handled as :meth:`renew`
        handles its own (with every claim's renewal lock held)."""
        async with contextlib.AsyncExitStack() as held:
            for claim in chunk:
                await held.enter_async_context(claim.renew_lock)
            live = [(claim, claim.fence) for claim in chunk if claim.owned and claim.fence is not None]
            pairs: list[tuple[Fence, str]] = [(fence, str(claim.runtime_id)) for claim, fence in live if fence]
            if not pairs:
                return
            for claim, _ in live:
                note_sent(claim.renewed_at)
            sent = config.clock()
            try:
                outcomes = await self._call(lambda: batch(pairs, config.lease_s))
            except Exception as exc:  # a store failure: the leases may still be ours; retry next period
                for claim, _ in live:
                    claim.renew_error = exc
                return
            if not isinstance(outcomes, list) or len(outcomes) != len(live):
                refused = WriteFailed(
                    str(live[0][0].runtime_id),
                    f"renew_leases returned {len(outcomes) if isinstance(outcomes, list) else repr(outcomes)} "
                    f"outcomes for {len(live)} leases",
                )
                for claim, _ in live:
                    claim.renew_error = refused
                return
            for (claim, _), outcome in zip(live, outcomes, strict=True):
                _settle(claim, outcome, sent)

    def renewal_stats(self) -> RenewalStats:
        """Counts and times of this machine's renewal rounds (see :class:`RenewalStats`)."""
        return self._rounds.stats()

    @property
    def renewing(self) -> bool:
        """Whether the background renewal runs (from the first claim until the machine closes)."""
        return self._renewer is not None and not self._renewer.done()

    def _start_renewer(self, config: OwnershipConfig) -> None:
        if config.renew_every_s is None or (self._renewer is not None and not self._renewer.done()):
            return
        self._renewer = asyncio.get_running_loop().create_task(self._renew_forever(config.renew_every_s))

    async def _renew_forever(self, period: float) -> None:
        """Start a round every ``period`` after the previous round started (at once when a round
        took longer than ``period``), so the time a round takes does not add to the gap."""
        assert self.config is not None
        clock = self.config.clock
        next_start = clock() + period
        while True:
            await self.sleep(max(0.0, next_start - clock()))
            started = clock()
            await self.renew_all()
            next_start = started + period

    async def stop(self) -> None:
        """Stop the background renewal (the machine is closing or halting)."""
        task, self._renewer = self._renewer, None
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
            await asyncio.wait({task})

    async def _call(self, fn: Callable[[], T]) -> T:
        if self._offload:
            return await asyncio.to_thread(fn)
        return fn()


def _settle(claim: SessionClaim, outcome: object, sent: float) -> None:
    """Record one renewal of ``claim`` sent at ``sent``: a renewed ``Lease`` is kept;
    ``OwnershipLost`` loses the claim; any other error (or an answer that is neither) is kept in
    ``claim.renew_error``: the lease may still be ours, the next period retries."""
    if isinstance(outcome, Lease):
        claim.lease, claim.renewed_at, claim.renew_error = outcome, sent, None
    elif isinstance(outcome, OwnershipLost):
        claim.lose(outcome)
    elif isinstance(outcome, Exception):
        claim.renew_error = outcome
    else:
        claim.renew_error = WriteFailed(str(claim.runtime_id), f"the store's renewal returned {outcome!r}")
