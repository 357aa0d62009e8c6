"""Cohort guardrails and gates, minimum evidence, shadow guardrails and the exposure check,
on the real engine with the two-cohort simulator, local flags and SQLite, in virtual time."""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.conftest import ALICE
from tests.engine.test_engine import advance
from tests.support.waiting import until
from warroom.core.snapshot import State
from warroom.engine.build import build_engine
from warroom.plan.load import parse_plan
from warroom.reports.files import to_html, to_markdown
from warroom.reports.postmortem import build_report
from warroom.sources.simulator.model import COHORT_PROMQL, PROMQL

COHORT_PLAN = {
    "rollout": {"name": "cohort-launch", "environment": "staging"},
    "sources": {"sim": {"type": "simulator", "seed": 1, "flag": "feature", "noise": 0}},
    "flag_provider": {"provider": "local", "path": "flags.json"},
    "state": "state.sqlite",
    "poll_interval": "5s",
    "panes": [{"id": "errors", "title": "Error rate", "query": PROMQL["error_rate"], "unit": "ratio", "breach": 0.01}],
    "guardrails": [
        {"id": "errors", "pane": "errors", "above": "1%", "for": "30s"},
        {"id": "errors-vs-control", "pane": "errors",
         "compare": {"query": COHORT_PROMQL["error_rate"], "difference": "+0.5pp", "ratio": "×2"},
         "evidence": {"count": COHORT_PROMQL["requests"], "min": 200, "test": "two-proportion", "false_alarm": "1%"},
         "for": "30s"},
    ],
    "exposure": {"query": COHORT_PROMQL["sessions"], "settle": "0s"},
    "phases": [
        {"name": "Canary 1%", "flags": {"feature": 1}, "hold": "1m"},
        {"name": "Half 50%", "flags": {"feature": 50}, "hold": "1m"},
    ],
}


def plan_with(**changes) -> dict:
    data = copy.deepcopy(COHORT_PLAN)
    data.update(changes)
    return data


def faults(*items: dict) -> dict:
    return {"sim": {**COHORT_PLAN["sources"]["sim"], "faults": list(items)}}


@pytest.fixture
async def engine_for(tmp_path, clock):
    made = []

    async def make(data: dict):
        folder = tmp_path / f"plan{len(made)}"
        folder.mkdir()
        path = folder / "plan.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        plan = parse_plan(path.read_text(), str(path), folder)
        engine = build_engine(plan, clock=clock)
        await engine.start()
        made.append(engine)
        await engine.tick()
        await engine.step_up(ALICE)
        return engine

    yield make
    for engine in made:
        await engine.close()


def guard(snap, gid: str):
    return next(g for g in snap.guardrails if g.id == gid)


def kinds(engine) -> list[str]:
    return [e.kind for e in engine.store.entries()]


async def test_a_fault_of_the_new_code_at_1_percent_is_rolled_back_by_the_cohort_guardrail(engine_for, clock):
    # A tenth of the new code's requests fail: at 1 % exposure the service's error rate is
    # about 0.16 %, far under the fixed 1 % threshold; against the control it is 25 times worse.
    engine = await engine_for(plan_with(sources=faults({"metric": "error_rate", "phase": 1, "after": "10s", "value": 0.1})))
    snap = await advance(engine, clock, 20)
    fixed, cohort = guard(snap, "errors"), guard(snap, "errors-vs-control")
    assert fixed.status == "ok" and fixed.value == pytest.approx(0.0016, abs=0.0003)
    assert cohort.status == "pending"
    assert cohort.comparison.new == pytest.approx(0.1) and cohort.comparison.control == pytest.approx(0.0004)
    assert cohort.comparison.text == "new 10.00% vs control 0.040% Δ+9.96pp p≈0 < 0.00083 n=300/25245"
    assert cohort.comparison.p_value < cohort.comparison.level == pytest.approx(0.01 / 12)  # 1 min soak / 5 s = 12 looks
    # The effective limit moves with the control: the larger of +0.5pp and ×2 over 0.04 %.
    assert cohort.threshold == pytest.approx(0.0054)
    pane = snap.panes[0]
    assert pane.note == "Δ+9.96pp new 10.00% vs control 0.040%" and pane.status == "breach"
    assert any(b.startswith("guardrail errors-vs-control is breaching (new 10.00% vs control 0.040% Δ+9.96pp") for b in snap.step_blockers)

    snap = await advance(engine, clock, 30)
    assert engine.state == State.ROLLED_BACK and guard(snap, "errors").status == "ok"
    intent = next(e for e in engine.store.entries() if e.kind == "rollback.intent")
    assert "guardrail errors-vs-control: new 10.00% vs control 0.040% Δ+9.96pp" in intent.message
    assert "(worse beyond +0.50pp and ×2)" in intent.message
    comparison = intent.data["cause"]["comparison"]
    assert comparison["new"] == pytest.approx(0.1) and comparison["control"] == pytest.approx(0.0004)
    assert comparison["n_new"] == pytest.approx(300) and comparison["n_control"] == pytest.approx(0.99 * 850 * 30)


