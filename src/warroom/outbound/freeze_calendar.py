"""The plan's freeze calendar: an iCalendar (RFC 5545) file or URL, expanded into freezes.

Recurrences (RRULE, RDATE, EXDATE, time zones) are expanded by `recurring-ical-events`, within
the schedule's horizon and at most MAX_OCCURRENCES: an endlessly recurring event costs a
bounded time. A URL is asked with a deadline; when it cannot be read, the last good copy
(kept on disk beside the state folder, so a restarted engine has it too) is used and its age
said. Bad input is a message naming the calendar, never an exception out of here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import itertools
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warroom.core.freeze import Freeze, FreezeKind
from warroom.core.secrets import excerpt, redact
from warroom.core.units import format_duration
from warroom.plan.schedule import FreezeCalendar

MAX_BYTES = 2_000_000  # a calendar bigger than this is refused, not parsed
MAX_OCCURRENCES = 2000  # occurrences expanded per read: far more than a year of real freezes
# Steps a rule may take from its first occurrence to the horizon: expansion walks every one of them
# (a FREQ=SECONDLY rule from last year is tens of millions), so a rule that would take more is refused.
MAX_RULE_STEPS = 200_000
_FREQ_SECONDS = {"SECONDLY": 1, "MINUTELY": 60, "HOURLY": 3600, "DAILY": 86400, "WEEKLY": 7 * 86400,
                 "MONTHLY": 28 * 86400, "YEARLY": 365 * 86400}
_BY_PARTS = ("BYSECOND", "BYMINUTE", "BYHOUR", "BYDAY", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYMONTH", "BYSETPOS")
FETCH_TIMEOUT = 10.0


@dataclass(frozen=True)
class CalendarRead:
    freezes: tuple[Freeze, ...]
    problem: str = ""  # why this read is not a fresh, whole one ("" when it is)


def _cache_path(source: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "warroom" / "calendars"
    return base / (hashlib.sha1(source.encode()).hexdigest()[:20] + ".ics")


def _instant(value: Any, zone: dt.tzinfo) -> float:
    """An iCalendar DTSTART/DTEND: a date (all day, midnight in the schedule's zone) or a time (floating: that zone)."""
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=zone)).timestamp()
    return dt.datetime(value.year, value.month, value.day, tzinfo=zone).timestamp()


def expand(text: bytes, name: str, zone: dt.tzinfo, start: float, horizon: float) -> tuple[Freeze, ...]:
    """The freezes of a calendar overlapping [start, start + horizon]; ValueError naming `name` when it is not one."""
    import icalendar
    import recurring_ical_events

    if len(text) > MAX_BYTES:
        raise ValueError(f"{name}: {len(text)} bytes, more than {MAX_BYTES} (is it a calendar?)")
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except Exception as exc:  # the parser's errors are many kinds: every one means "not a calendar we can read"
        raise ValueError(f"{name}: not an iCalendar file ({excerpt(str(exc), 120)})") from None
    begin = dt.datetime.fromtimestamp(start, dt.UTC)
    end = begin + dt.timedelta(seconds=horizon)
    _bounded(calendar, name, zone, end.timestamp())
    found: list[Freeze] = []
    try:
        occurrences = recurring_ical_events.of(calendar).after(begin)  # in order, lazily: stopped at the horizon
        for event in itertools.islice(occurrences, MAX_OCCURRENCES):
            first = _instant(event["DTSTART"].dt, zone)
            if first > end.timestamp():
                break
            last = _instant(event["DTEND"].dt, zone) if "DTEND" in event else first + 86400.0
            found.append(Freeze(FreezeKind.CALENDAR, str(event.get("SUMMARY", "freeze")), start=first, until=last))
    except Exception as exc:  # a broken rule (RRULE:FREQ=NEVER) is the calendar's problem, said
        raise ValueError(f"{name}: cannot expand its events ({excerpt(str(exc), 120)})") from None
    return tuple(found)


