"""A drill's scripted responder: the routine of a launch day, plus the scenario's scripted actions.

It acts between ticks, headless, where no human is at the console: ticks required checklist
items and steps up whenever the plan allows (unless the plan steps up by itself), and runs
each scripted action once when its time comes (`at`, `phase` + moment, or after the first alarm).
"""

from __future__ import annotations

import contextlib
from typing import Any, TextIO

from warroom.core.identity import Actor
from warroom.core.snapshot import Snapshot
from warroom.core.statuses import PaneStatus
from warroom.core.text import terminal_safe
from warroom.core.verbs import Verb
from warroom.drills.faults import DrillTime
from warroom.drills.scenario import ResponderAction, Scenario
from warroom.engine.commands import dispatch
from warroom.engine.engine import CommandError, Engine

RESPONDER = Actor(user="responder", host="drill script")


def member(plan_role: str, person: str) -> Actor:
    """The scripted responder answering as a member of a role: a drill's own word, said as such."""
    return Actor(user=person, host="drill script", proof=f"drill: the scripted responder as {person} ({plan_role})")


async def answer_as(engine: Engine, verb: Verb, role: str, note: str) -> str:
    """Approve or reject as the first member of `role` who has not answered yet."""
    plan = engine.plan
    if role not in plan.roles:
        raise CommandError(f"the plan has no role {role!r} (roles: {', '.join(plan.roles) or 'none'})")
    req = engine.rollout.approval
    answered = {g.person for g in req.answers} if req is not None else set()
    for person in plan.roles[role].members:
        if person not in answered and (req is None or person != req.requester):
            return await dispatch(engine, verb, {"note": note}, member(role, person))
    raise CommandError(f"every member of {role} has answered already")


async def sign_off(engine: Engine, roles: list[str] | None) -> None:
    """The drill's stand-in for the rest of the war room: as many members of each role asked (of `roles`;
    None: every role) as its quorum needs approve. Also in a console drill, where a person drives the steps."""
    req = engine.rollout.approval
    if req is None or not req.status.open:
        return
    for role, needed in req.missing().items():
        if roles is None or role in roles:
            for _ in range(needed):
                await answer_as(engine, Verb.APPROVE, role, "routine sign-off (drill)")


class ScriptedResponder:
    """Acts between ticks: the routine of a launch day, plus the scenario's scripted actions."""

    def __init__(self, engine: Engine, scenario: Scenario, when: DrillTime, out: TextIO):
        self.engine = engine
        self.routine = scenario.responder.routine
        self.approve_as = scenario.responder.approve_as
        self.pending: list[ResponderAction] = list(scenario.responder.actions)
        self.when = when
        self.out = out
        self.alarm_at: float | None = None

    def _alarm(self, snap: Snapshot) -> bool:
        return snap.drift or any(g.status.alarming for g in snap.guardrails) or any(
            p.status in (PaneStatus.BREACH, PaneStatus.STALE) for p in snap.panes)

    def _due(self, action: ResponderAction, t: float) -> bool:
        if action.on == "alarm":
            return self.alarm_at is not None and t >= self.alarm_at + action.after
        start = action.start(self.when.phase_starts)
        return start is not None and t >= start

    async def _do(self, action: ResponderAction) -> str:
        """The action as a command, through the one dispatcher every console and verb goes through."""
        reason = action.reason or f"scripted responder: {action.label()}"
        commands: dict[str, tuple[Verb, dict[str, Any]]] = {
            "rollback": (Verb.ROLLBACK, {"reason": reason}),
            "pause": (Verb.PAUSE, {"reason": reason}),
            "step": (Verb.STEP, {}),
            "force_step": (Verb.STEP, {"force": True, "reason": action.reason}),
            "tick": (Verb.TICK, {"item": action.item or ""}),
        }
        if action.do in ("approve", "reject") and action.as_role:
            return await self._answer(Verb(action.do), action.as_role, action.reason or "scripted responder")
        verb, args = commands[action.do] if action.do in commands else (Verb(action.do), {})
        return await dispatch(self.engine, verb, args, RESPONDER)

    async def _answer(self, verb: Verb, role: str, note: str) -> str:
        return await answer_as(self.engine, verb, role, note)

    async def _sign_off(self) -> None:
        await sign_off(self.engine, self.approve_as)

    async def _routine(self, snap: Snapshot) -> None:
        if not snap.state.may_step or snap.action is not None:
            return
        if snap.awaiting:
            await self._sign_off()
            return
        if snap.phase is not None:
            for item in snap.phase.checklist:
                if item.required and not item.ticked:
                    await dispatch(self.engine, Verb.TICK, {"item": item.id}, RESPONDER)
            snap = self.engine.publish()
        if self.engine.plan.automation.step_up == "manual" and snap.can_step:
            await dispatch(self.engine, Verb.STEP, {}, RESPONDER)

    async def __call__(self, snap: Snapshot) -> None:
        t = self.when.now()  # the session has already noted phase starts from this snapshot
        if self.alarm_at is None and self._alarm(snap):
            self.alarm_at = t
        for action in [a for a in self.pending if self._due(a, t)]:
            self.pending.remove(action)
            try:
                result = await self._do(action)
            except CommandError as exc:
                result = f"refused: {exc}"
            print(terminal_safe(f"{'':>20} responder: {action.label()} → {result}"), file=self.out, flush=True)
        if self.routine:
            with contextlib.suppress(CommandError):  # the rollout moved on under the routine (a rollback, a breach): nothing to do now
                await self._routine(self.engine.publish())
