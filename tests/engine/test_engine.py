"""The engine on the real simulator, local flag file and SQLite, in virtual time."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import ALICE, BASE_PLAN, load
from tests.support.waiting import until_async
from warroom.core.flagstate import FlagState
from warroom.core.snapshot import State
from warroom.engine.engine import CommandError
from warroom.store.base import ActionWrite

BASE = yaml.safe_load(BASE_PLAN)


def flags_file(engine) -> dict:
    return json.loads(engine.provider.path.read_text())["flags"]


def kinds(engine) -> list[str]:
    return [e.kind for e in engine.store.entries()]


def with_faults(*faults: dict, **source) -> dict:
    return {"sources": {"sim": {**BASE["sources"]["sim"], **source, "faults": list(faults)}}}


def with_guardrails(*guards: dict) -> dict:
    return {"guardrails": list(guards)}


async def advance(engine, clock, seconds: float, step: float = 5.0):
    """Tick every `step` seconds of virtual time for `seconds`."""
    snap = None
    t = 0.0
    while t < seconds:
        clock.advance(step)
        t += step
        snap = await engine.tick()
    return snap


async def enter_phase_one(engine):
    await engine.tick()
    assert await engine.step_up(ALICE) == "stepped up to phase 1"
    assert engine.state == State.RUNNING


# ------------------------------------------------------------------ step up


async def test_step_up_needs_soak_gates_and_required_items(make_engine, clock):
    engine = await make_engine()
    await enter_phase_one(engine)
    assert flags_file(engine)["feature"] == {"enabled": True, "rollout_percentage": 5.0, "user_segments": []}
    snap = await engine.tick()
    blockers = " | ".join(snap.step_blockers)
    assert "soak" in blockers and "Dashboards checked" in blockers
    with pytest.raises(CommandError, match="soak"):
        await engine.step_up(ALICE)

    await advance(engine, clock, 60)
    snap = await engine.tick()
    assert not any("soak" in b for b in snap.step_blockers)
    assert any("required item" in b for b in snap.step_blockers)
    # The optional item is not needed; the required one is.
    await engine.tick_item(ALICE, "2")
    assert any("required item" in b for b in (await engine.tick()).step_blockers)
    await engine.tick_item(ALICE, "dashboards")  # by a unique part of its text
    snap = await engine.tick()
    assert snap.step_blockers == ()
    assert snap.next_change == "phase 2/3 Half 50%: feature: 5% → 50%"
    assert await engine.step_up(ALICE) == "stepped up to phase 2"
    assert flags_file(engine)["feature"]["rollout_percentage"] == 50.0
    # Why it was allowed is journaled with it: the gates as they stood, and the soak.
    intent = [e for e in engine.store.entries() if e.kind == "step.intent"][-1]
    assert intent.data["gates"] == [{"gate": "errors low", "value": pytest.approx(0.0004, abs=0.0002), "passed": True}]
    assert intent.data["soaked"] >= 60 and intent.data["actor"]["user"] == "alice"


async def test_automatic_step_up_says_why_and_which_console_decided(make_engine, clock):
    engine = await make_engine({"automation": {"step_up": "auto"}})
    await engine.tick()  # phase 1
    await engine.tick_item(ALICE, "1")
    await advance(engine, clock, 65)  # soak over, gate green: phase 2
    intent = [e for e in engine.store.entries() if e.kind == "step.intent"][-1]
    assert intent.message == "step up to phase 2/3 Half 50%: feature 50% (automatic: soak 1m00s done, 1 gate(s) green, required items ticked)"
    assert intent.actor == "warroom (automatic)" and intent.data["actor"]["driver"] == engine.holder


async def test_red_gate_blocks_step_up(make_engine, clock):
    # 0.2 % errors: under the guardrail, over the phase gate (< 0.1 %).
    engine = await make_engine(with_faults({"metric": "error_rate", "phase": 1, "value": 0.002, "while_exposed": False}))
    await enter_phase_one(engine)
    await engine.tick_item(ALICE, "1")
    snap = await advance(engine, clock, 65)
    assert snap.step_blockers == ("gate errors low is red (0.20%)",)
    assert snap.phase.gates[0].passed is False


async def test_forced_step_up_needs_a_reason_and_is_journaled(make_engine, clock):
    engine = await make_engine()
    await enter_phase_one(engine)
    await engine.tick()
    with pytest.raises(CommandError, match="needs a reason"):
        await engine.step_up(ALICE, force=True)
    assert await engine.step_up(ALICE, force=True, reason="exec sign-off, soak waived") == "stepped up to phase 2"
    forced = [e for e in engine.store.entries() if e.kind == "step.forced"]
    assert len(forced) == 1
    assert "exec sign-off" in forced[0].message and "soak" in forced[0].message
    assert forced[0].actor == "alice from 10.0.0.7 on pts/3"


async def test_last_step_completes_the_rollout(make_engine, clock):
    engine = await make_engine()
    await enter_phase_one(engine)
    await engine.step_up(ALICE, force=True, reason="test")
    await engine.step_up(ALICE, force=True, reason="test")
    assert engine.phase_index == 3
    await engine.tick()
    assert await engine.step_up(ALICE) == "rollout complete"
    assert engine.state == State.COMPLETE
    assert flags_file(engine)["feature"]["rollout_percentage"] == 100.0


# ------------------------------------------------------------------ guardrails


async def test_breach_rolls_back_only_after_the_for_window(make_engine, clock):
    engine = await make_engine(with_faults({"metric": "error_rate", "phase": 1, "after": "10s", "value": 0.03, "while_exposed": False}))
    await enter_phase_one(engine)
    await advance(engine, clock, 10)
    snap = await advance(engine, clock, 25)  # breaching for 25 s of a 30 s window
    assert engine.state == State.RUNNING
    assert snap.guardrails[0].status == "pending"
    assert snap.panes[0].status == "breach" and 0.5 < snap.panes[0].for_progress < 1
    snap = await advance(engine, clock, 5)
    assert engine.state == State.ROLLED_BACK
    assert flags_file(engine)["feature"]["enabled"] is False
    intent = next(e for e in engine.store.entries() if e.kind == "rollback.intent")
    assert "errors 3.00% above 1.00%" in intent.message and "held 30s" in intent.message
    assert intent.data["cause"]["value"] == pytest.approx(0.03)
    assert intent.data["cause"]["threshold"] == 0.01
    assert intent.data["cause"]["query"] == "error_rate"
    assert intent.actor == "warroom (automatic)"
    assert kinds(engine)[-3:] == ["rollback.intent", "rollback.confirmed", "rollback.outcome"]


async def test_a_breach_shorter_than_the_window_does_not_roll_back(make_engine, clock):
    engine = await make_engine(with_faults({"metric": "error_rate", "phase": 1, "after": "10s", "duration": "20s", "value": 0.03, "while_exposed": False}))
    await enter_phase_one(engine)
    await advance(engine, clock, 120)
    assert engine.state == State.RUNNING
    assert "guardrail.breach" in kinds(engine) and "guardrail.clear" in kinds(engine)
    assert "rollback.intent" not in kinds(engine)


async def test_pause_action(make_engine, clock):
    engine = await make_engine({
        **with_faults({"metric": "latency_p95", "phase": 1, "value": 0.8, "while_exposed": False}),
        **with_guardrails({"id": "slow", "pane": "p95", "above": 0.5, "for": "10s", "action": "pause"}),
    })
    await enter_phase_one(engine)
    await advance(engine, clock, 15)
    assert engine.state == State.PAUSED
    assert "guardrail slow" in engine.rollout.paused_reason
    assert flags_file(engine)["feature"]["enabled"] is True  # a pause changes no flag


async def test_alert_action_journals_once_per_breach(make_engine, clock):
    engine = await make_engine({
        **with_faults({"metric": "latency_p95", "phase": 1, "value": 0.8, "while_exposed": False}),
        **with_guardrails({"id": "slow", "pane": "p95", "above": 0.5, "for": "10s", "action": "alert"}),
    })
    await enter_phase_one(engine)
    await advance(engine, clock, 60)
    assert kinds(engine).count("guardrail.alert") == 1
    assert engine.state == State.RUNNING


async def test_no_data_hold_alarms_and_blocks_but_does_not_roll_back(make_engine, clock):
    engine = await make_engine(with_faults({"mode": "dark", "at": "2m", "while_exposed": False}))
    await enter_phase_one(engine)
    await engine.tick_item(ALICE, "1")
    snap = await advance(engine, clock, 150)
    assert engine.state == State.RUNNING
    assert snap.guardrails[0].status == "nodata"
    assert any("no data" in b for b in snap.step_blockers)
    assert snap.panes[0].status == "stale" and snap.panes[0].age >= 30
    assert "source.error" in kinds(engine)


async def test_no_data_breach_rolls_back(make_engine, clock):
    engine = await make_engine({
        **with_faults({"mode": "dark", "at": "1m", "while_exposed": False}),
        **with_guardrails({"id": "errors", "pane": "errors", "above": 0.01, "for": "20s", "no_data": "breach"}),
    })
    await enter_phase_one(engine)
    await advance(engine, clock, 90)
    assert engine.state == State.ROLLED_BACK
    intent = next(e for e in engine.store.entries() if e.kind == "rollback.intent")
    assert "no data" in intent.message
    # Journaled when the no-data spell began, like a value breach: what it will do and when.
    breach = [e for e in engine.store.entries() if e.kind == "guardrail.breach"]
    assert len(breach) == 1 and breach[0].seq < intent.seq and breach[0].data["value"] is None
    assert breach[0].message == ("errors: errors has no data (simulated outage: the metrics source is dark), "
                                 "a breach by its `no_data: breach`; acting after 20s if it holds")
    assert intent.ts - breach[0].data["since"] == 20


async def test_an_emptied_state_over_exposed_flags_waits_for_a_human(make_engine, clock, tmp_path):
    (tmp_path / "flags.json").write_text('{"flags": {"feature": {"enabled": true, "rollout_percentage": 30}}}')
    engine = await make_engine({"automation": {"step_up": "auto"}})
    assert engine.state == State.PAUSED and engine.phase_index == 0
    assert engine.rollout.paused_reason.startswith("drift at start: feature 30% already exposed")
    await advance(engine, clock, 120)
    assert flags_file(engine)["feature"]["rollout_percentage"] == 30 and "step.intent" not in kinds(engine)
    # 30 % is no phase of the plan: acknowledging keeps it paused rather than stepping to 5 %.
    assert await engine.ack_drift(ALICE) == "drift acknowledged"
    assert engine.state == State.PAUSED and "match no phase" in engine.rollout.paused_reason
    assert engine.desired()["feature"] == FlagState(True, 30.0)


async def test_no_data_ignore_neither_blocks_nor_acts(make_engine, clock):
    engine = await make_engine({
        **with_faults({"mode": "dark", "at": "1m", "while_exposed": False}),
        **with_guardrails({"id": "errors", "pane": "errors", "above": 0.01, "for": "20s", "no_data": "ignore"}),
        "phases": [{**BASE["phases"][0], "gates": []}, *BASE["phases"][1:]],
    })
    await enter_phase_one(engine)
    await engine.tick_item(ALICE, "1")
    snap = await advance(engine, clock, 90)
    assert engine.state == State.RUNNING
    assert snap.guardrails[0].status == "ignored"
    assert snap.step_blockers == ()


async def test_breach_while_paused_still_rolls_back(make_engine, clock):
    engine = await make_engine(with_faults({"metric": "error_rate", "phase": 1, "after": "20s", "value": 0.05, "while_exposed": False}))
    await enter_phase_one(engine)
    await engine.pause(ALICE, "waiting for the database team")
    await advance(engine, clock, 60)
    assert engine.state == State.ROLLED_BACK
    assert flags_file(engine)["feature"]["enabled"] is False


# ------------------------------------------------------------------ commands


async def test_pause_resume_rollback_retry(make_engine, clock):
    engine = await make_engine()
    with pytest.raises(CommandError, match="nothing to pause"):
        await engine.pause(ALICE)
    await enter_phase_one(engine)
    await engine.pause(ALICE, "lunch")
    with pytest.raises(CommandError, match="PAUSED"):
        await engine.step_up(ALICE, force=True, reason="x")
    await engine.resume(ALICE)
    assert engine.state == State.RUNNING
    with pytest.raises(CommandError, match="retry leaves"):
        await engine.retry(ALICE)
    assert await engine.rollback(ALICE, "customer complaints") == "rolled back"
    assert await engine.rollback(ALICE) == "already rolled back"
    assert flags_file(engine)["feature"]["enabled"] is False
    await engine.retry(ALICE)
    assert engine.state == State.PENDING and engine.phase_index == 0
    await engine.tick()
    await engine.step_up(ALICE)
    assert flags_file(engine)["feature"]["rollout_percentage"] == 5.0
    by_kind = {e.kind: e for e in engine.store.entries()}
    for kind in ("pause", "resume", "rollback.intent", "retry"):
        assert by_kind[kind].actor == "alice from 10.0.0.7 on pts/3"
        assert by_kind[kind].data["actor"]["tty"] == "pts/3"


async def test_drift_pauses_automation_until_acknowledged(make_engine, clock):
    engine = await make_engine()
    await enter_phase_one(engine)
    # Someone uses the flag UI behind warroom's back.
    data = json.loads(engine.provider.path.read_text())
    data["flags"]["feature"]["rollout_percentage"] = 40
    engine.provider.path.write_text(json.dumps(data))
    snap = await engine.tick()
    assert engine.state == State.PAUSED and snap.drift
    flag = snap.flags[0]
    assert flag.drift and flag.desired.rollout == 5 and flag.observed.rollout == 40
    assert kinds(engine).count("drift.detected") == 1
    await engine.tick()
    assert kinds(engine).count("drift.detected") == 1  # journaled once, not every tick
    with pytest.raises(CommandError, match="drift"):
        await engine.resume(ALICE)
    assert "resumed" in await engine.ack_drift(ALICE)
    snap = await engine.tick()
    assert engine.state == State.RUNNING and not snap.drift
    assert snap.flags[0].desired.rollout == 40


async def test_rollback_retries_until_the_flag_store_accepts(make_engine, clock, tmp_path):
    engine = await make_engine()
    await enter_phase_one(engine)
    # Make the store unwritable for real: a directory where the temp file must be renamed to.
    engine.provider.path.unlink()
    engine.provider.path.mkdir()
    import asyncio

    task = asyncio.ensure_future(engine.rollback(ALICE, "drill"))
    await until_async("three rollback attempts", lambda: kinds(engine).count("rollback.attempt") >= 3)
    assert not task.done()
    assert engine.state == State.ROLLING_BACK
    snap = engine.publish()
    assert snap.action.kind == "rollback" and snap.action.attempt >= 3 and "is a directory, not a flag file" in snap.action.last_error
    assert snap.action.target == "feature off" and snap.action.started_at <= snap.now
    engine.provider.path.rmdir()  # the flag service comes back
    assert await task == "rolled back"
    assert engine.state == State.ROLLED_BACK
    assert flags_file(engine)["feature"]["enabled"] is False
    attempts = [e for e in engine.store.entries() if e.kind == "rollback.attempt"]
    assert [e.data["attempt"] for e in attempts[:3]] == [1, 2, 3]


async def test_one_engine_drives_and_runs_a_client_command_as_the_human_who_sent_it(make_engine, clock, tmp_path):
    import asyncio

    from warroom.client import EngineClient
    from warroom.engine.build import build_engine
    from warroom.engine.commands import CommandLoop
    from warroom.engine.lease import EngineBusy

    engine = await make_engine()
    await enter_phase_one(engine)
    second = build_engine(load(tmp_path), clock=clock)
    with pytest.raises(EngineBusy, match=f"another engine drives this rollout: {engine.holder} \\(epoch 1\\)"):
        await second.start()
    client = EngineClient(engine.store, actor=ALICE)
    stop = asyncio.Event()
    loop = asyncio.ensure_future(CommandLoop(engine, lambda *_: None).serve(stop))
    command = await asyncio.to_thread(client.wait, client.send("pause", {"reason": "from a script"}))
    stop.set()
    await loop
    assert (command.status, command.message, command.epoch) == ("done", "paused", 1)
    pause = [e for e in engine.store.entries() if e.kind == "pause"][-1]
    # Queued in the SQLite file with no local socket to prove it: run as alice said, and shown as only said.
    assert pause.actor == "alice (declared, not proven) from 10.0.0.7 on pts/3" and pause.data["actor"]["tty"] == "pts/3"
    snap = client.snapshot()
    assert snap.state == State.PAUSED and snap.paused_reason == "from a script" and snap.engine.alive


async def test_interrupted_step_up_is_reconciled_on_start(make_engine, clock, tmp_path):
    engine = await make_engine()
    await enter_phase_one(engine)
    # A step-up whose intent was committed but whose outcome never was (the console died
    # after the flag write): the flags already read 50 %.
    intent = {"from_phase": 1, "to_phase": 2, "flags": {"feature": {"enabled": True, "rollout": 50.0, "segments": []}},
              "previous": {"feature": {"enabled": True, "rollout": 5.0, "segments": []}}, "forced": False, "reason": ""}
    engine.store.commit(engine.lease.fence, clock.now(), [("step.intent", "step up to phase 2", "alice", intent)],
                        state={**engine.rollout.to_json(), "action": {"id": "a1", "kind": "step_up", "since": clock.now()}},
                        action=ActionWrite("a1", new=("step_up", intent)))
    await engine.provider.write("feature", engine.desired()["feature"].__class__(True, 50.0))
    await engine.close()
    restarted = await make_engine()
    assert restarted.state == State.RUNNING and restarted.phase_index == 2
    outcome = [e for e in restarted.store.entries(action_id="a1") if e.kind == "step.outcome"]
    assert len(outcome) == 1 and "had completed" in outcome[0].message
    assert restarted.store.action_status("a1") == "done"


async def test_in_real_time_a_retrying_rollback_does_not_stop_the_ticks(make_engine, tmp_path):
    """Guardrails and samples keep going while an automatic rollback retries its flag writes."""
    import asyncio

    from warroom.core.clock import ScaledClock

    engine = await make_engine({**with_faults({"metric": "error_rate", "phase": 1, "value": 0.05, "while_exposed": False}),
                                **with_guardrails({"id": "errors", "pane": "errors", "above": 0.01, "for": "0s"})},
                               clock=ScaledClock(50.0))
    await enter_phase_one(engine)
    engine.provider.path.unlink()
    engine.provider.path.mkdir()  # the flag store refuses every write
    snap = await engine.tick()  # the breach fires the rollback and the tick returns
    assert snap.state == State.ROLLING_BACK
    before = engine.tick_count
    for _ in range(3):
        snap = await engine.tick()
    assert engine.tick_count == before + 3 and snap.state == State.ROLLING_BACK

    async def refused_and_ticking() -> bool:  # its first write may still be on its way after three quick ticks
        tick = await engine.tick()
        return tick.state == State.ROLLING_BACK and tick.action.kind == "rollback" and tick.action.attempt >= 1

    await until_async("the rollback's writes refused and retried while the ticks go on", refused_and_ticking)
    engine.provider.path.rmdir()
    await asyncio.wait_for(engine.wait_idle(), 10)
    assert engine.state == State.ROLLED_BACK
