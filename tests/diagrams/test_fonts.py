"""Portable fonts: the SVG asks for the layout font first, then only fallbacks that are not wider."""

from __future__ import annotations

from meerkat_model.diagrams import find_renderer
from meerkat_model.diagrams.style import FONT, FONT_STACKS, MONO_FONT
from meerkat_model.diagrams.svg import portable_fonts


def test_layout_fonts_become_their_stacks() -> None:
    svg = '<text font-family="Verdana" x="1">a</text><text font-family="Courier New">b</text>'
    out = portable_fonts(svg)
    assert f'font-family="{FONT_STACKS[FONT]}"' in out
    assert f'font-family="{FONT_STACKS[MONO_FONT]}"' in out
    assert 'font-family="Verdana"' not in out


def test_other_fonts_are_left_alone() -> None:
    svg = '<text font-family="Times,serif">a</text>'
    assert portable_fonts(svg) == svg


def test_every_stack_starts_with_its_layout_font_and_ends_generic() -> None:
    for font, stack in FONT_STACKS.items():
        families = [f.strip().strip("'") for f in stack.split(",")]
        assert families[0] == font
        assert families[-1] in ("sans-serif", "monospace")


def test_rendered_svg_uses_the_stack_and_no_font_the_layout_did_not_measure() -> None:
    dot = f'digraph {{ node [fontname="{FONT}"]; a [label="terminate_owner"]; }}'
    svg = find_renderer().render_svg(dot, diagram="t")
    assert f'font-family="{FONT_STACKS[FONT]}"' in svg
    assert "Helvetica" not in svg and "Times" not in svg
