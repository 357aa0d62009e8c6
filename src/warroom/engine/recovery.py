"""Finishing what a gone process left mid-action, from the write-ahead journal.

A rollback in flight is resumed where it stopped (flags, then the runbook steps not
done). A step up in flight is reconciled against the flags as they read now: done,
never reached the flags, or left them mixed (paused for a human).
"""

from __future__ import annotations

from typing import Any

from ..flagstate import FlagState
from ..identity import AUTOMATIC
from ..journal_kinds import Kind
from ..snapshot import State
from ..store.base import ActionWrite
from . import state as st
from .executor import Executor
from .journal import EngineJournal, Entry
from .lease import Lease
from .polling import FlagReader
from .policy import exposure_label


class Recovery:
    def __init__(self, journal: EngineJournal, executor: Executor, flags: FlagReader, lease: Lease):
        self.journal = journal
        self.executor = executor
        self.flags = flags
        self.lease = lease

    def recover(self) -> int:
        """Take over every action left pending by an earlier engine (the lease says it is gone); how many."""
        left = self.journal.store.adopt_actions(self.lease.fence)
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
