"""Sign-offs on the real engine (simulator, local flag file, SQLite), in virtual time: a request binds to
its phase, exposures and plan digest; people count once; timeouts and plan edits end it; going back
never waits on it; a grant steps exactly once, also when the engine stopped between the two."""

from __future__ import annotations

import sqlite3

import pytest
import yaml

from tests.conftest import ALICE, BASE_PLAN, write_plan
from tests.engine.test_engine import advance, enter_phase_one, kinds
from warroom.core.approvals import RequestStatus
from warroom.core.decision_chain import verify
from warroom.core.identity import Actor
from warroom.core.journal_kinds import CHAINED
from warroom.core.snapshot import State
from warroom.engine.build import build_engine
from warroom.engine.engine import CommandError
from warroom.plan.load import load_plan

# As the engine knows them once proven (the kernel's uid, the database's role): the rules below take that as given.
CAROL, DAVE, BOB = (Actor(user="carol", tty="pts/4", proof="kernel: uid 1001 (carol)"), Actor(user="dave", proof="database role dave"),
                    Actor(user="bob", proof="kernel: uid 1003 (bob)"))

ROLES = {"security": {"members": ["carol", "dave"]}, "release": {"members": ["alice", "bob"]}}


def signed(**approval) -> dict:
    phases = yaml.safe_load(BASE_PLAN)["phases"]
    phases[1]["approvals"] = {"roles": {"security": 1}, "timeout": "5m", **approval}
    return {"roles": ROLES, "phases": phases}


async def ready_for_phase_two(engine, clock):
    await enter_phase_one(engine)
    await advance(engine, clock, 60)
    await engine.tick_item(ALICE, "dashboards")


def request(engine):
    return engine.journal.reload().approval


def chained(engine) -> tuple[int, list]:
    rows = [(e.seq, e.kind, e.message, e.data) for e in engine.store.entries() if e.kind in CHAINED]
    return verify(rows, engine.journal.reload().chain)


async def test_a_step_waits_for_its_sign_off_and_happens_once_it_is_given(make_engine, clock):
    engine = await make_engine(signed())
    await ready_for_phase_two(engine, clock)
    said = await engine.step_up(ALICE)
    assert said.startswith("awaiting security (carol|dave) 05:00 → on timeout: hold")
    assert engine.phase_index == 1
    snap = await advance(engine, clock, 48, step=48)
    assert snap.step_blockers[-1] == "awaiting security (carol|dave) 04:12 → on timeout: hold"
    req = request(engine)
    assert (req.phase, dict(req.exposures), req.digest, req.requester) == (2, {"feature": "50%"}, engine.plan.digest(), "alice")

    assert (await engine.approve(CAROL, "dashboards look fine")).startswith("approved: sign-off complete")
    await engine.wait_idle()
    assert engine.phase_index == 2
    given = next(e for e in engine.store.entries() if e.kind == "approval.given")
    assert given.data["actor"]["user"] == "carol" and given.data["roles"] == ["security"]
    assert set(given.data["evidence"]) == {"errors"}  # the guardrail values carol saw
    assert request(engine).status is RequestStatus.USED
    assert kinds(engine).count("step.intent") == 2
    await advance(engine, clock, 20)
    assert kinds(engine).count("step.intent") == 2
    assert chained(engine) == (3, [])  # requested, given, granted


async def test_the_same_person_twice_counts_once_and_outsiders_do_not_count(make_engine, clock):
    engine = await make_engine(signed(roles={"security": 2}))
    await ready_for_phase_two(engine, clock)
    await engine.step_up(ALICE)
    assert (await engine.approve(CAROL)).startswith("approved; still awaiting security (dave)")
    with pytest.raises(CommandError, match="carol already approved this step: a person counts once"):
        await engine.approve(CAROL)
    with pytest.raises(CommandError, match="bob is in none of the roles asked"):
        await engine.approve(BOB)
    assert engine.phase_index == 1 and request(engine).status is RequestStatus.AWAITING
    await engine.approve(DAVE)
    await engine.wait_idle()
    assert engine.phase_index == 2


