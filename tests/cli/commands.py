"""Running the real commands in subprocesses: their console scripts beside this interpreter,
``./run``, and a Ctrl-C (SIGINT) delivered once a command shows it is busy."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def command(name: str) -> list[str]:
    """The argv prefix of an installed command (``meerkat-verify`` ...) or of a module run
    with ``-m`` (``-m meerkat_conformance.stores.suite``)."""
    if name.startswith("-m "):
        return [sys.executable, "-m", name[3:]]
    if name.endswith(".py"):
        return [sys.executable, str(ROOT / name)]
    path = BIN / name
    assert path.is_file(), f"{name} is not installed beside {sys.executable}"
    return [str(path)]


def rt(*args: str) -> list[str]:
    """The argv of ``meerkat-runtime`` with ``args``."""
    return [*command("meerkat-runtime"), *args]


def run(
    argv: list[str], *, timeout: float = 120.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` from the project root; capture both streams as text."""
    return subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False, env=env, stdin=subprocess.DEVNULL
    )


def assert_one_line_usage_error(done: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit status 2, exactly one line on stderr (no usage block, no traceback) naming ``needles``."""
    lines = done.stderr.splitlines()
    assert done.returncode == 2, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert len(lines) == 1, done.stderr
    assert "error" in lines[0] and "Traceback" not in done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@dataclass(frozen=True)
class Interrupted:
    returncode: int
    stdout: str
    stderr: str


def interrupt_when(argv: list[str], marker: str, *, settle: float = 0.3, timeout: float = 120.0) -> Interrupted:
    """Start ``argv``; once ``marker`` shows on its stdout or stderr (it is busy), wait
    ``settle`` seconds and send SIGINT, as Ctrl-C would; return what it printed and its exit
    status."""
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        # A shell may start background jobs with SIGINT ignored; a terminal's Ctrl-C is not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        # a run still going after the SIGINT is sent SIGABRT: every thread's stack goes to stderr
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )
    assert proc.stdout is not None and proc.stderr is not None
    seen = {proc.stdout.fileno(): b"", proc.stderr.fileno(): b""}
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        for stream in (proc.stdout, proc.stderr):
            selector.register(stream, selectors.EVENT_READ)

        def pump(wait: float) -> None:
            for key, _events in selector.select(timeout=wait):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                seen[key.fd] += chunk

        while not any(marker.encode() in text for text in seen.values()):
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                proc.wait()
                raise AssertionError(
                    f"{marker!r} never showed: {b''.join(seen.values()).decode(errors='replace')[-3000:]}"
                )
            pump(0.5)
        settled = time.monotonic() + settle
        while time.monotonic() < settled:
            pump(max(0.0, settled - time.monotonic()))
        proc.send_signal(signal.SIGINT)
        ended = time.monotonic() + 60
        while selector.get_map() and time.monotonic() < ended:
            pump(0.5)
        try:
            proc.wait(timeout=max(1.0, ended - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # the stacks of its threads, then it ends
            stacks = time.monotonic() + 10
            while selector.get_map() and time.monotonic() < stacks:
                pump(0.5)
            proc.kill()
            proc.wait()
            raise AssertionError(
                f"still running a minute after SIGINT; its stderr, then its threads at SIGABRT:\n"
                f"{seen[proc.stderr.fileno()][-6000:].decode(errors='replace')}"
            ) from None
    out, err = (seen[proc.stdout.fileno()], seen[proc.stderr.fileno()])
    proc.stdout.close()
    proc.stderr.close()
    return Interrupted(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))
