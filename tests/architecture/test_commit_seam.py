"""Every durable write of the runtime goes through one function per package: the session's
``commit`` seam (``session/commit.py``, which alone calls ``SessionPersistence.persist``, which
alone calls the store's write methods) and the registry's ``OpsLifecycleRegistry._commit``
(which alone calls a sink's ``persist``). Leases are claimed, renewed and released only by the
session claim registry (``session/claims.py``)."""

from __future__ import annotations

import ast
from pathlib import Path

import meerkat_runtime

ROOT = Path(meerkat_runtime.__file__).parent
STORE_WRITES = {"persist_input_state", "commit_machine_lifecycle", "atomic_apply"}
LEASE_CALLS = {"claim_lease", "renew_lease", "release_lease"}


def _receiver(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _callers(package: str, method: str, receiver: str | None = None) -> set[str]:
    """``module:function`` of every call ``<x>.<method>(...)`` under ``package`` (with ``x``
    named ``receiver`` when given)."""
    found: set[str] = set()
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(func):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                    continue
                if node.func.attr == method and receiver in (None, _receiver(node.func.value)):
                    found.add(f"{path.relative_to(ROOT).as_posix()}:{func.name}")
    return found


def test_only_the_commit_seam_persists_session_plans() -> None:
    # the composition dispatcher's compensating write (policy "restore") lives in the seam too
    assert _callers("session", "persist") == {"session/commit.py:commit", "session/commit.py:_restore"}


def test_only_session_persistence_calls_the_store_writes() -> None:
    for method in STORE_WRITES:
        assert {c.split(":")[0] for c in _callers("session", method)} == {"session/persistence.py"}, method


def test_only_the_registry_commit_calls_the_sink() -> None:
    assert _callers("ops", "persist") == {"ops/registry.py:_commit"}


def test_only_apply_installs_a_session_plan() -> None:
    assert _callers("session", "apply", receiver="core") == {
        "session/commit.py:install",
        "session/commit.py:_install_dispatching",
    }


def test_only_the_registry_commit_applies_an_ops_plan() -> None:
    assert _callers("ops", "apply", receiver="_core") == {"ops/registry.py:_commit"}


def test_only_the_claim_registry_claims_renews_and_releases_leases() -> None:
    # one module per package: the machine's claims, and the lease of an open_durable_ops registry
    for method in LEASE_CALLS:
        assert {c.split(":")[0] for c in _callers("session", method)} == {"session/claims.py"}, method
        assert {c.split(":")[0] for c in _callers("ops", method)} == {"ops/lease.py"}, method
