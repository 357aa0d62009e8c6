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
import os
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import yaml

from tests.conftest import ALICE, BASE_PLAN, PG_PASSWORD
from tests.support.pgproxy import CommitCutter
from tests.support.waiting import until_async
from warroom.core.journal_kinds import Kind
from warroom.core.snapshot import State
from warroom.engine.lease import this_process
from warroom.store import open_store
from warroom.store.base import ActionWrite
from warroom.store.postgres import PostgresStore

ACTION_INSERT = b"INSERT INTO warroom.actions"  # the transaction whose COMMIT's answer is lost: a new action's


@pytest.fixture
def proxy(postgres_cluster):
    cutter = CommitCutter(postgres_cluster)
    yield cutter
    cutter.close()


def batch_key(entry) -> tuple:
    return entry.ts, entry.kind, entry.message, entry.actor


@dataclass(frozen=True)
class Decision:
    """A decision that creates an action, the one whose commit's answer is lost, and where it leaves the rollout."""

    before: Callable[[Any], Awaitable[Any]]  # what the engine does first, its commits heard
    decide: Callable[[Any], Awaitable[str]]
    said: str  # in what `decide` returns
    intent: Kind
    outcome: Kind
    state: State
    phase: int


async def nothing(engine) -> None:
    return None


DECISIONS = {
    "step up": Decision(nothing, lambda e: e.step_up(ALICE), "phase 1", Kind.STEP_INTENT, Kind.STEP_OUTCOME, State.RUNNING, 1),
    "rollback": Decision(lambda e: e.step_up(ALICE), lambda e: e.rollback(ALICE, "error rate"), "rolled back",
                         Kind.ROLLBACK_INTENT, Kind.ROLLBACK_OUTCOME, State.ROLLED_BACK, 1),
}


@pytest.mark.parametrize("name", DECISIONS)
async def test_a_decision_whose_commit_answer_is_lost_is_written_once_and_the_engine_writes_again(make_engine, pg_state, proxy, name):
    decision = DECISIONS[name]
    target = pg_state.keyed(f"ambiguous-{uuid.uuid4().hex[:12]}")
    phases = yaml.safe_load(BASE_PLAN)["phases"]
    phases[0].update(gates=[], checklist=[], hold="0s")
    engine = await make_engine({"phases": phases, "state": {"url": proxy.url(target.url), "password": f"env:{PG_PASSWORD}",
                                                           "rollout": target.rollout}})
    direct = PostgresStore(target, create=False)  # the test's own look, not through the proxy
    try:
        await engine.tick()
        await decision.before(engine)
        await engine.journal.settled()
        published = direct.snapshot_seq()
        proxy.cut_commit_of(ACTION_INSERT)
        assert decision.said in await decision.decide(engine)
        await engine.journal.settled()
        assert proxy.cuts == 1, "the intent went through the proxy and its COMMIT's answer was lost"
        intent = next(e for e in engine.journal.tail(40) if e.kind == decision.intent)
        assert direct.action_status(intent.action_id) is not None  # the server did commit it

        async def written_again() -> bool:
            await engine.tick()
            await engine.journal.settled()
            return (engine.journal.held is None and direct.load_state()[1].get("state") == decision.state.value
                    and direct.snapshot_seq() > published)

        await until_async("the engine writes its state and snapshot again", written_again,
                          show=lambda: f"held: {engine.journal.held}\nstate: {direct.load_state()}")
        assert engine.state == decision.state and engine.phase_index == decision.phase

        entries = direct.entries()
        kinds = [e.kind for e in entries]
        assert kinds.count(decision.intent) == 1 and kinds.count(decision.outcome) == 1, kinds
        twice = [k for k, n in Counter(batch_key(e) for e in entries).items() if n > 1]
        assert not twice, f"written twice: {twice}"
        assert [e.seq for e in entries] == sorted({e.seq for e in entries})
        assert direct.action_status(intent.action_id) == "done" and direct.pending_actions() == []
        with psycopg.connect(target.url, password=os.environ[PG_PASSWORD]) as raw:
            (count,) = raw.execute("SELECT count(*) FROM warroom.actions WHERE rollout = %s AND id = %s",
                                   (target.rollout, intent.action_id)).fetchone()
        assert count == 1
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
