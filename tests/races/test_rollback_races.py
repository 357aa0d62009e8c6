"""A rollback racing late flag writes and other verbs (issue 12, items 1 and 3)."""

from __future__ import annotations

import subprocess
import threading

import pytest

from tests.conftest import ALICE
from tests.races.conftest import WARROOM, Rollout, by_action, exposing, plan_data
from warroom.client import EngineClient
from warroom.store import open_store


def test_a_late_write_landing_after_a_rollback_is_set_off_again(tmp_path, flags):
    # The step to 50 % starts a second or two into phase 1, times out four times (1 s each)
    # and gives up; its writes are applied only once the rollback is confirmed (the test lets
    # them land). The error rate breaks 9 s into phase 1, after the step gave up.
    rollout = Rollout(tmp_path, plan_data(flags, faults=[{"metric": "error_rate", "phase": 1, "after": "9s", "value": 0.05, "while_exposed": False}]))
    land = threading.Event()
    flags.fault_writes("apply-late", land, when=exposing(50))
    with rollout.runner() as runner:
        try:
            rollout.wait_for("rollback.confirmed", lambda: "rollback.confirmed" in rollout.kinds(), runner)
            late = [w for w in flags.writes if w.fault == "apply-late"]
            assert late and all(w.applied is None for w in late), "the step's writes must still be pending"
        finally:
            land.set()
        rollout.wait_for("every late write to land", lambda: all(w.applied for w in late), runner)

        def undone(write) -> list:
            return [w for w in flags.writes if w.wants(enabled=False) and w.applied and w.received >= write.applied]

        # Each late write that exposed users is undone by the engine's next looks at the flags.
        rollout.wait_for("each late write to be set off again", lambda: all(undone(w) for w in late), runner)
    assert flags.flags["feature"]["enabled"] is False
    entries = rollout.journal()
    reasserts = [e for e in entries if e["kind"] == "rollback.reassert"]
    assert reasserts and "feature 50% read back after the rollback" in reasserts[0]["message"]
    assert reasserts[0]["data"]["actor"]["automatic"] is True
    status = rollout.status()
    assert status["state"] == "ROLLED_BACK" and status["action"] is None
    assert [f["observed"]["enabled"] for f in status["flags"]] == [False]


@pytest.mark.parametrize("second", [("rollback",), ("tick", "1")], ids=["rollback+rollback", "rollback+tick"])
def test_a_rollback_raced_by_another_verb_runs_its_runbook_once(tmp_path, flags, second):
    # Two verbs at nearly the same instant (the second 0 to 0.4 s later, sweeping the window)
    # to one engine: the runbook's step appends a line to a file and takes half a second.
    # One engine for every round (starting and stopping one took most of a round): between
    # rounds it starts again from phase 0 and steps to phase 1, asked as a client asks, through the store.
    marks = tmp_path / "runbook.log"
    rollout = Rollout(tmp_path, plan_data(flags, timeout="3s", automation={"step_up": "manual"}, rollback=runbook(marks)))
    assert rollout.verb("up").returncode == 0
    client = EngineClient(open_store(rollout.state, create=False), actor=ALICE)
    try:
        for run, offset in enumerate((0.0, 0.1, 0.2, 0.3, 0.4)):
            if run:
                assert client.act("retry", {}).status == "done"
            assert client.act("step", {"from_phase": 0}).status == "done"
            assert flags.flags["feature"]["enabled"] is True
            results = rollout.at_once(("rollback",), second, offsets=(0.0, offset))
            # Both commands queue in the store; whichever the engine takes first rolls back, and a rollback
            # asked meanwhile answers when that one is done (or after it: "already rolled back").
            assert results[0].returncode == 0 and results[0].stdout.startswith(("rolled back", "already rolled back")), results[0]
            assert marks.read_text().splitlines() == ["ran"] * (run + 1), (run, [r.stdout + r.stderr for r in results])
            entries = rollout.entries()
            assert len(by_action(entries, "rollback.intent")) == run + 1
            assert [len(v) for v in by_action(entries, "rollback.step").values()] == [1] * (run + 1)
            assert [len(v) for v in by_action(entries, "rollback.outcome").values()] == [1] * (run + 1)
            assert flags.flags["feature"]["enabled"] is False
    finally:
        client.store.close()
    assert rollout.verb("down").returncode == 0


