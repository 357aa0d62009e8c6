"""Step ups and rollbacks against the loopback flag service, engines in one process, virtual time.

The process-level races are in tests/races; these pin the engine's exact decisions.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
import yaml

from tests.conftest import ALICE, BASE_PLAN
from tests.flags.flagservice import FlagService
from tests.support.waiting import until_async
from warroom.core.flagstate import FlagState
from warroom.core.snapshot import State

TOKEN = "ENGINE-TOKEN-51ab"
ON_5 = {"enabled": True, "rollout_percentage": 5.0, "user_segments": []}
OFF = {"enabled": False, "rollout_percentage": 0.0, "user_segments": []}


@pytest.fixture
def service(monkeypatch):
    monkeypatch.setenv("WARROOM_ENGINE_FLAG_TOKEN", TOKEN)
    flags = FlagService(TOKEN).start()
    yield flags
    flags.stop()


@pytest.fixture
def make(make_engine, service):
    """Engines on BASE_PLAN through the http provider; `other` is off in every phase and rolled back too."""
    phases = yaml.safe_load(BASE_PLAN)["phases"]
    phases[0]["flags"]["other"] = False
    phases[0].update(gates=[], checklist=[], hold="0s")
    # A write the test holds is answered when the test says so, well inside this timeout on any machine.
    changes = {"flag_provider": {"provider": "http", "url": service.url, "token": "env:WARROOM_ENGINE_FLAG_TOKEN", "timeout": "30s"},
               "phases": phases, "rollback": {"flags": {"feature": False, "other": False}, "steps": []}}
    return lambda **kw: make_engine(changes, **kw)


def rollback_attempts(engine, flag: str) -> list[int]:
    return [e.data["attempt"] for e in engine.store.entries() if e.kind == "rollback.attempt" and e.data.get("flag") == flag]


async def test_attempt_numbers_go_on_when_a_rollback_is_resumed(make, service):
    engine = await make()
    await engine.tick()
    await engine.step_up(ALICE)
    service.fail(503)  # the flag API is down
    asyncio.ensure_future(engine.rollback(ALICE, "error rate"))
    await until_async("three attempts", lambda: len(rollback_attempts(engine, "feature")) >= 3)
    await engine.close()  # the console goes away mid-rollback
    restarted = await make()  # resumes the rollback; the API is still down
    await until_async("three more attempts", lambda: len(rollback_attempts(restarted, "feature")) >= 6)
    service.recover()
    await asyncio.wait_for(restarted.wait_idle(), 10)
    assert restarted.state == State.ROLLED_BACK
    numbers = rollback_attempts(restarted, "feature")
    assert numbers == list(range(1, len(numbers) + 1))  # 1, 2, 3, 4 …, never back to 1
    assert [e.kind for e in restarted.store.entries()].count("rollback.resume") == 1


async def test_a_flag_off_all_along_is_not_reported_as_set_outside_warroom(make, service):
    engine = await make()
    await engine.tick()
    await engine.step_up(ALICE)
    assert service.flags["other"] == OFF and service.flags["feature"] == ON_5
    service.refuse_disable = True  # the API refuses every write that turns a flag off …
    task = asyncio.ensure_future(engine.rollback(ALICE, "error rate"))
    await until_async("a failed attempt on each", lambda: rollback_attempts(engine, "feature") and rollback_attempts(engine, "other"))
    service.refuse_disable = False  # … for a while
    assert await asyncio.wait_for(task, 10) == "rolled back"
    confirmed = {e.data["flag"]: e.message for e in engine.store.entries() if e.kind == "rollback.attempt" and e.data.get("confirmed_by_read")}
    assert confirmed == {"other": "rollback: other was already off before this action: confirmed by read-back, nothing to change"}


async def test_a_flag_set_off_by_a_human_while_the_api_fails_is_still_said_so(make, service):
    engine = await make()
    await engine.tick()
    await engine.step_up(ALICE)
    service.refuse_disable = True  # the API refuses every write that turns a flag off
    task = asyncio.ensure_future(engine.rollback(ALICE, "error rate"))
    await until_async("a failed attempt", lambda: rollback_attempts(engine, "feature"))
    with service.lock:
        service.flags["feature"] = OFF  # switched off in the flag service's own UI
    assert await asyncio.wait_for(task, 10) == "rolled back"
    confirmed = [e.message for e in engine.store.entries() if e.data.get("confirmed_by_read") and e.data["flag"] == "feature"]
    assert confirmed == ["rollback: feature already reads back off (set outside warroom, or a failed attempt landed): "
                         "confirmed without another write"]


async def test_a_pause_committed_during_a_step_up_stands(make, service):
    console = await make()  # one engine; the pause comes in as a command while the step's write hangs
    await console.tick()
    await console.step_up(ALICE)
    answer = threading.Event()
    service.fault_writes("delay", answer)  # the next step's write is answered once the pause is in
    step = asyncio.ensure_future(console.step_up(ALICE, force=True, reason="rehearsal"))
    await until_async("the step's write", lambda: service.writes and service.writes[-1].fault == "delay")
    await console.tick()
    assert await console.pause(ALICE, "DBA asked for a hold") == "paused"
    answer.set()
    assert await step == "stepped up to phase 2; still PAUSED (DBA asked for a hold)"
    assert console.state == State.PAUSED and console.phase_index == 2
    assert console.desired()["feature"] == FlagState(True, 50.0)
    outcome = [e for e in console.store.entries() if e.kind == "step.outcome"][-1]
    assert outcome.data["entered_phase"] == 2 and outcome.data["stays_paused"] is True


async def test_rolled_back_with_a_flag_on_again_is_rolled_back_again_without_the_runbook(make, service):
    engine = await make()
    await engine.tick()
    await engine.step_up(ALICE)
    assert await engine.rollback(ALICE, "error rate") == "rolled back"
    service.flags["feature"] = {"enabled": True, "rollout_percentage": 50.0, "user_segments": []}  # a late write lands
    snap = await engine.tick()
    assert snap.state == State.ROLLED_BACK and service.flags["feature"]["enabled"] is False
    kinds = [e.kind for e in engine.store.entries()]
    assert kinds[-3:] == ["rollback.reassert", "rollback.confirmed", "rollback.outcome"]
    assert "drift.detected" not in kinds  # back toward safety needs no human ack
    reassert = next(e for e in engine.store.entries() if e.kind == "rollback.reassert")
    assert reassert.data["runbook"] is False and reassert.data["before"]["feature"]["rollout"] == 50.0
    # A human pressing rollback again when a flag reads exposed gets the same.
    service.flags["feature"] = {"enabled": True, "rollout_percentage": 50.0, "user_segments": []}
    await engine.flags.read()
    assert await engine.rollback(ALICE) == "rolled back again: flags confirmed off (the runbook already ran)"
    assert await engine.rollback(ALICE) == "already rolled back"


async def test_a_pause_during_the_automatic_first_step_stands(make, service):
    # PENDING, the first step's write answered late: a pause then is no "nothing to pause".
    engine = await make()
    answer = threading.Event()
    service.fault_writes("delay", answer)  # answered once the pause is in
    step = asyncio.ensure_future(engine.step_up(ALICE))
    await until_async("the first step's write", lambda: service.writes and service.writes[-1].fault == "delay")
    assert engine.state == State.PENDING
    assert await engine.pause(ALICE, "hold before phase 1") == "paused"
    answer.set()
    assert await step == "stepped up to phase 1; still PAUSED (hold before phase 1)"
    assert engine.state == State.PAUSED and engine.phase_index == 1
    await engine.tick()
    assert engine.phase_index == 1 and engine.state == State.PAUSED  # nothing stepped on by itself


async def test_a_command_that_waited_too_long_for_an_engine_is_not_run(make, service):
    import sqlite3

    from warroom.client import EngineClient
    from warroom.engine.commands import MAX_AGE, CommandLoop

    engine = await make()
    client = EngineClient(engine.store, actor=ALICE)
    stale = engine.store.send_command("step", {}, ALICE.to_json())
    rollback = engine.store.send_command("rollback", {"reason": "old but still wanted"}, ALICE.to_json())
    with sqlite3.connect(engine.store.path) as raw:  # sent before any engine ran: their age is the store's to tell
        raw.execute("UPDATE commands SET created = created - ? WHERE id = ?", (MAX_AGE + 5, stale))
        raw.execute("UPDATE commands SET created = created - 600 WHERE id = ?", (rollback,))
    stop = asyncio.Event()
    loop = asyncio.ensure_future(CommandLoop(engine, lambda *_: None).serve(stop))
    step = await asyncio.to_thread(client.wait, stale)
    rolled = await asyncio.to_thread(client.wait, rollback)
    stop.set()
    await loop
    assert step.status == "expired" and "waited 35s for an engine" in step.message and engine.phase_index == 0
    assert rolled.status == "done" and rolled.message == "rolled back"  # a rollback never expires
    expired = [e for e in engine.store.entries() if e.kind == "command.expired"]
    assert len(expired) == 1 and expired[0].actor == ALICE.declared().label()  # a row nothing proves: shown as declared
