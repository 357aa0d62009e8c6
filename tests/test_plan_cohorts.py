"""The plan's cohort comparisons, minimum evidence, shadow mode and exposure check: the syntax
as the README writes it, and every mistake a message with its file, line and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.conftest import BASE_PLAN
from warroom.plan.conditions import CohortPair
from warroom.plan.load import load_plan, parse_plan
from warroom.plan.yamlfile import PlanError

ROOT = Path(__file__).resolve().parent.parent
COHORT = 'sum(rate(x{code=~"5..", cohort="{cohort}"}[1m])) / sum(rate(x{cohort="{cohort}"}[1m]))'


def plan_with(guardrail: str, extra: str = "") -> str:
    """BASE_PLAN with one more guardrail (YAML, indented as a list item) and top-level keys."""
    head, tail = BASE_PLAN.split("phases:\n", 1)
    added = textwrap.indent(textwrap.dedent(guardrail).strip("\n"), "  ")
    return head + (added + "\n" if added else "") + extra + "phases:\n" + tail


def problems(text: str) -> list[str]:
    with pytest.raises(PlanError) as info:
        parse_plan(text, "plan.yaml")
    return [str(p) for p in info.value.problems]


def test_a_comparison_written_once_with_cohort_and_its_limits_in_units():
    plan = parse_plan(plan_with(f"""
        - id: errors-vs-control
          pane: errors
          compare: {{query: '{COHORT}', difference: +0.5pp, ratio: ×2}}
          above: 5%
          evidence: {{count: 'sum(increase(x{{cohort="{{cohort}}"}}[1m]))', min: 200, test: two-proportion, false_alarm: 1%}}
          mode: shadow
    """))
    g = plan.guardrails[-1]
    assert g.compare.difference == pytest.approx(0.005) and g.compare.ratio == 2 and g.compare.worse == "above"
    assert g.threshold == pytest.approx(0.05) and g.op == "above" and g.mode == "shadow"
    assert g.compare.side("new") == COHORT.replace("{cohort}", "new")
    assert g.compare.fill(g.evidence.count, "control") == 'sum(increase(x{cohort="control"}[1m]))'
    assert g.evidence.min == 200 and g.evidence.false_alarm == pytest.approx(0.01)


def test_a_comparison_as_two_queries_with_its_own_labels_and_a_lower_is_worse_direction():
    plan = parse_plan(plan_with("""
        - compare:
            new: 'sum(rate(ok{version="v2"}[1m])) / sum(rate(all{version="v2"}[1m]))'
            control: 'sum(rate(ok{version="v1"}[1m])) / sum(rate(all{version="v1"}[1m]))'
            unit: ratio
            difference: -1pp
            ratio: x0.98
          evidence: {count: {new: 'sum(increase(all{version="v2"}[1m]))', control: 'sum(increase(all{version="v1"}[1m]))'}, min: 50}
    """))
    g = plan.guardrails[-1]
    assert g.compare.worse == "below" and g.op == "below" and g.threshold is None
    assert g.compare.difference == pytest.approx(-0.01) and g.compare.ratio == pytest.approx(0.98)
    assert isinstance(g.evidence.count, CohortPair) and plan.guardrail_id(len(plan.guardrails) - 1) == "cohort-vs-control"
    assert g.compare.side("control").startswith("sum(rate(ok{version=\"v1\"}")


def test_a_latency_comparison_in_milliseconds_on_a_seconds_pane_and_a_plain_guardrail_with_evidence():
    plan = parse_plan(plan_with("""
        - {pane: p95, compare: {query: 'histogram_quantile(0.95, sum by (le) (rate(h{cohort="{cohort}"}[1m])))', difference: +50ms}}
        - {pane: errors, above: 1%, evidence: {count: 'sum(increase(x[1m]))', min: 200}}
    """))
    assert plan.guardrails[-2].compare.difference == pytest.approx(0.05)
    assert plan.guardrails[-1].evidence.count == "sum(increase(x[1m]))" and plan.guardrails[-1].evidence.test is None


@pytest.mark.parametrize("guardrail,expected", [
    ("- {pane: errors, compare: {query: 'rate(x[1m])', difference: +0.5pp}}",
     "compare: the query must contain {cohort}, which becomes each cohort's label (or give `new` and `control`)"),
    (f"- {{pane: errors, compare: {{query: '{COHORT}'}}}}",
     "compare: give `difference` (e.g. +0.5pp), `ratio` (e.g. ×2), or both: what counts as worse than the control"),
    (f"- {{pane: errors, compare: {{query: '{COHORT}', difference: +0.5pp, ratio: 0.5}}}}",
     "compare: `difference` and `ratio` disagree on which way is worse (a + difference goes with a ratio above 1)"),
    (f"- {{pane: errors, compare: {{query: '{COHORT}', difference: lots}}}}",
     "compare.difference: expected a signed difference in the pane's unit, or with a unit: +0.5pp"),
    (f"- {{pane: errors, compare: {{query: '{COHORT}', ratio: twice}}}}",
     "compare.ratio: expected a ratio of the new cohort to the control: ×2 (or 2) when higher is worse"),
    (f"- {{pane: errors, compare: {{query: '{COHORT}', difference: +0.5pp}}, below: 1%}}",
     "the absolute limit and the comparison disagree on which way is worse (the comparison says higher is worse)"),
    (f"- {{pane: errors, query: x, compare: {{query: '{COHORT}', ratio: 2}}}}",
     "a comparison asks its own queries"),
    ("- {pane: errors, above: 1%, evidence: {count: 'x{cohort=\"{cohort}\"}', min: 5}}",
     "evidence.count names cohorts, but this compares no cohorts"),
    (f"- {{pane: errors, compare: {{query: '{COHORT}', ratio: 2}}, evidence: {{count: 'sum(x)', min: 5}}}}",
     "evidence.count must count each cohort: put {cohort} in it, or give {new: …, control: …}"),
    ("- {pane: errors, above: 1%, evidence: {count: 'sum(x)', min: 5, test: two-proportion}}",
     "evidence.test compares the new cohort with the control: it needs `compare`"),
    (f"- {{pane: p95, compare: {{query: '{COHORT}', ratio: 2}}, evidence: {{count: 'x{{cohort}}', min: 5, test: two-proportion}}}}",
     "evidence.test: the test compares ratios (errors over requests), and this comparison is in seconds: drop `test`, or compare a ratio"),
    (f"- {{pane: errors, compare: {{query: '{COHORT}', ratio: 2, unit: seconds}}}}",
     "compare.unit: the comparison is shown on pane 'errors', whose unit is ratio: drop compare.unit or make them agree"),
    (f"- {{pane: errors, compare: {{query: '{COHORT}', ratio: 2}}, mode: dry}}", "mode: Input should be 'act' or 'shadow'"),
    (f"- {{pane: errors, compare: {{query: '{COHORT}', ratio: 2}}, evidence: {{count: 'x{{cohort}}', min: 5, false_alarm: 150%}}}}",
     "evidence.false_alarm: Input should be less than 1"),
])
def test_comparison_mistakes_name_the_line_and_field(guardrail, expected):
    found = problems(plan_with(guardrail))
    assert len(found) == 1 and expected in found[0], found
    assert found[0].startswith("plan.yaml:1") or found[0].startswith("plan.yaml:2")


def test_the_exposure_check_and_its_mistakes():
    plan = parse_plan(plan_with("", "exposure: {query: 'sum(increase(s{cohort=\"{cohort}\"}[1m]))', settle: 30s, false_alarm: 0.1%}\n"))
    assert plan.exposure.settle == 30 and plan.exposure.false_alarm == pytest.approx(0.001) and plan.exposure.min == 100
    assert problems(plan_with("", "exposure: {query: 'sum(s)'}\n")) == [
        "plan.yaml:13:1: exposure: the query must contain {cohort}, which becomes each cohort's label (or give `new` and `control`)"]
    assert problems(plan_with("", "exposure: {query: 's{cohort}', flag: nope}\n")) == [
        "plan.yaml:13:32: exposure.flag: flag 'nope' is not set by any phase (phases set: feature)"]


def test_the_shipped_plans_watch_error_rate_and_p95_against_the_control():
    from warroom.plan.demo import demo_plan

    for plan in (load_plan(ROOT / "sample-config.yaml"), load_plan(ROOT / "examples" / "staging-prometheus.yaml"), demo_plan(Path("/tmp"))):
        compared = {g.pane: g for g in plan.guardrails if g.compare is not None}
        assert set(compared) == {"error_rate", "latency_p95"}, plan.rollout.name
        assert all(g.evidence is not None and g.mode == "act" for g in compared.values())
        assert compared["error_rate"].evidence.test == "two-proportion"
        assert plan.exposure is not None and "{cohort}" in plan.exposure.query
        # The fixed error-rate threshold counts requests too: one error at night proves nothing.
        assert next(g for g in plan.guardrails if g.id == "error-rate").evidence.min == 200


def test_the_readme_example_of_a_cohort_guardrail_is_a_valid_plan():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Cohort guardrails: the new code against the old"):]
    block = section[section.index("```yaml\n") + 8:section.index("```\n", section.index("```yaml\n"))]
    guardrail = block.split("guardrails:\n", 1)[1].replace("pane: error_rate ", "pane: errors     ")
    plan = parse_plan(plan_with(textwrap.dedent(guardrail)))
    g = plan.guardrails[-1]
    assert (g.compare.difference, g.compare.ratio, g.threshold) == (pytest.approx(0.005), 2, pytest.approx(0.05))
    assert g.evidence.test == "two-proportion" and g.for_ == 30
