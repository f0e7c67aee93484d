"""SVG text handling: portable font stacks, the provenance marker of an SVG file and inlining SVG
into HTML."""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Mapping

from meerkat_model.diagrams.style import FONT_STACKS

MARKER_PREFIX = "<!-- meerkat-render dot-sha256: "
_MARKER = re.compile(r"<!-- meerkat-render dot-sha256: ([0-9a-f]{64}) -->")
_PROLOGUE = re.compile(r"\A(?:\s*(?:<\?xml[^>]*\?>|<!DOCTYPE[^>]*>|<!--.*?-->))*\s*", re.DOTALL)
_ID_ATTR = re.compile(r'\bid="([^"]*)"')
_ID_REF = re.compile(r"(url\(#|xlink:href=\"#|href=\"#)([^)\"]*)")
_FONT_FAMILY = re.compile(r'font-family="([^"]*)"')


def portable_fonts(svg: str, stacks: Mapping[str, str] = FONT_STACKS) -> str:
    """``svg`` with each ``font-family`` that names a layout font (the first family of the
    attribute) replaced by its stack of no-wider fallbacks (:data:`style.FONT_STACKS`)."""

    def replace(match: re.Match[str]) -> str:
        first = match.group(1).split(",", 1)[0].strip().strip("'\"")
        stack = stacks.get(first)
        return (
            match.group(0)
            if stack is None
            else f'font-family="{html.escape(stack, quote=False).replace(chr(34), "&quot;")}"'
        )

    return _FONT_FAMILY.sub(replace, svg)


def dot_digest(dot: str) -> str:
    """The SHA-256 of a DOT text: ties an SVG file and the HTML page to the DOT they came from."""
    return hashlib.sha256(dot.encode()).hexdigest()


def mark_svg(svg: str, digest: str) -> str:
    """``svg`` with a comment naming the digest of its DOT source, placed before ``<svg``."""
    start = svg.index("<svg")
    return f"{svg[:start]}{MARKER_PREFIX}{digest} -->\n{svg[start:]}"


def svg_digest(svg: str) -> str | None:
    """The DOT digest recorded by :func:`mark_svg`, or ``None`` when the SVG has none."""
    match = _MARKER.search(svg)
    return match.group(1) if match else None


def inline_svg(svg: str, id_prefix: str) -> str:
    """``svg`` ready to embed in HTML: XML prologue, doctype and leading comments removed, and
    every ``id`` (and reference to one) prefixed so several SVGs can share one page."""
    body = _PROLOGUE.sub("", svg, count=1)
    body = _ID_ATTR.sub(lambda m: f'id="{id_prefix}{m.group(1)}"', body)
    return _ID_REF.sub(lambda m: f"{m.group(1)}{id_prefix}{m.group(2)}", body).strip()
