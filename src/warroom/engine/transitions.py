"""Rollout state transitions, each judged against the state as it is now.

Every function takes the current state (read inside the store's transaction, so no
other process can change it meanwhile) and returns the next one, or raises Refused when
the transition no longer applies: a pause made during a step up stands, a rollback
that already began is not begun twice, a rollback that won is never overwritten.
"""

from __future__ import annotations

from typing import Any

from .snapshot import State

Body = dict[str, Any]

ROLLBACK_STATES = (State.ROLLING_BACK.value, State.ROLLED_BACK.value)


class Refused(Exception):
    """The transition does not apply to the current state; the message says what it is."""


def _without_action(current: Body, action_id: str) -> Any:
    """The state's action slot once `action_id` is finished (another action keeps it)."""
    action = current.get("action")
    return None if action and action.get("id") == action_id else action


def initialise(current: Body, *, now: float, exposed: dict[str, Any], reason: str) -> Body:
    """A new rollout; flags that already read exposed are drift to acknowledge, paused.

    Refused when another process initialised it first.
    """
    if current.get("started_at"):
        raise Refused("already initialised")
    state: Body = {**current, "started_at": now}
    if exposed:
        state.update(state=State.PAUSED.value, drift=exposed, paused_reason=reason)
    return state


def enter_phase(current: Body, *, action_id: str, phase: int, flags: Body, now: float) -> Body:
    """A step up's flags are confirmed: at the new phase. A pause made meanwhile stands."""
    if current["state"] in ROLLBACK_STATES:
        raise Refused(current["state"])
    state = {**current, "phase": phase, "phase_started_at": now, "desired": {**current["desired"], **flags},
             "action": _without_action(current, action_id)}
    if current["state"] != State.PAUSED.value:
        state.update(state=State.RUNNING.value, paused_reason="")
    return state


def step_failed(current: Body, *, action_id: str, reason: str, confirmed: Body) -> Body:
    """A step up that could not be confirmed: paused for a human, at the phase it left."""
    if current["state"] in ROLLBACK_STATES:
        raise Refused(current["state"])
    return {**current, "state": State.PAUSED.value, "paused_reason": reason,
            "desired": {**current["desired"], **confirmed}, "action": _without_action(current, action_id)}


def begin_rollback(current: Body, *, action: Body, flags: Body) -> Body:
    """Roll back from anything but a rollback: it wins over a step or pause in flight."""
    if current["state"] in ROLLBACK_STATES:
        raise Refused(current["state"])
    return {**current, "state": State.ROLLING_BACK.value, "desired": {**current["desired"], **flags}, "drift": {},
            "action": action}


def begin_reassert(current: Body, *, action: Body) -> Body:
    """ROLLED BACK with a flag reading exposed is a rollback not done: rolling back again."""
    if current["state"] != State.ROLLED_BACK.value or current.get("action"):
        raise Refused(current["state"])
    return {**current, "state": State.ROLLING_BACK.value, "drift": {}, "action": action}


def rollback_confirmed(current: Body) -> Body:
    return {**current, "state": State.ROLLED_BACK.value}


def action_finished(current: Body, *, action_id: str, **changes: Any) -> Body:
    return {**current, **changes, "action": _without_action(current, action_id)}
