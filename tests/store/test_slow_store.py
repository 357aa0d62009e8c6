"""A slow store never holds up the engine's loop (issue 22, item 5): every store call goes through
the engine's store thread, so while PostgreSQL keeps every write waiting the engine still polls at
its cadence and judges its guardrails; what it decided lands, in order, once the store answers.

The store is slowed for real: another transaction holds the rollout's lease row (`FOR UPDATE`),
which every fenced write of the engine (its heartbeat first) must lock too. The delay lasts until
the engine's own clock has gone 3 s past its start and three ticks were judged meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import psycopg

from tests.conftest import PG_PASSWORD, load
from tests.support.waiting import until_async
from warroom.core.clock import RealClock
from warroom.core.snapshot import Snapshot
from warroom.engine.build import build_engine

STALL = 3.0  # seconds of the engine's clock the store keeps every write waiting
RELEASE_AFTER = 10 * STALL  # the holding session's own bound: only reached when the engine's loop is blocked


async def test_the_engine_polls_and_judges_on_while_postgresql_keeps_every_write_waiting(pg_state, tmp_path):
    key = f"slow-{uuid.uuid4().hex[:8]}"
    plan = load(tmp_path, {
        "state": {"url": pg_state.url, "password": f"env:{PG_PASSWORD}", "rollout": key},
        "poll_interval": "1s",
        # Errors breach from the start; the guardrail's `for` is long, so each tick's judgement shows as its window filling.
        "sources": {"sim": {"type": "simulator", "seed": 1, "noise": 0, "flag": "feature",
                            "faults": [{"metric": "error_rate", "at": "0s", "mode": "set", "value": 0.5, "while_exposed": False}]}},
        "guardrails": [{"id": "errors", "pane": "errors", "above": 0.01, "for": "1h", "action": "pause"}],
    })
    engine = build_engine(plan, clock=RealClock(), backfill=False)
    seen: list[Snapshot] = []
    engine.snapshot_listeners.append(seen.append)
    await engine.start()
    stop = asyncio.Event()
    running = asyncio.ensure_future(engine.run(stop))
    try:
        await until_async("the first judgements", lambda: len(seen) >= 2)
        async with await psycopg.AsyncConnection.connect(pg_state.url, password=os.environ[PG_PASSWORD], autocommit=True) as raw:
            # Should the engine's loop block on the held row (as before the store thread), nothing here could
            # run to let go of it: PostgreSQL ends this session itself, and the test fails instead of hanging.
            await raw.execute(f"SET idle_in_transaction_session_timeout = '{RELEASE_AFTER:g}s'")
            async with raw.transaction():
                await raw.execute("SELECT 1 FROM warroom.lease WHERE rollout = %s FOR UPDATE", (key,))
                # Read once the lock is held: a publication already past its fence lands before it.
                published = await stored_seq(raw, key)
                held_at = engine.clock.now()
                during = await until_async(
                    f"three ticks and {STALL:g}s of the engine's clock while the store held every write",
                    lambda: (lambda d: d if len(d) >= 3 and d[-1].now >= held_at + STALL else None)([s for s in seen if s.now > held_at]))
                # Nothing of it reached the store meanwhile (the snapshots' row waits behind the lease row) …
                async with await psycopg.AsyncConnection.connect(pg_state.url, password=os.environ[PG_PASSWORD], autocommit=True) as other:
                    assert await stored_seq(other, key) == published
            # … and once the store answers, what was decided lands.
            await until_async("a snapshot written after the stall", lambda: _newer(raw, key, published))
    finally:
        stop.set()
        await running
        await engine.close()
        engine.store.close()
    judged = [next(g for g in s.guardrails if g.id == "errors") for s in during]
    assert [s.tick for s in during] == sorted({s.tick for s in during})  # a tick after a tick, each with its judgement
    assert all(g.status == "pending" and g.value == 0.5 for g in judged)
    assert [g.progress for g in judged] == sorted(g.progress for g in judged) and judged[-1].progress > judged[0].progress


async def stored_seq(raw: psycopg.AsyncConnection, key: str) -> int:
    found = await (await raw.execute("SELECT seq FROM warroom.snapshot WHERE rollout = %s", (key,))).fetchone()
    return found[0] if found else 0


async def _newer(raw: psycopg.AsyncConnection, key: str, than: int) -> bool:
    return await stored_seq(raw, key) > than
