"""Which optional extra a command needs, and a one-line hint when it is not installed.

``meerkat_runtime`` needs nothing beyond the standard library; the commands need extras:
``meerkat-verify`` and ``meerkat-render`` the ``verify`` extra, ``meerkat-conformance`` the
``conformance`` extra. A command calls :func:`require_extra` after parsing its arguments (so
``--help`` and usage errors work without extras) and before importing anything from the extra.
"""

from __future__ import annotations

import importlib.util

from meerkat_model.cli.usage import UsageError

DISTRIBUTION = "meerkat-lifecycle"

EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "verify": ("z3", "networkx"),
    "conformance": ("hypothesis", "networkx"),
    "postgres": ("psycopg", "psycopg_pool"),
}
"""The importable modules each extra brings (what the commands import from it)."""


class MissingExtraError(UsageError):
    """A module of an optional extra is not installed; the message names the ``pip install``."""

    see_help = False


def missing_modules(modules: tuple[str, ...]) -> list[str]:
    """The names in ``modules`` that cannot be imported here."""
    missing = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def install_hint(extra: str) -> str:
    """The command that installs ``extra``."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


def require_extra(extra: str, modules: tuple[str, ...] | None = None) -> None:
    """Raise :class:`MissingExtraError` when a module of ``extra`` (or of ``modules``) is missing."""
    wanted = EXTRA_MODULES[extra] if modules is None else modules
    missing = missing_modules(wanted)
    if missing:
        raise MissingExtraError(
            f"the {extra!r} extra is not installed (missing: {', '.join(missing)}); install it with: "
            f"{install_hint(extra)}"
        )