async def test_the_requester_approves_their_own_step_only_where_the_plan_allows(make_engine, clock, tmp_path):
    engine = await make_engine(signed())
    await ready_for_phase_two(engine, clock)
    await engine.step_up(CAROL)
    with pytest.raises(CommandError, match="carol asked for this step and the plan does not let the requester approve it"):
        await engine.approve(CAROL)
    await engine.close()

    (tmp_path / "state.sqlite").unlink()  # a new launch: no state, flags off
    (tmp_path / "flags.json").unlink()
    allowed = await make_engine(signed(self_approval=True))
    await ready_for_phase_two(allowed, clock)
    await allowed.step_up(CAROL)
    await allowed.approve(CAROL)
    await allowed.wait_idle()
    assert allowed.phase_index == 2


@pytest.mark.parametrize("action, state", [("hold", State.RUNNING), ("abort", State.PAUSED), ("rollback", State.ROLLED_BACK)])
async def test_an_approver_who_never_answers_times_out_into_the_plans_action(make_engine, clock, action, state):
    engine = await make_engine(signed(on_timeout=action))
    await ready_for_phase_two(engine, clock)
    await engine.step_up(ALICE)
    await advance(engine, clock, 295)
    assert request(engine).status is RequestStatus.AWAITING
    await advance(engine, clock, 10)
    await engine.wait_idle()
    assert request(engine).status is RequestStatus.TIMED_OUT
    assert engine.state == state and engine.phase_index == 1
    timed_out = next(e for e in engine.store.entries() if e.kind == "approval.timed_out")
    assert timed_out.data["on_timeout"] == action
    with pytest.raises(CommandError, match="nothing awaits sign-off"):
        await engine.approve(CAROL)


async def test_a_sign_off_counts_only_from_a_proven_person(make_engine, clock):
    engine = await make_engine(signed())
    await ready_for_phase_two(engine, clock)
    await engine.step_up(ALICE)
    with pytest.raises(CommandError, match="a sign-off counts only from a proven person, and 'carol' is only what the client said"):
        await engine.approve(Actor(user="carol"))
    assert request(engine).answers == ()


async def test_a_step_asked_under_a_name_nothing_proves_opens_no_sign_off(make_engine, clock):
    """carol writes a step request under dave's name into the state file, then approves 'his' step:
    four eyes would be two names of one person. Where the requester may approve anyway, nothing is gained."""
    engine = await make_engine(signed())
    await ready_for_phase_two(engine, clock)
    with pytest.raises(CommandError, match="nothing proves who sent it: ask from the engine's host"):
        await engine.step_up(DAVE.declared())
    assert request(engine) is None and engine.phase_index == 1
    await engine.step_up(DAVE)  # the same person, proven: the request opens
    assert request(engine).requester == "dave"


async def test_a_rejection_ends_the_request_and_needs_a_note(make_engine, clock):
    engine = await make_engine(signed())
    await ready_for_phase_two(engine, clock)
    await engine.step_up(ALICE)
    with pytest.raises(CommandError, match="needs a note"):
        await engine.reject(DAVE)
    assert (await engine.reject(DAVE, "pen test not finished")).startswith("rejected")
    await advance(engine, clock, 20)
    assert engine.phase_index == 1 and request(engine).status is RequestStatus.REJECTED
    entry = next(e for e in engine.store.entries() if e.kind == "approval.rejected")
    assert entry.data["note"] == "pen test not finished" and entry.data["actor"]["user"] == "dave"


async def test_a_rollback_never_waits_on_a_pending_sign_off_and_ends_it(make_engine, clock):
    engine = await make_engine(signed())
    await ready_for_phase_two(engine, clock)
    await engine.step_up(ALICE)
    assert await engine.rollback(ALICE, "R pressed") is not None
    assert engine.state == State.ROLLED_BACK
    await engine.tick()
    assert request(engine).status is RequestStatus.LAPSED
    with pytest.raises(CommandError, match="nothing awaits sign-off"):
        await engine.approve(CAROL)


