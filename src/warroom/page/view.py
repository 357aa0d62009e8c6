"""What the status page shows, from a snapshot: what a glance at the console shows, in words for people off the bastion.

The worst condition (core.condition, the console banner's own words), the phase strip,
exposures, each guardrail's value against its threshold with a small chart of its pane's
recent history, the recent decisions, the sign-off awaited and the go/no-go, the freezes and the next scheduled
step (each in the console's own words, from core/), the stakeholder updates; and, loudly, whether an
engine is guarding the launch and how old the numbers are. Nothing here reads a store or
renders HTML: it is values for the template.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from warroom.core.condition import Condition, worst_condition
from warroom.core.identity import person
from warroom.core.journal_kinds import DECISIONS, Kind
from warroom.core.snapshot import GuardrailView, PaneView, Snapshot, UpdatesView
from warroom.core.units import format_duration, format_value
from warroom.store.base import StoredUpdate

DECISIONS_SHOWN = 8
STALE_FLOOR = 10.0  # wall seconds: a snapshot older than this (or three polls) is stale
CHART_W, CHART_H = 120, 28


@dataclass(frozen=True)
class Chart:
    """A guardrail's pane over its recent history, as SVG coordinates in a CHART_W × CHART_H box."""

    line: str  # polyline points
    threshold_y: float | None
    span: str  # what it draws: `last 5m00s`


@dataclass(frozen=True)
class GuardRow:
    id: str
    reading: str  # the value now: `0.40%`, `no data`
    limit: str  # `above 1.00%` (what counts as a breach), or the comparison in words
    status: str  # ok | pending | breach | nodata | ignored
    meaning: str  # the status in words
    action: str  # what it does on breach: rollback | pause | alert
    chart: Chart | None


@dataclass(frozen=True)
class PhaseCell:
    index: int
    name: str
    exposure: str
    where: str  # done | current | next


@dataclass(frozen=True)
class DecisionRow:
    when: str  # `14:02:11 UTC`
    what: str  # `rollback`
    who: str  # the person, without host or address
    why: str


@dataclass(frozen=True)
class FreezeRow:
    banner: str  # `FREEZE until 18:00 (Black Friday) · rollback allowed`: the console banner's words
    kind: str  # where it comes from: `ad hoc`, `stop-the-line`, `calendar`, `flag service`
    by: str  # who froze, without host or address; "" for a calendar or the flag service


@dataclass(frozen=True)
class SignOffView:
    awaiting: str  # `awaiting security (carol|dave) 04:12 → on timeout: hold`, as the engine published it; "" when nothing waits
    answers: tuple[DecisionRow, ...]  # who answered the open request (approve or reject), oldest first
    go_no_go: str  # the recorded GO or NO-GO, in the decision record's words; "" before one


@dataclass(frozen=True)
class PageView:
    rollout: str
    environment: str
    description: str
    condition: Condition
    state: str  # RUNNING, PAUSED …
    phase: str  # `2/5 Beta 25%` or `0/5 (not started)`
    in_phase: str  # `12m00s`
    exposure: str  # the phase's exposure: `realtime-features 25%`
    flags: tuple[tuple[str, str], ...]  # (flag, what it reads back)
    exposure_check: str
    engine_gone: bool
    stale: str  # "" or `the numbers are 4m10s old`
    published: str  # when the engine published these numbers
    phases: tuple[PhaseCell, ...]
    guardrails: tuple[GuardRow, ...]
    decisions: tuple[DecisionRow, ...]
    freeze: str  # the console banner's freeze line for the longest freeze in force; "" without one
    freezes: tuple[FreezeRow, ...]
    signoff: SignOffView
    scheduled: str  # the next scheduled step: `phase 2 Half 50% at Fri 27 Nov 15:00 CET (in 1h)`; "" without one
    updates: UpdatesView | None
    last_update: StoredUpdate | None
    refresh_s: int  # the no-script page reloads itself this often
    tick: int  # the engine's tick that published these numbers: the same as `status --json` says for them


def utc(ts: float) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(ts))


def chart(pane: PaneView | None, guard: GuardrailView, poll: float) -> Chart | None:
    values = [v for v in (pane.history if pane else ()) if v is not None]
    if pane is None or len(values) < 2:
        return None
    lo = min(values + ([guard.threshold] if guard.threshold is not None else []))
    hi = max(values + ([guard.threshold] if guard.threshold is not None else []))
    if hi - lo < 1e-12:
        lo, hi = lo - 1, hi + 1

    def y(v: float) -> float:
        return round(2 + (hi - v) / (hi - lo) * (CHART_H - 4), 1)

    step = CHART_W / max(len(pane.history) - 1, 1)
    line = " ".join(f"{i * step:.1f},{y(v)}" for i, v in enumerate(pane.history) if v is not None)
    return Chart(line, y(guard.threshold) if guard.threshold is not None else None,
                 f"last {format_duration(poll * (len(pane.history) - 1))}")


