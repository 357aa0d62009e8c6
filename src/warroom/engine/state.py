"""The rollout's state as a typed, frozen value, and the one table of allowed transitions.

Every change of status goes through `TRANSITIONS`: an event that the table does not
allow from the current status is refused (`Refused`), whatever the caller read
earlier. Changes are computed from the state as it is inside the store's transaction,
so a pause made while a step up writes its flags stands (STEP_CONFIRMED from PAUSED
stays PAUSED), a rollback that began is not begun twice, and nothing overwrites a
rollback that won.

The stored form (`to_json`) is the one state files have always had.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from warroom.core.action_kinds import ActionKind
from warroom.core.approvals import Request
from warroom.core.flagstate import FlagState
from warroom.core.snapshot import State


class Event(Enum):
    INITIALISE = "initialise"  # a new rollout
    FOUND_EXPOSED = "found exposed"  # a new rollout over flags that already read exposed
    STEP_INTENT = "step intent"  # a step up's flag writes begin
    STEP_CONFIRMED = "step confirmed"  # its flags read back at target: the next phase
    STEP_FAILED = "step failed"  # they could not be confirmed (or an interrupted one left them mixed)
    COMPLETE = "complete"
    PAUSE = "pause"
    RESUME = "resume"
    DRIFT = "drift"  # a flag reads other than warroom set it
    ACK = "ack"  # drift accepted, the status as it was
    ACK_RESUME = "ack and resume"  # drift accepted, the pause it caused lifted
    ROLLBACK = "rollback"
    ROLLBACK_CONFIRMED = "rollback confirmed"
    REASSERT = "reassert"  # ROLLED BACK, but a flag reads exposed: rolling back again
    RETRY = "retry"
    TICK = "tick"  # a checklist item
    SIGN_OFF = "sign-off"  # an approval asked, answered, granted, timed out or lapsed (its own table: core/approvals.py)
    ACTION_FINISHED = "action finished"  # the action slot frees, the status stays


P, R, PA, C, RB, RD = State.PENDING, State.RUNNING, State.PAUSED, State.COMPLETE, State.ROLLING_BACK, State.ROLLED_BACK
EVERY = tuple(State)

TRANSITIONS: dict[tuple[State, Event], State] = {
    (P, Event.INITIALISE): P,
    (P, Event.FOUND_EXPOSED): PA,
    (P, Event.STEP_INTENT): P,
    (R, Event.STEP_INTENT): R,
    (P, Event.STEP_CONFIRMED): R,
    (R, Event.STEP_CONFIRMED): R,
    (PA, Event.STEP_CONFIRMED): PA,  # a pause made meanwhile stands
    (P, Event.STEP_FAILED): PA,
    (R, Event.STEP_FAILED): PA,
    (PA, Event.STEP_FAILED): PA,
    (R, Event.COMPLETE): C,
    (R, Event.PAUSE): PA,
    (P, Event.PAUSE): PA,  # while the first step up is in flight: it lands at phase 1, paused
    (PA, Event.RESUME): R,
    (R, Event.DRIFT): PA,
    (PA, Event.DRIFT): PA,
    (C, Event.DRIFT): C,
    (RD, Event.DRIFT): RD,
    (PA, Event.ACK_RESUME): R,
    **{(s, Event.ROLLBACK): RB for s in EVERY if not s.in_rollback},  # PENDING too: the first step's flags may be landing
    (RB, Event.ROLLBACK_CONFIRMED): RD,
    (RD, Event.REASSERT): RB,
    (RD, Event.RETRY): P,
    **{(s, Event.ACK): s for s in EVERY},
    **{(s, Event.TICK): s for s in EVERY},
    **{(s, Event.SIGN_OFF): s for s in EVERY},
    **{(s, Event.ACTION_FINISHED): s for s in EVERY},
}


class Refused(Exception):
    """The event is not allowed from the current status; the message is that status (`ROLLING_BACK`)."""


@dataclass(frozen=True)
class ActionRef:
    """The write-ahead action in flight, as the state records it."""

    id: str
    kind: ActionKind
    since: float
    target: str = ""  # "feature 50%": what it sets

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "since": self.since, "target": self.target}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> ActionRef | None:
        if not data:
            return None
        return cls(str(data["id"]), ActionKind(data["kind"]), float(data.get("since") or 0.0), str(data.get("target", "")))


def _flags(data: Mapping[str, Any] | None) -> dict[str, FlagState]:
    return {name: FlagState.from_json(value) for name, value in (data or {}).items()}


@dataclass(frozen=True)
class RolloutState:
    status: State = State.PENDING
    phase: int = 0  # 1-based; 0 before the first step up
    phase_started_at: float | None = None
    desired: Mapping[str, FlagState] = field(default_factory=dict)  # what warroom set, by flag
    ticked: Mapping[int, Mapping[str, str]] = field(default_factory=dict)  # phase -> item id -> who
    paused_reason: str = ""
    drift: Mapping[str, FlagState] = field(default_factory=dict)  # flags seen changed outside warroom
    started_at: float | None = None
    action: ActionRef | None = None
    approval: Request | None = None  # the latest sign-off asked for (core/approvals.py has its own table)
    chain: str = ""  # the hash of the newest decision entry (approvals, go/no-go): `warroom verify` follows it back

    # ------------------------------------------------------------ the table

    def apply(self, event: Event, **changes: Any) -> RolloutState:
        """The state after `event`, with `changes` to the other fields; Refused when the table forbids it."""
        status = TRANSITIONS.get((self.status, event))
        if status is None:
            raise Refused(self.status.value)
        return replace(self, status=status, **changes)

    def without_action(self, action_id: str) -> ActionRef | None:
        """The action slot once `action_id` is finished (another action keeps it)."""
        return None if self.action is not None and self.action.id == action_id else self.action

    @property
    def in_flight(self) -> bool:
        """An engine must be guarding: users are exposed and the launch is not over, or an action
        is unfinished (a step up's first flags landing, a rollback's runbook after its flags are off)."""
        return self.status.in_flight(acting=self.action is not None)

    @property
    def exposed(self) -> bool:
        """Users may be on the new code and no rollback began: a rollback guardrail can still act."""
        return self.status.exposed(acting=self.action is not None)

    @property
    def rollback_in_flight(self) -> bool:
        return self.status.rollback_in_flight(self.action.kind if self.action is not None else None)

    def ticked_in(self, phase: int | None = None) -> Mapping[str, str]:
        return self.ticked.get(self.phase if phase is None else phase, {})

    # ------------------------------------------------------------ stored form

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "state": self.status.value,
            "phase": self.phase,
            "phase_started_at": self.phase_started_at,
            "desired": {n: s.to_json() for n, s in self.desired.items()},
            "ticked": {str(p): dict(items) for p, items in self.ticked.items()},
            "paused_reason": self.paused_reason,
            "drift": {n: s.to_json() for n, s in self.drift.items()},
            "started_at": self.started_at,
            "action": self.action.to_json() if self.action else None,
        }
        # Only once a sign-off was asked: a plan without approvals keeps the state files it always had.
        if self.approval is not None:
            body["approval"] = self.approval.to_json()
        if self.chain:
            body["chain"] = self.chain
        return body

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> RolloutState:
        data = data or {}
        return cls(
            status=State(data.get("state", State.PENDING.value)),
            phase=int(data.get("phase", 0)),
            phase_started_at=data.get("phase_started_at"),
            desired=_flags(data.get("desired")),
            ticked={int(p): dict(items) for p, items in (data.get("ticked") or {}).items()},
            paused_reason=str(data.get("paused_reason", "")),
            drift=_flags(data.get("drift")),
            started_at=data.get("started_at"),
            action=ActionRef.from_json(data.get("action")),
            approval=Request.from_json(data.get("approval")),
            chain=str(data.get("chain") or ""),
        )


# ---------------------------------------------------------------- the changes an engine makes


def initialise(current: RolloutState, *, now: float, exposed: Mapping[str, FlagState], reason: str) -> RolloutState:
    """A new rollout; flags that already read exposed are drift to acknowledge, paused.

    Refused when another process initialised it first.
    """
    if current.started_at:
        raise Refused("already initialised")
    if exposed:
        return current.apply(Event.FOUND_EXPOSED, started_at=now, drift=dict(exposed), paused_reason=reason)
    return current.apply(Event.INITIALISE, started_at=now)


def enter_phase(current: RolloutState, *, action_id: str, phase: int, flags: Mapping[str, FlagState], now: float) -> RolloutState:
    """A step up's flags are confirmed: at the new phase. A pause made meanwhile stands."""
    paused = current.status == State.PAUSED
    return current.apply(Event.STEP_CONFIRMED, phase=phase, phase_started_at=now, desired={**current.desired, **flags},
                         action=current.without_action(action_id), paused_reason=current.paused_reason if paused else "")


def step_failed(current: RolloutState, *, action_id: str, reason: str, confirmed: Mapping[str, FlagState]) -> RolloutState:
    """A step up that could not be confirmed: paused for a human, at the phase it left."""
    return current.apply(Event.STEP_FAILED, paused_reason=reason, desired={**current.desired, **confirmed},
                         action=current.without_action(action_id))


def begin_rollback(current: RolloutState, *, action: ActionRef, flags: Mapping[str, FlagState]) -> RolloutState:
    """Roll back from anything but a rollback: it wins over a step or pause in flight."""
    return current.apply(Event.ROLLBACK, desired={**current.desired, **flags}, drift={}, action=action)


def begin_reassert(current: RolloutState, *, action: ActionRef) -> RolloutState:
    """ROLLED BACK with a flag reading exposed is a rollback not done: rolling back again."""
    if current.action is not None:
        raise Refused(current.status.value)
    return current.apply(Event.REASSERT, drift={}, action=action)


def rollback_confirmed(current: RolloutState) -> RolloutState:
    return current.apply(Event.ROLLBACK_CONFIRMED)


def action_finished(current: RolloutState, *, action_id: str) -> RolloutState:
    return current.apply(Event.ACTION_FINISHED, action=current.without_action(action_id))
