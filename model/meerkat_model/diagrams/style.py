"""Colours, fonts and sizes shared by every diagram (one place to restyle them)."""

from __future__ import annotations

# Text must fit its box in every browser. The layout measures text with the metrics of the font
# named in the DOT; the SVG then asks for a stack of fallbacks. Verdana is the widest common
# sans-serif whose metrics the layout knows; its stand-ins (DejaVu Sans on Linux, the generic
# sans-serif elsewhere) are narrower on average, but not every letter is (DejaVu's "c" is 4% wider,
# "e" 2%) and small text is placed on whole pixels. So the SVG sets every text TEXT_SLACK smaller
# than the layout measured it: a fallback up to 7% wider still fits its box.
FONT = "Verdana"
MONO_FONT = "Courier New"
FONT_STACKS = {
    FONT: "Verdana, 'DejaVu Sans', 'Bitstream Vera Sans', sans-serif",
    MONO_FONT: "'Courier New', Courier, 'Liberation Mono', 'DejaVu Sans Mono', monospace",
}
TEXT_SLACK = 1.07
GUARD_WRAP = 34

LIFECYCLE_COLOURS = {
    "active": "#e3eefb",
    "terminal": "#e6e6e6",
    "self_loop": "#5a6b7d",
    "runtime": "#1f5c99",
    "to_terminal": "#444444",
}

# Fill colours given to phases of a reachable-state graph, in order of first use (the phases are
# sorted, so the same phase set always gets the same colours).
PHASE_PALETTE = (
    "#cfe3f7",
    "#d7efcf",
    "#fbe3c4",
    "#e5d7f2",
    "#f9d6e4",
    "#d3f0ee",
    "#f4f1c2",
    "#e1e1e1",
    "#c9d7f0",
    "#efd9c9",
    "#dbe8c4",
    "#f0c9d0",
)
VIOLATION_FILL = "#ff4d4d"
VIOLATION_BORDER = "#b00000"
INITIAL_BORDER = "#1f3b73"
TRACE_FILL = "#f7f7f7"
TRACE_VIOLATION_FILL = "#ffd0d0"