def guard_row(guard: GuardrailView, panes: dict[str, PaneView], poll: float) -> GuardRow:
    reading = "no data" if guard.value is None else format_value(guard.value, guard.unit)
    limit = guard.shown or f"{guard.op} {format_value(guard.threshold, guard.unit)}"
    meaning = guard.status.meaning.split(":")[0]
    if guard.status.alarming and guard.detail:  # why it has no data (a server's error) or what it breaches
        meaning += f" ({guard.detail})"
    return GuardRow(guard.id, reading, limit, guard.status.value, meaning, guard.action.value, chart(panes.get(guard.target), guard, poll))


def freeze_rows(snap: Snapshot, now: float) -> tuple[FreezeRow, ...]:
    zone = ZoneInfo(snap.zone)
    return tuple(FreezeRow(f.banner(now, zone), f.kind.value, person(f.by) if f.by else "") for f in snap.freezes)


def signoff_view(snap: Snapshot) -> SignOffView:
    """The open request's answers are those since it was asked (the journal is newest first)."""
    answers: list[DecisionRow] = []
    if snap.awaiting:
        for e in snap.journal:
            if e.kind == Kind.APPROVAL_REQUESTED:
                break
            if e.kind in (Kind.APPROVAL_GIVEN, Kind.APPROVAL_REJECTED):
                answers.append(DecisionRow(utc(e.ts), DECISIONS[e.kind], person(e.actor),
                                           ", ".join(e.data.get("roles") or ()) + (f": {e.data['note']}" if e.data.get("note") else "")))
    go = next((e.message for e in snap.journal if e.kind == Kind.GO_NO_GO), "")
    return SignOffView(snap.awaiting, tuple(reversed(answers)), go)


def page_view(snap: Snapshot, last_update: StoredUpdate | None, *, wall: float | None = None, refresh_s: int = 15) -> PageView:
    """The page's values for `snap` as a client composed it (its engine's liveness as of now)."""
    wall = time.time() if wall is None else wall
    alive = snap.engine is not None and snap.engine.alive
    age = max(0.0, wall - snap.wall) if snap.wall else 0.0
    now = snap.now + age * snap.clock_rate  # the engine's clock, moved on since it published
    phase = snap.phase
    stale_after = max(STALE_FLOOR, 3 * snap.poll_interval / max(snap.clock_rate, 1.0))
    current = phase.index if phase else 0
    panes = {p.id: p for p in snap.panes}
    decisions = [e for e in snap.journal if e.kind in DECISIONS][:DECISIONS_SHOWN]
    return PageView(
        rollout=snap.rollout, environment=snap.environment.upper(), description=snap.description,
        condition=worst_condition(snap, now, engine_alive=alive), state=snap.state.label,
        phase=f"{phase.index}/{snap.phase_count} {phase.name}" if phase else f"0/{snap.phase_count} (not started)",
        in_phase=format_duration(phase.elapsed) if phase else "", exposure=phase.exposure if phase else "none",
        flags=tuple((f.name, (f.observed.label() if f.observed else "unreadable") + (f" ({read})" if read else ""))
                    for f in snap.flags for read in (snap.flags_age(),)),  # `(read 40s ago)`: a hanging flag service
        exposure_check=snap.exposure.text if snap.exposure is not None and snap.exposure.status != "idle" else "",
        engine_gone=not alive, stale=f"the numbers are {format_duration(age)} old" if age > stale_after else "",
        published=utc(snap.wall) if snap.wall else "",
        phases=tuple(PhaseCell(i, name, snap.phase_exposures[i - 1] if i <= len(snap.phase_exposures) else "",
                               "done" if i < current else "current" if i == current else "next")
                     for i, name in enumerate(snap.phase_names, 1)),
        guardrails=tuple(guard_row(g, panes, snap.poll_interval) for g in snap.guardrails),
        decisions=tuple(DecisionRow(utc(e.ts), DECISIONS[e.kind], person(e.actor), str(e.data.get("reason") or ""))
                        for e in decisions),
        freeze=snap.freeze_banner(now), freezes=freeze_rows(snap, now), signoff=signoff_view(snap),
        scheduled=snap.next_scheduled,
        updates=snap.updates, last_update=last_update, refresh_s=refresh_s, tick=snap.tick)
