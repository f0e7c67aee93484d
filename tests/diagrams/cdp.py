"""A small Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (standard library only).

Chromium reads commands from file descriptor 3 and writes replies and events to descriptor 4, one
JSON message per NUL-terminated record; no port, no websocket. :class:`Browser` starts a headless
Chromium (found by :func:`tests.diagrams.browser.find_chromium`) with a fresh profile directory,
opens one page and offers what the page tests need: navigate, evaluate JavaScript, wait for a
condition, click at an element's centre with real mouse events, type text, set the files of a file
input and take PNG screenshots. Every wait has a deadline; a failure names what was awaited.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.diagrams.browser import BROWSER_FLAGS, find_chromium

DEFAULT_TIMEOUT = 20.0


class BrowserError(AssertionError):
    """The browser did not answer, a command failed, or a page script raised."""


def _high_fd(fd: int) -> int:
    """A duplicate of ``fd`` numbered 10 or more (so it can be moved to 3 and 4 safely)."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class Browser:
    """One headless Chromium with one page (a ``with`` block closes it and removes its profile)."""

    def __init__(self, *, width: int = 1280, height: int = 900, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory(prefix="meerkat-cdp-")
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - Chromium's stderr, closed by close()
        to_child_r, to_child_w = (_high_fd(fd) for fd in os.pipe())
        from_child_r, from_child_w = (_high_fd(fd) for fd in os.pipe())
        command = [
            find_chromium(),
            *BROWSER_FLAGS,
            f"--user-data-dir={self._profile.name}",
            "--remote-debugging-pipe",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        # bash (dash takes single-digit descriptors only) moves the two pipe ends to descriptors 3
        # and 4, then becomes Chromium.
        script = f'exec "$0" "$@" 3<&{to_child_r} 4>&{from_child_w} {to_child_r}<&- {from_child_w}>&-'
        self._process = subprocess.Popen(
            [shutil.which("bash") or "/bin/bash", "-c", script, *command],
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._out = to_child_w
        self._in = from_child_r
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        self.page_errors: list[str] = []
        """Uncaught exceptions of page scripts since the browser started."""
        try:
            target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
            self._session = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime"):
                self.call(f"{domain}.enable")
            self.call(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
        except BaseException:
            self.close()
            raise

    # --- protocol ---------------------------------------------------------------------------

    def _send(self, message: Mapping[str, Any]) -> None:
        data = json.dumps(message).encode() + b"\0"
        while data:
            written = os.write(self._out, data)
            data = data[written:]

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("no message from Chromium before the deadline")
            ready, _, _ = select.select([self._in], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise BrowserError(f"Chromium closed the protocol pipe: {self._stderr_tail()}")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        return message

    def _call(
        self, method: str, params: Mapping[str, Any] | None = None, *, session: str | None = None
    ) -> dict[str, Any]:
        self._next_id += 1
        ident = self._next_id
        message: dict[str, Any] = {"id": ident, "method": method, "params": dict(params or {})}
        if session is not None:
            message["sessionId"] = session
        self._send(message)
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == ident:
                if "error" in reply:
                    raise BrowserError(f"{method} failed: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            if "method" in reply:
                self._record(reply)

    def _record(self, event: dict[str, Any]) -> None:
        if event.get("method") == "Runtime.exceptionThrown":
            details = event["params"]["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text", "?")
            self.page_errors.append(f"{text} (line {details.get('lineNumber')})")
        self._events.append(event)

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Send one command to the page and return its result."""
        return self._call(method, params, session=self._session)

    def _stderr_tail(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-1500:]

    # --- page helpers -----------------------------------------------------------------------

    def open(self, page: Path | str, *, ready: str | None = None) -> None:
        """Load ``page`` (a file path or URL) and wait for the load event, then for the JavaScript
        condition ``ready`` when given."""
        url = page.resolve().as_uri() if isinstance(page, Path) else page
        self._events.clear()
        self.call("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")
        if ready is not None:
            self.wait_for(ready)

    def wait_event(self, method: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            for index, event in enumerate(self._events):
                if event.get("method") == method:
                    del self._events[: index + 1]
                    return event
            self._record(self._read_message(deadline))

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True})
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"page script failed: {text}\nin: {expression[:300]}")
        return result["result"].get("value")

    def wait_for(self, condition: str, *, timeout: float | None = None) -> Any:
        """Poll the JavaScript ``condition`` until it is truthy; return its value."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            value = self.evaluate(condition)
            if value:
                return value
            if time.monotonic() > deadline:
                errors = "; ".join(self.page_errors) or "none"
                raise BrowserError(f"timed out waiting for: {condition} (page script errors: {errors})")
            time.sleep(0.05)

    def click(self, selector: str) -> None:
        """Scroll the first element matching ``selector`` into view and click its centre with
        real mouse events (it must be visible and not covered by another element)."""
        box = self.evaluate(
            f"""(() => {{
              const el = document.querySelector({json.dumps(selector)});
              if (!el) return null;
              el.scrollIntoView({{block: "center", inline: "center"}});
              const r = el.getBoundingClientRect();
              const x = r.left + r.width / 2, y = r.top + r.height / 2;
              const hit = document.elementFromPoint(x, y);
              return {{x, y, w: r.width, h: r.height, hit: !!hit && (hit === el || el.contains(hit))}};
            }})()"""
        )
        if box is None:
            raise BrowserError(f"no element matches {selector!r}")
        if box["w"] <= 0 or box["h"] <= 0 or not box["hit"]:
            raise BrowserError(f"element {selector!r} is not visible or is covered: {box}")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": box["x"], "y": box["y"], "button": "left", "clickCount": 1},
            )

    def type_into(self, selector: str, text: str, *, clear: bool = True) -> None:
        """Focus the input matching ``selector`` and type ``text`` as keyboard input."""
        self.click(selector)
        if clear:
            self.evaluate(f"(() => {{ const el = document.querySelector({json.dumps(selector)}); el.select(); }})()")
        self.call("Input.insertText", {"text": text})

    def press(self, key: str, *, code: str | None = None, key_code: int = 0) -> None:
        """Press and release one key (``Enter``, ``ArrowRight``, ...) in the focused element."""
        params = {"key": key, "code": code or key, "windowsVirtualKeyCode": key_code}
        self.call("Input.dispatchKeyEvent", {"type": "rawKeyDown", **params})
        self.call("Input.dispatchKeyEvent", {"type": "keyUp", **params})

    def set_files(self, selector: str, files: list[Path]) -> None:
        """Choose ``files`` in the file input matching ``selector`` (as a user would)."""
        root = self.call("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = self.call("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        if not node:
            raise BrowserError(f"no element matches {selector!r}")
        self.call("DOM.setFileInputFiles", {"nodeId": node, "files": [str(f.resolve()) for f in files]})

    def screenshot(self, path: Path, *, clip_selector: str | None = None) -> bytes:
        """Write a PNG of the viewport (or of one element) to ``path`` and return its bytes."""
        params: dict[str, Any] = {"format": "png"}
        if clip_selector is not None:
            rect = self.evaluate(
                f"""(() => {{ const r = document.querySelector({json.dumps(clip_selector)}).getBoundingClientRect();
                    return {{x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height}}; }})()"""
            )
            params["clip"] = {**rect, "scale": 1}
            params["captureBeyondViewport"] = True
        data = base64.b64decode(self.call("Page.captureScreenshot", params)["data"])
        path.write_bytes(data)
        return data

    # --- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        """Ask Chromium to exit, kill it if it does not, and remove the profile directory."""
        try:
            if self._process.poll() is None:
                with contextlib.suppress(OSError):
                    self._send({"id": 0, "method": "Browser.close"})
                try:
                    self._process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait(timeout=5)
        finally:
            for fd in (self._out, self._in):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._log.close()
            self._profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
