"""A minimal Chrome DevTools Protocol client over `--remote-debugging-pipe` (no sockets, no packages).

Chromium reads NUL-terminated JSON commands on fd 3 and writes replies and events on fd 4, so a
test can load a page, click its buttons and read the result without a websocket library, and the
socket block in conftest stays on.

Example (not run: needs chromium):
    with Browser(CHROMIUM, flags) as b:
        b.open(page.as_uri())
        b.eval("document.title")
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import tempfile
import time


class CDPError(RuntimeError):
    """The browser answered a command with an error, or did not answer in time."""


class Browser:
    """One headless Chromium with one page, driven over the DevTools pipe."""

    def __init__(self, binary: str, flags: list[str], timeout: float = 60.0):
        self.binary, self.flags, self.timeout = binary, flags, timeout
        self.events: list[dict] = []
        self._id, self._buf, self.session = 0, b"", None

    def __enter__(self) -> "Browser":
        to_child, self._out = os.pipe()
        self._in, from_child = os.pipe()
        shell = f'exec "$0" "$@" 3<&{to_child} 4>&{from_child}'  # bash: fds above 9 (dash cannot)
        self._log = tempfile.TemporaryFile()  # a file, not a pipe: a chatty chromium never blocks
        self.proc = subprocess.Popen(["bash", "-c", shell, self.binary, "--remote-debugging-pipe", *self.flags],
                                     pass_fds=(to_child, from_child), stdout=self._log, stderr=self._log)
        os.close(to_child), os.close(from_child)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.send("Browser.close", session=False)
        except (CDPError, OSError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._in), os.close(self._out)
        self._log.close()

    def log(self) -> str:
        """The last 2,000 characters chromium wrote to stdout and stderr."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-2000:]

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise CDPError(f"chromium did not answer within {self.timeout:.0f} s")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise CDPError("chromium closed the DevTools pipe: " + self.log())
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, session: bool = True, **params) -> dict:
        """Send one command and return its result; events that arrive meanwhile go to `events`."""
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._out, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise CDPError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, event: str) -> dict:
        """The first `event` (already received or next to arrive)."""
        deadline = time.monotonic() + self.timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == event:
                    return self.events.pop(i)
            self.events.append(self._read(deadline))

    def open(self, url: str, width: int = 1200, height: int = 3000) -> None:
        """Open a fresh page at `url` and wait until its load event (scripts have run)."""
        target = self.send("Target.createTarget", session=False, url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", session=False, targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        self.send("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def eval(self, expression: str):
        """The JSON value of `expression` in the page (promises are awaited)."""
        r = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in r:
            raise CDPError(f"page script failed: {r['exceptionDetails']}")
        return r["result"].get("value")

    def errors(self) -> list[str]:
        """Uncaught exceptions and console/log errors seen so far."""
        out = [e["params"]["exceptionDetails"].get("exception", {}).get("description", "exception")
               for e in self.events if e.get("method") == "Runtime.exceptionThrown"]
        out += [e["params"]["args"][0].get("value", "console.error") for e in self.events
                if e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error"]
        out += [e["params"]["entry"]["text"] for e in self.events
                if e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error"]
        return out
