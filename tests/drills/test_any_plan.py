"""Any plan drills offline: its own pane ids and PromQL run on the simulator through each
pane's model (`simulate:`, or inferred from query and unit), its soaks are shortened to
drill size, and the shipped scenarios fit its own phases.

The plan under test is tests/drills/readme-plan.yaml, written from the README alone: a
six-phase dark launch 0.1 → 1 → 5 → 25 → 50 → 100 % on Unleash (the staff-only first
phase is 10 % of the `staff` segment), with its own PromQL against the exporter's metrics.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.drills.conftest import drill
from warroom.cli.main import main
from warroom.drills.scenario import builtin_names, load_scenario
from warroom.drills.session import DrillSetupError, prepare
from warroom.plan.load import load_plan, parse_plan
from warroom.plan.simulate import parse_expression
from warroom.plan.yamlfile import PlanError
from warroom.sources.simulator.model import ServiceModel
from warroom.sources.simulator.queries import infer, pane_models
from warroom.store import open_store as Store

README_PLAN = Path(__file__).with_name("readme-plan.yaml")

EXPECTED = {
    # name: (final state, first bad sample in phase, time to detect, time to mitigate, first response, automatic)
    # Faults of the new code show where the exposure makes them visible: the error spike at
    # 5 % (phase 3), the storm at 50 % (phase 5); the p95 creep from phase 2 crosses 500 ms
    # on the service only at 50 % (phase 5); the on-call acts 5 s after the first red pane.
    "canary-error-spike": ("ROLLED BACK", 3, 30, 30, "rollback", True),
    "connection-storm": ("ROLLED BACK", 5, 30, 30, "rollback", True),
    "false-alarm": ("COMPLETE", 1, None, None, None, None),
    "flag-service-down-during-rollback": ("ROLLED BACK", 3, 30, 51.2, "rollback", True),
    "latency-creep": ("ROLLED BACK", 5, 5, 5, "rollback", False),
    "metrics-outage": ("COMPLETE", 4, 10, None, "pause", False),
    # A tenth of the new code's requests failing at 1 % (phase 2) is 0.12 % of the service's:
    # only the cohort guardrail sees it, after its 30 s window. At night the rollback guardrails have
    # too few requests to judge; the budget alert (no minimum) breaches in phase 1, and only alerts.
    "canary-only-regression": ("ROLLED BACK", 2, 30, 30, "rollback", True),
    "low-traffic-false-alarm": ("COMPLETE", 1, None, None, None, None),
}


def test_every_shipped_scenario_is_covered():
    assert sorted(EXPECTED) == builtin_names()


def test_the_readme_plan_is_the_launch_the_issue_describes():
    plan = load_plan(README_PLAN)
    assert plan.flag_provider.provider == "unleash" and {s.type for s in plan.sources.values()} == {"prometheus"}
    # 10 % of staff ≈ 0.1 % of users, then 1 → 5 → 25 → 50 → 100 %.
    assert plan.phase_exposures() == pytest.approx([0.1, 1, 5, 25, 50, 100])
    assert all(ph.flags["checkout-v2"].rollout == int(ph.flags["checkout-v2"].rollout) for ph in plan.phases)


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_the_readme_plan_drills_with_every_shipped_scenario(tmp_path, name):
    state, phase, detect, mitigate, response, automatic = EXPECTED[name]
    plan = load_plan(README_PLAN)
    card, db, out = await drill(tmp_path, name, plan)
    assert card.passed, card.findings
    assert card.final_state == state and card.mistakes == ()
    entries = Store(db).entries()
    # The first bad sample is in the phase where the fault shows on the service's own numbers.
    entered = [e.ts for e in entries if e.kind == "step.outcome" and "entered_phase" in e.data]
    assert sum(1 for ts in entered if ts <= card.started_at + card.incident_at) == phase
    assert card.time_to_detect == (None if detect is None else pytest.approx(detect, abs=0.5))
    assert card.time_to_mitigate == (None if mitigate is None else pytest.approx(mitigate, abs=0.5))
    responses = [a for a in card.actions if a.action in ("pause", "rollback")]
    assert [(a.action, a.automatic) for a in responses[:1]] == ([] if response is None else [(response, automatic)])
    # The plan's own windows and thresholds, as written: the guardrails name its pane ids.
    if name == "canary-error-spike":
        intent = next(e for e in entries if e.kind == "rollback.intent")
        assert "guardrail five-xx: http_5xx" in intent.message and "above 1.00% (held 30s)" in intent.message
    if name == "canary-only-regression":
        intent = next(e for e in entries if e.kind == "rollback.intent")
        assert "guardrail five-xx-vs-control: new 10.00% vs control 0.042% Δ+9.96pp" in intent.message  # noise on
    # Every soak shortened, and said so; every fault injected, and when.
    hours = (1, 4, 12, 24, 24, 48)
    assert card.soaks == tuple((i, h * 3600.0, 30.0) for i, h in enumerate(hours, 1))
    assert len(card.injected) == len(load_scenario(name).timeline)
    assert ("  soaks shortened:   phase 1 1h → 30s, phase 2 4h → 30s, phase 3 12h → 30s, phase 4 24h → 30s, "
            "phase 5 24h → 30s, phase 6 48h → 30s in this drill") in out


def test_check_lists_every_pane_a_drill_cannot_model_with_the_line_to_add(tmp_path, capsys):
    # Its servers are not there (exit 7): the drill section still says it all.
    main(["check", str(README_PLAN), "--state", str(tmp_path / "state.sqlite")])
    out = capsys.readouterr().out
    assert "drill (offline, simulator): 8 of 9 panes modelled" in out
    assert "  p95_ms: latency_p95 * 1000 (inferred from query and unit; pin it with `simulate: latency_p95 * 1000`)" in out
    assert "  socket_ok: connection_success * 100 (inferred" in out
    assert "  burn: error_rate / 0.001 (its simulate:)" in out
    assert (f"  WARN pane queue_lag ({README_PLAN}:74): a drill cannot model its query; add to the pane "
            "`simulate: request_rate`") in out
    assert "fast time (--speed other than 1): refused for this plan: environment staging" in out


async def test_a_drill_refuses_a_plan_whose_guardrail_it_cannot_judge(tmp_path):
    # The lag pane, watched by a guardrail: the drill would see no data and prove nothing.
    text = README_PLAN.read_text().replace(
        "  - id: five-xx\n", "  - {id: lag, pane: queue_lag, above: 1000, for: 1m, action: pause}\n  - id: five-xx\n")
    plan = parse_plan(text, str(README_PLAN), README_PLAN.parent)
    with pytest.raises(DrillSetupError, match=r"pane queue_lag \(.*readme-plan.yaml:74\): a drill cannot model its query; "
                                              r"add to the pane `simulate: request_rate`"):
        prepare(plan, load_scenario("canary-error-spike"), state=str(tmp_path / "s.sqlite"))
    # With the line added, it drills.
    fixed = parse_plan(text.replace("    unit: count\n\nguardrails:", "    unit: count\n    simulate: request_rate / 10\n\nguardrails:"),
                       str(README_PLAN), README_PLAN.parent)
    assert [m.how for m in pane_models(fixed)][-1] == "simulate:"
    prepare(fixed, load_scenario("canary-error-spike"), state=str(tmp_path / "s.sqlite"))


def test_a_scenario_that_does_not_fit_the_plan_says_which_phase(tmp_path):
    three = parse_plan(README_PLAN.read_text().replace("flags: {checkout-v2: 50}", "flags: {checkout-v2: 40}")
                       .replace("flags: {checkout-v2: 100}", "flags: {checkout-v2: 45}"), str(README_PLAN), README_PLAN.parent)
    with pytest.raises(DrillSetupError, match=r"scenario connection-storm: timeline\[0\] \(phase 50% \+5s\): "
                                              r"no phase of the plan reaches 50% exposure \(the most is 45%\)"):
        prepare(three, load_scenario("connection-storm"), state=str(tmp_path / "s.sqlite"))


# ---------------------------------------------------------------- what a pane models


@pytest.mark.parametrize(("query", "unit", "model"), [
    ('sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))', "ratio", "error_rate"),
    ('100 * sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))', "percent", "error_rate * 100"),
    ('sum(rate(http_requests_total{code=~"5.."}[1m]))', "count", "error_rate * request_rate"),
    ("histogram_quantile(0.99, sum by (le) (rate(http_server_duration_seconds_bucket[5m])))", "seconds", "latency_p99"),
    ("histogram_quantile(0.5, sum by (le) (rate(http_server_duration_seconds_bucket[5m]))) * 1000", "ms", "latency_p50 * 1000"),
    ("avg(rate(container_cpu_usage_seconds_total[1m]))", "ratio", "cpu"),
    ("max(container_memory_working_set_bytes) / max(container_spec_memory_limit_bytes)", "ratio", "memory"),
    ('sum(rate(ws_connect_total{outcome="failed"}[1m])) / sum(rate(ws_connect_total[1m]))', "ratio", "1 - connection_success"),
    ("sum(rate(http_requests_total[1m]))", "count", "request_rate"),
    # A latency on a ratio pane, or a quantile the model has not: no guess, the pane says `simulate:`.
    ("histogram_quantile(0.95, sum by (le) (rate(x_bucket[1m])))", "ratio", None),
    ("histogram_quantile(0.75, sum by (le) (rate(x_bucket[1m])))", "seconds", None),
    ('sum(kafka_consumergroup_lag{group="x"})', "count", None),
])
def test_models_are_inferred_from_query_and_unit(query, unit, model):
    assert infer(query, unit) == model


def test_a_simulate_expression_is_checked_when_the_plan_loads():
    assert parse_expression("100 * (1 - connection_success)").evaluate(lambda m: 0.97) == pytest.approx(3.0)
    for bad, says in (("latency_p95 ** 2", "only + - * / are allowed"), ("p95", "unknown simulator metric 'p95'"),
                      ("__import__('os')", "only numbers, metric names"), ("1000", "name at least one simulator metric"),
                      ("error_rate +", "not an expression")):
        text = README_PLAN.read_text().replace("simulate: error_rate / 0.001", f"simulate: \"{bad}\"")
        with pytest.raises(PlanError) as caught:
            parse_plan(text, "plan.yaml")
        assert caught.value.problems[0].field == "panes[7].simulate" and says in str(caught.value), str(caught.value)


def test_a_fault_of_the_new_code_moves_the_service_by_the_exposure():
    from warroom.plan.faults import Fault

    new = Fault(metric="error_rate", at=0, value=0.5)
    shared = Fault(metric="error_rate", at=0, value=0.5, while_exposed=False)
    for exposure in (0.001, 0.01, 0.05, 0.25, 1.0):
        clean = ServiceModel(noise=0).value("error_rate", 1, exposure)
        moved = ServiceModel(noise=0, faults=(new,)).value("error_rate", 1, exposure) - clean
        traffic = exposure * 1000 / (exposure * 1000 + (1 - exposure) * 850)  # the new cohort's share of requests
        assert moved == pytest.approx(traffic * (0.5 - 0.0008), rel=1e-6)
        assert ServiceModel(noise=0, faults=(shared,)).value("error_rate", 1, exposure) == 0.5
    # Rolled back: nobody on the new code, its fault is gone; the shared one stays.
    assert ServiceModel(noise=0, faults=(new,)).value("error_rate", 1, 0.0) == pytest.approx(0.0004)
    assert ServiceModel(noise=0, faults=(shared,)).value("error_rate", 1, 0.0) == 0.5
