"""Drill scenarios: a YAML timeline of faults, a scripted responder, and what is expected.

A scenario is validated like a plan (unknown keys are errors, every problem names file,
line and field), so a typo in a rehearsal never silently turns a fault off.

    name: canary-error-spike
    title: Error-rate spike in canary
    duration: 4m                       # the drill stops after this much clock time at the most
    soak: 30s                          # each phase's soak in the drill, at most (a 30m soak → 30s)
    timeline:                          # phase: a number or an exposure (5%: the first phase at 5 % or more)
      - {phase: 5%, at: 30% of hold, metric: error_rate, set: 0.4}
      - {phase: 5%, at: 30% of hold, after: 5s, flags: down, duration: 1m}
    responder: auto                    # or a list of scripted actions, or {routine:, actions:}
    expect: {action: rollback, within: 1m}
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PrivateAttr, ValidationInfo, model_validator

from warroom.plan.faults import Fault
from warroom.plan.fields import Duration, Number, Strict, duration
from warroom.plan.problems import validate_text
from warroom.plan.simulate import SimMetric
from warroom.plan.yamlfile import PlanError, Problem, compose, read_text

MetricMode = Literal["set", "add", "multiply", "ramp", "spike"]
METRIC_MODES: tuple[MetricMode, ...] = ("set", "add", "multiply", "ramp", "spike")


class ScenarioMismatch(ValueError):
    """A scenario names a phase the plan does not have; the message says which and what it has."""


_OF_HOLD = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*of\s*(?:the\s*)?(?:hold|soak)\s*$", re.IGNORECASE)
MOMENT_HELP = "a duration (30s) or, with `phase`, a share of that phase's soak (40% of hold)"


class Moment(Strict):
    """A point in time: seconds, or a share of a phase's soak (`40% of hold`)."""

    seconds: float = 0.0
    of_hold: float | None = None  # 0.4 for `40% of hold`; resolved to seconds against the drill's plan

    def label(self) -> str:
        return f"{self.of_hold * 100:g}% of hold" if self.of_hold is not None else f"{self.seconds:g}s"


def _moment(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, (Moment, dict)):
        return value
    if isinstance(value, str) and (share := _OF_HOLD.match(value)):
        return {"of_hold": float(share.group(1)) / 100}
    try:
        return {"seconds": duration(value, info)}
    except ValueError:
        bare = isinstance(value, (int, float)) and not isinstance(value, bool)
        raise ValueError(f"expected {MOMENT_HELP}" + ("; a number alone is not a duration (30 what?)" if bare else "")) from None


_EXPOSURE_REF = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
PHASE_HELP = "a phase number (2), or an exposure (25%: the first phase of the plan at 25 % or more)"


def _phase_ref(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"expected {PHASE_HELP}")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"expected {PHASE_HELP}; phases count from 1")
        return value
    if isinstance(value, str) and _EXPOSURE_REF.match(value):
        return value.strip().replace(" ", "")
    raise ValueError(f"expected {PHASE_HELP}")


PhaseRef = Annotated[int | str, BeforeValidator(_phase_ref)]


