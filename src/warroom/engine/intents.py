"""The write-ahead intents of a step up and a rollback: what each will change and the entries
that say so, built before anything is touched (the engine commits them, then executes)."""

from __future__ import annotations

import uuid
from typing import Any

from warroom.core.flagstate import FlagState
from warroom.core.identity import Actor
from warroom.core.journal_kinds import Kind
from warroom.core.snapshot import State
from warroom.core.units import format_duration
from warroom.engine import state as st
from warroom.engine.journal import Entry
from warroom.engine.policy import Policy, exposure_label
from warroom.plan.model import Plan


def new_action_id() -> str:
    return uuid.uuid4().hex[:12]


def step_up(plan: Plan, policy: Policy, current: st.RolloutState, now: float, actor: Actor, *,
            overridden: list[str], reason: str) -> tuple[st.ActionRef, dict[str, Any], list[Entry]]:
    """A step up to the next phase: its action, intent and entries (`overridden`: what a force overrides)."""
    total = len(plan.phases)
    target = current.phase + 1
    flags = policy.target_flags(target)
    intent = {
        "from_phase": current.phase,
        "to_phase": target,
        "flags": {n: s.to_json() for n, s in flags.items()},
        "previous": {n: s.to_json() for n, s in current.desired.items()},
        "forced": bool(overridden),
        "reason": reason,
        # Why it was allowed: the gates as they stood, and how long the phase had soaked.
        "gates": policy.intent_gates(current),
        "soaked": None if current.phase_started_at is None else now - current.phase_started_at,
    }
    entries: list[Entry] = []
    if overridden:
        entries.append((Kind.STEP_FORCED, f"FORCED step up by {actor.label()}: {reason}; overriding: " + "; ".join(overridden), actor,
                        {"overridden": overridden, "reason": reason}))
    why_auto = ""
    if actor.automatic and current.phase >= 1:
        phase = plan.phases[current.phase - 1]
        why_auto = f" (automatic: soak {format_duration(phase.hold)} done, {len(intent['gates'])} gate(s) green, required items ticked)"
    entries.append((Kind.STEP_INTENT, f"step up to phase {target}/{total} {plan.phases[target - 1].name}: {exposure_label(flags)}{why_auto}",
                    actor, intent))
    return st.ActionRef(new_action_id(), "step_up", now, exposure_label(flags)), intent, entries


def rollback(plan: Plan, policy: Policy, observed: dict[str, FlagState | None], now: float, actor: Actor, *,
             reason: str, cause: dict | None) -> tuple[st.ActionRef, dict[str, Any], Any]:
    """A rollback: its action, intent, and the change that begins it inside the store's transaction."""
    flags = policy.rollback_flags()
    ref = st.ActionRef(new_action_id(), "rollback", now, exposure_label(flags))
    intent: dict[str, Any] = {"flags": {n: s.to_json() for n, s in flags.items()}, "steps": len(plan.rollback.steps),
                              "reason": reason, "cause": cause or {},
                              "before": {n: s.to_json() for n in flags if (s := observed.get(n)) is not None}}

    def change(current: st.RolloutState) -> tuple[st.RolloutState, list[Entry]]:
        # The rollback wins over anything in flight but another rollback: no version check.
        after = st.begin_rollback(current, action=ref, flags=flags)
        # Where it rolls back from, as it stands inside the transaction (the action row gets it too).
        intent.update(from_state=current.status.value, from_phase=current.phase)
        return after, [(Kind.ROLLBACK_INTENT, f"ROLLBACK by {actor.label()}: {reason}; flags → {exposure_label(flags)}", actor, intent)]

    return ref, intent, change


def reassert(policy: Policy, current: st.RolloutState, exposed: dict[str, FlagState], now: float,
             actor: Actor) -> tuple[st.ActionRef, dict[str, Any], list[Entry]]:
    """ROLLED BACK, but flags read back exposed: roll those back again, without the runbook."""
    rollback_flags = policy.rollback_flags()
    flags = {n: rollback_flags[n] for n in exposed}
    reason = f"{exposure_label(exposed)} read back after the rollback: a late write landed, or someone set it"
    intent = {"flags": {n: s.to_json() for n, s in flags.items()}, "steps": 0, "runbook": False, "reason": reason,
              "before": {n: s.to_json() for n, s in exposed.items()}, "from_state": State.ROLLED_BACK.value,
              "from_phase": current.phase, "cause": {}}
    message = f"ROLLED BACK, but {reason}: the rollback is not done; flags → {exposure_label(flags)} again"
    return st.ActionRef(new_action_id(), "rollback", now, exposure_label(flags)), intent, [(Kind.ROLLBACK_REASSERT, message, actor, intent)]
