"""Without a browser the page tests are skipped, saying so, except under CI where they fail;
``scripts/ensure_browser.sh --optional`` never fails, announces a system-wide install first and
honours ``MEERKAT_INSTALL_BROWSER=0``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.diagrams import browser

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ensure_browser.sh"
BASH = shutil.which("bash") or "/bin/bash"


@pytest.fixture
def no_browser(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("MEERKAT_CHROMIUM", raising=False)


@pytest.mark.usefixtures("no_browser")
@pytest.mark.parametrize("ci", [None, "", "0", "false"])
def test_outside_ci_a_page_test_is_skipped_saying_it_did_not_run(
    monkeypatch: pytest.MonkeyPatch, ci: str | None
) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="browser page test NOT RUN: no headless Chromium"):
        browser.find_chromium()


@pytest.mark.usefixtures("no_browser")
@pytest.mark.parametrize("ci", ["true", "1"])
def test_under_ci_a_missing_browser_fails(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(AssertionError, match="required under CI"):
        browser.find_chromium()


def test_meerkat_chromium_names_the_browser(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "my-chrome"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("MEERKAT_CHROMIUM", str(fake))
    assert browser.find_chromium() == str(fake)


def _tools(folder: Path, *names: str) -> None:
    """Links the named system tools into ``folder`` (the only PATH the script gets)."""
    for name in names:
        found = shutil.which(name)
        assert found is not None, name
        (folder / name).symlink_to(found)


def _script(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!{BASH}\n{body}\n")
    path.chmod(0o755)


def _ensure(path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BASH, str(SCRIPT), *args],
        env={"PATH": str(path), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_optional_without_apt_get_says_the_page_tests_will_be_skipped(tmp_path: Path) -> None:
    done = _ensure(tmp_path, "--optional")
    assert done.returncode == 0
    assert "apt-get is not available" in done.stderr and "browser page tests will be skipped" in done.stderr


def _fake_apt(folder: Path) -> Path:
    """An ``apt-get`` whose ``install`` puts a ``chromium`` on PATH and logs its calls; ``id -u`` says root."""
    log = folder / "apt.log"
    _script(
        folder,
        "apt-get",
        f'echo "$@" >> {log}\n'
        f'case "$*" in *install*) printf "#!{BASH}\\necho Chromium 1.0\\n" > {folder}/chromium; '
        f"chmod 755 {folder}/chromium;; esac",
    )
    _script(folder, "id", "echo 0")
    _tools(folder, "mktemp", "tail", "rm", "cat", "chmod")
    return log


def test_optional_install_is_announced_before_it_runs(tmp_path: Path) -> None:
    log = _fake_apt(tmp_path)
    done = _ensure(tmp_path, "--optional")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith("ensure_browser: installing Debian's chromium system-wide with apt-get")
    assert "MEERKAT_INSTALL_BROWSER=0" in lines[0]
    assert lines[-1] == "ensure_browser: Chromium 1.0 is installed"
    assert "install -y -q --no-install-recommends chromium" in log.read_text()


def test_the_opt_out_installs_nothing(tmp_path: Path) -> None:
    log = _fake_apt(tmp_path)
    done = _ensure(tmp_path, "--optional", MEERKAT_INSTALL_BROWSER="0")
    assert done.returncode == 0
    assert "MEERKAT_INSTALL_BROWSER=0" in done.stderr and "will be skipped" in done.stderr
    assert not log.exists() and not (tmp_path / "chromium").exists()


def test_required_mode_installs_whatever_the_opt_out_says(tmp_path: Path) -> None:
    # CI runs the required mode: the page tests must run there.
    log = _fake_apt(tmp_path)
    done = _ensure(tmp_path, MEERKAT_INSTALL_BROWSER="0")
    assert done.returncode == 0, done.stderr
    assert "install" in log.read_text() and (tmp_path / "chromium").exists()


def test_an_unknown_option_is_refused(tmp_path: Path) -> None:
    done = _ensure(tmp_path, "--bogus")
    assert done.returncode == 2 and done.stderr.count("\n") == 1


@pytest.mark.parametrize(("ci", "code"), [("true", 1), ("1", 1), ("", 0), ("0", 0), ("false", 0)])
def test_for_tests_is_required_exactly_under_ci(tmp_path: Path, ci: str, code: int) -> None:
    done = _ensure(tmp_path, "--for-tests", CI=ci)
    assert done.returncode == code, done.stderr
    assert ("will be skipped" in done.stderr) == (code == 0)


def test_for_tests_under_ci_installs_whatever_the_opt_out_says(tmp_path: Path) -> None:
    log = _fake_apt(tmp_path)
    done = _ensure(tmp_path, "--for-tests", CI="true", MEERKAT_INSTALL_BROWSER="0")
    assert done.returncode == 0, done.stderr
    assert "install" in log.read_text() and (tmp_path / "chromium").exists()


def test_run_test_uses_the_for_tests_mode() -> None:
    assert "bash scripts/ensure_browser.sh --for-tests\n" in (SCRIPT.parent.parent / "run").read_text()
