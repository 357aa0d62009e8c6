"""Faults a drill injects into the simulator's service, and fault schedule files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from warroom.plan.fields import Duration, Number, Strict
from warroom.plan.problems import validate_text
from warroom.plan.simulate import SimMetric
from warroom.plan.yamlfile import Loc, PlanError, Problem, compose, read_text


class Fault(Strict):
    """One injected fault in the simulator's service."""

    metric: SimMetric | None = None  # None only for `dark`
    # When: `at` seconds after the run starts, or `after` seconds into phase `phase`.
    at: Duration | None = None
    phase: Annotated[int, Field(ge=1)] | None = None
    after: Duration = 0.0
    duration: Duration | None = None  # None: lasts until the end
    mode: Literal["set", "add", "multiply", "ramp", "spike", "dark"] = "set"
    value: Number = 0.0
    # A fault in the new code is present only while some traffic is exposed to it,
    # so rolling back clears it; set false for an infrastructure fault (false alarms).
    while_exposed: bool = True

    @model_validator(mode="after")
    def _when(self) -> Fault:
        if self.at is None and self.phase is None:
            raise ValueError("give `at` (time since start) or `phase` (with optional `after`)")
        if self.mode != "dark" and not self.metric:
            raise ValueError("give the `metric` this fault changes")
        return self


def load_faults(path: Path) -> tuple[Fault, ...]:
    """A fault schedule file: a list of faults, or {faults: [...]}; problems located like a plan's."""
    data, located = compose(read_text(path, "fault schedule"), str(path))
    if data is None:
        return ()
    prefix: Loc = ()
    if isinstance(data, dict) and "faults" in data:
        data, prefix = data["faults"], ("faults",)
    if not isinstance(data, list):
        # Whatever else the file holds is not quoted: it may be any file on the machine.
        raise PlanError([Problem(str(path), 1, 1, "", "not a fault schedule: expected a list of faults, or a mapping with `faults:`")])
    return tuple(validate_text(list[Fault], data, located, prefix))
