"""The client-side deadline of the PostgreSQL store: no call waits for the server without limit.

The server's own time limits (``lock_timeout``, ``idle_in_transaction_session_timeout``, see
:mod:`~meerkat_runtime.store.postgres_transactions`) bound what the *server* waits for. They do
not help when the server's answer never reaches the client: a network that stops delivering
while the socket stays open (a black-holed route, a stalled proxy or load balancer), or a server
process that hangs. libpq then waits until TCP gives up — 15 minutes to hours — while the
worker keeps renewing its leases on other connections, so no other worker can take its
sessions over.

:class:`StoreConnection` (the connection class of every pool the store uses) bounds each wait
for the server: a wait that outlives its deadline raises :class:`ServerSilent` and closes the
connection at once (it is in the middle of the protocol and is never used again; the pool
discards it when it comes back). The store sets a deadline per transaction or read
(:mod:`~meerkat_runtime.store.postgres_transactions` classifies the error: before ``COMMIT``
was sent nothing was written, while it was in flight the outcome is unknown); a wait outside
one (the pool checking its idle connections, say) is bounded by ``reply_s`` alone.

How: psycopg (3.2 and later) runs each operation as a generator driven by a wait function,
which resumes the generator whenever the socket is ready and at least every wait interval
(0.1 s); :func:`_until` wraps that generator and stops it once the deadline has passed. It
costs one clock reading per resumption.

:func:`tcp_options` adds libpq's TCP keepalive and ``tcp_user_timeout`` settings, derived from
the store's ``timeout_s``, to the connection options of a pool the store opens — unless the
connection string sets them: they let the kernel notice a dead peer also on idle pooled
connections (they are ignored on Unix-domain sockets).
"""

from __future__ import annotations

import math
import os
from collections.abc import Generator
from time import monotonic
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict

T = TypeVar("T")

UNBOUNDED = math.inf
"""A deadline that never passes: a schema migration waiting for another migrator's lock."""


class ServerSilent(psycopg.OperationalError):
    """The server did not answer within the deadline; the connection was closed (abandoned)."""


def _until(gen: Generator[Any, Any, T], deadline: float, budget_s: float) -> Generator[Any, Any, T]:
    """``gen`` (a psycopg operation), stopped with ``ServerSilent`` once ``deadline``
    (``time.monotonic()``) has passed; checked each time the wait function resumes it."""
    try:
        wait = next(gen)
        while True:
            ready = yield wait
            if monotonic() >= deadline:
                gen.close()
                raise ServerSilent(
                    f"no answer from the server within {budget_s:g} s (or this process was paused that long); "
                    "the connection was abandoned (closed)"
                )
            wait = gen.send(ready)
    except StopIteration as stop:
        result: T = stop.value
        return result


class StoreConnection(psycopg.Connection[tuple[Any, ...]]):
    """A psycopg connection whose waits for the server end at a deadline (see the module
    docstring). ``deadline``: when the current transaction or read must have its answers
    (``time.monotonic()``; ``UNBOUNDED`` for none), with ``budget_s`` the length it was given;
    ``None`` outside one, where each wait is bounded by ``reply_s`` (set when a pool the
    store opens makes the connection, and whenever the store takes it from a pool; ``None``
    until then — a connection of a pool passed in that the store has not used yet — is not
    bounded)."""

    deadline: float | None = None
    budget_s: float = 0.0
    reply_s: float | None = None

    def wait(self, gen: Any, *args: Any, **kwargs: Any) -> Any:
        deadline, budget = self.deadline, self.budget_s
        if deadline is None and self.reply_s is not None:
            deadline, budget = monotonic() + self.reply_s, self.reply_s
        if deadline is None or deadline == UNBOUNDED:
            return super().wait(gen, *args, **kwargs)
        try:
            return super().wait(_until(gen, deadline, budget), *args, **kwargs)
        except ServerSilent:
            self.pgconn.finish()  # mid-protocol: never used again (the pool discards a closed connection)
            raise

    def start(self, budget_s: float) -> None:
        """Give the next statements ``budget_s`` seconds from now for all their answers."""
        self.budget_s = budget_s
        self.deadline = UNBOUNDED if budget_s == UNBOUNDED else monotonic() + budget_s

    def stop(self) -> None:
        """Back to bounding each wait by ``reply_s``."""
        self.deadline = None


def tcp_options(conninfo: str, timeout_s: float) -> dict[str, object]:
    """libpq options for a pool the store opens, each one only if ``conninfo`` (or, for
    ``connect_timeout``, the ``PGCONNECT_TIMEOUT`` variable) does not set it:
    ``connect_timeout`` ``max(2, timeout_s)``; keepalives after ``timeout_s`` idle, every
    ``timeout_s / 3``, 3 probes; ``tcp_user_timeout`` ``2 * timeout_s`` (sent data
    unacknowledged that long ends the connection)."""
    given = conninfo_to_dict(conninfo)
    seconds = max(1, math.ceil(timeout_s))
    options: dict[str, object] = {
        "connect_timeout": max(2, seconds),
        "keepalives": 1,
        "keepalives_idle": seconds,
        "keepalives_interval": max(1, math.ceil(timeout_s / 3)),
        "keepalives_count": 3,
        "tcp_user_timeout": math.ceil(2 * timeout_s * 1000),
    }
    if os.environ.get("PGCONNECT_TIMEOUT"):
        del options["connect_timeout"]
    return {key: value for key, value in options.items() if key not in given}
