"""`warroom report`: the post-mortem, built only from the journal and the stored samples.

No server is asked anything, so yesterday's launch (or a drill) can be written up from
its state database alone. Markdown for the ticket; HTML as one self-contained file
(inline CSS and SVG, no scripts, no external assets) with the panes' history around
each event.
"""

from __future__ import annotations

import html
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .engine.snapshot import JournalEntry, State
from .plan import Pane, Plan, format_duration
from .scorecard import ACTIONS, Incident, ScoreCard, first_incident, why
from .secrets import redact
from .store import Store
from .units import format_value

EVENT_WINDOW = 90.0  # seconds of pane history either side of an event in the HTML charts
POSTMORTEM_DUE = 48 * 3600.0  # the seeds' rule: a post-mortem within 48 hours of the launch
FOLLOW_UPS = ("What went well", "What went wrong", "Lessons learned", "Action items (owner, due date)")
TIMELINE_KINDS = set(ACTIONS) | {
    "step.outcome", "rollback.confirmed", "rollback.step", "rollback.outcome", "rollback.attempt", "step.attempt",
    "guardrail.alert", "guardrail.fired", "drift.detected", "checklist.tick", "checklist.untick",
    "source.error", "source.recovered", "drill.start", "drill.score", "notify.failed", "notify.dropped",
    "guardrail.shadow", "guardrail.evidence", "exposure.mismatch", "exposure.ok",
}


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
    comparison: str = ""  # `new 1.80% vs control 0.40% Δ+1.40pp` for a cohort guardrail


@dataclass(frozen=True)
class Shadow:
    """A shadow guardrail's window was met: what it would have done, and did not."""

    guardrail: str
    at: float
    action: str
    value: float | None
    threshold: float | None
    for_s: float
    why: str
    unit: str


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


@dataclass
class Report:
    plan: Plan
    entries: list[JournalEntry]
    final_state: str
    samples: dict[str, list[tuple[float, float | None]]]
    phases: list[PhaseSpan] = field(default_factory=list)
    breaches: list[Breach] = field(default_factory=list)
    shadows: list[Shadow] = field(default_factory=list)
    rollbacks: list[RollbackRun] = field(default_factory=list)
    checklist: list[ChecklistRow] = field(default_factory=list)
    card: ScoreCard | None = None
    incident: Incident | None = None
    actions: list[JournalEntry] = field(default_factory=list)

    @property
    def start(self) -> float:
        return self.entries[0].ts if self.entries else 0.0

    @property
    def end(self) -> float:
        return self.entries[-1].ts if self.entries else 0.0

    def offset(self, ts: float) -> str:
        return f"+{format_duration(ts - self.start)}"


# ---------------------------------------------------------------- reading the journal


def _phases(plan: Plan, entries: list[JournalEntry], end: float) -> list[PhaseSpan]:
    starts = [(e.ts, int(e.data["entered_phase"])) for e in entries if e.kind == "step.outcome" and e.data.get("entered_phase")]
    stops = [(e.ts, "rollback") for e in entries if e.kind == "rollback.intent"]
    spans = []
    for i, (ts, index) in enumerate(starts):
        nxt = starts[i + 1][0] if i + 1 < len(starts) else end
        # The last phase also ends at a rollback in the journal's final second.
        stop = next(((t, why) for t, why in stops if ts <= t < (nxt if i + 1 < len(starts) else float("inf"))), None)
        ended_at, ended_by = stop if stop else (nxt, "step up" if i + 1 < len(starts) else "end of journal")
        spans.append(PhaseSpan(index, plan.phases[index - 1].name, ts, ended_at, ended_by))
    return spans


def _guard_pane(plan: Plan, gid: str) -> str | None:
    for i, g in enumerate(plan.guardrails):
        if plan.guardrail_id(i) == gid:
            return g.pane
    return None


