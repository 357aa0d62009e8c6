"""The store's contract, on each backend (a real SQLite file; a real PostgreSQL database), opened
by several connections as several processes do. They use only the Store interface.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
from dataclasses import replace

import pytest

from tests.support.waiting import DEADLINE, until
from warroom.core.identity import Actor
from warroom.core.snapshot import Snapshot
from warroom.engine.lease import this_process
from warroom.store import open_store
from warroom.store.base import ActionWrite, Fenced, Holder, StaleState, process_started

ALICE = Actor(user="alice", host="bastion", ssh_client="10.0.0.7", tty="pts/3").to_json()


def row(kind: str, message: str = "m") -> tuple[str, str, str, dict]:
    return (kind, message, "warroom (automatic)", {})


@pytest.fixture
def stores(store_ref):
    """Two stores on one state: what two processes see."""
    opened = [open_store(store_ref) for _ in range(2)]
    yield opened
    for store in opened:
        store.close()


def test_a_takeover_raises_the_epoch_and_fences_the_old_holder_in_the_same_transaction(stores):
    first, second = stores
    a, b = this_process(), this_process()
    mine = first.acquire_lease(a, 0.2)
    assert mine.holder.id == a.id and mine.epoch == 1
    # Held and fresh: the other engine gets the lease as it is, not the lease.
    assert second.acquire_lease(b, 10).holder.id == a.id
    first.commit(mine.fence(), 1.0, [row("pause")], state={"state": "PAUSED"})
    until("a's lease to run out (it was frozen)", lambda: second.now() > mine.expires)
    theirs = second.acquire_lease(b, 10)
    assert theirs.holder.id == b.id and theirs.epoch == 2
    with pytest.raises(Fenced, match=f"this engine held epoch 1; the lease is now epoch 2, held by {b.id}"):
        first.commit(mine.fence(), 2.0, [row("resume")], state={"state": "RUNNING"})
    for write in (lambda: first.record_samples(mine.fence(), 2.0, {"p": 1.0}),
                  lambda: first.publish(mine.fence(), {"x": 1}),
                  lambda: first.renew_lease(mine.fence(), 10),
                  lambda: first.claim_command(mine.fence())):
        with pytest.raises(Fenced):
            write()
    # Nothing of the fenced commits was written.
    assert [e.kind for e in second.entries()] == ["pause"] and second.load_state()[1] == {"state": "PAUSED"}
    assert second.snapshot() is None and list(second.samples("p")) == []
    first.release_lease(mine.fence())  # a fenced release is a no-op
    assert second.lease().holder.id == b.id


def test_a_released_lease_keeps_its_epoch_and_the_next_holder_raises_it(stores):
    first, second = stores
    a = first.acquire_lease(this_process(), 10)
    first.release_lease(a.fence())
    assert second.lease().holder is None and second.lease().epoch == 1
    assert second.acquire_lease(this_process(), 10).epoch == 2


def test_a_holder_proved_dead_is_replaced_before_its_lease_runs_out(stores):
    first, _ = stores
    child = subprocess.Popen(["sleep", "30"])
    dead = Holder("alice", this_process().host, child.pid, process_started(child.pid))
    first.acquire_lease(dead, 60)
    assert first.acquire_lease(this_process(), 10, replacing=None).holder.id == dead.id
    assert not dead.provably_gone()
    child.kill()
    child.wait()
    assert dead.provably_gone()
    assert first.acquire_lease(this_process(), 10, replacing=dead.id).epoch == 2


def test_a_holder_counts_as_gone_only_when_that_is_provable():
    child = subprocess.Popen(["sleep", "30"])
    try:
        alive = Holder("alice", this_process().host, child.pid, process_started(child.pid))
        assert alive.started is not None and not alive.provably_gone()
        # The same pid with another start time is another process: gone (pid reuse).
        assert replace(alive, started=alive.started - 1).provably_gone()
        assert not replace(alive, host="standby-host").provably_gone()  # another host cannot be looked into
    finally:
        child.kill()
        child.wait()


def test_a_command_is_claimed_by_one_engine_and_its_action_recorded_on_it(stores):
    first, second = stores
    lease = first.acquire_lease(this_process(), 10)
    command_id = second.send_command("rollback", {"reason": "errors"}, ALICE)
    claimed = first.claim_command(lease.fence())
    assert (claimed.id, claimed.verb, claimed.args, claimed.actor, claimed.status) == (command_id, "rollback", {"reason": "errors"}, ALICE, "running")
    assert first.claim_command(lease.fence()) is None  # nobody runs it twice
    first.commit(lease.fence(), 1.0, [row("rollback.intent")], action=ActionWrite("r1", new=("rollback", {}), command=command_id))
    first.finish_command(lease.fence(), command_id, "done", "rolled back")
    seen = second.command(command_id)
    assert (seen.status, seen.message, seen.action_id, seen.epoch, seen.done) == ("done", "rolled back", "r1", 1, True)


def test_a_commit_against_a_state_that_moved_is_refused_whole(stores):
    first, _ = stores
    fence = first.acquire_lease(this_process(), 10).fence()
    v1 = first.commit(fence, 1.0, state={"state": "RUNNING"}).version
    first.commit(fence, 2.0, [row("pause")], state={"state": "PAUSED"}, expected_version=v1)
    with pytest.raises(StaleState):
        first.commit(fence, 3.0, [row("resume")], state={"state": "RUNNING"}, expected_version=v1)
    assert first.load_state()[1] == {"state": "PAUSED"} and [e.kind for e in first.entries()] == ["pause"]


def test_actions_left_by_an_earlier_epoch_are_adopted_once(stores):
    first, second = stores
    old = first.acquire_lease(this_process(), 0.1)
    first.commit(old.fence(), 1.0, [row("rollback.intent")], action=ActionWrite("r1", new=("rollback", {"flags": {}})))
    until("the old lease to run out", lambda: second.now() > old.expires)
    new = second.acquire_lease(this_process(), 10)
    assert [(a.id, a.epoch) for a in second.adopt_actions(new.fence())] == [("r1", 1)]
    assert second.adopt_actions(new.fence()) == []  # ours now
    assert [a.epoch for a in second.pending_actions()] == [2]


def test_the_snapshot_goes_through_the_store_and_back_whole(stores, tmp_path):
    first, second = stores
    from tests.conftest import load
    from warroom.core.clock import VirtualClock
    from warroom.engine.build import build_engine

    async def published() -> Snapshot:
        engine = build_engine(load(tmp_path), store=first, clock=VirtualClock())
        await engine.start()
        await engine.tick()
        await engine.step_up(Actor("alice"))
        await engine.tick()
        await engine.close()  # the last snapshot is published as it stops
        return engine.snapshot

    snap = asyncio.run(published())
    stored = second.snapshot()
    body = {**stored.body, "journal": []}
    back = Snapshot.from_json(body)
    assert back == replace(snap, journal=())  # every nested view typed again: panes, phase, flags, gates
    assert back.phase.checklist[0].required and back.flags[0].observed.rollout == 5.0


def test_a_client_waiting_on_changes_wakes_when_the_engine_commits(stores):
    engine_side, client_side = stores
    fence = engine_side.acquire_lease(this_process(), 10).fence()
    waiter = client_side.watch()
    assert not waiter.wait(0.1)  # nothing happened
    threading.Timer(0.2, lambda: engine_side.commit(fence, 1.0, [row("pause")])).start()
    assert waiter.wait(DEADLINE)  # how soon: bench/key_rollback.py


def test_the_driving_engine_is_woken_at_once_by_a_command(stores):
    engine_side, client_side = stores
    engine_side.acquire_lease(this_process(), 10)
    waiter = engine_side.watch(commands=True)

    async def woken() -> bool:
        threading.Timer(0.3, lambda: client_side.send_command("rollback", {}, ALICE)).start()
        return await waiter.changed(DEADLINE)

    assert asyncio.run(woken())  # how soon (the datagram, not the next poll): bench/key_rollback.py
