"""Letting go of a session's operation registry when the session goes away.

When a session is unregistered (``unregister_session``, the machine's ``close()``), lost to
another worker, or forgotten by ``halt()``, its registry's store sink is closed (a terminal
transition never becomes half-durable) and the registry itself is closed
(:meth:`~meerkat_runtime.ops.registry.OpsLifecycleRegistry.close`): its pending watchers,
``wait_all`` handle and completion-feed waits raise the error a call on the session raises now
(``MachineClosed`` after ``close()``, ``SessionNotFound`` after an unregistration or ``halt()``,
``OwnershipLost`` once the lease is lost), as do later calls on the registry. ``halt()``
releases no waiter (a crash resolves nothing). Nothing durable changes: the next registration
recovers the operations from the store.
"""

from __future__ import annotations

from meerkat_runtime.session.runtime_session import RuntimeSession
from meerkat_runtime.vocab.errors import MeerkatError, SessionNotFound


def close_ops(session: RuntimeSession, *, release_waiters: bool = True) -> None:
    """Close ``session``'s ops sink and registry (see the module doc); closing again changes
    nothing (the first error stays)."""
    if session.ops_sink is not None:
        session.ops_sink.close()

    def gone() -> BaseException:
        try:
            session.check_registered()
        except MeerkatError as exc:
            return exc.with_traceback(None)
        return SessionNotFound(str(session.session_id))

    session.ops_registry.close(gone, release_waiters=release_waiters)
