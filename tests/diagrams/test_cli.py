"""``meerkat-render`` end to end on a purpose-built machine: render, check, no renderer, traces."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from meerkat_model.cli import render
from meerkat_model.diagrams import suite
from meerkat_model.diagrams.suite import MachineEntry
from meerkat_model.machine import Bounds

from tests.diagrams.fakes import DoorMachine, explore_fake


@pytest.fixture
def door_catalog(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The CLI sees one machine, ``door``; its bounds can be changed through the returned dict."""
    values: dict[str, int] = {"max_opens": 2, "buggy": 0}

    def entries(profile: str) -> list[MachineEntry]:
        return [MachineEntry("door", DoorMachine, Bounds(dict(values)))]

    monkeypatch.setattr(render, "catalog_entries", entries)
    monkeypatch.setattr(render, "explore_with_verifier", explore_fake)
    monkeypatch.setattr(suite, "explore_with_verifier", explore_fake)
    return values


def test_render_then_check(door_catalog: dict[str, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "d"
    assert render.main(["--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "door-lifecycle.dot",
        "door-lifecycle.svg",
        "door-overview-ci.dot",
        "door-overview-ci.svg",
        "door-reachable-tiny.dot",
        "door-reachable-tiny.svg",
        "explorer.html",
        "index.html",
        "key-lifecycle.dot",
        "key-lifecycle.svg",
    ]
    assert "wrote 10 files for 4 diagrams" in capsys.readouterr().err
    assert render.main(["--out", str(out), "--check"]) == 0
    door_catalog["max_opens"] = 3
    assert render.main(["--out", str(out), "--check"]) == 1
    err = capsys.readouterr().err
    assert "door-reachable-tiny.dot differs from the model" in err and "./run render" in err


def test_no_renderer_still_writes_dot_and_says_how_to_get_one(
    door_catalog: dict[str, int], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("MEERKAT_DOT", raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "nowhere" / "python"))
    out = tmp_path / "d"
    assert render.main(["--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "no SVG renderer found" in err and "pip install graphviz-pure" in err and "Writing DOT only" in err
    assert sorted(p.suffix for p in out.iterdir()) == [".dot", ".dot", ".dot", ".dot", ".html", ".html"]
    assert "No SVG was rendered" in (out / "index.html").read_text()


def test_explicit_missing_renderer_is_an_error_and_writes_nothing(
    door_catalog: dict[str, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "d"
    assert render.main(["--out", str(out), "--renderer", str(tmp_path / "no-such-dot")]) == 2
    assert f"error: --renderer {tmp_path / 'no-such-dot'}: no such file" in capsys.readouterr().err
    assert not out.exists()


def test_node_limit_refuses_unless_forced(
    door_catalog: dict[str, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "d"
    assert render.main(["--out", str(out), "--node-limit", "5", "--dot-only"]) == 2
    err = capsys.readouterr().err
    assert "above the layout limit of 5" in err and "--force" in err
    assert not out.exists()
    assert render.main(["--out", str(out), "--node-limit", "5", "--force", "--dot-only"]) == 0


def test_counterexample_trace(door_catalog: dict[str, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "d"
    assert render.main(["--out", str(out), "--trace", "door"]) == 2
    assert "no invariant of 'door' is violated" in capsys.readouterr().err
    door_catalog["buggy"] = 1
    assert render.main(["--out", str(out), "--trace", "door"]) == 0
    err = capsys.readouterr().err
    assert "violates opens_bounded" in err
    trace = (out / "trace-door-tiny.dot").read_text()
    assert "VIOLATES" in trace and (out / "trace-door-tiny.svg").is_file()
    assert 'data-diagram="trace-door-tiny"' in (out / "index.html").read_text()
    assert render.main(["--out", str(out), "--check"]) == 0  # traces are not part of the committed set


def test_deepest_trace_and_unknown_machine(
    door_catalog: dict[str, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "d"
    assert render.main(["--out", str(out), "--trace", "door", "--trace-to", "deepest", "--dot-only"]) == 0
    assert "Path to a deepest state" in (out / "trace-door-tiny.dot").read_text()
    assert render.main(["--out", str(out), "--trace", "window"]) == 2
    assert "unknown machine 'window' (known: door)" in capsys.readouterr().err


def test_unknown_profile_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert render.main(["--out", str(tmp_path), "--profile", "enormous", "--check"]) == 2
    assert "unknown profile 'enormous'" in capsys.readouterr().err


def test_the_explorer_page_is_written_and_checked(
    door_catalog: dict[str, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "d"
    assert render.main(["--out", str(out), "--dot-only"]) == 0
    page = (out / "explorer.html").read_text()
    assert '"key":"door"' in page and 'href="explorer.html"' in (out / "index.html").read_text()
    (out / "explorer.html").write_text(page.replace('"key":"door"', '"key":"doors"'))
    assert render.main(["--out", str(out), "--check"]) == 1
    assert "explorer.html differs from the model" in capsys.readouterr().err
    (out / "explorer.html").unlink()
    assert render.main(["--out", str(out), "--check"]) == 1
    assert "explorer.html is missing" in capsys.readouterr().err


def test_explore_writes_one_page_of_a_profile(
    door_catalog: dict[str, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "d"
    assert render.main(["--out", str(out), "--explore", "ci"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["explore-ci.html"]
    assert "wrote" in capsys.readouterr().err
    assert render.main(["--out", str(tmp_path / "e"), "--explore", "ci", "--state-limit", "3"]) == 2
    err = capsys.readouterr().err
    assert "above the explorer's limit of 3" in err and "--state-limit" in err
    assert not (tmp_path / "e").exists()
