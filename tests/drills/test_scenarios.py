"""Every shipped scenario, headless with its scripted responder: the expected score card.

These are regression tests of the demo plan itself: if a guardrail's window, a gate or
the rollback changes, the card changes and the test says which field moved.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.drills.conftest import drill
from warroom.cli.main import main
from warroom.drills.scenario import DEFAULT, builtin_names, load_scenario, parse_scenario
from warroom.drills.session import DrillSetupError, drill_plan
from warroom.plan.load import load_plan
from warroom.reports.scorecard import latest_score_card
from warroom.store import open_store as Store

EXPECTED = {
    # name: (final state, time to detect, time to mitigate (None: no rollback), automatic?, first response)
    "canary-error-spike": ("ROLLED BACK", 10, 10, True, "rollback"),
    "latency-creep": ("ROLLED BACK", 5, 5, False, "rollback"),
    "connection-storm": ("ROLLED BACK", 10, 10, True, "rollback"),
    "metrics-outage": ("COMPLETE", 10, None, False, "pause"),
    "flag-service-down-during-rollback": ("ROLLED BACK", 10, None, True, "rollback"),
    "false-alarm": ("COMPLETE", None, None, None, None),
    "canary-only-regression": ("ROLLED BACK", 10, 10, True, "rollback"),
    "low-traffic-false-alarm": ("COMPLETE", None, None, None, None),
}


def test_every_shipped_scenario_is_covered():
    assert sorted(EXPECTED) == builtin_names()


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_shipped_scenario_score_card(tmp_path, name):
    state, detect, mitigate, automatic, response = EXPECTED[name]
    card, db, out = await drill(tmp_path, name)
    assert card.passed, card.findings
    assert card.final_state == state
    assert card.mistakes == () and card.findings == ()
    if name == "low-traffic-false-alarm":
        # Too few requests to judge is no bad sample: no guardrail breached, nothing to detect.
        assert card.incident_at is None
    else:
        assert card.incident_at is not None  # every other scenario shows something bad on screen
    if detect is None:
        assert card.time_to_detect is None
    else:
        assert card.time_to_detect == pytest.approx(detect, abs=1.5)
    if mitigate is not None:
        assert card.time_to_mitigate == pytest.approx(mitigate, abs=1.5)
    responses = [a for a in card.actions if a.action in ("pause", "rollback")]
    if response is None:
        assert responses == []
    else:
        assert responses[0].action == response and responses[0].automatic is automatic
    # Saved with the journal, and what the TUI reads back is the same card.
    assert latest_score_card(Store(db)) == card
    assert "DRILL SCORE" in out and ("PASS" in out)
    # Runbook `run` steps are dry-run in a drill.
    if card.final_state == "ROLLED BACK":
        assert card.dry_run_steps == 1
        assert not (db.parent / "rollback-demo.log").exists() and not Path("rollback-demo.log").exists()


PLANS = {"sample-config.yaml": "sample-config.yaml", "staging-prometheus": "examples/staging-prometheus.yaml"}


@pytest.mark.parametrize("plan_name", sorted(PLANS))
@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_shipped_scenarios_fit_the_sample_plans_soaks_of_hours(tmp_path, name, plan_name):
    # Soaks of 30 min to 24 h, 30 s `for` windows, a manual step-up and nine required items:
    # the drill shortens each soak to 30 s and the responder's routine walks the phases.
    # staging-prometheus reads a real Prometheus: offline, the simulator answers its PromQL.
    plan = load_plan(Path(__file__).resolve().parents[2] / PLANS[plan_name])
    card, _, _ = await drill(tmp_path, name, plan)
    assert card.passed, card.findings
    assert card.final_state == EXPECTED[name][0]
    assert card.soaks == ((1, 1800.0, 30.0), (2, 3600.0, 30.0), (3, 7200.0, 30.0), (4, 7200.0, 30.0), (5, 86400.0, 30.0))


async def test_flag_outage_rollback_retries_until_confirmed(tmp_path):
    card, db, out = await drill(tmp_path, "flag-service-down-during-rollback")
    # The flag service is down from phase 1 +15s for 45s: every attempt fails and is journaled
    # until it is back, then the flags read back off.
    assert card.failed_attempts >= 6
    assert 40 <= card.time_to_mitigate <= 60
    assert card.rollback_latency == pytest.approx(card.time_to_mitigate - card.time_to_detect, abs=0.5)
    attempts = [e for e in Store(db).entries() if e.kind == "rollback.attempt"]
    assert all("503" in e.message for e in attempts)


MISTAKE = """
name: forced-into-red
title: Forced step up past a red gate
timeline:
  - {phase: 1, after: 2s, metric: error_rate, set: 0.002, while_exposed: false}
responder:
  routine: false
  actions:
    - {phase: 1, after: 25s, do: force_step, reason: the PM wants 25% today}
expect: {action: none}
duration: 1m
"""


async def test_forced_step_into_red_gate_and_missing_item_are_mistakes(tmp_path):
    # 0.2 % of every user's requests fail (a shared dependency, so the new code is no worse than the
    # old): under the 1 % guardrail, over the phase-1 gate (< 0.1 %); the required item is not ticked.
    card, db, out = await drill(tmp_path, parse_scenario(MISTAKE))
    assert not card.passed
    assert any("red gate" in m and "Error rate < 0.1%" in m for m in card.mistakes)
    assert any("required items missing" in m and "Monitoring dashboards checked" in m for m in card.mistakes)
    assert [a.action for a in card.actions] == ["step up", "forced step up", "step up"]
    assert "FAIL" in out


SLOW_HUMAN = """
name: slow-human
title: The on-call rolls back too late
timeline:
  - {phase: 1, after: 5s, metric: memory, set: 0.85, while_exposed: false}