async def test_a_pause_never_waits_on_a_pending_sign_off(make_engine, clock):
    engine = await make_engine(signed())
    await ready_for_phase_two(engine, clock)
    await engine.step_up(ALICE)
    assert await engine.pause(ALICE, "look at p95") == "paused"


async def test_an_approval_lapses_when_the_plan_changes(make_engine, clock, tmp_path):
    engine = await make_engine(signed(roles={"security": 2}))
    await ready_for_phase_two(engine, clock)
    await engine.step_up(ALICE)
    await engine.approve(CAROL)
    with pytest.raises(CommandError, match="your copy of the plan differs"):
        await engine.approve(DAVE, digest="0" * 16)
    await engine.close()
    edited = signed(roles={"security": 2})
    edited["phases"][1]["flags"] = {"feature": 60}  # the change the approval was given on is not this one
    engine = await make_engine(edited)
    await engine.tick()
    assert request(engine).status is RequestStatus.LAPSED
    lapsed = next(e for e in engine.store.entries() if e.kind == "approval.lapsed")
    assert "the plan changed" in lapsed.message
    with pytest.raises(CommandError, match="nothing awaits sign-off"):
        await engine.approve(DAVE)
    assert engine.phase_index == 1


async def test_an_engine_stopped_between_the_grant_and_its_step_steps_once_when_it_is_back(make_engine, clock, tmp_path):
    engine = await make_engine(signed())
    await ready_for_phase_two(engine, clock)
    await engine.step_up(ALICE)

    async def stopped_before_stepping() -> None:
        return None

    engine._step_on_grant = stopped_before_stepping  # the grant is committed; the engine is gone before its step
    await engine.approve(CAROL)
    assert engine.phase_index == 1 and request(engine).status is RequestStatus.GRANTED
    await engine.close()

    again = build_engine(load_plan(write_plan(tmp_path, signed())), clock=clock)
    await again.start()
    try:
        await advance(again, clock, 30)
        await again.wait_idle()
        assert again.phase_index == 2
        assert [e.data.get("to_phase") for e in again.store.entries() if e.kind == "step.intent"] == [1, 2]
        assert request(again).status is RequestStatus.USED
    finally:
        await again.close()


