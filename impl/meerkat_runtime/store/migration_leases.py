"""The one migration that must not run under a live worker of the older release.

A release that writes no high-water marks (SQLite schema 3 or older, PostgreSQL schema 1)
keeps writing rows after another process has migrated the store under it: its writes do not
advance the marks the migration introduced, so the mark counts fewer rows than are stored and
this release refuses the session (``Corrupt``) although every row is intact. Such a worker
announces itself only through its leases, which those schemas already hold: the migration that
introduces the marks is refused while any lease is live (unexpired in the store's clock). A
release at the pre-mark version cannot hold a lease of this release (opening the store
migrates it first), so every live lease there is another process's.

What it cannot see: an older worker that holds no lease (ownership off, or between sessions)
or that claims one after the migration committed. Operators stop older workers first.

Later migrations do not refuse: an older writer of a later schema advances the marks, and the
columns it leaves unwritten are read as an older release's rows (see the stores' docs).
"""

from __future__ import annotations

from collections.abc import Iterable

from meerkat_runtime.vocab.errors import VersionMismatch


class MigrationRefused(VersionMismatch):
    """A migration introducing the high-water marks was refused: a worker of the older
    release holds a live lease. ``runtime_id`` / ``owner`` / ``expires_at`` name one holder
    (the lease expiring last), ``holders`` counts them. Nothing was changed."""

    def __init__(self, found: int, runtime_id: str, owner: str, expires_at: float, holders: int, store: str) -> None:
        others = "" if holders == 1 else f" (and {holders - 1} other live lease(s))"
        super().__init__(
            runtime_id,
            f"refusing to upgrade {store} from schema version {found}: owner {owner!r} holds a live lease on "
            f"runtime {runtime_id!r} until {expires_at:.3f} (store clock){others}. A worker of an older release "
            "writes no high-water marks, so rows it writes after the upgrade would make this release refuse "
            "its sessions as damaged. Stop every worker of the older release, then open the store again (or "
            "wait until its leases expire); nothing was changed",
        )
        self.found = found
        self.owner = owner
        self.expires_at = expires_at
        self.holders = holders


def refusal(
    found: int, leases: Iterable[tuple[object, object, object]], now: float, store: str
) -> MigrationRefused | None:
    """The refusal of a migration from pre-mark version ``found`` given the stored lease rows
    ``(runtime_id, owner, expires_at)``, or ``None`` when none is live at ``now``. A lease
    whose expiry is not a number is counted as live (it cannot be shown to have expired)."""
    live: list[tuple[float, str, str]] = []
    for runtime_id, owner, expires_at in leases:
        expiry = float(expires_at) if isinstance(expires_at, int | float) else float("inf")
        if now < expiry:
            live.append((expiry, str(runtime_id), str(owner)))
    if not live:
        return None
    expiry, runtime_id, owner = max(live)
    return MigrationRefused(found, runtime_id, owner, expiry, len(live), store)
