"""Finding a renderer, rendering cleanly, and failing with a message that says what went wrong."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from meerkat_model.diagrams import RendererNotFoundError, RendererUnusableError, RenderFailedError, find_renderer
from meerkat_model.diagrams.renderer import ENV_VAR, Renderer
from meerkat_model.diagrams.svg import dot_digest, inline_svg, mark_svg, svg_digest

SMALL_DOT = 'digraph "g" { "a" -> "b" [label="go"]; }\n'


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)
    return path


def test_the_project_renderer_is_found_and_renders_cleanly() -> None:
    renderer = find_renderer()
    svg = renderer.render_svg(SMALL_DOT, diagram="small")
    assert "<svg" in svg and ">go</text>" in svg


def test_no_renderer_lists_what_was_tried_and_how_to_get_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    with pytest.raises(RendererNotFoundError) as caught:
        find_renderer(env={"PATH": str(tmp_path)})
    message = str(caught.value)
    assert "graphviz-pure on PATH" in message and "dot on PATH" in message
    assert "pip install graphviz-pure" in message and "apt-get install graphviz" in message


def test_explicit_renderer_is_never_replaced(tmp_path: Path) -> None:
    with pytest.raises(RendererNotFoundError, match="--renderer /nonexistent/dot"):
        find_renderer("/nonexistent/dot")
    with pytest.raises(RendererNotFoundError, match=f"{ENV_VAR}=nope-dot"):
        find_renderer(env={ENV_VAR: "nope-dot", "PATH": str(tmp_path)})


def test_an_explicit_choice_is_checked_and_the_message_says_what_is_wrong(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("digraph {}")
    echo = _script(tmp_path, "echo-dot", "import sys; sys.stdout.write(sys.stdin.read())\n")
    cases = {
        str(tmp_path / "missing"): "no such file",
        str(tmp_path): "is a directory, not an executable",
        str(plain): "is not executable",
        "/bin/false": "does not render DOT to SVG like Graphviz dot (exit status 1",
        str(echo): "does not render DOT to SVG like Graphviz dot (the output is not SVG",
        "nope-dot": "no executable 'nope-dot' on PATH",
    }
    for value, problem in cases.items():
        with pytest.raises(RendererUnusableError) as caught:
            find_renderer(value, env={"PATH": str(tmp_path)})
        assert str(caught.value).startswith(f"--renderer {value}: {problem}")
        with pytest.raises(RendererUnusableError, match=f"^{ENV_VAR}="):
            find_renderer(env={ENV_VAR: value, "PATH": str(tmp_path)})


def test_environment_variable_selects_the_renderer(tmp_path: Path) -> None:
    fake = _script(tmp_path, "fake-dot", "import sys; sys.stdout.write('<svg></svg>')\n")
    assert find_renderer(env={ENV_VAR: str(fake)}).path == str(fake)


def test_bad_dot_is_a_render_error_naming_the_diagram() -> None:
    with pytest.raises(RenderFailedError, match="rendering 'broken'"):
        find_renderer().render_svg("digraph { a -> ", diagram="broken")


def test_layout_warnings_fail_in_strict_mode(tmp_path: Path) -> None:
    noisy = _script(tmp_path, "noisy-dot", "import sys; sys.stderr.write('Warning: overlap'); print('<svg/>')\n")
    renderer = Renderer(str(noisy))
    with pytest.raises(RenderFailedError, match="printed warnings: Warning: overlap"):
        renderer.render_svg(SMALL_DOT, diagram="d")
    assert renderer.render_svg(SMALL_DOT, diagram="d", strict=False).strip() == "<svg/>"


def test_non_svg_output_and_timeouts_are_errors(tmp_path: Path) -> None:
    wrong = _script(tmp_path, "wrong-dot", "print('not a picture')\n")
    with pytest.raises(RenderFailedError, match="not SVG"):
        Renderer(str(wrong)).render_svg(SMALL_DOT, diagram="d")
    slow = _script(tmp_path, "slow-dot", "import time; time.sleep(5)\n")
    with pytest.raises(RenderFailedError, match=r"no result within 0\.2 s"):
        Renderer(str(slow)).render_svg(SMALL_DOT, diagram="d", timeout=0.2)


def test_svg_marker_round_trip_and_inlining() -> None:
    svg = find_renderer().render_svg(SMALL_DOT, diagram="small")
    digest = dot_digest(SMALL_DOT)
    marked = mark_svg(svg, digest)
    assert svg_digest(marked) == digest and svg_digest(svg) is None
    inline = inline_svg(marked, "p-")
    assert inline.startswith("<svg") and "<?xml" not in inline and "dot-sha256" not in inline
    assert 'id="p-graph0"' in inline and 'id="graph0"' not in inline
