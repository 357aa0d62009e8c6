"""Building the Snapshot: what every screen and script shows, from the values the engine hands over
(the plan, the rollout state, this tick's readings and judgements, what only the engine knows)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from warroom.core.flagstate import FlagState
from warroom.core.freeze import Freeze
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
    UpdatesView,
)
from warroom.core.statuses import PaneStatus, RunbookStepStatus
from warroom.core.units import format_duration
from warroom.engine.guardrails import Guardrails
from warroom.engine.policy import Policy, exposure_label
from warroom.engine.polling import FlagReader, Poller
from warroom.engine.state import RolloutState
from warroom.outbound.runbook import step_name
from warroom.plan.model import Plan

JOURNAL_TAIL = 60


def _past(value: float, limit: float | None, bad_side: str) -> bool:
    """On the bad side of `limit` (none: never)."""
    return limit is not None and (value > limit if bad_side == "above" else value < limit)


def pane_views(plan: Plan, poller: Poller, guardrails: Guardrails, now: float) -> list[PaneView]:
    watching = guardrails.watching()
    notes = guardrails.notes()
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
            status = PaneStatus.STALE
            detail = f"waiting for a slow answer (asked {format_duration(now - asked)} ago)"
        elif value is None:
            status = PaneStatus.STALE if last is not None else PaneStatus.NODATA
            history = [v for v in poller.history[pane.id] if v is not None]
            value = history[-1] if history and last is not None else None
        else:
            status = PaneStatus.OK
            if _past(value, pane.breach, pane.bad_side):
                status = PaneStatus.BREACH
            elif _past(value, pane.warn, pane.bad_side):
                status = PaneStatus.WARN
        guards = watching.get(pane.id, [])
        breaching = [g.progress for g in guards if g.status.breaching]
        if breaching and status in (PaneStatus.OK, PaneStatus.WARN):
            status = PaneStatus.BREACH
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


def phase_view(plan: Plan, policy: Policy, state: RolloutState, now: float, planned_holds: Mapping[int, float]) -> PhaseView | None:
    if state.phase < 1:
        return None
    phase = plan.phases[state.phase - 1]
    started = state.phase_started_at
    elapsed = 0.0 if started is None else max(0.0, now - started)
    ticked = state.ticked_in()
    items = tuple(
        ChecklistView(iid, item.text, item.required, iid in ticked, ticked.get(iid, ""))
        for iid, item in zip(phase.item_ids(), phase.checklist, strict=True)
    )
    flags = policy.target_flags(state.phase)
    return PhaseView(state.phase, phase.name, exposure_label(flags), phase.hold, started, elapsed,
                     max(0.0, phase.hold - elapsed), tuple(policy.gate_views(state) + policy.exposure_gate()), items,
                     planned_holds.get(state.phase))


def rollback_view(plan: Plan, journal: Sequence[JournalEntry]) -> RollbackView | None:
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
            steps.append(RunbookStepView(step_name(step), RunbookStepStatus.PENDING))
            continue
        status = (RunbookStepStatus.DRY_RUN if entry.data.get("dry_run")
                  else RunbookStepStatus.OK if entry.data.get("ok") else RunbookStepStatus.FAILED)
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


def flag_views(plan: Plan, state: RolloutState, flags: FlagReader) -> tuple[FlagView, ...]:
    """Each flag: what warroom set, what reads back, and drift (recorded, or seen now with nothing in flight)."""
    def drifting(name: str) -> bool:
        desired, observed = state.desired.get(name), flags.observed.get(name)
        if name in state.drift:
            return True
        return (desired is not None and observed is not None and state.action is None and state.status != State.PENDING
                and not observed.matches(desired))

    return tuple(FlagView(name, state.desired.get(name), flags.observed.get(name), flags.errors.get(name, ""), drifting(name))
                 for name in plan.flag_names())


def snapshot(plan: Plan, state: RolloutState, now: float, *, poller: Poller, guardrails: Guardrails, policy: Policy,
             flags: FlagReader, attempts: Mapping[str, tuple[int, str]], journal: tuple[JournalEntry, ...],
             blockers: Sequence[str], force_blockers: Sequence[str], freezes: tuple[Freeze, ...], next_scheduled: str, driver: str, tick: int,
             clock_rate: float, insecure: bool, planned_holds: Mapping[int, float], awaiting: str = "",
             updates: UpdatesView | None = None) -> Snapshot:
    """The picture of the rollout now. `attempts`: action id → (failed attempts, last error); `journal`: its
    newest entries; `blockers`: why a step up is refused (`force_blockers`: even forced); `driver`: the
    engine's user@host pid N; `clock_rate`: clock seconds a wall second (0: virtual time)."""
    not_done = policy.rollback_not_done(state)
    action = None
    if state.action is not None:
        attempt, error = attempts.get(state.action.id, (0, ""))
        action = ActionView(state.action.id, state.action.kind, attempt, error, state.action.since or now, state.action.target)
    return Snapshot(
        rollout=plan.rollout.name,
        environment=plan.rollout.environment,
        description=plan.rollout.description,
        state=State.ROLLING_BACK if not_done else state.status,  # never ROLLED BACK over exposed flags
        phase=phase_view(plan, policy, state, now, planned_holds),
        phase_count=len(plan.phases),
        phase_names=tuple(p.name for p in plan.phases),
        next_change=policy.next_change(state),
        panes=tuple(pane_views(plan, poller, guardrails, now)),
        guardrails=tuple(guardrails.views),
        flags=flag_views(plan, state, flags),
        flags_read_at=flags.read_at,
        journal=journal,
        action=action,
        step_blockers=tuple(blockers),
        force_blockers=tuple(force_blockers),
        freezes=freezes,
        zone=plan.schedule.zone,
        next_scheduled=next_scheduled,
        awaiting=awaiting,
        paused_reason=state.paused_reason,
        drift=bool(state.drift),
        driver=driver,
        me="",
        readonly=False,
        automation=True,
        insecure=insecure,
        now=now,
        tick=tick,
        poll_interval=plan.poll_interval,
        updates=updates,
        wall=time.time(),
        clock_rate=clock_rate,
        exposure=policy.exposure_view,
        phase_exposures=policy.phase_labels,
        launch_flags=policy.launch_flags,
        sources_down=tuple(SourceDownView(name, source_where(plan, name), cause) for name, cause in poller.source_down.items()),
        rollback=rollback_view(plan, journal) if state.status.in_rollback else None,
        started_at=state.started_at,
        notes=(f"rolled back, but {exposure_label(not_done)} reads back: the rollback is not done; "
               + "the engine sets it off again",) if not_done else (),
    )
