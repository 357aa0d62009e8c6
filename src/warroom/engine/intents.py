"""The write-ahead intents of a step up and a rollback, and how far a rollback got.

An intent says what an action will change, built before anything is touched (the engine
commits it, then executes); a rollback's progress says which of its parts are done, so
an engine that takes over skips them. They are typed values inside the engine, turned
into JSON only where they meet the store (the action row, the journal entry).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from warroom.core.action_kinds import ActionKind
from warroom.core.flagstate import FlagState
from warroom.core.identity import Actor
from warroom.core.journal_kinds import Kind
from warroom.core.snapshot import State
from warroom.core.units import format_duration
from warroom.engine import state as st
from warroom.engine.journal import Entry
from warroom.engine.policy import Policy, exposure_label
from warroom.plan.model import Plan


def _flags_json(flags: Mapping[str, FlagState]) -> dict[str, Any]:
    return {n: s.to_json() for n, s in flags.items()}


def _flags(data: Mapping[str, Any] | None) -> dict[str, FlagState]:
    return {n: FlagState.from_json(d) for n, d in (data or {}).items()}


@dataclass(frozen=True)
class GateSeen:
    """A gate as it stood when a step up was allowed."""

    gate: str
    value: float | None
    passed: bool | None


@dataclass(frozen=True)
class StepIntent:
    from_phase: int
    to_phase: int
    flags: Mapping[str, FlagState]  # what it sets
    previous: Mapping[str, FlagState]  # what warroom had set before
    forced: bool = False
    reason: str = ""
    gates: tuple[GateSeen, ...] = ()  # why it was allowed: the gates as they stood
    soaked: float | None = None  # and how long the phase had soaked

    def to_json(self) -> dict[str, Any]:
        return {"from_phase": self.from_phase, "to_phase": self.to_phase, "flags": _flags_json(self.flags),
                "previous": _flags_json(self.previous), "forced": self.forced, "reason": self.reason,
                "gates": [{"gate": g.gate, "value": g.value, "passed": g.passed} for g in self.gates], "soaked": self.soaked}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StepIntent:
        return cls(int(data["from_phase"]), int(data["to_phase"]), _flags(data["flags"]), _flags(data.get("previous")),
                   bool(data.get("forced")), str(data.get("reason") or ""),
                   tuple(GateSeen(str(g["gate"]), g.get("value"), g.get("passed")) for g in data.get("gates") or ()), data.get("soaked"))


@dataclass(frozen=True)
class RollbackIntent:
    flags: Mapping[str, FlagState]  # what it sets (off)
    reason: str
    steps: int  # runbook steps it runs
    before: Mapping[str, FlagState]  # the flags as read when it began
    cause: Mapping[str, Any] = field(default_factory=dict)  # a guardrail's numbers (guardrails.why_data), journaled as they are
    from_state: State | None = None  # where it rolls back from, as it stands inside the transaction that begins it
    from_phase: int = 0
    runbook: bool = True  # False: flags set off again after a rollback whose runbook already ran

    def to_json(self) -> dict[str, Any]:
        return {"flags": _flags_json(self.flags), "steps": self.steps, "runbook": self.runbook, "reason": self.reason,
                "cause": dict(self.cause), "before": _flags_json(self.before),
                "from_state": self.from_state.value if self.from_state is not None else None, "from_phase": self.from_phase}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RollbackIntent:
        state = data.get("from_state")
        return cls(_flags(data["flags"]), str(data.get("reason") or ""), int(data.get("steps") or 0), _flags(data.get("before")),
                   dict(data.get("cause") or {}), State(state) if state else None, int(data.get("from_phase") or 0),
                   bool(data.get("runbook", True)))


@dataclass(frozen=True)
class RunningStep:
    """A runbook step's process group, recorded before it can do anything: the next engine stops it if this one dies."""

    step: int
    pgid: int
    host: str
    started: int | None  # the process's start time (a pid reused by another process is not ours to stop)


@dataclass(frozen=True)
class RollbackProgress:
    flags_confirmed: bool = False
    steps_done: tuple[int, ...] = ()
    running: RunningStep | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"flags_confirmed": self.flags_confirmed, "steps_done": list(self.steps_done)}
        if self.running is not None:
            r = self.running
            data["running"] = {"step": r.step, "pgid": r.pgid, "host": r.host, "started": r.started}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> RollbackProgress:
        data = data or {}
        r = data.get("running")
        running = RunningStep(int(r["step"]), int(r["pgid"]), str(r.get("host", "")), r.get("started")) if r else None
        return cls(bool(data.get("flags_confirmed")), tuple(int(i) for i in data.get("steps_done") or ()), running)


