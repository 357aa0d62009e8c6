"""Drills of a plan with sign-offs (sample-config.yaml): the routine responder answers as the roles it is
configured for; an approver who never answers times out into the plan's hold; a rejection stops the step."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.drills.conftest import drill
from warroom.drills.scenario import load_scenario
from warroom.drills.session import DrillSetupError, prepare
from warroom.plan.demo import demo_plan
from warroom.plan.load import load_plan
from warroom.store import open_store

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample-config.yaml"


def entries(db: Path, kind: str) -> list:
    store = open_store(db, create=False)
    try:
        return [e for e in store.entries() if e.kind == kind]
    finally:
        store.close()


async def test_the_routine_responder_signs_off_as_every_role_asked(tmp_path):
    card, db, out = await drill(tmp_path, "false-alarm", load_plan(SAMPLE))
    assert card.passed and card.final_state == "COMPLETE", card.findings
    [go] = entries(db, "go_no_go")
    assert go.data["decision"] == "GO"
    assert {c["criterion"]: c.get("answered_by") for c in go.data["criteria"] if c["kind"] == "manual"} == {
        "Engineering lead says go": ["alice"], "Operations ready: on-call staffed, rollback tested": ["olivia"]}
    [security] = [e for e in entries(db, "approval.given") if e.data["roles"] == ["security-lead"]]
    assert security.data["phase"] == 3 and security.data["actor"]["user"] == "carol"
    assert security.data["actor"]["proof"].startswith("drill: the scripted responder as carol")


async def test_an_approver_who_never_answers_times_out_into_a_hold(tmp_path):
    scenario = load_scenario(ROOT / "examples" / "scenarios" / "approver-silent.yaml")
    card, db, out = await drill(tmp_path, scenario, load_plan(SAMPLE))
    assert card.passed, card.findings
    assert card.final_state == "RUNNING"
    timed_out = entries(db, "approval.timed_out")
    assert timed_out and all(e.data["phase"] == 3 and e.data["on_timeout"] == "hold" for e in timed_out)
    assert not [e for e in entries(db, "step.intent") if e.data.get("to_phase") == 3]
    assert not [e for e in entries(db, "approval.given") if e.data["roles"] == ["security-lead"]]


async def test_a_rejection_stops_the_step_it_was_asked_for(tmp_path):
    scenario = load_scenario(ROOT / "examples" / "scenarios" / "approval-rejected.yaml")
    card, db, out = await drill(tmp_path, scenario, load_plan(SAMPLE))
    assert card.passed, card.findings
    assert "responder: reject as security-lead" in out
    [rejected] = entries(db, "approval.rejected")
    assert rejected.data["phase"] == 3 and rejected.data["note"] == "pen test finding still open"
    assert rejected.data["actor"]["user"] == "carol"
    assert not [e for e in entries(db, "step.intent") if e.data.get("to_phase") == 3]


def test_a_scenario_signing_off_as_a_role_the_plan_lacks_does_not_fit_it(tmp_path):
    scenario = load_scenario(ROOT / "examples" / "scenarios" / "approval-rejected.yaml")
    with pytest.raises(DrillSetupError, match="signs off as engineering-lead, operations-lead, security-lead, which demo .* does not define"):
        prepare(demo_plan(tmp_path / "demo"), scenario, state=str(tmp_path / "drill" / "state.sqlite"))
