"""`warroom drill`: rehearse a plan against injected faults and score the response.

A drill runs the plan with environment DRILL in its own folder (state, journal and a
scratch flag file), so rehearsing never touches the real rollout's journal or flags.
Any plan drills offline: Prometheus sources become the simulator, which answers each
pane through its model (`simulate:`, or inferred from query and unit). Each soak is
compressed to a drill-sized time and the scenario is fitted to the plan's own phases.
With `--staging` the plan's real sources and flag provider are used, and only faults
that can be injected on the client side (flag service, a dark source) are allowed.

DrillSession is the one place where a drill's faults, timing and scoring live. A console
drill's engine is a child process of the console (`warroom engine PLAN --drill SCENARIO`)
that prepares the same drill plan and hosts the session; `drill --headless` runs the
engine and the scripted responder in one process, in virtual time.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from warroom.client import engine_argv
from warroom.core.clock import Clock, make_clock
from warroom.core.exit_codes import Exit
from warroom.core.journal_kinds import Kind
from warroom.core.snapshot import Snapshot
from warroom.core.text import terminal_safe
from warroom.core.units import plan_duration
from warroom.drills.faults import DarkSource, DrillTime, FaultyFlagProvider
from warroom.drills.responder import ScriptedResponder, sign_off
from warroom.drills.scenario import DEFAULT, Scenario, ScenarioMismatch, load_scenario
from warroom.engine.build import build_engine
from warroom.engine.engine import CommandError, Engine
from warroom.engine.process import RunOptions, serve_engine
from warroom.plan.model import Plan
from warroom.plan.sources import FlagProviderConfig, PrometheusSourceConfig, SimulatorSourceConfig
from warroom.reports.scorecard import ScoreCard, compute, latest_score_card, soaks_text
from warroom.sources.simulator.queries import unmodelled_advice, unmodelled_conditions
from warroom.sources.simulator.source import SimulatorSource
from warroom.store import open_store
from warroom.store.paths import default_state_path, engine_log_path


class DrillSetupError(Exception):
    """A scenario that cannot run against this plan as asked; the message says why."""


# ---------------------------------------------------------------- the plan, made a drill


@dataclass(frozen=True)
class Soak:
    """A phase whose soak the drill shortened."""

    phase: int
    name: str
    planned: float
    drill: float

    def label(self) -> str:
        return f"phase {self.phase} {self.name}: soak {plan_duration(self.planned)} → {plan_duration(self.drill)} in this drill"


@dataclass(frozen=True)
class Drill:
    """A scenario fitted to a plan: the plan as the drill runs it, and what DrillSession needs."""

    plan: Plan  # environment DRILL, its own state, drill-sized soaks, sources and flags as the mode says
    scenario: Scenario  # every phase a number, every moment in seconds
    soaks: tuple[Soak, ...] = ()
    staging: bool = False

    @property
    def state_file(self) -> Path:
        """Its own SQLite state, in the drill's folder (prepare() puts it there)."""
        assert isinstance(self.plan.state, str)
        return Path(self.plan.state)


def drill_dir(plan: Plan, scenario: Scenario) -> Path:
    """A fresh folder per drill, next to the rollout's default state: state.sqlite, flags.json."""
    base = default_state_path(plan.rollout.name).parent / "drills"
    name = f"{plan.rollout.name}-{scenario.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    return base / "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _where(plan: Plan) -> str:
    return f"{plan.path}: " if plan.path else ""


def _staging_problems(plan: Plan, scenario: Scenario) -> None:
    if plan.rollout.environment == "production":
        raise DrillSetupError(
            f"{_where(plan)}rollout.environment is production: --staging drills against the plan's own sources and flag "
            "provider, so it would change production flags; give the staging plan, or drop --staging to rehearse "
            "against the simulator")
    if all(isinstance(s, SimulatorSourceConfig) for s in plan.sources.values()):
        return  # the plan's own source is the simulator: it takes every fault
    changes = scenario.metric_events() + [e for e in scenario.dark_events() if e.metric]
    if changes:
        raise DrillSetupError(
            f"scenario {scenario.name} changes metrics ({'; '.join(e.what() for e in changes)}), which needs the "
            "simulator: --staging reads the plan's real sources and can only make them go dark or fail the flag "
            "service. Drop --staging to rehearse it offline, or inject it into the staging service itself "
            "(the rehearsal exporter takes POST /fault)")


