"""Who owns a pending action: real processes, real signals, one SQLite file opened twice."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import replace

from warroom.engine.ownership import Owner, may_adopt, process_started
from warroom.store import Store


def test_an_owner_counts_as_gone_only_when_that_is_provable():
    child = subprocess.Popen(["sleep", "30"])
    try:
        alive = Owner(socket.gethostname(), child.pid, process_started(child.pid))
        assert alive.started is not None and not alive.provably_gone()
        # The same pid with another start time is another process: the owner is gone (pid reuse).
        assert replace(alive, started=alive.started - 1).provably_gone()
        # Another host cannot be looked into: only its heartbeat can expire.
        elsewhere = replace(alive, host="standby-host")
        assert not elsewhere.provably_gone()
        assert not may_adopt(elsewhere, time.time() + 30, time.time())
        assert may_adopt(elsewhere, time.time() - 1, time.time())
    finally:
        child.kill()
        child.wait()
    assert alive.provably_gone() and may_adopt(alive, time.time() + 30, time.time())
    assert may_adopt(None, None, time.time())  # an action from before owners were recorded


def test_an_engine_of_this_process_is_gone_once_retired():
    owner = Owner.this_process()
    assert not owner.provably_gone()
    assert Owner.from_json(owner.to_json()) == owner
    owner.retire()
    assert owner.provably_gone()


def test_only_one_process_takes_an_orphaned_action_over(tmp_path):
    first, second = Store(tmp_path / "s.sqlite"), Store(tmp_path / "s.sqlite")
    first.commit(1.0, [], action_id="a1", new_action=("rollback", {}), owner=("dead", 0.0))
    assert first.adopt_action("a1", "dead", "one", time.time() + 30)
    assert not second.adopt_action("a1", "dead", "two", time.time() + 30)
    assert [a["owner"] for a in second.pending_actions()] == ["one"]


async def test_a_working_owner_keeps_its_action_and_hands_it_over_when_it_closes(make_engine, monkeypatch):
    import asyncio

    from tests.conftest import ALICE

    monkeypatch.setattr("warroom.engine.engine.ACTION_TTL", 0.6)  # the heartbeat every 0.1 s
    changes = {"rollback": {"flags": {"feature": False}, "dry_run": False,
                            "steps": [{"name": "slow", "run": ["sleep", "2"], "timeout": "10s"}]}}
    owner = await make_engine(changes)
    other = await make_engine(changes, automation=False, announce=False)
    await owner.tick()
    await owner.step_up(ALICE, force=True, reason="test")
    rollback = asyncio.ensure_future(owner.rollback(ALICE, "drill"))
    await asyncio.sleep(1.5)  # in the runbook's step, long past one heartbeat's life
    assert not rollback.done() and other._orphans() == []
    await owner.close()  # gone mid-rollback: the action is the next process's at once
    assert [a["kind"] for a in other._orphans()] == ["rollback"]
