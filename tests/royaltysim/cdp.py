"""A small Chrome DevTools Protocol client for browser tests: Debian's headless Chromium driven over a websocket.

Selenium needs chromedriver (not packaged beside Debian's chromium here) and Playwright downloads its own
browsers; the protocol itself is a few JSON messages (https://chromedevtools.github.io/devtools-protocol/),
so the tests speak it directly with ``websockets``.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.sync.client import connect


class Browser:
    """Headless Chromium with one page, driven by CDP. Use as a context manager (the browser is ended on exit)."""

    def __init__(self, profile: Path, width: int = 1400, height: int = 1600) -> None:
        exe = shutil.which("chromium")
        assert exe, "chromium is not installed: run `make setup` as root (apt-get install chromium)"
        profile.mkdir(parents=True, exist_ok=True)
        port_file = profile / "DevToolsActivePort"
        port_file.unlink(missing_ok=True)  # a browser that used this profile before left its port there
        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--remote-debugging-port=0",
             f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while not port_file.is_file() or not port_file.read_text().strip():
                assert self.proc.poll() is None, self.proc.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "chromium did not open its debugging port in 30 s"
                time.sleep(0.1)
            port = int(port_file.read_text().split()[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                target = next(t for t in json.load(r) if t["type"] == "page")
            self._stack = contextlib.ExitStack()
            self.ws = self._stack.enter_context(connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=10))
        except BaseException:
            self._end()
            raise
        self._ids = itertools.count(1)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        self._end()

    def _end(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def send(self, method: str, **params: Any) -> dict:
        """Call a protocol method and return its result (events arriving meanwhile are skipped)."""
        mid = next(self._ids)
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == mid:
                assert "error" not in msg, f"{method}: {msg['error']}"
                return msg["result"]

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def eval(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def wait(self, expression: str, timeout: float = 30.0) -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.eval(expression)
            if value:
                return value
            assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for: {expression}"
            time.sleep(0.2)

    def click(self, x: float, y: float) -> None:
        """A real left click at page coordinates (CSS pixels in the viewport)."""
        self.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", **params)["data"]))
        return path
