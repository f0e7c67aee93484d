"""docs/architecture.md holds the rule table as the code generates it today, every rule row is
linked from docs/semantics.md, and the harness names a real Hypothesis rule for each rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis.stateful import RULE_MARKER
from meerkat_conformance import rule_table
from meerkat_conformance.rule_table import SOURCES, MachineSources, TableError, declared, drift, rows

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_committed_table_matches_the_code() -> None:
    assert drift(DOCS / "architecture.md") is None


def test_a_changed_document_is_reported_as_drift(tmp_path: Path) -> None:
    edited = (DOCS / "architecture.md").read_text(encoding="utf-8").replace("`executor_failed`", "`executor_fails`", 1)
    path = tmp_path / "architecture.md"
    path.write_text(edited, encoding="utf-8")
    assert drift(path) is not None
    assert rule_table.main(["--check", "--document", str(path)]) == 1
    assert rule_table.main(["--write", "--document", str(path)]) == 0
    assert drift(path) is None


def test_a_rule_missing_from_a_source_is_named() -> None:
    sources = SOURCES[0]
    partial = MachineSources(sources.machine, sources.title, sources.runtime[1:], sources.harness, sources.lockstep)
    with pytest.raises(TableError, match=sources.runtime[0].rule):
        rows(partial)


@pytest.mark.parametrize("sources", SOURCES, ids=lambda s: s.machine)
def test_harness_rules_cover_the_declared_rules_with_real_hypothesis_rules(sources: MachineSources) -> None:
    names = [h.rule for h in sources.harness]
    assert len(names) == len(set(names))
    assert set(names) == {d.name for d in declared(sources.machine)}
    for harness in sources.harness:
        if harness.stateful_rule is None:
            assert harness.note, f"{harness.rule}: say why no step fires it"
            continue
        method = getattr(sources.lockstep, harness.stateful_rule, None)
        assert method is not None and hasattr(method, RULE_MARKER), harness


def _anchors() -> set[str]:
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    return set(re.findall(r'<a id="(rule-[a-z]+-[a-z_]+)"></a>', text))


def test_semantics_links_every_rule_to_its_row() -> None:
    text = (DOCS / "semantics.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\(architecture\.md#(rule-[a-z]+-[a-z_]+)\)", text))
    anchors = _anchors()
    expected = {row.anchor for sources in SOURCES for row in rows(sources)}
    assert anchors == expected
    assert linked - anchors == set(), "links to rows that do not exist"
    assert anchors - linked == set(), "rules semantics.md does not link"
