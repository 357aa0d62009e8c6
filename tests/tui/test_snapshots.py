"""The screen itself, at 80×24, 120×36 and 200×60, in each state a launch team must read
at a glance. The SVGs are committed: review changes with `pytest --snapshot-update` and look
at each (a browser opens them; `chromium --headless --screenshot` makes a PNG).

Deterministic: virtual clock from a fixed instant (a stepped one where flag writes retry),
seeded simulator, an explicit actor, ticks driven by the test, and an engine judged alive
however late its heartbeat (see `alive_while_it_holds_the_lease`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path

import pytest
import yaml

from tests.conftest import ALICE
from tests.flags.conftest import FLAG_TOKEN
from tests.flags.flagservice import FlagService
from tests.support.waiting import DEADLINE
from tests.tui.conftest import START, Console, SteppedClock
from warroom.client import ALIVE_FLOOR
from warroom.engine.lease import HEARTBEAT
from warroom.plan.faults import Fault
from warroom.plan.load import parse_plan
from warroom.plan.model import Plan
from warroom.tui import clock_text
from warroom.tui.clock_text import engine_now

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 36), id="120x36"), pytest.param((200, 60), id="200x60")]
TICKS = 8  # the demo enters phase 1 on the first tick; 8 s of history and soak
ELEVEN = [{"text": text, "required": required} for text, required in (
    ("Security audit passed", True), ("Load test at 2x peak traffic", True), ("Monitoring dashboards checked", True),
    ("Support team briefed", False), ("Status page draft ready", False), ("Rollback runbook rehearsed", True),
    ("On-call rota confirmed", False), ("Customer success notified", False), ("Feature docs published", False),
    ("Database migration verified", False), ("Error budget reviewed", False))]


def demo(tmp_path: Path, **changes) -> Plan:
    """The built-in demo with top-level keys replaced; without its stakeholder updates, whose journal lines would
    change the timeline of these screens (the demo's updates: tests/engine/test_updates.py)."""
    data = yaml.safe_load(resources.files("warroom.plan").joinpath("demo.yaml").read_text(encoding="utf-8"))
    data.pop("updates")
    data.update(changes)
    return parse_plan(yaml.safe_dump(data, sort_keys=False), str(tmp_path / "demo.yaml"), tmp_path)


def one_flag_phases() -> list[dict]:
    """The demo's phases on its launch flag alone (two flags retrying at once finish in any order)."""
    data = yaml.safe_load(resources.files("warroom.plan").joinpath("demo.yaml").read_text(encoding="utf-8"))
    return [{**p, "flags": {"realtime-features": p["flags"]["realtime-features"]}} for p in data["phases"]]


Before = Callable[[Console, object], Awaitable[None]]


@pytest.fixture(autouse=True)
def alive_while_it_holds_the_lease(monkeypatch):
    """The screen runs on the engine's virtual clock, but whether its engine is alive is judged by
    its heartbeat on the real one (ALIVE_FLOOR, 3 s): on a loaded machine the heartbeat, queued on
    the engine's store thread behind the ticks' writes, went 3 s stale mid-shot and the picture
    said NO ENGINE (test_readonly[80x24] on CI). A stopped engine releases its lease, which no
    floor keeps alive: test_no_engine still shows NO ENGINE."""
    monkeypatch.setattr("warroom.client.ALIVE_FLOOR", DEADLINE)


async def nothing(c: Console, pilot) -> None:
    return None


def command(make: Callable[[Console], Callable[[], Awaitable[object]]]) -> Before:
    async def run(c: Console, pilot) -> None:
        await c.call(make(c))
        await c.tick(pilot)
    return run


async def tick_three(c: Console, pilot) -> None:
    for item in ("1", "3", "4"):
        await c.call(lambda item=item: c.engine.tick_item(ALICE, item))
    await pilot.press("down", "down", "down", "down")
    await c.tick(pilot)


async def rolling_back(c: Console, pilot) -> None:
    """Roll back against a flag API that refuses to switch flags off: three attempts fail."""
    await c.call(lambda: c.engine.rollback(ALICE, "manual rollback from the console by alice", wait=False))
    for attempt in (1, 2, 3):
        await c.until(pilot, lambda attempt=attempt: c.engine.snapshot.action is not None
                      and c.engine.snapshot.action.attempt == attempt and c.clock.sleepers == 1)
        if attempt < 3:
            await c.tick(pilot)
    await c.settle(pilot)


def refusing_flag_api(tmp_path: Path, console, monkeypatch) -> tuple[Console, FlagService]:
    """The demo on its launch flag alone, through a real loopback flag API that refuses to switch flags off.

    Its refusal (503) is what the screen shows: the provider's timeout is the deadline's, as a 1 s
    one on a loaded machine turned an attempt's "HTTP 503" into "timeout after 1s" (seen in a full run here)."""
    service = FlagService(FLAG_TOKEN).start()
    service.refuse_disable = True
    monkeypatch.setenv("WARROOM_TEST_FLAG_TOKEN", FLAG_TOKEN)
    provider = {"provider": "http", "url": service.url, "token": "env:WARROOM_TEST_FLAG_TOKEN", "timeout": f"{DEADLINE:g}s"}
    c = console(demo(tmp_path, flag_provider=provider, phases=one_flag_phases()), clock=SteppedClock(START))
    c.cleanup.append(service.stop)
    return c, service


def scenario(name: str, tmp_path: Path, console, monkeypatch) -> tuple[Console, Before]:
    if name == "running":
        return console(demo(tmp_path)), nothing
    if name == "rollback_countdown":  # a dependency errs at 3% from 2 s into phase 1; the 10 s window is filling
        return console(faults=(Fault(metric="error_rate", phase=1, after=2, value=0.03, while_exposed=False),)), nothing
    if name == "rolling_back_flag_api_down":
        return refusing_flag_api(tmp_path, console, monkeypatch)[0], rolling_back
    if name == "rolled_back":
        return console(demo(tmp_path)), command(lambda c: lambda: c.engine.rollback(ALICE, "manual rollback from the console by alice"))
    if name == "paused":
        return console(), command(lambda c: lambda: c.engine.pause(ALICE, "checking p99 with the database team"))
    if name == "eleven_items":
        data = yaml.safe_load(resources.files("warroom.plan").joinpath("demo.yaml").read_text(encoding="utf-8"))
        phases = data["phases"]
        phases[0] = {**phases[0], "checklist": ELEVEN, "hold": "2m"}
        return console(demo(tmp_path, phases=phases)), tick_three
    if name == "no_data":  # the service goes dark 3 s into phase 1: panes stale, guardrails hold
        return console(faults=(Fault(mode="dark", phase=1, after=3),)), nothing
    raise AssertionError(name)


SCENARIOS = ["running", "rollback_countdown", "rolling_back_flag_api_down", "rolled_back", "paused", "eleven_items", "no_data"]


def shoot(snap_compare, c: Console, size, after: Before) -> bool:
    async def before(pilot) -> None:
        await c.tick(pilot, times=TICKS)
        await after(c, pilot)
        await pilot.pause()

    return snap_compare(c.app, terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", SCENARIOS)
def test_state(snap_compare, console, tmp_path, monkeypatch, name, size):
    c, after = scenario(name, tmp_path, console, monkeypatch)
    assert shoot(snap_compare, c, size, after)


@pytest.mark.parametrize("size", SIZES)
def test_readonly(snap_compare, console, tmp_path, size):
    assert shoot(snap_compare, console(demo(tmp_path), readonly=True), size, nothing)


async def slow_disk(c: Console, pilot) -> None:
    """The engine's store thread busy past the floor a heartbeat is judged by, the shot taken meanwhile
    (a loaded CI machine's disk): the picture is test_readonly[80x24]'s."""
    c.host.submit(lambda: c.engine.store_thread.call(lambda store: time.sleep(ALIVE_FLOOR + 3 * HEARTBEAT)))
    await pilot.pause(ALIVE_FLOOR + 2 * HEARTBEAT)  # the console's watcher looks at the engine once a second


def test_readonly_while_the_engines_disk_is_slow(snap_compare, console, tmp_path):
    assert shoot(snap_compare, console(demo(tmp_path), readonly=True), (80, 24), slow_disk)


async def engine_gone(c: Console, pilot) -> None:
    assert c.host.stop()
    await c.until(pilot, lambda: c.app.snapshot.engine is not None and not c.app.snapshot.engine.alive)
    # With no engine the ages follow the wall clock: held still 5 s after the last snapshot, so the
    # picture is the same on every run (the ages moving on is test_watching's).
    held = c.app.snapshot.wall + 5
    c.cleanup.append(lambda: setattr(clock_text, "wall_clock", time.time))
    clock_text.wall_clock = lambda: held
    c.app.now = engine_now(c.app.snapshot)
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_no_engine(snap_compare, console, size):
    """The engine stopped with the launch in flight: nothing enforces the guardrails, and every part says so."""
    c = console(faults=(Fault(metric="error_rate", phase=1, after=2, value=0.03, while_exposed=False),))
    assert shoot(snap_compare, c, size, engine_gone)
