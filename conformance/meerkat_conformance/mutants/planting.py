"""Planting a mutant: a copy of the ``meerkat_runtime`` package with one patch applied.

The copy goes into a directory put first on ``PYTHONPATH`` of the processes that test it, so
the project's own files are never touched (an interrupted run leaves nothing behind).
"""

from __future__ import annotations

import difflib
import py_compile
import shutil
from pathlib import Path

import meerkat_runtime

from meerkat_conformance.mutants.catalog import MUTANTS, Mutant


class CatalogError(ValueError):
    """A mutant does not apply to the runtime as it is (its ``before`` is missing or
    ambiguous, or the patched file does not compile); the message names the mutant."""


def runtime_root() -> Path:
    """The directory of the installed ``meerkat_runtime`` package."""
    return Path(meerkat_runtime.__file__).resolve().parent


def patched_text(mutant: Mutant, root: Path | None = None) -> tuple[str, str]:
    """``(original, patched)`` text of the mutant's file. Raises :class:`CatalogError`."""
    path = (root or runtime_root()) / mutant.path
    if not path.is_file():
        raise CatalogError(f"mutant {mutant.id}: no file {mutant.path} in meerkat_runtime")
    text = path.read_text(encoding="utf-8")
    count = text.count(mutant.before)
    if count != 1:
        raise CatalogError(f"mutant {mutant.id}: its code occurs {count} times in {mutant.path} (expected once)")
    return text, text.replace(mutant.before, mutant.after)


def diff(mutant: Mutant, root: Path | None = None) -> str:
    """The mutant as a unified diff against the runtime's file."""
    original, patched = patched_text(mutant, root)
    name = f"meerkat_runtime/{mutant.path}"
    lines = difflib.unified_diff(
        original.splitlines(keepends=True), patched.splitlines(keepends=True), f"a/{name}", f"b/{name}"
    )
    return "".join(lines)


def plant(mutant: Mutant, into: Path, root: Path | None = None) -> Path:
    """Copy ``meerkat_runtime`` into ``into`` with ``mutant`` applied; return ``into`` (the
    directory to put on ``PYTHONPATH``). Raises :class:`CatalogError`."""
    source = root or runtime_root()
    _, patched = patched_text(mutant, source)
    target = into / "meerkat_runtime"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    mutated = target / mutant.path
    mutated.write_text(patched, encoding="utf-8")
    try:
        py_compile.compile(str(mutated), doraise=True)
    except py_compile.PyCompileError as exc:
        raise CatalogError(f"mutant {mutant.id}: the patched {mutant.path} does not compile: {exc.msg}") from None
    return into


def check_catalog(mutants: tuple[Mutant, ...] = MUTANTS, root: Path | None = None) -> None:
    """Every mutant applies exactly once and changes its file; ids are unique. Raises
    :class:`CatalogError` naming the first that does not."""
    seen: set[str] = set()
    for mutant in mutants:
        if mutant.id in seen:
            raise CatalogError(f"mutant {mutant.id}: the id is used twice")
        seen.add(mutant.id)
        original, patched = patched_text(mutant, root)
        if original == patched:
            raise CatalogError(f"mutant {mutant.id}: the patch changes nothing")
        try:
            compile(patched, mutant.path, "exec")
        except SyntaxError as exc:
            raise CatalogError(f"mutant {mutant.id}: the patched {mutant.path} does not compile: {exc}") from None
