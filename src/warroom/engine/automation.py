"""What the engine does by itself each tick, as decisions: guardrail actions, drift, source health,
the exposure check, the automatic step up.

Nothing here acts. Each judgement returns decisions — journal this, pause, roll back, step
up, commit this change — and the façade (engine.py) applies them through its own command
methods with the automatic actor, so a guardrail acts exactly as a human would and is
journaled the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from warroom.core.guardrail_actions import GuardrailAction
from warroom.core.identity import AUTOMATIC, Actor
from warroom.core.journal_kinds import Kind
from warroom.core.snapshot import State
from warroom.core.units import format_duration
from warroom.engine import state as st
from warroom.engine.cohorts import QueryKey
from warroom.engine.guardrails import GuardrailTracker, Verdict, held, shadow_message, why, why_data
from warroom.engine.journal import Change, Entry
from warroom.engine.policy import Policy
from warroom.engine.polling import HealthChange
from warroom.plan.model import Plan

# ---------------------------------------------------------------- the decisions


@dataclass(frozen=True)
class Note:
    """Journal this entry (no state change)."""

    kind: Kind
    message: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Pause:
    reason: str
    cause: Mapping[str, Any]  # the guardrail's numbers (guardrails.why_data)


@dataclass(frozen=True)
class RollBack:
    reason: str
    cause: Mapping[str, Any]


@dataclass(frozen=True)
class StepUp:
    """A step up: the automatic one (soak done, gates green, required items ticked), a scheduled one, or a granted sign-off's as its requester."""

    actor: Actor = AUTOMATIC
    force: bool = False
    reason: str = ""


@dataclass(frozen=True)
class Commit:
    """Commit this state change if the state is still at `version`; if it moved meanwhile, the next tick looks again."""

    change: Change
    version: int


Decision = Note | Pause | RollBack | StepUp | Commit


# ---------------------------------------------------------------- judging


class Automation:
    def __init__(self, plan: Plan, policy: Policy):
        self.plan = plan
        self.policy = policy

    @staticmethod
    def source_health(changes: list[HealthChange]) -> list[Decision]:
        return [Note(Kind.SOURCE_ERROR, f"source {c.source}: {c.detail}", {"source": c.source, "detail": c.detail}) if c.down
                else Note(Kind.SOURCE_RECOVERED, f"source {c.source} answers again", {"source": c.source}) for c in changes]

    def guardrail(self, tracker: GuardrailTracker, key: QueryKey, verdict: Verdict, state: st.RolloutState, now: float) -> list[Decision]:
        """One guardrail's verdict on this tick's readings: breaches and clears journaled, and what a fire does."""
        g = tracker.guard
        out: list[Decision] = []
        if verdict.lacking:
            out.append(Note(Kind.GUARDRAIL_EVIDENCE, f"{tracker.id}: {verdict.view.detail}; no verdict, `no_data: {g.no_data}` applies",
                            {"guardrail": tracker.id, "detail": verdict.view.detail, "no_data": g.no_data}))
        if g.mode == "shadow":  # journaled when its window is met, never acted on
            if verdict.fire:
                out.append(Note(Kind.GUARDRAIL_SHADOW, shadow_message(tracker, verdict.view), {**why_data(verdict.view, key), "window_met_at": now}))
            return out
        text = why(verdict.view)
        if verdict.started and g.for_ > 0:  # a value or, with `no_data: breach`, no data
            out.append(Note(Kind.GUARDRAIL_BREACH, f"{tracker.id}: {text}; acting after {format_duration(g.for_)} if it holds",
                            why_data(verdict.view, key)))
        if verdict.cleared and not verdict.fire:
            out.append(Note(Kind.GUARDRAIL_CLEAR, f"{tracker.id} back within threshold", {"guardrail": tracker.id, "value": verdict.view.value}))
        if verdict.fire:
            data = {**why_data(verdict.view, key), "window_met_at": now}
            reason = f"guardrail {tracker.id}: {text} ({held(g)})"
            out.append(self._fire(verdict.view.action, reason, data, state))
        return out

    @staticmethod
    def _fire(action: GuardrailAction, reason: str, data: dict[str, Any], state: st.RolloutState) -> Decision:
        if action is GuardrailAction.ALERT:
            return Note(Kind.GUARDRAIL_ALERT, reason, data)
        if action is GuardrailAction.PAUSE:
            if state.status == State.RUNNING:
                return Pause(reason, data)
            return Note(Kind.GUARDRAIL_FIRED, f"{reason}; would pause, state is {state.status.label}", data)
        if state.exposed:  # PENDING with a step up in flight too: the first phase's flags may be landing now
            return RollBack(reason, data)
        return Note(Kind.GUARDRAIL_FIRED, f"{reason}; no rollback, state is {state.status.label}", data)

    def exposure(self, state: st.RolloutState, now: float) -> list[Decision]:
        """The exposure check on this tick's readings; a change between match and mismatch is journaled."""
        news = self.policy.check_exposure(state, now)
        return [] if news is None else [Note(*news)]

    def drift(self, state: st.RolloutState, version: int, *, acting: bool) -> list[Decision]:
        """Flags changed outside warroom: journaled once, automation paused until acknowledged.
        `acting`: an action is executing (its writes are no drift)."""
        if state.status == State.PENDING or state.action is not None or acting:
            return []
        new = self.policy.new_drift(state)
        if not new:
            return []
        text = ", ".join(f"{n} is {s.label()} (warroom set {state.desired[n].label()})" for n, s in new.items())
        reason = f"drift: {text}"
        entry: Entry = (Kind.DRIFT_DETECTED, f"DRIFT: {text}; changed outside warroom, automation paused until acknowledged", AUTOMATIC,
                        {"flags": {n: s.to_json() for n, s in new.items()}})

        def change(now: st.RolloutState) -> tuple[st.RolloutState, list[Entry]]:
            pausing = now.status == State.RUNNING
            return now.apply(st.Event.DRIFT, drift={**now.drift, **new}, paused_reason=reason if pausing else now.paused_reason), [entry]

        return [Commit(change, version)]

    def step(self, state: st.RolloutState, blockers: Callable[[], list[str]]) -> list[Decision]:
        """The automatic step up, when the plan asks for one and nothing blocks it (`blockers()`: asked only then)."""
        return [StepUp()] if self.plan.automation.step_up == "auto" and state.status.may_step and not blockers() else []
