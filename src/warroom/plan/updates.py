"""`updates:` — the stakeholder updates a plan promises: how often, after what, at which times, and who owns them.

    updates:
      owner: Dana Reyes (product)     # a named person: reminded when one is overdue, approves each one
      every: 15m                      # while the launch is in flight
      after_incident: 5m              # within this of a rollback or a guardrail breach
      at: ["09:00", "16:00"]          # fixed times of day (also 9 AM, 4 PM) …
      zone: Europe/Berlin             # … in this zone (IANA name; default UTC)
      auto: false                     # true: the engine posts each update itself, nobody approves
      draft_before: 5m                # a timed update is drafted this long before it is due

The engine drafts each update from the journal, reminds the owner when one is overdue
and posts it once approved (engine/updates.py); this module is the schema and its checks.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from warroom.core.units import format_duration
from warroom.plan.fields import Duration, PositiveDuration, Strict

_CLOCK = re.compile(r"^\s*(\d{1,2})(?::(\d{2}))?\s*([AaPp]\.?[Mm]\.?)?\s*$")
TIME_HELP = "a time of day like 09:00, 16:30, 9 AM or 4 PM"


def time_of_day(value: Any) -> time:
    """`09:00`, `16:30`, `9 AM`, `4:30 pm` → a time of day; anything else is refused with how to write it."""
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 09:00 as a number of minutes (sexagesimal): 540.
        raise ValueError(f"write the time quoted (\"{value // 60:02d}:{value % 60:02d}\"): YAML read it as the number {value}")
    match = _CLOCK.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"expected {TIME_HELP}")
    hour, minute, half = int(match.group(1)), int(match.group(2) or 0), (match.group(3) or "").lower().replace(".", "")
    if half:
        if not 1 <= hour <= 12:
            raise ValueError(f"{value!r}: an AM/PM hour is 1 to 12")
        hour = hour % 12 + (12 if half == "pm" else 0)
    elif match.group(2) is None:
        raise ValueError(f"{value!r}: write the minutes or AM/PM ({hour:02d}:00, or {hour} AM)")
    if hour > 23 or minute > 59:
        raise ValueError(f"{value!r} is no time of day; expected {TIME_HELP}")
    return time(hour, minute)


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}: give an IANA name such as UTC, Europe/Berlin or America/New_York") from None
    return name


TimeOfDay = Annotated[time, BeforeValidator(time_of_day)]


class Updates(Strict):
    owner: Annotated[str, Field(min_length=1, max_length=120)]
    every: PositiveDuration | None = None
    after_incident: PositiveDuration | None = None
    at: list[TimeOfDay] = []
    zone: Annotated[str, AfterValidator(_zone)] = "UTC"
    auto: bool = False
    draft_before: Duration = 300.0
    # Where published updates are archived as HTML files; default: beside the state, `<state>.updates/`.
    archive: str | None = None

    @model_validator(mode="after")
    def _promises_something(self) -> Updates:
        if self.every is None and self.after_incident is None and not self.at:
            raise ValueError("updates promise nothing: give `every` (while in flight), `after_incident` or `at` (times of day)")
        if not self.owner.strip():
            raise ValueError("updates.owner: name the person who approves each update")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    def promises(self) -> str:
        """The cadence in words: `every 15m in flight · within 5m of a rollback or breach · 09:00, 16:00 Europe/Berlin`."""
        parts = []
        if self.every is not None:
            parts.append(f"every {format_duration(self.every)} while in flight")
        if self.after_incident is not None:
            parts.append(f"within {format_duration(self.after_incident)} of a rollback or breach")
        if self.at:
            parts.append(", ".join(t.strftime("%H:%M") for t in self.at) + f" {self.zone}")
        return " · ".join(parts)
