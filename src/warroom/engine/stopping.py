"""What stopping the driving engine would leave unguarded: why `warroom down` is refused without `--force`.

Once its engine stops, nothing watches a live launch: users stay exposed while RUNNING or
PAUSED (or while a first step up lands), and a guardrail counting down to act never acts. The
refusal says what stays exposed and which guardrails stop being enforced, and the two ways
on: `--force`, or `warroom up PLAN --replace` (a new engine without a gap).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from warroom.core.guardrail_actions import GuardrailAction
from warroom.core.snapshot import GuardrailView
from warroom.core.statuses import GuardrailStatus
from warroom.core.units import format_duration, format_value
from warroom.engine.policy import exposure_label

if TYPE_CHECKING:
    from warroom.engine.engine import Engine


def _rule(g: GuardrailView) -> str:
    if g.threshold is None:  # a comparison between cohorts: its words are in `shown`
        return f"{g.id} (→ {g.action.value})"
    return f"{g.id} ({g.target} {g.op} {format_value(g.threshold, g.unit)} for {format_duration(g.for_s)} → {g.action.value})"


def left_unguarded(engine: Engine) -> str:
    """Why stopping this engine now leaves a live launch unguarded, in words; "" when it does not."""
    rollout, now = engine.rollout, engine.clock.now()
    seen = {**rollout.desired, **{n: s for n, s in engine.flags.observed.items() if s is not None}}
    exposed = {n: s for n, s in seen.items() if s.exposure > 0}
    acting = [g for g in engine.guardrails.views if g.mode != "shadow"]
    counting = [g for g in acting if g.status is GuardrailStatus.PENDING and g.action is not GuardrailAction.ALERT and g.since is not None]
    if not exposed or not (rollout.in_flight or counting):
        return ""
    total = len(engine.plan.phases)
    at = f"phase {rollout.phase}/{total} {engine.plan.phases[rollout.phase - 1].name}" if rollout.phase else f"phase 0/{total}"
    text = f"the launch is {rollout.status.label} at {at} with {exposure_label(exposed)} exposed"
    for g in counting:
        left = max(0.0, (g.since or now) + g.for_s - now)
        text += f"; guardrail {g.id} is counting down: {g.action.value.upper()} IN {format_duration(left)}"
    if acting:
        text += f"; stopping its engine stops enforcing {len(acting)} guardrail(s): " + ", ".join(_rule(g) for g in acting)
    return text + ". Stop it anyway with `warroom down PLAN --force`, or restart it without a gap with `warroom up PLAN --replace`"
