"""SVG text handling: portable font stacks, the provenance marker of an SVG file and inlining SVG
into HTML."""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Mapping

from meerkat_model.diagrams.style import FONT_STACKS, TEXT_SLACK

MARKER_PREFIX = "<!-- meerkat-render dot-sha256: "
_MARKER = re.compile(r"<!-- meerkat-render dot-sha256: ([0-9a-f]{64}) -->")
_PROLOGUE = re.compile(r"\A(?:\s*(?:<\?xml[^>]*\?>|<!DOCTYPE[^>]*>|<!--.*?-->))*\s*", re.DOTALL)
_ID_ATTR = re.compile(r'\bid="([^"]*)"')
_ID_REF = re.compile(r"(url\(#|xlink:href=\"#|href=\"#)([^)\"]*)")
_TEXT_TAG = re.compile(r"<text\b[^>]*>")
_FONT_FAMILY = re.compile(r'font-family="([^"]*)"')
_FONT_SIZE = re.compile(r'font-size="([0-9.]+)"')


def portable_fonts(svg: str, stacks: Mapping[str, str] = FONT_STACKS, slack: float = TEXT_SLACK) -> str:
    """``svg`` with each text set in a layout font (the first family of its ``font-family``)
    asking for that font's stack of fallbacks (:data:`style.FONT_STACKS`) at its size divided
    by ``slack``: a fallback up to that much wider than the font the layout measured still fits
    (:data:`style.TEXT_SLACK`). Other texts are left alone."""

    def text(tag: re.Match[str]) -> str:
        family = _FONT_FAMILY.search(tag.group(0))
        first = family.group(1).split(",", 1)[0].strip().strip("'\"") if family else ""
        stack = stacks.get(first)
        if stack is None:
            return tag.group(0)
        escaped = html.escape(stack, quote=False).replace('"', "&quot;")
        out = _FONT_FAMILY.sub(lambda _: f'font-family="{escaped}"', tag.group(0))
        return _FONT_SIZE.sub(lambda m: f'font-size="{float(m.group(1)) / slack:.2f}"', out)

    return _TEXT_TAG.sub(text, svg)


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
