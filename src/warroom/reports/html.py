"""The post-mortem as one self-contained HTML file: inline CSS and SVG, no scripts, no external assets.

Rendered by Jinja2 templates shipped in the package (templates/report.html.j2) with
autoescape on, so every name, reason and server message is text in the page, whatever
it holds; each value also loses its control characters and any secret a server echoed.
The page is written as it is rendered: the long sections stream from the journal.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from warroom.core.journal_kinds import DECISIONS, Kind
from warroom.core.secrets import redact
from warroom.core.snapshot import JournalEntry
from warroom.core.text import terminal_safe
from warroom.core.units import format_duration, format_value
from warroom.plan.model import Pane, Plan
from warroom.reports.cells import cell_renderer
from warroom.reports.postmortem import (
    EVENT_WINDOW,
    FOLLOW_UPS,
    POSTMORTEM_DUE,
    SHADOW_HEAD,
    Report,
    action_why,
    breach_numbers,
    clock,
    secs,
    shadow_rows,
    summary,
    utc,
)
from warroom.reports.signoffs import HEAD as SIGN_OFF_HEAD

MARK_COLOURS: dict[str, str] = {Kind.ROLLBACK_INTENT: "#b91c1c", Kind.PAUSE: "#d97706", Kind.STEP_OUTCOME: "#2563eb",
                                 Kind.ROLLBACK_CONFIRMED: "#15803d", Kind.RESUME: "#0891b2", Kind.SOURCE_ERROR: "#6b7280"}


@dataclass(frozen=True)
class Geometry:
    """The chart's frame in SVG units."""

    w: int = 520
    h: int = 150
    left: int = 56
    right_pad: int = 10
    top: int = 10
    bottom_pad: int = 22

    @property
    def right(self) -> int:
        return self.w - self.right_pad

    @property
    def bottom(self) -> int:
        return self.h - self.bottom_pad

    @property
    def inner_w(self) -> int:
        return self.right - self.left

    @property
    def inner_h(self) -> int:
        return self.bottom - self.top


G = Geometry()


@dataclass(frozen=True)
class Mark:
    x: float
    colour: str
    title: str


@dataclass(frozen=True)
class Chart:
    title: str
    empty: str = ""  # why there is no chart
    gaps: tuple[tuple[float, float], ...] = ()  # (x, width) of spans without data
    unsampled: tuple[tuple[float, float, str], ...] = ()  # (x, width, title) of spans with no sample taken at all
    lines: tuple[str, ...] = ()  # polyline points, one per run of data
    threshold: tuple[float, str] | None = None  # (y, label)
    marks: tuple[Mark, ...] = ()
    hi: str = ""
    lo: str = ""
    left: str = ""
    right: str = ""


