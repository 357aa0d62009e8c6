"""`warroom drill`: rehearse a plan against injected faults and score the response.

A drill runs the plan with environment DRILL in its own folder (state, journal and a
scratch flag file), so rehearsing never touches the real rollout's journal or flags.
Metric faults go into the simulator; flag-service faults wrap the flag provider; the
scripted responder acts between ticks; the score card is printed and journaled as
`drill.score` when the drill ends.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

from .client import engine_argv
from .clock import Clock, make_clock
from .engine.build import build_engine
from .engine.commands import dispatch
from .engine.engine import CommandError, Engine
from .engine.process import TERMINAL, RunOptions, serve_engine
from .flags.base import FlagError, FlagProvider
from .flagstate import FlagState
from .identity import Actor
from .paths import default_state_path, engine_log_path
from .plan import FlagProviderConfig, Plan, PrometheusSourceConfig, SimulatorSourceConfig
from .scenario import DEFAULT, ResponderAction, Scenario, TimelineEvent, load_scenario
from .scorecard import ScoreCard, compute, latest_score_card
from .snapshot import Snapshot, State
from .store import open_store

RESPONDER = Actor(user="responder", host="drill script")
EXIT_PROBLEM, EXIT_DRILL_FAILED = 1, 8


class DrillSetupError(Exception):
    """A scenario that cannot run against this plan as asked; the message says why."""


# ---------------------------------------------------------------- the plan, made a drill


def drill_dir(plan: Plan, scenario: Scenario) -> Path:
    """A fresh folder per drill, next to the rollout's default state: state.sqlite, flags.json."""
    base = default_state_path(plan.rollout.name).parent / "drills"
    name = f"{plan.rollout.name}-{scenario.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    return base / "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def drill_plan(plan: Plan, scenario: Scenario, workdir: Path, *, staging: bool = False) -> Plan:
    """The plan as a drill: environment DRILL, its own state, faults in the simulator.

    Without `staging`, Prometheus sources become the simulator (their exporter PromQL is
    understood by it) and flags go to a scratch file; with it, the plan's own sources and
    flag provider are used, and only flag-service faults can be injected.
    """
    faults = scenario.faults()
    if staging and plan.rollout.environment == "production":
        where = f"{plan.path}: " if plan.path else ""
        raise DrillSetupError(
            f"{where}rollout.environment is production: --staging drills against the plan's own sources and flag "
            "provider, so it would change production flags; give the staging plan, or drop --staging to rehearse "
            "against the simulator")
    if staging and faults:
        raise DrillSetupError(
            f"scenario {scenario.name} injects metric faults, which need the simulator; drop --staging to rehearse it")
    update: dict = {
        "rollout": plan.rollout.model_copy(update={"environment": "drill"}),
        "state": str(workdir / "state.sqlite"),
    }
    if not staging:
        # The plan's relative paths (a simulator's live fault file) resolve in the drill's own
        # folder; with --staging they stay the plan's, so its flag file is the staging one.
        update["base_dir"] = workdir
        sources = {}
        for name, config in plan.sources.items():
            if isinstance(config, PrometheusSourceConfig):
                config = SimulatorSourceConfig(type="simulator")
            sources[name] = config.model_copy(update={"faults": [*config.faults, *faults]})
        update["sources"] = sources
        update["flag_provider"] = FlagProviderConfig(provider="local", path=str(workdir / "flags.json"))
    return plan.model_copy(update=update)


# ---------------------------------------------------------------- flag-service faults


@dataclass
class DrillTime:
    """Drill time as faults and scripts see it: seconds since start, and when each phase began."""

    clock: Clock
    started_at: float
    phase_starts: dict[int, float] = field(default_factory=dict)

    def now(self) -> float:
        return self.clock.now() - self.started_at

    def observe(self, snap: Snapshot) -> None:
        # Phases stepped through between two looks count as starting together, as in the simulator.
        if snap.phase is not None and snap.phase.started_at is not None:
            for index in range(1, snap.phase.index + 1):
                self.phase_starts.setdefault(index, snap.phase.started_at - self.started_at)


class FaultyFlagProvider(FlagProvider):
    """Wraps the real provider; fails or lags every call while a `flags:` event is active."""

    kind = "drill"

    def __init__(self, inner: FlagProvider, events: list[TimelineEvent], when: DrillTime):
        super().__init__(inner.config, inner.base_dir)
        self.inner = inner
        self.events = events
        self.when = when

    def describe(self) -> str:
        return f"{self.inner.describe()} (with drill faults)"

    async def _fault(self) -> None:
        t = self.when.now()
        for event in self.events:
            if not event.active(t, self.when.phase_starts):
                continue
            if event.flags == "down":
                raise FlagError("HTTP 503 from the flag service (drill fault)")
            await self.when.clock.sleep(event.delay)

    async def read(self, name: str) -> FlagState | None:
        await self._fault()
        return await self.inner.read(name)

    async def write(self, name: str, state: FlagState) -> None:
        await self._fault()
        await self.inner.write(name, state)

    async def close(self) -> None:
        await self.inner.close()


