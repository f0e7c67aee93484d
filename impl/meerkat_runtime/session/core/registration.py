"""Registration rules: ``register`` (the recovery write-back), ``begin_attach``,
``finish_attach`` (``_keep_phase``), ``attach_failed`` (docs/semantics.md, "Session runtime";
the model's ``session/registration.py``).

Registration phases: Queuing (no loop) → Attaching (a caller claimed the attachment) → Active
(loop attached). Attaching writes nothing (Attached is stored as Idle). ``register_noop``,
``begin_attach_noop``, ``unregister`` and ``crash`` change nothing in the core: the shell
returns early, or forgets the whole session.
"""

from __future__ import annotations

from meerkat_runtime.session.core.plan import LifecycleWrite, Plan
from meerkat_runtime.session.core.state import CoreState
from meerkat_runtime.vocab.errors import InvalidRuntimeTransition, NotReady, RuntimeDestroyed
from meerkat_runtime.vocab.runtime import RegistrationPhase, RuntimeState


class RegistrationRules(CoreState):
    """The registration rules of :class:`~meerkat_runtime.session.core.session_core.SessionCore`."""

    def register(self) -> Plan:
        """The durable half of ``register``: once
        :func:`~meerkat_runtime.session.core.recovery.recover_session` rebuilt this core, one
        lifecycle commit writes back the recovered phase and every row recovery changed."""
        return self.draft("register", LifecycleWrite())

    def begin_attach(self) -> Plan:
        """Queuing → Attaching: claim the loop attachment. ``RuntimeDestroyed`` when destroyed,
        ``NotReady`` when stopped."""
        if self.phase is RuntimeState.DESTROYED:
            raise RuntimeDestroyed(self.runtime_id)
        if self.phase is RuntimeState.STOPPED:
            raise NotReady(self.phase.value)
        self._require_registration(RegistrationPhase.QUEUING, "begin_attach")
        plan = self.draft("begin_attach")
        plan.registration = RegistrationPhase.ATTACHING
        return plan

    def finish_attach(self) -> Plan:
        """Attaching → Active: the loop is published; Idle becomes Attached
        (``finish_attach``), any other phase is kept (``finish_attach_keep_phase``)."""
        self._require_registration(RegistrationPhase.ATTACHING, "finish_attach")
        plan = self.draft("finish_attach" if self.phase is RuntimeState.IDLE else "finish_attach_keep_phase")
        plan.registration = RegistrationPhase.ACTIVE
        if self.phase is RuntimeState.IDLE:
            plan.phase = RuntimeState.ATTACHED
        if self.pre_run_phase is RuntimeState.IDLE:
            plan.pre_run_phase = RuntimeState.ATTACHED
        return plan

    def attach_failed(self) -> Plan:
        """Attaching → Queuing: starting the loop failed; the claim is released."""
        self._require_registration(RegistrationPhase.ATTACHING, "attach_failed")
        plan = self.draft("attach_failed")
        plan.registration = RegistrationPhase.QUEUING
        return plan

    def _require_registration(self, phase: RegistrationPhase, action: str) -> None:
        if self.registration is not phase:
            raise InvalidRuntimeTransition(f"registration {self.registration.value}", action)
