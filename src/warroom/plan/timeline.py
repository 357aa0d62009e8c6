"""The plan's timeline: each phase, its exposure, its soak, and the earliest it can begin.

Without clock times, times count from the first step up, as if every gate were green the
moment its soak ends. With a schedule (a launch `at`, a phase's `at`/`not_before`) they are
clock times in the plan's zone, each start moved past business hours and past the freezes
given (the calendar's, read by `warroom check`); a start moved past the schedule's
`deadline` is a problem `check` refuses the plan for. `warroom check` prints them, so a soak
written in the wrong unit, or a launch day inside a freeze, shows before launch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from warroom.core.freeze import Freeze
from warroom.plan import hours
from warroom.plan.model import Plan

_SETTLE_STEPS = 100  # freezes and closed hours pushing each other: bounded, then said


@dataclass(frozen=True)
class TimelineRow:
    number: int  # 1-based
    name: str
    flag: str | None  # whose exposure `exposure` is (the plan's driving flag)
    exposure: float  # percent of users on the new code in this phase
    hold: float  # the soak, seconds
    earliest_start: float  # seconds after the first step up (or, with `clock`, epoch seconds)
    earliest_end: float  # when its soak can end: the earliest next step up (or completion)
    moved: tuple[str, ...] = ()  # why its start moved later: a freeze, business hours


def clock_times(plan: Plan) -> bool:
    """Whether the plan names clock times (then the timeline is in them)."""
    return plan.schedule.at is not None or any(p.earliest() is not None for p in plan.phases)


def _settle(plan: Plan, start: float, freezes: Sequence[Freeze]) -> tuple[float, list[str]]:
    """The first instant at or after `start` outside every freeze and inside business hours; why it moved."""
    moved: list[str] = []
    zone = plan.schedule.tz()
    business = plan.schedule.business_hours
    for _ in range(_SETTLE_STEPS):
        covering = [f for f in freezes if f.covers(start)]
        if covering:
            frozen = max(covering, key=lambda f: float("inf") if f.until is None else f.until)
            moved.append(f"{frozen.kind.value} freeze {frozen.reason!r} {frozen.until_text(start, zone)}")
            if frozen.until is None:
                return float("inf"), moved
            start = frozen.until
            continue
        if business is not None and (why := hours.closed_because(business, zone, start)) is not None:
            opens = hours.next_open(business, zone, start)
            moved.append(f"business hours ({why})")
            if opens is None:
                return float("inf"), moved
            start = opens
            continue
        return start, moved
    return start, [*moved, f"still moving after {_SETTLE_STEPS} freezes and closed hours"]


def timeline(plan: Plan, freezes: Sequence[Freeze] = (), now: float | None = None) -> list[TimelineRow]:
    """Each phase's earliest times: relative to the first step up, or clock times (from the launch, else `now`)."""
    flag = plan.driving_flag()
    rows: list[TimelineRow] = []
    absolute = clock_times(plan)
    if absolute:
        at = plan.schedule.at
        start = at.timestamp() if at is not None else (now or 0.0)
    else:
        start = 0.0
    for number, (phase, exposure) in enumerate(zip(plan.phases, plan.phase_exposures(flag), strict=True), 1):
        moved: list[str] = []
        if absolute:
            earliest = phase.earliest()
            start = max(start, earliest.timestamp() if earliest else start)
            start, moved = _settle(plan, start, freezes)
        rows.append(TimelineRow(number, phase.name, flag, exposure, phase.hold, start, start + phase.hold, tuple(moved)))
        start += phase.hold
    return rows


def deadline_problem(plan: Plan, rows: Sequence[TimelineRow]) -> str | None:
    """Why the plan cannot meet its deadline: a required step falls wholly inside freezes (or closed hours) until after it."""
    deadline = plan.schedule.deadline
    if deadline is None or not rows:
        return None
    late = [r for r in rows if r.earliest_start > deadline.timestamp()]
    if not late:
        return None
    first = late[0]
    why = "; ".join(first.moved) or "the soaks before it are too long"
    return (f"schedule.deadline {deadline.isoformat()}: phase {first.number} {first.name} cannot begin before it "
            f"(moved by {why}); move the launch earlier, shorten a soak, or change the freeze")
