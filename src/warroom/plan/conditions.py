"""Conditions on numbers: guardrails (what is bad), gates (what must hold to step up), cohort comparisons,
minimum evidence and the exposure check."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, model_validator

from warroom.plan.fields import Duration, Ident, Number, PositiveNumber, Strict

Unit = Literal["ratio", "percent", "seconds", "ms", "count", "bytes"]
_PERCENT = re.compile(r"\s*(-?\d+(?:\.\d+)?)\s*%\s*")

COHORT = "{cohort}"
Cohort = Literal["new", "control"]


def _probability(value: Any) -> Any:
    # A false-alarm rate as the plan writes it: 1% or 0.01.
    if isinstance(value, str) and (match := _PERCENT.fullmatch(value)):
        return float(match.group(1)) / 100
    return value


Probability = Annotated[float, BeforeValidator(_probability), Field(gt=0, lt=1)]


class CohortPair(Strict):
    new: str
    control: str

    def of(self, cohort: Cohort) -> str:
        return self.new if cohort == "new" else self.control


class CohortLabels(CohortPair):
    """What `{cohort}` becomes in each cohort's query (the label values of your metrics)."""

    new: str = "new"
    control: str = "control"


class CohortQueries(Strict):
    """A query asked once per cohort: one text with `{cohort}` in it, or one query for each."""

    query: str | None = None
    new: str | None = None
    control: str | None = None
    cohorts: CohortLabels = Field(default_factory=CohortLabels)
    source: str | None = None

    @model_validator(mode="after")
    def _sides(self) -> CohortQueries:
        if self.query is not None:
            if self.new is not None or self.control is not None:
                raise ValueError("give `query` (with {cohort} in it) or both `new` and `control`, not both")
            if COHORT not in self.query:
                raise ValueError("the query must contain {cohort}, which becomes each cohort's label (or give `new` and `control`)")
        elif self.new is None or self.control is None:
            raise ValueError("give `query` with {cohort} in it, or both `new` and `control` queries")
        return self

    def side(self, cohort: Cohort) -> str:
        if self.query is not None:
            return self.query.replace(COHORT, self.cohorts.of(cohort))
        return (self.new if cohort == "new" else self.control) or ""

    def fill(self, text: str | CohortPair, cohort: Cohort) -> str:
        """Another query of these cohorts (a count, say): `{cohort}` replaced, or its side of a pair."""
        if isinstance(text, CohortPair):
            return text.of(cohort)
        return text.replace(COHORT, self.cohorts.of(cohort))


class Comparison(CohortQueries):
    """The new cohort's value against the control's, bad beyond a difference, a ratio, or both."""

    unit: Unit | None = None  # default: the pane's
    # new − control beyond which the new code is worse; its sign says which way is worse.
    difference: Number | None = None
    # new / control beyond which it is worse: 2 (×2) when higher is worse, 0.5 when lower is.
    ratio: PositiveNumber | None = None

    @model_validator(mode="after")
    def _limits(self) -> Comparison:
        if self.difference is None and self.ratio is None:
            raise ValueError("give `difference` (e.g. +0.5pp), `ratio` (e.g. ×2), or both: what counts as worse than the control")
        if self.difference == 0:
            raise ValueError("a difference of 0 trips on any gap at all; give its size, +0.5pp say")
        if self.ratio == 1:
            raise ValueError("a ratio of 1 trips on any gap at all; ×2 when higher is worse, ×0.5 when lower is")
        if self.difference is not None and self.ratio is not None and (self.difference > 0) != (self.ratio > 1):
            raise ValueError("`difference` and `ratio` disagree on which way is worse (a + difference goes with a ratio above 1)")
        return self

    @property
    def worse(self) -> str:
        """Which side of the control is worse: above (higher is worse) or below."""
        if self.difference is not None:
            return "above" if self.difference > 0 else "below"
        return "above" if (self.ratio or 2) > 1 else "below"


class Evidence(Strict):
    """Judge only on enough traffic in the window, and (comparisons) only on a difference that is real."""

    count: str | CohortPair  # requests (or samples) in the window; `{cohort}` in it for a comparison
    min: PositiveNumber
    source: str | None = None
    # A one-sided two-proportion z-test on the window's counts (ratio comparisons only).
    test: Literal["two-proportion"] | None = None
    # With `test`: the chance that a healthy phase trips on noise during its soak.
    false_alarm: Probability = 0.01


