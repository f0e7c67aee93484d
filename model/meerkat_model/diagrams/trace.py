"""A counterexample (or any) trace drawn as a chain of states.

The first box lists every field of the initial state; each later box lists only the fields the
step changed (``field: old -> new``); edges carry the action label and the declared transition.
When the trace ends in an invariant violation the last box is red and names the invariants.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meerkat_model.diagrams.dot import DotEdge, DotGraph, DotNode, LeftText
from meerkat_model.diagrams.style import FONT, MONO_FONT, TRACE_FILL, TRACE_VIOLATION_FILL, VIOLATION_BORDER
from meerkat_model.diagrams.values import changed_lines, describe_lines


@dataclass(frozen=True, slots=True)
class TraceFrame:
    """One state of a trace and the step that reached it (``action``/``transition`` are
    ``None`` for the initial state)."""

    state: Hashable
    action: str | None = None
    transition: str | None = None


def trace_graph(
    frames: Sequence[TraceFrame],
    *,
    machine: str,
    title: str,
    describe: Callable[[Any], Mapping[str, Any]],
    violation: Sequence[str] = (),
) -> DotGraph:
    """The DOT graph of ``frames`` (at least one); ``violation`` lists the invariant messages of
    the last state, which is then drawn red."""
    if not frames:
        raise ValueError("a trace has at least its initial state")
    descriptions = [describe(frame.state) for frame in frames]
    nodes: list[DotNode] = []
    edges: list[DotEdge] = []
    for index, (frame, description) in enumerate(zip(frames, descriptions, strict=True)):
        if index == 0:
            lines = ["step 0: initial state", *describe_lines(description)]
        else:
            lines = [f"step {index}", *(changed_lines(descriptions[index - 1], description) or ["(no field changed)"])]
        attrs: dict[str, str] = {"fillcolor": TRACE_FILL}
        if index == len(frames) - 1 and violation:
            lines += ["", "VIOLATES:", *violation]
            attrs.update({"fillcolor": TRACE_VIOLATION_FILL, "color": VIOLATION_BORDER, "penwidth": "3"})
        attrs["label"] = LeftText("\n".join(lines))
        nodes.append(DotNode(f"step{index}", attrs))
        if index > 0:
            label = frame.action or "?"
            if frame.transition and label != frame.transition and not label.startswith(f"{frame.transition}("):
                label += f"\n({frame.transition})"  # the declared transition, when the label does not say it
            edges.append(DotEdge(f"step{index - 1}", f"step{index}", {"label": label}))
    return DotGraph(
        name=f"{machine}_trace",
        comment=f"trace of the {machine!r} model",
        graph_attrs={
            "label": title,
            "labelloc": "t",
            "fontname": FONT,
            "fontsize": "14",
            "rankdir": "TB",
            "bgcolor": "white",
        },
        node_defaults={"shape": "box", "style": "filled", "fontname": MONO_FONT, "fontsize": "10"},
        edge_defaults={"fontname": FONT, "fontsize": "10"},
        nodes=tuple(nodes),
        edges=tuple(edges),
    )