def _breaches(plan: Plan, entries: list[JournalEntry]) -> list[Breach]:
    """One row per breach spell: where it started, and what came of it."""
    found: dict[tuple[str, float], Breach] = {}
    for e in entries:
        cause = e.data.get("cause") if e.kind in ("rollback.intent", "pause") else e.data
        if e.kind not in ("guardrail.breach", "rollback.intent", "pause", "guardrail.alert", "guardrail.fired") or not cause or "guardrail" not in cause:
            continue
        gid, since = cause["guardrail"], float(cause.get("since") or e.ts)
        outcome = {"rollback.intent": "rolled back", "pause": "paused", "guardrail.alert": "alerted",
                   "guardrail.fired": "fired (no action in this state)"}.get(e.kind, "")
        old = found.get((gid, since))
        if old is None or outcome:
            threshold = cause.get("threshold")
            found[(gid, since)] = Breach(gid, since, cause.get("value") if old is None else old.value, cause.get("op", ""),
                                         None if threshold is None else float(threshold), float(cause.get("for", 0.0)),
                                         cause.get("query", ""), outcome, _guard_pane(plan, gid),
                                         (cause.get("comparison") or {}).get("text", "") if old is None else old.comparison)
    clears = [(e.ts, e.data.get("guardrail")) for e in entries if e.kind == "guardrail.clear"]
    responses = [e for e in entries if e.kind in ("rollback.intent", "pause")]
    rows = []
    for b in sorted(found.values(), key=lambda b: b.since):
        if not b.outcome:
            cleared = next((t for t, g in clears if g == b.guardrail and t >= b.since), None)
            # A human may have acted before the window was met: that is what came of it.
            human = next((e for e in responses if e.ts >= b.since and (cleared is None or e.ts <= cleared)), None)
            if human is not None:
                outcome = f"{'rolled back' if human.kind == 'rollback.intent' else 'paused'} by {human.actor} after {format_duration(human.ts - b.since)}"
            elif cleared is not None:
                outcome = f"cleared after {format_duration(cleared - b.since)} (under the window)"
            else:
                outcome = "still breaching at the end"
            b = Breach(**{**b.__dict__, "outcome": outcome})
        rows.append(b)
    return rows


def _shadows(entries: list[JournalEntry]) -> list[Shadow]:
    return [Shadow(e.data.get("guardrail", ""), e.ts, e.data.get("action", ""), e.data.get("value"), e.data.get("threshold"),
                   float(e.data.get("for", 0.0)), (e.data.get("comparison") or {}).get("text", ""), e.data.get("unit", "count"))
            for e in entries if e.kind == "guardrail.shadow"]


def _rollbacks(entries: list[JournalEntry]) -> list[RollbackRun]:
    runs = []
    for intent in (e for e in entries if e.kind == "rollback.intent"):
        mine = [e for e in entries if e.action_id == intent.action_id]
        confirmed = next((e.ts for e in mine if e.kind == "rollback.confirmed"), None)
        finished = next((e.ts for e in mine if e.kind == "rollback.outcome"), None)
        runs.append(RollbackRun(intent, confirmed, finished, sum(1 for e in mine if e.kind == "rollback.attempt"),
                                tuple(e for e in mine if e.kind == "rollback.step")))
    return runs


def _checklist(plan: Plan, entries: list[JournalEntry], phases: list[PhaseSpan]) -> list[ChecklistRow]:
    ticked: dict[tuple[int, str], tuple[str, float] | None] = {}
    for e in entries:
        if e.kind in ("checklist.tick", "checklist.untick"):
            key = (int(e.data.get("phase", 0)), str(e.data.get("item")))
            ticked[key] = (e.actor, e.ts) if e.kind == "checklist.tick" else None
    rows = []
    for index in sorted({p.index for p in phases}):
        phase = plan.phases[index - 1]
        for iid, item in zip(phase.item_ids(), phase.checklist):
            who = ticked.get((index, iid))
            rows.append(ChecklistRow(index, item.text, item.required, who[0] if who else "", who[1] if who else None))
    return rows


