"""The ownership model: several workers sharing one durable store (leases and fencing).

Each worker's memory of the session is the session model's memory; the store (lifecycle
record, rows, receipts) is the session model's durable part plus the lease. Semantics:
docs/semantics.md, "Ownership (several workers on one store)". The machine is
:class:`OwnershipMachine` (``meerkat_model.ownership.machine``).
"""

from meerkat_model.ownership.machine import OwnershipMachine

__all__ = ["OwnershipMachine"]
