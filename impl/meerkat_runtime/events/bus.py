"""``EventBus``: numbers a machine's events and delivers them to its subscribers.

Contract:

* :meth:`EventBus.emit` is called by the commit seams only, after the transition committed
  (durably where it writes); it assigns the next ``seq`` of the event's runtime id and hands
  the event to every subscriber in subscription order, in the emitting thread. Numbering and
  delivery happen under one lock, so every subscriber sees each runtime's events in ``seq``
  order, which is commit order (session events are emitted under the session gate, operation
  events under the registry's commit lock).
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

    def close(self) -> None:
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

    def emit(self, runtime_id: str, make: EventFactory) -> LifecycleEvent | None:
        """Number and deliver one event of ``runtime_id``; ``None`` when nobody subscribes."""
        if not self.active:
            return None
        with self._lock:
            seq = self._seqs.get(runtime_id, 0) + 1
            self._seqs[runtime_id] = seq
            event = make(seq, time.time())
            for subscription in self._subscriptions:
                try:
                    subscription.subscriber(event)
                except BaseException:  # even SystemExit and the like: the transition has committed
                    self.delivery_errors += 1
                    _log.exception(
                        "event subscriber %r failed on %s #%d", subscription.subscriber, event.rule, event.seq
                    )
        return event
