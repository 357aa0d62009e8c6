"""`warroom report`: the post-mortem, built only from the journal and the stored samples.

No server is asked anything, so yesterday's launch (or a drill) can be written up from
its state database alone. Markdown for the ticket (report_markdown.py); HTML as one
self-contained file with the panes' history around each event (report_html.py).

A long launch's journal has millions of entries, so nothing here holds them: one pass
over the journal keeps what the summary needs (phases, rollbacks, checklist, the first
incident), and the long sections (breaches, actions, timeline) are read again, a page
at a time, while they are written.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from warroom.core.journal_kinds import DECISIONS, Kind
from warroom.core.snapshot import JournalEntry, State, why
from warroom.core.units import format_duration, format_value
from warroom.plan.model import Plan
from warroom.reports.scorecard import ALARMS, RESPONSES, Incident, ScoreCard, _bad_since, first_incident
from warroom.reports.signoffs import SignOff, record_state, sign_offs
from warroom.store import Store

EVENT_WINDOW = 90.0  # seconds of pane history either side of an event in the HTML charts
EVENT_CHARTS = 40  # events charted; a long launch's others are in the timeline
POSTMORTEM_DUE = 48 * 3600.0  # the seeds' rule: a post-mortem within 48 hours of the launch
FOLLOW_UPS = ("What went well", "What went wrong", "Lessons learned", "Action items (owner, due date)")
TIMELINE_KINDS = set(DECISIONS) | {
    # What led to a decision is in the timeline too: the breach, its clearing, a drill's injected fault.
    Kind.GUARDRAIL_BREACH, Kind.GUARDRAIL_CLEAR, Kind.DRILL_FAULT,
    Kind.STEP_OUTCOME, Kind.ROLLBACK_CONFIRMED, Kind.ROLLBACK_STEP, Kind.ROLLBACK_OUTCOME, Kind.ROLLBACK_ATTEMPT, Kind.STEP_ATTEMPT,
    Kind.GUARDRAIL_ALERT, Kind.GUARDRAIL_FIRED, Kind.DRIFT_DETECTED, Kind.CHECKLIST_TICK, Kind.CHECKLIST_UNTICK,
    Kind.SOURCE_ERROR, Kind.SOURCE_RECOVERED, Kind.DRILL_START, Kind.DRILL_SCORE, Kind.NOTIFY_FAILED, Kind.NOTIFY_DROPPED,
    Kind.GUARDRAIL_SHADOW, Kind.GUARDRAIL_EVIDENCE, Kind.EXPOSURE_MISMATCH, Kind.EXPOSURE_OK,
    Kind.UPDATE_OVERDUE, Kind.UPDATE_PUBLISHED,  # what the stakeholders were told, and when it was late
}
BREACH_KINDS = (Kind.GUARDRAIL_BREACH, Kind.ROLLBACK_INTENT, Kind.PAUSE, Kind.GUARDRAIL_ALERT, Kind.GUARDRAIL_FIRED, Kind.GUARDRAIL_CLEAR)
OUTCOMES: dict[str, str] = {Kind.ROLLBACK_INTENT: "rolled back", Kind.PAUSE: "paused", Kind.GUARDRAIL_ALERT: "alerted",
            Kind.GUARDRAIL_FIRED: "fired (no action in this state)"}
# Everything the first pass reads; the rest of the journal (samples' notes, console starts, …) is skipped in SQL.
SUMMARY_KINDS = (set(BREACH_KINDS) | set(ALARMS) | set(RESPONSES)
                 | {Kind.STEP_OUTCOME, Kind.ROLLBACK_CONFIRMED, Kind.ROLLBACK_OUTCOME, Kind.ROLLBACK_ATTEMPT, Kind.ROLLBACK_STEP,
                    Kind.CHECKLIST_TICK, Kind.CHECKLIST_UNTICK, Kind.DRILL_SCORE, Kind.GUARDRAIL_SHADOW})


@dataclass(frozen=True)
class PhaseSpan:
    index: int
    name: str
    start: float
    end: float
    ended_by: str


@dataclass(frozen=True)
class Breach:
    guardrail: str
    since: float
    value: float | None
    op: str
    threshold: float | None  # None: a cohort comparison with no absolute limit
    for_s: float
    query: str
    outcome: str
    pane: str | None
    comparison: str = ""  # `new 1.80% vs control 0.40% Δ+1.40pp …` for a cohort guardrail


@dataclass(frozen=True)
class Shadow:
    """A shadow guardrail's window was met: what it would have done, and did not."""

    guardrail: str
    at: float
    action: str
    value: float | None
    threshold: float | None
    for_s: float
    comparison: str
    unit: str

    @classmethod
    def of(cls, e: JournalEntry) -> Shadow:
        d = e.data
        return cls(d.get("guardrail", ""), e.ts, d.get("action", ""), d.get("value"), d.get("threshold"), float(d.get("for", 0.0)),
                   (d.get("comparison") or {}).get("text", ""), d.get("unit", "count"))


