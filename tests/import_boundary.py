"""Static check of what a package imports: used to keep ``meerkat_runtime`` standard-library only."""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

FORBIDDEN_PACKAGES = frozenset({"meerkat_model", "meerkat_conformance"})
# Modules behind an optional extra may import that extra's packages (the PostgreSQL store its
# driver, the OpenTelemetry subscriber opentelemetry); nothing else may leave the stdlib.
OPTIONAL_EXTRA_IMPORTS: dict[str, frozenset[str]] = {
    "store/postgres": frozenset({"psycopg", "psycopg_pool"}),
    "events/otel": frozenset({"opentelemetry"}),
}


@dataclass(frozen=True)
class Violation:
    path: Path
    line: int
    module: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: imports {self.module!r} ({self.why})"


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def check_package(root: Path, own_package: str) -> list[Violation]:
    """Every import under ``root`` that is neither stdlib nor the package itself."""
    violations: list[Violation] = []
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, module in _imported_modules(tree):
            top = module.split(".")[0]
            optional_backend = any(
                rel.startswith(prefix) and top in allowed for prefix, allowed in OPTIONAL_EXTRA_IMPORTS.items()
            )
            if top in FORBIDDEN_PACKAGES:
                violations.append(Violation(path, line, module, "the runtime never imports the model or harness"))
            elif top != own_package and top not in stdlib and not optional_backend:
                violations.append(Violation(path, line, module, "not in the standard library"))
    return violations
