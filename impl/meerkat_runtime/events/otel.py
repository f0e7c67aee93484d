"""``OpenTelemetrySubscriber``: one OpenTelemetry span per run, built from lifecycle events.

Needs the ``otel`` extra (``pip install 'meerkat-lifecycle[otel]'``: ``opentelemetry-api`` and
``opentelemetry-sdk``). This module imports nothing third-party when it is imported; creating a
subscriber imports ``opentelemetry`` and raises :class:`OpenTelemetryUnavailable` (an
``ImportError`` saying what to install) when it is missing. The rest of the runtime never
imports it.

Contract, for ``machine.events.subscribe(OpenTelemetrySubscriber(tracer_provider=...))``:

* ``start_run`` starts a span named ``meerkat.run`` at the event's time, a root span (a run is
  started by the session's loop, not by whoever happens to be current), with the attributes
  ``meerkat.session_id``, ``meerkat.runtime_id``, ``meerkat.run_id``, ``meerkat.input_id``,
  ``meerkat.attempt``, ``meerkat.store`` and ``meerkat.source``;
* a session event of the same runtime that leaves the run in flight (``retire``, ``accept`` of
  another input, ...) is added to the span as a span event named after its rule, with its
  ``before``/``after`` phases;
* the event that ends the run ends the span at its time, with ``meerkat.rule`` (the ending
  rule), ``meerkat.outcome`` (``consumed``, ``requeued``, ``abandoned``, or the rule for a run
  dropped by a stop, destroy, unregistration or reconciliation), ``meerkat.attempts`` and
  ``meerkat.max_attempts``. A success sets status OK; an executor failure, a failed boundary
  commit or a failed terminal snapshot sets status ERROR with the error's message and adds the
  standard ``exception`` span event (``exception.type``, ``exception.message``) plus the
  attribute ``error.type``; an interrupt leaves the status unset (``meerkat.outcome``
  ``cancelled``);
* :meth:`close` ends the spans of runs still in flight (``meerkat.outcome`` ``open``), e.g. at
  shutdown; operation events are ignored.
"""

from __future__ import annotations

import threading
from typing import Any

from meerkat_runtime.events.event import LifecycleEvent

SPAN_NAME = "meerkat.run"
INSTRUMENTATION = "meerkat_runtime"

SUCCESS_RULES = frozenset({"executor_succeeded", "executor_succeeded_retired"})
ERROR_RULES = frozenset(
    {
        "executor_failed",
        "executor_failed_retired",
        "executor_failed_exhausted",
        "executor_failed_exhausted_retired",
        "boundary_commit_failed",
        "boundary_commit_failed_retired",
        "terminal_snapshot_failed",
    }
)
CANCEL_RULES = frozenset({"interrupt", "interrupt_retired"})
DROP_RULES = frozenset({"stop_with_loop", "destroy_with_loop", "unregister", "reconcile", "register"})
"""Rules after which no run of the session is in flight any more (the run, if any, was dropped)."""
ENDING_RULES = SUCCESS_RULES | ERROR_RULES | CANCEL_RULES | DROP_RULES

_OUTCOMES = {
    "executor_succeeded": "consumed",
    "executor_failed": "requeued",
    "executor_failed_exhausted": "abandoned",
    "boundary_commit_failed": "requeued",
    "interrupt": "cancelled",
}


class OpenTelemetryUnavailable(ImportError):
    """The ``opentelemetry`` packages are not installed (install the ``otel`` extra)."""


def _load() -> tuple[Any, Any, Any]:
    """``(trace, context, Status/StatusCode holder)`` from ``opentelemetry``, imported now."""
    try:
        from opentelemetry import context, trace
        from opentelemetry.trace import status
    except ImportError as exc:
        raise OpenTelemetryUnavailable(
            "OpenTelemetrySubscriber needs the 'otel' extra (opentelemetry-api and opentelemetry-sdk): "
            "pip install 'meerkat-lifecycle[otel]'"
        ) from exc
    return trace, context, status