def _clean(value: Any) -> Any:
    """Every value the template prints: no control characters, no secret (escaping is autoescape's)."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return redact(terminal_safe(value, keep_newlines=True))
    return value


ROWS_PER_CHUNK = 500  # of a table that grows with the journal, rendered at once


def _table_rows(rows: Iterable[list[Any]]) -> Iterator[Markup]:
    """`<tr><td>…</td></tr>` lines, a chunk of rows at a time, each cell cleaned and escaped as
    the template's `{{ cell }}` is: a template loop costs a dozen generator steps a cell, and
    the timeline of a long launch has millions of cells."""
    td = cell_renderer(lambda value: f"<td>{escape(_clean(value))}</td>")
    chunk: list[str] = []
    for row in rows:
        chunk.append("<tr>" + "".join([td(cell) for cell in row]) + "</tr>\n")
        if len(chunk) == ROWS_PER_CHUNK:
            yield Markup("".join(chunk))
            chunk = []
    if chunk:
        yield Markup("".join(chunk))


_ENV = Environment(loader=PackageLoader("warroom.reports", "templates"), autoescape=True, finalize=_clean,
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


# ---------------------------------------------------------------- charts


def _downsample(points: Iterable[tuple[float, float | None]], start: float, end: float) -> Iterator[tuple[float, float | None]]:
    """At most a gap, the lowest and the highest sample per pixel column, in time order: a week of
    samples draws the same spikes and gaps as the raw series, in a page of bounded size."""
    span = max(end - start, 1e-9)
    column: int | None = None
    kept: list[tuple[float, float | None]] = []
    for t, v in points:
        c = int((t - start) / span * G.inner_w)
        if c != column:
            yield from kept
            column, kept = c, []
        kept.append((t, v))
        if len(kept) > 3:
            gap = [p for p in kept if p[1] is None][:1]
            values = [(t, v) for t, v in kept if v is not None]
            extremes = [min(values, key=lambda p: p[1]), max(values, key=lambda p: p[1])] if values else []
            kept = sorted({*gap, *extremes})
    yield from kept


def chart(r: Report, pane: Pane, start: float, end: float, threshold: float | None,
          marks: Iterable[tuple[float, str, str]]) -> Chart:
    """One pane between two times, with the threshold and the marks (ts, kind, title) that fall inside."""
    points = list(_downsample(r.samples(pane.id, start, end), start, end))
    values = [v for _, v in points if v is not None] + ([threshold] if threshold is not None else [])
    if not points or not values:
        return Chart(pane.title, empty=f"No samples of {pane.title} between {r.offset(start)} and {r.offset(end)}.")
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        lo, hi = lo - abs(lo) * 0.1 - 1e-9, hi + abs(hi) * 0.1 + 1e-9
    span = max(end - start, 1e-9)

    def x(t: float) -> float:
        return G.left + (t - start) / span * G.inner_w

    def y(v: float) -> float:
        return G.top + (hi - v) / (hi - lo) * G.inner_h

    # No data is drawn as a grey band, never as a line through the gap; no sample at all (the
    # engine took none: stopped, or a drill waiting on a flag write) is a band that says so.
    gaps = tuple((x(t0), max(1.0, x(t1) - x(t0))) for (t0, v0), (t1, _) in pairwise(points) if v0 is None)
    edges = [start, *(t for t, _ in points), end]
    longest = max(2 * r.plan.poll_interval, 2 * span / G.inner_w)  # farther apart than two polls (or two pixels)
    unsampled = tuple((x(t0), x(t1) - x(t0), f"no samples from {r.offset(t0)} to {r.offset(t1)}")
                      for t0, t1 in pairwise(edges) if t1 - t0 > longest)
    runs: list[list[str]] = [[]]
    for t, v in points:
        if v is None:
            runs.append([])
        else:
            runs[-1].append(f"{x(t):.1f},{y(v):.1f}")
    return Chart(
        pane.title, gaps=gaps, unsampled=unsampled, lines=tuple(" ".join(run) for run in runs if run),
        threshold=None if threshold is None else (y(threshold), format_value(threshold, pane.unit)),
        marks=tuple(Mark(x(ts), MARK_COLOURS.get(kind, "#374151"), title) for ts, kind, title in marks if start <= ts <= end),
        hi=format_value(hi, pane.unit), lo=format_value(lo, pane.unit), left=r.offset(start), right=r.offset(end))


def _guard_threshold(plan: Plan, pane: Pane) -> float | None:
    """The absolute limit an acting guardrail keeps this pane under (a comparison's moves with the control)."""
    return next((g.threshold for g in plan.guardrails if g.pane == pane.id and g.threshold is not None and g.mode == "act"), pane.breach)


class _Marks:
    """Step ups, pauses, rollbacks and outages marked on the charts, from one pass over the journal:
    merged per pixel column over the whole run (a flapping source draws one line a column), kept
    whole within each charted event's window."""

    def __init__(self, r: Report):
        self.overview: dict[tuple[int, str], list] = {}
        self.windows: list[list[tuple[float, str, str]]] = [[] for _ in r.events]
        starts = [e.ts for e in r.events]  # sorted: report events are in time order
        span = max(r.end - r.start, 1e-9)
        for e in r.store.iter_entries(kinds=tuple(MARK_COLOURS)):
            mark = (e.ts, e.kind, f"{r.offset(e.ts)} {e.message}")
            # Clamped: entries of hosts whose clocks disagree may lie outside the journal's first and last.
            column = (min(max(int((e.ts - r.start) / span * G.inner_w), 0), G.inner_w), e.kind)
            if column in self.overview:
                self.overview[column][1] += 1
            else:
                self.overview[column] = [mark, 0]
            for i in range(bisect_left(starts, e.ts - EVENT_WINDOW), bisect_right(starts, e.ts + EVENT_WINDOW)):
                self.windows[i].append(mark)

    def whole_run(self) -> list[tuple[float, str, str]]:
        return [(ts, kind, title + (f" (and {more} more)" if more else "")) for (ts, kind, title), more in self.overview.values()]


def _event_charts(r: Report, marks: _Marks) -> Iterator[tuple[str, Chart]]:
    for event, window in zip(r.events, marks.windows, strict=True):
        panes = [r.plan.pane(event.pane)] if event.pane else [p for p in r.plan.panes if _guard_threshold(r.plan, p) is not None][:2]
        for pane in panes:
            yield (f"{r.offset(event.ts)} {event.label} — {pane.title}",
                   chart(r, pane, event.ts - EVENT_WINDOW, event.ts + EVENT_WINDOW, _guard_threshold(r.plan, pane), window))


# ---------------------------------------------------------------- the page


def _card_rows(r: Report) -> list[tuple[str, str]]:
    card = r.card
    if card is None:
        return []
    return [("Scenario", f"{card.title} [{card.scenario}]"), ("Expected", card.expected),
            ("First bad sample", "none" if card.incident_at is None else f"+{card.incident_at:.0f}s {card.incident}"),
            ("Time to detect", secs(card.time_to_detect)), ("Time to mitigate", secs(card.time_to_mitigate)),
            ("Rollback latency", secs(card.rollback_latency)), ("Failed flag attempts", str(card.failed_attempts)),
            ("Actions taken", "; ".join(f"+{a.at:.0f}s {a.action} by {a.actor}" for a in card.actions) or "none"),
            ("Mistakes", "; ".join(card.mistakes) or "none"), ("Findings", "; ".join(card.findings) or "none")]


def _breach_rows(r: Report) -> Iterator[list[str]]:
    for b in r.breaches():
        value, threshold = breach_numbers(b, r.plan)
        yield [b.guardrail, r.offset(b.since), value, threshold, format_duration(b.for_s),
               Markup("<code>%s</code>") % _clean(b.query), b.outcome]


def _timeline_rows(entries: Iterable[JournalEntry], r: Report) -> Iterator[list[str]]:
    return ([r.offset(e.ts), clock(e.ts), e.kind, e.actor, e.message] for e in entries)


def html(r: Report) -> Iterator[str]:
    """The page, chunk by chunk as it is rendered."""
    marks = _Marks(r)
    overview = ((p.title, chart(r, p, r.start, r.end, _guard_threshold(r.plan, p), marks.whole_run())) for p in r.plan.panes)
    context = {
        "g": G,
        "plan": r.plan,
        "summary": summary(r),
        "card": r.card,
        "card_rows": _card_rows(r),
        "phases": [[f"{p.index} {p.name}", r.offset(p.start), utc(p.start), format_duration(p.end - p.start), p.ended_by] for p in r.phases],
        "breaches": _table_rows(_breach_rows(r)),
        "shadow_head": SHADOW_HEAD,
        "shadows": shadow_rows(r),
        "rollbacks": [{"started": r.offset(run.intent.ts), "actor": run.intent.actor, "reason": run.intent.data.get("reason", ""),
                       "latency": secs(run.latency), "attempts": run.attempts, "steps": [s.message for s in run.steps]}
                      for run in r.rollbacks],
        "actions": _table_rows([r.offset(e.ts), DECISIONS[e.kind], e.actor, action_why(e, r), e.message] for e in r.actions()),
        "has_shadows": r.has_shadows,
        "checklist": [{"phase": c.phase, "text": c.text, "required": c.required, "ticked_by": c.ticked_by,
                       "when": r.offset(c.at) if c.at else ""} for c in r.checklist],
        "sign_off_head": SIGN_OFF_HEAD,
        "sign_offs": ([s.role, s.person, s.answer, utc(s.ts), s.change, s.evidence] for s in r.sign_offs()),
        "decision_record": r.decision_record(),
        "overview": overview,
        "events": _event_charts(r, marks),
        "more_events": r.event_count - len(r.events),
        "timeline": _table_rows(_timeline_rows(r.timeline(), r)),
        "due": utc(r.end + POSTMORTEM_DUE),
        "follow_ups": FOLLOW_UPS,
    }
    return _ENV.get_template("report.html.j2").generate(context)
