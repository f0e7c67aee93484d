"""The DOT writer escapes any text and writes the same graph the same way every time."""

from __future__ import annotations

from meerkat_model.diagrams.dot import GENERATED_MARKER, DotEdge, DotGraph, DotNode, LeftText, quote, to_dot


def test_quote_escapes_quotes_backslashes_and_newlines() -> None:
    assert quote('say "hi"') == '"say \\"hi\\""'
    assert quote("a\\b") == '"a\\\\b"'
    assert quote("one\ntwo") == '"one\\ntwo"'
    assert quote("one\r\ntwo") == '"one\\ntwo"'


def test_left_text_ends_every_line_with_left_justification() -> None:
    graph = DotGraph("g", nodes=(DotNode("n", {"label": LeftText("a\nb")}),))
    assert '"n" [label="a\\lb\\l"];' in to_dot(graph)


def test_attributes_are_sorted_and_output_starts_with_the_marker() -> None:
    graph = DotGraph(
        "g",
        comment="two\nlines",
        graph_attrs={"rankdir": "LR", "label": "T"},
        nodes=(DotNode("a", {"shape": "box", "color": "red"}), DotNode("b")),
        edges=(DotEdge("a", "b", {"label": "x", "color": "blue"}),),
        rank_groups=(("sink", ("b",)), ("source", ())),
    )
    text = to_dot(graph)
    lines = text.splitlines()
    assert lines[0] == GENERATED_MARKER
    assert lines[1:3] == ["// two", "// lines"]
    assert lines[3] == 'digraph "g" {'
    assert '  label="T";' in lines and lines.index('  label="T";') < lines.index('  rankdir="LR";')
    assert '  "a" [color="red", shape="box"];' in lines
    assert '  "a" -> "b" [color="blue", label="x"];' in lines
    assert '  { rank="sink"; "b"; }' in lines
    assert not any('rank="source"' in line for line in lines)  # empty groups are left out
    assert text.endswith("}\n")
    assert to_dot(graph) == text


def test_node_ids_with_special_characters_are_quoted() -> None:
    text = to_dot(DotGraph("g", nodes=(DotNode('we"ird -> id'),)))
    assert '"we\\"ird -> id";' in text
