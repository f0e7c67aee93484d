"""Every runtime a store holds, summarised: lifecycle state, inputs per status, quarantine, lease."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from meerkat_runtime.inspection.inputs import session_inputs
from meerkat_runtime.session.row_codec import RowFormatError, decode_lifecycle
from meerkat_runtime.store.lease import Lease
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.vocab.errors import StoreError
from meerkat_runtime.vocab.ids import session_id_of


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """One runtime of a store. ``state`` is the stored lifecycle phase (``None``: no lifecycle
    record was ever written; ``"unreadable"``: see ``problems``)."""

    runtime_id: str
    session_id: str
    state: str | None
    inputs: dict[str, int] = field(default_factory=dict)
    """Input rows per status (``damaged`` / ``unreadable`` for rows that cannot be read)."""
    quarantined: int = 0
    lease: Lease | None = None
    problems: tuple[str, ...] = ()

    @property
    def input_count(self) -> int:
        return sum(self.inputs.values())


def _state(store: RuntimeStore, runtime_id: str, problems: list[str]) -> str | None:
    try:
        data = store.load_machine_lifecycle(runtime_id)
        return None if data is None else decode_lifecycle(data).runtime_state.value
    except (StoreError, RowFormatError) as exc:
        problems.append(f"lifecycle record: {exc}")
        return "unreadable"


def summarize_session(store: RuntimeStore, runtime_id: str) -> SessionSummary:
    """One runtime's summary; a part that cannot be read is named in ``problems``."""
    problems: list[str] = []
    state = _state(store, runtime_id, problems)
    counts: Counter[str] = Counter()
    try:
        counts.update(stored.status for stored in session_inputs(store, runtime_id))
    except StoreError as exc:
        problems.append(f"input rows: {exc}")
    quarantined, lease = 0, None
    try:
        quarantined = len(store.load_quarantined(runtime_id))
        lease = store.load_lease(runtime_id)
    except StoreError as exc:
        problems.append(str(exc))
    return SessionSummary(
        runtime_id,
        session_id_of(runtime_id),
        state,
        dict(sorted(counts.items())),
        quarantined,
        lease,
        tuple(problems),
    )


def summarize_sessions(store: RuntimeStore) -> list[SessionSummary]:
    """Every runtime ``store.list_runtimes()`` names, in its order."""
    return [summarize_session(store, runtime_id) for runtime_id in store.list_runtimes()]
