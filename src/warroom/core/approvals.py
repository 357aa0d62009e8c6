"""Approvals as values: a request for one exact change, the answers people gave, and the one
table of its transitions. No I/O: the engine judges and commits, the store keeps it in the state.

A request binds to the change it lets happen — the phase it enters, that phase's exposures,
the plan's digest — and every answer keeps the guardrail values its giver saw. It is opened
by whoever asked for the step (the requester), counts each person once, and ends GRANTED
(the step may happen, once: USED), REJECTED, TIMED OUT or LAPSED (the plan or the rollout
changed under it). Going back never looks at it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from warroom.core.words import Word


class OnTimeout(Word):
    HOLD = "hold", "the request lapses; the rollout stays where it is, running"
    ABORT = "abort", "the request lapses and the rollout pauses for a human"
    ROLLBACK = "rollback", "the request lapses and the rollout rolls back"


class Answer(Word):
    APPROVE = "approve", "lets the change happen (counts once per person towards the quorum)"
    REJECT = "reject", "refuses the change: the request ends, the step does not happen"


class RequestStatus(Word):
    AWAITING = "awaiting", "the quorum is not met yet; the step waits"
    GRANTED = "granted", "every role's quorum is met: the step may happen, once"
    USED = "used", "the step it allowed began (its intent is committed)"
    REJECTED = "rejected", "someone with a say refused: the step does not happen"
    TIMED_OUT = "timed_out", "nobody answered in time: the plan's on_timeout applies"
    LAPSED = "lapsed", "the plan or the rollout changed under it: ask again"

    @property
    def open(self) -> bool:
        """Still waiting for answers or for its step."""
        return self in (RequestStatus.AWAITING, RequestStatus.GRANTED)


class Event(Enum):
    APPROVED = "approved"  # an approval that leaves a quorum unmet
    QUORUM_MET = "quorum met"
    REJECTED = "rejected"
    TIMEOUT = "timeout"
    LAPSE = "lapse"
    STEP_BEGUN = "step begun"


A, G = RequestStatus.AWAITING, RequestStatus.GRANTED

TRANSITIONS: dict[tuple[RequestStatus, Event], RequestStatus] = {
    (A, Event.APPROVED): A,
    (A, Event.QUORUM_MET): G,
    (A, Event.REJECTED): RequestStatus.REJECTED,
    (G, Event.REJECTED): RequestStatus.REJECTED,  # a no before the step began still stops it
    (A, Event.TIMEOUT): RequestStatus.TIMED_OUT,
    (A, Event.LAPSE): RequestStatus.LAPSED,
    (G, Event.LAPSE): RequestStatus.LAPSED,
    (G, Event.STEP_BEGUN): RequestStatus.USED,
}


class Refused(Exception):
    """The event is not allowed from the request's status; the message is that status."""


