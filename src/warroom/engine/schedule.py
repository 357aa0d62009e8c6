"""The plan's clock times, judged: earliest times and business hours as step-up blockers, and
scheduled steps as requests that fire, hold or are missed.

A scheduled step (the schedule's `at` for phase 1, a phase's `at` for that phase) is a
request, never an order: when its time comes, the step up is asked with every blocker checked
again (gates, soak, checklist, approvals, freezes, business hours). If one blocks it holds,
says why (once per reason) and asks again each tick. A fire that came while no engine looked
(none ran, or it was stopped: SIGSTOP, a suspended VM) is a missed fire: the schedule's
`missed` policy skips it or runs it if it is no later than `run_within`; both are journaled.
Parts return decisions; the façade applies them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from warroom.core.journal_kinds import Kind
from warroom.core.snapshot import JournalEntry
from warroom.core.units import format_duration
from warroom.engine.automation import Decision, Note, StepUp
from warroom.engine.state import RolloutState
from warroom.plan import hours
from warroom.plan.model import Plan

# A fire later than this many polls was not seen by a live engine (one looks every poll): it was missed.
MISSED_AFTER_POLLS = 2
# What a restarted engine reads back of the fires before it (schedule.remember).
JOURNALED = (Kind.SCHEDULE_FIRED, Kind.SCHEDULE_HELD, Kind.SCHEDULE_MISSED)


@dataclass(frozen=True)
class Fire:
    phase: int  # the phase it steps up to (1-based)
    at: float


def fires(plan: Plan) -> list[Fire]:
    """Every scheduled step of the plan, by phase."""
    found = [Fire(1, plan.schedule.at.timestamp())] if plan.schedule.at is not None else []
    found += [Fire(i, p.at.timestamp()) for i, p in enumerate(plan.phases, 1) if p.at is not None and not (i == 1 and found)]
    return sorted(found, key=lambda f: f.phase)


class Scheduler:
    def __init__(self, plan: Plan):
        self.plan = plan
        self.zone = plan.schedule.tz()
        self.fires = {f.phase: f for f in fires(plan)}
        self.done: set[int] = set()  # phases whose fire ran or was skipped
        self.asked: dict[int, str] = {}  # phases whose fire is held: the reason last said

    def shown(self, when: float, now: float) -> str:
        local = dt.datetime.fromtimestamp(when, self.zone)
        ahead = f" (in {format_duration(when - now)})" if when > now else ""
        return f"{local:%a %d %b %H:%M %Z}{ahead}"

    def remember(self, entries: Iterable[JournalEntry]) -> None:
        """What earlier engines journaled of the fires: a restarted engine neither fires twice nor calls a held one missed."""
        for entry in entries:
            phase = entry.data.get("phase")
            if not isinstance(phase, int):
                continue
            if entry.kind == Kind.SCHEDULE_FIRED or (entry.kind == Kind.SCHEDULE_MISSED and not entry.data.get("ran")):
                self.done.add(phase)
            elif entry.kind == Kind.SCHEDULE_HELD:
                self.asked[phase] = entry.data.get("why", "")

    # ------------------------------------------------------------ blockers

    def blockers(self, state: RolloutState, now: float) -> list[str]:
        """Why the clock refuses the next step up now (a forced step up overrides these)."""
        if state.phase >= len(self.plan.phases):
            return []
        out = []
        target = state.phase + 1
        earliest = self.plan.phases[target - 1].earliest()
        fire = self.fires.get(target)
        times = [t for t in (earliest.timestamp() if earliest else None, fire.at if fire else None) if t is not None]
        if times and now < max(times):
            out.append(f"schedule: phase {target} not before {self.shown(max(times), now)}")
        business = self.plan.schedule.business_hours
        if business is not None:
            closed = hours.closed_because(business, self.zone, now)
            if closed:
                opens = hours.next_open(business, self.zone, now)
                out.append(f"business hours: {closed}; " + (f"next open {self.shown(opens, now)}" if opens is not None
                                                             else "they never open in the next year: check schedule.business_hours"))
        return out

    def next_change(self, state: RolloutState, now: float) -> str:
        """The next scheduled step not yet taken: `phase 2 Half 50% at Fri 27 Nov 15:00 CET (in 1h)`."""
        for phase, fire in sorted(self.fires.items()):
            if phase > state.phase and phase not in self.done:
                held = f"; holding: {self.asked[phase]}" if phase in self.asked else ""
                return f"phase {phase} {self.plan.phases[phase - 1].name} at {self.shown(fire.at, now)}{held}"
        return ""

    # ------------------------------------------------------------ fires

    def decide(self, state: RolloutState, now: float, blockers: Callable[[], list[str]]) -> list[Decision]:
        """The fire due now, if any: a step up, a hold said, or a missed fire's policy."""
        fire = self.fires.get(state.phase + 1)
        for phase in [p for p in self.fires if p <= state.phase]:
            self.done.add(phase)  # the rollout went past it by other means: nothing to fire
            self.asked.pop(phase, None)
        if fire is None or fire.phase in self.done or now < fire.at or not state.status.may_step:
            return []
        data = {"phase": fire.phase, "at": fire.at}
        out: list[Decision] = []
        late = now - fire.at
        if fire.phase not in self.asked and late > MISSED_AFTER_POLLS * self.plan.poll_interval:
            within = self.plan.schedule.run_within()
            if late > within:
                self.done.add(fire.phase)
                policy = f"later than run_within {format_duration(within)}" if within else "the plan's policy is skip"
                return [Note(Kind.SCHEDULE_MISSED, f"scheduled step to phase {fire.phase} ({self.shown(fire.at, now)}) was missed by "
                             f"{format_duration(late)} while no engine looked: skipped ({policy}); step up by hand", {**data, "ran": False})]
            out.append(Note(Kind.SCHEDULE_MISSED, f"scheduled step to phase {fire.phase} was missed by {format_duration(late)} while no "
                            f"engine looked: runs now (within run_within {format_duration(within)})", {**data, "ran": True}))
        why = "; ".join(blockers())
        if why:
            if self.asked.get(fire.phase) != why:
                self.asked[fire.phase] = why
                out.append(Note(Kind.SCHEDULE_HELD, f"scheduled step to phase {fire.phase} holds: {why}", {**data, "why": why}))
            return out
        self.done.add(fire.phase)
        self.asked.pop(fire.phase, None)
        return [*out, Note(Kind.SCHEDULE_FIRED, f"scheduled step to phase {fire.phase} fires (due {self.shown(fire.at, now)}): "
                           "gates, freezes and business hours checked again", data), StepUp()]
