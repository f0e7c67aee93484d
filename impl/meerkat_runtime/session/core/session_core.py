"""``SessionCore``: the synchronous state machine of one session, every rule in one class.

The rules live in modules named as the model's modules and are gathered here:

========================  ===================================================================
module                    rules (method names are the model's transition names)
========================  ===================================================================
``admission``             ``accept`` (→ accept / accept_superseding / accept_coalescing /
                          deduplicate / reject_invalid)
``run_loop``              ``start_run``, ``executor_succeeded``, ``executor_failed``,
                          ``interrupt``, ``boundary_commit_failed``
``control``               ``retire``, ``reset``, ``recycle``, ``stop``, ``destroy``
``registration``          ``register``, ``begin_attach``, ``finish_attach``, ``attach_failed``
========================  ===================================================================

A rule either raises (changing nothing) or returns a
:class:`~meerkat_runtime.session.core.plan.Plan` (control rules: a report and a plan);
:meth:`~meerkat_runtime.session.core.state.CoreState.apply` installs it. Locking, durability
and waiters live in the shell (:mod:`meerkat_runtime.session.commit`). The full map of rule →
core method → shell function is :mod:`meerkat_runtime.session.transitions`.
"""

from __future__ import annotations

from meerkat_runtime.session.core.admission import AdmissionRules
from meerkat_runtime.session.core.control import ControlRules
from meerkat_runtime.session.core.registration import RegistrationRules
from meerkat_runtime.session.core.run_loop import RunLoopRules


class SessionCore(AdmissionRules, RunLoopRules, ControlRules, RegistrationRules):
    """Phase, current run, registration phase and ledger of one session, with every rule."""
