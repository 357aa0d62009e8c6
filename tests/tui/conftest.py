"""Consoles on the real engine (simulator, local flag file, SQLite) in virtual time.

The engine runs on its EngineRunner thread exactly as in production; only ticking is
left to the test (`ticking=False`), so every screen shows a known instant.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from tests.conftest import ALICE, load
from tests.helpers import require_binary
from tests.prometheus.conftest import http_server  # noqa: F401 (a fixture: real loopback servers posing as Prometheus)
from warroom.demo import demo_plan
from warroom.engine.build import build_engine
from warroom.engine.clock import Clock, VirtualClock
from warroom.engine.engine import Engine
from warroom.engine.runner import EngineRunner
from warroom.plan import Fault, Plan
from warroom.tui.app import WarroomApp
from warroom.tui.safe_text import clean

START = 1_800_000_000.0  # 2027-01-15T08:00:00Z, shown in every snapshot
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class SteppedClock(VirtualClock):
    """Virtual time that only the test moves: a sleeper (a flag write's backoff) waits until
    the test has advanced the clock past its wake-up, so retries happen at known instants."""

    def __init__(self, start: float = START):
        super().__init__(start)
        self._sleepers: list[tuple[float, asyncio.Future]] = []

    @property
    def sleepers(self) -> int:
        return len(self._sleepers)

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.t + max(0.0, seconds), future))
        try:
            await future
        finally:
            self._sleepers = [(d, f) for d, f in self._sleepers if f is not future]

    def advance(self, seconds: float) -> None:
        super().advance(seconds)
        for deadline, future in self._sleepers:
            if deadline <= self.t and not future.done():
                future.get_loop().call_soon_threadsafe(lambda f=future: f.done() or f.set_result(None))


@dataclass
class Console:
    app: WarroomApp
    engine: Engine
    clock: Clock
    runner: EngineRunner
    notices: list[str] = field(default_factory=list)
    cleanup: list[Callable[[], object]] = field(default_factory=list)  # run after the engine stopped (servers)

    async def call(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        """Run one engine coroutine on the engine thread, as the app does."""
        return await asyncio.wrap_future(self.runner.submit(fn))

    async def tick(self, pilot, times: int = 1, seconds: float = 1.0) -> None:
        """Advance virtual time and tick, then wait until the screen shows the result."""
        for _ in range(times):
            async def one():
                if isinstance(self.clock, VirtualClock):  # a real clock moves by itself
                    self.clock.advance(seconds)
                return await self.engine.tick()

            await self.call(one)
        await self.settle(pilot)

    async def settle(self, pilot) -> None:
        # The console shows the engine's newest snapshot, its outside text made terminal-safe.
        await self.until(pilot, lambda: self.app.snapshot is not None and self.app.snapshot == clean(self.engine.snapshot))

    async def until(self, pilot, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("the console did not get there in time")
            await pilot.pause(0.01)
        await pilot.pause()

    def kinds(self) -> list[str]:
        return [e.kind for e in self.engine.store.entries()]


def screen_text(app: WarroomApp) -> str:
    """What the terminal would show now, as text: every cell of the active screen, dialogs
    included. Fails if any cell would send the terminal a control character."""
    update = app.screen._compositor.render_update(full=True)
    lines = ["".join(segment.text for segment in strip) for strip in update.strips]
    raw = [line for line in lines if CONTROL.search(line)]
    assert not raw, f"control characters would reach the terminal: {raw!r}"
    return "\n".join(line.rstrip() for line in lines)


@pytest.fixture
def console(tmp_path: Path):
    """make(plan=None → the built-in demo in tmp_path, …) → Console (not yet running)."""
    consoles: list[Console] = []

    def make(
        plan: Plan | None = None,
        *,
        readonly: bool = False,
        faults: tuple[Fault, ...] = (),
        clock: Clock | None = None,
        theme: str | None = None,
        keys: dict[str, str] | None = None,
    ) -> Console:
        plan = plan or demo_plan(tmp_path)
        clock = clock or VirtualClock(START)
        engine = build_engine(plan, clock=clock, actor=ALICE, readonly=readonly, extra_faults=faults)
        runner = EngineRunner(engine, ticking=False)
        app = WarroomApp(runner, theme=theme, keys=keys if keys is not None else plan.keys)
        made = Console(app, engine, clock, runner)
        consoles.append(made)
        original = app.notify

        def record(message, *args, **kw):
            made.notices.append(str(message))
            return original(message, *args, **kw)

        app.notify = record  # type: ignore[method-assign]
        return made

    yield make
    for made in consoles:
        assert made.runner.stop(), "the engine thread did not stop"
        for done in made.cleanup:
            done()


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

    def wait_for(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never showed; the screen was:\n{self.screen()}")

    def pid(self) -> int:
        return int(self.run("list-panes", "-t", self.name, "-F", "#{pane_pid}").strip())


@pytest.fixture
def tmux(tmp_path):
    session = Tmux(require_binary("tmux"), f"warroom-test-{os.getpid()}-{tmp_path.name}", tmp_path / "tmux.conf")
    yield session
    subprocess.run([*session.base, "kill-server"], capture_output=True)


@pytest.fixture
def test_plan(tmp_path: Path) -> Callable[..., Plan]:
    """The suite's small staging plan (manual step-up), with top-level keys replaced."""

    def make(changes: dict | None = None) -> Plan:
        return load(tmp_path, changes)

    return make
