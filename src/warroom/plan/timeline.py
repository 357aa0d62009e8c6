"""The plan's timeline: each phase, its exposure, its soak, and the earliest it can begin.

Times count from the first step up, as if every gate were green the moment its soak
ends; `warroom check` prints them so a soak written in the wrong unit shows before launch.
"""

from __future__ import annotations

from dataclasses import dataclass

from warroom.plan.model import Plan


@dataclass(frozen=True)
class TimelineRow:
    number: int  # 1-based
    name: str
    flag: str | None  # whose exposure `exposure` is (the plan's driving flag)
    exposure: float  # percent of users on the new code in this phase
    hold: float  # the soak, seconds
    earliest_start: float  # seconds after the first step up
    earliest_end: float  # when its soak can end: the earliest next step up (or completion)


def timeline(plan: Plan) -> list[TimelineRow]:
    flag = plan.driving_flag()
    rows: list[TimelineRow] = []
    start = 0.0
    for number, (phase, exposure) in enumerate(zip(plan.phases, plan.phase_exposures(flag), strict=True), 1):
        rows.append(TimelineRow(number, phase.name, flag, exposure, phase.hold, start, start + phase.hold))
        start += phase.hold
    return rows