def _offline_problems(plan: Plan) -> None:
    """Guardrails and gates the simulator could not judge would see no data: the drill would prove nothing."""
    judged = {g.pane for g in plan.guardrails} | {g.pane for ph in plan.phases for g in ph.gates}
    advice = unmodelled_advice(plan, only={p for p in judged if p})
    conditions = unmodelled_conditions(plan)
    if advice or conditions:
        lines = advice + [f"{c}: the simulator cannot model it; watch it through a pane with `simulate:`" for c in conditions]
        raise DrillSetupError("a drill cannot judge these guardrails and gates offline (they would see no data):\n  "
                              + "\n  ".join(lines))


def drill_plan(plan: Plan, scenario: Scenario, workdir: Path, *, staging: bool = False) -> Drill:
    """The plan as a drill, with the scenario fitted to it.

    Without `staging`, Prometheus sources become the simulator (driven by the plan's own
    flag) and flags go to a scratch file; with it, the plan's own sources and flag provider
    are used. Either way each soak lasts at most the scenario's `soak`, and thresholds and
    `for` windows stay exactly as written.
    """
    if staging:
        _staging_problems(plan, scenario)
    else:
        _offline_problems(plan)
    soaks, phases = [], []
    for i, phase in enumerate(plan.phases, 1):
        hold = phase.hold if scenario.soak is None else min(phase.hold, scenario.soak)
        if hold < phase.hold:
            soaks.append(Soak(i, phase.name, phase.hold, hold))
        phases.append(phase.model_copy(update={"hold": hold}))
    update: dict = {
        "rollout": plan.rollout.model_copy(update={"environment": "drill"}),
        "state": str(workdir / "state.sqlite"),
        "phases": phases,
    }
    if not staging:
        # The plan's relative paths (a simulator's live fault file) resolve in the drill's own
        # folder; with --staging they stay the plan's, so its flag file is the staging one.
        update["base_dir"] = workdir
        flag = plan.driving_flag()
        update["sources"] = {
            name: SimulatorSourceConfig(type="simulator", flag=flag) if isinstance(config, PrometheusSourceConfig) else config
            for name, config in plan.sources.items()}
        update["flag_provider"] = FlagProviderConfig.model_validate({"provider": "local", "path": str(workdir / "flags.json")})
        if plan.exposure is not None and scenario.soak is not None:
            # The simulator's split shows at once: the exposure check waits no longer than a shortened soak.
            update["exposure"] = plan.exposure.model_copy(update={"settle": min(plan.exposure.settle, scenario.soak)})
    made = plan.model_copy(update=update)
    try:
        fitted = scenario.fitted(list(zip(made.phase_exposures(), (p.hold for p in phases), strict=True)))
    except ScenarioMismatch as exc:
        raise DrillSetupError(f"{exc}; it does not fit {plan.path or plan.rollout.name}") from None
    named = [*(scenario.responder.approve_as or ()), *(a.as_role for a in scenario.responder.actions if a.as_role)]
    unknown = [role for role in dict.fromkeys(named) if role not in plan.roles]
    if unknown:  # a role the plan lacks would sign off never, and the drill would show a silence nobody scripted
        raise DrillSetupError(f"scenario {scenario.name} signs off as {', '.join(unknown)}, which {plan.path or plan.rollout.name} "
                              f"does not define (its roles: {', '.join(plan.roles) or 'none'})")
    return Drill(made, fitted, tuple(soaks), staging)


def prepare(plan: Plan, scenario: Scenario, *, state: str | None = None, staging: bool = False) -> Drill:
    """The plan made a drill in its own fresh folder, or next to `state` when one is given."""
    db = Path(state).expanduser().resolve() if state else None
    workdir = db.parent if db else drill_dir(plan, scenario)
    drill = drill_plan(plan, scenario, workdir, staging=staging)
    workdir.mkdir(parents=True, exist_ok=True)
    if db:
        drill = Drill(drill.plan.model_copy(update={"state": str(db)}), drill.scenario, drill.soaks, drill.staging)
    return drill


