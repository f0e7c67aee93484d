"""Bounds of the ownership model.

Every key of the session model (``meerkat_model.session.bounds``) is read as the session model
reads it (the worker's session steps use them), with these defaults changed: ``inputs`` 1, and
``steer``, ``idem_keys``, ``super_keys``, ``coalesce``, ``ephemeral``, ``invalid``, ``failures``,
``interrupt``, ``write_failures`` and ``direct`` (runs ``accept_input_and_run`` drives) off, so
that two workers stay small. The keys of its own:

=================  =======  ===============================================================
key                default  meaning
=================  =======  ===============================================================
workers            2        workers sharing the store (each one ``MeerkatMachine``)
claims             3        claims in all (the fencing token never exceeds it)
fencing            1        1: the store refuses a write whose token is not the lease's; 0: it
                            ignores tokens (the verifier must then find a violation)
ambiguous          1        1: a durable step may leave its outcome unknown (store unreadable)
ops                0        operation ids of the session's registry (0: no registry steps)
readback           1        1: a worker reconciling a terminal write in doubt takes it for landed
                            only if its lease is still the store's and the stored operation is
                            the one it wrote (its outcome, number and writer), else it detaches
                            with ``ownership_lost``; 0: it compares only the stored slot and next
                            number (the verifier must then find a violation)
accepts            1        1: workers accept inputs; 0: they accept none (the input lane stays
                            empty: the registry checked against claims, crashes, expiry, control
                            writes and unknown outcomes without the input lane's states)
probes             0        1: also offer the registry calls the model refuses (registering a
                            tracked operation, finishing one that is not running, either on a
                            worker without the session or in doubt): each must be refused, and
                            one that changes the state where it must not is explored (an
                            invariant finds what it broke)
=================  =======  ===============================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from meerkat_model.machine import Bounds
from meerkat_model.session.bounds import SessionBounds

SESSION_DEFAULTS: dict[str, int] = {
    "inputs": 1,
    "steer": 0,
    "idem_keys": 0,
    "super_keys": 0,
    "coalesce": 0,
    "ephemeral": 0,
    "invalid": 0,
    "failures": 0,
    "interrupt": 0,
    "write_failures": 0,
    "direct": 0,
}
DEFAULTS: dict[str, int] = {
    "workers": 2,
    "claims": 3,
    "fencing": 1,
    "ambiguous": 1,
    "ops": 0,
    "readback": 1,
    "accepts": 1,
    "probes": 0,
}


class OwnershipBoundsError(ValueError):
    """A bounds value the ownership model cannot use; the message names the key."""


@dataclass(frozen=True, slots=True)
class OwnershipBounds:
    session: SessionBounds
    workers: int
    claims: int
    fencing: bool
    ambiguous: bool
    ops: int
    accepts: bool
    probes: bool = False
    readback: bool = True

    @staticmethod
    def from_bounds(bounds: Bounds) -> OwnershipBounds:
        """Read ``bounds``; unknown keys are ignored, bad values raise (naming the key)."""
        session = SessionBounds.from_bounds(Bounds({**SESSION_DEFAULTS, **bounds.values}))
        values = {key: bounds.get(key, default) for key, default in DEFAULTS.items()}
        if not 1 <= values["workers"] <= 3:
            raise OwnershipBoundsError(f"ownership bound 'workers' must be between 1 and 3, got {values['workers']}")
        if not 1 <= values["claims"] <= 6:
            raise OwnershipBoundsError(f"ownership bound 'claims' must be between 1 and 6, got {values['claims']}")
        if not 0 <= values["ops"] <= 3:
            raise OwnershipBoundsError(f"ownership bound 'ops' must be between 0 and 3, got {values['ops']}")
        for key in ("fencing", "ambiguous", "accepts", "probes", "readback"):
            if values[key] not in (0, 1):
                raise OwnershipBoundsError(f"ownership bound {key!r} is a 0/1 switch, got {values[key]}")
        return OwnershipBounds(
            session=session,
            workers=values["workers"],
            claims=values["claims"],
            fencing=bool(values["fencing"]),
            ambiguous=bool(values["ambiguous"]),
            ops=values["ops"],
            accepts=bool(values["accepts"]),
            probes=bool(values["probes"]),
            readback=bool(values["readback"]),
        )
