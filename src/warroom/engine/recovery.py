"""An engine's start: a new rollout initialised, the start journalled (and whether an
engine vanished with the launch unguarded), and what a gone process left mid-action
finished from the write-ahead journal.

A rollback in flight is resumed where it stopped (flags, then the runbook steps not
done). A step up in flight is reconciled against the flags as they read now: done,
never reached the flags, or left them mixed (paused for a human). One that never reached
them may still: its write can be on its way (a flag API answering late), and when it lands
it is that step's, not someone's change outside warroom: set back to the phase's state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from warroom.core.action_kinds import ActionKind
from warroom.core.flagstate import FlagState
from warroom.core.identity import AUTOMATIC
from warroom.core.journal_kinds import Kind
from warroom.engine import state as st
from warroom.engine.executor import Executor
from warroom.engine.intents import RollbackIntent, RollbackProgress, StepIntent
from warroom.engine.journal import EngineJournal, Entry
from warroom.engine.lease import Lease
from warroom.engine.policy import Policy, exposure_label
from warroom.engine.polling import FlagReader
from warroom.store.base import ActionWrite


@dataclass(frozen=True)
class LateWrite:
    """A flag an interrupted step up was writing when its engine went, that read back as it was."""

    action_id: str
    to_phase: int
    target: FlagState  # what the step's write asked for
    before: FlagState  # what the rollout wants of it (the phase it stayed at)
    writer: str  # the engine that was writing it


class Recovery:
    def __init__(self, journal: EngineJournal, executor: Executor, flags: FlagReader, lease: Lease):
        self.journal = journal
        self.executor = executor
        self.flags = flags
        self.lease = lease
        self.late: dict[str, LateWrite] = {}  # by flag

    def set_back_late_writes(self, drift: Mapping[str, FlagState]) -> None:
        """Of the flags that read other than the rollout wants, those an interrupted step's late write
        explains are set back, journaled as that step's; while that runs, drift is not judged."""
        state = self.journal.state
        if not self.late or state.status.in_rollback or state.action is not None or self.executor.tasks:
            return  # after a rollback its re-assertion sets a late write off; an action in flight writes flags itself
        desired = state.desired
        for name, late in list(self.late.items()):
            if desired.get(name) != late.before:
                del self.late[name]  # the rollout moved on: a later change of that flag is not this step's
        ours = {n: self.late.pop(n) for n, seen in drift.items() if n in self.late and seen.matches(self.late[n].target)}
        for name, late in ours.items():
            self.journal.entry(Kind.STEP_LATE_WRITE, f"{name} read back {late.target.label()}: the late write of the interrupted step up to "
                               f"phase {late.to_phase} (engine {late.writer}, before the takeover); setting it back to "
                               f"{late.before.label()}, the phase it is at", AUTOMATIC,
                               {"flag": name, "observed": late.target.to_json(), "set_back_to": late.before.to_json(),
                                "writer": late.writer}, late.action_id)
            self.executor.launch(f"{late.action_id}:{name}", self._set_back(late.action_id, name, late.before))

    async def _set_back(self, action_id: str, name: str, state: FlagState) -> str:
        await self.executor.apply_flag(action_id, ActionKind.STEP_UP, name, state, None)  # the safe direction: until confirmed
        return f"{name} set back to {state.label()}"

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
        replaced = previous is not None and previous.holder is not None and previous.holder.id == lease.replacing
        if replaced:
            assert previous is not None and previous.holder is not None
            data["replaced"] = previous.holder.to_json()
            speed += f"; it took the lease over from engine {previous.holder.label()} (warroom up --replace), with no gap"
        self.journal.entry(Kind.ENGINE_START, f"engine of {name} drives (epoch {lease.epoch}{speed})", data=data)
        rollout = self.journal.state
        if replaced or previous is None or previous.holder is None:
            return  # handed over with no gap (up --replace), or a clean release (holder cleared): nobody vanished
        # Every takeover is journaled (and heard by `notify`), whatever the state read: ROLLED BACK
        # with its runbook still running is an action in flight too.
        if rollout.in_flight:
            pending = f", its {rollout.action.kind.value.replace('_', ' ')} unfinished" if rollout.action is not None else ""
            what = f"with the rollout {rollout.status.label}{pending}: its guardrails went unwatched until now"
        else:
            what = f"with the rollout {rollout.status.label} and nothing in flight"
        self.journal.entry(Kind.ENGINE_LOST, f"took over from engine {previous.holder.label()}, which vanished {what}",
                           data={"previous": previous.holder.to_json(), "previous_epoch": previous.epoch,
                                 "last_heartbeat": previous.heartbeat, "state": rollout.status.value,
                                 "action": rollout.action.to_json() if rollout.action else None})

    async def recover(self) -> int:
        """Take over every action left pending by an earlier engine (the lease says it is gone); how many."""
        fence = self.lease.fence
        left = await self.journal.thread.call(lambda store: store.adopt_actions(fence))
        previous = self.lease.previous.holder if self.lease.previous is not None else None
        for action in left:
            if action.kind == ActionKind.ROLLBACK:
                left_by = f"left by {previous.label()}, which is gone" if previous else "after a restart"
                self.journal.entry(Kind.ROLLBACK_RESUME, f"resuming an unfinished rollback {left_by}", AUTOMATIC,
                                   {"progress": action.progress, "previous_owner": previous.label() if previous else None}, action.id)
                self.executor.launch(action.id, self.executor.rollback(action.id, RollbackIntent.from_json(action.intent),
                                                                       RollbackProgress.from_json(action.progress)))
            elif action.kind == ActionKind.STEP_UP:
                self._reconcile_step(action.id, StepIntent.from_json(action.intent))
        return len(left)

    def _reconcile_step(self, aid: str, intent: StepIntent) -> None:
        target, previous = intent.flags, intent.previous
        read = {n: self.flags.observed.get(n) for n in target}
        observed = {n: v for n, v in read.items() if v is not None}
        step = f"interrupted step up to phase {intent.to_phase}"
        paused = ""
        if len(observed) < len(read):
            outcome, status, paused = f"{step}: flags could not be read back; paused", "failed", "interrupted step up: flags could not be read back"
        elif all(observed[n].matches(s) for n, s in target.items()):
            outcome, status = f"{step} had completed (flags read back at target)", "done"
        elif all(observed[n].matches(previous[n]) for n in target if n in previous) and len(previous) >= len(target):
            outcome, status = f"{step} never reached the flags; still at phase {intent.from_phase}", "abandoned"
        else:
            outcome, status, paused = (f"{step} left flags mixed: {exposure_label(observed)}; paused", "failed",
                                       "interrupted step up left flags mixed: check and ack")
        data: dict[str, Any] = {"observed": {n: v.to_json() for n, v in observed.items()}}
        if status == "done":
            data["entered_phase"] = intent.to_phase
        if status == "abandoned" and self.lease.previous is not None and self.lease.previous.holder is not None:
            writer = self.lease.previous.holder.label()
            self.late.update({n: LateWrite(aid, intent.to_phase, s, previous[n], writer)
                              for n, s in target.items() if n in previous and not s.matches(previous[n])})

        def change(current: st.RolloutState) -> tuple[st.RolloutState, list[Entry]]:
            if current.status.in_rollback:  # a rollback took over: it owns the flags now
                entry: Entry = (Kind.STEP_OUTCOME, outcome + "; a rollback took over", AUTOMATIC, {"observed": data["observed"]})
                return st.action_finished(current, action_id=aid), [entry]
            if status == "done":
                after = st.enter_phase(current, action_id=aid, phase=intent.to_phase, flags=target, now=self.journal.clock.now())
            elif paused:
                after = st.step_failed(current, action_id=aid, reason=paused, confirmed={})
            else:
                after = st.action_finished(current, action_id=aid)
            return after, [(Kind.STEP_OUTCOME, outcome, AUTOMATIC, data)]

        self.journal.transition(change, ActionWrite(aid, status=status))