class ExposureCheck(CohortQueries):
    """Units (users, sessions) assigned to each cohort in a window: does the new share match the flag?"""

    flag: str | None = None  # whose percentage; default: the simulator's flag, else the plan's first
    min: PositiveNumber = 100
    false_alarm: Probability = 0.001  # sample-ratio mismatch when the chi-square p-value is below it
    settle: Duration = 60.0  # after a step, the window's lag before the new split shows


class Condition(Strict):
    """A value compared with a threshold: `pane` or `query`, and `above` or `below`; or a cohort comparison."""

    # What the threshold means, for the error message: a bad side (guardrail) or a good one (gate).
    _threshold_means: ClassVar[str] = "the threshold that is bad"
    _threshold_is_bad: ClassVar[bool] = True

    pane: str | None = None
    query: str | None = None
    source: str | None = None
    above: Number | None = None
    below: Number | None = None
    compare: Comparison | None = None
    evidence: Evidence | None = None

    @model_validator(mode="after")
    def _shape(self) -> Condition:
        if self.compare is not None:
            self._comparison_shape(self.compare)
        else:
            if (self.pane is None) == (self.query is None):
                raise ValueError("give exactly one of `pane` (a pane id) or `query`")
            if (self.above is None) == (self.below is None):
                raise ValueError(f"give exactly one of `above` or `below` ({self._threshold_means})")
        evidence = self.evidence
        if evidence is not None:
            paired = isinstance(evidence.count, CohortPair) or COHORT in evidence.count
            if self.compare is None and paired:
                raise ValueError("evidence.count names cohorts, but this compares no cohorts: give one query counting the window's requests")
            if self.compare is not None and not paired:
                raise ValueError("evidence.count must count each cohort: put {cohort} in it, or give {new: …, control: …}")
            if evidence.test and self.compare is None:
                raise ValueError("evidence.test compares the new cohort with the control: it needs `compare`")
        return self

    def _comparison_shape(self, compare: Comparison) -> None:
        if self.query is not None:
            raise ValueError("a comparison asks its own queries (compare.query, or compare.new and compare.control); "
                             "drop `query` (`pane` may say where it is shown)")
        if self.above is not None and self.below is not None:
            raise ValueError("give at most one of `above` or `below`: the new cohort's absolute limit")
        if self.above is not None or self.below is not None:
            bad_side = self.op if self._threshold_is_bad else ("below" if self.op == "above" else "above")
            if bad_side != compare.worse:
                raise ValueError(f"the absolute limit and the comparison disagree on which way is worse "
                                 f"(the comparison says {'higher' if compare.worse == 'above' else 'lower'} is worse)")

    @property
    def op(self) -> str:
        if self.above is None and self.below is None and self.compare is not None:
            return self.compare.worse if self._threshold_is_bad else ("below" if self.compare.worse == "above" else "above")
        return "above" if self.above is not None else "below"

    @property
    def threshold(self) -> float | None:
        """The absolute limit; None for a comparison that has none (its limit moves with the control)."""
        return self.above if self.above is not None else self.below

    def is_above_or_below(self, value: float) -> bool:
        """True when the value is on the named side of the threshold (False without one)."""
        if self.threshold is None:
            return False
        return value > self.threshold if self.op == "above" else value < self.threshold


class Guardrail(Condition):
    id: Ident | None = None
    for_: Duration = Field(0.0, alias="for")
    action: Literal["rollback", "pause", "alert"] = "rollback"
    no_data: Literal["hold", "breach", "ignore"] = "hold"
    # shadow: judged and journaled ("would have rolled back"), never acting nor blocking a step.
    mode: Literal["act", "shadow"] = "act"
    description: str = ""


class Gate(Condition):
    """Must be green to step up. `above`/`below` here state what is good."""

    _threshold_means: ClassVar[str] = "what the value must be to pass"
    _threshold_is_bad: ClassVar[bool] = False

    name: str | None = None

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.compare is not None:
            return f"{self.pane or 'new cohort'} vs control"
        op = ">" if self.above is not None else "<"
        return f"{self.pane or self.query} {op} {self.threshold:g}"
