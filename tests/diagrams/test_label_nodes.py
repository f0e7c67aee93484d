"""Edge labels as nodes: no line can run through a label, and the text names its own edge."""

from __future__ import annotations

from meerkat_model.diagrams import DotEdge, DotGraph, DotNode, find_renderer, to_dot
from meerkat_model.diagrams.label_nodes import LABEL_NODE_PREFIX, labels_as_nodes


def _graph() -> DotGraph:
    return DotGraph(
        name="g",
        edge_defaults={"fontname": "Verdana", "fontsize": "10", "arrowsize": "0.6"},
        nodes=(DotNode("a"), DotNode("b")),
        edges=(
            DotEdge("a", "b", {"label": "go\n[guard]", "color": "#444444", "fontcolor": "#444444", "tooltip": "t"}),
            DotEdge("b", "a"),
        ),
    )


def test_a_labelled_edge_is_split_at_a_node_holding_its_text() -> None:
    graph = labels_as_nodes(_graph())
    label_nodes = [n for n in graph.nodes if n.node_id.startswith(LABEL_NODE_PREFIX)]
    assert len(label_nodes) == 1
    node = label_nodes[0]
    assert node.attrs["label"] == "go\n[guard]"
    assert node.attrs["fontcolor"] == "#444444" and node.attrs["fontsize"] == "10"
    assert node.attrs["shape"] == "plain" and node.attrs["tooltip"] == "t"
    first, second, plain = graph.edges
    assert (first.source, first.target, second.source, second.target) == ("a", node.node_id, node.node_id, "b")
    assert first.attrs == {"color": "#444444", "tooltip": "t", "arrowhead": "none"}
    assert second.attrs == {"color": "#444444", "tooltip": "t"}
    assert (plain.source, plain.target, plain.attrs) == ("b", "a", {})


def test_nothing_changes_without_labels() -> None:
    graph = DotGraph(name="g", nodes=(DotNode("a"),), edges=(DotEdge("a", "a"),))
    assert labels_as_nodes(graph) == graph


def test_the_split_graph_renders_with_the_text_once() -> None:
    svg = find_renderer().render_svg(to_dot(labels_as_nodes(_graph())), diagram="t")
    assert svg.count(">go</text>") == 1 and svg.count(">[guard]</text>") == 1