@dataclass(frozen=True)
class RollbackRun:
    intent: JournalEntry
    confirmed: float | None
    finished: float | None
    attempts: int
    steps: tuple[JournalEntry, ...]

    @property
    def latency(self) -> float | None:
        return None if self.confirmed is None else self.confirmed - self.intent.ts


@dataclass(frozen=True)
class ChecklistRow:
    phase: int
    text: str
    required: bool
    ticked_by: str
    at: float | None


@dataclass(frozen=True)
class Event:
    """Something worth a chart of the panes around it."""

    ts: float
    label: str
    pane: str | None  # None: the panes with a threshold


@dataclass
class Report:
    plan: Plan
    store: Store
    start: float
    end: float
    count: int  # journal entries
    final_state: str
    phases: list[PhaseSpan] = field(default_factory=list)
    breach_count: int = 0
    shadow_count: int = 0
    rollbacks: list[RollbackRun] = field(default_factory=list)
    checklist: list[ChecklistRow] = field(default_factory=list)
    card: ScoreCard | None = None
    incident: Incident | None = None
    events: list[Event] = field(default_factory=list)  # the first EVENT_CHARTS, in time order
    event_count: int = 0
    virtual_time: bool = False  # a drill run on a virtual clock: its times are the drill's, not the wall's

    @property
    def has_shadows(self) -> bool:
        """Whether the plan judges any guardrail in shadow (else the report has nothing to say of them)."""
        return self.shadow_count > 0 or any(g.mode == "shadow" for g in self.plan.guardrails)

    def offset(self, ts: float) -> str:
        return f"+{format_duration(ts - self.start)}"

    # The long sections, streamed from the journal each time they are written.

    def breaches(self) -> Iterator[Breach]:
        spells = _Spells(self.plan)
        for e in self.store.iter_entries(kinds=BREACH_KINDS):
            yield from spells.feed(e)
        yield from spells.finish()

    def shadows(self) -> Iterator[Shadow]:
        return (Shadow.of(e) for e in self.store.iter_entries(kinds=(Kind.GUARDRAIL_SHADOW,)))

    def actions(self) -> Iterator[JournalEntry]:
        return self.store.iter_entries(kinds=tuple(DECISIONS))

    def timeline(self) -> Iterator[JournalEntry]:
        return self.store.iter_entries(kinds=tuple(TIMELINE_KINDS))

    def sign_offs(self) -> Iterator[SignOff]:
        return sign_offs(self.store)

    def decision_record(self) -> str:
        return record_state(self.store)

    def samples(self, pane: str, start: float, end: float) -> Iterator[tuple[float, float | None]]:
        return self.store.samples(pane, start, end)


# ---------------------------------------------------------------- reading the journal


def _guard_panes(plan: Plan) -> dict[str, str | None]:
    """Each guardrail's pane, by the id the journal names it by (the first, if two share one)."""
    panes: dict[str, str | None] = {}
    for i, g in enumerate(plan.guardrails):
        panes.setdefault(plan.guardrail_id(i), g.pane)
    return panes


@dataclass
class _Spell:
    row: Breach
    response: JournalEntry | None = None  # the first pause or rollback by anyone while it lasted


