"""What only the PostgreSQL store does: rollouts sharing a database, its schema version,
reconnecting, secrets (the contract is in test_contract.py, run on both backends)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid

import psycopg
import pytest

from tests.conftest import PG_PASSWORD
from tests.support.servers import postgres_database
from tests.support.waiting import DEADLINE
from warroom.core.secrets import redact
from warroom.engine.lease import MARGIN, Lease, LeaseTooThin, this_process
from warroom.plan.state import PostgresState
from warroom.store import open_store
from warroom.store.base import StoreError, StoreMissing, StoreUnwritable
from warroom.store.postgres import PG_SCHEMA_VERSION
from warroom.store.thread import StoreThread


def row(kind: str) -> tuple[str, str, str, dict]:
    return (kind, "m", "warroom (automatic)", {})


def connect(state: PostgresState) -> psycopg.Connection:
    return psycopg.connect(state.url, password=os.environ[PG_PASSWORD], autocommit=True)


def test_two_rollouts_share_a_database_and_never_mix(pg_state):
    a, b = (open_store(pg_state.keyed(f"launch-{uuid.uuid4().hex[:8]}")) for _ in range(2))
    fence_a = a.acquire_lease(this_process(), 10).fence()
    fence_b = b.acquire_lease(this_process(), 10).fence()
    assert fence_a.epoch == fence_b.epoch == 1  # each rollout has a lease (and an engine) of its own
    a.commit(fence_a, 1.0, [row("pause")], state={"state": "PAUSED"})
    b.publish(fence_b, {"x": 1})
    command = b.send_command("rollback", {}, {"user": "alice"})
    waiter = a.watch()
    b.commit(fence_b, 2.0, [row("resume")])
    assert not waiter.wait(0.3)  # another rollout's commit is not news here
    assert [e.kind for e in a.entries()] == ["pause"] and [e.kind for e in b.entries()] == ["resume"]
    assert a.load_state()[1] == {"state": "PAUSED"} and b.load_state() == (0, {})
    assert a.snapshot() is None and a.claim_command(fence_a) is None and a.command(command) is None
    assert b.claim_command(fence_b).id == command
    with pytest.raises(StoreMissing, match="no rollout is recorded here yet"):
        open_store(pg_state.keyed("never-ran"), create=False)
    for store in (a, b):
        store.close()


def test_a_schema_written_by_a_newer_warroom_is_refused(postgres_cluster):
    with postgres_database(postgres_cluster, f"warroom_schema_test_{os.getpid()}") as url:
        state = PostgresState(url=url, password=f"env:{PG_PASSWORD}", rollout="launch")
        store = open_store(state)  # created by warroom
        assert store.schema_version() == PG_SCHEMA_VERSION == 3  # 3: freezes, stakeholder updates
        store.close()
        with connect(state) as raw:  # a database a warroom before freezes made (schema 2): brought up to date on open
            raw.execute("DROP TABLE warroom.freezes")
            raw.execute("UPDATE warroom.meta SET version = 2")
        store = open_store(state)
        assert store.schema_version() == 3 and store.freezes(since=0) == []
        store.close()
        with connect(state) as raw:
            raw.execute("UPDATE warroom.meta SET version = 99")
        with pytest.raises(StoreError, match=r"written by a newer warroom \(schema 99, this one reads 3\); upgrade warroom"):
            open_store(state)


def test_a_store_reconnects_after_its_connection_is_cut(pg_state):
    """The server restarting (or a proxy dropping the connection): the next call opens a new one;
    a write that finds the connection gone says so as StoreUnwritable (the engine holds it and retries)."""
    store = open_store(pg_state.keyed(f"launch-{uuid.uuid4().hex[:8]}"))
    fence = store.acquire_lease(this_process(), 10).fence()
    waiter = store.watch()

    def cut() -> None:
        with connect(pg_state) as raw:
            raw.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'warroom' "
                        "AND datname = current_database() AND pid != pg_backend_pid()")

    cut()
    assert store.journal_count() == 0  # a read retries once on a new connection
    cut()
    with pytest.raises(StoreUnwritable, match="the database failed"):
        store.commit(fence, 1.0, [row("pause")])
    store.commit(fence, 2.0, [row("resume")])  # the next write goes through
    assert [e.kind for e in store.entries()] == ["resume"]
    assert waiter.wait(1.0)  # the waiter's connection was cut too: it reopens and says to look
    store.close()


def test_the_password_comes_from_its_reference_and_never_shows(pg_state, monkeypatch):
    monkeypatch.setenv("WARROOM_WRONG_PASSWORD", "Wr0ng-Passw0rd-4242")
    wrong = pg_state.model_copy(update={"password": "env:WARROOM_WRONG_PASSWORD"}).keyed("launch")
    with pytest.raises(StoreError) as raised:
        open_store(wrong)
    assert "password authentication failed" in str(raised.value) and "Wr0ng" not in str(raised.value)
    assert redact("Wr0ng-Passw0rd-4242") == "***"  # resolved, so remembered for redaction everywhere
    monkeypatch.delenv(PG_PASSWORD)
    with pytest.raises(StoreError, match=f"state.password: environment variable {PG_PASSWORD} is not set"):
        open_store(pg_state.keyed("launch"))


def test_a_flag_write_waits_while_the_lease_has_less_than_its_safety_margin(pg_state):
    """The renewal right before a flag write is held up (here: another transaction holds the
    lease row, as a slow network would hold the answer): the lease surely left is then less
    than half its TTL, so the write does not go out; it is a failed attempt, retried."""
    store = open_store(pg_state.keyed(f"launch-{uuid.uuid4().hex[:8]}"))
    ttl = 2.0  # a healthy renewal then has a whole margin (1 s) to answer, even on a busy machine
    lease = Lease(StoreThread(store), this_process(), ttl=ttl)
    held = threading.Event()

    def hold_the_row() -> None:
        with connect(pg_state) as raw, raw.transaction():
            raw.execute("SELECT 1 FROM warroom.lease WHERE rollout = %s FOR UPDATE", (store.key_name,))
            held.set()
            time.sleep(ttl * MARGIN + 0.2)  # the scenario: the row held longer than the margin allows

    async def writes() -> None:
        await lease.acquire()
        await lease.check()  # a fresh renewal: a whole TTL ahead
        holder = threading.Thread(target=hold_the_row)
        holder.start()
        assert await asyncio.to_thread(held.wait, DEADLINE)
        with pytest.raises(LeaseTooThin, match=rf"s of the engine lease surely left, less than the safety margin \({ttl * MARGIN:g}s; "
                                               "the store answered slowly\\)"):
            await lease.check()
        await asyncio.to_thread(holder.join)
        await lease.check()  # answered at once again: the write goes out

    asyncio.run(writes())
    store.close()


def test_a_snapshot_commits_without_waiting_for_the_disk_and_a_decision_after_it_still_does(pg_state):
    """The snapshot (and samples) may lag the disk: the engine publishes again within a tick. The setting
    is the transaction's own: the next decision on the same connection waits for its log flush again."""
    store = open_store(pg_state.keyed(f"launch-{uuid.uuid4().hex[:8]}"))
    try:
        fence = store.acquire_lease(this_process(), 10).fence()
        with store._tx(expendable=True) as tx:  # what publish() and record_samples() do
            assert tx.one("SHOW synchronous_commit") == ("off",)
        store.publish(fence, {"x": 1})
        store.record_samples(fence, 1.0, {"p": 1.0})
        with store._tx() as tx:  # a decision's transaction
            assert tx.one("SHOW synchronous_commit") == ("on",)
        store.commit(fence, 2.0, [row("pause")], state={"state": "PAUSED"})
        assert store.snapshot().body == {"x": 1} and [e.kind for e in store.entries()] == ["pause"]
    finally:
        store.close()
