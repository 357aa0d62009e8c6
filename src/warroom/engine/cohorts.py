"""Judging one guardrail or gate from this tick's readings: its value against its threshold,
or the new cohort against the control, and only on enough evidence.

A condition may need several queries: the value (or each cohort's value) and the count of
requests in the window (per cohort for a comparison). `ConditionQueries` names them;
`judge` turns their readings into a `Judgement` — a value with a verdict, or no verdict
and why (no data, not enough traffic). The tracker (guardrails.py) holds verdicts over the
`for` window; gates use a judgement as it stands.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from warroom.core.snapshot import ComparisonView
from warroom.core.stats import per_look_level, two_proportion_test
from warroom.core.units import format_value
from warroom.plan.conditions import Condition, Guardrail
from warroom.plan.model import Plan
from warroom.sources.base import Reading

QueryKey = tuple[str, str, str | None]  # (source, query, series_label)


@dataclass(frozen=True)
class ConditionQueries:
    """The queries one guardrail or gate reads, by role: value | new | control | count | count_new | count_control."""

    keys: dict[str, QueryKey]

    @classmethod
    def of(cls, plan: Plan, cond: Condition, pane_key: Callable[[str], QueryKey]) -> ConditionQueries:
        def key(source: str | None, query: str) -> QueryKey:
            return (source or cond.source or plan.default_source(), query, None)

        keys: dict[str, QueryKey] = {}
        if cond.compare is not None:
            keys["new"] = key(cond.compare.source, cond.compare.side("new"))
            keys["control"] = key(cond.compare.source, cond.compare.side("control"))
        else:
            keys["value"] = pane_key(cond.pane) if cond.pane else key(None, cond.query or "")
        evidence = cond.evidence
        if evidence is not None:
            if cond.compare is not None:
                keys["count_new"] = key(evidence.source, cond.compare.fill(evidence.count, "new"))
                keys["count_control"] = key(evidence.source, cond.compare.fill(evidence.count, "control"))
            else:
                keys["count"] = key(evidence.source, str(evidence.count))
        return cls(keys)

    @property
    def main(self) -> QueryKey:
        """The query whose value is shown: the value, or the new cohort's."""
        return self.keys.get("value") or self.keys["new"]

    def all(self) -> list[QueryKey]:
        return list(dict.fromkeys(self.keys.values()))


@dataclass(frozen=True)
class Judgement:
    """A value with a verdict; or `value` None: no verdict, `detail` says why."""

    value: float | None
    bad: bool = False
    limit: float | None = None  # what the value was judged against (a comparison's moves with the control)
    detail: str = ""
    comparison: ComparisonView | None = None
    lacking: bool = False  # no verdict for want of traffic (evidence.min), not for want of data
    idle: bool = False  # nothing to compare by plan (nobody on the new code, or nobody left on the old): no alarm


NOBODY_EXPOSED = "nobody is on the new code now"
EVERYONE_EXPOSED = "everyone is on the new code: no control left to compare with"


def _value(readings: Mapping[QueryKey, Reading], key: QueryKey) -> tuple[float | None, str]:
    reading = readings.get(key)
    if reading is None:
        return None, "not polled yet"
    return (reading.value, "") if reading.has_value else (None, reading.detail or reading.status)


def difference_text(difference: float, unit: str) -> str:
    """`+1.40pp` for ratios and percents (percentage points), `+30 ms`, `+1.2k` otherwise."""
    sign = "+" if difference >= 0 else "-"
    if unit in ("ratio", "percent"):
        points = abs(difference) * (100 if unit == "ratio" else 1)
        return f"{sign}{points:.2f}pp"
    return sign + format_value(abs(difference), unit)


def limits_text(cond: Condition, unit: str) -> str:
    """What counts as worse than the control: `+0.50pp and ×2`."""
    compare = cond.compare
    assert compare is not None
    parts = []
    if compare.difference is not None:
        parts.append(difference_text(compare.difference, unit))
    if compare.ratio is not None:
        parts.append(f"×{compare.ratio:g}")
    return " and ".join(parts)


def _beyond(cond: Condition, value: float) -> bool:
    """On the bad side of the condition's absolute limit (a guardrail's threshold, or outside a gate's)."""
    if cond.threshold is None:
        return False
    return cond.is_above_or_below(value) if isinstance(cond, Guardrail) else not cond.is_above_or_below(value)


def _lacking(counts: list[tuple[str, float | None, str]], minimum: float) -> str:
    """Why the counts are too few to judge on, or ""."""
    for name, n, why in counts:
        if n is None:
            return f"no count of {name} ({why})"
    smallest = min(n for _, n, _ in counts if n is not None)
    if smallest < minimum:
        return f"not enough traffic (n={smallest:.0f} < {minimum:.0f})"
    return ""


