"""The plan's freeze calendar: a real iCalendar file and a real HTTP server on loopback, RRULE and
EXDATE expanded by recurring-ical-events, bad calendars refused in bounded time with their name."""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import pytest

from tests.engine.test_freezes import OPERATOR, QUICK, kinds
from tests.support.loopback import Loopback
from warroom.core.clock import VirtualClock
from warroom.core.journal_kinds import Kind
from warroom.engine.executor import CommandError
from warroom.outbound.freeze_calendar import MAX_RULE_STEPS, expand

BERLIN = ZoneInfo("Europe/Berlin")
# Black Friday every year 06:00–18:00 Berlin time, but not in 2027 (EXDATE).
BLACK_FRIDAY = b"""BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//warroom tests//EN
BEGIN:VEVENT
UID:black-friday@warroom
DTSTART;TZID=Europe/Berlin:20261127T060000
DTEND;TZID=Europe/Berlin:20261127T180000
RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4FR
EXDATE;TZID=Europe/Berlin:20271126T060000
SUMMARY:Black Friday
END:VEVENT
END:VCALENDAR
"""


def at(*parts: int) -> float:
    return dt.datetime(*parts, tzinfo=BERLIN).timestamp()


def plan_with(calendar: str, **schedule) -> dict:
    return {**QUICK, "schedule": {"zone": "Europe/Berlin", "freezes": {"calendar": calendar, "refresh": "5m"}, **schedule}}


def test_rrule_and_exdate_are_expanded_in_the_zone():
    found = expand(BLACK_FRIDAY, "freezes.ics", BERLIN, at(2026, 11, 1, 0, 0), 4 * 366 * 86400)
    starts = [dt.datetime.fromtimestamp(f.start, BERLIN).strftime("%Y-%m-%d %H:%M") for f in found]
    assert starts == ["2026-11-27 06:00", "2028-11-24 06:00", "2029-11-23 06:00"]  # 2027-11-26 excepted
    assert found[0].until == at(2026, 11, 27, 18, 0) and found[0].reason == "Black Friday"


@pytest.mark.parametrize("rule", ["FREQ=SECONDLY", "FREQ=MINUTELY;INTERVAL=1", "FREQ=DAILY;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11;"
                                  "BYMINUTE=0,5,10,15,20,25,30,35,40,45,50,55;BYSECOND=0,10,20,30,40,50"])
def test_an_endlessly_recurring_event_is_refused_in_bounded_time_with_its_name(rule):
    text = BLACK_FRIDAY.replace(b"RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4FR", f"RRULE:{rule}".encode()).replace(
        b"DTSTART;TZID=Europe/Berlin:20261127T060000", b"DTSTART:20200101T000000Z").replace(
        b"DTEND;TZID=Europe/Berlin:20261127T180000", b"DTEND:20200101T000001Z")
    started = time.process_time()
    with pytest.raises(ValueError, match=rf"freezes.ics: event 'Black Friday' \(UID black-friday@warroom\) recurs .* more than {MAX_RULE_STEPS:,}"):
        expand(text, "freezes.ics", BERLIN, at(2026, 11, 1, 0, 0), 90 * 86400)
    assert time.process_time() - started < 5  # refused before expanding: no walk over millions of steps


def test_garbage_and_huge_calendars_are_refused_by_name():
    with pytest.raises(ValueError, match=r"^freezes.ics: not an iCalendar file"):
        expand(b"<html>oops</html>", "freezes.ics", BERLIN, 0, 86400)
    with pytest.raises(ValueError, match=r"^freezes.ics: \d+ bytes, more than"):
        expand(b"X" * 3_000_000, "freezes.ics", BERLIN, 0, 86400)


async def test_a_calendar_file_freezes_the_engine_and_the_banner_says_until_when(make_engine, tmp_path):
    (tmp_path / "freezes.ics").write_bytes(BLACK_FRIDAY)
    clock = VirtualClock(at(2026, 11, 27, 17, 50))
    engine = await make_engine(plan_with("freezes.ics"), clock=clock)
    snap = await engine.tick()
    assert snap.freeze_banner(snap.now) == "FREEZE until 18:00 (Black Friday) · rollback allowed"
    with pytest.raises(CommandError, match="calendar freeze until 18:00: Black Friday"):
        await engine.step_up(OPERATOR, force=True, reason="ship it")
    clock.advance(11 * 60)  # across the freeze's end, on the engine's clock
    snap = await engine.tick()
    assert not snap.freezes and kinds(engine, Kind.FREEZE_END)
    assert await engine.step_up(OPERATOR) == "stepped up to phase 1"


async def test_an_unreachable_calendar_url_uses_the_last_good_copy_and_says_its_age(make_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    server = Loopback(lambda request: (200, {"Content-Type": "text/calendar"}, BLACK_FRIDAY))
    clock = VirtualClock(at(2026, 11, 27, 12, 0))
    engine = await make_engine(plan_with(f"{server.url}/freezes.ics"), clock=clock)
    assert (await engine.tick()).freezes
    server.stop()
    clock.advance(6 * 60)  # the next read is due: the server is gone
    snap = await engine.tick()
    assert [f.reason for f in snap.freezes] == ["Black Friday"]  # still frozen, from the copy
    (said,) = [e for e in kinds(engine, Kind.FREEZE_CALENDAR) if e.data["problem"]]
    assert f"cannot read {server.url}/freezes.ics" in said.message and "using the last good copy" in said.message
    assert " old" in said.message


async def test_a_calendar_never_read_blocks_step_ups_and_says_so(make_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    engine = await make_engine(plan_with("http://127.0.0.1:9/freezes.ics"), clock=VirtualClock(at(2026, 11, 20, 12, 0)))
    await engine.tick()
    (said,) = kinds(engine, Kind.FREEZE_CALENDAR)
    assert "no earlier copy: no calendar freeze is known" in said.message
    assert await engine.step_up(OPERATOR) == "stepped up to phase 1"  # read (badly): nothing known freezes it


async def test_a_calendar_file_caught_mid_rewrite_keeps_the_freezes_last_read(make_engine, tmp_path):
    (tmp_path / "freezes.ics").write_bytes(BLACK_FRIDAY)
    clock = VirtualClock(at(2026, 11, 27, 12, 0))
    engine = await make_engine(plan_with("freezes.ics"), clock=clock)
    assert (await engine.tick()).freezes
    (tmp_path / "freezes.ics").write_bytes(BLACK_FRIDAY[:40])  # an editor's write, half done
    clock.advance(6 * 60)
    snap = await engine.tick()
    assert [f.reason for f in snap.freezes] == ["Black Friday"]
    (said,) = [e for e in kinds(engine, Kind.FREEZE_CALENDAR) if e.data["problem"]]
    assert "not an iCalendar file" in said.message and "using the last good copy" in said.message
