"""Headless Chromium driven over the Chrome DevTools protocol (no Selenium): just enough to log in to the
Airflow UI, open a DAG's trigger form, read the rendered page and save a screenshot.

Chromium comes from Debian (`apt-get install -y chromium`); `find_chromium()` returns None when it is not
installed so callers can skip with a reason. The browser runs in its own process group with a throw-away
profile and is always stopped by the context manager.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time

import httpx
from websockets.sync.client import ClientConnection, connect

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--window-size=1400,1100",
)


class BrowserError(RuntimeError):
    pass


def find_chromium() -> str | None:
    return next((path for path in CHROMIUM_CANDIDATES if os.access(path, os.X_OK)), None)


class Chromium:
    """One headless Chromium with one page, controlled through its DevTools websocket."""

    def __init__(self, executable: str, port: int, log_path: pathlib.Path):
        self.executable = executable
        self.port = port
        self.log_path = log_path
        self.profile = tempfile.mkdtemp(prefix="srm-chromium-")
        self.process: subprocess.Popen | None = None
        self.ws: ClientConnection | None = None
        self._ids = itertools.count(1)

    def __enter__(self) -> Chromium:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self, timeout: float = 30.0) -> None:
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [
                    self.executable,
                    *CHROMIUM_FLAGS,
                    f"--remote-debugging-port={self.port}",
                    "--remote-debugging-address=127.0.0.1",
                    f"--user-data-dir={self.profile}",
                    "about:blank",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrowserError(
                    f"Chromium exited with {self.process.returncode} at start; see {self.log_path}."
                )
            with contextlib.suppress(httpx.HTTPError, ValueError):
                targets = httpx.get(f"http://127.0.0.1:{self.port}/json/list", timeout=2).json()
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    self.ws = connect(pages[0]["webSocketDebuggerUrl"], max_size=64 * 2**20, open_timeout=10)
                    self.call("Page.enable")
                    self.call("Runtime.enable")
                    return
            time.sleep(0.2)
        raise BrowserError(
            f"Chromium's DevTools endpoint did not answer within {timeout:.0f}s; see {self.log_path}."
        )

    def stop(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                self.ws.close()
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        shutil.rmtree(self.profile, ignore_errors=True)

    def call(self, method: str, timeout: float = 30.0, **params) -> dict:
        """Send one DevTools command and return its result; events received meanwhile are dropped."""
        if self.ws is None:
            raise BrowserError("Chromium is not connected.")
        message_id = next(self._ids)
        self.ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError(f"No answer to DevTools command {method} within {timeout:.0f}s.")
            message = json.loads(self.ws.recv(timeout=remaining))
            if message.get("id") == message_id:
                if "error" in message:
                    raise BrowserError(f"DevTools command {method} failed: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> object:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(
                f"JavaScript failed: {result['exceptionDetails'].get('text')} in {expression[:120]!r}"
            )
        return result.get("result", {}).get("value")

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def wait_for(self, what: str, expression: str, timeout: float = 30.0, interval: float = 0.25) -> object:
        """Evaluate `expression` until it is truthy (bounded); the error names `what` and the current URL."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(BrowserError):
                value = self.evaluate(expression)
                if value:
                    return value
            time.sleep(interval)
        url = self.evaluate("location.href")
        text = (self.evaluate("document.body ? document.body.innerText : ''") or "")[:500]
        raise BrowserError(f"Timed out after {timeout:.0f}s waiting for {what} at {url}. Page text: {text!r}")

    def type_into(self, selector: str, text: str) -> None:
        """Focus an input and type like a user (React sees real input events)."""
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.insertText", text=text)

    def click_button(self, label: str, within: str = "document") -> None:
        """Click the first button whose text or aria-label equals `label`."""
        found = self.evaluate(
            f"""(() => {{
                const root = {within};
                const button = Array.from(root.querySelectorAll('button')).find(
                    b => b.innerText.trim() === {json.dumps(label)} || b.getAttribute('aria-label') === {json.dumps(label)});
                if (!button) return false;
                button.click();
                return true;
            }})()"""
        )
        if not found:
            raise BrowserError(f"No button labelled {label!r} on {self.evaluate('location.href')}.")

    def screenshot(self, path: pathlib.Path) -> pathlib.Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path
