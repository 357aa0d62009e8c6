"""Which freezes are in force now, the step-up blockers they make, and what changed (to journal).

A freeze refuses going forward (a step up, forced or not; a scheduled advance) and never
going back: rollback, pause and step-down do not ask here. The engine's step blockers
call `blockers`, beside the plan's own gates (policy.py) and approvals. The freezes come
from the store's rows (`warroom freeze`, a stop-the-line), read every tick, and from the
flag service itself (Unleash's maintenance mode). What began or ended comes back as notes for
the façade to journal.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Iterable

from warroom.core.freeze import Freeze, FreezeKind
from warroom.core.journal_kinds import Kind
from warroom.engine.automation import Note
from warroom.outbound.freeze_calendar import CalendarRead, FreezeCalendarReader
from warroom.plan.model import Plan
from warroom.store.base import StoredFreeze, StoreError

VENDOR = "vendor"  # the flag service's own freeze, among the store's row ids
ROWS_BUDGET = 0.25  # seconds a tick waits for the store's freeze rows before going on with those last read


def of_row(row: StoredFreeze) -> Freeze:
    kind = FreezeKind.STOP_THE_LINE if row.every_rollout else FreezeKind.AD_HOC
    return Freeze(kind, row.reason, until=row.until, by=row.by)  # in force from the moment it is written


def blockers(freezes: Iterable[Freeze], now: float, zone: dt.tzinfo) -> list[str]:
    """Why a step up is refused: one line a freeze. Even a forced step up is (a freeze is the room's
    decision not to go forward; lifting it is `warroom thaw`, journaled with who)."""
    return [f.blocker(now, zone) for f in freezes]


class CalendarWatch:
    """The plan's freeze calendar, read again every `refresh` of clock time, never holding a tick."""

    def __init__(self, reader: FreezeCalendarReader):
        self.reader = reader
        self.latest: CalendarRead | None = None  # None: not read yet (step ups wait for the first read)
        self.due = 0.0
        self.reading: asyncio.Task[CalendarRead] | None = None
        self._said = ""  # the problem last journaled

    def refresh(self, now: float) -> asyncio.Task[CalendarRead] | None:
        """Start a read when one is due; the task (to await in virtual time), or None."""
        if self.reading is not None and self.reading.done():
            self.latest = self.reading.result()
            self.reading = None
        if self.reading is None and now >= self.due:
            self.due = now + self.reader.config.refresh
            self.reading = asyncio.ensure_future(self.reader.read(now))
            return self.reading
        return None

    def news(self) -> list[Note]:
        """The calendar's problem when it changed: unreadable, and what stands in (the last good copy, its age)."""
        problem = self.latest.problem if self.latest is not None else ""
        key = problem.split("; using the last good copy")[0]  # its age grows every read: news only when the cause changes
        if key == self._said:
            return []
        self._said = key
        if not problem:
            return [Note(Kind.FREEZE_CALENDAR, f"freeze calendar {self.reader.name} read again", {"problem": ""})]
        return [Note(Kind.FREEZE_CALENDAR, f"freeze calendar: {problem}", {"problem": problem})]

    def freezes(self) -> tuple[Freeze, ...]:
        return self.latest.freezes if self.latest is not None else ()

    def blockers(self) -> list[str]:
        return [] if self.latest is not None else [f"freeze calendar {self.reader.name}: not read yet"]

    def cancel(self) -> None:
        if self.reading is not None:
            self.reading.cancel()