def fast_time_problem(plan: Plan, speed: str | float | None, *, real_flags: bool = False) -> str | None:
    """Why `--speed` other than 1 is refused here, or None.

    Fast time belongs to drills: a drill's own state and scratch flags. On a production or
    staging plan's real state it would write a future clock into the launch's journal and
    move its flags faster than its soaks say.
    """
    if speed in (None, 1, 1.0, "1"):
        return None
    speed = speed if isinstance(speed, str) else f"{speed:g}"
    if real_flags:
        return (f"--speed {speed} is refused with --staging: the drill writes the plan's real staging flags, and fast "
                "time would move them faster than the plan's soaks (the drill already shortens each soak); "
                "drop --speed, or drop --staging to rehearse fast against the simulator and a scratch flag file")
    if plan.rollout.environment in ("production", "staging"):
        name = plan.path or "PLAN"
        return (f"--speed {speed} is refused: {_where(plan)}rollout.environment is {plan.rollout.environment}, so its state "
                "and flags are real; fast time would write a future clock into the launch's journal and move its flags "
                f"faster than its soaks. Rehearse it fast with `warroom drill {name} --speed {speed}` "
                "(its own state and a scratch flag file)")
    return None


# ---------------------------------------------------------------- running


class DrillSession:
    """One drill on one engine, in the console or headless.

    Puts the scenario's faults in (metric changes and dark spells into the simulator,
    dark spells around real sources, flag-service faults around the provider), tells the
    engine which soaks were compressed, journals `drill.start` when the engine starts and
    `drill.fault` as each fault is injected, runs the scripted responder between ticks
    (headless), and scores the drill once: as soon as the rollout is done (COMPLETE or
    ROLLED BACK) or the scenario's time is up, or at the latest when the engine closes.
    The card is journaled as `drill.score`, so the console shows it, the report prints it
    and the channel is told.
    """

    def __init__(self, engine: Engine, drill: Drill, *, responder_out: TextIO | None = None):
        self.engine = engine
        self.drill = drill
        self.scenario = drill.scenario
        self.when = DrillTime(engine.clock, engine.started_at)
        engine.dry_run_steps = not self.scenario.allow_run_steps
        engine.planned_holds = {s.phase: s.planned for s in drill.soaks}
        faults, dark = self.scenario.faults(), self.scenario.dark_events()
        for name, source in list(engine.sources.items()):
            if isinstance(source, SimulatorSource):
                source.model.faults += faults
            elif dark:
                engine.sources[name] = DarkSource(source, dark, self.when)
        if self.scenario.flag_events():
            engine.provider = FaultyFlagProvider(engine.provider, self.scenario.flag_events(), self.when)
        # Humans respond in the console; the scripted responder only when there is no one.
        self.responder = ScriptedResponder(engine, self.scenario, self.when, responder_out) if responder_out else None
        self.injected: set[int] = set()  # timeline events whose injection is journaled
        self.card: ScoreCard | None = None
        engine.start_hooks.append(self._begin)
        # Before the notifier drains (it was attached first), so the drill end is sent too.
        engine.close_hooks.insert(0, self._finish_at_close)

    def _begin(self) -> None:
        soaks = [{"phase": s.phase, "name": s.name, "planned": s.planned, "drill": s.drill} for s in self.drill.soaks]
        self.engine.record(Kind.DRILL_START, f"DRILL {self.scenario.name}: {self.scenario.title}"
                           + (f"; soaks shortened: {soaks_text((s.phase, s.planned, s.drill) for s in self.drill.soaks)}"
                              if soaks else ""),
                           {"scenario": self.scenario.summary(), "soaks": soaks, "staging": self.drill.staging,
                            "tolerance": self.engine.plan.poll_interval})

    def _journal_injections(self) -> None:
        now = self.when.now()
        for i, event in enumerate(self.scenario.timeline):
            start = event.start(self.when.phase_starts)
            if i in self.injected or start is None or start > now:
                continue
            self.injected.add(i)
            self.engine.record(Kind.DRILL_FAULT, f"drill fault injected at +{start:.1f}s: {event.label()}",
                               {"event": event.label(), "at": start})

    def _over(self, snap: Snapshot) -> bool:
        done = snap.state.terminal and snap.action is None and not self.engine.tasks
        return done or self.when.now() >= self.scenario.duration

    async def after_tick(self, snap: Snapshot) -> None:
        self.when.observe(snap)
        if self.card is not None:
            return  # scored: the console stays open for the team to look around
        self._journal_injections()
        if self.responder is not None:
            await self.responder(snap)
        elif snap.awaiting:  # a person drives the console; the roles the scenario names sign off as in any drill
            with contextlib.suppress(CommandError):
                await sign_off(self.engine, self.scenario.responder.approve_as)
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
            self._journal_injections()
            self.card = compute(engine.store.entries(), self.scenario.summary(), engine.state.label,
                                never_started=self.never_started())
            verdict = "PASS" if self.card.passed else "FAIL"
            why = "; ".join(self.card.findings) or f"expected {self.card.expected}"
            engine.record(Kind.DRILL_SCORE, f"drill {self.card.scenario} {verdict}: {why}", {"card": self.card.to_json()})
        return self.card


