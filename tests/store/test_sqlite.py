"""What only the SQLite store does: one file, its wake-up socket, its migrations (the contract is in test_contract.py)."""

from __future__ import annotations

import socket
import sqlite3

import pytest

from warroom.engine.lease import this_process
from warroom.store import open_store
from warroom.store.base import Fenced, StoreMissing
from warroom.store.sqlite import SQLiteStore


def test_one_engine_listens_on_the_wake_socket_of_a_state_file(tmp_path):
    engine_side = open_store(tmp_path / "state.sqlite")
    assert isinstance(engine_side, SQLiteStore)
    engine_side.acquire_lease(this_process(), 10)
    engine_side.watch(commands=True)
    # One engine listens per state file: a second one falls back to watching data_version.
    other = open_store(engine_side.path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM):
        assert other._listen() is None
    other.close()
    engine_side.close()


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
    fence = store.acquire_lease(this_process(), 10).fence()
    assert [a.id for a in store.adopt_actions(fence)] == ["r1"]
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 3
        raw.execute("PRAGMA user_version = 99")
    store.close()
    with pytest.raises(Exception, match="written by a newer warroom \\(schema 99, this one reads 3\\); upgrade warroom"):
        open_store(path)


def test_a_snapshot_commit_skips_its_fsync_and_every_decision_after_it_is_full_again(tmp_path):
    """`synchronous` is lowered for the snapshot's (and samples') own commit only, and set back even
    when that transaction fails (a fenced engine's publish): an intent after it is synced to disk."""
    store = open_store(tmp_path / "state.sqlite")
    try:
        lease = store.acquire_lease(this_process(), 10)
        with store._tx(expendable=True) as tx:  # what publish() and record_samples() do
            assert tx.one("PRAGMA synchronous") == (1,)  # NORMAL
        store.publish(lease.fence(), {"x": 1})
        store.record_samples(lease.fence(), 1.0, {"p": 1.0})
        assert store._db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
        theirs = store.acquire_lease(this_process(), 10, replacing=lease.holder.id).fence()
        with pytest.raises(Fenced):
            store.publish(lease.fence(), {"x": 2})
        assert store._db.execute("PRAGMA synchronous").fetchone() == (2,)
        store.commit(theirs, 2.0, [("pause", "m", "warroom (automatic)", {})], state={"state": "PAUSED"})
        assert store.snapshot().body == {"x": 1}
    finally:
        store.close()
