"""``EventBus``: numbers a machine's events and delivers them to its subscribers.

Contract:

* :meth:`EventBus.emit` is called by the commit seams only, after the transition committed
  (durably where it writes). Under the bus's lock it assigns the next ``seq`` of the event's
  runtime id and appends the event to one ordered queue of the machine, so queue order is
  numbering order, which is commit order for each runtime (session events are numbered under
  the session gate, operation events under the registry's commit lock).
* Delivery happens outside every lock of the runtime: :meth:`EventBus.deliver` hands the queued
  events, in queue order, to every subscriber in subscription order. One thread delivers at a
  time: a thread that finds a delivery in progress (another thread's, or its own when a
  subscriber emitted through the runtime) leaves its events queued, and the delivering thread
  delivers them after the events before them. So every subscriber sees each runtime's events
  in ``seq`` order, one call at a time, and a subscriber may call the runtime (the operation
  registry, the session API) without deadlock; what it causes is delivered after it returns.
  A slow subscriber delays delivery, never another thread's commit.
* ``emit(..., deliver=False)`` only numbers and queues: a seam holding a lock of its own (the
  registry's commit lock) calls :meth:`deliver` once it released it.
* A subscriber that raises does not stop the others and cannot undo the transition (it has
  committed): the error is logged on the ``meerkat_runtime.events`` logger and counted in
  :attr:`EventBus.delivery_errors`. Nothing a subscriber raises reaches the runtime, not even a
  ``BaseException`` (``SystemExit``, ``KeyboardInterrupt``, ``GeneratorExit``, ``CancelledError``):
  the emitting seam is inside a committed transition whose follow-up (waking the loop, starting
  the run, resolving waiters) must still happen; a subscriber that means to stop the process
  does so outside the call (``loop.call_soon_threadsafe``, its own task).
* Without subscribers :attr:`EventBus.active` is false and the seams build no event at all
  (the cost of events that nobody reads is one attribute check per transition).
* Thread-safe: operation registries emit from whatever thread calls them.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable

from meerkat_runtime.events.event import LifecycleEvent
from meerkat_runtime.events.stream import EventStream

Subscriber = Callable[[LifecycleEvent], None]
EventFactory = Callable[[int, float], LifecycleEvent]
"""Builds the event once its ``seq`` and ``time`` are known."""

_log = logging.getLogger("meerkat_runtime.events")


class Subscription:
    """A registered subscriber; :meth:`close` unsubscribes it (idempotent)."""

    def __init__(self, bus: EventBus, subscriber: Subscriber) -> None:
        self._bus = bus
        self.subscriber = subscriber
        self.closed = False
        """Set by :meth:`close`: events still queued are not delivered to it."""

    def close(self) -> None:
        self.closed = True
        self._bus._unsubscribe(self)


class EventBus:
    """The event bus of one ``MeerkatMachine`` (``machine.events``)."""

    def __init__(self, owner: str | None = None, store: str = "") -> None:
        self.source = f"{owner or 'machine'}-{uuid.uuid4().hex[:8]}"
        """The ``source`` of every event: the machine's owner id (or ``machine``) and a random
        suffix minted with the bus, so a restarted worker with a stable owner id is a new source."""
        self.store = store
        """The ``store`` of every event (the machine's durable authority)."""
        self._lock = threading.RLock()
        self._subscriptions: tuple[Subscription, ...] = ()
        self._queue: deque[_Queued] = deque()
        self._delivering = False
        self._numbering = False
        self._seqs: dict[str, int] = {}
        # One counter per runtime id this machine ever numbered, kept after the session
        # unregisters: a session that comes back continues its numbering in the same log file
        # (``seq`` is never reused within a machine; check-trace rejects a reused number).
        self.delivery_errors = 0
        """How many times a subscriber raised."""
        self.active = False
        """Whether anyone subscribes (the seams skip building events otherwise)."""

    def subscribe(self, subscriber: Subscriber) -> Subscription:
        """Call ``subscriber(event)`` for every later event (see the module docstring)."""
        subscription = Subscription(self, subscriber)
        with self._lock:
            self._subscriptions = (*self._subscriptions, subscription)
            self.active = True
        return subscription

    def stream(self, maxsize: int = 10_000) -> EventStream:
        """An async iterator over every later event (:class:`EventStream`); close it (or leave
        its ``async with``) to unsubscribe. Create it on the event loop that will read it."""
        stream = EventStream(maxsize)
        stream.attach(self.subscribe(stream.push))
        return stream

    def _unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions = tuple(s for s in self._subscriptions if s is not subscription)
            self.active = bool(self._subscriptions)

    def last_seq(self, runtime_id: str) -> int:
        """The ``seq`` of the last event of ``runtime_id`` (0 before the first)."""
        with self._lock:
            return self._seqs.get(runtime_id, 0)

    def emit(self, runtime_id: str, make: EventFactory, *, deliver: bool = True) -> LifecycleEvent | None:
        """Number and queue one event of ``runtime_id``, then (``deliver``) :meth:`deliver`;
        ``None`` when nobody subscribes. The event goes to the subscribers subscribed now."""
        if not self.active:
            return None
        with self._lock:
            # The slot is queued before the event is built: an event emitted while ``make``
            # runs (a garbage-collected watch, released by its finaliser) is numbered after it
            # and queued after it.
            slot = _Queued(self._subscriptions)
            self._queue.append(slot)
            seq = self._seqs.get(runtime_id, 0) + 1
            self._seqs[runtime_id] = seq
            numbering, self._numbering = self._numbering, True
            try:
                event = make(seq, time.time())
            except BaseException:
                self._queue.remove(slot)
                raise
            finally:
                self._numbering = numbering
            slot.event = event
        if deliver:
            self.deliver()
        return event

    def deliver(self) -> None:
        """Deliver the queued events, in order, unless a delivery is in progress (that one
        delivers them). Called with no lock of the runtime held."""
        if not self._queue:  # an event queued after this check is delivered by its emitter's call
            return
        with self._lock:
            if self._delivering or self._numbering:
                return
            self._delivering = True
        try:
            while True:
                with self._lock:
                    if not self._queue:
                        self._delivering = False
                        return
                    queued = self._queue.popleft()
                event = queued.event
                assert event is not None
                for subscription in queued.subscriptions:
                    if subscription.closed:
                        continue
                    try:
                        subscription.subscriber(event)
                    except BaseException:  # even SystemExit and the like: the transition has committed
                        with self._lock:
                            self.delivery_errors += 1
                        _log.exception(
                            "event subscriber %r failed on %s #%d", subscription.subscriber, event.rule, event.seq
                        )
        except BaseException:
            with self._lock:
                self._delivering = False
            raise


class _Queued:
    """A numbered event waiting for delivery, with the subscribers it goes to."""

    __slots__ = ("event", "subscriptions")

    def __init__(self, subscriptions: tuple[Subscription, ...]) -> None:
        self.subscriptions = subscriptions
        self.event: LifecycleEvent | None = None
