"""Headless Chromium (Debian's `chromium`) as the tests run it: flags that keep it off the network
(/work/shared/REAL-SERVERS.md), the DOM as it stands after load, screenshots."""

from __future__ import annotations

import html
import re
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.helpers import require_binary

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--enable-logging=stderr", "--v=0")
NO_SCRIPT = "--blink-settings=scriptEnabled=false"


@dataclass(frozen=True)
class Loaded:
    dom: str
    log: str  # Chromium's own log: console errors and refused scripts land here

    def text(self, element_id: str) -> str:
        """The text of the element with this id (tags dropped, entities decoded, spaces collapsed)."""
        match = re.search(rf'id="{re.escape(element_id)}"[^>]*>(.*?)</', self.dom, re.S)
        assert match, f"no #{element_id} in the page"
        return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def run(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    chromium = require_binary("chromium")
    result = subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", *extra, url], capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def dump_dom(url: str, profile: Path, *, size: tuple[int, int], script: bool = True) -> Loaded:
    result = run(url, profile, f"--window-size={size[0]},{size[1]}", *(() if script else (NO_SCRIPT,)), "--dump-dom")
    return Loaded(result.stdout, result.stderr)


def screenshot(url: str, profile: Path, shot: Path, *, size: tuple[int, int]) -> tuple[int, int]:
    """Take it (JavaScript on: `--screenshot` needs it, like `--dump-dom`); the PNG's width and height."""
    run(url, profile, f"--window-size={size[0]},{size[1]}", f"--screenshot={shot}")
    return png_size(shot)


def png_size(shot: Path) -> tuple[int, int]:
    head = shot.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{shot} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


class DevTools:
    """Chromium driven over its DevTools pipe (`--remote-debugging-pipe`: commands on fd 3, answers on fd 4,
    NUL-separated JSON), for what flags alone cannot do: the DOM with JavaScript off (`--dump-dom` needs
    script to serialise it), or after a live update arrived."""

    def __init__(self, profile: Path):
        import os

        chromium = require_binary("chromium")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def fds() -> None:  # in the child: its fd 3 reads our commands, its fd 4 writes its answers
            reads, writes = os.dup(to_child_r), os.dup(from_child_w)  # above 4 first: the pipes may be 3 or 4 already
            os.dup2(reads, 3)
            os.dup2(writes, 4)

        # close_fds=False: subprocess closes what it does not keep after preexec_fn, and 3 and 4 must survive.
        self.proc = subprocess.Popen([chromium, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=fds, close_fds=False)
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._id = 0
        self.events: list[dict] = []

    def _read(self) -> dict:
        import json
        import os

        while b"\0" not in self._buffer:
            chunk = os.read(self._from_child, 1 << 16)
            assert chunk, "chromium closed its DevTools pipe"
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def send(self, method: str, session: str | None = None, **params) -> dict:
        import json
        import os

        self._id += 1
        message = {"id": self._id, "method": method, "params": params, **({"sessionId": session} if session else {})}
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._read()
            if answer.get("id") == self._id:
                assert "error" not in answer, answer
                return answer.get("result", {})
            self.events.append(answer)

    def wait_event(self, method: str) -> dict:
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        while True:
            event = self._read()
            if event.get("method") == method:
                return event
            self.events.append(event)

    def open(self, url: str, *, size: tuple[int, int], script: bool) -> str:
        """A tab at `size` (a phone's viewport is mobile), JavaScript on or off, loaded: its session."""
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Emulation.setDeviceMetricsOverride", session, width=size[0], height=size[1], deviceScaleFactor=1, mobile=size[0] < 600)
        self.send("Emulation.setScriptExecutionDisabled", session, value=not script)
        self.send("Page.enable", session)
        self.send("Page.navigate", session, url=url)
        self.wait_event("Page.loadEventFired")
        return session

    def dom(self, session: str) -> str:
        root = self.send("DOM.getDocument", session, depth=-1)["root"]["nodeId"]
        return self.send("DOM.getOuterHTML", session, nodeId=root)["outerHTML"]

    def screenshot(self, session: str, shot: Path) -> tuple[int, int]:
        import base64

        shot.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", session, format="png")["data"]))
        return png_size(shot)

    def close(self) -> None:
        import os

        self.proc.terminate()
        self.proc.wait(10)
        os.close(self._to_child)
        os.close(self._from_child)
