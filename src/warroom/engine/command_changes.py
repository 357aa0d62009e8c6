"""What each human command changes — pause, resume, retry, a checklist tick, a drift acknowledgement —
judged against the state as last read.

Each returns the change (the next state and its journal entry) and what to answer, or raises
CommandError saying why not now; the façade (engine.py) commits it under the lease and
publishes. Step up, rollback and sign-offs have parts of their own (intents.py, approvals.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from warroom.core.flagstate import FlagState
from warroom.core.identity import Actor
from warroom.core.journal_kinds import Kind
from warroom.core.snapshot import State
from warroom.engine import state as st
from warroom.engine.executor import CommandError
from warroom.engine.journal import Change, Entry
from warroom.engine.policy import Policy
from warroom.engine.state import RolloutState
from warroom.plan.model import Plan


def pause(current: RolloutState, actor: Actor, reason: str, cause: Mapping[str, Any] | None) -> Change:
    first_step = current.status == State.PENDING and current.action is not None  # phase 0 → 1 in flight
    if current.status != State.RUNNING and not first_step:
        raise CommandError(f"nothing to pause: state is {current.status.label}")
    reason = reason or f"paused by {actor.label()}"
    entry: Entry = (Kind.PAUSE, f"PAUSED: {reason}", actor, {"reason": reason, "cause": dict(cause or {})})
    return lambda now: (now.apply(st.Event.PAUSE, paused_reason=reason), [entry])


def resume(current: RolloutState, actor: Actor) -> Change:
    if current.status != State.PAUSED:
        raise CommandError(f"nothing to resume: state is {current.status.label}")
    if current.drift:
        raise CommandError("flag drift is not acknowledged: ack it first (key a, or `warroom ack PLAN`)")
    entry: Entry = (Kind.RESUME, f"resumed by {actor.label()}", actor, {})
    return lambda now: (now.apply(st.Event.RESUME, paused_reason=""), [entry])


def retry(current: RolloutState, actor: Actor) -> Change:
    """Leave ROLLED_BACK deliberately: back to PENDING, flags stay as rolled back."""
    if current.status != State.ROLLED_BACK or current.action is not None:
        raise CommandError(f"retry leaves ROLLED BACK; state is {current.status.label}"
                           + (" (rollback still finishing)" if current.action is not None else ""))
    entry: Entry = (Kind.RETRY, f"{actor.label()} starts the rollout again from the beginning", actor, {})
    return lambda now: (now.apply(st.Event.RETRY, phase=0, phase_started_at=None, ticked={}, paused_reason=""), [entry])


def tick(plan: Plan, current: RolloutState, actor: Actor, item: str, ticked: bool) -> tuple[Change, str]:
    """Tick (or untick) a checklist item of the current phase; the change and what was done, in words."""
    if current.phase < 1:
        raise CommandError("no phase is running yet: step up into phase 1 first")
    phase = plan.phases[current.phase - 1]
    try:
        item = phase.find_item(item)
    except LookupError as exc:
        raise CommandError(f"phase {current.phase}: {exc.args[0]}") from None
    text = phase.checklist[phase.item_ids().index(item)].text
    items = dict(current.ticked_in())
    if ticked:
        items[item] = actor.label()
    else:
        items.pop(item, None)
    verb = "ticked" if ticked else "unticked"
    entry: Entry = (Kind.CHECKLIST_TICK if ticked else Kind.CHECKLIST_UNTICK, f"{verb}: {text}", actor,
                    {"item": item, "phase": current.phase})
    return (lambda now: (now.apply(st.Event.TICK, ticked={**now.ticked, now.phase: items}), [entry])), f"{verb}: {text}"


def ack_drift(plan: Plan, policy: Policy, current: RolloutState, observed: Mapping[str, FlagState | None], actor: Actor,
              now: float) -> tuple[Change, str]:
    """Accept the observed flag states as the new truth and let automation go on; the change and the answer."""
    if not current.drift:
        raise CommandError("no flag drift to acknowledge")
    drift = dict(current.drift)
    desired = {**current.desired, **drift}
    resume = current.status == State.PAUSED and current.paused_reason.startswith("drift")
    changes: dict[str, Any] = {"desired": desired, "drift": {}}
    message = f"{actor.label()} acknowledged drift on {', '.join(drift)}; observed state accepted"
    if current.phase == 0:
        # Exposed before any step (a lost state file over a live launch): the phase these
        # flags are at, or no automatic step at all, never one down to phase 1.
        found = policy.phase_matching({n: s for n, s in observed.items() if s is not None})
        if found:
            changes.update(phase=found, phase_started_at=now, desired={**desired, **policy.cumulative_flags(found)})
            message += f"; the flags are those of phase {found}/{len(plan.phases)} {plan.phases[found - 1].name}: now at it"
        else:
            resume = False
            changes["paused_reason"] = ("flags acknowledged as they are, but they match no phase of the plan: "
                                        "resume to step on from phase 0, or roll back")
            message += "; they match no phase: still paused"
    if resume:
        changes["paused_reason"] = ""
    entry: Entry = (Kind.DRIFT_ACK, message, actor, {"flags": {n: s.to_json() for n, s in drift.items()},
                                                      "phase": changes.get("phase", current.phase)})
    answer = "drift acknowledged" + ("; resumed" if resume else "") + (f" at phase {changes['phase']}" if "phase" in changes else "")
    return (lambda state: (state.apply(st.Event.ACK_RESUME if resume else st.Event.ACK, **changes), [entry])), answer