@dataclass(frozen=True)
class Given:
    """One person's answer, with what they saw when they gave it."""

    person: str  # as proven (the kernel's uid, the database's role), never as declared
    answer: Answer
    at: float
    roles: tuple[str, ...]  # the plan's roles this person is a member of
    evidence: Mapping[str, float | None] = field(default_factory=dict)  # guardrail id -> value seen
    note: str = ""
    actor: Mapping[str, Any] = field(default_factory=dict)  # the full proven actor (SSH address, tty, uid)

    def to_json(self) -> dict[str, Any]:
        return {"person": self.person, "answer": self.answer.value, "at": self.at, "roles": list(self.roles),
                "evidence": dict(self.evidence), "note": self.note, "actor": dict(self.actor)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Given:
        return cls(str(data["person"]), Answer(data["answer"]), float(data["at"]), tuple(data.get("roles") or ()),
                   dict(data.get("evidence") or {}), str(data.get("note") or ""), dict(data.get("actor") or {}))


@dataclass(frozen=True)
class Request:
    """A request for the step into `phase`, bound to its exposures and the plan's digest."""

    id: str
    phase: int  # the phase the step enters (1: the first exposure, after the go/no-go)
    exposures: Mapping[str, str]  # flag -> label as the phase sets it ("feature 25%")
    digest: str  # the plan's digest when asked
    requester: str  # the person who asked for the step ("" for the engine's own automation)
    requested_at: float
    quorums: Mapping[str, int]  # role -> distinct people needed
    members: Mapping[str, tuple[str, ...]]  # role -> its members, as the plan said when asked
    self_approval: bool
    deadline: float | None
    on_timeout: OnTimeout
    status: RequestStatus = RequestStatus.AWAITING
    answers: tuple[Given, ...] = ()
    ended: str = ""  # why it ended, in words
    forced_reason: str = ""  # the requester forced the step past soak, gates or checklist, for this reason

    # ------------------------------------------------------------ the table

    def apply(self, event: Event, **changes: Any) -> Request:
        status = TRANSITIONS.get((self.status, event))
        if status is None:
            raise Refused(self.status.value)
        return replace(self, status=status, **changes)

    # ------------------------------------------------------------ counting

    def approvers(self) -> list[Given]:
        """Approvals that count: one per person (the first), never the requester's unless allowed."""
        seen: set[str] = set()
        out = []
        for given in self.answers:
            if given.answer is not Answer.APPROVE or given.person in seen:
                continue
            if given.person == self.requester and not self.self_approval:
                continue
            seen.add(given.person)
            out.append(given)
        return out

    def missing(self) -> dict[str, int]:
        """Role -> people still needed, each approver counted for one role only (four eyes across two
        roles are two people): the best assignment of approvers to roles, found by trying them all."""
        people = [g.person for g in self.approvers()]
        best = dict(self.quorums)

        def assign(i: int, need: dict[str, int]) -> None:
            nonlocal best
            if sum(need.values()) < sum(best.values()):
                best = dict(need)
            if i == len(people) or not sum(need.values()):
                return
            for role, left in need.items():
                if left and people[i] in self.members.get(role, ()):
                    assign(i + 1, {**need, role: left - 1})
            assign(i + 1, need)

        assign(0, dict(self.quorums))
        return {role: n for role, n in best.items() if n}

    def awaited(self, now: float) -> str:
        """`awaiting security (carol|dave) 04:12 → on timeout: hold`: what, from whom, how long."""
        done = {g.person for g in self.approvers()} | (set() if self.self_approval else {self.requester})
        who = ", ".join(f"{role}" + (f"×{n}" if n > 1 else "") + f" ({'|'.join(m for m in self.members.get(role, ()) if m not in done)})"
                        for role, n in self.missing().items())
        left = ""
        if self.deadline is not None:
            secs = max(0, int(self.deadline - now))
            left = f" {secs // 60:02d}:{secs % 60:02d}" if secs < 3600 else f" {secs // 3600}h{secs % 3600 // 60:02d}m"
        return f"awaiting {who}{left}" + (f" → on timeout: {self.on_timeout.value}" if self.deadline is not None else " (no timeout)")

    # ------------------------------------------------------------ stored form

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "phase": self.phase, "exposures": dict(self.exposures), "digest": self.digest,
                "requester": self.requester, "requested_at": self.requested_at, "quorums": dict(self.quorums),
                "members": {r: list(m) for r, m in self.members.items()}, "self_approval": self.self_approval,
                "deadline": self.deadline, "on_timeout": self.on_timeout.value, "status": self.status.value,
                "answers": [g.to_json() for g in self.answers], "ended": self.ended,
                "forced_reason": self.forced_reason}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Request | None:
        if not data:
            return None
        return cls(str(data["id"]), int(data["phase"]), dict(data.get("exposures") or {}), str(data["digest"]),
                   str(data.get("requester") or ""), float(data["requested_at"]), {r: int(n) for r, n in data["quorums"].items()},
                   {r: tuple(m) for r, m in (data.get("members") or {}).items()}, bool(data.get("self_approval")),
                   data.get("deadline"), OnTimeout(data.get("on_timeout", "hold")), RequestStatus(data["status"]),
                   tuple(Given.from_json(g) for g in data.get("answers") or ()), str(data.get("ended") or ""),
                   str(data.get("forced_reason") or ""))
