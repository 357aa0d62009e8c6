"""tmux as the terminal of a test: keys in, screen text out, and processes watched as they end."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.support.helpers import require_binary
from tests.support.waiting import DEADLINE, until
from warroom.store.base import process_state


class Tmux:
    """A private tmux server (own socket and config): the pane has its size from its first byte."""

    def __init__(self, tmux: str, name: str, config: Path):
        self.tmux, self.name, self.config = tmux, name, config
        self.base = [tmux, "-L", name, "-f", str(config)]

    def run(self, *args: str) -> str:
        return subprocess.run([*self.base, *args], check=True, capture_output=True, text=True).stdout

    def start(self, command: str, env: dict[str, str] | None = None, size: tuple[int, int] = (120, 36)) -> None:
        # COLUMNS/LINES (set by some test runners) would override the pane's real size.
        self.config.write_text(f"set -g default-size {size[0]}x{size[1]}\n")
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
        self.run("new-session", "-d", "-s", self.name, "-x", str(size[0]), "-y", str(size[1]),
                 f"env -u COLUMNS -u LINES {exports} {command}")

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.name)

    def wait_for(self, text: str, timeout: float = DEADLINE) -> str:
        """The screen, once `text` is on it."""
        def showing() -> str | None:
            screen = self.screen()
            return screen if text in screen else None

        return until(f"{text!r} on the screen", showing, timeout, every=0.1, show=lambda: f"the screen was:\n{self.screen()}")

    def pid(self) -> int:
        return int(self.run("list-panes", "-t", self.name, "-F", "#{pane_pid}").strip())


@pytest.fixture
def tmux(tmp_path):
    session = Tmux(require_binary("tmux"), f"warroom-test-{os.getpid()}-{tmp_path.name}", tmp_path / "tmux.conf")
    yield session
    subprocess.run([*session.base, "kill-server"], capture_output=True)


def running(pid: int) -> bool:
    """Alive and not a zombie: an exited process its parent has not reaped yet counts as gone."""
    return process_state(pid) not in ("", "Z")


def wait_gone(pid: int) -> None:
    until(f"warroom (pid {pid}) to end", lambda: not running(pid))
