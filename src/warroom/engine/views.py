"""Building the Snapshot: what every screen and script shows, from the engine's parts."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from warroom.core.flagstate import FlagState
from warroom.core.journal_kinds import Kind
from warroom.core.snapshot import (
    ActionView,
    ChecklistView,
    FlagView,
    JournalEntry,
    PaneView,
    PhaseView,
    RollbackView,
    RunbookStepView,
    Snapshot,
    SourceDownView,
    State,
)
from warroom.core.units import format_duration
from warroom.engine.policy import exposure_label
from warroom.outbound.runbook import step_name
from warroom.plan.model import Plan

if TYPE_CHECKING:
    from warroom.engine.engine import Engine

JOURNAL_TAIL = 60


def pane_views(engine: Engine, now: float) -> list[PaneView]:
    poller, plan = engine.poller, engine.plan
    watching = engine.guardrails.watching()
    notes = engine.guardrails.notes()
    views = []
    for pane in plan.panes:
        key = poller.pane_keys[pane.id]
        reading = poller.readings.get(key)
        last = poller.last_good.get(key)
        value = reading.value if reading is not None and reading.has_value else None
        detail = reading.detail if reading is not None else "waiting for the first sample"
        asked = poller.asked_at.get(key) if key in poller.inflight else None
        if value is not None and asked is not None and now - asked >= plan.poll_interval:
            # A whole poll interval without an answer: the number on screen is an old one.
            status = "stale"
            detail = f"waiting for a slow answer (asked {format_duration(now - asked)} ago)"
        elif value is None:
            status = "stale" if last is not None else "nodata"
            history = [v for v in poller.history[pane.id] if v is not None]
            value = history[-1] if history and last is not None else None
        else:
            status = "ok"
            bad_above = pane.bad_side == "above"

            def worse(limit: float | None) -> bool:
                return limit is not None and (value > limit if bad_above else value < limit)

            if worse(pane.breach):
                status = "breach"
            elif worse(pane.warn):
                status = "warn"
        guards = watching.get(pane.id, [])
        breaching = [g.progress for g in guards if g.status in ("pending", "breach")]
        if breaching and status in ("ok", "warn"):
            status = "breach"
        views.append(PaneView(
            id=pane.id, title=pane.title, unit=pane.unit, value=value, status=status,
            detail=detail,
            warn=pane.warn, breach=pane.breach, bad_side=pane.bad_side,
            history=tuple(poller.history[pane.id]), last_good_at=last,
            age=None if last is None else max(0.0, now - last),
            guardrails=tuple(g.id for g in guards),
            for_progress=max(breaching) if breaching else None,
            series=reading.series if reading is not None else (),
            note=notes.get(pane.id, ""),
        ))
    return views


def phase_view(engine: Engine, now: float) -> PhaseView | None:
    state = engine.journal.state
    if state.phase < 1:
        return None
    phase = engine.plan.phases[state.phase - 1]
    started = state.phase_started_at
    elapsed = 0.0 if started is None else max(0.0, now - started)
    ticked = state.ticked_in()
    items = tuple(
        ChecklistView(iid, item.text, item.required, iid in ticked, ticked.get(iid, ""))
        for iid, item in zip(phase.item_ids(), phase.checklist)
    )
    flags = engine.policy.target_flags(state.phase)
    return PhaseView(state.phase, phase.name, exposure_label(flags), phase.hold, started, elapsed,
                     max(0.0, phase.hold - elapsed), tuple(engine.policy.gate_views(state) + engine.policy.exposure_gate()), items,
                     engine.planned_holds.get(state.phase))


def rollback_view(plan: Plan, journal: list[JournalEntry]) -> RollbackView | None:
    """The newest rollback from the journal's tail (None once it scrolled out of it)."""
    intent = next((e for e in journal if e.kind == Kind.ROLLBACK_INTENT), None)
    if intent is None:
        return None
    mine = [e for e in reversed(journal) if e.action_id == intent.action_id]  # oldest first
    done = {e.data.get("step"): e for e in mine if e.kind == Kind.ROLLBACK_STEP}
    steps = []
    for index, step in enumerate(plan.rollback.steps):
        entry = done.get(index)
        if entry is None:
            steps.append(RunbookStepView(step_name(step), "pending"))
            continue
        status = "dry-run" if entry.data.get("dry_run") else ("ok" if entry.data.get("ok") else "failed")
        steps.append(RunbookStepView(step_name(step), status, entry.message.partition(": ")[2]))
    # The newest read-back verdict on the flags: a re-assert (a flag read back exposed after
    # the rollback, a late write landing) undoes an earlier confirmation until its own.
    verdict = next((e for e in journal if e.seq > intent.seq and e.kind in (Kind.ROLLBACK_CONFIRMED, Kind.ROLLBACK_REASSERT)), None)
    confirmed = verdict if verdict is not None and verdict.kind == Kind.ROLLBACK_CONFIRMED else None
    outcome = next((e for e in mine if e.kind == Kind.ROLLBACK_OUTCOME), None)
    who = intent.data.get("actor") or {}
    observed = (confirmed.data.get("observed") or {}) if confirmed else {}
    return RollbackView(
        reason=str(intent.data.get("reason", "")), by="auto" if who.get("automatic") else intent.actor,
        started_at=intent.ts, from_phase=int(intent.data.get("from_phase") or 0), steps=tuple(steps),
        confirmed=exposure_label({n: FlagState.from_json(d) for n, d in observed.items()}) if confirmed else "",
        confirmed_at=confirmed.ts if confirmed else None,
        outcome=outcome.message if outcome else "", finished_at=outcome.ts if outcome else None,
    )