class When(Strict):
    """`at` seconds after the drill starts; or in phase `phase`, `at` (seconds or `40% of hold`) plus `after`.

    `phase` is a number or an exposure (`25%`), so one scenario fits plans with other phases;
    `fitted()` resolves both against the plan the drill runs (its drill-sized soaks).
    """

    at: Annotated[Moment, BeforeValidator(_moment)] | None = None
    phase: PhaseRef | None = None
    after: Duration = 0.0
    _written: str = PrivateAttr(default="")  # the scenario's own words, kept through fitting

    @model_validator(mode="after")
    def _one_anchor(self) -> When:
        if self.at is None and self.phase is None:
            raise ValueError("give `at` (time since the drill started) or `phase` (with optional `at` and `after`)")
        if self.phase is None and self.at is not None and self.at.of_hold is not None:
            raise ValueError("`at: N% of hold` needs the `phase` whose soak it counts in")
        return self

    def offset(self) -> float:
        """Seconds from the anchor (drill start or phase start); after `fitted()`."""
        return (self.at.seconds if self.at else 0.0) + self.after

    def start(self, phase_starts: dict[int, float]) -> float | None:
        """Start in seconds since the drill began; None while the phase has not begun."""
        if self.phase is None:
            return self.offset()
        begun = phase_starts.get(int(self.phase))
        return None if begun is None else begun + self.offset()

    def when_label(self) -> str:
        if isinstance(self.phase, str) or (self.at is not None and self.at.of_hold is not None):
            return self.written()  # not fitted to a plan yet
        if self.phase is None:
            return f"at {self.offset():g}s"
        text = f"phase {self.phase} +{self.offset():g}s"
        return f"{text} ({self._written})" if self._written and self._written != text else text

    def written(self) -> str:
        """How the scenario file says when, before fitting."""
        if self.phase is None:
            return f"at {self.offset():g}s"
        text = f"phase {self.phase}"
        if self.at is not None:
            text += f" at {self.at.label()}" if self.at.of_hold is not None else f" +{self.at.seconds:g}s"
        return text + (f" +{self.after:g}s" if self.after else "")

    def fitted(self, phases: list[tuple[float, float]]) -> When:
        """This moment in a plan with these phases, (exposure %, drill soak s) each: phase number, seconds."""
        if self.phase is None:
            return self
        if isinstance(self.phase, str):
            want = float(self.phase.rstrip("%"))
            index = next((i for i, (exposure, _) in enumerate(phases, 1) if exposure >= want - 1e-9), None)
            if index is None:
                most = max((e for e, _ in phases), default=0.0)
                raise ScenarioMismatch(f"no phase of the plan reaches {self.phase} exposure (the most is {most:g}%)")
        else:
            index = self.phase
            if index > len(phases):
                raise ScenarioMismatch(f"phase {index} does not exist: the plan has {len(phases)} phase(s)")
        seconds = 0.0
        if self.at is not None:
            seconds = self.at.seconds if self.at.of_hold is None else self.at.of_hold * phases[index - 1][1]
        fitted = self.model_copy(update={"phase": index, "at": Moment(seconds=round(seconds, 3))})
        fitted._written = self.written()
        return fitted


class TimelineEvent(When):
    """One fault: a metric changes, the metrics source goes dark, or the flag service fails."""

    duration: Duration | None = None  # None: until the drill ends
    metric: SimMetric | None = None
    set: Number | None = None
    add: Number | None = None
    multiply: Number | None = None
    ramp: Number | None = None  # towards this value over `duration`
    spike: Number | None = None  # up to this value at mid-`duration` and back
    metrics: Literal["dark"] | None = None  # the metrics source answers nothing (`metric` narrows it)
    flags: Literal["down", "slow"] | None = None  # the flag service errors, or answers after `delay`
    delay: Duration = 0.0
    # A fault in the new code is there only while users are exposed; false for infrastructure.
    while_exposed: bool = True

    @model_validator(mode="after")
    def _one_kind(self) -> TimelineEvent:
        modes = [m for m in METRIC_MODES if getattr(self, m) is not None]
        kinds = len(modes) + (self.metrics is not None) + (self.flags is not None)
        if kinds != 1:
            raise ValueError("give exactly one of: a metric change (" + "/".join(METRIC_MODES) + "), `metrics: dark`, `flags: down|slow`")
        if modes and not self.metric:
            raise ValueError(f"`{modes[0]}` needs the `metric` it changes")
        if modes and modes[0] in ("ramp", "spike") and self.duration is None:
            raise ValueError(f"`{modes[0]}` needs a `duration` to ramp or spike over")
        if self.flags == "slow" and self.delay <= 0:
            raise ValueError("`flags: slow` needs a `delay` (how long each flag call takes)")
        return self

    def fault(self) -> Fault | None:
        """The simulator fault for a metric event (after `fitted()`); None for a flag-service event."""
        if self.flags is not None:
            return None
        mode: MetricMode | Literal["dark"] = next((m for m in METRIC_MODES if getattr(self, m) is not None), "dark")
        when: dict[str, Any] = {"at": self.offset()} if self.phase is None else {"phase": self.phase, "after": self.offset()}
        return Fault(metric=self.metric, duration=self.duration, mode=mode, while_exposed=self.while_exposed,
                     value=getattr(self, mode) if mode != "dark" else 0.0, **when)

    def active(self, t: float, phase_starts: dict[int, float]) -> bool:
        start = self.start(phase_starts)
        return start is not None and start <= t < start + (self.duration if self.duration is not None else float("inf"))

    def what(self) -> str:
        """The fault in words, saying whether it is the new code's (scales with exposure) or shared."""
        if self.flags:
            return "flag service down" if self.flags == "down" else f"flag service slow ({self.delay:g}s a call)"
        if self.metrics:
            return f"metrics dark ({self.metric})" if self.metric else "metrics source dark"
        mode = next(m for m in METRIC_MODES if getattr(self, m) is not None)
        where = "in the new code" if self.while_exposed else "in a shared dependency"
        return f"{self.metric} {mode} {getattr(self, mode):g} {where}"

    def label(self) -> str:
        span = f" for {self.duration:g}s" if self.duration is not None else ""
        return f"{self.what()}, {self.when_label()}{span}"