# ---------------------------------------------------------------- building them


def new_action_id() -> str:
    return uuid.uuid4().hex[:12]


def step_up(plan: Plan, policy: Policy, current: st.RolloutState, now: float, actor: Actor, *,
            overridden: list[str], reason: str) -> tuple[st.ActionRef, StepIntent, list[Entry]]:
    """A step up to the next phase: its action, intent and entries (`overridden`: what a force overrides)."""
    total = len(plan.phases)
    target = current.phase + 1
    flags = policy.target_flags(target)
    intent = StepIntent(current.phase, target, flags, dict(current.desired), bool(overridden), reason,
                        tuple(GateSeen(g.label, g.value, g.passed) for g in policy.gate_views(current)),
                        None if current.phase_started_at is None else now - current.phase_started_at)
    entries: list[Entry] = []
    if overridden:
        entries.append((Kind.STEP_FORCED, f"FORCED step up by {actor.label()}: {reason}; overriding: " + "; ".join(overridden), actor,
                        {"overridden": overridden, "reason": reason}))
    why_auto = ""
    if actor.automatic and current.phase >= 1:
        phase = plan.phases[current.phase - 1]
        why_auto = f" (automatic: soak {format_duration(phase.hold)} done, {len(intent.gates)} gate(s) green, required items ticked)"
    entries.append((Kind.STEP_INTENT, f"step up to phase {target}/{total} {plan.phases[target - 1].name}: {exposure_label(flags)}{why_auto}",
                    actor, intent.to_json()))
    return st.ActionRef(new_action_id(), ActionKind.STEP_UP, now, exposure_label(flags)), intent, entries


Begin = Callable[[st.RolloutState], tuple[st.RolloutState, list[Entry], RollbackIntent]]


def rollback(plan: Plan, policy: Policy, observed: Mapping[str, FlagState | None], now: float, actor: Actor, *,
             reason: str, cause: Mapping[str, Any] | None) -> tuple[st.ActionRef, Begin]:
    """A rollback: its action, and the change that begins it inside the store's transaction (with its intent)."""
    flags = policy.rollback_flags()
    ref = st.ActionRef(new_action_id(), ActionKind.ROLLBACK, now, exposure_label(flags))
    planned = RollbackIntent(flags, reason, len(plan.rollback.steps), {n: s for n in flags if (s := observed.get(n)) is not None},
                             dict(cause or {}))

    def begin(current: st.RolloutState) -> tuple[st.RolloutState, list[Entry], RollbackIntent]:
        # The rollback wins over anything in flight but another rollback: no version check.
        after = st.begin_rollback(current, action=ref, flags=flags)
        # Where it rolls back from, as it stands inside the transaction (the action row gets it too).
        intent = replace(planned, from_state=current.status, from_phase=current.phase)
        entry: Entry = (Kind.ROLLBACK_INTENT, f"ROLLBACK by {actor.label()}: {reason}; flags → {exposure_label(flags)}", actor, intent.to_json())
        return after, [entry], intent

    return ref, begin


def reassert(policy: Policy, current: st.RolloutState, exposed: Mapping[str, FlagState], now: float,
             actor: Actor) -> tuple[st.ActionRef, RollbackIntent, list[Entry]]:
    """ROLLED BACK, but flags read back exposed: roll those back again, without the runbook."""
    rollback_flags = policy.rollback_flags()
    flags = {n: rollback_flags[n] for n in exposed}
    reason = f"{exposure_label(exposed)} read back after the rollback: a late write landed, or someone set it"
    intent = RollbackIntent(flags, reason, 0, dict(exposed), from_state=State.ROLLED_BACK, from_phase=current.phase, runbook=False)
    message = f"ROLLED BACK, but {reason}: the rollback is not done; flags → {exposure_label(flags)} again"
    return st.ActionRef(new_action_id(), ActionKind.ROLLBACK, now, exposure_label(flags)), intent, [(Kind.ROLLBACK_REASSERT, message, actor, intent.to_json())]
