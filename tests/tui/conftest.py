"""Consoles on the real engine (simulator, local flag file, SQLite) in virtual time.

The engine runs on its EngineRunner thread exactly as in production; only ticking is
left to the test (`ticking=False`), so every screen shows a known instant.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from tests.conftest import ALICE, load
from warroom.demo import demo_plan
from warroom.engine.build import build_engine
from warroom.clock import Clock, VirtualClock
from warroom.engine.engine import Engine
from warroom.engine.runner import EngineRunner
from warroom.plan import Fault, Plan
from warroom.tui.app import WarroomApp

START = 1_800_000_000.0  # 2027-01-15T08:00:00Z, shown in every snapshot


@dataclass
class Console:
    app: WarroomApp
    engine: Engine
    clock: Clock
    runner: EngineRunner
    notices: list[str] = field(default_factory=list)

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
        await self.until(pilot, lambda: self.app.snapshot is not None and self.app.snapshot is self.engine.snapshot)

    async def until(self, pilot, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("the console did not get there in time")
            await pilot.pause(0.01)
        await pilot.pause()

    def kinds(self) -> list[str]:
        return [e.kind for e in self.engine.store.entries()]


@pytest.fixture
def console(tmp_path: Path):
    """make(plan=None → the built-in demo in tmp_path, …) → Console (not yet running)."""
    runners: list[EngineRunner] = []

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
        runners.append(runner)
        app = WarroomApp(runner, theme=theme, keys=keys if keys is not None else plan.keys)
        made = Console(app, engine, clock, runner)
        original = app.notify

        def record(message, *args, **kw):
            made.notices.append(str(message))
            return original(message, *args, **kw)

        app.notify = record  # type: ignore[method-assign]
        return made

    yield make
    for runner in runners:
        assert runner.stop(), "the engine thread did not stop"


@pytest.fixture
def test_plan(tmp_path: Path) -> Callable[..., Plan]:
    """The suite's small staging plan (manual step-up), with top-level keys replaced."""

    def make(changes: dict | None = None) -> Plan:
        return load(tmp_path, changes)

    return make
