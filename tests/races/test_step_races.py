"""A step up racing a pause, a breach, and two more step ups (issue 12, items 2–4)."""

from __future__ import annotations

import threading

from tests.conftest import ALICE
from tests.races.conftest import Rollout, by_action, exposing, plan_data
from tests.support.engines import engine_pid
from warroom.client import EngineClient
from warroom.store import open_store

ROUNDS = 8  # three verbs at once, on one engine: each round a new draw of who arrives when


def entered(entries: list[dict], phase: int) -> dict:
    return next(e for e in entries if e["kind"] == "step.outcome" and e["data"].get("entered_phase") == phase)


def test_guardrails_act_within_a_poll_while_a_step_up_waits_on_the_flag_api(tmp_path, flags):
    # The step to 50 % hangs on a flag API that swallows its writes (2 s timeout, four
    # attempts: about 9 s, from a second or two into phase 1); the error rate breaks 5 s into
    # phase 1, in the middle of that step (seconds of slack each side for a busy machine).
    rollout = Rollout(tmp_path, plan_data(flags, timeout="2s",
                                          faults=[{"metric": "error_rate", "phase": 1, "after": "5s", "value": 0.05, "while_exposed": False}]))
    flags.fault_writes("drop", 5.0, when=exposing(50))
    with rollout.runner() as runner:
        rollout.wait_for("rollback.confirmed", lambda: "rollback.confirmed" in rollout.kinds(), runner)
    entries = rollout.journal()
    breach_at = entered(entries, 1)["ts"] + 5.0
    intent = next(e for e in entries if e["kind"] == "rollback.intent")
    step = next(e for e in entries if e["kind"] == "step.intent" and e["data"]["to_phase"] == 2)
    step_outcome = next(e for e in entries if e["kind"] == "step.outcome" and e["action_id"] == step["action_id"])
    # The guardrail is judged every tick although the step's writes are in flight: the rollback
    # begins while the step still waits (a tick waiting on the step would act only after it).
    assert step["ts"] < breach_at < intent["ts"], (step["ts"], breach_at, intent["ts"])
    assert intent["ts"] < step_outcome["ts"] and "a rollback took over" in step_outcome["message"]
    assert flags.flags["feature"]["enabled"] is False


def test_a_pause_during_a_step_up_stands(tmp_path, flags):
    # The flag API answers the step to 50 % only once a human has paused (the test lets it).
    rollout = Rollout(tmp_path, plan_data(flags, timeout="30s"))
    answer = threading.Event()
    flags.fault_writes("delay", answer, when=exposing(50))
    with rollout.runner() as runner:
        try:
            rollout.wait_for("the step up to phase 2", lambda: rollout.kinds().count("step.intent") == 2, runner)
            pause = rollout.verb("pause", "--reason", "DBA asked for a hold")
            assert pause.returncode == 0 and pause.stdout.strip() == "paused", pause.stdout + pause.stderr
        finally:
            answer.set()
        rollout.wait_for("its outcome", lambda: rollout.kinds().count("step.outcome") == 2, runner)
        # Phase 2 soaks 1 s at a 1 s poll: a runner that took the pause back would step to 100 %
        # within three ticks.
        ticked = rollout.ticks()
        rollout.wait_for("three more ticks", lambda: rollout.ticks() >= ticked + 3, runner)
    status = rollout.status()
    assert status["state"] == "PAUSED" and status["phase"]["index"] == 2 and status["paused_reason"] == "DBA asked for a hold"
    entries = rollout.journal()
    assert [e["data"]["to_phase"] for e in entries if e["kind"] == "step.intent"] == [1, 2]
    outcome = entered(entries, 2)
    assert "stays PAUSED: DBA asked for a hold" in outcome["message"]
    assert flags.flags["feature"]["rollout_percentage"] == 50  # as read back: the step did land