responder:
  - {on: alarm, after: 25s, do: rollback}
expect: {action: rollback, within: 20s, by: human}
duration: 2m
"""


async def test_late_response_fails_the_drill(tmp_path):
    # Memory over 80 % (a shared cache, so every user's) turns its guardrail red at once; automation would act after 30 s,
    # the human acts after 25 s: the right action, by the right actor, too late.
    card, _, _ = await drill(tmp_path, parse_scenario(SLOW_HUMAN))
    assert card.time_to_detect == pytest.approx(25, abs=1.5)
    assert not card.passed
    assert len(card.findings) == 1 and "expected within 20s" in card.findings[0]
    assert card.actions[-1].action == "rollback" and not card.actions[-1].automatic


def test_cli_drill_exit_codes(tmp_path, capsys):
    assert main(["drill", "--scenario", "canary-error-spike", "--headless", "--state", str(tmp_path / "a" / "s.sqlite")]) == 0
    assert "DRILL SCORE" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(SLOW_HUMAN)
    assert main(["drill", "--scenario", str(bad), "--headless", "--state", str(tmp_path / "b" / "s.sqlite")]) == 8
    assert main(["drill", "--scenario", "no-such-scenario", "--headless"]) == 1
    assert "shipped:" in capsys.readouterr().err


SAMPLE_PLAN = Path(__file__).resolve().parents[2] / "sample-config.yaml"


async def test_the_sample_plan_drills_with_two_guardrails_on_one_metric(tmp_path):
    # sample-config.yaml watches the error rate twice (alert at 0.5 %, roll back at 1 %):
    # both breaches start on the same sample, and the card must still be scored.
    card, db, out = await drill(tmp_path, "canary-error-spike", load_plan(SAMPLE_PLAN))
    assert card.passed, card.findings
    assert card.time_to_detect == pytest.approx(30, abs=1.5)  # the plan's 30 s `for` window
    assert card.dry_run_steps == 4  # every step of the runbook, none run
    assert "would run kubectl scale deployment/websocket-server --replicas=0" in out


async def test_a_fault_that_never_happened_fails_the_drill_and_says_why(tmp_path):
    # With the plan's own soaks (`soak: null`) the sample plan holds phase 1 for 30 minutes;
    # latency-creep starts in phase 2 and stops at 5 minutes.
    as_written = load_scenario("latency-creep").model_copy(update={"soak": None})
    card, _, _ = await drill(tmp_path, as_written, load_plan(SAMPLE_PLAN))
    assert not card.passed
    assert any(f.startswith("fault never injected: latency_p95 ramp 0.9 in the new code, phase 2 +5s") and "phase 2 was not reached" in f
               for f in card.findings)


RUN_STEPS = """
name: real-runbook
title: The runbook really runs
allow_run_steps: true
timeline:
  - {phase: 1, after: 5s, metric: error_rate, set: 0.5}
expect: {action: rollback, within: 30s, by: automatic}
duration: 1m
"""


async def test_run_steps_really_run_when_the_scenario_allows_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # runbook commands run where warroom was started
    card, db, out = await drill(tmp_path, parse_scenario(RUN_STEPS))
    assert card.passed and card.dry_run_steps == 0
    step = next(e for e in Store(db).entries() if e.kind == "rollback.step")
    assert step.data["ok"] and not step.data["dry_run"] and "dry run" not in step.message
    assert (tmp_path / "rollback-demo.log").read_text() == "scaled websocket-server to 0\n"


def test_staging_drills_keep_the_plans_own_paths_and_refuse_production(tmp_path):
    staging = load_plan(SAMPLE_PLAN)
    made = drill_plan(staging, DEFAULT, tmp_path / "drill", staging=True).plan
    assert made.rollout.environment == "drill" and made.sources == staging.sources
    # The plan's own (staging) flag file, not a scratch copy in the drill's folder.
    assert made.resolve_path(made.flag_provider.path) == SAMPLE_PLAN.parent / ".warroom" / "flags.json"
    production = staging.model_copy(update={"rollout": staging.rollout.model_copy(update={"environment": "production"})})
    with pytest.raises(DrillSetupError, match="rollout.environment is production.*would change production flags"):
        drill_plan(production, DEFAULT, tmp_path / "drill", staging=True)


HOSTILE = """
name: hostile
title: "Spike \\x1b]0;pwned\\x07in \\x1b[2Jcanary \\u202eevil"
timeline:
  - {phase: 1, after: 5s, metric: error_rate, set: 0.5}
expect: {action: rollback, within: 30s, by: automatic}
duration: 1m
"""


def test_scenario_and_plan_text_reach_the_terminal_as_text(tmp_path, capsys):
    scenario = tmp_path / "hostile.yaml"
    scenario.write_text(HOSTILE)
    assert main(["drill", "--scenario", str(scenario), "--headless", "--state", str(tmp_path / "d" / "s.sqlite")]) == 0
    out = capsys.readouterr().out
    assert "DRILL hostile: Spike in canary evil" in out and "DRILL SCORE: Spike in canary evil [hostile] — PASS" in out
    assert not any(c in out for c in ("\x1b", "\x07", "\u202e"))
