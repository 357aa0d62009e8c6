"""Schedules: a launch time, per-phase times, business hours with public holidays (the holidays
library), missed fires by policy — real engines on SQLite driven by their own clock, across a
daylight-saving change in Europe/Berlin."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from tests.engine.test_freezes import OPERATOR, QUICK, kinds
from warroom.core.clock import VirtualClock
from warroom.core.journal_kinds import Kind
from warroom.engine.executor import CommandError
from warroom.plan import hours
from warroom.plan.schedule import BusinessHours

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS = {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00", "holidays": "DE"}
# Easter Monday 2027 is 29 March, the day after the change: without holidays, so the change itself is what is tested.
PLAIN_WEEK = {**WEEKDAYS, "holidays": None}


def berlin(*parts: int) -> float:
    return dt.datetime(*parts, tzinfo=BERLIN).timestamp()


def scheduled(launch: str, **schedule) -> dict:
    return {**QUICK, "poll_interval": "1m", "schedule": {"zone": "Europe/Berlin", "at": launch, **schedule}}


async def test_a_scheduled_launch_fires_at_its_time_and_not_before(make_engine):
    clock = VirtualClock(berlin(2026, 11, 26, 13, 58))
    engine = await make_engine(scheduled("2026-11-26T14:00:00+01:00"), clock=clock)
    snap = await engine.tick()
    assert snap.next_scheduled == "phase 1 Canary 5% at Thu 26 Nov 14:00 CET (in 2m00s)"
    with pytest.raises(CommandError, match="schedule: phase 1 not before Thu 26 Nov 14:00 CET"):
        await engine.step_up(OPERATOR)
    clock.advance(60)
    await engine.tick()
    assert engine.phase_index == 0 and not kinds(engine, Kind.SCHEDULE_FIRED)
    clock.advance(60)
    await engine.tick()
    assert engine.phase_index == 1
    (fired,) = kinds(engine, Kind.SCHEDULE_FIRED)
    assert fired.data["phase"] == 1


async def test_a_scheduled_step_holds_while_frozen_says_why_and_fires_when_thawed(make_engine):
    clock = VirtualClock(berlin(2026, 11, 26, 14, 0))
    engine = await make_engine(scheduled("2026-11-26T14:00:00+01:00"), clock=clock)
    engine.store.add_freeze("Black Friday", None, "alice", clock.now())
    for _ in range(3):
        await engine.tick()
        clock.advance(60)
    assert engine.phase_index == 0
    (held,) = kinds(engine, Kind.SCHEDULE_HELD)  # said once, not every tick
    assert "holds: ad hoc freeze by alice until lifted: Black Friday" in held.message
    engine.store.lift_freezes("bob", clock.now())
    await engine.tick()
    assert engine.phase_index == 1 and kinds(engine, Kind.SCHEDULE_FIRED)
    assert not kinds(engine, Kind.SCHEDULE_MISSED)  # held, then fired: never missed


async def test_a_scheduled_step_on_a_public_holiday_holds_until_business_hours(make_engine):
    clock = VirtualClock(berlin(2026, 12, 25, 10, 0))  # Christmas Day, a Friday
    engine = await make_engine(scheduled("2026-12-25T10:00:00+01:00", business_hours=WEEKDAYS), clock=clock)
    await engine.tick()
    (held,) = kinds(engine, Kind.SCHEDULE_HELD)
    assert "business hours: Fri 25 Dec is a public holiday" in held.message
    assert "next open Mon 28 Dec 09:00 CET" in held.message
    clock.t = berlin(2026, 12, 28, 9, 0)
    await engine.tick()
    assert engine.phase_index == 1


def test_business_hours_across_the_daylight_saving_change_in_berlin():
    week = BusinessHours.model_validate(PLAIN_WEEK)
    friday_evening = berlin(2027, 3, 26, 17, 30)  # CET (+01:00); clocks go forward on Sunday 28 March
    opens = hours.next_open(week, BERLIN, friday_evening)
    assert dt.datetime.fromtimestamp(opens, dt.UTC) == dt.datetime(2027, 3, 29, 7, 0, tzinfo=dt.UTC)  # 09:00 CEST, not 08:00 UTC
    assert hours.closed_because(week, BERLIN, opens) is None
    assert hours.closed_because(week, BERLIN, opens - 1) == "08:59 is outside business hours 09:00–17:00"
    # And back in October: 09:00 CET is 08:00 UTC again.
    assert dt.datetime.fromtimestamp(hours.next_open(week, BERLIN, berlin(2027, 10, 30, 12, 0)), dt.UTC).hour == 8


async def test_the_engine_clock_across_the_dst_change_opens_business_hours_at_local_nine(make_engine):
    clock = VirtualClock(berlin(2027, 3, 26, 16, 58))
    engine = await make_engine({**QUICK, "poll_interval": "1m", "schedule": {"zone": "Europe/Berlin", "business_hours": PLAIN_WEEK}},
                               clock=clock)
    await engine.tick()
    clock.t = berlin(2027, 3, 26, 17, 0)
    snap = await engine.tick()
    assert any("next open Mon 29 Mar 09:00 CEST" in b for b in snap.step_blockers)
    clock.t = dt.datetime(2027, 3, 29, 6, 59, tzinfo=dt.UTC).timestamp()  # 08:59 CEST
    await engine.tick()
    with pytest.raises(CommandError, match="business hours"):
        await engine.step_up(OPERATOR)
    clock.advance(60)
    await engine.tick()
    assert await engine.step_up(OPERATOR) == "stepped up to phase 1"


@pytest.mark.parametrize(("missed", "late", "ran"), [("skip", 3600, False), ({"run_within": "2h"}, 3600, True),
                                                     ({"run_within": "30m"}, 3600, False)])
async def test_a_fire_missed_while_no_engine_looked_follows_the_policy(make_engine, missed, late, ran):
    clock = VirtualClock(berlin(2026, 11, 26, 13, 59))
    engine = await make_engine(scheduled("2026-11-26T14:00:00+01:00", missed=missed), clock=clock)
    await engine.tick()
    clock.advance(60 + late)  # the engine stood still over its fire (stopped, its host asleep)
    await engine.tick()
    (entry,) = kinds(engine, Kind.SCHEDULE_MISSED)
    assert entry.data["ran"] is ran and "was missed by 1h" in entry.message
    assert engine.phase_index == (1 if ran else 0)
    await engine.tick()
    assert len(kinds(engine, Kind.SCHEDULE_MISSED)) == 1  # decided once


async def test_a_phase_at_is_a_scheduled_step_to_that_phase_and_the_journal_keeps_the_plan(make_engine):
    clock = VirtualClock(berlin(2026, 11, 26, 14, 0))
    phases = [dict(p) for p in QUICK["phases"]]
    phases[1]["at"] = "2026-11-26T15:00:00+01:00"
    engine = await make_engine({"phases": phases, "poll_interval": "1m", "schedule": {"zone": "Europe/Berlin"}}, clock=clock)
    await engine.tick()
    await engine.step_up(OPERATOR)
    snap = await engine.tick()
    assert snap.next_scheduled.startswith("phase 2 Half 50% at Thu 26 Nov 15:00 CET")
    assert any(b.startswith("schedule: phase 2 not before Thu 26 Nov 15:00 CET") for b in snap.step_blockers)
    clock.t = berlin(2026, 11, 26, 15, 0)
    await engine.tick()
    assert engine.phase_index == 2 and [e.data["phase"] for e in kinds(engine, Kind.SCHEDULE_FIRED)] == [2]
    assert engine.store.latest_plan()["phases"][1]["at"] == "2026-11-26T15:00:00+01:00"


async def test_a_held_fire_is_still_held_by_the_next_engine_not_missed(make_engine):
    clock = VirtualClock(berlin(2026, 11, 26, 14, 0))
    first = await make_engine(scheduled("2026-11-26T14:00:00+01:00"), clock=clock)
    first.store.add_freeze("Black Friday", None, "alice", clock.now())
    await first.tick()
    assert kinds(first, Kind.SCHEDULE_HELD)
    await first.close()
    clock.advance(3600)  # an hour without an engine
    second = await make_engine(scheduled("2026-11-26T14:00:00+01:00"), clock=clock)
    await second.tick()
    assert not kinds(second, Kind.SCHEDULE_MISSED) and second.phase_index == 0
    second.store.lift_freezes("bob", clock.now())
    await second.tick()
    assert second.phase_index == 1
