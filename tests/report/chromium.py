"""Open a page in headless Chromium over the DevTools protocol (pipe transport, stdlib only).

``--remote-debugging-pipe`` makes Chromium read protocol messages from fd 3 and write replies
to fd 4, each a JSON text ended by a NUL byte: no websocket library, no port to find.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-pipe"]

PROBE = """JSON.stringify({
  images: Array.from(document.images).map(i => ({src: i.src.slice(0, 40), complete: i.complete,
                                                 width: i.naturalWidth, id: i.closest('figure') ?
                                                 i.closest('figure').id : ''})),
  sections: Array.from(document.querySelectorAll('section h2')).map(h => h.textContent),
  text: document.body.innerText,
  external: Array.from(document.querySelectorAll('[src],[href]')).map(
      e => e.getAttribute('src') || e.getAttribute('href')).filter(
      u => /^(https?:)?\\/\\//.test(u)),
  height: document.documentElement.scrollHeight,
})"""


@dataclass
class PageResult:
    images: list[dict[str, Any]]
    sections: list[str]
    text: str
    external: list[str]
    errors: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)


class Chromium:
    """One headless browser driven through the DevTools pipe."""

    def __init__(self, binary: str, timeout: float = 60.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="archtune-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire() -> None:  # in the child: the pipes become fds 3 and 4
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={self.profile}"],
                                     pass_fds=(3, 4), preexec_fn=wire, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None) -> dict[str, Any]:
        self._next += 1
        msg: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        while True:
            m = self._recv()
            if m.get("id") == self._next:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def _recv(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_chrome], [], [], max(left, 0))
            if not ready:
                raise TimeoutError("no reply from Chromium")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise EOFError("Chromium closed the DevTools pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def wait_event(self, method: str) -> dict[str, Any]:
        for i, e in enumerate(self.events):
            if e.get("method") == method:
                return self.events.pop(i)
        while True:
            m = self._recv()
            if m.get("method") == method:
                return m
            self.events.append(m)

    def open(self, page: Path, screenshot: Path | None = None, *, width: int = 1280,
             expressions: dict[str, str] | None = None) -> PageResult:
        """Load a file, collect console errors and exceptions, probe the DOM, screenshot it."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.send(domain, session=s)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}, s)
        self.events.clear()
        self.send("Page.navigate", {"url": page.resolve().as_uri()}, s)
        self.wait_event("Page.loadEventFired")
        probe = json.loads(self._eval(PROBE, s))
        values = {k: self._eval(v, s) for k, v in (expressions or {}).items()}
        if screenshot is not None:
            shot = self.send("Page.captureScreenshot", {"format": "png",
                                                        "captureBeyondViewport": True}, s)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        self.send("Target.closeTarget", {"targetId": target})
        return PageResult(probe["images"], probe["sections"], probe["text"], probe["external"],
                          self._errors(), values)

    def _eval(self, expression: str, session: str) -> Any:
        got = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                        session)
        if "exceptionDetails" in got:
            raise RuntimeError(f"{expression[:60]}: {got['exceptionDetails']}")
        return got["result"].get("value")

    def _errors(self) -> list[str]:
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console: " + " ".join(str(a.get("value")) for a in p.get("args", [])))
            elif e.get("method") == "Runtime.exceptionThrown":
                out.append("exception: " + str(p.get("exceptionDetails", {}).get("text")))
            elif e.get("method") == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append("log: " + str(p["entry"].get("text")))
        return out

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (EOFError, OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_chrome, self._from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)
