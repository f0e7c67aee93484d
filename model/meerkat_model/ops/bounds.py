"""Bounds of the operation-registry model, read from :class:`~meerkat_model.machine.Bounds`.

Bounds limit the *data* the exploration generates, never the number of steps, so the
breadth-first search reaches a fixed point:

==================  =======  ==============================================================
key                 default  meaning
==================  =======  ==============================================================
``ids``             2        operation ids ``0 .. ids-1`` (reusable after eviction/collection)
``kinds``           2        1: BackgroundToolOp only; 2: also MobMemberChild
``max_completed``   1        registry config: terminal records kept (FIFO retention)
``max_concurrent``  0        registry config: active operations allowed (0: unlimited)
``sequences``       3        completion sequence numbers issuable (registration budget)
``payloads``        1        values per outcome payload domain (results, errors, reasons)
``progress``        1        report_progress calls per operation explored
``watchers``        1        pending watchers per operation explored
``barrier``         1        1: explore wait_all / drop; 0: never
``crash``           1        1: explore crash + recovery; 0: never
``probes``          1        1: also offer calls the model rejects and durable-write failure
                             variants (for conformance); 0: only enabled calls (they change no
                             state, so exhaustive verification does not need them)
==================  =======  ==============================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from meerkat_model.machine import Bounds

DEFAULTS: dict[str, int] = {
    "ids": 2,
    "kinds": 2,
    "max_completed": 1,
    "max_concurrent": 0,
    "sequences": 3,
    "payloads": 1,
    "progress": 1,
    "watchers": 1,
    "barrier": 1,
    "crash": 1,
    "probes": 1,
}

_RANGES: dict[str, tuple[int, int]] = {
    "ids": (1, 6),
    "kinds": (1, 2),
    "max_completed": (1, 1_000_000),
    "max_concurrent": (0, 1_000_000),
    "sequences": (0, 1_000_000),
    "payloads": (1, 9),
    "progress": (0, 1_000_000),
    "watchers": (0, 1_000_000),
    "barrier": (0, 1),
    "crash": (0, 1),
    "probes": (0, 1),
}


class BoundsError(ValueError):
    """A bound key the ops model does not know, or a value outside its range."""


@dataclass(frozen=True, slots=True)
class OpsBounds:
    ids: int
    kinds: int
    max_completed: int
    max_concurrent: int
    sequences: int
    payloads: int
    progress: int
    watchers: int
    barrier: bool
    crash: bool
    probes: bool
    feed_capacity: int
    """Capacity of the completion feed FIFO: ``max(4 * max_completed, 1024)``."""

    @classmethod
    def from_bounds(cls, bounds: Bounds) -> OpsBounds:
        """Validate ``bounds``: unknown keys and out-of-range values raise :class:`BoundsError`."""
        unknown = sorted(set(bounds.values) - set(DEFAULTS))
        if unknown:
            raise BoundsError(f"unknown ops bound(s) {', '.join(unknown)}; known: {', '.join(sorted(DEFAULTS))}")
        v: dict[str, int] = {}
        for key, default in DEFAULTS.items():
            raw = bounds.values.get(key, default)
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise BoundsError(f"ops bound {key} must be an integer, got {raw!r}")
            low, high = _RANGES[key]
            if not low <= raw <= high:
                raise BoundsError(f"ops bound {key}={raw} is outside {low}..{high}")
            v[key] = raw
        return cls(
            ids=v["ids"],
            kinds=v["kinds"],
            max_completed=v["max_completed"],
            max_concurrent=v["max_concurrent"],
            sequences=v["sequences"],
            payloads=v["payloads"],
            progress=v["progress"],
            watchers=v["watchers"],
            barrier=bool(v["barrier"]),
            crash=bool(v["crash"]),
            probes=bool(v["probes"]),
            feed_capacity=max(4 * v["max_completed"], 1024),
        )
