"""Two processes writing one runtime's ops state (``open_durable_ops(..., session_id="shared")``,
the quick start's call) at the same time, on one store: the child process and the check.

Child: ``python -m tests.runtime_ops.dual_writer ROLE sqlite PATH`` or ``... ROLE postgres DSN
SCHEMA``. It opens the registry and prints ``{"opened": bool, "error": kind}``, waits for a line
on stdin, completes ``<ROLE>-i`` and ``same-i`` (i < 5) with the result ``by-<ROLE>``, prints
``{"acked": {id: content}}`` and exits at the end of stdin (without closing: as a crash would).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence

from meerkat_runtime.ops.recovery import load_persisted_ops, open_durable_ops
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.vocab.errors import MeerkatError
from meerkat_runtime.vocab.ids import OperationId, canonical_runtime_id
from meerkat_runtime.vocab.operation import Completed, OperationKind, OperationResult, OperationSpec

SESSION = "shared"
RT = canonical_runtime_id(SESSION)


def open_store(args: Sequence[str]) -> RuntimeStore:
    """``sqlite PATH`` or ``postgres DSN SCHEMA``."""
    if args[0] == "sqlite":
        from meerkat_runtime.store.sqlite import SqliteRuntimeStore

        return SqliteRuntimeStore(args[1])
    from meerkat_runtime.store.postgres import PostgresRuntimeStore

    return PostgresRuntimeStore(args[1], schema=args[2])


def _emit(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def child(role: str, store_args: Sequence[str]) -> None:
    store = open_store(store_args)
    try:
        ops = open_durable_ops(store, RT, session_id=SESSION)
    except MeerkatError as exc:
        _emit({"opened": False, "error": exc.kind, "type": type(exc).__name__})
        ops = None
    else:
        _emit({"opened": True})
    sys.stdin.readline()
    acked: dict[str, str] = {}
    errors: list[str] = []
    if ops is not None:
        for i in range(5):
            for oid in (OperationId(f"{role}-{i}"), OperationId(f"same-{i}")):
                try:
                    ops.registry.register_operation(OperationSpec(oid, OperationKind.BACKGROUND_TOOL_OP, SESSION, oid))
                    ops.registry.provisioning_succeeded(oid)
                    ops.registry.complete_operation(oid, OperationResult(oid, f"by-{role}"))
                except MeerkatError as exc:
                    errors.append(f"{oid}: {type(exc).__name__}")
                else:
                    acked[oid] = f"by-{role}"
    _emit({"acked": acked, "errors": errors})
    sys.stdin.read()


def run_two_writers(store_args: Sequence[str], reopen: Callable[[], RuntimeStore]) -> list[dict[str, object]]:
    """Start writers ``X`` and ``Y`` (``X`` opens first), let both write at once, and check
    that every completion acknowledged to either is in the state the store holds, with the
    acknowledged result. Returns each writer's reports (open, then writes)."""
    procs = []
    reports: list[dict[str, object]] = []
    try:
        for role in ("X", "Y"):
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.runtime_ops.dual_writer", role, *store_args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            procs.append(proc)
            assert proc.stdout is not None and proc.stdin is not None
            reports.append(json.loads(proc.stdout.readline()))
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc, report in zip(procs, reports, strict=True):
            assert proc.stdout is not None
            report.update(json.loads(proc.stdout.readline()))
    finally:
        for proc in procs:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=60)
    acked: dict[str, str] = {}
    for report in reports:
        for oid, content in dict(report.get("acked", {})).items():  # type: ignore[call-overload]
            assert acked.setdefault(oid, content) == content, f"{oid} acknowledged to both writers: {reports}"
    store = reopen()
    try:
        persisted = load_persisted_ops(store, RT)  # SnapshotFormatError: the state is unreadable
    finally:
        store.close()
    assert persisted is not None
    stored: dict[str, str] = {
        op.spec.id: op.terminal_outcome.result.content
        for op in persisted.operations
        if isinstance(op.terminal_outcome, Completed)
    }
    assert {oid: stored.get(oid) for oid in acked} == acked, reports
    return reports


if __name__ == "__main__":
    child(sys.argv[1], sys.argv[2:])