class _Spells:
    """Breach spells, one row each: where it started and what came of it.

    A spell is written once it is over (an action came of it, it cleared, or the journal
    ended), in the order spells started; only spells still open, and the ones behind
    them, are held.
    """

    def __init__(self, plan: Plan):
        self.plan = plan
        self.panes = _guard_panes(plan)
        self.open: dict[tuple[str, float], _Spell] = {}  # insertion order = start order
        self.last_pane: str | None = None  # of the newest spell: the pane a human's rollback answered

    def feed(self, e: JournalEntry) -> list[Breach]:
        if e.kind not in BREACH_KINDS:
            return []
        if e.kind == Kind.GUARDRAIL_CLEAR:
            gid = e.data.get("guardrail")
            for (g, since), spell in self.open.items():
                if g == gid and not spell.row.outcome and e.ts >= since:
                    spell.row = replace(spell.row, outcome=self._settle(spell, e.ts))
            return self._ready()
        if e.kind in RESPONSES:
            for (_, since), spell in self.open.items():
                if spell.response is None and e.ts >= since:
                    spell.response = e
        cause = e.data.get("cause") if e.kind in RESPONSES else e.data
        if not cause or "guardrail" not in cause:
            return self._ready()
        gid, since = cause["guardrail"], float(cause.get("since") or e.ts)
        outcome = OUTCOMES.get(e.kind, "")
        old = self.open.get((gid, since))
        if old is None or outcome:
            threshold = cause.get("threshold")
            comparison = (cause.get("comparison") or {}).get("text", "") if old is None else old.row.comparison
            row = Breach(gid, since, cause.get("value") if old is None else old.row.value, cause.get("op", ""),
                         None if threshold is None else float(threshold), float(cause.get("for", 0.0)), cause.get("query", ""),
                         outcome, self.panes.get(gid), comparison)
            if old is None:
                self.open[(gid, since)] = _Spell(row)
                self.last_pane = row.pane or self.last_pane
            else:
                old.row = row
        return self._ready()

    def _settle(self, spell: _Spell, cleared: float | None) -> str:
        """A spell that no action came of: a human may have acted before the window was met, or
        another guardrail's action came first (which this one's row must not claim as its own)."""
        b, response = spell.row, spell.response
        if response is not None and (cleared is None or response.ts <= cleared):
            after = format_duration(response.ts - b.since)
            other = (response.data.get("cause") or {}).get("guardrail")
            if (response.data.get("actor") or {}).get("automatic") and other and other != b.guardrail:
                return f"{other}'s {DECISIONS[response.kind]} came first, after {after}"
            return f"{'rolled back' if response.kind == 'rollback.intent' else 'paused'} by {response.actor} after {after}"
        if cleared is not None:
            return f"cleared after {format_duration(cleared - b.since)} (under the window)"
        return "still breaching at the end"

    def _ready(self) -> list[Breach]:
        out = []
        while self.open:
            key, spell = next(iter(self.open.items()))
            if not spell.row.outcome:
                break
            out.append(spell.row)
            del self.open[key]
        return out

    def finish(self) -> list[Breach]:
        for spell in self.open.values():
            if not spell.row.outcome:
                spell.row = replace(spell.row, outcome=self._settle(spell, None))
        rows = sorted((s.row for s in self.open.values()), key=lambda b: b.since)
        self.open.clear()
        return rows


