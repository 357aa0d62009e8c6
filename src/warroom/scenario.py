"""Drill scenarios: a YAML timeline of faults, a scripted responder, and what is expected.

A scenario is validated like a plan (unknown keys are errors, every problem names file,
line and field), so a typo in a rehearsal never silently turns a fault off.

    name: canary-error-spike
    title: Error-rate spike in canary
    duration: 4m                       # the drill stops after this much clock time at the most
    timeline:
      - {phase: 1, after: 15s, metric: error_rate, set: 0.05}
      - {phase: 1, after: 20s, flags: down, duration: 1m}
    responder: auto                    # or a list of scripted actions, or {routine:, actions:}
    expect: {action: rollback, within: 1m}
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError, model_validator

from .plan import Duration, Fault, Number, SimMetric, Strict, _validation_problems
from .yamlfile import PlanError, Problem, compose, read_text

METRIC_MODES = ("set", "add", "multiply", "ramp", "spike")


class When(Strict):
    """`at` seconds after the drill starts, or `after` seconds into phase `phase`."""

    at: Duration | None = None
    phase: Annotated[int, Field(ge=1)] | None = None
    after: Duration = 0.0

    @model_validator(mode="after")
    def _one_anchor(self) -> "When":
        if (self.at is None) == (self.phase is None):
            raise ValueError("give `at` (time since the drill started) or `phase` (with optional `after`)")
        return self

    def start(self, phase_starts: dict[int, float]) -> float | None:
        """Start in seconds since the drill began; None while the phase has not begun."""
        if self.at is not None:
            return self.at
        begun = phase_starts.get(self.phase or 0)
        return None if begun is None else begun + self.after


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
    def _one_kind(self) -> "TimelineEvent":
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
        """The simulator fault for a metric event; None for a flag-service event."""
        if self.flags is not None:
            return None
        mode = next((m for m in METRIC_MODES if getattr(self, m) is not None), "dark")
        return Fault(metric=self.metric, at=self.at, phase=self.phase, after=self.after, duration=self.duration,
                     mode=mode, value=getattr(self, mode) if mode != "dark" else 0.0, while_exposed=self.while_exposed)

    def active(self, t: float, phase_starts: dict[int, float]) -> bool:
        start = self.start(phase_starts)
        return start is not None and start <= t < start + (self.duration if self.duration is not None else float("inf"))

    def label(self) -> str:
        when = f"at {self.at:g}s" if self.at is not None else f"phase {self.phase} +{self.after:g}s"
        span = f" for {self.duration:g}s" if self.duration is not None else ""
        if self.flags:
            what = "flag service down" if self.flags == "down" else f"flag service slow ({self.delay:g}s a call)"
        elif self.metrics:
            what = f"metrics dark ({self.metric})" if self.metric else "metrics source dark"
        else:
            mode = next(m for m in METRIC_MODES if getattr(self, m) is not None)
            what = f"{self.metric} {mode} {getattr(self, mode):g}" + ("" if self.while_exposed else " (infrastructure)")
        return f"{what}, {when}{span}"


Command = Literal["rollback", "pause", "resume", "step", "force_step", "tick", "ack"]


class ResponderAction(When):
    """A scripted human action: at a time, in a phase, or `after` the first alarm on screen."""

    on: Literal["alarm"] | None = None
    do: Command
    item: str | None = None  # for `tick`: id, number or unique part of the text
    reason: str = ""

    # Same name as When's check, so it replaces it: `on: alarm` is a third kind of anchor.
    @model_validator(mode="after")
    def _one_anchor(self) -> "ResponderAction":  # type: ignore[override]
        anchors = (self.at is not None) + (self.phase is not None) + (self.on is not None)
        if anchors != 1:
            raise ValueError("give one of `at`, `phase` (with `after`) or `on: alarm` (with `after`)")
        if self.do == "tick" and not self.item:
            raise ValueError("`do: tick` needs the `item` to tick")
        if self.do == "force_step" and not self.reason.strip():
            raise ValueError("`do: force_step` needs a `reason`, as a forced step up does")
        return self

    def label(self) -> str:
        when = f"at {self.at:g}s" if self.at is not None else (
            f"phase {self.phase} +{self.after:g}s" if self.phase is not None else f"{self.after:g}s after the first alarm")
        return f"{self.do}{' ' + self.item if self.item else ''} {when}"


class Responder(Strict):
    # routine: tick required checklist items and step up whenever the plan allows it,
    # as the team would on a quiet launch day; incidents are left to `actions` (or automation).
    routine: bool = True
    actions: list[ResponderAction] = []


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

    def faults(self) -> tuple[Fault, ...]:
        return tuple(f for f in (e.fault() for e in self.timeline) if f is not None)

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
        }


# ---------------------------------------------------------------- loading


def builtin_dir() -> Path:
    """The scenarios shipped with warroom (`scenarios/` in the source tree, packaged in the wheel)."""
    packaged = Path(str(resources.files("warroom"))) / "scenarios"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "scenarios"


def builtin_names() -> list[str]:
    return sorted(p.stem for p in builtin_dir().glob("*.yaml"))


def parse_scenario(text: str, file: str = "<scenario>") -> Scenario:
    data, located = compose(text, file)
    if not isinstance(data, dict):
        raise PlanError([Problem(file, 1, 1, "", "a scenario is a mapping with name, title, timeline, responder, expect")])
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise PlanError(_validation_problems(exc, located)) from None


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