def source_where(plan: Plan, name: str) -> str:
    """host:port of a source's URL (never its credentials); "" for one without a URL."""
    url = getattr(plan.sources.get(name), "url", None)
    if not url:
        return ""
    parts = urlsplit(str(url))
    return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname or ""


def snapshot(engine: Engine) -> Snapshot:
    now = engine.clock.now()
    state = engine.journal.state
    flags_read = engine.flags
    not_done = engine.policy.rollback_not_done(state)
    flags = tuple(
        FlagView(name, state.desired.get(name), flags_read.observed.get(name), flags_read.errors.get(name, ""),
                 name in state.drift or (state.desired.get(name) is not None and flags_read.observed.get(name) is not None
                                         and state.action is None and state.status != State.PENDING
                                         and not flags_read.observed[name].matches(state.desired[name])))  # type: ignore[union-attr]
        for name in engine.plan.flag_names()
    )
    action = None
    if state.action is not None:
        attempt, error = engine.executor.attempts.get(state.action.id, (0, ""))
        action = ActionView(state.action.id, state.action.kind, attempt, error, state.action.since or now, state.action.target)
    journal = engine.journal.tail(JOURNAL_TAIL)
    rolling_back = state.status in (State.ROLLING_BACK, State.ROLLED_BACK)
    return Snapshot(
        rollout=engine.plan.rollout.name,
        environment=engine.plan.rollout.environment,
        description=engine.plan.rollout.description,
        state=State.ROLLING_BACK if not_done else state.status,  # never ROLLED BACK over exposed flags
        phase=phase_view(engine, now),
        phase_count=len(engine.plan.phases),
        phase_names=tuple(p.name for p in engine.plan.phases),
        next_change=engine.policy.next_change(state),
        panes=tuple(pane_views(engine, now)),
        guardrails=tuple(engine.guardrails.views),
        flags=flags,
        journal=journal,
        action=action,
        step_blockers=tuple(engine.step_blockers()),
        force_blockers=tuple(engine.step_blockers(forced=True)),
        paused_reason=state.paused_reason,
        drift=bool(state.drift),
        driver=engine.holder,
        me="",
        readonly=False,
        automation=True,
        insecure=any(getattr(s, "insecure", False) for s in engine.sources.values()),
        now=now,
        tick=engine.tick_count,
        poll_interval=engine.plan.poll_interval,
        wall=time.time(),
        clock_rate=0.0 if engine.clock.speed == float("inf") else engine.clock.speed,
        exposure=engine.policy.exposure_view,
        phase_exposures=engine.policy.phase_labels,
        launch_flags=engine.policy.launch_flags,
        sources_down=tuple(SourceDownView(name, source_where(engine.plan, name), cause)
                           for name, cause in engine.poller.source_down.items()),
        rollback=rollback_view(engine.plan, journal) if rolling_back else None,
        started_at=state.started_at,
        notes=(f"rolled back, but {exposure_label(not_done)} reads back: the rollback is not done; "
               + "the engine sets it off again",) if not_done else (),
    )
