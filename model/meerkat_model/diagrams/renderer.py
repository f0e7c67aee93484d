"""Finding and running an SVG renderer for DOT text.

Preferred renderer: ``graphviz-pure`` (a pure-Rust port of Graphviz' ``dot`` installed from the
package registry with the project's ``verify`` extra; same output on every platform). A system
Graphviz ``dot`` is accepted as a fallback. Search order: an explicit path, the ``MEERKAT_DOT``
environment variable, ``graphviz-pure`` next to the running interpreter (the virtual
environment's ``bin``), ``graphviz-pure`` on ``PATH``, ``dot`` on ``PATH``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from meerkat_model.diagrams.errors import RendererNotFoundError, RenderFailedError
from meerkat_model.diagrams.svg import portable_fonts

ENV_VAR = "MEERKAT_DOT"
DEFAULT_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True)
class Renderer:
    """An executable that reads DOT on stdin and writes SVG with ``-Tsvg``."""

    path: str

    @property
    def name(self) -> str:
        return Path(self.path).name

    def render_svg(self, dot: str, *, diagram: str, timeout: float = DEFAULT_TIMEOUT, strict: bool = True) -> str:
        """The SVG of ``dot``, its layout fonts replaced by portable stacks (:func:`portable_fonts`).
        Raises :class:`RenderFailedError` on a non-zero exit, a timeout, output that is not SVG, or
        (``strict``) any warning printed by the layout."""
        try:
            done = subprocess.run(
                [self.path, "-Tsvg"], input=dot.encode(), capture_output=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise RenderFailedError(diagram, self.path, f"no result within {timeout:g} s") from None
        except OSError as exc:
            raise RenderFailedError(diagram, self.path, f"could not run it: {exc}") from exc
        stderr = done.stderr.decode(errors="replace").strip()
        if done.returncode != 0:
            raise RenderFailedError(diagram, self.path, f"exit status {done.returncode}: {stderr or '(no message)'}")
        if strict and stderr:
            raise RenderFailedError(diagram, self.path, f"the layout printed warnings: {stderr}")
        svg = done.stdout.decode()
        if "<svg" not in svg:
            raise RenderFailedError(diagram, self.path, "the output is not SVG")
        return portable_fonts(svg)


def _candidates(explicit: str | None, env: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """(description, resolved path or None) in search order."""
    found: list[tuple[str, str | None]] = []
    if explicit:
        found.append((f"--renderer {explicit}", shutil.which(explicit)))
        return found
    if env.get(ENV_VAR):
        found.append((f"{ENV_VAR}={env[ENV_VAR]}", shutil.which(env[ENV_VAR])))
        return found
    beside = Path(sys.executable).parent / "graphviz-pure"
    found.append((str(beside), str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None))
    search_path = env.get("PATH", "")
    found.append(("graphviz-pure on PATH", shutil.which("graphviz-pure", path=search_path)))
    found.append(("dot on PATH", shutil.which("dot", path=search_path)))
    return found


def find_renderer(explicit: str | None = None, env: Mapping[str, str] | None = None) -> Renderer:
    """The first available renderer (see the module docstring), or :class:`RendererNotFoundError`
    listing everything tried and how to get one. An explicit choice is never replaced by another."""
    candidates = _candidates(explicit, os.environ if env is None else env)
    for _, path in candidates:
        if path is not None:
            return Renderer(path)
    raise RendererNotFoundError([description for description, _ in candidates])