def _ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


class OpenTelemetrySubscriber:
    """Turns a machine's run events into spans (module docstring). ``tracer_provider``: the SDK
    provider to use (default: the global one); ``tracer``: a ready tracer instead."""

    def __init__(self, *, tracer_provider: Any = None, tracer: Any = None) -> None:
        trace, context, status = _load()
        self._trace = trace
        self._status = status
        self._root = context.Context()
        if tracer is None:
            tracer = trace.get_tracer(INSTRUMENTATION, tracer_provider=tracer_provider)
        self._tracer = tracer
        self._open: dict[str, tuple[str, Any]] = {}
        """runtime id -> (run id, its open span)."""
        self._lock = threading.Lock()

    @property
    def open_runs(self) -> int:
        """How many runs have a span that has not ended yet."""
        return len(self._open)

    def __call__(self, event: LifecycleEvent) -> None:
        if event.machine != "session":
            return
        with self._lock:
            current = self._open.get(event.runtime_id)
            if current is not None and (event.rule in ENDING_RULES or event.rule == "start_run"):
                del self._open[event.runtime_id]
                self._end(current[1], event)
            elif current is not None:
                current[1].add_event(
                    event.rule,
                    {"meerkat.before": event.before, "meerkat.after": event.after, "meerkat.seq": event.seq},
                    timestamp=_ns(event.time),
                )
            if event.rule == "start_run" and event.run_id is not None:
                self._open[event.runtime_id] = (event.run_id, self._start(event))

    def close(self) -> None:
        """End every span still open (``meerkat.outcome`` ``open``)."""
        with self._lock:
            spans, self._open = list(self._open.values()), {}
        for _run, span in spans:
            span.set_attribute("meerkat.outcome", "open")
            span.end()

    def _start(self, event: LifecycleEvent) -> Any:
        details = event.details
        attributes: dict[str, Any] = {
            "meerkat.session_id": event.session_id,
            "meerkat.runtime_id": event.runtime_id,
            "meerkat.run_id": event.run_id or "",
            "meerkat.store": event.store,
            "meerkat.source": event.source,
        }
        item = details.get("input")
        if isinstance(item, str):
            attributes["meerkat.input_id"] = item
        elif isinstance(item, list):
            attributes["meerkat.input_id"] = [str(i) for i in item]
        if isinstance(details.get("attempt"), int):
            attributes["meerkat.attempt"] = details["attempt"]
        return self._tracer.start_span(
            SPAN_NAME,
            context=self._root,
            kind=self._trace.SpanKind.INTERNAL,
            attributes=attributes,
            start_time=_ns(event.time),
        )

    def _end(self, span: Any, event: LifecycleEvent) -> None:
        rule = event.rule
        base = rule.removesuffix("_retired")
        span.set_attribute("meerkat.rule", rule)
        span.set_attribute("meerkat.outcome", _OUTCOMES.get(base, rule))
        for key in ("attempts", "max_attempts"):
            value = event.details.get(key)
            if isinstance(value, int):
                span.set_attribute(f"meerkat.{key}", value)
        status = self._status
        if rule in SUCCESS_RULES:
            span.set_status(status.Status(status.StatusCode.OK))
        elif rule in ERROR_RULES:
            error = event.details.get("error")
            kind = error.get("type") if isinstance(error, dict) else None
            message = error.get("message") if isinstance(error, dict) else None
            kind = str(kind) if kind else rule
            message = str(message) if message is not None else rule.replace("_", " ")
            span.set_attribute("error.type", kind)
            span.add_event(
                "exception", {"exception.type": kind, "exception.message": message}, timestamp=_ns(event.time)
            )
            span.set_status(status.Status(status.StatusCode.ERROR, f"{kind}: {message}"))
        span.end(end_time=_ns(event.time))
