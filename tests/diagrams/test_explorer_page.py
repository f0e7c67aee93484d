"""The explorer page is self-contained: data embedded as JSON, script and styles inline, nothing loaded."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from meerkat_model.diagrams.explorer_data import EXPLORER_FORMAT, explorer_graph
from meerkat_model.diagrams.explorer_page import build_explorer_page
from meerkat_model.verifier import explore

from tests.diagrams.fakes import DoorMachine


def _graph() -> dict[str, Any]:
    return explorer_graph("door", explore(DoorMachine()), profile="t", bounds={"max_opens": 2})


def _embedded(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>', page, re.DOTALL)
    assert found is not None
    document: dict[str, Any] = json.loads(found.group(1))
    return document


def test_the_data_is_embedded_as_json() -> None:
    graph = _graph()
    document = _embedded(build_explorer_page([graph], intro="i"))
    assert document["format"] == EXPLORER_FORMAT and document["version"] == 1
    assert document["machines"] == [graph]


def test_nothing_is_loaded_from_elsewhere() -> None:
    page = build_explorer_page([_graph()], intro="i")
    assert not re.search(r"\bsrc=", page)
    assert not re.search(r'\bhref="(?!#)', page)
    assert "@import" not in page and "url(" not in page and "http://" not in page and "https://" not in page
    assert page.count("<script") == 2 and page.count("<style>") == 1


def test_text_in_the_data_cannot_close_the_script() -> None:
    graph = _graph()
    graph["labels"] = [*graph["labels"], "</script><b>x</b><!--"]
    page = build_explorer_page([graph], intro="</script>")
    assert page.count("</script>") == 2
    assert _embedded(page)["machines"][0]["labels"][-1] == "</script><b>x</b><!--"


def test_at_least_one_graph_is_needed() -> None:
    with pytest.raises(ValueError, match="at least one graph"):
        build_explorer_page([], intro="")
