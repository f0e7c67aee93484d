"""How the runtime names where a rule of the model is implemented: one :class:`RuleBinding`
per declared transition, kept as plain data by each package (``session.transitions``,
``ops.transitions``).

A binding names the *core* method that decides the rule (synchronous, changes nothing but a
plan, or for non-durable ops rules validates then changes the state) and the *shell* function
that drives it (the public API method, or the loop task). Paths are dotted, relative to
``meerkat_runtime``; :func:`resolve` turns one into the object it names.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

PACKAGE = "meerkat_runtime"


@dataclass(frozen=True, slots=True)
class RuleBinding:
    """Where the runtime implements the model's rule ``rule`` (a ``TransitionDecl.name``).

    ``core`` is ``None`` when the rule changes nothing in the core (the shell returns early or
    forgets the whole session); ``note`` then says what happens instead."""

    rule: str
    core: str | None
    shell: str
    note: str = ""


def resolve(path: str) -> object:
    """The object ``path`` names (``"session.core.session_core.SessionCore.accept"``), relative
    to ``meerkat_runtime``. Raises ``LookupError`` naming the part that does not exist."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        module_name = ".".join([PACKAGE, *parts[:split]])
        try:
            target: object = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        for name in parts[split:]:
            try:
                target = getattr(target, name)
            except AttributeError:
                raise LookupError(f"{PACKAGE}.{path}: {name!r} does not exist in {target!r}") from None
        return target
    raise LookupError(f"{PACKAGE}.{path}: no such module")