Command = Literal["rollback", "pause", "resume", "step", "force_step", "tick", "ack", "approve", "reject"]


class ResponderAction(When):
    """A scripted human action: at a time, in a phase, or `after` the first alarm on screen."""

    on: Literal["alarm"] | None = None
    do: Command
    item: str | None = None  # for `tick`: id, number or unique part of the text
    reason: str = ""  # for `reject`: its note
    as_role: Annotated[str | None, Field(alias="as")] = None  # for `approve`/`reject`: answer as a member of this role

    # Same name as When's check, so it replaces it: `on: alarm` is a third kind of anchor.
    @model_validator(mode="after")
    def _one_anchor(self) -> ResponderAction:
        timed = self.at is not None or self.phase is not None
        if timed == (self.on is not None):
            raise ValueError("give one of `at`, `phase` (with `at` or `after`) or `on: alarm` (with `after`)")
        if self.phase is None and self.at is not None and self.at.of_hold is not None:
            raise ValueError("`at: N% of hold` needs the `phase` whose soak it counts in")
        if self.do == "tick" and not self.item:
            raise ValueError("`do: tick` needs the `item` to tick")
        if self.do == "force_step" and not self.reason.strip():
            raise ValueError("`do: force_step` needs a `reason`, as a forced step up does")
        if self.do in ("approve", "reject") and not self.as_role:
            raise ValueError(f"`do: {self.do}` needs `as`: the role whose member answers")
        if self.do == "reject" and not self.reason.strip():
            raise ValueError("`do: reject` needs a `reason`: its note, as a rejection does")
        return self

    def start(self, phase_starts: dict[int, float]) -> float | None:
        return None if self.on is not None else super().start(phase_starts)

    def label(self) -> str:
        when = f"{self.after:g}s after the first alarm" if self.on is not None else self.when_label()
        return f"{self.do}{' ' + self.item if self.item else ''}{' as ' + self.as_role if self.as_role else ''} {when}"


class Responder(Strict):
    # routine: tick required checklist items and step up whenever the plan allows it,
    # as the team would on a quiet launch day; incidents are left to `actions` (or automation).
    routine: bool = True
    actions: list[ResponderAction] = []
    # Which roles the routine signs off as when a step awaits approval (a member each, as many as the
    # quorum asks); null: every role asked, as a staffed war room would; []: nobody answers (the timeout path).
    approve_as: list[str] | None = None


def _responder_shorthand(value: Any) -> Any:
    if value == "auto":
        return {"routine": True, "actions": []}
    if isinstance(value, list):
        return {"routine": True, "actions": value}
    return value


Action = Literal["rollback", "pause", "none"]


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class Expectation(Strict):
    # The first response must be one of these (`none`: no pause and no rollback at all).
    action: Annotated[list[Action], BeforeValidator(_as_list), Field(min_length=1)]
    within: Duration = 60.0  # from the first bad sample on screen
    by: Literal["anyone", "automatic", "human"] = "anyone"

    def label(self) -> str:
        if self.action == ["none"]:
            return "no pause, no rollback"
        who = "" if self.by == "anyone" else f" ({self.by})"
        return f"{' or '.join(self.action)}{who} within {self.within:g}s"