class _Reader:
    """One pass over the journal: what the summary and the small sections need, nothing more."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.starts: list[tuple[float, int]] = []  # (ts, phase) at each step.outcome that entered one
        self.stops: list[float] = []  # rollback intents: a rollback ends the phase
        self.runs: dict[str | None, dict] = {}
        self.ticked: dict[tuple[int, str], tuple[str, float] | None] = {}
        self.card: ScoreCard | None = None
        self.alarm: JournalEntry | None = None  # the earliest bad sample: the incident's start
        self.alarm_since = 0.0  # its _bad_since
        self.responses: list[JournalEntry] = []  # pauses, rollbacks and confirmations, for the incident
        self.spells = _Spells(plan)
        self.breach_count = 0
        self.shadow_count = 0
        self.events: list[tuple[float, int, Event]] = []  # a max-heap on -ts of the earliest EVENT_CHARTS
        self.event_count = 0

    def _event(self, event: Event) -> None:
        self.event_count += 1
        item = (-event.ts, -self.event_count, event)
        if len(self.events) < EVENT_CHARTS:
            heapq.heappush(self.events, item)
        elif item > self.events[0]:
            heapq.heapreplace(self.events, item)

    def feed(self, e: JournalEntry) -> None:
        for b in self.spells.feed(e):
            self._breach(b)
        kind = e.kind
        if kind == Kind.STEP_OUTCOME and e.data.get("entered_phase"):
            self.starts.append((e.ts, int(e.data["entered_phase"])))
        elif kind in (Kind.CHECKLIST_TICK, Kind.CHECKLIST_UNTICK):
            key = (int(e.data.get("phase", 0)), str(e.data.get("item")))
            self.ticked[key] = (e.actor, e.ts) if kind == Kind.CHECKLIST_TICK else None
        elif kind == Kind.DRILL_SCORE:
            self.card = ScoreCard.from_json(e.data["card"])
        elif kind == Kind.SOURCE_ERROR:
            self._event(Event(e.ts, e.message, None))
        elif kind == Kind.GUARDRAIL_SHADOW:
            self.shadow_count += 1
        if kind in ALARMS:
            since = _bad_since(e)
            if self.alarm is None or since < self.alarm_since:
                self.alarm, self.alarm_since = e, since
        if kind in RESPONSES or kind == Kind.ROLLBACK_CONFIRMED:
            self.responses.append(e)
        if kind == Kind.ROLLBACK_INTENT:
            self.stops.append(e.ts)
            cause = e.data.get("cause") or {}
            # A human's rollback names no guardrail: chart the pane of the breach it answered, if any.
            pane = (self.spells.panes.get(cause.get("guardrail", "")) or self.spells.last_pane
                    or (self.plan.panes[0].id if self.plan.panes else None))
            self.runs[e.action_id] = {"intent": e, "confirmed": None, "finished": None, "attempts": 0, "steps": []}
            self._event(Event(e.ts, f"rollback by {e.actor}", pane))
        elif e.action_id in self.runs:
            run = self.runs[e.action_id]
            if kind == Kind.ROLLBACK_CONFIRMED and run["confirmed"] is None:
                run["confirmed"] = e.ts
            elif kind == Kind.ROLLBACK_OUTCOME and run["finished"] is None:
                run["finished"] = e.ts
            elif kind == Kind.ROLLBACK_ATTEMPT:
                run["attempts"] += 1
            elif kind == Kind.ROLLBACK_STEP:
                run["steps"].append(e)

    def _breach(self, b: Breach) -> None:
        self.breach_count += 1
        self._event(Event(b.since, f"breach of {b.guardrail} ({b.outcome})", b.pane))

    def phases(self, end: float) -> list[PhaseSpan]:
        spans = []
        for i, (ts, index) in enumerate(self.starts):
            last = i + 1 == len(self.starts)
            nxt = end if last else self.starts[i + 1][0]
            # The last phase also ends at a rollback in the journal's final second.
            stop = next((t for t in self.stops if ts <= t < (float("inf") if last else nxt)), None)
            ended_at, ended_by = (stop, "rollback") if stop is not None else (nxt, "end of journal" if last else "step up")
            spans.append(PhaseSpan(index, self.plan.phases[index - 1].name, ts, ended_at, ended_by))
        return spans

    def checklist(self, phases: list[PhaseSpan]) -> list[ChecklistRow]:
        rows = []
        for index in sorted({p.index for p in phases}):
            phase = self.plan.phases[index - 1]
            for iid, item in zip(phase.item_ids(), phase.checklist, strict=True):
                who = self.ticked.get((index, iid))
                rows.append(ChecklistRow(index, item.text, item.required, who[0] if who else "", who[1] if who else None))
        return rows


def build_report(plan: Plan, store: Store) -> Report:
    """The report of the rollout in `store`, with the plan as it ran (kept in the state database);
    `plan` stands in only for a journal written before warroom kept it."""
    kept = store.latest_plan()
    if kept is not None:
        plan = Plan.from_journal_copy(kept)
    last = store.tail(1)
    first = next(store.iter_entries(page=1), None)
    state = State(store.load_state()[1].get("state", "PENDING")).label
    if first is None:
        return Report(plan, store, 0.0, 0.0, 0, state)
    reader = _Reader(plan)
    for e in store.iter_entries(kinds=tuple(SUMMARY_KINDS)):
        reader.feed(e)
    for b in reader.spells.finish():
        reader._breach(b)
    report = Report(plan, store, first.ts, last[0].ts, store.journal_count(), state)
    report.phases = reader.phases(report.end)
    report.breach_count = reader.breach_count
    report.shadow_count = reader.shadow_count
    report.rollbacks = [RollbackRun(r["intent"], r["confirmed"], r["finished"], r["attempts"], tuple(r["steps"]))
                        for r in reader.runs.values()]
    report.checklist = reader.checklist(report.phases)
    report.card = reader.card
    # The earliest alarm and every response are all first_incident needs to see.
    report.incident = first_incident(sorted(([reader.alarm] if reader.alarm else []) + reader.responses, key=lambda e: e.seq))
    report.events = [event for _, _, event in sorted(reader.events, reverse=True)]
    report.event_count = reader.event_count
    stored = store.snapshot()
    report.virtual_time = stored is not None and stored.body.get("clock_rate") == 0
    return report


# ---------------------------------------------------------------- shared wording (Markdown and HTML)


def utc(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ts))


def breach_numbers(b: Breach, plan: Plan) -> tuple[str, str]:
    """The breach's value (both cohorts, for a comparison) and `above 500 ms`, in its pane's unit."""
    unit = plan.pane(b.pane).unit if b.pane else "count"
    return b.comparison or format_value(b.value, unit), f"{b.op} {format_value(b.threshold, unit)}"


SHADOW_HEAD = ["guardrail", "when", "would have", "value", "threshold", "for", "cohorts"]


def shadow_rows(r: Report) -> Iterator[list[str]]:
    """What each shadow guardrail would have done, with its numbers (Markdown and HTML)."""
    for s in r.shadows():
        yield [s.guardrail, r.offset(s.at), s.action, format_value(s.value, s.unit), format_value(s.threshold, s.unit),
               format_duration(s.for_s), s.comparison]


def secs(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}s"


def summary(r: Report) -> list[tuple[str, str]]:
    latencies = [run.latency for run in r.rollbacks if run.latency is not None]
    return [
        ("Rollout", r.plan.rollout.name),
        ("Environment", r.plan.rollout.environment.upper()),
        ("Journal", f"{utc(r.start)} → {utc(r.end)} ({format_duration(r.end - r.start)})"),
        *([("Clock", "drill time: a virtual clock run at full speed, so the times after the start are the drill's "
                     "own, ahead of the wall clock; the engine takes no sample while it waits on a flag write")]
          if r.virtual_time else []),
        ("Final state", r.final_state),
        ("Phases entered", ", ".join(f"{p.index} {p.name}" for p in r.phases) or "none"),
        ("Guardrail breaches", str(r.breach_count)),
        *([("Shadow guardrails", f"{r.shadow_count} time(s) one would have acted (mode: shadow: journaled, never acted)")]
          if r.has_shadows else []),
        ("Rollbacks", f"{len(r.rollbacks)}" + (f" (intent → flags confirmed off: {', '.join(secs(x) for x in latencies)})" if latencies else "")),
        *_incident_rows(r),
        ("Checklist", _checklist_completion(r)),
        ("Post-mortem due", f"{utc(r.end + POSTMORTEM_DUE)} (48 h after the journal's last entry)"),
    ]


def _incident_rows(r: Report) -> list[tuple[str, str]]:
    """Detect and mitigate times for any run, not only a drill's score card."""
    i = r.incident
    if i is None or i.at is None:
        return [("First bad sample", "none: no breach, outage or drift was seen")]
    response = "none" if i.response is None else f"{DECISIONS[i.response.kind]} by {i.response.actor} after {secs(i.detect)}"
    return [("First bad sample", f"{r.offset(i.at)} {i.what}"), ("First response (time to detect)", response),
            ("Flags confirmed off (time to mitigate)", "never" if i.mitigate is None else f"{secs(i.mitigate)} after the first bad sample")]


