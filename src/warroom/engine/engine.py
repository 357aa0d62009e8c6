"""The rollout engine: ticks, guardrails, gates, commands and write-ahead actions.

It knows nothing of any UI. It is driven by the clock it is given; each tick polls
every query and flag concurrently, evaluates guardrails and gates, acts where a
guardrail says so, and publishes an immutable Snapshot. Every UI and verb goes
through the same command methods.

Write-ahead: an action's intent is committed to the journal (with the state change)
before anything is executed, every attempt is journaled, and the outcome after. The
rollout state lives in the store, so several processes see one truth.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import socket
import time
from typing import Any, Awaitable, Callable

from ..actions import StepResult, run_step, step_name
from ..flags.base import FlagError, FlagProvider, FlagState, backoff_delays
from ..identity import AUTOMATIC, Actor
from ..plan import FlagSetting, Plan, format_duration
from ..secrets import redact
from ..simulator import driving_flag
from ..sources.base import Reading, Source, SourceContext
from ..store import ActionTaken, StaleState, Store
from ..units import format_value
from . import transitions
from .clock import Clock
from .cohorts import ConditionQueries, judge
from .exposure import Exposure
from .guardrails import GuardrailTracker, held, pane_note, shadow_message, why, why_data
from .ownership import ACTION_TTL, Owner, may_adopt
from .snapshot import (
    ActionView,
    ChecklistView,
    ExposureView,
    FlagView,
    GateView,
    GuardrailView,
    JournalEntry,
    PaneView,
    PhaseView,
    RollbackView,
    RunbookStepView,
    Snapshot,
    State,
)

HISTORY = 240  # samples kept per pane for sparklines
JOURNAL_TAIL = 60
STEP_ATTEMPTS = 4  # a step up that cannot be confirmed gives up and pauses; a rollback never does
LEASE = "automation"

QueryKey = tuple[str, str, str | None]  # (source, query, series_label)
Entry = tuple[str, str, Actor, dict]  # (kind, message, actor, data) of a journal entry to commit


class CommandError(Exception):
    """A command that cannot run now; the message says why and what to do."""


def _flag(setting: FlagSetting) -> FlagState:
    return setting.as_state()


def _exposure_label(flags: dict[str, FlagState]) -> str:
    return ", ".join(f"{name} {state.label()}" for name, state in flags.items())


def _short_exposure(flags: dict[str, FlagState]) -> str:
    """A phase's exposure in a few cells: "25%", or "50%/100%" when its flags differ."""
    return "/".join(dict.fromkeys(state.label() for state in flags.values())) or "no flags"


