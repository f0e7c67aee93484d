"""Writing the diagram directory and detecting drift between it and the model."""

from __future__ import annotations

from pathlib import Path

from meerkat_model.diagrams import Diagram, check_drift, find_renderer, render_svgs, write_outputs
from meerkat_model.diagrams.suite import lifecycle_diagrams, reachable_diagram_of
from meerkat_model.diagrams.svg import svg_digest
from meerkat_model.machine import TransitionDecl

from tests.diagrams.fakes import DOOR_TRANSITIONS, DoorMachine, explore_fake


def _diagrams(machine: DoorMachine | None = None) -> list[Diagram]:
    machine = machine or DoorMachine()
    return [
        *lifecycle_diagrams([("door", machine)]),
        reachable_diagram_of("door", machine, explore_fake(machine), profile="t"),
    ]


class _ChangedDoor(DoorMachine):
    def transitions(self) -> tuple[TransitionDecl, ...]:
        return (*DOOR_TRANSITIONS, TransitionDecl("paint", "door", ("Closed",), None, "dry weather"))


def _write(out: Path, diagrams: list[Diagram], *, render: bool = True) -> None:
    write_outputs(out, diagrams, render_svgs(diagrams, find_renderer() if render else None, out))


def test_written_directory_has_no_drift(tmp_path: Path) -> None:
    diagrams = _diagrams()
    _write(tmp_path, diagrams)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([f"{d.slug}.{ext}" for d in diagrams for ext in ("dot", "svg")] + ["index.html"])
    assert check_drift(tmp_path, diagrams) == []
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_model_change_is_drift_in_dot_svg_and_page(tmp_path: Path) -> None:
    _write(tmp_path, _diagrams())
    changed = _diagrams(_ChangedDoor())
    problems = check_drift(tmp_path, changed)
    assert any("door-lifecycle.dot differs from the model" in p for p in problems)
    assert any("door-lifecycle.svg was not rendered from the current DOT" in p for p in problems)
    assert any("index.html does not show the current diagrams" in p for p in problems)
    assert not any("key-lifecycle" in p for p in problems)


def test_hand_edits_and_missing_files_are_drift(tmp_path: Path) -> None:
    diagrams = _diagrams()
    _write(tmp_path, diagrams)
    dot = tmp_path / "key-lifecycle.dot"
    dot.write_text(dot.read_text().replace("Out", "Outside"))
    (tmp_path / "door-reachable-t.svg").unlink()
    problems = check_drift(tmp_path, diagrams)
    assert len(problems) == 2
    assert "key-lifecycle.dot differs" in problems[0] and "door-reachable-t.svg is missing" in problems[1]


def test_left_over_diagrams_are_drift_and_removed_by_the_next_write(tmp_path: Path) -> None:
    diagrams = _diagrams()
    _write(tmp_path, diagrams)
    fewer = diagrams[:2]
    assert check_drift(tmp_path, fewer) == [
        f"{tmp_path / 'door-reachable-t.dot'} is left over from a diagram the model no longer has",
        f"{tmp_path / 'door-reachable-t.svg'} is left over from a diagram the model no longer has",
        f"{tmp_path / 'index.html'} does not show the current diagrams",
    ]
    (tmp_path / "notes.dot").write_text("digraph { hand -> made }\n")  # not generated: kept
    report = write_outputs(tmp_path, fewer, render_svgs(fewer, find_renderer(), tmp_path))
    assert sorted(p.name for p in report.removed) == ["door-reachable-t.dot", "door-reachable-t.svg"]
    assert (tmp_path / "notes.dot").exists()
    assert check_drift(tmp_path, fewer) == []


def test_without_renderer_up_to_date_svgs_are_kept_and_stale_ones_removed(tmp_path: Path) -> None:
    _write(tmp_path, _diagrams())
    changed = _diagrams(_ChangedDoor())
    svgs = render_svgs(changed, None, tmp_path)
    assert svgs["door-lifecycle"] is None  # its DOT changed, the old picture would lie
    assert svgs["key-lifecycle"] is not None and svg_digest(svgs["key-lifecycle"]) is not None
    report = write_outputs(tmp_path, changed, svgs)
    assert report.without_svg == ("door-lifecycle",)
    assert not (tmp_path / "door-lifecycle.svg").exists()
    assert (tmp_path / "door-lifecycle.dot").read_text() == changed[0].dot
    assert check_drift(tmp_path, changed) == [f"{tmp_path / 'door-lifecycle.svg'} is missing"]


def test_trace_files_are_ignored_by_the_drift_check(tmp_path: Path) -> None:
    diagrams = _diagrams()
    _write(tmp_path, diagrams)
    (tmp_path / "trace-door-t.dot").write_text((tmp_path / "door-lifecycle.dot").read_text())
    assert check_drift(tmp_path, diagrams) == []
    _write(tmp_path, diagrams)
    assert (tmp_path / "trace-door-t.dot").exists()


def test_written_files_are_readable_by_everyone_the_umask_allows(tmp_path: Path) -> None:
    import os

    old = os.umask(0o022)
    try:
        _write(tmp_path, _diagrams(), render=False)
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert set(modes.values()) == {0o644}
    (tmp_path / "index.html").chmod(0o664)
    _write(tmp_path, _diagrams(), render=False)
    assert (tmp_path / "index.html").stat().st_mode & 0o777 == 0o664