# ---------------------------------------------------------------- the scripted responder


class ScriptedResponder:
    """Acts between ticks: the routine of a launch day, plus the scenario's scripted actions."""

    def __init__(self, engine: Engine, scenario: Scenario, when: DrillTime, out: TextIO):
        self.engine = engine
        self.routine = scenario.responder.routine
        self.pending: list[ResponderAction] = list(scenario.responder.actions)
        self.when = when
        self.out = out
        self.alarm_at: float | None = None

    def _alarm(self, snap: Snapshot) -> bool:
        return snap.drift or any(g.status in ("pending", "breach", "nodata") for g in snap.guardrails) or any(
            p.status in ("breach", "stale") for p in snap.panes)

    def _due(self, action: ResponderAction, t: float) -> bool:
        if action.on == "alarm":
            return self.alarm_at is not None and t >= self.alarm_at + action.after
        start = action.start(self.when.phase_starts)
        return start is not None and t >= start

    async def _do(self, action: ResponderAction) -> str:
        """The action as a command, through the one dispatcher every console and verb goes through."""
        reason = action.reason or f"scripted responder: {action.label()}"
        verb, args = {
            "rollback": ("rollback", {"reason": reason}),
            "pause": ("pause", {"reason": reason}),
            "step": ("step", {}),
            "force_step": ("step", {"force": True, "reason": action.reason}),
            "tick": ("tick", {"item": action.item or ""}),
        }.get(action.do, (action.do, {}))
        return await dispatch(self.engine, verb, args, RESPONDER)

    async def _routine(self, snap: Snapshot) -> None:
        if snap.state not in (State.PENDING, State.RUNNING) or snap.action is not None:
            return
        if snap.phase is not None:
            for item in snap.phase.checklist:
                if item.required and not item.ticked:
                    await dispatch(self.engine, "tick", {"item": item.id}, RESPONDER)
            snap = self.engine.publish()
        if self.engine.plan.automation.step_up == "manual" and snap.can_step:
            await dispatch(self.engine, "step", {}, RESPONDER)

    async def __call__(self, snap: Snapshot) -> None:
        t = self.when.now()  # the session has already noted phase starts from this snapshot
        if self.alarm_at is None and self._alarm(snap):
            self.alarm_at = t
        for action in [a for a in self.pending if self._due(a, t)]:
            self.pending.remove(action)
            try:
                result = await self._do(action)
            except CommandError as exc:
                result = f"refused: {exc}"
            print(f"{'':>20} responder: {action.label()} → {result}", file=self.out, flush=True)
        if self.routine:
            try:
                await self._routine(self.engine.publish())
            except CommandError:
                pass  # the rollout moved on under the routine (a rollback, a breach): nothing to do now


# ---------------------------------------------------------------- running


class DrillSession:
    """One drill on one engine, in the console or headless.

    Wires the flag-service faults in, journals `drill.start` when the engine starts,
    runs the scripted responder between ticks (headless), and scores the drill once: as
    soon as the rollout is done (COMPLETE or ROLLED BACK) or the scenario's time is up,
    or at the latest when the engine closes. The card is journaled as `drill.score`, so
    the console shows it, the report prints it and the channel is told.
    """

    def __init__(self, engine: Engine, scenario: Scenario, *, responder_out: TextIO | None = None):
        self.engine = engine
        self.scenario = scenario
        self.when = DrillTime(engine.clock, engine.started_at)
        engine.dry_run_steps = not scenario.allow_run_steps
        if scenario.flag_events():
            engine.provider = FaultyFlagProvider(engine.provider, scenario.flag_events(), self.when)
        # Humans respond in the console; the scripted responder only when there is no one.
        self.responder = ScriptedResponder(engine, scenario, self.when, responder_out) if responder_out else None
        self.card: ScoreCard | None = None
        engine.start_hooks.append(self._begin)
        # Before the notifier drains (it was attached first), so the drill end is sent too.
        engine.close_hooks.insert(0, self._finish_at_close)

    def _begin(self) -> None:
        self.engine.record("drill.start", f"DRILL {self.scenario.name}: {self.scenario.title}",
                           {"scenario": self.scenario.summary()})

    def _over(self, snap: Snapshot) -> bool:
        done = snap.state in TERMINAL and snap.action is None and not self.engine.tasks
        return done or self.when.now() >= self.scenario.duration

    async def after_tick(self, snap: Snapshot) -> None:
        self.when.observe(snap)
        if self.card is not None:
            return  # scored: the console stays open for the team to look around
        if self.responder is not None:
            await self.responder(snap)
        if self._over(snap):
            self.finish()
            self.engine.publish()  # the card reaches the screen now, not a poll interval later

    async def _finish_at_close(self) -> None:
        self.finish()

    def never_started(self) -> list[str]:
        """Faults whose time never came (a phase not reached in time): such a drill proved nothing."""
        now = self.when.now()
        out = []
        for event in self.scenario.timeline:
            start = event.start(self.when.phase_starts)
            if start is None or start > now:
                why = f"phase {event.phase} was not reached before the drill ended" if start is None else "the drill ended first"
                out.append(f"{event.label()} ({why})")
        return out

    def finish(self) -> ScoreCard:
        if self.card is None:
            engine = self.engine
            self.card = compute(engine.store.entries(), self.scenario.summary(), engine.state.label,
                                never_started=self.never_started())
            verdict = "PASS" if self.card.passed else "FAIL"
            why = "; ".join(self.card.findings) or f"expected {self.card.expected}"
            engine.record("drill.score", f"drill {self.card.scenario} {verdict}: {why}", {"card": self.card.to_json()})
        return self.card