class FreezeWatch:
    """The freezes as this engine last looked: those in force, and the news since the look before."""

    def __init__(self, zone: dt.tzinfo) -> None:
        self.zone = zone
        self.in_force: tuple[Freeze, ...] = ()
        self._seen: dict[str, Freeze] = {}  # row id (or VENDOR) -> the freeze in force at the last look

    def look(self, rows: list[StoredFreeze], vendor: str | None, now: float, calendar: tuple[Freeze, ...] = ()) -> list[Note]:
        """Take this tick's rows, the calendar's and the flag service's word; the journal entries for what began or ended."""
        current: dict[str, Freeze] = {str(r.id): of_row(r) for r in rows if r.lifted is None and of_row(r).covers(now)}
        current.update({f"calendar {f.start:.0f} {f.reason}": f for f in calendar if f.covers(now)})
        if vendor:
            current[VENDOR] = Freeze(FreezeKind.VENDOR, vendor)
        notes = [self._began(key, f, now, self.zone) for key, f in current.items() if key not in self._seen]
        lifted = {str(r.id): r for r in rows if r.lifted is not None}
        notes += [self._ended(key, f, lifted.get(key)) for key, f in self._seen.items() if key not in current]
        self._seen = current
        self.in_force = tuple(current.values())
        return notes

    @staticmethod
    def _began(key: str, freeze: Freeze, now: float, zone: dt.tzinfo) -> Note:
        scope = " (every rollout on this store)" if freeze.kind == FreezeKind.STOP_THE_LINE else ""
        by = f" by {freeze.by}" if freeze.by else ""
        return Note(Kind.FREEZE_BEGIN, f"{freeze.banner(now, zone)}{by}{scope}: step ups refused",
                    {"freeze": key, "kind": freeze.kind.value, "reason": freeze.reason, "until": freeze.until, "by": freeze.by})

    @staticmethod
    def _ended(key: str, freeze: Freeze, row: StoredFreeze | None) -> Note:
        if row is not None:
            return Note(Kind.FREEZE_LIFTED, f"{freeze.kind.value} freeze lifted by {row.lifted_by}: {freeze.reason}",
                        {"freeze": key, "kind": freeze.kind.value, "reason": freeze.reason, "lifted_by": row.lifted_by})
        how = "the flag service takes changes again" if key == VENDOR else "its time ran out"
        return Note(Kind.FREEZE_END, f"{freeze.kind.value} freeze over ({how}): {freeze.reason}",
                    {"freeze": key, "kind": freeze.kind.value, "reason": freeze.reason})


class Freezes:
    """Every freeze this engine looks at, each tick: the store's rows, the plan's calendar, the flag service's own."""

    def __init__(self, plan: Plan) -> None:
        self.watch = FreezeWatch(plan.schedule.tz())
        calendar = plan.schedule.freezes
        self.calendar = (CalendarWatch(FreezeCalendarReader(calendar, plan.base_dir, plan.schedule.tz()))
                         if calendar is not None else None)
        self.rows: list[StoredFreeze] = []  # the store's rows as last read
        self.reading: asyncio.Future[list[StoredFreeze]] | None = None

    @property
    def in_force(self) -> tuple[Freeze, ...]:
        return self.watch.in_force

    async def look(self, now: float, rows: Callable[[], Awaitable[list[StoredFreeze]]], vendor: Callable[[], str | None], *,
                   virtual: bool, first: bool = False) -> list[Note]:
        """Read the store's rows (and the calendar, when due); what began or ended since the last look.
        The `first` look, before any step up can be typed, waits for the rows however long they take."""
        news: list[Note] = []
        if self.calendar is not None:
            calendar_read = self.calendar.refresh(now)
            if calendar_read is not None and virtual:
                await calendar_read  # virtual time: the read lands before the clock moves on
                self.calendar.refresh(now)
            news += self.calendar.news()
        # The rows are read on the store thread, behind any write waiting there: a store that holds its
        # writes (a locked row, a slow disk) must not hold the tick, and with it the guardrails, so the
        # tick waits at most ROWS_BUDGET and goes on with the rows last read; the read lands for a later tick.
        if self.reading is None:
            self.reading = asyncio.ensure_future(rows())
        await asyncio.wait({self.reading}, timeout=None if virtual or first else ROWS_BUDGET)
        if self.reading.done():
            landed, self.reading = self.reading, None
            try:
                self.rows = landed.result()
            except StoreError:
                return news  # a store away: the freezes as last read hold (the journal says the store is away)
        calendar = self.calendar.freezes() if self.calendar is not None else ()
        return news + self.watch.look(self.rows, vendor(), now, calendar)

    def blockers(self, now: float) -> list[str]:
        """The freezes' step-up blockers, and the calendar's while it was never read."""
        return blockers(self.in_force, now, self.watch.zone) + (self.calendar.blockers() if self.calendar is not None else [])

    def cancel(self) -> None:
        if self.calendar is not None:
            self.calendar.cancel()
        if self.reading is not None:
            self.reading.cancel()
