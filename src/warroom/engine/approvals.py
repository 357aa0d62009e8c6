"""Sign-offs: what the next step waits for, asking, answering, and what time and change do to a request.

Pure judgement over the plan and the rollout's state (with its request, core/approvals.py);
it returns the next state and the journal entries, chained (core/decision_chain.py), and the
façade commits them. The step-blocker is `blocker`, one function the engine's step blockers
call. What a timeout or a grant makes the engine do comes back as decisions (a pause, a
rollback, the step up as its requester) for the façade to apply. Nothing here is ever asked by a rollback, a pause or a step down.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping

from warroom.core.approvals import Answer, Event, Given, OnTimeout, Refused, Request, RequestStatus
from warroom.core.decision_chain import sealed
from warroom.core.identity import AUTOMATIC, Actor
from warroom.core.journal_kinds import CHAINED, Kind
from warroom.engine import state as st
from warroom.engine.automation import Decision, Pause, RollBack, StepUp
from warroom.engine.executor import CommandError
from warroom.engine.journal import Entry
from warroom.engine.state import RolloutState
from warroom.plan.approvals import Approval
from warroom.plan.model import Plan


def needed(plan: Plan, state: RolloutState) -> Approval | None:
    """The sign-off the next step up waits for; None when it needs none (or no step is possible)."""
    if not state.status.may_step or state.phase >= len(plan.phases):
        return None
    return plan.approval_for(state.phase + 1)


def current(plan: Plan, state: RolloutState) -> Request | None:
    """The request for the next step, if one was asked for it."""
    req = state.approval
    return req if req is not None and req.phase == state.phase + 1 and req.status.open else None


def blocker(plan: Plan, state: RolloutState, now: float) -> str | None:
    """Why the next step up waits on people, in the console's words; None when it does not. A sign-off not
    asked yet blocks nothing: asking is what a step up into its phase does."""
    req = current(plan, state) if needed(plan, state) is not None else None
    return req.awaited(now) if req is not None and req.status is RequestStatus.AWAITING else None


def person(actor: Actor) -> str:
    return "" if actor.automatic else actor.user


def members_of(plan: Plan, who: str) -> tuple[str, ...]:
    return tuple(name for name, role in plan.roles.items() if who in role.members)


def chain(state: RolloutState, entries: list[Entry]) -> tuple[str, list[Entry]]:
    """The entries with the decision ones sealed into the chain after `state.chain`; the new head."""
    head = state.chain
    out: list[Entry] = []
    for kind, message, actor, data in entries:
        if kind in CHAINED:
            data = sealed(head, kind, message, data, actor.to_json())
            head = data["chain"]["hash"]
        out.append((kind, message, actor, data))
    return head, out


def commit(state: RolloutState, req: Request | None, entries: list[Entry]) -> tuple[RolloutState, list[Entry]]:
    head, sealed_entries = chain(state, entries)
    return state.apply(st.Event.SIGN_OFF, approval=req, chain=head), sealed_entries


def ask(plan: Plan, state: RolloutState, *, digest: str, exposures: Mapping[str, str], actor: Actor, now: float,
        reason: str = "") -> tuple[RolloutState, list[Entry]]:
    """Open a request for the next step (asked by `actor`); st.Refused when one is open for it already."""
    approval = needed(plan, state)
    if approval is None or current(plan, state) is not None:
        raise st.Refused("no sign-off to ask for")
    if actor.unproven and not approval.self_approval:
        # Four eyes need two proven people: a name only written into the state file could be the approver's own.
        raise CommandError(f"{actor.label()} asks for a step that needs sign-off, and nothing proves who sent it: "
                           "ask from the engine's host (`warroom step PLAN` there talks to it over its local socket) "
                           "or through a PostgreSQL state, where the database names you")
    phase = state.phase + 1
    req = Request(
        id=uuid.uuid4().hex[:12], phase=phase, exposures=dict(exposures), digest=digest, requester=person(actor), requested_at=now,
        quorums=dict(approval.roles), members={r: tuple(plan.roles[r].members) for r in approval.roles},
        self_approval=approval.self_approval, deadline=now + approval.timeout if approval.timeout else None,
        on_timeout=approval.on_timeout, forced_reason=reason)
    what = f"phase {phase}/{len(plan.phases)} {plan.phases[phase - 1].name} ({', '.join(f'{n} {v}' for n, v in exposures.items())})"
    entry: Entry = (Kind.APPROVAL_REQUESTED, f"{actor.label()} asks to step up to {what}: {req.awaited(now)}", actor,
                    {"request": req.id, "phase": phase, "exposures": dict(exposures), "digest": digest, "quorums": dict(req.quorums),
                     "deadline": req.deadline, "on_timeout": req.on_timeout.value, "self_approval": req.self_approval})
    return commit(state, req, [entry])


def answer(plan: Plan, state: RolloutState, *, actor: Actor, given: Answer, note: str, evidence: Mapping[str, float | None],
           digest: str, seen_digest: str | None, now: float) -> tuple[RolloutState, list[Entry]]:
    """`actor`'s approval or rejection of the open request; CommandError naming why it cannot count."""
    req = current(plan, state)
    if req is None:
        raise CommandError("nothing awaits sign-off now (a step up asks for it when its phase needs one)")
    who = person(actor)
    if not who:
        raise CommandError("the engine's automation cannot sign off")
    if not actor.proof:
        raise CommandError(f"a sign-off counts only from a proven person, and {who!r} is only what the client said: on SQLite, "
                           "answer on the engine's host (the engine asks the kernel who you are over its local socket); on "
                           "PostgreSQL, connect with your own database role")
    if seen_digest is not None and seen_digest != digest:
        raise CommandError("your copy of the plan differs from the one the engine runs (its digest): an approval binds to "
                           "the exact plan; look at the plan the engine runs and answer from it")
    roles = tuple(r for r in members_of(plan, who) if r in req.quorums)
    if not roles:
        asked = "; ".join(f"{r}: {', '.join(req.members.get(r, ()))}" for r in req.quorums)
        raise CommandError(f"{who} is in none of the roles asked ({asked})")
    if given is Answer.APPROVE and who == req.requester and not req.self_approval:
        raise CommandError(f"{who} asked for this step and the plan does not let the requester approve it: another member must")
    if given is Answer.APPROVE and any(g.person == who and g.answer is Answer.APPROVE for g in req.answers):
        raise CommandError(f"{who} already approved this step: a person counts once")
    answered = Given(who, given, now, roles, dict(evidence), note, actor.to_json())
    req = dataclasses.replace(req, answers=(*req.answers, answered))
    data = {"request": req.id, "phase": req.phase, "exposures": dict(req.exposures), "digest": req.digest, "roles": list(roles),
            "evidence": dict(evidence), "note": note}
    target = f"phase {req.phase} ({', '.join(f'{n} {v}' for n, v in req.exposures.items())})"
    entries: list[Entry]
    if given is Answer.REJECT:
        req = req.apply(Event.REJECTED, ended=f"rejected by {who}" + (f": {note}" if note else ""))
        entries = [(Kind.APPROVAL_REJECTED, f"{actor.label()} rejected the step to {target}" + (f": {note}" if note else ""), actor, data)]
        return commit(state, req, entries)
    entries = [(Kind.APPROVAL_GIVEN, f"{actor.label()} approved the step to {target} as {', '.join(roles)}"
                + (f": {note}" if note else ""), actor, data)]
    if req.missing():
        req = req.apply(Event.APPROVED)
    else:
        req = req.apply(Event.QUORUM_MET)
        people = [g.person for g in req.approvers()]
        entries.append((Kind.APPROVAL_GRANTED, f"sign-off complete for {target}: {', '.join(people)}; the step may happen once",
                        actor, {"request": req.id, "phase": req.phase, "approvers": people, "digest": req.digest}))
    return commit(state, req, entries)


