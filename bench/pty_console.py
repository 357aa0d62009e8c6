"""Run a terminal program in a real pseudo-terminal and watch what it writes.

The console benchmarks measure what a user on an SSH session gets: bytes on a tty of a
given size. A reader thread timestamps every chunk the program writes.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

HELLO_WORLD = """
from textual.app import App
from textual.widgets import Static

class Hello(App):
    def compose(self):
        yield Static("hello 12.34%")

Hello().run(mouse=False)
"""

# A pane value as the console paints it: "0.041%", "62 ms", "99.83%".
PANE_VALUE = re.compile(rb"\d+\.\d+%|\d+ ms")


class PtyProgram:
    def __init__(self, argv: list[str], cols: int = 120, rows: int = 36, env: dict | None = None, cwd: str | None = None):
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        environment = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows), **(env or {})}
        environment.pop("NO_COLOR", None)
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=environment, cwd=cwd,
                                     start_new_session=True, close_fds=True)
        os.close(slave)
        self.chunks: list[tuple[float, bytes]] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self.master], [], [], 0.2)
                if not ready:
                    if self.proc.poll() is not None:
                        return
                    continue
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self.chunks.append((time.perf_counter(), data))

    def output(self) -> bytes:
        with self._lock:
            return b"".join(d for _, d in self.chunks)

    def wait_for(self, pattern: re.Pattern[bytes], timeout: float = 30.0, after: float = 0.0) -> float:
        """perf_counter time of the first chunk (written after `after`) whose text completes a match."""
        deadline = time.perf_counter() + timeout
        seen = 0
        buffer = b""
        while time.perf_counter() < deadline:
            with self._lock:
                new = self.chunks[seen:]
                seen = len(self.chunks)
            for t, data in new:
                if t < after:
                    continue
                buffer = buffer[-256:] + data
                if pattern.search(buffer):
                    return t
            if self.proc.poll() is not None and not new:
                break
            time.sleep(0.005)
        raise TimeoutError(f"{pattern.pattern!r} not seen; last output: {self.output()[-400:]!r}")

    def send(self, keys: bytes) -> float:
        t = time.perf_counter()
        os.write(self.master, keys)
        return t

    def bytes_between(self, start: float, end: float) -> int:
        with self._lock:
            return sum(len(d) for t, d in self.chunks if start <= t < end)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far (from /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        os.close(self.master)


def hello_world(cols: int = 120, rows: int = 36) -> PtyProgram:
    return PtyProgram([sys.executable, "-c", HELLO_WORLD], cols, rows)


def warroom(*args: str, cols: int = 120, rows: int = 36, cwd: str | None = None) -> PtyProgram:
    return PtyProgram([sys.executable, "-m", "warroom", *args], cols, rows, cwd=cwd)
