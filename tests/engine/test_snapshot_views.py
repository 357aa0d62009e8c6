"""The facts a snapshot gives a console: phase exposures, the latest rollback, the clock."""

from __future__ import annotations

import time

from tests.conftest import ALICE
from warroom.core.clock import RealClock, ScaledClock
from warroom.core.snapshot import RunbookStepView, State

PHASES = [
    {"name": "Canary", "flags": {"feature": 5, "health": 100}, "hold": "0s"},
    {"name": "Wide", "flags": {"feature": 50, "health": 100}, "hold": "0s"},
    {"name": "Full", "flags": {"feature": 100, "health": 100}, "hold": "0s"},
]
RUNBOOK = {"steps": [{"name": "Drain", "run": ["true"]}, {"name": "Tell the channel", "run": ["false"]}], "dry_run": False}


async def test_each_phase_says_its_exposure_and_a_step_lists_only_what_changes(make_engine):
    engine = await make_engine({"phases": PHASES})
    snap = await engine.tick()
    # `health` is 100% in every phase: the strip leaves it out (it says nothing of progress).
    assert snap.phase_exposures == ("5%", "50%", "100%")
    assert snap.next_change == "phase 1/3 Canary: feature: absent → 5%, health: absent → 100%"
    await engine.step_up(ALICE)
    # `health` stays at 100%: a step that leaves it alone does not list it.
    assert (await engine.tick()).next_change == "phase 2/3 Wide: feature: 5% → 50%"


async def test_the_latest_rollback_says_why_who_flags_and_each_runbook_step(make_engine):
    engine = await make_engine({"rollback": RUNBOOK})
    await engine.tick()
    await engine.step_up(ALICE)
    assert (await engine.tick()).rollback is None  # nothing rolled back: nothing to say
    await engine.rollback(ALICE, "p99 climbing")
    snap = await engine.tick()
    back = snap.rollback
    assert snap.state == State.ROLLED_BACK and back is not None
    assert (back.reason, back.by.split()[0], back.from_phase) == ("p99 climbing", "alice", 1)
    assert back.confirmed == "feature off" and back.confirmed_at is not None
    assert back.steps == (RunbookStepView("Drain", "ok", "ok"), RunbookStepView("Tell the channel", "failed", "exit status 1"))
    assert back.outcome == "rolled back; 1 runbook step(s) failed: Tell the channel" and back.finished_at is not None
    await engine.retry(ALICE)
    assert (await engine.tick()).rollback is None


async def test_the_snapshot_carries_what_a_screen_needs_to_move_its_clock(make_engine):
    virtual = await make_engine()
    snap = await virtual.tick()
    assert (snap.clock_rate, snap.poll_interval) == (0.0, 5.0)  # virtual time moves only when driven
    fast = await make_engine({"state": "fast.sqlite"}, clock=ScaledClock(60.0))
    before = time.time()
    snap = await fast.tick()
    assert snap.clock_rate == 60.0 and before <= snap.wall <= time.time()
    real = await make_engine({"state": "real.sqlite"}, clock=RealClock())
    assert (await real.tick()).clock_rate == 1.0

