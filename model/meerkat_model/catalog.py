"""The machines the verifier knows, and the named exploration profiles.

``MACHINES`` maps a machine name to a factory ``Bounds -> Machine``; ``PROFILES`` maps a
profile name (``tiny``, ``small``, ``ci``, ``deep``, ``probe``, ``wide``) to the bounds of each
machine under that profile. Every profile names every machine (``profile_bounds`` raises for a
pair it does not hold): a machine's default ``Bounds()`` are no profile's.
Factories import their machine lazily so the catalog stays cheap to import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from meerkat_model.machine import Bounds, Machine

AnyMachine = Machine[Any, Any]


def _ops(bounds: Bounds) -> AnyMachine:
    from meerkat_model.ops.machine import OpsMachine

    return OpsMachine(bounds)


def _session(bounds: Bounds) -> AnyMachine:
    from meerkat_model.session.machine import SessionMachine

    return SessionMachine(bounds)


def _ownership(bounds: Bounds) -> AnyMachine:
    from meerkat_model.ownership.machine import OwnershipMachine

    return OwnershipMachine(bounds)


def _ownership_ops(bounds: Bounds) -> AnyMachine:
    machine = _ownership(bounds)
    machine.name = "ownership_ops"  # reports name it by its catalog key
    return machine


MACHINES: dict[str, Callable[[Bounds], AnyMachine]] = {
    "ops": _ops,
    "session": _session,
    "ownership": _ownership,
    "ownership_ops": _ownership_ops,
}
"""``ownership_ops`` is the ownership model under other bounds: the operation registry's steps
on, the input lane off (the registry does not depend on it; with both, the product is too large
for ci)."""


def _ops_keys() -> frozenset[str]:
    from meerkat_model.ops.bounds import DEFAULTS

    return frozenset(DEFAULTS)


def _session_keys() -> frozenset[str]:
    from meerkat_model.session.bounds import DEFAULTS

    return frozenset(DEFAULTS)


def _ownership_keys() -> frozenset[str]:
    from meerkat_model.ownership.bounds import DEFAULTS

    return _session_keys() | frozenset(DEFAULTS)  # its workers run the session's steps


_BOUND_KEYS: dict[str, Callable[[], frozenset[str]]] = {
    "ops": _ops_keys,
    "session": _session_keys,
    "ownership": _ownership_keys,
    "ownership_ops": _ownership_keys,
}


def bound_keys(machine: str) -> frozenset[str]:
    """Every bound ``machine`` documents (the keys of its bounds module's ``DEFAULTS``), named
    in a profile or not; empty for a machine registered without a bounds module."""
    keys = _BOUND_KEYS.get(machine)
    return frozenset() if keys is None else keys()


DRAWN: tuple[str, ...] = ("ops", "session")
"""The machines the diagram set draws (``meerkat_model.diagrams``). The ownership model is
verified but not drawn: its entities are the session's (drawn from the session model) plus the
lease, and its reachable graph is far beyond what a picture can show (docs/diagrams.md)."""

# Bounds of the operation registry model (meerkat_model.ops.bounds documents every key).
# tiny: one id, small enough to draw; ci: two ids, both kinds, a barrier, crash and recovery,
# seconds; deep: one more completion sequence number (every history of three terminal steps).
_OPS_COMMON = {
    "kinds": 2,
    "max_completed": 1,
    "max_concurrent": 1,
    "payloads": 1,
    "progress": 1,
    "watchers": 1,
    "barrier": 1,
    "crash": 1,
    "probes": 0,
}

# small: what `meerkat-conformance --profile fast` replays (about 25 s on 2 cores): two ids and a
# barrier for ops; for sessions two inputs with idempotency and supersession keys, every control
# operation, interrupts, store-write failures and runs without a loop, but no executor failures and
# no crashes (their attempt counts and recoveries multiply the states: the directed scenarios and
# the search cover them).

# Bounds of the session runtime model (meerkat_model.session.bounds documents every key).
# tiny: one input, runs that succeed or fail, crash and recovery (small enough to draw); ci: two
# inputs with idempotency and supersession keys, every control operation, failures (retryable
# and not), crashes (every declared transition fires; seconds); deep: adds the steer lane and
# ephemeral inputs. Wherever executor failures are on, errors that are not retryable are too.
_SESSION_OFF = {
    "steer": 0,
    "idem_keys": 0,
    "super_keys": 0,
    "coalesce": 0,
    "ephemeral": 0,
    "invalid": 0,
    "interrupt": 0,
    "control": 0,
    "unregister": 0,
    "direct": 0,
}
_SESSION_ALL = {
    "idem_keys": 1,
    "super_keys": 1,
    "coalesce": 1,
    "invalid": 1,
    "failures": 1,
    "fatal_errors": 1,
    "interrupt": 1,
    "control": 1,
    "unregister": 1,
    "crash": 1,
    "write_failures": 1,
}

# Bounds of the ownership model (meerkat_model.ownership.bounds documents every key): two workers
# on one store, one input, every control operation the lease protects, crashes, expiry,
# takeover and writes whose outcome is unknown. tiny and ci: two claims (a claim and a takeover,
# seconds); deep: three claims and two inputs. fencing=0 must fail (docs/semantics.md).
_OWNERSHIP = {
    **_SESSION_OFF,
    "inputs": 1,
    "failures": 0,
    "control": 1,
    "unregister": 1,
    "crash": 1,
    "write_failures": 0,
    "workers": 2,
    "claims": 2,
    "fencing": 1,
    "ambiguous": 1,
}
# The ownership model's operation registry (ownership_ops): the same workers, claims, crashes,
# control writes and unknown outcomes, one operation id (two in deep) with both terminal outcomes,
# no input accepted. fencing=0 must fail too (completion sequence numbers reused, a terminal
# operation rewritten).
_OWNERSHIP_OPS = {**_OWNERSHIP, "accepts": 0, "ops": 1}
# small: both without writes whose outcome is unknown (a tenth of ci's states). probe: ci plus
# what the session's probe adds that a worker takes (interrupts, failing store writes), and for
# the registry every call the model refuses (probes=1; a worker's session actions include the
# refused calls in every profile). wide: three workers and three claims (ownership), three
# operation ids (ownership_ops), without unknown outcomes (they multiply the states; ci and deep
# cover them).
_OWNERSHIP_SMALL = {"ambiguous": 0}

PROFILES: dict[str, dict[str, Bounds]] = {
    "tiny": {
        "ops": Bounds({**_OPS_COMMON, "ids": 1, "sequences": 2}),
        "session": Bounds(
            {**_SESSION_OFF, "inputs": 1, "failures": 1, "fatal_errors": 1, "crash": 1, "write_failures": 1}
        ),
        "ownership": Bounds(_OWNERSHIP),
        "ownership_ops": Bounds(_OWNERSHIP_OPS),
    },
    "small": {
        "ops": Bounds({**_OPS_COMMON, "ids": 2, "sequences": 2, "watchers": 0, "progress": 0}),
        "session": Bounds(
            {
                **_SESSION_ALL,
                "inputs": 2,
                "steer": 0,
                "ephemeral": 0,
                "failures": 0,
                "fatal_errors": 0,
                "unregister": 0,
                "crash": 0,
                "direct": 1,
            }
        ),
        "ownership": Bounds({**_OWNERSHIP, **_OWNERSHIP_SMALL}),
        "ownership_ops": Bounds({**_OWNERSHIP_OPS, **_OWNERSHIP_SMALL}),
    },
    "ci": {
        "ops": Bounds({**_OPS_COMMON, "ids": 2, "sequences": 2}),
        "session": Bounds({**_SESSION_ALL, "inputs": 2, "steer": 0, "ephemeral": 0}),
        "ownership": Bounds(_OWNERSHIP),
        "ownership_ops": Bounds(_OWNERSHIP_OPS),
    },
    "deep": {
        "ops": Bounds({**_OPS_COMMON, "ids": 2, "sequences": 3}),
        "session": Bounds({**_SESSION_ALL, "inputs": 2, "steer": 1, "ephemeral": 1}),
        "ownership": Bounds({**_OWNERSHIP, "inputs": 2, "claims": 3}),
        "ownership_ops": Bounds({**_OWNERSHIP_OPS, "ops": 2, "claims": 3}),
    },
}


def profile_names() -> list[str]:
    """Names of the known profiles, in a stable order."""
    return list(PROFILES)


def profile_bounds(profile: str, machine: str) -> Bounds:
    """The bounds ``profile`` gives ``machine``; ``KeyError`` naming the pair when it gives none
    (never the machine's defaults in silence)."""
    try:
        return PROFILES[profile][machine]
    except KeyError:
        raise KeyError(f"profile {profile!r} names no bounds for machine {machine!r}") from None


# Two more profiles reach what ci never does. probe: every call the model refuses (and every
# write-failure variant) is offered too, so a step that fires where its declaration says it
# cannot is found; no concurrency limit, so several operations are active at once. wide: three
# operation ids and three sequence numbers without a concurrency limit (registration order,
# retention with pinned barrier members, recovery), three session inputs. The ownership
# machines' bounds under both are described with _OWNERSHIP_SMALL above.
PROFILES["probe"] = {
    "ops": Bounds({**_OPS_COMMON, "ids": 2, "sequences": 2, "max_concurrent": 0, "probes": 1}),
    "session": Bounds(
        {
            **_SESSION_OFF,
            "inputs": 1,
            "failures": 1,
            "fatal_errors": 1,
            "crash": 1,
            "control": 1,
            "interrupt": 1,
            "write_failures": 1,
        }
    ),
    "ownership": Bounds({**_OWNERSHIP, "interrupt": 1, "write_failures": 1}),
    "ownership_ops": Bounds({**_OWNERSHIP_OPS, "write_failures": 1, "probes": 1}),
}
PROFILES["wide"] = {
    "ops": Bounds(
        {**_OPS_COMMON, "ids": 3, "sequences": 3, "max_concurrent": 0, "kinds": 1, "progress": 0, "watchers": 0}
    ),
    "session": Bounds({**_SESSION_OFF, "inputs": 3, "failures": 1, "fatal_errors": 1, "crash": 1, "write_failures": 0}),
    "ownership": Bounds({**_OWNERSHIP, "workers": 3, "claims": 3, "ambiguous": 0}),
    "ownership_ops": Bounds({**_OWNERSHIP_OPS, "ops": 3, "ambiguous": 0}),
}
