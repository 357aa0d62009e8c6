"""What the page says of numbers an engine that is alive has not published for a while: stale, with
their age, in words; and nothing stale while they are fresh. (A real engine's snapshot; the engine's
death is tested on the served page, tests/page/test_one_truth.py.)"""

from __future__ import annotations

import dataclasses

from tests.engine.test_engine import enter_phase_one
from warroom.core.freeze import Freeze, FreezeKind
from warroom.core.snapshot import EngineView
from warroom.page.view import STALE_FLOOR, page_view


async def test_numbers_older_than_three_polls_are_called_stale_with_their_age(make_engine):
    engine = await make_engine()
    await enter_phase_one(engine)
    snap = dataclasses.replace(await engine.tick(), engine=EngineView(True, "alice@bastion pid 1"), wall=1_800_000_000.0)
    stale_after = max(STALE_FLOOR, 3 * snap.poll_interval)
    assert stale_after == 15  # BASE_PLAN polls every 5 s
    fresh = page_view(snap, None, wall=snap.wall + stale_after)
    assert fresh.stale == "" and not fresh.engine_gone and fresh.condition.word == "RUNNING"
    old = page_view(snap, None, wall=snap.wall + stale_after + 60)
    assert old.stale == "the numbers are 1m15s old" and not old.engine_gone
    gone = page_view(dataclasses.replace(snap, engine=EngineView(False)), None, wall=snap.wall + 1)
    assert gone.engine_gone and gone.condition.word.startswith("NO ENGINE")


async def test_a_stop_the_line_and_a_calendar_freeze_are_each_listed_and_the_banner_names_the_longest(make_engine):
    engine = await make_engine()
    await enter_phase_one(engine)
    snap = await engine.tick()
    line = Freeze(FreezeKind.STOP_THE_LINE, "incident 4711", start=snap.now - 60, by="alice from 10.0.0.7 on pts/3")
    calendar = Freeze(FreezeKind.CALENDAR, "Black Friday", start=snap.now - 3600, until=snap.now + 7200)
    view = page_view(dataclasses.replace(snap, freezes=(calendar, line), wall=1_800_000_000.0), None, wall=1_800_000_000.0)
    assert view.freeze == "STOP-THE-LINE until lifted (incident 4711) · rollback allowed"
    assert [(f.banner, f.kind, f.by) for f in view.freezes] == [
        (calendar.banner(snap.now), "calendar", ""),
        ("STOP-THE-LINE until lifted (incident 4711) · rollback allowed", "stop-the-line", "alice")]
