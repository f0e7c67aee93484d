"""Finding and running an SVG renderer for DOT text.

Preferred renderer: ``graphviz-pure`` (a pure-Rust port of Graphviz' ``dot`` installed from the
package registry with the project's ``verify`` extra; same output on every platform). A system
Graphviz ``dot`` is accepted as a fallback. Search order: an explicit path, the ``MEERKAT_DOT``
environment variable, ``graphviz-pure`` next to the running interpreter (the virtual
environment's ``bin``), ``graphviz-pure`` on ``PATH``, ``dot`` on ``PATH``.

An explicit choice (the path or ``MEERKAT_DOT``) is never replaced by another: when it names no
executable, or one that does not turn a one-edge DOT graph into SVG (the probe, one short run
doing exactly what rendering does), :class:`RendererUnusableError` says what is wrong with it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from meerkat_model.diagrams.errors import RendererNotFoundError, RendererUnusableError, RenderFailedError
from meerkat_model.diagrams.svg import portable_fonts

ENV_VAR = "MEERKAT_DOT"
DEFAULT_TIMEOUT = 120.0
PROBE_DOT = 'digraph "probe" { "a" -> "b"; }\n'
PROBE_TIMEOUT = 30.0


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


def explicit_choice(explicit: str | None, env: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """The explicit renderer choice as (how it was given, its value): ``--renderer PATH``, else a
    non-empty ``MEERKAT_DOT``; ``None`` when the renderer is to be searched for."""
    env = os.environ if env is None else env
    if explicit:
        return f"--renderer {explicit}", explicit
    if env.get(ENV_VAR):
        return f"{ENV_VAR}={env[ENV_VAR]}", env[ENV_VAR]
    return None


def _resolve_explicit(source: str, value: str, env: Mapping[str, str]) -> str:
    """The executable an explicit choice names, or :class:`RendererUnusableError` saying why not."""
    if os.sep not in value and (os.altsep is None or os.altsep not in value):
        found = shutil.which(value, path=env.get("PATH", os.defpath))
        if found is None:
            raise RendererUnusableError(source, f"no executable {value!r} on PATH")
        return found
    path = Path(value)
    if not path.exists():
        raise RendererUnusableError(source, "no such file")
    if path.is_dir():
        raise RendererUnusableError(source, "is a directory, not an executable")
    if not os.access(path, os.X_OK):
        raise RendererUnusableError(source, "is not executable")
    return value


def probe(renderer: Renderer, source: str) -> None:
    """Check that ``renderer`` turns a one-edge DOT graph into SVG, as rendering will ask it to;
    :class:`RendererUnusableError` naming ``source`` and what went wrong otherwise."""
    try:
        renderer.render_svg(PROBE_DOT, diagram="probe", timeout=PROBE_TIMEOUT, strict=False)
    except RenderFailedError as exc:
        raise RendererUnusableError(
            source, f"does not render DOT to SVG like Graphviz dot ({exc.detail} for a one-edge graph)"
        ) from None


def _candidates(env: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """(description, resolved path or None) in search order, without an explicit choice."""
    found: list[tuple[str, str | None]] = []
    beside = Path(sys.executable).parent / "graphviz-pure"
    found.append((str(beside), str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None))
    search_path = env.get("PATH", "")
    found.append(("graphviz-pure on PATH", shutil.which("graphviz-pure", path=search_path)))
    found.append(("dot on PATH", shutil.which("dot", path=search_path)))
    return found


def find_renderer(explicit: str | None = None, env: Mapping[str, str] | None = None) -> Renderer:
    """The renderer to use (see the module docstring). An explicit choice is never replaced by
    another: it is resolved and probed, and :class:`RendererUnusableError` says what is wrong
    with it. Otherwise the first renderer found, or :class:`RendererNotFoundError` listing
    everything tried and how to get one."""
    env = os.environ if env is None else env
    choice = explicit_choice(explicit, env)
    if choice is not None:
        source, value = choice
        renderer = Renderer(_resolve_explicit(source, value, env))
        probe(renderer, source)
        return renderer
    candidates = _candidates(env)
    for _, path in candidates:
        if path is not None:
            return Renderer(path)
    raise RendererNotFoundError([description for description, _ in candidates])
