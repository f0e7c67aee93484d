"""The run in flight of one session: its id and its contributing inputs."""

from __future__ import annotations

from dataclasses import dataclass, field

from meerkat_runtime.session.core.ledger import InputRecord
from meerkat_runtime.vocab.ids import InputId, RunId


@dataclass(frozen=True, slots=True)
class CurrentRun:
    run_id: RunId
    input_ids: tuple[InputId, ...]
    staged_from: tuple[InputRecord, ...] = field(default=(), compare=False, repr=False)
    """Copies of the contributors as they were before staging (what the store still holds)."""