def build_report(plan: Plan, store: Store) -> Report:
    """The report of the rollout in `store`, with the plan as it ran (kept in the state database);
    `plan` stands in only for a journal written before warroom kept it."""
    kept = store.latest_plan()
    if kept is not None:
        plan = Plan.from_journal_copy(kept)
    entries = store.entries()
    state = State(store.load_state()[1].get("state", "PENDING")).label
    report = Report(plan, entries, state, {p.id: list(store.samples(p.id)) for p in plan.panes})
    report.phases = _phases(plan, entries, report.end)
    report.breaches = _breaches(plan, entries)
    report.shadows = _shadows(entries)
    report.rollbacks = _rollbacks(entries)
    report.checklist = _checklist(plan, entries, report.phases)
    scores = [e for e in entries if e.kind == "drill.score"]
    report.card = ScoreCard.from_json(scores[-1].data["card"]) if scores else None
    report.incident = first_incident(entries)
    report.actions = [e for e in entries if e.kind in ACTIONS]
    return report


# ---------------------------------------------------------------- shared wording


def _utc(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _value(b: Breach, plan: Plan) -> tuple[str, str]:
    unit = plan.pane(b.pane).unit if b.pane else "count"
    return b.comparison or format_value(b.value, unit), format_value(b.threshold, unit)


SHADOW_HEAD = ["guardrail", "when", "would have", "value", "threshold", "for", "cohorts"]


def _shadow_rows(r: Report) -> list[list[str]]:
    return [[s.guardrail, r.offset(s.at), s.action, format_value(s.value, s.unit), format_value(s.threshold, s.unit),
             format_duration(s.for_s), s.why] for s in r.shadows]


def _secs(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}s"


def _summary(r: Report) -> list[tuple[str, str]]:
    latencies = [run.latency for run in r.rollbacks if run.latency is not None]
    return [
        ("Rollout", r.plan.rollout.name),
        ("Environment", r.plan.rollout.environment.upper()),
        ("Journal", f"{_utc(r.start)} → {_utc(r.end)} ({format_duration(r.end - r.start)})"),
        ("Final state", r.final_state),
        ("Phases entered", ", ".join(f"{p.index} {p.name}" for p in r.phases) or "none"),
        ("Guardrail breaches", str(len(r.breaches))),
        ("Shadow guardrails", f"{len(r.shadows)} time(s) one would have acted (mode: shadow: journaled, never acted)"),
        ("Rollbacks", f"{len(r.rollbacks)}" + (f" (intent → flags confirmed off: {', '.join(_secs(x) for x in latencies)})" if latencies else "")),
        *_incident_rows(r),
        ("Checklist", _checklist_completion(r)),
        ("Post-mortem due", f"{_utc(r.end + POSTMORTEM_DUE)} (48 h after the journal's last entry)"),
    ]


def _incident_rows(r: Report) -> list[tuple[str, str]]:
    """Detect and mitigate times for any run, not only a drill's score card."""
    i = r.incident
    if i is None or i.at is None:
        return [("First bad sample", "none: no breach, outage or drift was seen")]
    response = "none" if i.response is None else f"{ACTIONS[i.response.kind]} by {i.response.actor} after {_secs(i.detect)}"
    return [("First bad sample", f"{r.offset(i.at)} {i.what}"), ("First response (time to detect)", response),
            ("Flags confirmed off (time to mitigate)", "never" if i.mitigate is None else f"{_secs(i.mitigate)} after the first bad sample")]


def _checklist_completion(r: Report) -> str:
    required = [c for c in r.checklist if c.required]
    missing = sum(1 for c in required if not c.ticked_by)
    return (f"{len(required) - missing}/{len(required)} required items ticked in the phases entered"
            + (f"; {missing} not ticked" if missing else "") + f"; {sum(1 for c in r.checklist if c.ticked_by)}/{len(r.checklist)} items in all")


def _action_why(e: JournalEntry) -> str:
    """Why someone (or automation) acted: the reason given, else the guardrail's numbers."""
    reason = str(e.data.get("reason") or "") or why(e)
    if reason:
        return reason
    if e.kind == "step.intent":
        return "nothing blocked it: soak held, gates green, required items ticked"
    if e.kind == "rollout.complete":
        return "the last phase held its soak with gates green"
    return "—"


def _action_rows(r: Report) -> list[list[str]]:
    return [[r.offset(e.ts), ACTIONS[e.kind], e.actor, _action_why(e), e.message] for e in r.actions]


def _timeline(r: Report) -> list[JournalEntry]:
    return [e for e in r.entries if e.kind in TIMELINE_KINDS]


# ---------------------------------------------------------------- Markdown


def _md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return out + [""]


def to_markdown(r: Report) -> str:
    out = [f"# Post-mortem: {r.plan.rollout.name} ({r.plan.rollout.environment.upper()})", ""]
    out += _md_table(["", ""], [[k, v] for k, v in _summary(r)])
    if r.card:
        out += ["## Drill score card", "", "```", *r.card.lines(), "```", ""]
    out += ["## Phases", ""]
    out += _md_table(["phase", "entered", "duration", "ended by"],
                     [[f"{p.index} {p.name}", r.offset(p.start), format_duration(p.end - p.start), p.ended_by] for p in r.phases])
    out += ["## Guardrail breaches", ""]
    out += _md_table(["guardrail", "started", "value", "threshold", "for", "query", "outcome"],
                     [[b.guardrail, r.offset(b.since), _value(b, r.plan)[0], f"{b.op} {_value(b, r.plan)[1]}", format_duration(b.for_s),
                       f"`{b.query}`", b.outcome] for b in r.breaches])
    out += ["## Shadow guardrails", "", "Judged like the others, journaled, never acted on: what each would have done.", ""]
    out += _md_table(SHADOW_HEAD, _shadow_rows(r))
    out += ["## Rollbacks", ""]
    for run in r.rollbacks:
        out += [f"- {r.offset(run.intent.ts)} by **{run.intent.actor}**: {run.intent.data.get('reason', '')}",
                f"  - flags confirmed off after {_secs(run.latency)}; {run.attempts} failed attempt(s)"]
        out += [f"  - runbook: {s.message}" for s in run.steps]
    out += ["", "## Actions", ""]
    out += _md_table(["when", "action", "who", "why", "journal"], _action_rows(r))
    out += ["## Checklist", ""]
    out += _md_table(["phase", "item", "required", "ticked by", "when"],
                     [[str(c.phase), c.text, "yes" if c.required else "", c.ticked_by or "**not ticked**" if c.required else c.ticked_by,
                       r.offset(c.at) if c.at else ""] for c in r.checklist])
    out += ["## Timeline", ""]
    out += _md_table(["when", "UTC", "what", "who", "detail"],
                     [[r.offset(e.ts), time.strftime("%H:%M:%S", time.gmtime(e.ts)), e.kind, e.actor, e.message] for e in _timeline(r)])
    out += ["## Follow-ups", "", f"To fill in at the post-mortem (due {_utc(r.end + POSTMORTEM_DUE)}), then share with the team.", ""]
    for heading in FOLLOW_UPS:
        out += [f"### {heading}", "", "- ", ""]
    return redact("\n".join(out))


# ---------------------------------------------------------------- HTML and SVG

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:1120px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d8dce3;padding-bottom:4px}
.env{display:inline-block;padding:2px 8px;border-radius:4px;font-weight:700;color:#fff;background:#6b7280}
.env.production{background:#b91c1c}.env.drill{background:#7c3aed}.env.staging{background:#2563eb}
table{border-collapse:collapse;width:100%;background:#fff;margin:6px 0}
th,td{border:1px solid #e1e4ea;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef0f4;font-weight:600} td.num{text-align:right;white-space:nowrap}
code{font:12px ui-monospace,monospace;word-break:break-all}
.pass{color:#15803d;font-weight:700}.fail{color:#b91c1c;font-weight:700}.missing{color:#b91c1c}
h3{font-size:14px;margin:14px 0 4px} .todo{color:#9ca3af;font-style:italic;margin:0}
.card{background:#fff;border:1px solid #d8dce3;border-radius:6px;padding:10px 14px}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:12px}
figure{margin:0;background:#fff;border:1px solid #e1e4ea;border-radius:6px;padding:8px}
figcaption{font-weight:600;font-size:13px;margin-bottom:4px}
svg text{font:10px system-ui,sans-serif;fill:#4b5563}
"""

W, H, PAD_L, PAD_R, PAD_T, PAD_B = 520, 150, 56, 10, 10, 22
MARK_COLOURS = {"rollback.intent": "#b91c1c", "pause": "#d97706", "step.outcome": "#2563eb", "rollback.confirmed": "#15803d",
                "resume": "#0891b2", "source.error": "#6b7280"}


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def chart(r: Report, pane: Pane, start: float, end: float, threshold: float | None, marks: list[JournalEntry]) -> str:
    """An inline SVG line chart of one pane between two times, with the threshold and event marks."""
    points = [(t, v) for t, v in r.samples.get(pane.id, []) if start <= t <= end]
    values = [v for _, v in points if v is not None] + ([threshold] if threshold is not None else [])
    if not points or not values:
        return f'<p>No samples of {_esc(pane.title)} between {r.offset(start)} and {r.offset(end)}.</p>'
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        lo, hi = lo - abs(lo) * 0.1 - 1e-9, hi + abs(hi) * 0.1 + 1e-9
    span = max(end - start, 1e-9)

    def x(t: float) -> float:
        return PAD_L + (t - start) / span * (W - PAD_L - PAD_R)

    def y(v: float) -> float:
        return PAD_T + (hi - v) / (hi - lo) * (H - PAD_T - PAD_B)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{_esc(pane.title)}">',
             f'<rect x="{PAD_L}" y="{PAD_T}" width="{W - PAD_L - PAD_R}" height="{H - PAD_T - PAD_B}" fill="#fbfbfc" stroke="#e1e4ea"/>']
    # No data is drawn as a grey band, never as a line through the gap.
    for (t0, v0), (t1, _) in zip(points, points[1:]):
        if v0 is None:
            parts.append(f'<rect x="{x(t0):.1f}" y="{PAD_T}" width="{max(1.0, x(t1) - x(t0)):.1f}" height="{H - PAD_T - PAD_B}" fill="#d1d5db" opacity="0.6"/>')
    runs: list[list[str]] = [[]]
    for t, v in points:
        if v is None:
            runs.append([])
        else:
            runs[-1].append(f"{x(t):.1f},{y(v):.1f}")
    parts += [f'<polyline fill="none" stroke="#1d4ed8" stroke-width="1.5" points="{" ".join(run)}"/>' for run in runs if run]
    if threshold is not None:
        parts.append(f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{y(threshold):.1f}" y2="{y(threshold):.1f}" stroke="#dc2626" stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{W - PAD_R - 2}" y="{y(threshold) - 3:.1f}" text-anchor="end">threshold {_esc(format_value(threshold, pane.unit))}</text>')
    for e in marks:
        if start <= e.ts <= end:
            colour = MARK_COLOURS.get(e.kind, "#374151")
            parts.append(f'<line x1="{x(e.ts):.1f}" x2="{x(e.ts):.1f}" y1="{PAD_T}" y2="{H - PAD_B}" stroke="{colour}" stroke-width="1.5">'
                         f'<title>{_esc(r.offset(e.ts) + " " + e.message)}</title></line>')
    parts += [f'<text x="{PAD_L - 4}" y="{PAD_T + 8}" text-anchor="end">{_esc(format_value(hi, pane.unit))}</text>',
              f'<text x="{PAD_L - 4}" y="{H - PAD_B}" text-anchor="end">{_esc(format_value(lo, pane.unit))}</text>',
              f'<text x="{PAD_L}" y="{H - 6}">{_esc(r.offset(start))}</text>',
              f'<text x="{W - PAD_R}" y="{H - 6}" text-anchor="end">{_esc(r.offset(end))}</text>', "</svg>"]
    return "".join(parts)


def _guard_threshold(plan: Plan, pane: Pane) -> float | None:
    """The absolute limit an acting guardrail keeps this pane under (a comparison's moves with the control)."""
    return next((g.threshold for g in plan.guardrails if g.pane == pane.id and g.threshold is not None and g.mode == "act"), pane.breach)


def _html_table(head: list[str], rows: list[list[str]], *, raw: bool = False) -> str:
    """Rows are escaped unless `raw` (cells already built as HTML)."""
    cells = (lambda c: c) if raw else _esc
    body = "".join("<tr>" + "".join(f"<td>{cells(c)}</td>" for c in row) + "</tr>" for row in rows)
    thead = "<thead><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in head) + "</tr></thead>" if any(head) else ""
    return f"<table>{thead}<tbody>{body}</tbody></table>"


def _event_charts(r: Report, marks: list[JournalEntry]) -> list[str]:
    figures = []
    events: list[tuple[float, str, str | None]] = [(b.since, f"breach of {b.guardrail} ({b.outcome})", b.pane) for b in r.breaches]
    for run in r.rollbacks:
        cause = run.intent.data.get("cause") or {}
        # A human's rollback names no guardrail: chart the pane of the breach it answered, if any.
        answered = [b.pane for b in r.breaches if b.since <= run.intent.ts and b.pane]
        pane = _guard_pane(r.plan, cause.get("guardrail", "")) or (answered[-1] if answered else r.plan.panes[0].id)
        events.append((run.intent.ts, f"rollback by {run.intent.actor}", pane))
    events += [(e.ts, e.message, None) for e in r.entries if e.kind == "source.error"]
    for ts, label, pane_id in sorted(events, key=lambda ev: ev[0]):
        panes = [r.plan.pane(pane_id)] if pane_id else [p for p in r.plan.panes if _guard_threshold(r.plan, p) is not None][:2]
        for pane in panes:
            svg = chart(r, pane, ts - EVENT_WINDOW, ts + EVENT_WINDOW, _guard_threshold(r.plan, pane), marks)
            figures.append(f"<figure><figcaption>{_esc(r.offset(ts))} {_esc(label)} — {_esc(pane.title)}</figcaption>{svg}</figure>")
    return figures


def to_html(r: Report) -> str:
    env = r.plan.rollout.environment
    marks = [e for e in r.entries if e.kind in MARK_COLOURS]
    s: list[str] = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Post-mortem: {_esc(r.plan.rollout.name)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>Post-mortem: {_esc(r.plan.rollout.name)} <span class='env {_esc(env)}'>{_esc(env.upper())}</span></h1>",
        f"<p>{_esc(r.plan.rollout.description)}</p>",
        "<section id='summary'><h2>Summary</h2>" + _html_table(["", ""], [[k, v] for k, v in _summary(r)]) + "</section>",
    ]
    if r.card:
        verdict = f"<span class='{'pass' if r.card.passed else 'fail'}'>{'PASS' if r.card.passed else 'FAIL'}</span>"
        rows = [[k, _esc(v)] for k, v in (
            ("Scenario", f"{r.card.title} [{r.card.scenario}]"), ("Expected", r.card.expected),
            ("First bad sample", "none" if r.card.incident_at is None else f"+{r.card.incident_at:.0f}s {r.card.incident}"),
            ("Time to detect", _secs(r.card.time_to_detect)), ("Time to mitigate", _secs(r.card.time_to_mitigate)),
            ("Rollback latency", _secs(r.card.rollback_latency)), ("Failed flag attempts", str(r.card.failed_attempts)),
            ("Actions taken", "; ".join(f"+{a.at:.0f}s {a.action} by {a.actor}" for a in r.card.actions) or "none"),
            ("Mistakes", "; ".join(r.card.mistakes) or "none"), ("Findings", "; ".join(r.card.findings) or "none"),
        )]
        s.append(f"<section id='scorecard'><h2>Drill score card: {verdict}</h2>" + _html_table(["", ""], [["Verdict", verdict], *rows], raw=True) + "</section>")
    s.append("<section id='phases'><h2>Phases</h2>" + _html_table(
        ["phase", "entered", "UTC", "duration", "ended by"],
        [[f"{p.index} {p.name}", r.offset(p.start), _utc(p.start), format_duration(p.end - p.start), p.ended_by] for p in r.phases]) + "</section>")
    s.append("<section id='breaches'><h2>Guardrail breaches</h2>" + _html_table(
        ["guardrail", "started", "value", "threshold", "for", "query", "outcome"],
        [[_esc(b.guardrail), _esc(r.offset(b.since)), _esc(_value(b, r.plan)[0]), _esc(f"{b.op} {_value(b, r.plan)[1]}"),
          _esc(format_duration(b.for_s)), f"<code>{_esc(b.query)}</code>", _esc(b.outcome)] for b in r.breaches], raw=True) + "</section>")
    s.append("<section id='shadows'><h2>Shadow guardrails</h2><p>Judged like the others, journaled, never acted on: "
             "what each would have done.</p>" + _html_table(SHADOW_HEAD, _shadow_rows(r)) + "</section>")
    s.append("<section id='rollbacks'><h2>Rollbacks</h2>" + _html_table(
        ["started", "by", "why", "flags confirmed off after", "failed attempts", "runbook"],
        [[_esc(r.offset(run.intent.ts)), _esc(run.intent.actor), _esc(run.intent.data.get("reason", "")), _esc(_secs(run.latency)),
          _esc(run.attempts), "<br>".join(_esc(st.message) for st in run.steps)] for run in r.rollbacks], raw=True) + "</section>")
    s.append("<section id='actions'><h2>Actions</h2>" + _html_table(["when", "action", "who", "why", "journal"], _action_rows(r)) + "</section>")
    s.append("<section id='checklist'><h2>Checklist</h2>" + _html_table(
        ["phase", "item", "required", "ticked by", "when"],
        [[_esc(c.phase), _esc(c.text), "yes" if c.required else "",
          _esc(c.ticked_by) if c.ticked_by else ("<span class='missing'>not ticked</span>" if c.required else ""),
          _esc(r.offset(c.at)) if c.at else ""] for c in r.checklist], raw=True) + "</section>")
    overview = [f"<figure><figcaption>{_esc(p.title)}</figcaption>{chart(r, p, r.start, r.end, _guard_threshold(r.plan, p), marks)}</figure>"
                for p in r.plan.panes]
    s.append("<section id='charts'><h2>Panes over the whole run</h2><p>Blue: value · dashed red: guardrail threshold · "
             "vertical lines: step ups (blue), pauses (amber), rollbacks (red), flags confirmed off (green) · grey: no data</p>"
             f"<div class='charts'>{''.join(overview)}</div></section>")
    s.append(f"<section id='events'><h2>Around each event</h2><div class='charts'>{''.join(_event_charts(r, marks))}</div></section>")
    s.append("<section id='timeline'><h2>Timeline</h2>" + _html_table(
        ["when", "UTC", "what", "who", "detail"],
        [[r.offset(e.ts), time.strftime("%H:%M:%S", time.gmtime(e.ts)), e.kind, e.actor, e.message] for e in _timeline(r)]) + "</section>")
    s.append(f"<section id='follow-ups'><h2>Follow-ups</h2><p>To fill in at the post-mortem (due {_esc(_utc(r.end + POSTMORTEM_DUE))}), "
             "then share with the team.</p>" + "".join(f"<h3>{_esc(h)}</h3><p class='todo'>to fill in</p>" for h in FOLLOW_UPS) + "</section>")
    s.append("</main></body></html>")
    return redact("".join(s))


def run_report_command(plan: Plan, db: Path, *, fmt: str, output: str | None) -> int:
    if not db.exists():
        print(f"warroom: {db}: no journal here (give the drill's or launch's --state)", file=sys.stderr)
        return 1
    report = build_report(plan, Store(db))
    if not report.entries:
        print(f"warroom: {db}: the journal is empty", file=sys.stderr)
        return 1
    text = to_html(report) if fmt == "html" else to_markdown(report)
    if output:
        Path(output).write_text(text, encoding="utf-8")
        print(f"wrote {output} ({fmt}, {len(report.entries)} journal entries)")
    else:
        print(text)
    return 0
