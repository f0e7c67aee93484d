"""Names of the row families every built-in store keeps (SQLite table names).

Checksums and error messages name rows as ``table[key]`` with these names, in both stores.
"""

from __future__ import annotations

INPUTS = "runtime_input_states"
RECEIPTS = "runtime_boundary_receipts"
SNAPSHOTS = "runtime_session_snapshots"
LIFECYCLES = "runtime_states"
OPS_SNAPSHOTS = "runtime_ops_lifecycle"
OPS_RECORDS = "runtime_ops_records"
LEASES = "runtime_leases"
HIGH_WATER = "runtime_high_water"
QUARANTINE = "runtime_quarantine"
RECEIPT_INPUTS = "runtime_receipt_inputs"
"""Index of the receipts by contributing input (:mod:`.receipt_retention`); derived, no checksum."""
