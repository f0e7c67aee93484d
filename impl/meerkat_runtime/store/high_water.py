"""The high-water mark: per-runtime counters a store advances in the same transaction as every
data write, so that recovery can tell "nothing more was written" from "rows were lost".

A store never interprets payloads, so the mark holds what a store can count itself:

* ``writes`` — committed data writes of the runtime (every write method, including
  ``quarantine_row``; not the lease calls). It only grows;
* ``inputs``, ``receipts`` — input rows and boundary receipts stored now;
* ``session_snapshots``, ``lifecycles``, ``ops_snapshots`` — 1 when that single record is
  stored, else 0;
* ``ops_records`` — ops journal records stored now (appended since the last compaction);
* ``quarantined`` — input rows moved to quarantine.

Recovery reads the mark (``RuntimeStore.load_high_water``) and compares it with what it
loaded (:func:`compare_session`, :func:`compare_ops`). A disagreement means the storage lost or
gained rows behind the store's back — a damaged page or index, a damaged log — and is a
``Corrupt`` naming each count that disagrees. A runtime nothing was ever written for has no
mark (``None``); rows without a mark are ``Corrupt`` too.

:func:`advance` is the one rule every store applies: it takes the mark before the write and
the :class:`MarkStep` the write makes, and returns the mark to store.
"""

from __future__ import annotations

from dataclasses import dataclass

from meerkat_runtime.vocab.errors import Corrupt

HIGH_WATER_FIELDS = (
    "writes",
    "inputs",
    "receipts",
    "session_snapshots",
    "lifecycles",
    "ops_snapshots",
    "ops_records",
    "quarantined",
)
"""The counters of a mark, in stored order."""


@dataclass(frozen=True, slots=True)
class HighWater:
    """The mark of one runtime (see the module docstring for what each counter holds)."""

    runtime_id: str
    writes: int = 0
    inputs: int = 0
    receipts: int = 0
    session_snapshots: int = 0
    lifecycles: int = 0
    ops_snapshots: int = 0
    ops_records: int = 0
    quarantined: int = 0

    def counters(self) -> tuple[int, ...]:
        """The counters in :data:`HIGH_WATER_FIELDS` order (spelled out: this runs in every write)."""
        return (
            self.writes,
            self.inputs,
            self.receipts,
            self.session_snapshots,
            self.lifecycles,
            self.ops_snapshots,
            self.ops_records,
            self.quarantined,
        )

    def payload(self) -> bytes:
        """The mark's stored form, as a row checksum covers it."""
        return counters_payload(self.counters())

    @staticmethod
    def from_counters(runtime_id: str, counters: tuple[object, ...]) -> HighWater:
        """Build a mark from stored counters; ``ValueError`` if one is not a non-negative int."""
        if len(counters) != len(HIGH_WATER_FIELDS):
            raise ValueError(f"a high-water mark has {len(HIGH_WATER_FIELDS)} counters, got {len(counters)}")
        checked: list[int] = []
        for name, value in zip(HIGH_WATER_FIELDS, counters, strict=True):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"high-water counter {name} must be a non-negative integer, got {value!r}")
            checked.append(value)
        return HighWater(runtime_id, *checked)


@dataclass(frozen=True, slots=True)
class MarkStep:
    """What one write transaction changes. ``None`` leaves a single record's flag as it is."""

    inputs_added: int = 0
    inputs_removed: int = 0
    receipts_added: int = 0
    receipts_removed: int = 0
    session_snapshot: bool | None = None
    lifecycle: bool | None = None
    ops_snapshot: bool | None = None
    ops_records_added: int = 0
    ops_records_cleared: bool = False
    quarantined_added: int = 0


def advance(current: HighWater | None, runtime_id: str, step: MarkStep) -> HighWater:
    """The mark after a write that made ``step`` (``writes`` + 1). A step that would take a
    counter below zero (removing rows the mark does not count) is ``Corrupt``: the mark
    disagrees with the rows, and no store may write a mark it would itself refuse to read."""
    counters = current.counters() if current is not None else _NO_COUNTS
    return HighWater(runtime_id, *advance_counters(counters, step, runtime_id))


_NO_COUNTS = (0,) * len(HIGH_WATER_FIELDS)


def advance_counters(counters: tuple[int, ...], step: MarkStep, runtime_id: str) -> tuple[int, ...]:
    """:func:`advance` on the counters alone (in :data:`HIGH_WATER_FIELDS` order)."""
    writes, inputs, receipts, snapshots, lifecycles, ops_snapshots, ops_records, quarantined = counters
    inputs = inputs + step.inputs_added - step.inputs_removed
    if inputs < 0:
        raise Corrupt(runtime_id, below_zero(counters[1], step.inputs_removed))
    receipts = receipts + step.receipts_added - step.receipts_removed
    if receipts < 0:
        raise Corrupt(runtime_id, below_zero(counters[2], step.receipts_removed, "boundary receipt(s)"))
    return (
        writes + 1,
        inputs,
        receipts,
        snapshots if step.session_snapshot is None else int(step.session_snapshot),
        lifecycles if step.lifecycle is None else int(step.lifecycle),
        ops_snapshots if step.ops_snapshot is None else int(step.ops_snapshot),
        (0 if step.ops_records_cleared else ops_records) + step.ops_records_added,
        quarantined + step.quarantined_added,
    )