class Engine:
    def __init__(
        self,
        plan: Plan,
        store: Store,
        provider: FlagProvider,
        sources: dict[str, Source],
        clock: Clock,
        *,
        actor: Actor,
        automation: bool = True,
        readonly: bool = False,
        dry_run_steps: bool = False,
        backfill: bool = True,
        announce: bool = True,
    ):
        self.plan = plan
        self.store = store
        self.provider = provider
        self.sources = sources
        self.clock = clock
        self.actor = actor
        self.want_automation = automation and not readonly
        self.readonly = readonly
        self.dry_run_steps = dry_run_steps
        self.want_backfill = backfill
        # One-shot CLI verbs do not journal console start/stop: only what they change.
        self.announce = announce
        self.holder = f"{actor.user}@{socket.gethostname()} pid {os.getpid()}"
        # Owner of the actions this engine starts: nobody else finishes them while it lives.
        self.owner = Owner.this_process()
        self.heartbeat: asyncio.Task | None = None
        self.has_lease = False
        self.driver = ""

        self.version = 0
        self.st: dict[str, Any] = {}
        self.started_at = clock.now()

        # Panes, guardrails and gates all resolve to queries; each distinct query is asked once a tick.
        self.pane_keys = {p.id: (p.source or plan.default_source(), p.query, p.series_label) for p in plan.panes}
        self.trackers: list[tuple[GuardrailTracker, QueryKey]] = []
        for i in range(len(plan.guardrails)):
            tracker = GuardrailTracker.of(plan, i, self.pane_keys.__getitem__)
            self.trackers.append((tracker, tracker.queries.main))
        self.keys: list[QueryKey] = list(dict.fromkeys(list(self.pane_keys.values()) + [k for t, _ in self.trackers for k in t.queries.all()]))
        self.gate_queries = [[ConditionQueries.of(plan, gate, self.pane_keys.__getitem__) for gate in phase.gates] for phase in plan.phases]
        # Cohort guardrails and gates, and the exposure check, ask more than one query each.
        self.exposure = Exposure(plan, plan.exposure) if plan.exposure else None
        # Whose percentage says how many users are on the new code (what a comparison can judge).
        self.cohort_flag = self.exposure.flag if self.exposure else (driving_flag(plan) or "")
        self.exposure_view: ExposureView | None = None
        for key in [k for phase in self.gate_queries for q in phase for k in q.all()] + list(self.exposure.keys.values() if self.exposure else []):
            if key not in self.keys:
                self.keys.append(key)

        self.readings: dict[QueryKey, Reading] = {}
        self.last_good: dict[QueryKey, float] = {}
        self.history: dict[str, collections.deque] = {p.id: collections.deque(maxlen=HISTORY) for p in plan.panes}
        self.inflight: dict[QueryKey, asyncio.Task] = {}
        self.asked_at: dict[QueryKey, float] = {}  # when each in-flight query was asked
        # Sparkline history from the sources, fetched in the background after start.
        self.backfill_task: asyncio.Task | None = None
        self.source_down: dict[str, str] = {}
        self.observed: dict[str, FlagState | None] = {}
        self.flag_errors: dict[str, str] = {}
        self.guard_views: list[GuardrailView] = []
        self.tasks: dict[str, asyncio.Task] = {}  # action id -> running task
        self.attempts: dict[str, tuple[int, str]] = {}  # action id -> (attempt, last error)
        self.tick_count = 0
        self.snapshot: Snapshot | None = None
        self.snapshot_listeners: list[Callable[[Snapshot], None]] = []
        self.entry_listeners: list[Callable[[JournalEntry], None]] = []
        # Awaited by close() before sources shut: background work fed by the listeners
        # (notification delivery) gets to finish what it was given.
        self.close_hooks: list[Callable[[], Awaitable[None]]] = []
        # Called at the end of start(), on the engine's loop, before the first tick: parts
        # outside the engine (a drill) journal their beginning where notifications can go out.
        self.start_hooks: list[Callable[[], None]] = []
        # phase → the plan's own soak, where a drill shortened it (the banner says so).
        self.planned_holds: dict[int, float] = {}
        self._closed = False

    # ================================================================ state

    def _default_state(self) -> dict[str, Any]:
        return {
            "state": State.PENDING.value,
            "phase": 0,
            "phase_started_at": None,
            "desired": {},
            "ticked": {},
            "paused_reason": "",
            "drift": {},
            "started_at": None,
            "action": None,
        }

    def _reload(self) -> None:
        version = self.store.state_version()
        if version != self.version or not self.st:
            self.version, body = self.store.load_state()
            self.st = {**self._default_state(), **body}

    @property
    def state(self) -> State:
        return State(self.st["state"])

    @property
    def phase_index(self) -> int:
        return int(self.st["phase"])

    def desired(self) -> dict[str, FlagState]:
        return {name: FlagState.from_json(data) for name, data in self.st["desired"].items()}

    def _commit(
        self,
        entries: list[Entry],
        state: dict[str, Any] | None = None,
        *,
        action_id: str | None = None,
        new_action: tuple[str, dict] | None = None,
        action_status: str | None = None,
        action_progress: dict | None = None,
    ) -> list[JournalEntry]:
        """Commit journal entries with a state change; refused if another process moved first."""
        written, version = self.store.commit(
            self.clock.now(),
            self._rows(entries),
            state,
            action_id=action_id,
            new_action=new_action,
            action_status=action_status,
            action_progress=action_progress,
            expected_version=self.version if state is not None else None,
            owner=self._owner_claim(action_id),
        )
        self._committed(written, version, state)
        return written

    def _transition(self, change: Callable[[dict[str, Any]], tuple[dict[str, Any] | None, list[Entry]]],
                    **action: Any) -> dict[str, Any]:
        """Commit a state change computed from the current state, whatever another process did meanwhile.

        `change` gets the state as it is now and returns the next one (None: unchanged) with
        the journal entries; transitions.Refused from it commits nothing and propagates.
        """
        def rows(current: dict[str, Any]) -> tuple[dict[str, Any] | None, list]:
            state, entries = change({**self._default_state(), **current})
            return state, self._rows(entries)

        written, version, state = self.store.transition(self.clock.now(), rows, owner=self._owner_claim(action.get("action_id")), **action)
        self._committed(written, version, state)
        return self.st

    def _rows(self, entries: list[Entry]) -> list[tuple[str, str, str, dict]]:
        rows = []
        for kind, message, actor, data in entries:
            who = actor.to_json()
            if actor.automatic:
                who["driver"] = self.holder  # which console's automation decided: user@host pid N
            rows.append((kind, message, actor.label(), {**data, "actor": who}))
        return rows

    def _owner_claim(self, action_id: str | None) -> tuple[str, float] | None:
        """What an action-scoped commit records (a new action) or proves (an existing one): we own it."""
        return (self.owner.to_json(), time.time() + ACTION_TTL) if action_id else None

    def _committed(self, written: list[JournalEntry], version: int | None, state: dict[str, Any] | None) -> None:
        if version is not None and state is not None:
            self.version, self.st = version, {**self._default_state(), **state}
        for entry in written:
            for listener in self.entry_listeners:
                listener(entry)

    def _command_commit(self, entries: list[tuple[str, str, Actor, dict]], state: dict[str, Any], **kw: Any) -> None:
        """Commit a human command; refused if another process changed the rollout meanwhile."""
        try:
            self._commit(entries, state, **kw)
        except StaleState:
            raise CommandError("the rollout changed under you (another console acted); look again and retry") from None

    def _journal(self, kind: str, message: str, actor: Actor = AUTOMATIC, data: dict | None = None, action_id: str | None = None) -> None:
        self._commit([(kind, message, actor, data or {})], action_id=action_id)

    def record(self, kind: str, message: str, data: dict | None = None) -> None:
        """Journal an entry for a part outside the engine (drills, notifications): no state change, listeners told."""
        self._journal(kind, message, AUTOMATIC, data)

    def _new_state(self, **changes: Any) -> dict[str, Any]:
        return {**self.st, **changes}

    # ================================================================ lifecycle

    async def start(self) -> None:
        """Load state, take the automation lease if free, finish what a dead console left."""
        self._reload()
        await self._read_flags()
        if not self.st.get("started_at"):
            self._initialise()
        if not self.readonly:
            self.store.save_plan(self.clock.now(), self.plan.journal_copy())
        self._refresh_lease()
        mode = "read-only" if self.readonly else ("driving" if self.has_lease else f"observing ({self.driver} drives)")
        if self.announce:
            self._journal("console.start", f"console started by {self.actor.label()}, {mode}", self.actor,
                      {"readonly": self.readonly, "automation": self.has_lease})
        if self.has_lease:
            await self._recover()
        if self.want_backfill:
            # In the background: a slow server must not hold back the first tick, nor a
            # rollback key pressed in the first seconds (commands wait for start()).
            self.backfill_task = asyncio.ensure_future(self._backfill())
        for hook in self.start_hooks:
            hook()

    def _initialise(self) -> None:
        """A new rollout. Flags that already read exposed mean a lost or emptied state file over
        a live launch (or another launch's flags): paused, nothing steps up or down by itself."""
        exposed = {n: s for n in self.plan.flag_names() if (s := self.observed.get(n)) is not None and s.exposure > 0}
        reason = ""
        entries: list[Entry] = [("console.init", f"rollout {self.plan.rollout.name} initialised", self.actor, {})]
        if exposed:
            reason = (f"drift at start: {_exposure_label(exposed)} already exposed, but this state file records no rollout "
                      "(new, emptied or lost). Nothing steps by itself: if the launch is live, `warroom ack PLAN` (key a) "
                      "adopts the flags as they are; `warroom rollback PLAN` (key R) turns them off")
            entries.append(("drift.detected", f"DRIFT {reason.removeprefix('drift ')}", AUTOMATIC,
                            {"flags": {n: v.to_json() for n, v in exposed.items()}}))
        exposed_json = {n: v.to_json() for n, v in exposed.items()}

        def change(current: dict[str, Any]) -> tuple[dict[str, Any], list[Entry]]:
            return transitions.initialise(current, now=self.clock.now(), exposed=exposed_json, reason=reason), entries

        try:
            self._transition(change)
        except transitions.Refused:  # another process initialised it first
            self._reload()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in [*self.inflight.values(), *self.tasks.values(), *filter(None, [self.backfill_task, self.heartbeat])]:
            task.cancel()
        for task in list(self.tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.owner.retire()
        with contextlib.suppress(Exception):
            # Closing is provably gone: unfinished actions are for the next process to finish, now.
            self.store.renew_actions(self.owner.to_json(), 0.0)
        with contextlib.suppress(Exception):
            if self.announce:
                self._journal("console.stop", f"console of {self.actor.label()} stopped", self.actor)
            if self.has_lease:
                self.store.release_lease(LEASE, self.holder)
        for hook in self.close_hooks:
            with contextlib.suppress(Exception):
                await hook()
        for source in self.sources.values():
            with contextlib.suppress(Exception):
                await source.close()
        with contextlib.suppress(Exception):
            await self.provider.close()

    def _refresh_lease(self) -> None:
        # Only one process acts on guardrails for a rollout; leases use wall time because
        # they are shared between processes whose clocks may run fast.
        now = time.time()
        holder = self.store.lease_holder(LEASE, now)
        if holder and holder != self.holder and _dead_local_holder(holder):
            # A console on this host that was killed cannot renew; don't wait out its lease.
            self.store.release_lease(LEASE, holder)
            holder = ""
        if not self.want_automation:
            self.has_lease, self.driver = False, holder
            return
        ttl = max(15.0, 3 * self.plan.poll_interval / max(self.clock.speed, 1.0))
        self.driver = self.store.acquire_lease(LEASE, self.holder, ttl, now)
        self.has_lease = self.driver == self.holder

    async def run(self, stop: asyncio.Event, after_tick: Callable[[Snapshot], Awaitable[None]] | None = None) -> None:
        """Tick every poll_interval of clock time until `stop` is set.

        `after_tick` runs between ticks, awaited, the way a human acts between frames;
        a drill's scripted responder uses it so its timing is the same on every run.
        """
        while not stop.is_set():
            started = self.clock.now()
            snap = await self.tick()
            if after_tick is not None and not stop.is_set():
                await after_tick(snap)
            if stop.is_set():
                break
            delay = self.plan.poll_interval - (self.clock.now() - started)
            if delay > 0:
                sleeper = asyncio.ensure_future(self.clock.sleep(delay))
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
                for t in (sleeper, stopper):
                    t.cancel()
            else:
                await asyncio.sleep(0)

    async def probe(self) -> tuple[list[tuple[QueryKey, str | None, Reading]], dict[str, FlagState | str | None]]:
        """Ask every query and read every flag once, for `warroom check`.

        Returns (key, problem found without asking, reading) per query, and per flag its
        observed state, None (not created yet) or the error text.
        """
        self._reload()
        ctx = self._context(self.clock.now())
        readings = await asyncio.gather(*(self._query(key, ctx) for key in self.keys))
        queries = [(key, self.sources[key[0]].static_problem(key[1]), r) for key, r in zip(self.keys, readings)]
        await self._read_flags()
        flags = {n: self.flag_errors.get(n) or self.observed.get(n) for n in self.plan.flag_names()}
        return queries, flags

    async def wait_idle(self) -> None:
        """Wait until no action (step up, rollback) is executing in this process."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks.values()), return_exceptions=True)

    # ================================================================ the tick

    def _context(self, now: float) -> SourceContext:
        flags = {n: s for n, s in self.observed.items() if s is not None}
        return SourceContext(now=now, started_at=self.started_at, phase=self.phase_index,
                             phase_started_at=self.st.get("phase_started_at"),
                             exposure={n: s.exposure for n, s in flags.items()}, flags=flags)

    async def _query(self, key: QueryKey, ctx: SourceContext) -> Reading:
        source, query, label = key
        try:
            return await self.sources[source].query(query, ctx, label)
        except Exception as exc:  # a source must not raise; if one does, it is a source error, not a crash
            return Reading.error(redact(f"{type(exc).__name__}: {exc}"))

    async def _poll(self, now: float) -> None:
        ctx = self._context(now)
        for key in self.keys:
            if key not in self.inflight:
                self.inflight[key] = asyncio.ensure_future(self._query(key, ctx))
                self.asked_at[key] = now
        # A slow query keeps running into the next tick; its pane shows stale meanwhile.
        budget = 10.0 if self.clock.speed == float("inf") else max(0.2, 0.8 * self.plan.poll_interval / self.clock.speed)
        if self.inflight:
            await asyncio.wait(list(self.inflight.values()), timeout=budget)
        for key, task in list(self.inflight.items()):
            if task.done():
                del self.inflight[key]
                self.readings[key] = task.result()
                if self.readings[key].has_value:
                    self.last_good[key] = now
        self._journal_source_health()

    def _journal_source_health(self) -> None:
        down: dict[str, str] = {}
        for (source, query, _), reading in self.readings.items():
            if reading.status == "error" and source not in down:
                down[source] = reading.detail
        if not self.has_lease:
            self.source_down = down
            return
        for source, detail in down.items():
            if source not in self.source_down:
                self._journal("source.error", f"source {source}: {detail}", data={"source": source, "detail": detail})
        for source in self.source_down:
            if source not in down:
                self._journal("source.recovered", f"source {source} answers again", data={"source": source})
        self.source_down = down

    async def _read_flags(self) -> None:
        try:
            results = await self.provider.read_many(self.plan.flag_names())
        except Exception as exc:  # a provider must not raise here; if one does, every flag is unreadable
            reason = redact(f"{type(exc).__name__}: {exc}")
            results = {n: FlagError(reason) for n in self.plan.flag_names()}
        for name, result in results.items():
            if isinstance(result, FlagError):
                self.flag_errors[name] = result.reason
            else:
                self.observed[name] = result
                self.flag_errors.pop(name, None)

    async def tick(self) -> Snapshot:
        """One evaluation: poll, judge guardrails and gates, act if ours to act, publish."""
        self._reload()
        self._refresh_lease()
        now = self.clock.now()
        await asyncio.gather(self._poll(now), self._read_flags())
        self.tick_count += 1
        samples: dict[str, float | None] = {}
        for pane in self.plan.panes:
            reading = self.readings.get(self.pane_keys[pane.id])
            value = reading.value if reading is not None and reading.has_value else None
            self.history[pane.id].append(value)
            samples[pane.id] = value
        if self.has_lease:
            self.store.record_samples(now, samples)
        await self._evaluate_guardrails(now)
        self._check_exposure(now)
        if self.has_lease:
            await self._recover()  # an action whose owner is provably gone is ours to finish
            await self._reassert_rollback()
            self._check_drift()
            await self._auto_step()
        return self.publish()

    async def _evaluate_guardrails(self, now: float) -> None:
        views = []
        looks = self._looks()
        for tracker, key in self.trackers:
            # Asked for each guardrail: one that fired may have rolled back, leaving no cohort to compare.
            verdict = tracker.evaluate(self.readings, now, looks, self._planned_share())
            views.append(verdict.view)
            if not self.has_lease:
                continue
            g = tracker.guard
            if verdict.lacking:
                self._journal("guardrail.evidence", f"{tracker.id}: {verdict.view.detail}; no verdict, `no_data: {g.no_data}` applies",
                              data={"guardrail": tracker.id, "detail": verdict.view.detail, "no_data": g.no_data})
            if g.mode == "shadow":  # journaled when its window is met, never acted on
                if verdict.fire:
                    self._journal("guardrail.shadow", shadow_message(tracker, verdict.view),
                                  data={**why_data(verdict.view, key), "window_met_at": now})
                continue
            reason = self._why(verdict.view, key)
            if verdict.started and g.for_ > 0:  # a value or, with `no_data: breach`, no data
                self._journal("guardrail.breach", f"{tracker.id}: {reason}; acting after {format_duration(g.for_)} if it holds", data=why_data(verdict.view, key))
            if verdict.cleared and not verdict.fire:
                self._journal("guardrail.clear", f"{tracker.id} back within threshold", data={"guardrail": tracker.id, "value": verdict.view.value})
            if verdict.fire:
                await self._fire(tracker, verdict.view, key, reason, now)
        self.guard_views = views

    def _why(self, view: GuardrailView, key: QueryKey) -> str:
        return why(view)

    def _check_exposure(self, now: float) -> None:
        """The exposure check on this tick's readings; a change between match and mismatch is journaled."""
        if self.exposure is None:
            return
        started = self.st.get("phase_started_at")
        age = None if self.phase_index < 1 or started is None else max(0.0, now - started)
        view = self.exposure_view = self.exposure.view(self.readings, self.desired().get(self.exposure.flag), age)
        news = self.exposure.news(view)
        if self.has_lease and news is not None:
            kind, message, data = news
            self._journal(kind, message, data=data)

    def _planned_share(self) -> float:
        """The part of users the plan puts on the new code now (the cohort flag as warroom set it), 0..1."""
        if self.phase_index < 1 or self.state in (State.ROLLING_BACK, State.ROLLED_BACK):
            return 0.0
        state = self.desired().get(self.cohort_flag)
        return state.exposure if state is not None and state.enabled else 0.0

    def _looks(self) -> int:
        """How many times the current phase's soak judges a guardrail: a test's false-alarm rate is spread over them."""
        if self.phase_index < 1:
            return 1
        return max(1, int(self.plan.phases[self.phase_index - 1].hold // self.plan.poll_interval))

    async def _fire(self, tracker: GuardrailTracker, view: GuardrailView, key: QueryKey, why: str, now: float) -> None:
        g = tracker.guard
        data = why_data(view, key)
        data["window_met_at"] = now
        reason = f"guardrail {tracker.id}: {why} ({held(g)})"
        if g.action == "alert":
            self._journal("guardrail.alert", reason, data=data)
        elif g.action == "pause":
            if self.state == State.RUNNING:
                with contextlib.suppress(CommandError):
                    await self.pause(AUTOMATIC, reason, cause=data)
            else:
                self._journal("guardrail.fired", f"{reason}; would pause, state is {self.state.label}", data=data)
        elif g.action == "rollback":
            # PENDING with a step up in flight: the first phase's flags may be landing now.
            exposed = self.state in (State.RUNNING, State.PAUSED, State.COMPLETE) or bool(self.st.get("action"))
            if exposed and self.state != State.ROLLING_BACK:
                with contextlib.suppress(CommandError):
                    # In real time the tick only starts the rollback, so guardrails and samples keep
                    # going while flags retry. In virtual time I/O takes no time: the tick waits, or
                    # the clock would jump ahead of a flag write still in flight.
                    await self.rollback(AUTOMATIC, reason, cause=data, wait=self.clock.speed == float("inf"))
            else:
                self._journal("guardrail.fired", f"{reason}; no rollback, state is {self.state.label}", data=data)

    # ---------------------------------------------------------------- gates, blockers

    def _gate_views(self) -> list[GateView]:
        if self.phase_index < 1:
            return []
        views = []
        for gate, queries in zip(self.plan.phases[self.phase_index - 1].gates, self.gate_queries[self.phase_index - 1]):
            unit = self.plan.condition_unit(gate)
            judged = judge(gate, unit, queries, self.readings, self._looks(), self._planned_share())
            passed = True if judged.idle else None if judged.value is None else not judged.bad
            shown = judged.detail if judged.idle else judged.comparison.text if judged.comparison is not None and not judged.lacking else ""
            views.append(GateView(gate.label, judged.value, passed, judged.detail or ("" if judged.value is not None else "no data"), unit,
                                  gate.op, judged.limit if judged.limit is not None else gate.threshold, shown))
        return views

    def _exposure_gate(self) -> list[GateView]:
        """The exposure check as the gate every phase has without writing it (shown with the phase's gates)."""
        view = self.exposure_view
        if view is None or view.status == "idle":
            return []
        passed = {"ok": True, "mismatch": False, "none": False}.get(view.status)
        # "exposure 24.6% (plan 25%) ✓": the label says what the share is of, so it fits at 80 columns.
        return [GateView("exposure", view.observed, passed, view.text, "ratio", shown=view.text.removeprefix("cohort "))]

    def _ticked(self, phase: int | None = None) -> dict[str, str]:
        return self.st["ticked"].get(str(self.phase_index if phase is None else phase), {})

    def step_blockers(self, *, forced: bool = False) -> list[str]:
        """Why a step up is refused now. `forced` keeps only what even a force cannot override."""
        out: list[str] = []
        if self.readonly:
            return ["read-only console"]
        state = self.state
        if state not in (State.PENDING, State.RUNNING):
            hint = {State.PAUSED: "resume first", State.ROLLED_BACK: "use retry to start again"}.get(state, "")
            out.append(f"state is {state.label}" + (f": {hint}" if hint else ""))
        if self.st.get("action") or self.tasks:
            out.append("an action is still in flight")
        if self.st.get("drift"):
            out.append("flag drift not acknowledged")
        if forced or out:
            return out
        if self.phase_index >= 1:
            phase = self.plan.phases[self.phase_index - 1]
            left = phase.hold - (self.clock.now() - (self.st["phase_started_at"] or self.clock.now()))
            if left > 0:
                out.append(f"soak: {format_duration(left)} left of {format_duration(phase.hold)}")
            for gate in self._gate_views():
                if gate.passed is None:
                    out.append(f"gate {gate.label}: no data ({gate.detail})")
                elif not gate.passed:
                    out.append(f"gate {gate.label} is red ({gate.shown or format_value(gate.value, gate.unit)})")
            if self.exposure_view is not None and self.exposure_view.blocks:
                out.append(f"exposure: {self.exposure_view.text}")
            ticked = self._ticked()
            missing = [item.text for item, iid in zip(phase.checklist, phase.item_ids()) if item.required and iid not in ticked]
            if missing:
                out.append(f"checklist: {len(missing)} required item(s) not ticked: " + "; ".join(missing))
        for view in self.guard_views:
            if view.mode == "shadow":
                continue  # a shadow guardrail never acts, and holding a step up would be acting
            if view.status in ("pending", "breach"):
                out.append(f"guardrail {view.id} is breaching ({view.shown or format_value(view.value, view.unit)})")
            elif view.status == "nodata":
                out.append(f"guardrail {view.id} has no data ({view.detail})")
        return out

    # ================================================================ commands

    def _require_writable(self) -> None:
        if self.readonly:
            raise CommandError("read-only console: no action possible")

    def _target_flags(self, phase: int) -> dict[str, FlagState]:
        return {name: _flag(s) for name, s in self.plan.phases[phase - 1].flags.items()}

    def next_change(self) -> str:
        state = self.state
        if state == State.RUNNING and self.phase_index == len(self.plan.phases):
            return "complete the rollout (no flag change)"
        if state not in (State.PENDING, State.RUNNING):
            return ""
        target = self._target_flags(self.phase_index + 1)
        current = self.desired()
        parts = []
        for name, want in target.items():
            have = current.get(name) or self.observed.get(name)
            if have is None or not have.matches(want):  # a flag already there changes nothing: not listed
                parts.append(f"{name}: {have.label() if have else 'absent'} → {want.label()}")
        return f"phase {self.phase_index + 1}/{len(self.plan.phases)} {self.plan.phases[self.phase_index].name}: " + (
            ", ".join(parts) or "no flag change")

    async def step_up(self, actor: Actor, *, force: bool = False, reason: str = "", wait: bool = True) -> str:
        """Step up to the next phase; with `wait` return when its flags are confirmed (or it failed)."""
        self._require_writable()
        self._reload()
        hard = self.step_blockers(forced=True)
        if hard:
            raise CommandError("cannot step up: " + "; ".join(hard))
        soft = self.step_blockers()
        if soft and not force:
            raise CommandError("cannot step up: " + "; ".join(soft) + " (force with a reason to override)")
        if force and soft and not reason.strip():
            raise CommandError("a forced step up needs a reason")
        total = len(self.plan.phases)
        if self.state == State.RUNNING and self.phase_index == total:
            self._commit([("rollout.complete", f"rollout complete at phase {total}/{total}", actor, {"forced": bool(soft), "overridden": soft, "reason": reason})],
                         self._new_state(state=State.COMPLETE.value))
            return "rollout complete"
        target = self.phase_index + 1
        flags = self._target_flags(target)
        action_id = self.store.new_action_id()
        intent = {
            "from_phase": self.phase_index,
            "to_phase": target,
            "flags": {n: s.to_json() for n, s in flags.items()},
            "previous": {n: s.to_json() for n, s in self.desired().items()},
            "forced": bool(soft),
            "reason": reason,
            # Why it was allowed: the gates as they stood, and how long the phase had soaked.
            "gates": [{"gate": g.label, "value": g.value, "passed": g.passed} for g in self._gate_views()],
            "soaked": None if self.st["phase_started_at"] is None else self.clock.now() - self.st["phase_started_at"],
        }
        entries = []
        if soft:
            entries.append(("step.forced", f"FORCED step up by {actor.label()}: {reason}; overriding: " + "; ".join(soft), actor, {"overridden": soft, "reason": reason}))
        why = ""
        if actor.automatic and self.phase_index >= 1:
            phase = self.plan.phases[self.phase_index - 1]
            why = f" (automatic: soak {format_duration(phase.hold)} done, {len(intent['gates'])} gate(s) green, required items ticked)"
        entries.append(("step.intent", f"step up to phase {target}/{total} {self.plan.phases[target - 1].name}: {_exposure_label(flags)}{why}", actor, intent))
        self._command_commit(entries, self._new_state(action={"id": action_id, "kind": "step_up", "since": self.clock.now(), "target": _exposure_label(flags)}),
                             action_id=action_id, new_action=("step_up", intent))
        task = self._launch(action_id, self._execute_step(action_id, intent, actor))
        return await asyncio.shield(task) if wait else f"stepping up to phase {target}"

    def _launch(self, action_id: str, coro) -> asyncio.Task:
        """Run an action as its own task, so the tick loop never waits on one."""
        task = asyncio.ensure_future(self._owned(action_id, coro))
        self.tasks[action_id] = task
        task.add_done_callback(lambda t, a=action_id: self._finished(a, t))
        if self.heartbeat is None or self.heartbeat.done():
            self.heartbeat = asyncio.ensure_future(self._beat())
        return task

    async def _owned(self, action_id: str, coro) -> str:
        try:
            return await coro
        except ActionTaken:
            # Judged gone (a heartbeat that lapsed while this process stood still): the
            # process that took the action over finishes it; this one must not act again.
            self.attempts.pop(action_id, None)
            raise CommandError(f"another process took over action {action_id} (this one stood still too long); see the journal") from None

    def _finished(self, action_id: str, task: asyncio.Task) -> None:
        self.tasks.pop(action_id, None)
        if not task.cancelled():
            task.exception()  # a task nobody awaits (an automatic step up) reports through the journal

    async def _beat(self) -> None:
        """While this engine executes actions, renew its claim on them (wall time, like leases)."""
        while self.tasks:
            self.store.renew_actions(self.owner.to_json(), time.time() + ACTION_TTL)
            await asyncio.sleep(ACTION_TTL / 6)

    def _rolling_back(self) -> bool:
        self._reload()
        return self.state in (State.ROLLING_BACK, State.ROLLED_BACK)

    def _attempts_made(self, action_id: str, kind: str, name: str) -> int:
        """Attempts already journaled on a flag for this action (by a process that died), so numbers go on."""
        return max((e.data.get("attempt", 0) for e in self.store.entries(action_id=action_id)
                    if e.kind == f"{kind}.attempt" and e.data.get("flag") == name), default=0)

    async def _apply_flag(self, action_id: str, kind: str, name: str, desired: FlagState, attempts: int | None,
                          abandon: Callable[[], bool] | None = None, before: FlagState | None = None) -> FlagState | None:
        """Write one flag until a read-back confirms it; every failed attempt is journaled.

        `abandon` is asked before each retry: a step up stops retrying once a rollback took over.
        `before` is the flag as read when the action began.
        """
        delays = backoff_delays()
        attempt = self._attempts_made(action_id, kind, name)
        failed = False  # here, in this process: before a retry, read whether it is set already
        while attempts is None or attempt < attempts:
            if failed and abandon is not None and abandon():
                return None
            if failed and (seen := await self._already(name, desired)) is not None:
                self._journal(f"{kind}.attempt", f"{kind.replace('_', ' ')}: {name} {_why_already(seen, before, desired)}",
                              AUTOMATIC, {"flag": name, "attempt": attempt, "confirmed_by_read": True,
                                          "was_already": before is not None and before.matches(desired)}, action_id)
                self.observed[name] = seen
                return seen
            attempt += 1
            try:
                observed = await self.provider.write_verified(name, desired)
                self.observed[name] = observed
                return observed
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = exc.reason if isinstance(exc, FlagError) else redact(f"{type(exc).__name__}: {exc}")
                self.attempts[action_id] = (attempt, f"{name}: {reason}")
                self._journal(f"{kind}.attempt", f"{kind.replace('_', ' ')} attempt {attempt} on {name} failed: {reason}", AUTOMATIC,
                              {"flag": name, "attempt": attempt, "error": reason}, action_id)
                failed = True
                self.publish()
                if attempts is None or attempt < attempts:
                    await self.clock.sleep(next(delays))
        return None

    async def _already(self, name: str, desired: FlagState) -> FlagState | None:
        """The flag's observed state when it already is the desired one; None otherwise or unreadable."""
        try:
            seen = await self.provider.read(name)
        except Exception:  # the service is still down: the next write attempt says how
            return None
        return seen if seen is not None and seen.matches(desired) else None

    async def _execute_step(self, action_id: str, intent: dict, actor: Actor) -> str:
        target = intent["to_phase"]
        flags = {n: FlagState.from_json(d) for n, d in intent["flags"].items()}
        results = await asyncio.gather(*(self._apply_flag(action_id, "step", n, s, STEP_ATTEMPTS, self._rolling_back)
                                         for n, s in flags.items()))
        self.attempts.pop(action_id, None)
        confirmed = {n: r for n, r in zip(flags, results) if r is not None}
        try:
            if not self._rolling_back():
                if len(confirmed) == len(flags):
                    return self._commit_step_entered(action_id, target, confirmed, actor)
                self._commit_step_failed(action_id, target, confirmed, [n for n in flags if n not in confirmed])
        except transitions.Refused:
            pass  # a rollback committed after the check: it won
        return await self._abandon_step(action_id, target, confirmed)

    def _commit_step_entered(self, action_id: str, target: int, confirmed: dict[str, FlagState], actor: Actor) -> str:
        """The step's flags read back at target: the new phase, in whatever state the rollout is in now."""
        name = self.plan.phases[target - 1].name
        message = f"now at phase {target}/{len(self.plan.phases)} {name}; read back {_exposure_label(confirmed)}"
        data = {"observed": {n: r.to_json() for n, r in confirmed.items()}, "entered_phase": target}

        def change(current: dict[str, Any]) -> tuple[dict[str, Any], list[Entry]]:
            state = transitions.enter_phase(current, action_id=action_id, phase=target, now=self.clock.now(),
                                            flags={n: r.to_json() for n, r in confirmed.items()})
            paused = f"; stays PAUSED: {current['paused_reason']}" if state["state"] == State.PAUSED.value else ""
            return state, [("step.outcome", message + paused, actor, {**data, "stays_paused": bool(paused)})]

        self._transition(change, action_id=action_id, action_status="done")
        self.publish()
        if self.state == State.PAUSED:
            return f"stepped up to phase {target}; still PAUSED ({self.st['paused_reason']})"
        return f"stepped up to phase {target}"

    def _commit_step_failed(self, action_id: str, target: int, confirmed: dict[str, FlagState], failed: list[str]) -> None:
        reason = f"step up to phase {target} failed: {', '.join(failed)} not confirmed after {STEP_ATTEMPTS} attempts"

        def change(current: dict[str, Any]) -> tuple[dict[str, Any], list[Entry]]:
            state = transitions.step_failed(current, action_id=action_id, reason=reason,
                                            confirmed={n: r.to_json() for n, r in confirmed.items()})
            return state, [("step.outcome", reason + "; paused for a human", AUTOMATIC, {"failed": failed})]

        self._transition(change, action_id=action_id, action_status="failed")
        self.publish()
        raise CommandError(reason)

    async def _abandon_step(self, action_id: str, target: int, landed: dict[str, FlagState]) -> str:
        """A rollback took over: a write of ours that landed after the rollback's would leave the new
        code exposed under ROLLED BACK, so put those flags back to what the rollback set, until confirmed."""
        self._reload()
        rollback_flags = self.desired()
        late = [n for n in landed if n in rollback_flags and not self.observed[n].matches(rollback_flags[n])]
        undone = await asyncio.gather(*(self._apply_flag(action_id, "rollback", n, rollback_flags[n], None) for n in late))
        message = f"step up to phase {target} abandoned: a rollback took over"
        if late:
            message += f"; its late write was undone, read back {_exposure_label(dict(zip(late, undone)))}"  # type: ignore[arg-type]
        self._commit([("step.outcome", message, AUTOMATIC,
                       {"undone": {n: r.to_json() for n, r in zip(late, undone) if r is not None}})],
                     action_id=action_id, action_status="abandoned")
        self.publish()
        return "step up abandoned: rolled back meanwhile"

    async def rollback(self, actor: Actor, reason: str = "manual rollback", *, cause: dict | None = None, wait: bool = True) -> str:
        """Roll back; with `wait` return when the flags are confirmed and the runbook ran.

        The intent is committed (and a snapshot published) before this returns either way.
        Rolling back again when ROLLED BACK sets every flag that reads back exposed off again.
        """
        self._require_writable()
        self._reload()
        if self.state == State.ROLLED_BACK and self._rollback_not_done():
            return await self._reassert_rollback(actor, wait=wait) or "already rolled back"
        flags = {n: _flag(s) for n, s in self.plan.rollback_flags().items()}
        action_id = self.store.new_action_id()
        action = {"id": action_id, "kind": "rollback", "since": self.clock.now(), "target": _exposure_label(flags)}
        flags_json = {n: s.to_json() for n, s in flags.items()}
        intent: dict[str, Any] = {"flags": flags_json, "steps": len(self.plan.rollback.steps), "reason": reason, "cause": cause or {},
                                  "before": {n: s.to_json() for n in flags if (s := self.observed.get(n)) is not None}}

        def change(current: dict[str, Any]) -> tuple[dict[str, Any], list[Entry]]:
            # The rollback wins over anything in flight but another rollback: no version check.
            state = transitions.begin_rollback(current, action=action, flags=flags_json)
            # Where it rolls back from, as it stands inside the transaction (the action row gets it too).
            intent.update(from_state=current["state"], from_phase=int(current["phase"]))
            return state, [("rollback.intent", f"ROLLBACK by {actor.label()}: {reason}; flags → {_exposure_label(flags)}", actor, intent)]

        try:
            self._transition(change, action_id=action_id, new_action=("rollback", intent))
        except transitions.Refused as already:
            return "already rolling back" if str(already) == State.ROLLING_BACK.value else "already rolled back"
        self.publish()
        task = self._launch(action_id, self._execute_rollback(action_id, intent, {}))
        return await asyncio.shield(task) if wait else "rolling back"

    def _rollback_not_done(self) -> dict[str, FlagState]:
        """ROLLED BACK, and flags read back other than the rollback set them (a late write landed)."""
        if self.state != State.ROLLED_BACK:
            return {}
        exposed = {}
        for name, setting in self.plan.rollback_flags().items():
            seen = self.observed.get(name)
            if seen is not None and name not in self.flag_errors and not seen.matches(_flag(setting)):
                exposed[name] = seen
        return exposed

    async def _reassert_rollback(self, actor: Actor = AUTOMATIC, *, wait: bool | None = None) -> str | None:
        """A flag that reads back exposed after a rollback is a rollback not done: roll those flags back
        again (journaled, no human needed), ROLLING BACK until confirmed. None when nothing to do."""
        exposed = self._rollback_not_done()
        if not exposed or self.st.get("action") or self.tasks:
            return None
        flags = {n: _flag(self.plan.rollback_flags()[n]) for n in exposed}
        action_id = self.store.new_action_id()
        action = {"id": action_id, "kind": "rollback", "since": self.clock.now(), "target": _exposure_label(flags)}
        reason = f"{_exposure_label(exposed)} read back after the rollback: a late write landed, or someone set it"
        intent = {"flags": {n: s.to_json() for n, s in flags.items()}, "steps": 0, "runbook": False, "reason": reason,
                  "before": {n: s.to_json() for n, s in exposed.items()}, "from_state": State.ROLLED_BACK.value,
                  "from_phase": self.phase_index, "cause": {}}
        message = f"ROLLED BACK, but {reason}: the rollback is not done; flags → {_exposure_label(flags)} again"

        def change(current: dict[str, Any]) -> tuple[dict[str, Any], list[Entry]]:
            return transitions.begin_reassert(current, action=action), [("rollback.reassert", message, actor, intent)]

        try:
            self._transition(change, action_id=action_id, new_action=("rollback", intent))
        except transitions.Refused:
            return None  # another process acted first
        self.publish()
        task = self._launch(action_id, self._execute_rollback(action_id, intent, {}))
        if wait is None:
            wait = self.clock.speed == float("inf")  # as for a guardrail's rollback (see _fire)
        return await asyncio.shield(task) if wait else "rolling back again"

    async def _execute_rollback(self, action_id: str, intent: dict, progress: dict) -> str:
        flags = {n: FlagState.from_json(d) for n, d in intent["flags"].items()}
        before = {n: FlagState.from_json(d) for n, d in intent.get("before", {}).items()}
        if not progress.get("flags_confirmed"):
            results = await asyncio.gather(*(self._apply_flag(action_id, "rollback", n, s, None, before=before.get(n))
                                             for n, s in flags.items()))
            self.attempts.pop(action_id, None)
            progress = {"flags_confirmed": True, "steps_done": []}
            observed = {n: r.to_json() for n, r in zip(flags, results)}
            entry: Entry = ("rollback.confirmed", f"flags confirmed by read-back: {_exposure_label(dict(zip(flags, results)))}",
                            AUTOMATIC, {"observed": observed})
            self._transition(lambda current: (transitions.rollback_confirmed(current), [entry]),
                             action_id=action_id, action_progress=progress)
            self.publish()
        failures = await self._run_runbook(action_id, intent, progress) if intent.get("runbook", True) else []
        if intent.get("runbook", True):
            summary = "rolled back" + (f"; {len(failures)} runbook step(s) failed: {', '.join(failures)}" if failures else "")
        else:
            summary = "rolled back again: flags confirmed off (the runbook already ran)"
        outcome: Entry = ("rollback.outcome", summary, AUTOMATIC, {"failed_steps": failures})
        self._transition(lambda current: (transitions.action_finished(current, action_id=action_id), [outcome]),
                         action_id=action_id, action_status="done")
        self.publish()
        return summary

    async def _run_runbook(self, action_id: str, intent: dict, progress: dict) -> list[str]:
        """The rollback's runbook steps not done yet (a resumed rollback skips the done ones); the failed ones' names."""
        failures = []
        for index, step in enumerate(self.plan.rollback.steps):
            if index in progress.get("steps_done", []):
                continue
            context = {"rollout": self.plan.rollout.name, "environment": self.plan.rollout.environment,
                       "phase": intent.get("from_phase", 0), "reason": intent.get("reason", "")}
            result: StepResult = await run_step(step, context, dry_run=self.dry_run_steps)
            if not result.ok:
                failures.append(result.name)
            progress = {**progress, "steps_done": [*progress.get("steps_done", []), index]}
            self._commit([("rollback.step", f"step {index + 1} {result.name}: {result.summary}", AUTOMATIC,
                           {"step": index, "ok": result.ok, "dry_run": result.dry_run, "detail": result.detail})],
                         action_id=action_id, action_progress=progress)
        return failures

    async def pause(self, actor: Actor, reason: str = "", *, cause: dict | None = None) -> str:
        self._require_writable()
        self._reload()
        if self.state != State.RUNNING:
            raise CommandError(f"nothing to pause: state is {self.state.label}")
        reason = reason or f"paused by {actor.label()}"
        self._command_commit([("pause", f"PAUSED: {reason}", actor, {"reason": reason, "cause": cause or {}})],
                             self._new_state(state=State.PAUSED.value, paused_reason=reason))
        self.publish()
        return "paused"

    async def resume(self, actor: Actor) -> str:
        self._require_writable()
        self._reload()
        if self.state != State.PAUSED:
            raise CommandError(f"nothing to resume: state is {self.state.label}")
        if self.st.get("drift"):
            raise CommandError("flag drift is not acknowledged: ack it first (key a, or `warroom ack PLAN`)")
        self._command_commit([("resume", f"resumed by {actor.label()}", actor, {})],
                             self._new_state(state=State.RUNNING.value, paused_reason=""))
        self.publish()
        return "resumed"

    async def retry(self, actor: Actor) -> str:
        """Leave ROLLED_BACK deliberately: back to PENDING, flags stay as rolled back."""
        self._require_writable()
        self._reload()
        if self.state != State.ROLLED_BACK or self.st.get("action"):
            raise CommandError(f"retry leaves ROLLED BACK; state is {self.state.label}" + (" (rollback still finishing)" if self.st.get("action") else ""))
        self._command_commit([("retry", f"{actor.label()} starts the rollout again from the beginning", actor, {})],
                             self._new_state(state=State.PENDING.value, phase=0, phase_started_at=None, ticked={}, paused_reason=""))
        self.publish()
        return "ready to start again: step up to enter phase 1"

    async def tick_item(self, actor: Actor, item: str, ticked: bool = True) -> str:
        self._require_writable()
        self._reload()
        if self.phase_index < 1:
            raise CommandError("no phase is running yet: step up into phase 1 first")
        phase = self.plan.phases[self.phase_index - 1]
        try:
            item = phase.find_item(item)
        except LookupError as exc:
            raise CommandError(f"phase {self.phase_index}: {exc.args[0]}") from None
        text = phase.checklist[phase.item_ids().index(item)].text
        all_ticked = dict(self.st["ticked"])
        current = dict(all_ticked.get(str(self.phase_index), {}))
        if ticked:
            current[item] = actor.label()
        else:
            current.pop(item, None)
        all_ticked[str(self.phase_index)] = current
        verb = "ticked" if ticked else "unticked"
        self._command_commit([(f"checklist.{verb[:-2]}", f"{verb}: {text}", actor, {"item": item, "phase": self.phase_index})],
                             self._new_state(ticked=all_ticked))
        self.publish()
        return f"{verb}: {text}"

    async def ack_drift(self, actor: Actor) -> str:
        """Accept the observed flag states as the new truth and let automation go on."""
        self._require_writable()
        self._reload()
        drift = self.st.get("drift") or {}
        if not drift:
            raise CommandError("no flag drift to acknowledge")
        desired = {**self.st["desired"], **drift}
        resume = self.state == State.PAUSED and self.st.get("paused_reason", "").startswith("drift")
        changes: dict[str, Any] = {"desired": desired, "drift": {}}
        message = f"{actor.label()} acknowledged drift on {', '.join(drift)}; observed state accepted"
        if self.phase_index == 0:
            # Exposed before any step (a lost state file over a live launch): the phase these
            # flags are at, or no automatic step at all, never one down to phase 1.
            found = self._phase_matching({n: s for n, s in self.observed.items() if s is not None})
            if found:
                changes.update(phase=found, phase_started_at=self.clock.now(), desired={**desired, **self._cumulative_flags(found)})
                message += f"; the flags are those of phase {found}/{len(self.plan.phases)} {self.plan.phases[found - 1].name}: now at it"
            else:
                resume = False
                changes["paused_reason"] = ("flags acknowledged as they are, but they match no phase of the plan: "
                                            "resume to step on from phase 0, or roll back")
                message += "; they match no phase: still paused"
        if resume:
            changes.update(state=State.RUNNING.value, paused_reason="")
        self._command_commit([("drift.ack", message, actor, {"flags": drift, "phase": changes.get("phase", self.phase_index)})],
                             self._new_state(**changes))
        self.publish()
        return "drift acknowledged" + ("; resumed" if resume else "") + (f" at phase {changes['phase']}" if "phase" in changes else "")

    def _cumulative_flags(self, phase: int) -> dict[str, Any]:
        """Every flag as phases 1..phase leave it (a phase sets only the flags it names)."""
        flags: dict[str, Any] = {}
        for index in range(1, phase + 1):
            flags.update({n: s.to_json() for n, s in self._target_flags(index).items()})
        return flags

    def _phase_matching(self, observed: dict[str, FlagState]) -> int | None:
        """The furthest phase whose exposure is exactly what the flags read, if any."""
        off = FlagState(False, 0.0)
        found = None
        for index in range(1, len(self.plan.phases) + 1):
            wanted = {n: FlagState.from_json(d) for n, d in self._cumulative_flags(index).items()}
            if all((observed.get(n) or off).matches(wanted.get(n, off)) for n in self.plan.flag_names()):
                found = index
        return found

    # ================================================================ automation

    def _check_drift(self) -> None:
        if self.state == State.PENDING or self.st.get("action") or self.tasks:
            return
        desired = self.desired()
        recorded = self.st.get("drift") or {}
        new = {}
        for name, want in desired.items():
            have = self.observed.get(name)
            if name in self.flag_errors or have is None:
                continue
            if not have.matches(want) and recorded.get(name) != have.to_json():
                new[name] = have.to_json()
        if not new:
            return
        text = ", ".join(f"{n} is {FlagState.from_json(s).label()} (warroom set {desired[n].label()})" for n, s in new.items())
        changes: dict[str, Any] = {"drift": {**recorded, **new}}
        if self.state == State.RUNNING:
            changes.update(state=State.PAUSED.value, paused_reason=f"drift: {text}")
        with contextlib.suppress(StaleState):
            self._commit([("drift.detected", f"DRIFT: {text}; changed outside warroom, automation paused until acknowledged", AUTOMATIC, {"flags": new})],
                         self._new_state(**changes))

    async def _auto_step(self) -> None:
        if self.plan.automation.step_up != "auto" or self.state not in (State.PENDING, State.RUNNING):
            return
        if not self.step_blockers():
            with contextlib.suppress(CommandError):
                # In real time the tick only starts the step: guardrails keep being judged every
                # tick while its flag writes wait on a slow API. Virtual time waits (see _fire).
                await self.step_up(AUTOMATIC, wait=self.clock.speed == float("inf"))

    async def recover_orphans(self) -> str:
        """For one-shot verbs, when no live process drives: finish what a gone process left.

        That is an action whose owner is provably gone, and a rollback that is not done
        (a flag reads back exposed under ROLLED BACK). Returns what was done ("": nothing).
        """
        if self.readonly or self.driver or not (self._orphans() or self._rollback_not_done()):
            return ""
        self.want_automation = True
        self._refresh_lease()
        try:
            if not self.has_lease:
                return ""
            await self._read_flags()
            adopted = await self._recover()
            await self.wait_idle()
            self._reload()
            reasserted = await self._reassert_rollback(wait=True)
            if reasserted:
                return "set flags back off: they read back exposed after the rollback (see the journal)"
            return "finished an action a stopped console had left unfinished (see the journal)" if adopted else ""
        finally:
            self.store.release_lease(LEASE, self.holder)
            self.want_automation = self.has_lease = False

    def _orphans(self) -> list[dict[str, Any]]:
        """Pending actions that no live process will finish: their owner is provably gone, or it is us
        with no task running them."""
        now = time.time()
        mine = self.owner.to_json()
        return [a for a in self.store.pending_actions() if a["id"] not in self.tasks
                and (a["owner"] == mine or may_adopt(Owner.from_json(a["owner"]), a["owner_expires"], now))]

    async def _recover(self) -> int:
        """Finish what a process that is gone left mid-action; returns how many actions were taken over."""
        adopted = 0
        for action in self._orphans():
            aid, intent = action["id"], action["intent"]
            # Two processes may judge the same owner gone at once: only one takes the action over.
            if not self.store.adopt_action(aid, action["owner"], self.owner.to_json(), time.time() + ACTION_TTL):
                continue
            adopted += 1
            gone = Owner.from_json(action["owner"])
            if action["kind"] == "rollback":
                left_by = f"left by {gone.label()}, which is gone" if gone else "after a restart"
                self._journal("rollback.resume", f"resuming an unfinished rollback {left_by}", AUTOMATIC,
                              {"progress": action["progress"], "previous_owner": gone.label() if gone else None}, aid)
                self._launch(aid, self._execute_rollback(aid, intent, action["progress"]))
            elif action["kind"] == "step_up":
                self._reconcile_step(aid, intent)
        return adopted

    def _reconcile_step(self, aid: str, intent: dict) -> None:
        target = {n: FlagState.from_json(d) for n, d in intent["flags"].items()}
        previous = {n: FlagState.from_json(d) for n, d in intent["previous"].items()}
        observed = {n: self.observed.get(n) for n in target}
        if any(v is None for v in observed.values()):
            detail = "flags could not be read back"
            outcome, status, changes = f"interrupted step up to phase {intent['to_phase']}: {detail}; paused", "failed", {
                "state": State.PAUSED.value, "paused_reason": f"interrupted step up: {detail}"}
        elif all(observed[n].matches(s) for n, s in target.items()):  # type: ignore[union-attr]
            outcome, status, changes = f"interrupted step up to phase {intent['to_phase']} had completed (flags read back at target)", "done", {}
        elif all(observed[n].matches(previous[n]) for n in target if n in previous) and len(previous) >= len(target):
            outcome, status, changes = f"interrupted step up to phase {intent['to_phase']} never reached the flags; still at phase {intent['from_phase']}", "abandoned", {}
        else:
            outcome, status = f"interrupted step up to phase {intent['to_phase']} left flags mixed: {_exposure_label({n: v for n, v in observed.items() if v})}; paused", "failed"
            changes = {"state": State.PAUSED.value, "paused_reason": "interrupted step up left flags mixed: check and ack"}
        data: dict[str, Any] = {"observed": {n: v.to_json() for n, v in observed.items() if v}}
        if status == "done":
            data["entered_phase"] = intent["to_phase"]

        def change(current: dict[str, Any]) -> tuple[dict[str, Any], list[Entry]]:
            if current["state"] in transitions.ROLLBACK_STATES:  # a rollback took over: it owns the flags now
                entry = ("step.outcome", outcome + "; a rollback took over", AUTOMATIC, {"observed": data["observed"]})
                return transitions.action_finished(current, action_id=aid), [entry]
            if status == "done":
                state = transitions.enter_phase(current, action_id=aid, phase=intent["to_phase"], flags=intent["flags"], now=self.clock.now())
            else:
                state = transitions.action_finished(current, action_id=aid, **changes)
            return state, [("step.outcome", outcome, AUTOMATIC, data)]

        self._transition(change, action_id=aid, action_status=status)

    async def _backfill(self) -> None:
        """Each pane's recent history from its source (range queries), all panes at once.

        The span is the source's `backfill` setting, at most what a sparkline holds; the
        points go before whatever live samples the ticks added meanwhile.
        """
        now = self.clock.now()
        step = self.plan.poll_interval

        async def fetch(pane_id: str) -> tuple[str, list[tuple[float, float]]]:
            source, query, _ = self.pane_keys[pane_id]
            span = min(self.sources[source].backfill_span, HISTORY * step)
            if span <= 0:
                return pane_id, []
            try:
                return pane_id, await self.sources[source].backfill(query, now - span, now, step)
            except Exception:  # history is a nicety; the live query reports any problem
                return pane_id, []

        for pane_id, points in await asyncio.gather(*(fetch(p.id) for p in self.plan.panes)):
            if points:
                live = list(self.history[pane_id])
                self.history[pane_id] = collections.deque([v for _, v in points] + live, maxlen=HISTORY)

    # ================================================================ snapshot

    def _pane_views(self, now: float) -> list[PaneView]:
        watching: dict[str, list[GuardrailView]] = collections.defaultdict(list)
        notes: dict[str, list[tuple[GuardrailTracker, GuardrailView]]] = collections.defaultdict(list)
        for view, (tracker, _) in zip(self.guard_views, self.trackers):
            if tracker.guard.pane:
                notes[tracker.guard.pane].append((tracker, view))
                if tracker.guard.mode != "shadow":  # a shadow guardrail never turns a pane red
                    watching[tracker.guard.pane].append(view)
        views = []
        for pane in self.plan.panes:
            key = self.pane_keys[pane.id]
            reading = self.readings.get(key)
            last = self.last_good.get(key)
            value = reading.value if reading is not None and reading.has_value else None
            detail = reading.detail if reading is not None else "waiting for the first sample"
            asked = self.asked_at.get(key) if key in self.inflight else None
            if value is not None and asked is not None and now - asked >= self.plan.poll_interval:
                # A whole poll interval without an answer: the number on screen is an old one.
                status = "stale"
                detail = f"waiting for a slow answer (asked {format_duration(now - asked)} ago)"
            elif value is None:
                status = "stale" if last is not None else "nodata"
                history = [v for v in self.history[pane.id] if v is not None]
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
                history=tuple(self.history[pane.id]), last_good_at=last,
                age=None if last is None else max(0.0, now - last),
                guardrails=tuple(g.id for g in guards),
                for_progress=max(breaching) if breaching else None,
                series=reading.series if reading is not None else (),
                note=pane_note(notes.get(pane.id, [])),
            ))
        return views

    def _phase_view(self, now: float) -> PhaseView | None:
        if self.phase_index < 1:
            return None
        phase = self.plan.phases[self.phase_index - 1]
        started = self.st["phase_started_at"]
        elapsed = 0.0 if started is None else max(0.0, now - started)
        ticked = self._ticked()
        items = tuple(
            ChecklistView(iid, item.text, item.required, iid in ticked, ticked.get(iid, ""))
            for iid, item in zip(phase.item_ids(), phase.checklist)
        )
        flags = self._target_flags(self.phase_index)
        return PhaseView(self.phase_index, phase.name, _exposure_label(flags), phase.hold, started, elapsed,
                         max(0.0, phase.hold - elapsed), tuple(self._gate_views() + self._exposure_gate()), items,
                         self.planned_holds.get(self.phase_index))

    def _rollback_view(self, journal: list[JournalEntry]) -> RollbackView | None:
        """The newest rollback from the journal's tail (None once it scrolled out of it)."""
        intent = next((e for e in journal if e.kind == "rollback.intent"), None)
        if intent is None:
            return None
        mine = [e for e in reversed(journal) if e.action_id == intent.action_id]  # oldest first
        done = {e.data.get("step"): e for e in mine if e.kind == "rollback.step"}
        steps = []
        for index, step in enumerate(self.plan.rollback.steps):
            entry = done.get(index)
            if entry is None:
                steps.append(RunbookStepView(step_name(step), "pending"))
                continue
            status = "dry-run" if entry.data.get("dry_run") else ("ok" if entry.data.get("ok") else "failed")
            steps.append(RunbookStepView(step_name(step), status, entry.message.partition(": ")[2]))
        confirmed = next((e for e in mine if e.kind == "rollback.confirmed"), None)
        outcome = next((e for e in mine if e.kind == "rollback.outcome"), None)
        who = intent.data.get("actor") or {}
        return RollbackView(
            reason=str(intent.data.get("reason", "")), by="auto" if who.get("automatic") else intent.actor,
            started_at=intent.ts, from_phase=int(intent.data.get("from_phase") or 0), steps=tuple(steps),
            confirmed=_exposure_label({n: FlagState.from_json(d) for n, d in (confirmed.data.get("observed") or {}).items()}) if confirmed else "",
            confirmed_at=confirmed.ts if confirmed else None,
            outcome=outcome.message if outcome else "", finished_at=outcome.ts if outcome else None,
        )

    def publish(self) -> Snapshot:
        now = self.clock.now()
        not_done = self._rollback_not_done()
        desired = self.desired()
        drift = self.st.get("drift") or {}
        flags = tuple(
            FlagView(name, desired.get(name), self.observed.get(name), self.flag_errors.get(name, ""),
                     name in drift or (desired.get(name) is not None and self.observed.get(name) is not None
                                       and not self.st.get("action") and self.state != State.PENDING
                                       and not self.observed[name].matches(desired[name])))  # type: ignore[union-attr]
            for name in self.plan.flag_names()
        )
        action = None
        if self.st.get("action"):
            current = self.st["action"]
            attempt, error = self.attempts.get(current["id"], (0, ""))
            action = ActionView(current["id"], current["kind"], attempt, error, current.get("since", now), current.get("target", ""))
        journal = self.store.tail(JOURNAL_TAIL)
        rolled_back = self.state in (State.ROLLING_BACK, State.ROLLED_BACK)
        self.snapshot = Snapshot(
            rollout=self.plan.rollout.name,
            environment=self.plan.rollout.environment,
            description=self.plan.rollout.description,
            state=State.ROLLING_BACK if not_done else self.state,  # never ROLLED BACK over exposed flags
            phase=self._phase_view(now),
            phase_count=len(self.plan.phases),
            phase_names=tuple(p.name for p in self.plan.phases),
            next_change=self.next_change(),
            panes=tuple(self._pane_views(now)),
            guardrails=tuple(self.guard_views),
            flags=flags,
            journal=tuple(journal),
            action=action,
            step_blockers=tuple(self.step_blockers()),
            force_blockers=tuple(self.step_blockers(forced=True)),
            paused_reason=self.st.get("paused_reason", ""),
            drift=bool(drift),
            driver=self.driver,
            me=self.actor.label(),
            readonly=self.readonly,
            automation=self.has_lease,
            insecure=any(getattr(s, "insecure", False) for s in self.sources.values()),
            now=now,
            tick=self.tick_count,
            started_at=self.st.get("started_at"),
            notes=(f"rolled back, but {_exposure_label(not_done)} reads back: the rollback is not done; "
                   + ("setting it off again" if self.has_lease else "`warroom rollback PLAN` sets it off again"),) if not_done else (),
            exposure=self.exposure_view,
            phase_exposures=tuple(_short_exposure(self._target_flags(i + 1)) for i in range(len(self.plan.phases))),
            rollback=self._rollback_view(journal) if rolled_back else None,
            poll_interval=self.plan.poll_interval,
            wall=time.time(),
            clock_rate=0.0 if self.clock.speed == float("inf") else self.clock.speed,
        )
        for listener in self.snapshot_listeners:
            listener(self.snapshot)
        return self.snapshot


def _why_already(seen: FlagState, before: FlagState | None, desired: FlagState) -> str:
    """Why a flag reads back as wanted before another write: it simply was, or something set it."""
    if before is not None and before.matches(desired):
        return f"was already {seen.label()} before this action: confirmed by read-back, nothing to change"
    # A human set it by another road (the flag service's own UI while its API fails us),
    # or a write that seemed to fail landed: the read-back confirms it.
    return f"already reads back {seen.label()} (set outside warroom, or a failed attempt landed): confirmed without another write"


def _dead_local_holder(holder: str) -> bool:
    """True when a lease holder ("user@host pid N") is a process on this host that no longer exists."""
    who, _, pid = holder.rpartition(" pid ")
    if not pid.isdigit() or who.partition("@")[2] != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
