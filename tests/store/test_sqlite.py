"""The store's contract on a real SQLite file opened by several connections (as several processes do).

Issue 14 runs these against PostgreSQL too: they use only the Store interface.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import subprocess
import threading
import time
from dataclasses import replace

import pytest

from warroom.engine.lease import this_process
from warroom.identity import Actor
from warroom.snapshot import Snapshot
from warroom.store import open_store
from warroom.store.base import ActionWrite, Fenced, Holder, StaleState, StoreMissing, process_started

ALICE = Actor(user="alice", host="bastion", ssh_client="10.0.0.7", tty="pts/3").to_json()


def row(kind: str, message: str = "m") -> tuple[str, str, str, dict]:
    return (kind, message, "warroom (automatic)", {})


@pytest.fixture
def stores(tmp_path):
    """Two stores on one file: what two processes see."""
    opened = [open_store(tmp_path / "state.sqlite") for _ in range(2)]
    yield opened
    for store in opened:
        store.close()


def test_a_takeover_raises_the_epoch_and_fences_the_old_holder_in_the_same_transaction(stores):
    first, second = stores
    a, b = this_process(), this_process()
    mine = first.acquire_lease(a, 0.2, time.time())
    assert mine.holder.id == a.id and mine.epoch == 1
    # Held and fresh: the other engine gets the lease as it is, not the lease.
    assert second.acquire_lease(b, 10, time.time()).holder.id == a.id
    first.commit(mine.fence(), 1.0, [row("pause")], state={"state": "PAUSED"})
    time.sleep(0.3)  # a's lease runs out (it was frozen)
    theirs = second.acquire_lease(b, 10, time.time())
    assert theirs.holder.id == b.id and theirs.epoch == 2
    with pytest.raises(Fenced, match=f"this engine held epoch 1; the lease is now epoch 2, held by {b.id}"):
        first.commit(mine.fence(), 2.0, [row("resume")], state={"state": "RUNNING"})
    for write in (lambda: first.record_samples(mine.fence(), 2.0, {"p": 1.0}),
                  lambda: first.publish(mine.fence(), 2.0, {"x": 1}),
                  lambda: first.renew_lease(mine.fence(), 10, time.time()),
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
    a = first.acquire_lease(this_process(), 10, time.time())
    first.release_lease(a.fence())
    assert second.lease().holder is None and second.lease().epoch == 1
    assert second.acquire_lease(this_process(), 10, time.time()).epoch == 2


def test_a_holder_proved_dead_is_replaced_before_its_lease_runs_out(stores):
    first, _ = stores
    child = subprocess.Popen(["sleep", "30"])
    dead = Holder("alice", this_process().host, child.pid, process_started(child.pid))
    first.acquire_lease(dead, 60, time.time())
    assert first.acquire_lease(this_process(), 10, time.time(), replacing=None).holder.id == dead.id
    assert not dead.provably_gone()
    child.kill()
    child.wait()
    assert dead.provably_gone()
    assert first.acquire_lease(this_process(), 10, time.time(), replacing=dead.id).epoch == 2


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
    lease = first.acquire_lease(this_process(), 10, time.time())
    command_id = second.send_command("rollback", {"reason": "errors"}, ALICE, time.time())
    claimed = first.claim_command(lease.fence())
    assert (claimed.id, claimed.verb, claimed.args, claimed.actor, claimed.status) == (command_id, "rollback", {"reason": "errors"}, ALICE, "running")
    assert first.claim_command(lease.fence()) is None  # nobody runs it twice
    first.commit(lease.fence(), 1.0, [row("rollback.intent")], action=ActionWrite("r1", new=("rollback", {}), command=command_id))
    first.finish_command(lease.fence(), command_id, "done", "rolled back", 2.0)
    seen = second.command(command_id)
    assert (seen.status, seen.message, seen.action_id, seen.epoch, seen.done) == ("done", "rolled back", "r1", 1, True)


def test_a_commit_against_a_state_that_moved_is_refused_whole(stores):
    first, _ = stores
    fence = first.acquire_lease(this_process(), 10, time.time()).fence()
    v1 = first.commit(fence, 1.0, state={"state": "RUNNING"}).version
    first.commit(fence, 2.0, [row("pause")], state={"state": "PAUSED"}, expected_version=v1)
    with pytest.raises(StaleState):
        first.commit(fence, 3.0, [row("resume")], state={"state": "RUNNING"}, expected_version=v1)
    assert first.load_state()[1] == {"state": "PAUSED"} and [e.kind for e in first.entries()] == ["pause"]


def test_actions_left_by_an_earlier_epoch_are_adopted_once(stores):
    first, second = stores
    old = first.acquire_lease(this_process(), 0.1, time.time())
    first.commit(old.fence(), 1.0, [row("rollback.intent")], action=ActionWrite("r1", new=("rollback", {"flags": {}})))
    time.sleep(0.2)
    new = second.acquire_lease(this_process(), 10, time.time())
    assert [(a.id, a.epoch) for a in second.adopt_actions(new.fence())] == [("r1", 1)]
    assert second.adopt_actions(new.fence()) == []  # ours now
    assert [a.epoch for a in second.pending_actions()] == [2]


def test_the_snapshot_goes_through_the_store_and_back_whole(stores, tmp_path):
    first, second = stores
    from tests.conftest import load
    from warroom.engine.build import build_engine
    from warroom.clock import VirtualClock

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
    fence = engine_side.acquire_lease(this_process(), 10, time.time()).fence()
    waiter = client_side.watch()
    assert not waiter.wait(0.1)  # nothing happened
    threading.Timer(0.2, lambda: engine_side.commit(fence, 1.0, [row("pause")])).start()
    started = time.monotonic()
    assert waiter.wait(5.0) and time.monotonic() - started < 1.0


def test_the_driving_engine_is_woken_at_once_by_a_command(stores):
    engine_side, client_side = stores
    engine_side.acquire_lease(this_process(), 10, time.time())
    waiter = engine_side.watch(commands=True)

    async def woken() -> float:
        started = time.monotonic()
        threading.Timer(0.3, lambda: client_side.send_command("rollback", {}, ALICE, time.time())).start()
        assert await waiter.changed(5.0)
        return time.monotonic() - started

    assert 0.29 < asyncio.run(woken()) < 0.35  # the datagram, not the next poll
    # One engine listens per state file: a second one falls back to watching data_version.
    other = open_store(engine_side.path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM):
        assert other._listen() is None
    other.close()


def test_a_client_never_creates_a_store_and_an_empty_file_stays_empty(tmp_path):
    with pytest.raises(StoreMissing, match="no rollout is recorded here yet"):
        open_store(tmp_path / "missing.sqlite", create=False)
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    with pytest.raises(StoreMissing):
        open_store(empty, create=False)
    assert empty.stat().st_size == 0 and not (tmp_path / "missing.sqlite").exists()


def test_a_state_file_from_before_the_engine_process_opens_and_is_migrated(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL,
                              actor TEXT NOT NULL, action_id TEXT, data TEXT NOT NULL DEFAULT '{}');
        CREATE TABLE state (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, body TEXT NOT NULL);
        CREATE TABLE actions (id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, intent TEXT NOT NULL,
                              progress TEXT NOT NULL DEFAULT '{}', created REAL NOT NULL, finished REAL, owner TEXT, owner_expires REAL);
        INSERT INTO actions (id, kind, status, intent, created) VALUES ('r1', 'rollback', 'pending', '{}', 1.0);
        INSERT INTO journal (ts, kind, message, actor) VALUES (1.0, 'console.init', 'rollout x initialised', 'alice');
    """)
    db.commit()
    db.close()
    store = open_store(path)
    assert [a.id for a in store.pending_actions()] == ["r1"] and [e.kind for e in store.entries()] == ["console.init"]
    fence = store.acquire_lease(this_process(), 10, time.time()).fence()
    assert [a.id for a in store.adopt_actions(fence)] == ["r1"]
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 2
        raw.execute("PRAGMA user_version = 99")
    store.close()
    with pytest.raises(Exception, match="written by a newer warroom \\(schema 99, this one reads 2\\); upgrade warroom"):
        open_store(path)