async def run_headless_drill(plan: Plan, scenario: Scenario, *, clock: Clock, out: TextIO = sys.stdout) -> tuple[ScoreCard, Path]:
    """Run a drill with the scripted responder, in this process; returns the card and the state database."""
    if plan.state is None or plan.rollout.environment != "drill":
        raise DrillSetupError("run_headless_drill needs a plan made by drill_plan()")
    session = DrillSession(build_engine(plan, clock=clock), scenario, responder_out=out)
    options = RunOptions(until_done=True, status_every=30.0, run_for=scenario.duration, after_tick=session.after_tick)
    await serve_engine(session.engine, log_path=engine_log_path(Path(plan.state)), options=options, terminal=out)
    card = session.finish()
    for line in card.lines():
        print(line, file=out, flush=True)
    return card, Path(plan.state)


def prepare(plan: Plan, scenario: Scenario, *, state: str | None = None, staging: bool = False) -> Plan:
    """The plan made a drill in its own fresh folder, or next to `state` when one is given."""
    db = Path(state).expanduser().resolve() if state else None
    workdir = db.parent if db else drill_dir(plan, scenario)
    workdir.mkdir(parents=True, exist_ok=True)
    prepared = drill_plan(plan, scenario, workdir, staging=staging)
    return prepared.model_copy(update={"state": str(db)}) if db else prepared


def drill_engine_plan(plan: Plan, scenario_ref: str, *, state: str | None, staging: bool):
    """For `warroom engine PLAN --drill SCENARIO`: the drill plan, and what hosts the drill on its engine
    (faults, score; no scripted responder: humans respond in the console)."""
    scenario = load_scenario(scenario_ref)
    return prepare(plan, scenario, state=state, staging=staging), lambda engine: DrillSession(engine, scenario).after_tick


# The console runner: (drill plan, the arguments of its engine: `warroom engine …`) → exit code.
ConsoleRunner = Callable[[Plan, list[str]], int]


def run_drill_command(plan: Plan, scenario_ref: str | None, *, state: str | None, staging: bool, headless: bool,
                      speed: str | None, console: ConsoleRunner, out: TextIO | None = None) -> int:
    """`warroom drill`: 0 when the score card passes, EXIT_DRILL_FAILED when it does not."""
    out = out or sys.stdout  # looked up at call time, so a redirected stdout is honoured
    scenario = load_scenario(scenario_ref) if scenario_ref else DEFAULT
    try:
        prepared = prepare(plan, scenario, state=state, staging=staging)
    except DrillSetupError as exc:
        print(f"warroom: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    print(f"DRILL {scenario.name}: {scenario.title} — state and journal in {prepared.state}", file=out, flush=True)
    db = Path(prepared.state or "")
    if headless:
        card, db = asyncio.run(run_headless_drill(prepared, scenario, clock=make_clock(speed or "max"), out=out))
    else:
        # Humans respond in the console; the drill's engine is the console's child process, which
        # prepares the same drill plan in the same folder and hosts the faults and the score.
        engine_args = engine_argv(plan, db, speed=speed) + ["--drill", scenario_ref or scenario.name]
        engine_args += ["--staging"] if staging else []
        code = console(prepared, engine_args)
        found = latest_score_card(open_store(db, create=False)) if db.exists() else None
        if found is None:  # the engine never started (the console said why)
            return code or EXIT_PROBLEM
        card = found
        for line in card.lines():
            print(line, file=out)
    print(f"report: warroom report --state {db} --format html -o drill-report.html", file=out)
    return 0 if card.passed else EXIT_DRILL_FAILED
