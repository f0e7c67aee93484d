"""Rejection kinds. Each equals the ``kind`` of the runtime error raised in the same case,
so the conformance harness compares model and runtime one to one."""

from __future__ import annotations

# operation registry
NOT_FOUND = "not_found"
ALREADY_REGISTERED = "already_registered"
INVALID_TRANSITION = "invalid_transition"
MAX_CONCURRENT_EXCEEDED = "max_concurrent_exceeded"
PEER_NOT_EXPECTED = "peer_not_expected"
ALREADY_PEER_READY = "already_peer_ready"
WAIT_ALREADY_ACTIVE = "wait_already_active"
DUPLICATE_WAIT_OPERATION = "duplicate_wait_operation"
INTERNAL = "internal"
PERSISTENCE_FAILED = "persistence_failed"

# sessions and the runtime driver
NOT_READY = "not_ready"
DESTROYED = "destroyed"
SESSION_NOT_FOUND = "session_not_found"
INPUT_NOT_FOUND = "input_not_found"
VALIDATION_FAILED = "validation_failed"
RECOVERY_CORRUPTION = "recovery_corruption"
INVALID_RUNTIME_TRANSITION = "invalid_runtime_transition"
DURABLE_WRITE_FAILED = "durable_write_failed"
EXECUTOR_START_FAILED = "executor_start_failed"

# ownership (several workers on one store)
LEASE_HELD = "lease_held"
OWNERSHIP_LOST = "ownership_lost"
