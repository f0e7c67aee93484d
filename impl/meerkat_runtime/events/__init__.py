"""Lifecycle events: one typed event per committed transition, published after its commit.

:class:`~meerkat_runtime.events.event.LifecycleEvent` is the event; a machine's
:class:`~meerkat_runtime.events.bus.EventBus` numbers and delivers them. Subscribers: any
callable (:meth:`EventBus.subscribe`), an async iterator (:meth:`EventBus.stream`), the
``logging`` module (:class:`~meerkat_runtime.events.logging_sink.LoggingSubscriber`), a JSON
Lines event log (:class:`~meerkat_runtime.events.jsonl.EventLog`) and, with the ``otel`` extra
installed, one OpenTelemetry span per run (:mod:`meerkat_runtime.events.otel`).
"""

from meerkat_runtime.events.bus import EventBus, Subscription
from meerkat_runtime.events.event import Change, LifecycleEvent

__all__ = ["Change", "EventBus", "LifecycleEvent", "Subscription"]
