"""The screen itself, at 80×24 and 160×48, in each state a launch team must read at a glance.

Deterministic: virtual clock from a fixed instant, seeded simulator, an explicit actor,
ticks driven by the test. Review changes with `pytest --snapshot-update` and look at them.
"""

from __future__ import annotations

import pytest

from tests.conftest import ALICE
from warroom.plan import Fault

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]
TICKS = 8  # the demo enters phase 1 on the first tick; 8 s of history and soak


def shoot(snap_compare, c, size, after=None) -> bool:
    async def before(pilot) -> None:
        await c.tick(pilot, times=TICKS)
        if after is not None:
            await after(pilot)
        # Toasts come and go with timing; the screen under them is what is compared.
        c.app.clear_notifications()
        await pilot.pause()

    return snap_compare(c.app, terminal_size=size, run_before=before)


def pause(c):
    return lambda: c.engine.pause(ALICE, "checking p99 with the database team")


def roll_back(c):
    return lambda: c.engine.rollback(ALICE, "manual rollback from the console by alice")


# name -> (simulator faults, the command run after the ticks, if any)
SCENARIOS = {
    "running": ((), None),
    # A bad dependency: errors at 3% from 2 s into phase 1; the 10 s `for` window is filling.
    "breaching": ((Fault(metric="error_rate", phase=1, after=2, value=0.03, while_exposed=False),), None),
    "paused": ((), pause),
    "rolled_back": ((), roll_back),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_state(snap_compare, console, scenario, size):
    faults, command = SCENARIOS[scenario]
    c = console(faults=faults)

    async def act(pilot) -> None:
        await c.call(command(c))
        await c.tick(pilot)

    assert shoot(snap_compare, c, size, act if command else None)


@pytest.mark.parametrize("size", SIZES)
def test_readonly(snap_compare, console, size):
    assert shoot(snap_compare, console(readonly=True), size)


@pytest.mark.parametrize("size", SIZES)
def test_no_engine(snap_compare, console, size):
    """The engine stopped with the launch in flight: nothing enforces the guardrails, and every part says so."""
    c = console(faults=(Fault(metric="error_rate", phase=1, after=2, value=0.03),))

    async def engine_gone(pilot) -> None:
        assert c.host.stop()
        await c.until(pilot, lambda: c.app.snapshot.engine is not None and not c.app.snapshot.engine.alive)

    assert shoot(snap_compare, c, size, engine_gone)