def test_two_rollbacks_with_no_engine_alive_start_one_engine_and_run_the_runbook_once(tmp_path, flags):
    # Rolling back is never refused for lack of an engine: each verb starts one; the second
    # engine waits as a standby, so one engine rolls back and the runbook runs once.
    marks = tmp_path / "runbook.log"
    rollout = Rollout(tmp_path, plan_data(flags, timeout="3s", automation={"step_up": "manual"}, rollback=runbook(marks)))
    assert rollout.verb("up").returncode == 0 and rollout.verb("step").returncode == 0
    assert rollout.verb("down", "--force").returncode == 0
    results = rollout.at_once(("rollback",), ("rollback",))
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    assert {r.stdout.splitlines()[-1] for r in results} <= {"already rolled back", "rolled back"}, [r.stdout for r in results]
    assert marks.read_text().splitlines() == ["ran"]
    entries = rollout.journal()
    assert len(by_action(entries, "rollback.intent")) == 1 and flags.flags["feature"]["enabled"] is False
    starts = [e for e in entries if e["kind"] == "engine.start"]
    assert len({e["data"]["epoch"] for e in starts}) == len(starts) == 2  # the first engine, then the one rollback started


def test_with_no_engine_a_flag_on_after_the_rollback_is_set_off_by_the_next_rollback(tmp_path, flags):
    rollout = Rollout(tmp_path, plan_data(flags, automation={"step_up": "manual"}))
    assert rollout.verb("up").returncode == 0 and rollout.verb("step").returncode == 0
    assert rollout.verb("rollback").stdout.startswith("rolled back")
    assert rollout.verb("down").returncode == 0
    flags.flags["feature"] = {"enabled": True, "rollout_percentage": 50, "user_segments": []}  # a late write lands
    status = rollout.verb("status")
    # Nobody reads the flags without an engine: status says so instead of pretending.
    assert status.returncode == 5 and "NO ENGINE — guardrails NOT enforced" in status.stdout, status.stdout
    again = rollout.verb("rollback")  # starts an engine: it sees the flag and sets it off again
    assert again.returncode == 0 and again.stdout.splitlines()[-1] in (
        "rolled back again: flags confirmed off (the runbook already ran)", "already rolled back"), again.stdout + again.stderr
    assert flags.flags["feature"]["enabled"] is False and rollout.status()["state"] == "ROLLED_BACK"
    assert [w.value["enabled"] for w in flags.writes] == [True, False, False]
    assert [e["kind"] for e in rollout.journal()].count("rollback.reassert") == 1


def runbook(marks) -> dict:
    """One runbook step that leaves a mark each time it runs, and takes half a second."""
    step = {"name": "mark", "run": ["sh", "-c", f"echo ran >> {marks}; sleep 0.5"], "timeout": "10s"}
    return {"flags": {"feature": False}, "steps": [step], "dry_run": False}


def test_a_step_a_rollback_takes_over_ends_at_once_and_no_stop_leaves_its_intent_open(tmp_path, flags):
    # The race: a rollback takes over from a step whose flag write waits on a slow flag API (here
    # 7 s). The step went on waiting for a write the rollback had made moot, so its outcome came
    # only when the API answered, and an engine stopped meanwhile (`warroom down` right after the
    # rollback returned, as a script does) left the step's intent without an outcome.
    for run, slow in enumerate((5.0, 7.0)):
        flags.flags.clear()
        flags.writes.clear()
        marks = tmp_path / f"runbook-{run}.log"
        data = plan_data(flags, timeout="9s", automation={"step_up": "manual"}, rollback=runbook(marks))
        data["phases"][0]["hold"] = "0s"
        rollout = Rollout(tmp_path / f"run{run}", data)
        assert rollout.verb("up").returncode == 0 and rollout.verb("step").returncode == 0
        flags.fault_writes("delay", slow, when=exposing(50), count=1)
        step = subprocess.Popen([*WARROOM, "step", str(rollout.plan)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL)
        rollout.wait_for("the step to 50%", lambda: any(w.fault == "delay" for w in flags.writes))
        rolled = rollout.verb("rollback")
        assert rolled.returncode == 0 and rolled.stdout.strip() == "rolled back", rolled.stdout + rolled.stderr
        assert rollout.verb("down").returncode == 0
        out, err = step.communicate(timeout=60)
        # Said as a step that did not step: on stderr, exit 4 or 5 as the rollback stands (never 0).
        assert step.returncode in (4, 5) and err.strip() == "warroom: step up abandoned: rolled back meanwhile", (step.returncode, out, err)
        entries = rollout.journal()
        intents, outcomes = by_action(entries, "step.intent"), by_action(entries, "step.outcome")
        assert set(intents) == set(outcomes), [(e["kind"], e["message"]) for e in entries]
        (abandoned,) = [e for e in entries if e["kind"] == "step.outcome" and "abandoned" in e["message"]]
        stopped = next(e for e in entries if e["kind"] == "engine.stop")
        assert abandoned["seq"] < stopped["seq"]
        assert flags.flags["feature"]["enabled"] is False