def _bounded(calendar: Any, name: str, zone: dt.tzinfo, end: float) -> None:
    """Refuse a rule whose expansion up to `end` would take more than MAX_RULE_STEPS steps."""
    for event in calendar.walk("VEVENT"):
        rule = event.get("RRULE")
        if not rule or "DTSTART" not in event:
            continue
        freq = str((rule.get("FREQ") or ["DAILY"])[0]).upper()
        interval = int((rule.get("INTERVAL") or [1])[0])
        per_step = 1
        for part in _BY_PARTS:
            per_step *= max(1, len(rule.get(part) or ()))
        span = max(0.0, end - _instant(event["DTSTART"].dt, zone))
        steps = span / (_FREQ_SECONDS.get(freq, 86400) * max(1, interval)) * per_step
        if steps > MAX_RULE_STEPS:
            summary = excerpt(str(event.get("SUMMARY", "")), 60)
            raise ValueError(f"{name}: event {summary!r} (UID {excerpt(str(event.get('UID', '?')), 60)}) recurs {freq} from "
                             f"{event['DTSTART'].dt}: about {steps:,.0f} occurrences up to the horizon, more than {MAX_RULE_STEPS:,}; "
                             "give it a coarser rule or a later start")


class FreezeCalendarReader:
    """Reads the plan's freeze calendar again every `refresh`; keeps the last good copy."""

    def __init__(self, config: FreezeCalendar, base_dir: Path, zone: dt.tzinfo):
        self.config = config
        self.zone = zone
        self.url = config.calendar if config.calendar.startswith(("http://", "https://")) else None
        self.path = None if self.url else (base_dir / config.calendar).resolve()
        self.name = redact(self.url) if self.url else str(self.path)
        # The last calendar read whole, and when (wall time): a file caught mid-rewrite or a URL away stands on it.
        self._good: tuple[bytes, float] | None = None

    async def _fetch(self) -> bytes:
        if self.path is not None:
            return self.path.read_bytes()[: MAX_BYTES + 1]
        from warroom.outbound import http

        assert self.url is not None
        async with http.client(FETCH_TIMEOUT) as client:
            response = await http.request(client, "GET", self.url, timeout=FETCH_TIMEOUT)
        if response.status_code != 200:
            raise OSError(f"HTTP {response.status_code}")
        return response.content

    async def read(self, now: float) -> CalendarRead:
        try:
            text = await self._fetch()
        except Exception as exc:  # unreachable, refused, a file gone: the last good copy stands in
            return self._last_good(now, f"cannot read {self.name} ({redact(type(exc).__name__ + ': ' + str(exc))[:160]})")
        try:  # in a worker thread: a big calendar never holds the engine's loop
            freezes = await asyncio.to_thread(expand, text, self.name, self.zone, now, self.config.horizon)
        except ValueError as exc:
            return self._last_good(now, str(exc))
        self._good = (text, time.time())
        if self.url:
            cache = _cache_path(self.url)
            try:
                cache.parent.mkdir(parents=True, exist_ok=True)
                cache.write_bytes(text)
            except OSError:
                pass  # the copy is a fallback; the calendar itself was read
        return CalendarRead(freezes)

    def _last_good(self, now: float, why: str) -> CalendarRead:
        """This process's last whole read, else (a URL) the copy on disk from an engine before; its age said."""
        cache = _cache_path(self.url) if self.url else None
        if self._good is not None:
            text, read_at = self._good
        elif cache is not None and cache.exists():
            text, read_at = cache.read_bytes(), cache.stat().st_mtime
        else:
            return CalendarRead((), f"{why}; no earlier copy: no calendar freeze is known")
        age = time.time() - read_at
        try:
            freezes = expand(text, self.name, self.zone, now, self.config.horizon)
        except ValueError as exc:
            return CalendarRead((), f"{why}; the last copy is unreadable too ({exc})")
        return CalendarRead(freezes, f"{why}; using the last good copy, {format_duration(age)} old")
