"""Lifecycle events of an operation registry (``machine == "ops"``).

A registry with events attached (:meth:`OpsLifecycleRegistry.attach_events`, done by the session
machine for each session's registry) publishes one event per call that took effect, named as
the model names it: ``register_operation``, ``provisioning_succeeded``, ``peer_ready``,
``register_watcher``, ``drop_watcher`` (a dropped pending watch released), ``report_progress``,
``request_retire``, every terminal transition
(after its durable write), ``terminate_owner``, ``collect_completed``, ``wait_all_immediate`` /
``wait_all_begin``, ``wait_all_cancel`` and ``crash_recover`` (the registry rebuilt from the
store at registration). Events are numbered and queued with the registry's commit lock held,
so in commit order, and delivered once the call released the registry's locks (by the calling
thread unless another delivery is in progress: :mod:`meerkat_runtime.events.bus`), so a
subscriber may call the registry. ``before``/``after`` are the operation's status (``Absent``
when not tracked) for a per-operation call and the registry's (``Idle``/``Waiting``) for a
registry-wide one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from meerkat_runtime.events.bus import EventBus
from meerkat_runtime.events.event import Change, LifecycleEvent, spell


@dataclass(frozen=True, slots=True)
class OpsEventSink:
    """Where a registry's events go: the bus and the session they belong to."""

    bus: EventBus
    session_id: str
    runtime_id: str
    fence: Callable[[], int | None]

    @property
    def active(self) -> bool:
        return self.bus.active

    def emit(
        self,
        rule: str,
        before: str,
        after: str,
        changes: tuple[Change, ...] = (),
        details: Mapping[str, Any] | None = None,
    ) -> None:
        bus = self.bus
        if not bus.active:
            return
        token = self.fence()
        data = dict(details or {})

        def make(seq: int, now: float) -> LifecycleEvent:
            return LifecycleEvent(
                seq=seq,
                time=now,
                machine="ops",
                rule=rule,
                session_id=self.session_id,
                runtime_id=self.runtime_id,
                source=bus.source,
                fence=token,
                before=before,
                after=after,
                changes=changes,
                details=data,
                store=bus.store,
            )

        bus.emit(self.runtime_id, make, deliver=False)

    def operation(self, rule: str, operation_id: str, before: str, after: str, **details: Any) -> None:
        """A per-operation call moved ``operation_id`` from ``before`` to ``after`` (runtime values)."""
        b, a = spell(before), spell(after)
        self.emit(rule, b, a, (Change("operation", operation_id, b, a),), {"operation": operation_id, **details})

    def registry(self, rule: str, before: str, after: str, **details: Any) -> None:
        """A registry-wide call (``Idle``/``Waiting`` before and after)."""
        changes = (Change("registry", self.runtime_id, before, after),) if before != after else ()
        self.emit(rule, before, after, changes, details)
