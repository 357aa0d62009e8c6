"""An engine's start: a new rollout initialised, the start journalled (and whether an
engine vanished with the launch unguarded), and what a gone process left mid-action
finished from the write-ahead journal.

A rollback in flight is resumed where it stopped (flags, then the runbook steps not
done). A step up in flight is reconciled against the flags as they read now: done,
never reached the flags, or left them mixed (paused for a human).
"""

from __future__ import annotations

from typing import Any

from warroom.core.flagstate import FlagState
from warroom.core.identity import AUTOMATIC
from warroom.core.journal_kinds import Kind
from warroom.core.snapshot import State
from warroom.engine import state as st
from warroom.engine.executor import Executor
from warroom.engine.journal import EngineJournal, Entry
from warroom.engine.lease import Lease
from warroom.engine.policy import Policy, exposure_label
from warroom.engine.polling import FlagReader
from warroom.store.base import ActionWrite


class Recovery:
    def __init__(self, journal: EngineJournal, executor: Executor, flags: FlagReader, lease: Lease):
        self.journal = journal
        self.executor = executor
        self.flags = flags
        self.lease = lease

    def initialise(self, policy: Policy, name: str) -> None:
        """A new rollout. Flags that already read exposed mean a lost or emptied state file over
        a live launch (or another launch's flags): paused, nothing steps up or down by itself."""
        exposed = policy.exposed_at_start()
        reason = ""
        entries: list[Entry] = [(Kind.ROLLOUT_INIT, f"rollout {name} initialised", AUTOMATIC, {})]
        if exposed:
            reason = (f"drift at start: {exposure_label(exposed)} already exposed, but this state file records no rollout "
                      "(new, emptied or lost). Nothing steps by itself: if the launch is live, `warroom ack PLAN` (key a) "
                      "adopts the flags as they are; `warroom rollback PLAN` (key R) turns them off")
            entries.append((Kind.DRIFT_DETECTED, f"DRIFT {reason.removeprefix('drift ')}", AUTOMATIC,
                            {"flags": {n: v.to_json() for n, v in exposed.items()}}))
        clock = self.journal.clock
        self.journal.transition(lambda current: (st.initialise(current, now=clock.now(), exposed=exposed, reason=reason), entries))

    def journal_start(self, name: str) -> None:
        """This engine drives now; say so, and if the engine before it vanished with the launch in flight."""
        lease, previous = self.lease, self.lease.previous
        speed = "" if lease.speed == "1" else f", clock ×{lease.speed}"
        data = {"epoch": lease.epoch, "holder": lease.holder.to_json(), "log": lease.log_path}
        self.journal.entry(Kind.ENGINE_START, f"engine of {name} drives (epoch {lease.epoch}{speed})", data=data)
        rollout = self.journal.state
        if previous is None or previous.holder is None or not rollout.in_flight:
            return  # a clean release (holder cleared) or nothing exposed: nobody went unguarded
        self.journal.entry(Kind.ENGINE_LOST, f"took over from engine {previous.holder.label()}, which vanished with the rollout "
                           f"{rollout.status.label}: its guardrails went unwatched until now",
                           data={"previous": previous.holder.to_json(), "previous_epoch": previous.epoch,
                                 "last_heartbeat": previous.heartbeat})

    async def recover(self) -> int:
        """Take over every action left pending by an earlier engine (the lease says it is gone); how many."""
        fence = self.lease.fence
        left = await self.journal.thread.call(lambda store: store.adopt_actions(fence))
        previous = self.lease.previous.holder if self.lease.previous is not None else None
        for action in left:
            if action.kind == "rollback":
                left_by = f"left by {previous.label()}, which is gone" if previous else "after a restart"
                self.journal.entry(Kind.ROLLBACK_RESUME, f"resuming an unfinished rollback {left_by}", AUTOMATIC,
                                   {"progress": action.progress, "previous_owner": previous.label() if previous else None}, action.id)
                self.executor.launch(action.id, self.executor.rollback(action.id, action.intent, action.progress))
            elif action.kind == "step_up":
                self._reconcile_step(action.id, action.intent)
        return len(left)

    def _reconcile_step(self, aid: str, intent: dict) -> None:
        target = {n: FlagState.from_json(d) for n, d in intent["flags"].items()}
        previous = {n: FlagState.from_json(d) for n, d in intent["previous"].items()}
        observed = {n: self.flags.observed.get(n) for n in target}
        step = f"interrupted step up to phase {intent['to_phase']}"
        paused = ""
        if any(v is None for v in observed.values()):
            outcome, status, paused = f"{step}: flags could not be read back; paused", "failed", "interrupted step up: flags could not be read back"
        elif all(observed[n].matches(s) for n, s in target.items()):  # type: ignore[union-attr]
            outcome, status = f"{step} had completed (flags read back at target)", "done"
        elif all(observed[n].matches(previous[n]) for n in target if n in previous) and len(previous) >= len(target):  # type: ignore[union-attr]
            outcome, status = f"{step} never reached the flags; still at phase {intent['from_phase']}", "abandoned"
        else:
            seen = exposure_label({n: v for n, v in observed.items() if v})
            outcome, status, paused = f"{step} left flags mixed: {seen}; paused", "failed", "interrupted step up left flags mixed: check and ack"
        data: dict[str, Any] = {"observed": {n: v.to_json() for n, v in observed.items() if v}}
        if status == "done":
            data["entered_phase"] = intent["to_phase"]

        def change(current: st.RolloutState) -> tuple[st.RolloutState, list[Entry]]:
            if current.status in (State.ROLLING_BACK, State.ROLLED_BACK):  # a rollback took over: it owns the flags now
                entry = (Kind.STEP_OUTCOME, outcome + "; a rollback took over", AUTOMATIC, {"observed": data["observed"]})
                return st.action_finished(current, action_id=aid), [entry]
            if status == "done":
                after = st.enter_phase(current, action_id=aid, phase=intent["to_phase"], flags=target, now=self.journal.clock.now())
            elif paused:
                after = st.step_failed(current, action_id=aid, reason=paused, confirmed={})
            else:
                after = st.action_finished(current, action_id=aid)
            return after, [(Kind.STEP_OUTCOME, outcome, AUTOMATIC, data)]

        self.journal.transition(change, ActionWrite(aid, status=status))