def decided(state: RolloutState, go: bool, entry: Entry) -> tuple[RolloutState, list[Entry]]:
    """The go/no-go entry committed into the chain; on NO-GO the sign-off it was given on ends (ask again)."""
    req = state.approval
    if not go and req is not None and req.status is RequestStatus.GRANTED:
        req = req.apply(Event.REJECTED, ended="NO-GO")
    return commit(state, req, [entry])


def used(state: RolloutState, phase: int) -> Request | None:
    """The request as the step into `phase` leaves it: USED when it was granted for it (committed with the step's intent)."""
    req = state.approval
    if req is None or req.phase != phase or req.status is not RequestStatus.GRANTED:
        return req
    return req.apply(Event.STEP_BEGUN)


def granted(plan: Plan, state: RolloutState) -> Request | None:
    """A granted request whose step has not begun: the engine steps on it (again after a crash)."""
    req = current(plan, state)
    return req if req is not None and req.status is RequestStatus.GRANTED else None


def expiry(plan: Plan, state: RolloutState, *, digest: str, now: float) -> tuple[RolloutState, list[Entry], OnTimeout | None] | None:
    """What time and change did to the open request: timed out (with the plan's on_timeout) or lapsed; None: nothing."""
    req = state.approval
    if req is None or not req.status.open:
        return None
    why = ""
    if req.digest != digest:
        why = "the plan changed since it was asked (its digest differs)"
    elif state.status.in_rollback or req.phase != state.phase + 1:
        why = f"the rollout is {state.status.label} at phase {state.phase} now, not where it was asked"
    data = {"request": req.id, "phase": req.phase, "digest": req.digest}
    if why:
        try:
            req = req.apply(Event.LAPSE, ended=why)
        except Refused:
            return None
        return (*commit(state, req, [(Kind.APPROVAL_LAPSED, f"the sign-off for phase {req.phase} lapsed: {why}; ask again", AUTOMATIC,
                                      data)]), None)
    if req.status is RequestStatus.AWAITING and req.deadline is not None and now >= req.deadline:
        waited = req.awaited(now).replace("awaiting", "nobody answered for", 1).split(" → ")[0]
        req = req.apply(Event.TIMEOUT, ended=f"timed out: {req.on_timeout.value}")
        entry: Entry = (Kind.APPROVAL_TIMED_OUT, f"the sign-off for phase {req.phase} timed out ({waited}): {req.on_timeout.value} — "
                        f"{req.on_timeout.meaning}", AUTOMATIC, {**data, "on_timeout": req.on_timeout.value})
        return (*commit(state, req, [entry]), req.on_timeout)
    return None



