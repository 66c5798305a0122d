"""Headless Chromium for HTML tests: render a page, take a screenshot, collect console errors.

Shared by the explain HTML test and the report HTML test. Chromium runs with the
network shut off (no background networking, no QUIC, no component updates) and is
driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``), so the
errors come with their level: ``console.error`` calls, uncaught exceptions, and
error-level log entries such as a resource that failed to load. (Chromium's
``--enable-logging=stderr`` log prints every console message at INFO level, so it
cannot tell an error from a log line; :func:`console_lines` still reads it.)

Tests call :func:`require_chromium`, which skips when the browser is missing,
except under ``CI=true``, where a missing browser fails the test.
"""

from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

__all__ = ["chromium_path", "require_chromium", "render", "dump_dom", "console_lines"]

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


def chromium_path() -> str | None:
    """The Chromium/Chrome executable, or None (the ``CHROMIUM`` variable overrides the search)."""
    override = os.environ.get("CHROMIUM")
    if override:
        return override if Path(override).exists() else None
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def require_chromium() -> str:
    """The browser path; skip the test without one, fail under CI=true."""
    path = chromium_path()
    if path is None:
        message = "headless Chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " and CI=true requires it")
        pytest.skip(message)
    return path


class _DevTools:
    """A Chromium process driven over ``--remote-debugging-pipe`` (fd 3 in, fd 4 out)."""

    def __init__(self, width: int, height: int, timeout: float) -> None:
        browser = require_chromium()
        self.profile = tempfile.TemporaryDirectory(prefix="crossent-chromium-")
        self.deadline = time.monotonic() + timeout
        arguments = [*FLAGS, f"--user-data-dir={self.profile.name}", "--remote-debugging-pipe",
                     f"--window-size={width},{height}", "about:blank"]
        # the shell hands our stdin/stdout pipes to chromium as fds 3 and 4
        self.process = subprocess.Popen(
            ["sh", "-c", 'exec "$0" "$@" 3<&0 4>&1 </dev/null >/dev/null', browser, *arguments],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if self.session is not None:
            message["sessionId"] = self.session
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\0")
        self.process.stdin.flush()
        while True:
            reply = self._read()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> None:
        while not any(event.get("method") == method for event in self.events):
            self.events.append(self._read())

    def drain(self, seconds: float) -> None:
        """Collect events for ``seconds`` (late console messages, image decoding)."""
        end = time.monotonic() + seconds
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                return
            event = self._read(remaining)
            if event:
                self.events.append(event)

    def _read(self, limit: float | None = None) -> dict[str, Any]:
        assert self.process.stdout is not None
        end = self.deadline if limit is None else min(self.deadline, time.monotonic() + limit)
        while b"\0" not in self.buffer:
            left = end - time.monotonic()
            if left <= 0:
                if limit is not None:
                    return {}
                raise TimeoutError("chromium did not answer in time")
            ready, _, _ = select.select([self.process.stdout], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.process.stdout.fileno(), 1 << 20)
            if not chunk:
                raise RuntimeError(f"chromium exited (code {self.process.poll()})")
            self.buffer += chunk
        message, _, self.buffer = self.buffer.partition(b"\0")
        return json.loads(message)

    def open(self, url: str, width: int, height: int) -> None:
        # the window's own page (a target created in the background never paints)
        pages = [info for info in self.send("Target.getTargets")["targetInfos"]
                 if info.get("type") == "page"]
        target = (pages[0]["targetId"] if pages
                  else self.send("Target.createTarget", {"url": "about:blank"})["targetId"])
        self.session = self.send("Target.attachToTarget", {"targetId": target,
                                                           "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")
        # the size comes from --window-size (Emulation.setDeviceMetricsOverride can make
        # Page.captureScreenshot hang in headless Chromium 156)
        self.events.clear()
        self.send("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")
        self.drain(0.5)

    def errors(self) -> list[str]:
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(" ".join(str(arg.get("value", arg.get("description", "")))
                                      for arg in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                found.append(details.get("exception", {}).get("description")
                             or details.get("text", "uncaught exception"))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                found.append(f"{entry.get('text', '')} {entry.get('url', '')}".strip())
        return found

    def close(self) -> None:
        try:
            self.session = None
            self.send("Browser.close")
        except Exception:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.profile.cleanup()


def render(html_path: str | Path, screenshot_path: str | Path, *, width: int = 1200,
           height: int = 1600, timeout: float = 90.0) -> list[str]:
    """Open ``html_path`` headless, save a PNG screenshot, return the page's error lines.

    The errors are ``console.error``/``console.assert`` messages, uncaught exceptions
    and error-level log entries (e.g. a resource that failed to load), in order.
    """
    browser = _DevTools(width, height, timeout)
    try:
        browser.open(Path(html_path).resolve().as_uri(), width, height)
        shot = browser.send("Page.captureScreenshot", {"format": "png"})
        Path(screenshot_path).write_bytes(base64.b64decode(shot["data"]))
        return browser.errors()
    finally:
        browser.close()


def dump_dom(html_path: str | Path, *, timeout: float = 90.0) -> str:
    """The page's DOM after the load event (scripts have run), as HTML."""
    browser = _DevTools(1200, 900, timeout)
    try:
        browser.open(Path(html_path).resolve().as_uri(), 1200, 900)
        result = browser.send("Runtime.evaluate", {
            "expression": "document.documentElement.outerHTML", "returnByValue": True})
        return str(result["result"]["value"])
    finally:
        browser.close()


_CONSOLE = re.compile(r'CONSOLE[:(]\d+\)?\]\s*"(?P<message>.*)", source:')


def console_lines(log: str) -> list[str]:
    """Every console message in a Chromium ``--enable-logging=stderr`` log (any level)."""
    return [match.group("message") for match in map(_CONSOLE.search, log.splitlines()) if match]
