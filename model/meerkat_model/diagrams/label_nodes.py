"""Edge labels drawn as nodes on their edge, so no line can run through a label.

Graphviz places an edge label beside its edge and routes other edges without regard to it, so in
a dense lifecycle a line may cross another edge's text. :func:`labels_as_nodes` turns every
labelled edge ``a -> b`` into ``a -> L -> b`` where ``L`` is a borderless node holding the text:
the layout then keeps every other line out of the text like out of any node, and the text sits
on its own edge, so it is plain which edge it names.
"""

from __future__ import annotations

from dataclasses import replace

from meerkat_model.diagrams.dot import DotEdge, DotGraph, DotNode

LABEL_NODE_PREFIX = "__label_"
# Attributes that style a label's text; they move to the label node.
_TEXT_ATTRS = ("fontcolor", "fontname", "fontsize")


def labels_as_nodes(graph: DotGraph, *, fill: str = "white") -> DotGraph:
    """``graph`` with each labelled edge split at a node carrying its label (text attributes,
    tooltip and ``fill`` background); both halves keep the edge's other attributes, only the
    second has an arrowhead. Unlabelled edges are kept as they are."""
    nodes = list(graph.nodes)
    edges: list[DotEdge] = []
    defaults = {key: value for key, value in graph.edge_defaults.items() if key in _TEXT_ATTRS}
    for edge in graph.edges:
        label = edge.attrs.get("label", "")
        if not label:
            edges.append(edge)
            continue
        node_id = f"{LABEL_NODE_PREFIX}{len(nodes)}"
        text = {key: edge.attrs[key] for key in _TEXT_ATTRS if key in edge.attrs}
        node_attrs = {
            **defaults,
            **text,
            "label": label,
            "shape": "plain",
            "style": "filled",
            "fillcolor": fill,
            "color": fill,
        }
        if "tooltip" in edge.attrs:
            node_attrs["tooltip"] = edge.attrs["tooltip"]
        nodes.append(DotNode(node_id, node_attrs))
        line = {key: value for key, value in edge.attrs.items() if key != "label" and key not in _TEXT_ATTRS}
        edges.append(DotEdge(edge.source, node_id, {**line, "arrowhead": "none"}))
        edges.append(DotEdge(node_id, edge.target, line))
    return replace(graph, nodes=tuple(nodes), edges=tuple(edges))
