"""What the engine does by itself each tick: guardrail actions, drift, source health, the automatic step up.

Each reaction goes through the engine's own command methods (`pause`, `rollback`,
`step_up`) with the automatic actor, so a guardrail acts exactly as a human would, and
is journaled the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from warroom.core.identity import AUTOMATIC
from warroom.core.journal_kinds import Kind
from warroom.core.snapshot import GuardrailView, State
from warroom.core.units import format_duration
from warroom.engine import state as st
from warroom.engine.executor import CommandError
from warroom.engine.guardrails import GuardrailTracker, held, shadow_message, why, why_data
from warroom.engine.journal import Entry
from warroom.engine.polling import QueryKey
from warroom.store.base import StaleState

if TYPE_CHECKING:
    from warroom.engine.engine import Engine


class Automation:
    def __init__(self, engine: Engine):
        self.engine = engine

    def journal_source_health(self) -> None:
        engine = self.engine
        for change in engine.poller.health_changes():
            if change.down:
                engine.journal.entry(Kind.SOURCE_ERROR, f"source {change.source}: {change.detail}",
                                     data={"source": change.source, "detail": change.detail})
            else:
                engine.journal.entry(Kind.SOURCE_RECOVERED, f"source {change.source} answers again", data={"source": change.source})

    async def evaluate_guardrails(self, now: float) -> None:
        """Judge every guardrail on this tick's readings; journal breaches and clears, act on fires."""
        engine = self.engine
        share = lambda: engine.policy.planned_share(engine.rollout)  # noqa: E731  (asked for each: a fire may roll back)
        for tracker, key, verdict in engine.guardrails.evaluate(engine.poller, now, engine.policy.looks(engine.rollout), share):
            g = tracker.guard
            if verdict.lacking:
                engine.journal.entry(Kind.GUARDRAIL_EVIDENCE, f"{tracker.id}: {verdict.view.detail}; no verdict, `no_data: {g.no_data}` applies",
                                     data={"guardrail": tracker.id, "detail": verdict.view.detail, "no_data": g.no_data})
            if g.mode == "shadow":  # journaled when its window is met, never acted on
                if verdict.fire:
                    engine.journal.entry(Kind.GUARDRAIL_SHADOW, shadow_message(tracker, verdict.view),
                                         data={**why_data(verdict.view, key), "window_met_at": now})
                continue
            text = why(verdict.view)
            if verdict.started and g.for_ > 0:  # a value or, with `no_data: breach`, no data
                engine.journal.entry(Kind.GUARDRAIL_BREACH, f"{tracker.id}: {text}; acting after {format_duration(g.for_)} if it holds",
                                     data=why_data(verdict.view, key))
            if verdict.cleared and not verdict.fire:
                engine.journal.entry(Kind.GUARDRAIL_CLEAR, f"{tracker.id} back within threshold",
                                     data={"guardrail": tracker.id, "value": verdict.view.value})
            if verdict.fire:
                await self._fire(tracker, key, verdict.view, text, now)

    def check_exposure(self, now: float) -> None:
        """The exposure check on this tick's readings; a change between match and mismatch is journaled."""
        news = self.engine.policy.check_exposure(self.engine.rollout, now)
        if news is not None:
            kind, message, data = news
            self.engine.journal.entry(kind, message, data=data)

    async def _fire(self, tracker: GuardrailTracker, key: QueryKey, view: GuardrailView, text: str, now: float) -> None:
        engine = self.engine
        g = tracker.guard
        data = {**why_data(view, key), "window_met_at": now}
        reason = f"guardrail {tracker.id}: {text} ({held(g)})"
        if g.action == "alert":
            engine.journal.entry(Kind.GUARDRAIL_ALERT, reason, data=data)
        elif g.action == "pause":
            if engine.state == State.RUNNING:
                try:
                    await engine.pause(AUTOMATIC, reason, cause=data)
                except CommandError:
                    pass  # the state moved meanwhile (a human paused or rolled back first)
            else:
                engine.journal.entry(Kind.GUARDRAIL_FIRED, f"{reason}; would pause, state is {engine.state.label}", data=data)
        elif g.action == "rollback":
            # PENDING with a step up in flight: the first phase's flags may be landing now.
            exposed = engine.state in (State.RUNNING, State.PAUSED, State.COMPLETE) or engine.rollout.action is not None
            if exposed and engine.state != State.ROLLING_BACK:
                try:
                    # In real time the tick only starts the rollback, so guardrails and samples keep
                    # going while flags retry. In virtual time I/O takes no time: the tick waits, or
                    # the clock would jump ahead of a flag write still in flight.
                    await engine.rollback(AUTOMATIC, reason, cause=data, wait=engine.clock.speed == float("inf"))
                except CommandError:
                    pass  # a rollback that cannot begin says so in the journal
            else:
                engine.journal.entry(Kind.GUARDRAIL_FIRED, f"{reason}; no rollback, state is {engine.state.label}", data=data)

    def check_drift(self) -> None:
        """Flags changed outside warroom: journaled once, automation paused until acknowledged."""
        engine = self.engine
        current = engine.rollout
        if current.status == State.PENDING or current.action is not None or engine.executor.tasks:
            return
        new = engine.recovery.own_late_writes(engine.policy.new_drift(current))  # an interrupted step's late write is not drift
        if not new:
            return
        text = ", ".join(f"{n} is {s.label()} (warroom set {current.desired[n].label()})" for n, s in new.items())
        reason = f"drift: {text}"
        entry: Entry = (Kind.DRIFT_DETECTED, f"DRIFT: {text}; changed outside warroom, automation paused until acknowledged", AUTOMATIC,
                        {"flags": {n: s.to_json() for n, s in new.items()}})

        def change(now: st.RolloutState) -> tuple[st.RolloutState, list[Entry]]:
            pausing = now.status == State.RUNNING
            return now.apply(st.Event.DRIFT, drift={**now.drift, **new},
                             paused_reason=reason if pausing else now.paused_reason), [entry]

        try:
            engine.journal.transition(change, expected_version=engine.journal.version)
        except (StaleState, st.Refused):
            pass  # the state moved meanwhile: the next tick looks again

    async def auto_step(self) -> None:
        engine = self.engine
        if engine.plan.automation.step_up != "auto" or engine.state not in (State.PENDING, State.RUNNING):
            return
        if not engine.step_blockers():
            try:
                # In real time the tick only starts the step: guardrails keep being judged every
                # tick while its flag writes wait on a slow API. Virtual time waits (see _fire).
                await engine.step_up(AUTOMATIC, wait=engine.clock.speed == float("inf"))
            except CommandError:
                pass  # refused now (the state moved): the next tick looks again
