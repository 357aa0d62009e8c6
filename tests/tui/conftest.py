"""Consoles on the real engine (simulator, local flag file, SQLite) in virtual time.

The engine runs on a thread of its own and takes the console's commands from the store,
as the engine process does (tests/enginehost.py); the console is a client on its own
connection. Only ticking is left to the test, so every screen shows a known instant.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from textual.command import CommandList

from tests.conftest import ALICE, load
from tests.prometheus.conftest import http_server  # noqa: F401 (a fixture: real loopback servers posing as Prometheus)
from tests.support.enginehost import EngineHost
from tests.support.waiting import until_async
from warroom.client import EngineClient
from warroom.core.clock import Clock, VirtualClock
from warroom.engine.build import build_engine
from warroom.engine.engine import Engine
from warroom.plan.demo import demo_plan
from warroom.plan.faults import Fault
from warroom.plan.model import Plan
from warroom.store import open_store
from warroom.store.paths import state_path
from warroom.tui.app import WarroomApp

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
    host: EngineHost
    notices: list[str] = field(default_factory=list)
    cleanup: list[Callable[[], object]] = field(default_factory=list)  # run after the engine stopped (servers)

    async def call(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        """Run one engine coroutine on the engine's thread."""
        return await asyncio.wrap_future(self.host.submit(fn))

    async def tick(self, pilot, times: int = 1, seconds: float = 1.0) -> None:
        """Advance virtual time and tick, then wait until the screen shows the result."""
        for _ in range(times):
            async def one():
                if isinstance(self.clock, VirtualClock):  # a real clock moves by itself
                    self.clock.advance(seconds)
                await self.engine.tick()
                return self.engine.publish(force=True)

            await self.call(one)
        await self.settle(pilot)

    async def settle(self, pilot) -> None:
        """Until the screen shows what the engine published last (through the store)."""
        async def published():
            return self.engine.publish(force=True)

        latest = await self.call(published)
        await self.until(pilot, lambda: self.app.snapshot is not None and self.app.snapshot.wall >= latest.wall)

    async def until(self, pilot, condition: Callable[[], bool], what: str = "the console to get there") -> None:
        """Until `condition` holds on the console, then until the screen has caught up with it."""
        await until_async(what, condition, pause=pilot.pause, show=lambda: screen_text(self.app))
        await pilot.pause()

    async def answered(self, pilot) -> None:
        """Until every command the console sent has its answer (and any notice it brings is up)."""
        await self.until(pilot, lambda: not [w for w in self.app.workers if w.group == "engine-commands" and not w.is_finished],
                         "every command's answer")

    def kinds(self) -> list[str]:
        return [e.kind for e in self.engine.store.entries()]


@pytest.fixture(autouse=True)
def same_names_everywhere(monkeypatch):
    """The engine's user and host as the banner shows them, the same on every machine (the user is the
    uid's account: LOGNAME names nobody, so the name is set where the engine looks it up)."""
    monkeypatch.setattr("warroom.engine.lease.account_name", lambda uid: "alice")
    monkeypatch.setenv("WARROOM_HOSTNAME", "bastion")


def screen_text(app: WarroomApp) -> str:
    """What the terminal would show now, as text: every cell of the active screen, dialogs
    included. Fails if any cell would send the terminal a control character."""
    update = app.screen._compositor.render_update(full=True)
    lines = ["".join(segment.text for segment in strip) for strip in update.strips]
    raw = [line for line in lines if CONTROL.search(line)]
    assert not raw, f"control characters would reach the terminal: {raw!r}"
    return "\n".join(line.rstrip() for line in lines)


def palette_text(app: WarroomApp) -> str:
    """What the command palette lists now, as the screen shows it ("" before its first hits)."""
    listed = app.screen.query(CommandList)
    if not listed or not listed.first().option_count:
        return ""
    region = listed.first().region
    return "\n".join(line[region.x:region.right] for line in screen_text(app).splitlines()[region.y:region.bottom])


@pytest.fixture
def console(tmp_path: Path):
    """make(plan=None → the built-in demo in tmp_path, …) → Console (not yet running)."""
    hosts: list[EngineHost] = []
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
        for earlier in hosts:
            if earlier.engine.store.ref == str(state_path(plan)):
                assert earlier.stop()  # one engine per rollout: this console's engine takes the lease over
        engine = build_engine(plan, clock=clock, extra_faults=faults)
        host = EngineHost(engine)
        hosts.append(host)
        client = EngineClient(open_store(state_path(plan)), actor=ALICE, readonly=readonly)
        app = WarroomApp(client, theme=theme, keys=keys if keys is not None else plan.keys)
        made = Console(app, engine, clock, host)
        consoles.append(made)
        original = app.notify

        def record(message, *args, **kw):
            made.notices.append(str(message))
            return original(message, *args, **kw)

        app.notify = record  # type: ignore[method-assign]
        return made

    yield make
    for host in hosts:
        assert host.stop(), "the engine thread did not stop"
    for made in consoles:
        for done in made.cleanup:
            done()


@pytest.fixture
def test_plan(tmp_path: Path) -> Callable[..., Plan]:
    """The suite's small staging plan (manual step-up), with top-level keys replaced."""

    def make(changes: dict | None = None) -> Plan:
        return load(tmp_path, changes)

    return make
