"""Stakeholder updates as the plan promises them (`updates:`): when the next one is due, its draft, the reminder.

Nothing here acts. Each tick `decide` returns decisions — store this draft, remind its owner
that it is overdue, publish it (the plan's `auto`) — and the façade applies them; publishing
(Engine.publish_update) archives the update and journals it, and the journal's listeners post
it to the notify targets. What this part remembers is what the journal told it since the last
published update: the first incident (a rollback or a breach) and the decisions taken.

Due times: `every` counts from the last published update (or from when the launch went in
flight) while it is in flight; `after_incident` from the first incident since the last update;
`at` is the next of those times of day (in the plan's zone) after the last update, while in
flight. The earliest wins; one published update answers every promise due by then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from warroom.core.condition import guard_reading
from warroom.core.identity import AUTOMATIC, Actor, person
from warroom.core.journal_kinds import DECISIONS, Kind
from warroom.core.snapshot import GuardrailView, JournalEntry, Snapshot, UpdatesView
from warroom.core.statuses import GuardrailStatus
from warroom.core.units import format_duration
from warroom.core.updates import UpdateReason, UpdateStatus
from warroom.engine.automation import Note
from warroom.engine.state import RolloutState
from warroom.plan.model import Plan
from warroom.plan.updates import Updates
from warroom.store.base import StoredUpdate

# What starts the `after_incident` clock: a rollback, or a guardrail breaching (pending or acting).
INCIDENTS = (Kind.ROLLBACK_INTENT, Kind.GUARDRAIL_BREACH, Kind.GUARDRAIL_ALERT, Kind.GUARDRAIL_FIRED)
ACTIONS_TOLD = 8  # decisions an update lists; older ones since the last update are counted


@dataclass(frozen=True)
class DraftUpdate:
    """Store this draft: a new one that came due, or a fresher text of the one waiting."""

    update: StoredUpdate


@dataclass(frozen=True)
class PublishUpdate:
    """Archive and post the waiting draft, approved by `actor` (the plan's `auto`: warroom itself)."""

    actor: Actor


UpdateDecision = DraftUpdate | PublishUpdate | Note


def next_time_of_day(after: float, times: Sequence[time], zone: ZoneInfo) -> float:
    """The first of `times` (in `zone`, wall clock, across DST changes) strictly after `after`."""
    start = datetime.fromtimestamp(after, zone)
    found = [datetime.combine(start.date() + timedelta(days=d), t, zone).timestamp() for d in (0, 1, 2) for t in times]
    return min(ts for ts in found if ts > after)


def at(ts: float, zone: ZoneInfo) -> str:
    """A time as stakeholders read it: `16:00 Europe/Berlin`."""
    return f"{datetime.fromtimestamp(ts, zone):%H:%M} {zone.key}"


def worst_guardrail(guards: Sequence[GuardrailView]) -> GuardrailView | None:
    """The guardrail nearest to acting: breaching first, then blind, then the one closest to its threshold."""
    def closeness(g: GuardrailView) -> float:
        if g.value is None or not g.threshold:
            return 0.0
        return g.value / g.threshold if g.op == "above" else g.threshold / g.value if g.value else float("inf")

    acting = [g for g in guards if g.mode != "shadow"]
    rank = {GuardrailStatus.BREACH: 3, GuardrailStatus.PENDING: 2, GuardrailStatus.NODATA: 1}
    return max(acting, key=lambda g: (rank.get(g.status, 0), closeness(g)), default=None)


class Cadence:
    def __init__(self, plan: Plan, promise: Updates):
        self.plan = plan
        self.promise = promise
        self.zone = promise.tz
        self.draft: StoredUpdate | None = None  # waiting for its owner
        self.last: StoredUpdate | None = None  # the newest published
        self.since: float | None = None  # timed updates count from here: the last published, else the launch in flight
        self.incident: JournalEntry | None = None  # the first incident since the last published update
        self.actions: list[JournalEntry] = []  # decisions since the last published update
        self.acted = 0  # how many, the listed ones included
        self.next: tuple[float, UpdateReason] | None = None  # as of the last tick
        self.reminded: float | None = None  # the due time its owner was reminded of

    # ------------------------------------------------------------ what it remembers

    def load(self, stored: Sequence[StoredUpdate], since_last: Sequence[JournalEntry]) -> None:
        """At start: the updates in the store (newest first) and the journal since the last published one."""
        self.last = next((u for u in stored if u.status == UpdateStatus.PUBLISHED), None)
        self.draft = next((u for u in stored if u.status != UpdateStatus.PUBLISHED and (self.last is None or u.id > self.last.id)), None)
        self.since = self.last.published if self.last is not None else self.draft.created if self.draft is not None else None
        for entry in since_last:
            self.on_entry(entry)

    def journal_seq(self) -> int:
        """Where the journal stood when the last update was published (its catch-up starts there)."""
        return int(self.last.facts.get("journal_seq", 0)) if self.last is not None else 0

    def on_entry(self, entry: JournalEntry) -> None:
        if entry.kind in INCIDENTS and self.incident is None:
            self.incident = entry
        if entry.kind in DECISIONS:
            self.acted += 1
            self.actions = [*self.actions, entry][-ACTIONS_TOLD:]

    def drafted(self, update: StoredUpdate) -> None:
        self.draft = update

    def approved(self, waiting: StoredUpdate, actor: Actor, text: str) -> StoredUpdate:
        """The waiting draft approved by `actor`, with `text` in its stead when given."""
        return replace(waiting, status=UpdateStatus.APPROVED, by=actor.label(), text=text.strip() or waiting.text)

    def published_as(self, approved: StoredUpdate, now: float, archive: str, journal_seq: int) -> tuple[StoredUpdate, dict[str, Any]]:
        """The approved update as published now (archived at `archive`, "" if it could not be), and its journal entry's data."""
        published = replace(approved, status=UpdateStatus.PUBLISHED, published=now, archive=archive,
                            facts={**approved.facts, "journal_seq": journal_seq})
        return published, {"update": published.id, "reason": published.reason, "due": published.due, "late_s": max(0.0, now - published.due),
                           "archive": published.archive, "owner": self.promise.owner}

    def published(self, update: StoredUpdate) -> None:
        """Every promise due by now is answered: the clocks start again from it."""
        self.last, self.draft, self.incident, self.actions, self.acted = update, None, None, [], 0
        self.since = update.published

    # ------------------------------------------------------------ judging

    def due(self, state: RolloutState) -> tuple[float, UpdateReason] | None:
        """When the next update must be out, and why; None when nothing is promised now."""
        p = self.promise
        found: list[tuple[float, UpdateReason]] = []
        if self.incident is not None and p.after_incident is not None:
            found.append((self.incident.ts + p.after_incident, UpdateReason.INCIDENT))
        if self.since is not None and state.in_flight:
            if p.every is not None:
                found.append((self.since + p.every, UpdateReason.CADENCE))
            if p.at:
                found.append((next_time_of_day(self.since, p.at, self.zone), UpdateReason.SCHEDULED))
        return min(found, default=None)

    def decide(self, snap: Snapshot, state: RolloutState, now: float) -> list[UpdateDecision]:
        """This tick's decisions: a draft when an update comes near its due time (at once after an
        incident), kept current while it waits; a reminder once it is overdue; with `auto`, publishing it."""
        if self.since is None and state.in_flight:
            self.since = now  # the launch went in flight: the cadence starts
        self.next = self.due(state)
        if self.next is None:
            return []
        due, reason = self.next
        lead = self.promise.after_incident if reason is UpdateReason.INCIDENT else self.promise.draft_before
        if now < due - (lead or 0.0):
            return []
        out: list[UpdateDecision] = []
        text, facts = self.text(snap, due, reason, max(now, due))  # out when due, or now if later
        if self.draft is None:
            out.append(DraftUpdate(StoredUpdate(0, now, due, reason, UpdateStatus.DRAFT, text, facts)))
            who = ("the engine posts it itself (auto)" if self.promise.auto
                   else f"{self.promise.owner} approves it: warroom update PLAN --approve")
            out.append(Note(Kind.UPDATE_DRAFTED, f"stakeholder update drafted ({reason.meaning.split(':')[0]}), due by {at(due, self.zone)}; "
                            f"{who}",
                            {"due": due, "reason": reason.value, "owner": self.promise.owner}))
        elif (text, due, reason) != (self.draft.text, self.draft.due, self.draft.reason):
            out.append(DraftUpdate(replace(self.draft, due=due, reason=reason, text=text, facts=facts)))
        if self.promise.auto and (now >= due or reason is UpdateReason.INCIDENT):
            out.append(PublishUpdate(AUTOMATIC))
        elif now >= due and self.reminded != due:
            self.reminded = due
            out.append(Note(Kind.UPDATE_OVERDUE, f"stakeholder update OVERDUE (due by {at(due, self.zone)}, {reason.value}): "
                            f"{self.promise.owner}, approve the draft: warroom update PLAN --approve [--edit-file FILE]",
                            {"due": due, "reason": reason.value, "owner": self.promise.owner}))
        return out

    def asked(self, snap: Snapshot, now: float) -> StoredUpdate:
        """The update its owner publishes now: the waiting draft as of now, else one made now (none is due,
        or its draft was not made yet)."""
        if self.draft is not None:
            text, facts = self.text(snap, self.draft.due, UpdateReason(self.draft.reason), now)
            return replace(self.draft, text=text, facts=facts)
        due, reason = self.next or (now, UpdateReason.ASKED)
        text, facts = self.text(snap, due, reason, now)
        return StoredUpdate(0, now, due, reason, UpdateStatus.DRAFT, text, facts)

    def view(self, now: float) -> UpdatesView:
        due, reason = self.next or (None, "")
        last = self.last
        return UpdatesView(self.promise.owner, self.promise.promises(), self.promise.auto, due, str(reason),
                           due is not None and now >= due, self.draft.text if self.draft is not None else "",
                           last.published if last is not None else None, last.text if last is not None else "")

    # ------------------------------------------------------------ the words

    def text(self, snap: Snapshot, due: float, reason: UpdateReason, out_at: float) -> tuple[str, dict[str, Any]]:
        """The update in plain words, and the facts it says (kept with it in the store), were it out at `out_at`:
        the cadence starts again from its publication, so the next one it promises counts from then."""
        phase = snap.phase
        in_phase = format_duration(round(phase.elapsed / 60) * 60) if phase is not None else ""
        worst = worst_guardrail(snap.guardrails)
        lines = [f"{snap.rollout} ({snap.environment.upper()}): status update, {at(snap.now, self.zone)}"]
        if reason is UpdateReason.INCIDENT and self.incident is not None:
            what = self.incident.data.get("reason") or self.incident.message
            lines.append(f"Incident at {at(self.incident.ts, self.zone)}: {DECISIONS.get(self.incident.kind) or 'breach'} "
                         f"by {person(self.incident.actor)} — {what}")
        where = f"phase {phase.index}/{snap.phase_count} {phase.name}, {in_phase} in phase" if phase else f"not started (0/{snap.phase_count})"
        lines.append(f"State: {snap.state.label}, {where}.")
        exposure = phase.exposure if phase is not None else "none"
        lines.append(f"Exposure: {exposure}.")
        if worst is None:
            lines.append("Guardrails: none in the plan.")
        elif worst.status.alarming:
            lines.append(f"Guardrails: {guard_reading(worst)} ({worst.status.meaning.split(':')[0]}; action: {worst.action}).")
        else:
            lines.append(f"Guardrails: all within their limits; closest {guard_reading(worst)}.")
        told = [f"{at(e.ts, self.zone).split()[0]} {DECISIONS[e.kind]} by {person(e.actor)}" for e in self.actions]
        more = self.acted - len(told)
        lines.append("Actions since the last update: " + ("; ".join(told) + (f" (and {more} earlier)" if more > 0 else "") if told else "none") + ".")
        lines.append(f"Next update by {at(self._after(out_at), self.zone)} (owner: {self.promise.owner}).")
        facts: dict[str, Any] = {
            "state": snap.state.value, "phase": phase.index if phase else 0, "phase_name": phase.name if phase else "",
            "in_phase_s": phase.elapsed if phase else 0.0, "exposure": exposure, "due": due, "reason": reason.value,
            "worst": None if worst is None else {"guardrail": worst.id, "value": worst.value, "threshold": worst.threshold,
                                                  "op": worst.op, "status": worst.status.value},
            "actions": [{"ts": e.ts, "decision": DECISIONS[e.kind], "by": person(e.actor)} for e in self.actions],
        }
        return "\n".join(lines), facts

    def _after(self, out_at: float) -> float:
        """When the update after this one will be due, were this one out at `out_at` (a stakeholder's next look)."""
        p = self.promise
        options = ([out_at + p.every] if p.every is not None else []) + ([next_time_of_day(out_at, p.at, self.zone)] if p.at else [])
        return min(options, default=out_at + (p.after_incident or 0.0))
