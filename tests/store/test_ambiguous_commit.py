"""An ambiguous commit is written exactly once: PostgreSQL committed the engine's batch (a step
up's intent: its action row, its entries, the state) but the connection was cut before the
engine heard so. The engine held the batch as unwritten and wrote it again once the store
answered: the action's INSERT met its own row (a unique violation), the flush failed for ever,
the engine never wrote its state or snapshot again (consoles showed an ageing picture), and had
it not failed the batch's entries would have been in the journal twice.

Real parts: the shared cluster's test database, reached through a TCP proxy on 127.0.0.1
(tests/support/pgproxy.py) that loses the answer to exactly that COMMIT, then passes again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest
import yaml

from tests.conftest import ALICE, BASE_PLAN, PG_PASSWORD
from tests.support.pgproxy import CommitCutter
from tests.support.waiting import until_async
from warroom.core.journal_kinds import Kind
from warroom.core.snapshot import State
from warroom.engine.lease import this_process
from warroom.store import open_store
from warroom.store.base import ActionWrite, PendingAction
from warroom.store.postgres import PostgresStore

ACTION_INSERT = b"INSERT INTO warroom.actions"  # the transaction whose COMMIT's answer is lost: a new action's


@pytest.fixture
def proxy(postgres_cluster):
    cutter = CommitCutter(postgres_cluster)
    yield cutter
    cutter.close()


def batch_key(entry) -> tuple:
    return entry.ts, entry.kind, entry.message, entry.actor


async def test_a_step_up_whose_commit_answer_is_lost_is_written_once_and_the_engine_writes_again(make_engine, pg_state, proxy):
    target = pg_state.keyed(f"ambiguous-{uuid.uuid4().hex[:12]}")
    phases = yaml.safe_load(BASE_PLAN)["phases"]
    phases[0].update(gates=[], checklist=[], hold="0s")
    engine = await make_engine({"phases": phases, "state": {"url": proxy.url(target.url), "password": f"env:{PG_PASSWORD}",
                                                           "rollout": target.rollout}})
    direct = PostgresStore(target, create=False)  # the test's own look, not through the proxy
    try:
        await engine.tick()
        await engine.journal.settled()
        published = direct.snapshot_seq()
        proxy.cut_commit_of(ACTION_INSERT)
        assert "phase 1" in await engine.step_up(ALICE)
        await engine.journal.settled()
        assert proxy.cuts == 1, "the step's intent went through the proxy and its COMMIT's answer was lost"
        intent = next(e for e in engine.journal.tail(20) if e.kind == Kind.STEP_INTENT)
        assert direct.action_status(intent.action_id) is not None  # the server did commit it

        async def written_again() -> bool:
            await engine.tick()
            await engine.journal.settled()
            return engine.journal.held is None and direct.load_state()[1].get("phase") == 1 and direct.snapshot_seq() > published

        await until_async("the engine writes its state and snapshot again", written_again,
                          show=lambda: f"held: {engine.journal.held}\nstate: {direct.load_state()}")
        assert engine.state == State.RUNNING and engine.phase_index == 1

        entries = direct.entries()
        kinds = [e.kind for e in entries]
        assert kinds.count(Kind.STEP_INTENT) == 1 and kinds.count(Kind.STEP_OUTCOME) == 1, kinds
        twice = [k for k, n in Counter(batch_key(e) for e in entries).items() if n > 1]
        assert not twice, f"written twice: {twice}"
        actions = direct._read("SELECT id, status FROM warroom.actions WHERE rollout = ?", (target.rollout,))
        assert [(intent.action_id, "done")] == [tuple(a) for a in actions], actions
        assert direct.pending_actions() == list[PendingAction]()
        await asyncio.wait_for(engine.wait_idle(), 30)
    finally:
        direct.close()


def test_held_rows_already_in_the_store_are_not_written_again_on_either_backend(store_ref):
    """The store's half on both dialects (the code is shared): what a flush writes after a commit that
    landed unheard. SQLite meets it rarer (a disk error reported after the commit), PostgreSQL above."""
    store = open_store(store_ref)
    try:
        fence = store.acquire_lease(this_process(), 30).fence()
        store.commit(fence, 1.0, [row("guardrail.breach")], state={"phase": 0})
        known = store.last_seq()
        intent = ActionWrite("a1", new=("rollback", {"reason": "errors"}))
        batch = [row("rollback.intent", "rolling back"), row("rollback.attempt", "feature off")]
        store.commit(fence, 2.0, batch, state={"phase": 0, "action": "a1"}, action=intent)  # landed; the engine never heard
        held = [(2.0, row("journal.unwritable", "the journal cannot be written"), None), (2.0, batch[0], intent), (2.0, batch[1], ActionWrite("a1")),
                (3.0, row("rollback.outcome", "rolled back"), ActionWrite("a1", status="done")), (4.0, row("journal.recovered"), None)]
        done = store.commit_many(fence, held, {"state": "ROLLED_BACK"}, after=known)
        kinds = [e.kind for e in store.entries()]
        assert kinds == ["guardrail.breach", "rollback.intent", "rollback.attempt", "journal.unwritable", "rollback.outcome",
                         "journal.recovered"]
        assert sorted(e.seq for e in done.entries) == [e.seq for e in store.entries()][1:]  # the landed ones as they are
        assert store.action_status("a1") == "done" and store.pending_actions() == []
        assert store.load_state()[1] == {"state": "ROLLED_BACK"}
    finally:
        store.close()


def row(kind: str, message: str = "m") -> tuple[str, str, str, dict]:
    return (kind, message, "warroom (automatic)", {"why": message})
