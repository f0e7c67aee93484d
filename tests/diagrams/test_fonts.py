"""Portable fonts: the SVG asks for the layout font first, then only fallbacks that are not wider."""

from __future__ import annotations

from meerkat_model.diagrams import find_renderer
from meerkat_model.diagrams.style import FONT, FONT_STACKS, MONO_FONT, TEXT_SLACK
from meerkat_model.diagrams.svg import portable_fonts


def test_layout_fonts_become_their_stacks_at_a_slightly_smaller_size() -> None:
    svg = '<text font-family="Verdana" x="1" font-size="10.70">a</text><text font-family="Courier New">b</text>'
    out = portable_fonts(svg)
    assert f'<text font-family="{FONT_STACKS[FONT]}" x="1" font-size="10.00">a</text>' in out
    assert f'<text font-family="{FONT_STACKS[MONO_FONT]}">b</text>' in out
    assert 'font-family="Verdana"' not in out
    assert TEXT_SLACK > 1.04  # DejaVu Sans' "c" is 4% wider than Verdana's


def test_other_fonts_and_other_elements_are_left_alone() -> None:
    svg = '<text font-family="Times,serif" font-size="10.00">a</text><g font-family="Verdana" font-size="10.00"/>'
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