def test_three_step_verbs_at_the_same_instant_make_one_step(tmp_path, flags):
    # The flag API answers writes 0.5 s late, so the winner's step is in flight while the
    # other two commands arrive: the engine runs one, and refuses the others with a reason.
    # One engine for every round (starting and stopping one took most of a round): between
    # rounds it rolls back and starts again from phase 0, asked as a client asks, through the store.
    flags.fault_writes("delay", 0.5)
    data = plan_data(flags, timeout="3s", automation={"step_up": "manual"})
    data["phases"][0]["hold"] = "1h"  # one step is all there can be
    rollout = Rollout(tmp_path, data)
    assert rollout.verb("up").returncode == 0
    engine = engine_pid(rollout.state)
    client = EngineClient(open_store(rollout.state, create=False), actor=ALICE)
    try:
        for run in range(ROUNDS):
            results = rollout.at_once(("step",), ("step",), ("step",))
            ok = [r for r in results if r.returncode == 0]
            assert len(ok) == 1 and ok[0].stdout.strip() == "stepped up to phase 1", (run, [(r.returncode, r.stdout, r.stderr) for r in results])
            assert all(r.returncode == 6 and ("an action is still in flight" in r.stderr or "soak" in r.stderr or "stale step" in r.stderr)
                       for r in results if r is not ok[0]), (run, [(r.returncode, r.stderr) for r in results])
            assert rollout.kinds().count("step.intent") == run + 1, (run, rollout.kinds())
            for verb in ("rollback", "retry"):  # back to phase 0 for the next round
                assert client.act(verb, {}).status == "done"
    finally:
        client.store.close()
    entries = rollout.journal()
    intents, outcomes = by_action(entries, "step.intent"), by_action(entries, "step.outcome")
    assert len(intents) == ROUNDS and set(outcomes) == set(intents), [(e["kind"], e["message"]) for e in entries]
    assert all(len(v) == 1 for v in (*intents.values(), *outcomes.values()))
    # The flag writes came from one process: the engine's.
    assert {w.who for w in flags.writes} == {engine}, [(w.who, w.value) for w in flags.writes]
    assert rollout.verb("down", "--force").returncode == 0


def test_three_forced_steps_at_the_same_instant_make_one_step(tmp_path, flags):
    # A forced step overrides soak and gates, so only the phase it was asked from tells a
    # stale one: each names the phase it read, the first moves it, the others are refused.
    # One engine for every round, rolled back and retried between them as in the test above.
    rollout = Rollout(tmp_path, plan_data(flags, timeout="3s", automation={"step_up": "manual"}))
    assert rollout.verb("up").returncode == 0
    client = EngineClient(open_store(rollout.state, create=False), actor=ALICE)
    try:
        for run in range(3):
            flags.writes.clear()
            results = rollout.at_once(*[("step", "--force", "--reason", f"go {i}") for i in range(3)])
            ok = [r for r in results if r.returncode == 0]
            assert [r.stdout.strip() for r in ok] == ["stepped up to phase 1"], (run, [(r.returncode, r.stdout, r.stderr) for r in results])
            for refused in (r for r in results if r is not ok[0]):
                assert refused.returncode == 6, (run, refused.returncode, refused.stderr)
                # Read before the first step entered phase 1, or after it: stale either way; or sent while it was in flight.
                assert ("warroom: stale step: asked " in refused.stderr and "phase 1/3 Canary 5%" in refused.stderr
                        or "an action is still in flight" in refused.stderr), refused.stderr
            assert client.store.load_state()[1]["phase"] == 1
            assert {w.value["rollout_percentage"] for w in flags.writes} == {5}  # (a write that timed out is asked again)
            for verb in ("rollback", "retry"):  # back to phase 0 for the next round
                assert client.act(verb, {}).status == "done"
    finally:
        client.store.close()
    assert rollout.verb("down", "--force").returncode == 0


def test_a_step_from_a_phase_the_rollout_has_left_is_refused(tmp_path, flags):
    rollout = Rollout(tmp_path, plan_data(flags, timeout="3s", automation={"step_up": "manual"}))
    assert rollout.verb("up").returncode == 0
    assert rollout.verb("step", "--from", "0").stdout.strip() == "stepped up to phase 1"
    stale = rollout.verb("step", "--force", "--reason", "script retried", "--from", "0")
    assert stale.returncode == 6 and stale.stdout == "", stale.stdout + stale.stderr
    assert ("warroom: stale step: asked from phase 0, but the rollout is at phase 1/3 Canary 5% now; "
            "look again and step from there if you still want to") in stale.stderr, stale.stderr
    assert rollout.status()["phase"]["index"] == 1
    assert rollout.verb("down", "--force").returncode == 0
