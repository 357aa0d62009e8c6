"""A freeze: a span of time in which going forward is refused and going back is not.

A freeze blocks step ups and scheduled advances; rollback, pause and step-down never wait
on one. Freezes come from four places (`FreezeKind`); the engine gathers the ones in force
each tick, and every screen shows them from the snapshot.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from warroom.core.words import Word


class FreezeKind(Word):
    AD_HOC = "ad hoc", "`warroom freeze PLAN --until TIME --reason TEXT`: this rollout, until a time or a thaw"
    STOP_THE_LINE = "stop-the-line", "`warroom freeze --all`: every rollout on the store, until lifted"
    CALENDAR = "calendar", "an event of the plan's freeze calendar (iCalendar file or URL)"
    VENDOR = "flag service", "the flag service itself refuses changes (Unleash's maintenance mode)"


@dataclass(frozen=True)
class Freeze:
    kind: FreezeKind
    reason: str
    start: float | None = None  # epoch seconds; None: in force since before anyone looked
    until: float | None = None  # epoch seconds; None: until lifted
    by: str = ""  # who froze (a human's label), "" for a calendar or the flag service

    def covers(self, now: float) -> bool:
        return (self.start is None or self.start <= now) and (self.until is None or now < self.until)

    def until_text(self, now: float, zone: dt.tzinfo = dt.UTC) -> str:
        """`until 18:00` the same day, `until Fri 27 Nov 18:00` later, `until lifted` without an end."""
        if self.until is None:
            return "until lifted"
        end = dt.datetime.fromtimestamp(self.until, zone)
        today = dt.datetime.fromtimestamp(now, zone).date()
        return f"until {end:%H:%M}" if end.date() == today else f"until {end:%a %d %b %H:%M}"

    def banner(self, now: float, zone: dt.tzinfo = dt.UTC) -> str:
        """`FREEZE until 18:00 (Black Friday) · rollback allowed`."""
        what = "STOP-THE-LINE" if self.kind == FreezeKind.STOP_THE_LINE else "FREEZE"
        return f"{what} {self.until_text(now, zone)} ({self.reason}) · rollback allowed"

    def blocker(self, now: float, zone: dt.tzinfo = dt.UTC) -> str:
        """Why a step up is refused, in one line."""
        by = f" by {self.by}" if self.by else ""
        return f"{self.kind.value} freeze{by} {self.until_text(now, zone)}: {self.reason} (rollback, pause and step-down are allowed)"


def longest(freezes: tuple[Freeze, ...] | list[Freeze]) -> Freeze | None:
    """The freeze a banner names: the one that lasts longest (no end outlasts every end)."""
    if not freezes:
        return None
    return max(freezes, key=lambda f: float("inf") if f.until is None else f.until)
