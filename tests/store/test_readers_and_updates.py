"""Stakeholder updates kept in the store, and a reader that cannot write (the status page), on each backend.

Real SQLite files opened with `mode=ro`; a real PostgreSQL database, read by a role that may
only SELECT — a write attempt through it fails in the database itself.
"""

from __future__ import annotations

import os
import time
import uuid

import psycopg
import pytest

from tests.support.servers import _psql
from warroom.core.updates import UpdateReason, UpdateStatus
from warroom.engine.lease import this_process
from warroom.plan.state import PostgresState
from warroom.store import open_store
from warroom.store.base import StoredUpdate, StoreError, StoreMissing, StoreUnwritable


def draft(text: str = "Phase 2/5 Beta 25% for 12 min; all guardrails within limits.") -> StoredUpdate:
    return StoredUpdate(0, 1_800_000_000.0, 1_800_000_900.0, UpdateReason.CADENCE, UpdateStatus.DRAFT, text, {"phase": 2})


def test_an_update_is_drafted_rewritten_and_published_in_place(store_ref):
    store = open_store(store_ref)
    fence = store.acquire_lease(this_process(), 10).fence()
    first = store.put_update(fence, draft())
    second = store.put_update(fence, draft("an older one"))
    assert second > first
    store.put_update(fence, StoredUpdate(first, 1_800_000_060.0, 1_800_000_900.0, UpdateReason.CADENCE, UpdateStatus.PUBLISHED,
                                         "fresher text", {"phase": 3}, by="dana", published=1_800_000_100.0, archive="/a/b.html"))
    newest, oldest = store.updates()
    assert newest.id == second and newest.status == UpdateStatus.DRAFT
    assert (oldest.id, oldest.status, oldest.text, oldest.facts, oldest.by, oldest.published, oldest.archive) == (
        first, "published", "fresher text", {"phase": 3}, "dana", 1_800_000_100.0, "/a/b.html")
    assert store.updates(limit=1) == [newest]
    store.close()


def test_a_read_only_reader_reads_everything_and_cannot_write(store_ref):
    engine = open_store(store_ref)
    fence = engine.acquire_lease(this_process(), 10).fence()
    engine.commit(fence, time.time(), [("rollout.init", "m", "warroom (automatic)", {})])
    engine.publish(fence, {"rollout": "launch"})
    engine.put_update(fence, draft())
    reader = open_store(store_ref, create=False, readonly=True)
    assert reader.snapshot().body == {"rollout": "launch"} and reader.tail(1)[0].kind == "rollout.init"
    assert [u.text for u in reader.updates()] == [draft().text] and reader.lease().epoch == fence.epoch
    waiter = reader.watch()
    engine.commit(fence, time.time(), [("pause", "m", "alice", {})])
    assert waiter.wait(10)  # the page's live updates come from the same change waiter as a console's
    for write in (lambda: reader.send_command("rollback", {}, {}),
                  lambda: reader.commit(fence, time.time(), [("pause", "m", "mallory", {})]),
                  lambda: reader.put_update(fence, draft())):
        with pytest.raises(StoreError):  # SQLite: a read-only database; PostgreSQL: a read-only transaction
            write()
    assert reader.updates()[0].text == draft().text and engine.lease().epoch == fence.epoch
    waiter.close()
    reader.close()
    engine.close()


def test_a_reader_never_creates_a_store(tmp_path):
    with pytest.raises(StoreMissing):
        open_store(tmp_path / "none.sqlite", readonly=True)
    assert not (tmp_path / "none.sqlite").exists()


def test_a_sqlite_reader_is_refused_writes_by_sqlite_itself(tmp_path):
    engine = open_store(tmp_path / "state.sqlite")
    engine.acquire_lease(this_process(), 10)
    reader = open_store(tmp_path / "state.sqlite", readonly=True)
    with pytest.raises(StoreUnwritable, match="it is read-only"):
        reader.send_command("rollback", {}, {})


def test_a_select_only_role_reads_the_store_and_the_database_refuses_its_writes(pg_state, postgres_cluster):
    """The role the status page logs in as: USAGE on the schema and SELECT on its tables, nothing more."""
    role, password = f"warroom_page_{uuid.uuid4().hex[:8]}", "Page-Reader-7c41e0"
    database = pg_state.url.rsplit("/", 1)[1]
    key = f"launch-{uuid.uuid4().hex[:8]}"
    engine = open_store(pg_state.keyed(key))
    fence = engine.acquire_lease(this_process(), 10).fence()
    engine.commit(fence, time.time(), [("rollout.init", "m", "warroom (automatic)", {})])
    engine.publish(fence, {"rollout": key})
    _psql(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'", postgres_cluster)
    try:
        _psql(f"GRANT CONNECT ON DATABASE {database} TO {role}", postgres_cluster)
        for grant in (f"GRANT USAGE ON SCHEMA warroom TO {role}", f"GRANT SELECT ON ALL TABLES IN SCHEMA warroom TO {role}"):
            _psql(grant, postgres_cluster, database)
        os.environ["WARROOM_TEST_PAGE_PG_PASSWORD"] = password
        url = f"postgresql://{role}@127.0.0.1:{postgres_cluster}/{database}"
        reader = open_store(PostgresState(url=url, password="env:WARROOM_TEST_PAGE_PG_PASSWORD", rollout=key), readonly=True)
        assert reader.snapshot().body == {"rollout": key} and reader.tail(1)[0].kind == "rollout.init"
        with pytest.raises(StoreError):
            reader.send_command("rollback", {}, {})
        # Not only the read-only session: the database refuses the role itself, in a writable transaction.
        with psycopg.connect(url, password=password, autocommit=True) as raw:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                raw.execute("INSERT INTO warroom.commands (rollout, created, verb, args, actor) VALUES (%s, 0, 'rollback', '{}', '{}')",
                            (key,))
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                raw.execute("UPDATE warroom.lease SET holder = NULL WHERE rollout = %s", (key,))
        assert engine.lease().holder is not None and not [c for c in engine.updates()]
        reader.close()
    finally:
        engine.close()
        _psql(f"DROP OWNED BY {role}", postgres_cluster, database)
        _psql(f"DROP ROLE IF EXISTS {role}", postgres_cluster)