async def test_a_healthy_canary_is_not_rolled_back_and_its_comparison_is_shown(engine_for, clock):
    engine = await engine_for(COHORT_PLAN)
    snap = await advance(engine, clock, 60)
    assert engine.state == State.RUNNING
    cohort = guard(snap, "errors-vs-control")
    # The new code's own error rate is twice the old one's (0.08 % against 0.04 %), but under +0.5pp.
    assert cohort.status == "ok" and cohort.comparison.difference == pytest.approx(0.0004)
    assert cohort.comparison.text.startswith("new 0.080% vs control 0.040% Δ+0.04pp")
    assert snap.panes[0].note == ""  # the pane adds the cohorts only while they say something is wrong


LOW_TRAFFIC = [
    # Night: the whole service gets half a request a second; the new code fails every request it gets.
    {"metric": "request_rate", "phase": 1, "after": "0s", "value": 0.5, "while_exposed": False},
    {"metric": "error_rate", "phase": 1, "after": "5s", "value": 1.0},
]


async def test_one_error_at_low_traffic_does_not_roll_back(engine_for, clock):
    plan = plan_with(sources=faults(*LOW_TRAFFIC))
    # The fixed guardrail counts requests too: 15 in its 30 s window is no evidence either way.
    plan["guardrails"][0]["evidence"] = {"count": "sum(increase(warroom_sim_http_requests_total[30s]))", "min": 200}
    engine = await engine_for(plan)
    snap = await advance(engine, clock, 60)
    assert engine.state == State.RUNNING
    fixed, cohort = guard(snap, "errors"), guard(snap, "errors-vs-control")
    assert snap.panes[0].value > 0.01  # one failed request in a hundred: "over 1 %" on a handful
    assert fixed.status == "nodata" and fixed.detail == "not enough traffic (n=15 < 200)"
    assert cohort.status == "nodata" and cohort.detail == "not enough traffic (n=0 < 200)"
    assert snap.panes[0].note == "not enough traffic (n=15 < 200)"
    # `no_data: hold` (the default): no rollback, but no step up on no evidence either.
    assert "guardrail errors has no data (not enough traffic (n=15 < 200))" in snap.step_blockers
    lacking = [e for e in engine.store.entries() if e.kind == "guardrail.evidence"]
    assert [e.data["guardrail"] for e in lacking] == ["errors", "errors-vs-control"]


async def test_without_minimum_evidence_the_same_night_rolls_back(engine_for, clock):
    # The control experiment of the test above: the fault is real enough to trip a plain threshold.
    plan = plan_with(sources=faults(*LOW_TRAFFIC))
    plan["guardrails"] = plan["guardrails"][:1]
    engine = await engine_for(plan)
    await advance(engine, clock, 60)
    assert engine.state == State.ROLLED_BACK


async def test_shadow_guardrails_journal_what_they_would_have_done_and_never_act(engine_for, clock):
    plan = plan_with(sources=faults({"metric": "error_rate", "phase": 1, "after": "10s", "value": 0.1}))
    plan["guardrails"][1]["mode"] = "shadow"
    engine = await engine_for(plan)
    snap = await advance(engine, clock, 20)
    cohort = guard(snap, "errors-vs-control")
    assert cohort.mode == "shadow" and cohort.status == "pending"
    # Neither the pane nor a step up cares about a shadow guardrail.
    assert snap.panes[0].status == "ok" and snap.panes[0].note == "shadow: Δ+9.96pp new 10.00% vs control 0.040%"
    assert not any("errors-vs-control" in b for b in snap.step_blockers)
    await advance(engine, clock, 120)
    assert engine.state == State.RUNNING
    assert "rollback.intent" not in kinds(engine) and "guardrail.breach" not in kinds(engine)
    shadows = [e for e in engine.store.entries() if e.kind == "guardrail.shadow"]
    assert len(shadows) == 1  # once per breach spell, when its window is met
    assert shadows[0].message.startswith("shadow guardrail errors-vs-control would have rolled back: new 10.00% vs control 0.040% Δ+9.96pp")
    assert shadows[0].message.endswith("(held 30s); not acting (mode: shadow)")
    assert shadows[0].data["shadow"] is True and shadows[0].data["for"] == 30 and shadows[0].data["threshold"] == pytest.approx(0.0054)
    # The report counts them, and says what each would have done with its numbers.
    report = build_report(engine.plan, engine.store)
    markdown, page = to_markdown(report), to_html(report)
    assert "| Shadow guardrails | 1 time(s) one would have acted (mode: shadow: journaled, never acted) |" in markdown
    row = "| errors-vs-control | +40s | rollback | 10.00% | 0.54% | 30s | new 10.00% vs control 0.040% Δ+9.96pp p≈0 &lt; 0.00083 n=300/25245"
    assert row in markdown and "<section id='shadows'><h2>Shadow guardrails</h2>" in page
    assert "| Guardrail breaches | 0 |" in markdown and "| Rollbacks | 0 |" in markdown


