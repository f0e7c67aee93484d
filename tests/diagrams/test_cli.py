"""``meerkat-render`` end to end on a purpose-built machine: render, check, no renderer, traces;
a bad command line (ignored options, an explicit renderer that cannot be used, --check of what is
not a folder) refused in one line with exit status 2 before any model work."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

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


def _no_model_work(*_args: Any, **_kwargs: Any) -> Any:
    raise AssertionError("the model was explored before the command line was checked")


@pytest.fixture
def no_model_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any exploration or diagram building fails the test."""
    for name in ("standard_diagrams", "standard_explorer", "explore_with_verifier", "trace_diagram_of"):
        monkeypatch.setattr(render, name, _no_model_work)


def _one_line_usage_error(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("meerkat-render: error: "), err
    assert "(see meerkat-render --help)" in err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--check", "--explore", "ci"], ["--check", "--explore"]),
        (["--explore", "ci", "--trace", "door"], ["--trace does not apply to --explore"]),
        (["--explore", "ci", "--profile", "tiny"], ["--profile does not apply to --explore"]),
        (["--explore", "ci", "--dot-only"], ["--dot-only does not apply to --explore"]),
        (["--explore", "ci", "--renderer", "dot"], ["--renderer does not apply to --explore"]),
        (["--explore", "ci", "--node-limit", "5"], ["--node-limit does not apply to --explore"]),
        (["--explore", "ci", "--force"], ["--force does not apply to --explore"]),
        (["--trace-to", "deepest"], ["--trace-to needs --trace"]),
        (["--check", "--trace", "door"], ["--trace does not apply to --check"]),
        (["--check", "--dot-only"], ["--dot-only does not apply to --check"]),
        (["--check", "--renderer", "dot"], ["--renderer does not apply to --check"]),
        (["--node-limit", "-1"], ["--node-limit", "at least 1"]),
        (["--node-limit", "0"], ["--node-limit", "at least 1"]),
        (["--state-limit", "0"], ["--state-limit", "at least 1"]),
        (["--trace", "window"], ["--trace: unknown machine 'window' (known: door)"]),
    ],
)
def test_refused_before_any_work_and_nothing_written(
    door_catalog: dict[str, int],
    no_model_work: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    needles: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "existing"
    out.mkdir()
    assert _status(["--out", str(out), *args]) == 2
    _one_line_usage_error(capsys, *needles)
    assert sorted(tmp_path.rglob("*")) == [out]


def _status(argv: list[str]) -> object:
    """The exit status of ``main(argv)``, also when the parser exits."""
    try:
        return render.main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("option", ["--profile", "--explore"])
def test_an_unknown_profile_is_refused_before_any_work(
    no_model_work: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    assert render.main(["--out", str(tmp_path / "d"), option, "enormous"]) == 2
    _one_line_usage_error(capsys, "unknown profile 'enormous' (known: ")
    assert not (tmp_path / "d").exists()


def test_trace_of_a_catalog_machine_that_is_not_drawn_says_so(
    no_model_work: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert render.main(["--out", str(tmp_path), "--trace", "ownership"]) == 2
    _one_line_usage_error(capsys, "unknown machine 'ownership'", "verified but not drawn", "meerkat-verify")


def test_help_lists_the_machines_trace_accepts(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        render.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "trace of this drawn machine: ops, session" in text
    assert "ownership, ownership_ops, are verified but not drawn" in text


def test_check_of_a_regular_file_or_a_missing_folder_is_a_usage_error(
    no_model_work: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert render.main(["--check", "--out", str(a_file)]) == 2
    _one_line_usage_error(capsys, f"--out {a_file}: is a file, not a directory")
    assert render.main(["--check", "--out", str(a_file / "sub")]) == 2
    _one_line_usage_error(capsys, f"{a_file} is a file, not a directory")
    assert render.main(["--check", "--out", str(tmp_path / "missing")]) == 2
    _one_line_usage_error(capsys, "no such directory")
    assert not (tmp_path / "missing").exists()


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)
    return path


@pytest.mark.parametrize(
    ("renderer", "needles"),
    [
        ("{tmp}/no-such-dot", ["--renderer {tmp}/no-such-dot: no such file"]),
        ("{tmp}", ["--renderer {tmp}: is a directory"]),
        ("{tmp}/plain-file", ["--renderer {tmp}/plain-file: is not executable"]),
        ("/bin/false", ["--renderer /bin/false: does not render DOT to SVG", "exit status 1"]),
        ("{tmp}/echo-dot", ["--renderer {tmp}/echo-dot: does not render DOT to SVG", "not SVG"]),
        ("no-such-dot-anywhere", ["no executable 'no-such-dot-anywhere' on PATH"]),
    ],
)
def test_an_unusable_renderer_is_refused_before_any_work(
    no_model_work: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    renderer: str,
    needles: list[str],
) -> None:
    (tmp_path / "plain-file").write_text("digraph {}")
    _script(tmp_path, "echo-dot", "import sys; sys.stdout.write(sys.stdin.read())\n")
    out = tmp_path / "d"
    for how in ("option", "environment"):
        value = renderer.format(tmp=tmp_path)
        if how == "option":
            monkeypatch.delenv("MEERKAT_DOT", raising=False)
            assert render.main(["--out", str(out), "--renderer", value]) == 2
            err = _one_line_usage_error(capsys, *(n.format(tmp=tmp_path) for n in needles))
        else:
            monkeypatch.setenv("MEERKAT_DOT", value)
            assert render.main(["--out", str(out)]) == 2
            expected = [n.format(tmp=tmp_path).replace(f"--renderer {value}", f"MEERKAT_DOT={value}") for n in needles]
            err = _one_line_usage_error(capsys, *expected)
        assert "install one" not in err and not out.exists()


def test_a_working_explicit_renderer_is_used(
    door_catalog: dict[str, int],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = _script(tmp_path, "fake-dot", "import sys; sys.stdin.read(); sys.stdout.write('<svg></svg>')\n")
    monkeypatch.setenv("MEERKAT_DOT", str(fake))
    assert render.main(["--out", str(tmp_path / "d")]) == 0
    assert f"renderer: {fake};" in capsys.readouterr().err


def test_explore_under_check_writes_nothing_anywhere(
    door_catalog: dict[str, int],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert render.main(["--check", "--explore", "ci"]) == 2
    capsys.readouterr()
    assert list(tmp_path.iterdir()) == []


def test_explore_write_failure_is_one_line(
    door_catalog: dict[str, int],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(path: Path, text: str) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(render, "write_atomically", refuse)
    out = tmp_path / "d"
    assert render.main(["--out", str(out), "--explore", "ci"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: could not write" in err and "Permission denied" in err


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/proc/self").is_dir(), reason="needs root and /proc")
def test_explore_into_proc_as_root_is_one_line(
    door_catalog: dict[str, int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert render.main(["--out", "/proc/meerkat-render-test", "--explore", "ci"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "meerkat-render: error:" in err


def test_no_counterexample_is_reported_before_the_diagram_set_is_built(
    door_catalog: dict[str, int],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("standard_diagrams", "standard_explorer"):
        monkeypatch.setattr(render, name, _no_model_work)
    assert render.main(["--out", str(tmp_path / "d"), "--trace", "door"]) == 2
    assert "no invariant of 'door' is violated" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_dot_only_says_it_was_asked_for(
    door_catalog: dict[str, int],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert render.main(["--out", str(tmp_path / "d"), "--dot-only"]) == 0
    err = capsys.readouterr().err
    assert "--dot-only: no up-to-date SVG for door-lifecycle" in err and "run without --dot-only" in err
    assert "renderer: not used (--dot-only)" in err
    assert "once a renderer is installed" not in err and "renderer: none" not in err