def _step_why(e: JournalEntry, r: Report) -> str:
    left = int(e.data.get("from_phase") or 0)
    if left < 1:
        return "the first step: nothing is held before phase 1"
    soaked = e.data.get("soaked")
    parts = [f"phase {left} held its soak" + (f" ({format_duration(soaked)})" if soaked is not None else "")]
    gates = e.data.get("gates") or []
    parts.append("gates green" if gates else "no gates")
    required = [c for c in r.checklist if c.phase == left and c.required]
    ticked = sum(1 for c in required if c.at is not None and c.at <= e.ts)
    parts.append(f"required items ticked ({ticked}/{len(required)})" if required else "no required items")
    return ", ".join(parts)


def _checklist_completion(r: Report) -> str:
    required = [c for c in r.checklist if c.required]
    missing = sum(1 for c in required if not c.ticked_by)
    return (f"{len(required) - missing}/{len(required)} required items ticked in the phases entered"
            + (f"; {missing} not ticked" if missing else "") + f"; {sum(1 for c in r.checklist if c.ticked_by)}/{len(r.checklist)} items in all")


def action_why(e: JournalEntry, r: Report) -> str:
    """Why someone (or automation) acted: the reason given, else the guardrail's numbers; a step
    up, by what it left behind (the soak held, its gates, the required items ticked by then)."""
    reason = str(e.data.get("reason") or "") or why(e)
    if reason:
        return reason
    if e.kind == Kind.STEP_INTENT:
        return _step_why(e, r)
    if e.kind == Kind.ROLLOUT_COMPLETE:
        return "the last phase held its soak with gates green"
    return "—"