def below_zero(counted: int, removed: int, what: str = "input row(s)") -> str:
    """Why a write removing ``removed`` rows (``what``) under a mark counting ``counted`` is refused."""
    return (
        f"the write removes {removed} {what} but the high-water mark counts {counted}: the mark disagrees "
        "with the rows (it was lost, or rows were added or moved behind the store's back); nothing was written"
    )


def quarantine_refusal(mark: HighWater | None, rows: int) -> str | None:
    """Why a quarantine must not move a row of a runtime whose ``rows`` input rows are stored
    under ``mark``, or ``None`` when the two agree. Moving a row then would write a mark that
    agrees with neither the rows nor the damage it was meant to show."""
    if mark is None:
        return (
            f"the runtime has no high-water mark although {rows} input row(s) are stored (the mark row was "
            "deleted, or the rows were added or moved behind the store's back)"
        )
    if mark.inputs != rows:
        return (
            f"its high-water mark counts {mark.inputs} input row(s) but {rows} are stored (rows were lost, added "
            "or moved behind the store's back)"
        )
    return None


def quarantine_refused(runtime_id: str, why: str) -> Corrupt:
    """The ``Corrupt`` a store's ``quarantine_row`` raises for :func:`quarantine_refusal`."""
    return Corrupt(
        runtime_id,
        f"quarantine_row: {why}; nothing was moved: quarantine cannot tell which rows are missing or extra, "
        "so the session cannot be repaired row by row (restore the file from a backup; "
        "`meerkat-runtime check PATH` lists what disagrees)",
    )


def counters_payload(counters: tuple[int, ...]) -> bytes:
    """The stored form of a mark's counters, as its row checksum covers it."""
    return ",".join(map(str, counters)).encode()


def disagreements(mark: HighWater | None, observed: dict[str, int]) -> list[str]:
    """One line per counter in ``observed`` that differs from the mark (a missing mark counts 0)."""
    found: list[str] = []
    for name, seen in observed.items():
        expected = 0 if mark is None else getattr(mark, name)
        if expected != seen:
            found.append(f"{name}: the mark says {expected}, the store returned {seen}")
    return found


SQLITE_ADVICE = "`meerkat-runtime check PATH` lists what disagrees"
"""What to run on an SQLite file whose marks disagree with its rows."""

POSTGRES_ADVICE = (
    "`diagnose_session(store, SESSION)` lists what disagrees (`meerkat-runtime check` reads SQLite files only)"
)
"""What to run on a PostgreSQL store whose marks disagree with its rows."""

ANY_STORE_ADVICE = f"an SQLite file: {SQLITE_ADVICE}; another store: {POSTGRES_ADVICE}"
"""The advice when the store is not known (the runtime's recovery compares for every store)."""

OLDER_WRITER = (
    "rows were added behind the store's back: most often a worker of an older release that writes no high-water "
    "marks (SQLite schema version 3 or older, PostgreSQL schema version 1) kept writing after the store was "
    "upgraded (stop it: its rows are intact but the marks do not count them), else a damaged page, index or log. "
    "No command accepts the rows: restore the store from a backup (the inputs written since are lost)"
)
"""Why a mark counts fewer rows than are stored."""

LOST_ROWS = "rows were lost or added behind the store's back (a damaged page, index or log)"
"""Why a mark disagrees with the rows otherwise."""


def mark_cause(mark: HighWater | None, observed: dict[str, int]) -> str:
    """Why ``observed`` counts disagree with ``mark``: :data:`OLDER_WRITER` when every counter
    that differs found more rows than the mark counts (and a mark is stored), else
    :data:`LOST_ROWS`."""
    if mark is None:
        return LOST_ROWS
    differing = [(getattr(mark, name), seen) for name, seen in observed.items() if getattr(mark, name) != seen]
    if differing and all(seen > expected for expected, seen in differing):
        return OLDER_WRITER
    return LOST_ROWS


def check_marks(
    runtime_id: str, mark: HighWater | None, observed: dict[str, int], what: str, advice: str = ANY_STORE_ADVICE
) -> None:
    """Raise ``Corrupt`` naming every counter of ``observed`` that disagrees with ``mark``, its
    likely cause (:func:`mark_cause`) and ``advice`` (what to run on this store)."""
    found = disagreements(mark, observed)
    if not found:
        return
    cause = mark_cause(mark, observed)
    if mark is None:
        found.insert(0, "no high-water mark is stored although rows are")
    raise Corrupt(runtime_id, f"{what} disagrees with the high-water mark ({'; '.join(found)}): {cause}; {advice}")


def compare_session(runtime_id: str, mark: HighWater | None, *, lifecycle: bool, inputs: int) -> None:
    """What session recovery loaded (the lifecycle record or not, ``inputs`` rows) against the mark."""
    check_marks(runtime_id, mark, {"lifecycles": int(lifecycle), "inputs": inputs}, "session recovery")


def compare_ops(runtime_id: str, mark: HighWater | None, *, snapshot: bool, records: int) -> None:
    """What ops recovery loaded (the snapshot or not, ``records`` journal records) against the mark."""
    check_marks(runtime_id, mark, {"ops_snapshots": int(snapshot), "ops_records": records}, "ops recovery")
