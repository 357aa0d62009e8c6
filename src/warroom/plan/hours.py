"""Business hours: whether a step up may happen at an instant, and when the next window opens.

Read in the schedule's zone, so a window of 09:00–17:00 stays 09:00–17:00 across a
daylight-saving change; public holidays come from the `holidays` library by country (`DE`)
or subdivision (`DE-BY`).
"""

from __future__ import annotations

import datetime as dt
import functools

import holidays

from warroom.plan.schedule import DAYS, BusinessHours

_SEARCH_DAYS = 400  # a window that never opens (no days, every day a holiday) is said, not searched forever


@functools.cache
def _calendar(code: str) -> holidays.HolidayBase:
    country, _, subdiv = code.partition("-")
    return holidays.country_holidays(country.upper(), subdiv=subdiv.upper() or None)


def holiday(hours: BusinessHours, day: dt.date) -> str | None:
    """The public holiday's name on `day`, if the business hours name a country and it is one."""
    if not hours.holidays:
        return None
    name = _calendar(hours.holidays).get(day)
    return str(name) if name else None


def closed_because(hours: BusinessHours, zone: dt.tzinfo, when: float) -> str | None:
    """Why `when` is outside business hours (None: inside)."""
    local = dt.datetime.fromtimestamp(when, zone)
    start, end = hours.minutes()
    minute = local.hour * 60 + local.minute
    if DAYS[local.weekday()] not in hours.days:
        return f"{local:%a} is not a business day"
    name = holiday(hours, local.date())
    if name:
        return f"{local:%a %d %b} is a public holiday ({name})"
    if not start <= minute < end:
        return f"{local:%H:%M} is outside business hours {hours.start}–{hours.end}"
    return None


def next_open(hours: BusinessHours, zone: dt.tzinfo, when: float) -> float | None:
    """The first instant at or after `when` inside business hours; None when none opens within a year."""
    if closed_because(hours, zone, when) is None:
        return when
    start, _ = hours.minutes()
    day = dt.datetime.fromtimestamp(when, zone).date()
    for offset in range(_SEARCH_DAYS):
        date = day + dt.timedelta(days=offset)
        # Wall-clock time in the zone: 09:00 is 09:00 on either side of a daylight-saving change.
        opening = dt.datetime(date.year, date.month, date.day, start // 60, start % 60, tzinfo=zone).timestamp()
        if opening >= when and closed_because(hours, zone, opening) is None:
            return opening
    return None
