"""The worst live condition of a launch, as one word: the console's banner and the status page say the same.

Worst first: NO ENGINE · ROLLBACK IN 12s · ROLLING BACK attempt 3 · ROLLED BACK ·
PAUSED · SOURCE ERROR · NO DATA · DRIFT · STEPPING UP · the state (RUNNING, PENDING, COMPLETE).
NO ENGINE leads while the launch is in flight (`Snapshot.in_flight`, what `warroom status`
exits 9 for), because then nothing else on the screen will happen: no countdown fires, no rollback retries. Over a launch with nobody on the new
code (PENDING, ROLLED BACK) an engine's absence is no alarm: `warroom status` says the
state too, not NO ENGINE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from warroom.core.action_kinds import ActionKind
from warroom.core.guardrail_actions import GuardrailAction
from warroom.core.snapshot import GuardrailView, Snapshot, State
from warroom.core.statuses import GuardrailStatus
from warroom.core.units import format_duration, format_value


@dataclass(frozen=True)
class Condition:
    word: str  # "ROLLBACK IN 12s": the banner's badge
    why: str  # one line of cause, beside it when there is room
    level: str  # bad | warn | ok | info: the badge's colour (and reverse video under NO_COLOR)
    narrow: str = ""  # the badge at 80 columns, when `word` would crowd out the rollout's name


def countdown(guard: GuardrailView, now: float) -> float:
    """Seconds until a breaching guardrail acts (its `for` window is met), never below 0."""
    since = guard.since if guard.since is not None else now
    return max(0.0, since + guard.for_s - now)


def until_text(seconds: float) -> str:
    """A countdown is rounded up: it says 1s until the moment it acts."""
    return format_duration(math.ceil(seconds))


def guard_reading(guard: GuardrailView) -> str:
    if guard.shown:  # a cohort comparison says it in its own words
        return f"{guard.id}: {guard.shown}"
    value = "no data" if guard.value is None else format_value(guard.value, guard.unit)
    sign = ">" if guard.op == "above" else "<"
    return f"{guard.id}: {guard.target} {value} {sign} {format_value(guard.threshold, guard.unit)}"


def acting_guardrail(snap: Snapshot) -> GuardrailView | None:
    """The breaching guardrail that will act soonest, if acting can still change anything."""
    def can_act(g: GuardrailView) -> bool:
        if g.action is GuardrailAction.ROLLBACK:
            return snap.exposed
        if g.action is GuardrailAction.PAUSE:
            return snap.state == State.RUNNING
        return g.action is GuardrailAction.ALERT

    pending = [g for g in snap.guardrails if g.status == GuardrailStatus.PENDING and g.mode != "shadow" and can_act(g)]
    return min(pending, key=lambda g: (g.action is not GuardrailAction.ROLLBACK, (g.since or 0) + g.for_s), default=None)


def source_down_text(snap: Snapshot) -> str:
    """Each source that does not answer, once: `prom (127.0.0.1:9090): connection refused`."""
    parts = []
    for down in snap.sources_down:
        cause = down.cause.replace(f" to {down.where}", "") if down.where else down.cause
        parts.append(f"{down.name} ({down.where}): {cause}" if down.where else f"{down.name}: {cause}")
    return "; ".join(parts)


def no_data(snap: Snapshot) -> str:
    """What has no data now (panes, guardrails that hold on it, unreadable flags), or ""."""
    silent = [p for p in snap.panes if p.status.silent]
    parts = [p.title for p in silent]
    # A guardrail on its own query (not on a pane already named) says its id.
    parts += [g.id for g in snap.guardrails if g.status == GuardrailStatus.NODATA and g.target not in {p.id for p in silent}]
    unreadable = [f.name for f in snap.flags if f.error]
    if unreadable:
        parts.append("flags " + ", ".join(unreadable) + " unreadable")
    return ", ".join(parts)


def worst_condition(snap: Snapshot, now: float, *, engine_alive: bool = True, rollback_requested: bool = False) -> Condition:
    if not engine_alive and snap.in_flight:
        return Condition("NO ENGINE — guardrails NOT enforced", "nothing watches the guardrails or acts on them", "bad", "NO ENGINE")
    guard = acting_guardrail(snap) if engine_alive else None  # with no engine no countdown runs
    if guard is not None and guard.action is not GuardrailAction.ALERT and not snap.state.in_rollback:
        return Condition(f"{guard.action.upper()} IN {until_text(countdown(guard, now))}", guard_reading(guard), "bad")
    if snap.state == State.ROLLING_BACK:
        action = snap.action
        if action is not None and action.attempt:
            return Condition(f"ROLLING BACK attempt {action.attempt + 1}", f"attempt {action.attempt} failed: {action.last_error}", "bad")
        return Condition("ROLLING BACK", snap.notes[0] if snap.notes else snap.rollback.reason if snap.rollback else "", "bad")
    if rollback_requested and snap.state != State.ROLLED_BACK:
        return Condition("ROLLBACK REQUESTED", "sent to the engine", "bad")
    if snap.state == State.ROLLED_BACK:
        return Condition("ROLLED BACK", snap.rollback.reason if snap.rollback else "", "bad")
    if snap.state == State.PAUSED:
        return Condition("PAUSED", snap.paused_reason, "warn")
    if not engine_alive:  # nobody on the new code, or the launch is over: said, not alarmed
        why = "no engine: guardrails no longer enforced" if snap.state == State.COMPLETE else "no engine; nothing is exposed"
        return Condition(snap.state.label, why, "warn" if snap.state == State.COMPLETE else "info")
    if snap.sources_down:
        return Condition("SOURCE ERROR", source_down_text(snap), "warn")
    missing = no_data(snap)
    if missing:
        return Condition("NO DATA", missing, "warn")
    if snap.drift:
        return Condition("DRIFT", "flags changed outside warroom", "bad")
    if guard is not None:  # an alert's countdown: worth a word, not an alarm
        return Condition(f"ALERT IN {until_text(countdown(guard, now))}", guard_reading(guard), "warn")
    if snap.action is not None and snap.action.kind == ActionKind.STEP_UP:
        word = "STEPPING UP" + (f" attempt {snap.action.attempt + 1}" if snap.action.attempt else "")
        return Condition(word, snap.action.target, "info")
    if snap.state == State.PENDING:
        return Condition("PENDING", "not started: step up enters phase 1", "info")
    return Condition(snap.state.label, "", "ok")
