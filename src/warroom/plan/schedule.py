"""The plan's clock times (schema only): when the launch may start, when each phase may begin,
business hours with public holidays, what a missed fire does, and the freeze calendar.

```yaml
schedule:
  zone: Europe/Berlin                      # how times are shown and business hours read
  at: 2026-11-27T14:00:00Z                 # the launch: a scheduled step up to phase 1
  business_hours: {days: [mon, tue, wed, thu, fri], from: "09:00", to: "17:00", holidays: DE}
  missed: skip                             # or {run_within: 15m}
  freezes: {calendar: freezes.ics}         # or an https:// URL; RRULE and EXDATE expanded
phases:
  - {name: Half 50%, flags: {f: 50}, at: 2026-11-27T15:00:00Z}   # a scheduled step up to this phase
  - {name: Full, flags: {f: 100}, not_before: 2026-11-30T09:00:00+01:00}  # its earliest time only
```

A scheduled step is a request: when it fires, gates, freezes and business hours are
checked again; if they fail it holds and says why (engine/schedule.py).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, BeforeValidator, Field

from warroom.plan.fields import PositiveDuration, Strict

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _instant(value: Any) -> dt.datetime:
    """An ISO 8601 time with its zone (YAML may hand a datetime already); a time without one is refused."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"expected an ISO 8601 time with its zone (2026-11-27T14:00:00+01:00 or …Z), got {value!r}") from None
    if not isinstance(value, dt.datetime):
        raise ValueError("expected an ISO 8601 time with its zone (2026-11-27T14:00:00+01:00 or …Z)")
    if value.tzinfo is None:
        raise ValueError(f"{value.isoformat()} has no zone: add one (…+01:00, …Z), so every host reads the same instant")
    return value


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        near = sorted(z for z in available_timezones() if z.lower().endswith(name.lower().rpartition("/")[2]))[:3]
        raise ValueError(f"unknown time zone {name!r}" + (f" (did you mean {', '.join(near)}?)" if near else
                                                          " (an IANA name like Europe/Berlin, America/New_York or UTC)")) from None
    return name


def _clock(value: Any) -> str:
    text = str(value)
    if not _CLOCK.match(text):
        raise ValueError(f"expected a time of day HH:MM (quote it in YAML: \"09:00\"), got {text!r}")
    return text


Instant = Annotated[dt.datetime, BeforeValidator(_instant)]
Zone = Annotated[str, AfterValidator(_zone)]
ClockTime = Annotated[str, BeforeValidator(_clock)]


class BusinessHours(Strict):
    days: list[Day] = Field(default_factory=lambda: list(DAYS[:5]))
    start: ClockTime = Field(alias="from")
    end: ClockTime = Field(alias="to")
    # Public holidays of a country (ISO 3166 code, `DE`) or a subdivision (`DE-BY`), by the holidays library.
    holidays: str | None = None

    def minutes(self) -> tuple[int, int]:
        (h1, m1), (h2, m2) = (map(int, t.split(":")) for t in (self.start, self.end))
        return h1 * 60 + m1, h2 * 60 + m2


class RunWithin(Strict):
    run_within: PositiveDuration


class FreezeCalendar(Strict):
    calendar: str  # a file (relative to the plan) or an http(s) URL of an iCalendar (RFC 5545)
    # How far ahead recurrences are expanded (a rule without an end is bounded here), and how often a URL is asked again.
    horizon: PositiveDuration = 90 * 86400.0
    refresh: PositiveDuration = 300.0


class Schedule(Strict):
    zone: Zone = "UTC"
    at: Instant | None = None
    business_hours: BusinessHours | None = None
    missed: Literal["skip"] | RunWithin = "skip"
    freezes: FreezeCalendar | None = None
    # A required step's deadline (the launch's last phase by then): `check` refuses a plan whose step would
    # fall wholly inside a freeze before it.
    deadline: Instant | None = None

    def tz(self) -> dt.tzinfo:
        return ZoneInfo(self.zone)

    def run_within(self) -> float:
        """How late a missed fire may still run (0: skipped)."""
        return self.missed.run_within if isinstance(self.missed, RunWithin) else 0.0