async def run_headless_drill(drill: Drill, *, clock: Clock, out: TextIO = sys.stdout) -> tuple[ScoreCard, Path]:
    """Run a drill with the scripted responder; returns the card and the state database."""
    session = DrillSession(build_engine(drill.plan, clock=clock), drill, responder_out=out)
    options = RunOptions(until_done=True, status_every=30.0, run_for=drill.scenario.duration, after_tick=session.after_tick)
    await serve_engine(session.engine, log_path=engine_log_path(drill.state_file), options=options, terminal=out)
    card = session.finish()
    for line in card.lines():
        print(terminal_safe(line), file=out, flush=True)
    return card, drill.state_file


def drill_engine_plan(plan: Plan, scenario_ref: str, *, state: str | None, staging: bool) -> tuple[Plan, Callable]:
    """For `warroom engine PLAN --drill SCENARIO`: the drill plan, and what hosts the drill on its engine
    (faults, soaks, score; no scripted responder: humans respond in the console)."""
    drill = prepare(plan, load_scenario(scenario_ref), state=state, staging=staging)
    return drill.plan, lambda engine: DrillSession(engine, drill).after_tick


# The console runner: (drill plan, the arguments of its engine: `warroom engine …`) → exit code.
ConsoleRunner = Callable[[Plan, list[str]], int]


def run_drill_command(plan: Plan, scenario_ref: str | None, *, state: str | None, staging: bool, headless: bool,
                      speed: str | float | None, console: ConsoleRunner, out: TextIO | None = None) -> int:
    """`warroom drill`: 0 when the score card passes, Exit.DRILL_FAILED when it does not."""
    out = out or sys.stdout  # looked up at call time, so a redirected stdout is honoured
    # Offline, the drill's state and flags are its own: any speed. Against staging, the flags are real.
    refused = fast_time_problem(plan, speed, real_flags=True) if staging else None
    if refused:
        print(f"warroom: {refused}", file=sys.stderr)
        return Exit.USAGE
    scenario = load_scenario(scenario_ref) if scenario_ref else DEFAULT
    try:
        drill = prepare(plan, scenario, state=state, staging=staging)
    except DrillSetupError as exc:
        print(f"warroom: {terminal_safe(exc, keep_newlines=True)}", file=sys.stderr)
        return Exit.PROBLEM
    # Scenario and plan text is data: no escape sequence of theirs reaches the terminal.
    lines = [f"DRILL {scenario.name}: {scenario.title} — state and journal in {drill.plan.state}",
             *(f"  {soak.label()}" for soak in drill.soaks)]
    if not staging:  # panes no guardrail or gate watches: the drill runs, they show no data
        lines += [f"  no data in this drill: {advice}" for advice in unmodelled_advice(plan)]
    for line in lines:
        print(terminal_safe(line), file=out, flush=True)
    if headless:
        # Virtual time by default; against staging's real servers, real time.
        clock = make_clock(speed or ("1" if staging else "max"))
        card, db = asyncio.run(run_headless_drill(drill, clock=clock, out=out))
    else:
        # Humans respond in the console; the drill's engine is the console's child process, which
        # prepares the same drill plan in the same folder and hosts the faults, soaks and score.
        db = drill.state_file
        engine_args = engine_argv(plan, db, speed=speed) + ["--drill", scenario_ref or scenario.name] + (["--staging"] if staging else [])
        code = console(drill.plan, engine_args)
        found = latest_score_card(open_store(db, create=False)) if db.exists() else None
        if found is None:  # the engine never started (the console said why)
            return code or Exit.PROBLEM
        card = found
        for line in card.lines():
            print(terminal_safe(line), file=out)
    print(f"report: warroom report --state {db} --format html -o drill-report.html", file=out)
    return 0 if card.passed else Exit.DRILL_FAILED