async def test_the_exposure_check_passes_a_real_split_and_blocks_a_flag_that_does_not_reach_the_service(engine_for, clock):
    engine = await engine_for(COHORT_PLAN)
    snap = await advance(engine, clock, 10)
    assert snap.exposure.status == "ok" and snap.exposure.text == "cohort 1.0% (plan 1%) ✓"
    assert snap.phase.gates[-1].label == "exposure" and snap.phase.gates[-1].passed is True
    assert not any(b.startswith("exposure") for b in snap.step_blockers)

    # The flag is set, but every session still lands on the old code.
    blind = await engine_for(plan_with(sources=faults({"metric": "session_rate", "at": "0s", "value": 0})))
    snap = await advance(blind, clock, 70)
    assert snap.exposure.status == "none"
    assert snap.exposure.text == "cohort 0% — is the flag reaching the service? (plan 1%) ✗"
    assert "exposure: cohort 0% — is the flag reaching the service? (plan 1%) ✗" in snap.step_blockers
    assert snap.phase.gates[-1].passed is False
    mismatch = [e for e in blind.store.entries() if e.kind == "exposure.mismatch"]
    assert len(mismatch) == 1 and "step up blocked until the split matches" in mismatch[0].message


async def test_the_exposure_check_finds_a_share_that_does_not_match_the_plan(engine_for, clock):
    # Twice the sessions on the new code: a 2 % split for a 1 % flag (a sticky bucketing bug, say).
    engine = await engine_for(plan_with(sources=faults({"metric": "session_rate", "at": "0s", "mode": "multiply", "value": 2})))
    snap = await advance(engine, clock, 10)
    assert snap.exposure.status == "mismatch" and snap.exposure.text.startswith("cohort 2.0% (plan 1%) ✗ sample-ratio mismatch, p=")
    assert snap.exposure.observed == pytest.approx(2 / 101)


async def test_the_exposure_check_waits_for_the_window_after_a_step(engine_for, clock):
    engine = await engine_for(plan_with(exposure={"query": COHORT_PROMQL["sessions"], "settle": "1m"}))
    snap = await advance(engine, clock, 30)
    assert snap.exposure.status == "settling" and "checked from 1m00s into the phase (30s now)" in snap.exposure.text
    assert any(b.startswith("exposure: cohort 1.0% (plan 1%) — checked from") for b in snap.step_blockers)
    snap = await advance(engine, clock, 30)
    assert snap.exposure.status == "ok"


async def test_a_cohort_gate_is_red_while_the_new_code_is_worse_than_the_control(engine_for, clock):
    plan = plan_with(sources=faults({"metric": "latency_p95", "phase": 1, "after": "0s", "value": 0.2}))
    plan["guardrails"] = []
    plan["phases"][0]["gates"] = [{"name": "p95 vs control", "compare": {
        "query": COHORT_PROMQL["latency_p95"], "unit": "seconds", "difference": "+20ms", "ratio": 1.5}}]
    engine = await engine_for(plan)
    snap = await advance(engine, clock, 10)
    gate = snap.phase.gates[0]
    assert gate.passed is False and gate.shown.startswith("new 200 ms vs control 60 ms Δ+140 ms")
    assert any(b.startswith("gate p95 vs control is red (new 200 ms vs control 60 ms") for b in snap.step_blockers)


@pytest.mark.slow  # `up` starts an engine process
def test_status_says_what_the_exposure_check_and_the_cohorts_see(tmp_path, capsys):
    from warroom.cli.main import main

    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan_with(sources=faults({"metric": "session_rate", "at": "0s", "value": 0})), sort_keys=False))
    assert main(["up", str(path)]) == 0  # an engine, which status reads (the verbs are its clients)
    assert main(["step", str(path)]) == 0

    def judged() -> str | None:
        capsys.readouterr()
        assert main(["status", str(path)]) == 0
        out = capsys.readouterr().out
        return out if "exposure check:" in out else None

    out = until("the engine's next tick to judge the exposure of the new phase", judged, every=0.1)
    assert main(["down", str(path), "--force"]) == 0
    assert "  exposure check: cohort 0% — is the flag reaching the service? (plan 1%) ✗\n" in out
    assert "exposure: cohort 0% — is the flag reaching the service? (plan 1%) ✗" in out.split("step up blocked: ")[1]


def test_a_share_is_printed_with_the_decimals_its_size_needs():
    from warroom.engine.exposure import share_text

    # Observed shares either side of 1% read alike (the live exposure check printed 1.00% or 1.0%).
    assert [share_text(s) for s in (0, 0.001, 0.009996, 0.010004, 0.246)] == ["0%", "0.10%", "1.0%", "1.0%", "24.6%"]
