"""After ``pip install`` without extras: each command names the extra to install and exits 2;
``--help`` and the commands that need no extra still work.

A real fresh virtual environment (``python -m venv`` + ``pip install --no-deps -e .``), so
nothing of the project's own environment can leak in.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.commands import ROOT, assert_one_line_usage_error, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` folder of a virtual environment holding the project and no extra."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
    python = venv / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--disable-pip-version-check", "-e", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    probe = "import importlib.util as u; print([m for m in ('z3', 'networkx', 'hypothesis') if u.find_spec(m)])"
    assert run([str(python), "-c", probe]).stdout.strip() == "[]"
    return venv / "bin"


@pytest.mark.parametrize(
    ("prog", "args", "extra", "missing"),
    [
        ("meerkat-verify", ["--profile", "tiny"], "verify", "z3, networkx"),
        ("meerkat-verify", ["--no-prove", "--machine", "ops"], "verify", "z3, networkx"),
        ("meerkat-render", ["--out", "{tmp}/diagrams"], "verify", "networkx"),
        ("meerkat-conformance", ["--profile", "fast"], "conformance", "hypothesis, networkx"),
    ],
)
def test_a_command_names_the_extra_to_install(
    bare: Path, tmp_path: Path, prog: str, args: list[str], extra: str, missing: str
) -> None:
    argv = [str(bare / prog), *(a.format(tmp=tmp_path) for a in args)]
    line = assert_one_line_usage_error(run(argv, timeout=60), f"(missing: {missing})")
    assert line == (
        f"{prog}: error: the {extra!r} extra is not installed (missing: {missing}); install it with: "
        f"pip install 'meerkat-lifecycle[{extra}]'"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("prog", ["meerkat-verify", "meerkat-render", "meerkat-conformance"])
def test_help_works_without_extras(bare: Path, prog: str) -> None:
    done = run([str(bare / prog), "--help"], timeout=60)
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith(f"usage: {prog}")


def test_the_store_suite_and_the_soak_need_no_extra(bare: Path, tmp_path: Path) -> None:
    python = str(bare / "python")
    suite = run([python, "-m", "meerkat_conformance.stores.suite", "sqlite", "--check", "input_round_trip"])
    assert suite.returncode == 0, suite.stderr
    assert "OK: 1 passed, 0 failed" in suite.stdout
    soak = run([python, str(ROOT / "scripts" / "store_soak.py"), "--kills", "3", "--dir", str(tmp_path)])
    assert soak.returncode == 0, soak.stderr
    assert soak.stdout.splitlines()[-2].startswith("OK: 3 kills")