def on_time(plan: Plan, state: RolloutState, *, digest: str, now: float) -> tuple[RolloutState, list[Entry], list[Decision]] | None:
    """`expiry`, with what the plan's on_timeout then does as decisions: a pause (abort) or a rollback."""
    expired = expiry(plan, state, digest=digest, now=now)
    if expired is None:
        return None
    after, entries, action = expired
    cause = {"approval": after.approval.id if after.approval else ""}
    then: list[Decision] = ([Pause(entries[0][1], cause)] if action is OnTimeout.ABORT else
                            [RollBack(entries[0][1], cause)] if action is OnTimeout.ROLLBACK else [])
    return after, entries, then


def on_grant(plan: Plan, state: RolloutState, *, busy: bool, blockers: Callable[..., list[str]]) -> list[Decision]:
    """The step a granted sign-off allows, as its requester (after a crash between the grant and the step, now);
    none while an action runs or something even a force cannot override blocks it."""
    req = granted(plan, state)
    if req is None or busy or blockers(forced=bool(req.forced_reason)):
        return []
    asker = Actor(user=req.requester) if req.requester else AUTOMATIC
    return [StepUp(asker, force=bool(req.forced_reason), reason=req.forced_reason)]


def said(req: Request, given: Answer, now: float) -> str | None:
    """What an answer says when the step does not happen on it (still awaited, or rejected); None: granted, it steps."""
    if req.status.open and req.missing():
        return f"approved; still {req.awaited(now)}"
    if given is Answer.REJECT:
        return f"rejected: the step to phase {req.phase} does not happen"
    return None