class Scenario(Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    title: str
    description: str = ""
    duration: Duration = 300.0
    timeline: list[TimelineEvent] = []
    responder: Annotated[Responder, BeforeValidator(_responder_shorthand)] = Responder()
    expect: Expectation
    # Runbook `run` steps are dry-run in a drill unless the scenario allows them.
    allow_run_steps: bool = False
    # Each phase's soak lasts at most this long in the drill (a 30m soak in 30s); null: as the plan says.
    soak: Duration | None = 30.0

    def fitted(self, phases: list[tuple[float, float]]) -> Scenario:
        """The scenario in a plan with these phases, (exposure %, drill soak s) each: every `phase`
        a number and every moment in seconds. Raises ScenarioMismatch naming what does not fit."""
        def fit(items: list, what: str) -> list:
            out = []
            for i, item in enumerate(items):
                try:
                    out.append(item.fitted(phases))
                except ScenarioMismatch as exc:
                    raise ScenarioMismatch(f"scenario {self.name}: {what}[{i}] ({item.written()}): {exc}") from None
            return out

        actions = fit(self.responder.actions, "responder.actions")
        return self.model_copy(update={"timeline": fit(self.timeline, "timeline"),
                                       "responder": self.responder.model_copy(update={"actions": actions})})

    def faults(self) -> tuple[Fault, ...]:
        return tuple(f for f in (e.fault() for e in self.timeline) if f is not None)

    def metric_events(self) -> list[TimelineEvent]:
        """Events that change numbers: only the simulator can inject them."""
        return [e for e in self.timeline if e.flags is None and e.metrics is None]

    def dark_events(self) -> list[TimelineEvent]:
        return [e for e in self.timeline if e.metrics is not None]

    def flag_events(self) -> list[TimelineEvent]:
        return [e for e in self.timeline if e.flags is not None]

    def summary(self) -> dict[str, Any]:
        """What the journal keeps of the scenario, so a report needs nothing else."""
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "timeline": [e.label() for e in self.timeline],
            "responder": ("routine, " if self.responder.routine else "") + (
                "; ".join(a.label() for a in self.responder.actions) or "no scripted actions (automation responds)"),
            "expect": self.expect.model_dump(),
            "expect_label": self.expect.label(),
            "allow_run_steps": self.allow_run_steps,
            "soak": self.soak,
        }


# ---------------------------------------------------------------- loading


def builtin_dir() -> Path:
    """The scenarios shipped with warroom (`scenarios/` in the source tree, packaged in the wheel)."""
    packaged = Path(str(resources.files("warroom"))) / "scenarios"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[3] / "scenarios"


def builtin_names() -> list[str]:
    return sorted(p.stem for p in builtin_dir().glob("*.yaml"))


def parse_scenario(text: str, file: str = "<scenario>") -> Scenario:
    data, located = compose(text, file)
    if not isinstance(data, dict):
        raise PlanError([Problem(file, 1, 1, "", "a scenario is a mapping with name, title, timeline, responder, expect")])
    return validate_text(Scenario, data, located)


def load_scenario(ref: str | Path) -> Scenario:
    """A scenario file, or the name of a shipped one (`canary-error-spike`)."""
    path = Path(ref)
    # A folder of the same name (a drill's, say) in the current directory is not a scenario.
    if not path.is_file() and (builtin_dir() / f"{ref}.yaml").exists():
        path = builtin_dir() / f"{ref}.yaml"
    if not path.exists():
        known = ", ".join(builtin_names())
        raise PlanError([Problem(str(path), 1, 1, "", f"no such scenario file or shipped scenario (shipped: {known})")])
    return parse_scenario(read_text(path, "scenario"), str(path))


DEFAULT = Scenario(
    name="quiet-launch",
    title="A quiet launch: no fault injected",
    description="The plan runs with the routine responder; nothing should pause or roll back.",
    expect=Expectation(action=["none"]),
)