def judge(cond: Condition, unit: str, queries: ConditionQueries, readings: Mapping[QueryKey, Reading], looks: int = 1,
          share: float = 0.5) -> Judgement:
    """The condition's verdict on these readings.

    `looks`: how many times the phase's soak judges it (the test's level). `share`: the part of
    users the plan puts on the new code now; at 0 a comparison has no new cohort, at 1 no
    control (only its absolute limit still holds).
    """
    if cond.compare is not None:
        if share <= 0:
            return Judgement(None, detail=NOBODY_EXPOSED, idle=True)
        if share >= 1 and cond.threshold is None:
            return Judgement(None, detail=EVERYONE_EXPOSED, idle=True)
        return _judge_comparison(cond, unit, queries, readings, looks, control_expected=share < 1)
    value, why = _value(readings, queries.keys["value"])
    if value is None:
        return Judgement(None, detail=why)
    if cond.evidence is not None:
        n, nwhy = _value(readings, queries.keys["count"])
        lacking = _lacking([("requests", n, nwhy)], cond.evidence.min)
        if lacking:
            return Judgement(None, detail=lacking, lacking=True)
    return Judgement(value, _beyond(cond, value), cond.threshold)


def _judge_comparison(cond: Condition, unit: str, queries: ConditionQueries, readings: Mapping[QueryKey, Reading],
                      looks: int, control_expected: bool) -> Judgement:
    compare = cond.compare
    assert compare is not None
    new, why_new = _value(readings, queries.keys["new"])
    control, why_control = _value(readings, queries.keys["control"]) if control_expected else (None, EVERYONE_EXPOSED)
    n_new = n_control = None
    if cond.evidence is not None:
        n_new, why_n_new = _value(readings, queries.keys["count_new"])
        n_control, why_n_control = _value(readings, queries.keys["count_control"])
    view = ComparisonView(new, control, None, None, n_new, n_control)
    if new is None:
        return Judgement(None, detail=f"new cohort: {why_new}", comparison=view)
    if cond.evidence is not None:
        counts = [("the new cohort's requests", n_new, why_n_new)]
        if control_expected:
            counts.append(("the control's requests", n_control, why_n_control))
        lacking = _lacking(counts, cond.evidence.min)
        if lacking:
            return Judgement(None, detail=lacking, comparison=_with_text(view, unit), lacking=True)
    ceiling = _beyond(cond, new)
    if not control_expected:  # everyone is on the new code: only the absolute limit is left to judge
        return Judgement(new, ceiling, cond.threshold, comparison=_with_text(view, unit))
    if control is None:
        # The absolute limit holds regardless of the control; without the control nothing else can be said.
        if ceiling:
            return Judgement(new, True, cond.threshold, comparison=_with_text(view, unit))
        return Judgement(None, detail=f"control: {why_control}", comparison=_with_text(view, unit))

    higher = compare.worse == "above"
    limits = []
    if compare.difference is not None:
        limits.append(control + compare.difference)
    if compare.ratio is not None:
        limits.append(control * compare.ratio)
    # Given both, the new cohort is worse only beyond both: a ratio alone trips on 0.01 % against
    # 0.02 %, a difference alone on the noise of a high baseline.
    limit = max(limits) if higher else min(limits)
    worse = new > limit if higher else new < limit
    difference = new - control
    ratio = new / control if control else None
    p_value = level = None
    if cond.evidence is not None and cond.evidence.test and n_new and n_control:
        scale = 1.0 if unit == "ratio" else 0.01
        result = two_proportion_test(new * scale * n_new, n_new, control * scale * n_control, n_control, worse=compare.worse)
        p_value, level = result.p_value, per_look_level(cond.evidence.false_alarm, looks)
        worse = worse and p_value < level
    view = ComparisonView(new, control, difference, ratio, n_new, n_control, p_value, level)
    if cond.threshold is not None:
        limit = min(limit, cond.threshold) if higher else max(limit, cond.threshold)
    return Judgement(new, worse or ceiling, limit, comparison=_with_text(view, unit))


def _with_text(view: ComparisonView, unit: str) -> ComparisonView:
    parts = [f"new {format_value(view.new, unit)}"]
    if view.control is not None:
        parts.append(f"vs control {format_value(view.control, unit)}")
        if view.new is not None:
            parts.append(f"Δ{difference_text(view.new - view.control, unit)}")
    if view.p_value is not None and view.level is not None:
        parts.append(_test_text(view.p_value, view.level))
    if view.n_new is not None and view.n_control is not None:
        parts.append(f"n={view.n_new:.0f}/{view.n_control:.0f}")
    return replace(view, text=" ".join(parts))


def _test_text(p_value: float, level: float) -> str:
    """`p=0.0031 < 0.00083`: the test's p-value against the level the difference counts as real at."""
    shown = "p≈0" if p_value < 1e-9 else f"p={p_value:.2g}"
    real = p_value < level
    return f"{shown} {'<' if real else '≥'} {level:.2g}" + ("" if real else " (not yet real)")
