"""Headless Chromium driven through the Chrome DevTools Protocol, for tests that check a page
as a browser renders it (the HTML report).

The protocol runs over a pipe (``--remote-debugging-pipe``: Chromium reads JSON commands,
each ended by a NUL byte, on its file descriptor 3 and writes responses and events on 4),
so no websocket client and no free port are needed: the standard library is enough. Every
wait is for a protocol message, with a generous timeout; nothing sleeps.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import Any

BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
TIMEOUT = 60.0  # seconds for any one protocol answer: generous, a loaded 2-core CI box


def find_chromium() -> str | None:
    """The browser binary: ``$CHROMIUM`` or the first of :data:`BINARIES` on PATH."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return shutil.which(explicit) or (explicit if os.path.isfile(explicit) else None)
    return next((found for name in BINARIES if (found := shutil.which(name))), None)


_SHIM = ("import os, sys; r, w = int(sys.argv[1]), int(sys.argv[2]); os.dup2(r, 3); "
         "os.dup2(w, 4); os.close(r); os.close(w); os.execvp(sys.argv[3], sys.argv[3:])")


class BrowserError(RuntimeError):
    pass


class Browser:
    """One headless Chromium with one page; ``events`` collects every event received."""

    def __init__(self, binary: str) -> None:
        self._profile = tempfile.mkdtemp(prefix="trtops-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # The child's ends above 9, so that moving them to 3 and 4 cannot close one another.
        to_browser_r, from_browser_w = _above(to_browser_r, 10), _above(from_browser_w, 10)
        args = [binary, "--headless=new", "--remote-debugging-pipe", "--no-first-run",
                "--no-default-browser-check", "--disable-gpu", "--disable-extensions",
                "--disable-background-networking", "--disable-sync", "--mute-audio",
                f"--user-data-dir={self._profile}", "--hide-scrollbars", "about:blank"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        # Chromium wants its ends as fds 3 (commands) and 4 (answers): a Python shim moves
        # them there and execs it (no preexec_fn, unsafe while threads run; dash cannot
        # redirect fds above 9).
        self._process = subprocess.Popen(
            [sys.executable, "-c", _SHIM, str(to_browser_r), str(from_browser_w), *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            pass_fds=(to_browser_r, from_browser_w))
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id = 0
        self._answers: dict[int, queue.Queue] = {}
        self._events: queue.Queue = queue.Queue()
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stderr: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        self.session: str | None = None

    # ------------------------------------------------------------------ transport

    def _read(self) -> None:
        buffer = b""
        with os.fdopen(self._from_browser, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        with self._lock:
                            answer = self._answers.get(message["id"])
                        if answer is not None:
                            answer.put(message)
                    else:
                        self._events.put(message)
        self._events.put({"method": "closed"})

    def _drain_stderr(self) -> None:
        assert self._process.stderr is not None
        for line in self._process.stderr:
            self._stderr.append(line)

    def send(self, method: str, params: dict[str, Any] | None = None, *,
             session: bool = True) -> dict[str, Any]:
        """Send one command (to the page's session unless ``session=False``) and return its
        result; raises BrowserError with the protocol's error."""
        with self._lock:
            self._next_id += 1
            number = self._next_id
            answer: queue.Queue = queue.Queue()
            self._answers[number] = answer
        message: dict[str, Any] = {"id": number, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        try:
            reply = answer.get(timeout=TIMEOUT)
        except queue.Empty:
            raise BrowserError(f"no answer to {method} in {TIMEOUT:.0f} s; stderr: "
                               f"{b''.join(self._stderr)[-2000:].decode(errors='replace')}") from None
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first event (already received or next) for which ``predicate`` is true."""
        for event in self.events:
            if predicate(event):
                return event
        while True:
            try:
                event = self._events.get(timeout=TIMEOUT)
            except queue.Empty:
                raise BrowserError(f"the awaited event did not come in {TIMEOUT:.0f} s") from None
            self.events.append(event)
            if event.get("method") == "closed":
                raise BrowserError("the browser closed its pipe")
            if predicate(event):
                return event

    def collect(self) -> list[dict[str, Any]]:
        """Every event received so far (moved from the queue into ``events``)."""
        while True:
            try:
                self.events.append(self._events.get_nowait())
            except queue.Empty:
                return self.events

    # ------------------------------------------------------------------ page

    def open_page(self, *, javascript: bool = True) -> None:
        """Create a page, attach to it, and turn on the domains the checks read."""
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = self.send("Target.attachToTarget",
                             {"targetId": target["targetId"], "flatten": True}, session=False)
        self.session = attached["sessionId"]
        for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.send(domain)
        if not javascript:
            self.send("Emulation.setScriptExecutionDisabled", {"value": True})
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": False})

    def navigate(self, url: str) -> None:
        """Load ``url`` and wait for its load event."""
        frame = self.send("Page.navigate", {"url": url})
        if frame.get("errorText"):
            raise BrowserError(f"navigation failed: {frame['errorText']}")
        self.wait_for(lambda e: e.get("method") == "Page.loadEventFired"
                      and e.get("sessionId") == self.session)

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (works with script
        execution disabled for the page's own scripts: this is the debugger's)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"evaluate failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self) -> bytes:
        """A PNG of the whole page."""
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        return base64.b64decode(data["data"])

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions, log errors (CSP violations, failed loads)
        and JavaScript dialogs seen so far, as text."""
        found = []
        for event in self.collect():
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(f"exception: {params.get('exceptionDetails')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(f"console.{params.get('type')}: {params.get('args')}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                found.append(f"log: {params['entry'].get('text')}")
            elif method == "Page.javascriptDialogOpening":
                found.append(f"dialog: {params.get('message')}")
        return found

    def close(self) -> None:
        try:
            if self._process.poll() is None:
                try:
                    self.send("Browser.close", session=False)
                except (BrowserError, OSError):
                    pass
                try:
                    self._process.wait(timeout=TIMEOUT)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
        finally:
            try:
                os.close(self._to_browser)
            except OSError:
                pass
            shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _above(fd: int, lowest: int) -> int:
    """``fd`` moved to a number >= ``lowest`` (the old number closed)."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, lowest)
    os.close(fd)
    return moved
