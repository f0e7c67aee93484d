"""The production runtime depends on nothing but the standard library and itself."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import meerkat_runtime

from tests.import_boundary import check_package

RUNTIME_ROOT = Path(meerkat_runtime.__file__).parent


def test_runtime_imports_only_stdlib_and_itself() -> None:
    violations = check_package(RUNTIME_ROOT, "meerkat_runtime")
    assert violations == [], "\n".join(str(v) for v in violations)


def test_checker_catches_a_model_import(tmp_path: Path) -> None:
    pkg = tmp_path / "meerkat_runtime"
    (pkg / "store").mkdir(parents=True)
    (pkg / "ok.py").write_text("import json\nfrom meerkat_runtime.vocab import ids\n")
    (pkg / "bad.py").write_text(
        textwrap.dedent(
            """
            import os
            from meerkat_model.machine import Stepped
            import importlib
            importlib.import_module("meerkat_conformance")
            import networkx
            """
        )
    )
    (pkg / "store" / "postgres_store.py").write_text("import psycopg\n")
    (pkg / "store" / "sqlite_store.py").write_text("import psycopg\n")
    (pkg / "events").mkdir()
    (pkg / "events" / "otel.py").write_text("from opentelemetry import trace\n")
    (pkg / "events" / "jsonl.py").write_text("from opentelemetry import trace\nimport psycopg\n")
    found = {(v.path.name, v.module) for v in check_package(pkg, "meerkat_runtime")}
    assert found == {
        ("bad.py", "meerkat_model.machine"),
        ("bad.py", "meerkat_conformance"),
        ("bad.py", "networkx"),
        ("sqlite_store.py", "psycopg"),
        ("jsonl.py", "opentelemetry"),
        ("jsonl.py", "psycopg"),
    }


def test_every_runtime_module_imports_with_model_and_harness_blocked() -> None:
    """Import every runtime module in a fresh interpreter where the model, the harness and
    the third-party packages of the extras cannot be imported at all."""
    script = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        BLOCKED = {"meerkat_model", "meerkat_conformance", "networkx", "z3", "hypothesis", "graphviz", "opentelemetry"}
        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError("blocked by the import-boundary test: " + name)
                return None
        sys.meta_path.insert(0, Blocker())
        import meerkat_runtime
        for info in pkgutil.walk_packages(meerkat_runtime.__path__, "meerkat_runtime."):
            if ".store.postgres" in info.name:
                continue
            importlib.import_module(info.name)
        print("imported", len(sys.modules))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "imported" in proc.stdout