async def test_the_decision_record_finds_an_edited_or_deleted_entry(make_engine, clock, tmp_path):
    engine = await make_engine(signed(roles={"security": 2}))
    await ready_for_phase_two(engine, clock)
    await engine.step_up(ALICE)
    await engine.approve(CAROL, "ok")
    await engine.approve(DAVE, "ok")
    await engine.wait_idle()
    assert chained(engine) == (4, [])
    db = sqlite3.connect(tmp_path / "state.sqlite")
    given = [e for e in engine.store.entries() if e.kind == "approval.given"]
    table = next(name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'") if "journal" in name)
    body = db.execute(f"SELECT data FROM {table} WHERE seq = ?", (given[0].seq,)).fetchone()[0]
    db.execute(f"UPDATE {table} SET data = ? WHERE seq = ?", (body.replace('"ok"', '"not ok"'), given[0].seq))
    db.commit()
    checked, breaks = chained(engine)
    assert checked == 4 and [b.seq for b in breaks] == [given[0].seq]
    db.execute(f"UPDATE {table} SET data = ? WHERE seq = ?", (body, given[0].seq))
    db.execute(f"DELETE FROM {table} WHERE seq = ?", (given[1].seq,))
    db.commit()
    checked, breaks = chained(engine)
    assert checked == 3 and breaks and "deleted" in breaks[0].problem
    db.close()


def go_no_go(*criteria: dict) -> dict:
    return {"roles": ROLES, "go_no_go": {"criteria": list(criteria), "timeout": "30m"}}


async def test_the_go_no_go_is_recorded_before_the_first_exposure_with_who_answered_what(make_engine, clock):
    engine = await make_engine(go_no_go({"name": "release says go", "manual": "release"},
                                        {"name": "CI green", "external": {"command": ["true"]}},
                                        {"name": "errors low", "metric": {"pane": "errors", "below": 0.01}}))
    await engine.tick()
    assert (await engine.step_up(ALICE)).startswith("awaiting release (bob) 30:00 → on timeout: hold")
    assert engine.phase_index == 0
    await engine.approve(BOB, "war room staffed")
    await engine.wait_idle()
    assert engine.phase_index == 1
    entries = engine.store.entries()
    decision = next(e for e in entries if e.kind == "go_no_go")
    first_step = next(e for e in entries if e.kind == "step.intent")
    assert decision.seq < first_step.seq
    assert decision.data["decision"] == "GO"
    assert [(c["criterion"], c["passed"]) for c in decision.data["criteria"]] == [
        ("release says go", True), ("CI green", True), ("errors low", True)]
    assert decision.data["criteria"][0]["answered_by"] == ["bob"]
    assert chained(engine) == (4, [])  # requested, given, granted, GO


async def test_a_failing_external_criterion_is_a_recorded_no_go(make_engine, clock):
    engine = await make_engine(go_no_go({"name": "load test report", "external": {"command": ["false"]}}))
    await engine.tick()
    with pytest.raises(CommandError, match="NO-GO for the first exposure: 0/1 criteria pass; failing: load test report"):
        await engine.step_up(ALICE)
    assert engine.phase_index == 0 and "step.intent" not in kinds(engine)
    decision = next(e for e in engine.store.entries() if e.kind == "go_no_go")
    assert decision.data["decision"] == "NO-GO" and decision.data["actor"]["user"] == "alice"


async def test_the_post_mortem_has_a_sign_off_table_and_says_whether_the_record_is_intact(make_engine, clock, tmp_path):
    from warroom.reports.html import html
    from warroom.reports.markdown import markdown
    from warroom.reports.postmortem import build_report

    engine = await make_engine({**signed(roles={"security": 2}), **go_no_go({"name": "CI green", "external": {"command": ["true"]}})})
    await engine.tick()
    await engine.step_up(ALICE)  # the go/no-go: no manual criterion, no sign-off asked
    await advance(engine, clock, 60)
    await engine.tick_item(ALICE, "dashboards")
    await engine.step_up(ALICE)
    await engine.approve(CAROL, "<b>dashboards</b> green")
    await engine.reject(DAVE, "pen test open")
    report = build_report(engine.plan, engine.store)
    text = "".join(markdown(report))
    assert "## Sign-offs" in text and "Decision record: intact (4 decision entries" in text
    rows = [line for line in text.splitlines() if line.startswith(("| go/no-go", "| security"))]
    assert rows[0].startswith("| go/no-go | alice | GO |") and "CI green: pass (exit status 0)" in rows[0]
    assert rows[1].startswith("| security | carol | approved |") and "phase 2 (feature 50%)" in rows[1] and "guardrails: errors" in rows[1]
    assert rows[2].startswith("| security | dave | rejected |") and "note: pen test open" in rows[2]
    page = "".join(html(report))
    assert "<section id='sign-offs'>" in page and "&lt;b&gt;dashboards&lt;/b&gt; green" in page and "<b>dashboards</b>" not in page


async def test_warroom_verify_names_an_edited_entry_and_exits_1(make_engine, clock, tmp_path, capsys):
    from warroom.cli.main import main

    engine = await make_engine(signed())
    await ready_for_phase_two(engine, clock)
    await engine.step_up(ALICE)
    await engine.approve(CAROL, "ok")
    await engine.wait_idle()
    plan = str(tmp_path / "plan.yaml")
    assert main(["verify", plan]) == 0
    assert "the decision record is intact (3 decision entries" in capsys.readouterr().out
    given = next(e for e in engine.store.entries() if e.kind == "approval.given")
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        db.execute("UPDATE journal SET message = replace(message, 'carol', 'mallory') WHERE seq = ?", (given.seq,))
    assert main(["verify", plan]) == 1
    err = capsys.readouterr().err
    assert f"journal entry {given.seq}: this entry was edited after it was written" in err
    assert "the decision record of test-launch was altered: 1 break(s) in 3 decision entries" in err
