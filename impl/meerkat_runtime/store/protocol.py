"""The ``RuntimeStore`` protocol: what the runtime needs from durable storage.

Contract for every implementation:

* Every method is keyed by the canonical runtime id (``rt:session:<id>``); runtimes are
  isolated from each other.
* A method that returns normally has made its write durable (as durable as the store's
  documented setting). A method that raises has changed nothing: multi-row writes are one
  transaction.
* Errors are ``meerkat_runtime.vocab.errors`` store errors naming the runtime id and what
  failed: ``WriteFailed``, ``ReadFailed``, ``Corrupt`` (a damaged row fails closed),
  ``VersionMismatch`` (a schema or record version the store does not know).
* A boundary receipt is unique per ``(runtime_id, run_id, sequence)``; a duplicate is a
  ``WriteFailed`` and rolls back the whole ``atomic_apply``. Sequences are unsigned 64-bit
  integers (``0 .. 2**64 - 1``).
* ``persist_ops_lifecycle`` drops every record appended before it for that runtime (the
  snapshot covers them); records appended after it are returned after the snapshot.
* Methods are synchronous and safe to call from several threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from meerkat_runtime.store.records import BoundaryReceipt, InputRow, OpsLifecycleRecords


@runtime_checkable
class RuntimeStore(Protocol):
    # --- inputs ---------------------------------------------------------------------------
    def persist_input_state(self, runtime_id: str, row: InputRow) -> None:
        """Upsert one input row (durable-before-ack on accept)."""
        ...

    def load_input_states(self, runtime_id: str) -> list[InputRow]:
        """Every input row of the runtime, ordered by input id."""
        ...

    # --- run boundaries -------------------------------------------------------------------
    def atomic_apply(
        self,
        runtime_id: str,
        *,
        session_snapshot: bytes | None,
        receipt: BoundaryReceipt,
        rows: Sequence[InputRow],
    ) -> None:
        """In one transaction: replace the session snapshot (if given), insert the receipt
        (duplicate -> ``WriteFailed``), upsert every row."""
        ...

    def load_boundary_receipt(self, runtime_id: str, run_id: str, sequence: int) -> BoundaryReceipt | None: ...

    def load_session_snapshot(self, runtime_id: str) -> bytes | None: ...

    # --- machine lifecycle ----------------------------------------------------------------
    def commit_machine_lifecycle(self, runtime_id: str, lifecycle: bytes, rows: Sequence[InputRow]) -> None:
        """In one transaction: replace the lifecycle record and upsert every row."""
        ...

    def load_machine_lifecycle(self, runtime_id: str) -> bytes | None: ...

    # --- operation registry ---------------------------------------------------------------
    def append_ops_record(self, runtime_id: str, record: bytes) -> None:
        """Append one terminal-transition record: O(1) in the registry's size."""
        ...

    def persist_ops_lifecycle(self, runtime_id: str, snapshot: bytes) -> None:
        """Replace the full snapshot and drop the appended records it covers (compaction),
        in one transaction."""
        ...

    def load_ops_lifecycle(self, runtime_id: str) -> OpsLifecycleRecords | None:
        """The snapshot and the records appended since, or ``None`` if nothing is stored."""
        ...

    def delete_ops_lifecycle(self, runtime_id: str) -> None: ...

    # --- housekeeping ---------------------------------------------------------------------
    def close(self) -> None:
        """Release resources. Calls after ``close`` raise ``WriteFailed``/``ReadFailed``."""
        ...
