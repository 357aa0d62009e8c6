"""The tick keeps its cadence whatever hangs outside the engine: a flag service that does not answer
its reads (the flags stay as last read, and say since when) and a notification target that does not
answer its posts. Engines in one process on the real clock, short polls, the loopback flag service."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.conftest import ALICE
from tests.flags.flagservice import FlagService
from tests.support.loopback import serving
from tests.support.waiting import until_async
from warroom.core.clock import RealClock
from warroom.core.flagstate import FlagState
from warroom.core.journal_kinds import Kind
from warroom.core.snapshot import Snapshot, State
from warroom.engine.engine import Engine
from warroom.engine.polling import FlagReader
from warroom.flags.registry import make_provider
from warroom.plan.sources import FlagProviderConfig

TOKEN = "BUDGET-TOKEN-3c1d"
POLL = "250ms"
HOOK = "WARROOM_TEST_BUDGET_HOOK"
# Errors breach from the moment phase 1 is entered; the guardrail rolls back once that held two polls.
BREACHING = {"sources": {"sim": {"type": "simulator", "seed": 1, "noise": 0, "flag": "feature",
                                 "faults": [{"metric": "error_rate", "phase": 1, "mode": "set", "value": 0.5,
                                             "while_exposed": False}]}},
             "guardrails": [{"id": "errors", "pane": "errors", "above": 0.01, "for": "500ms", "action": "rollback"}]}


@pytest.fixture
def service(monkeypatch) -> AsyncIterator[FlagService]:
    monkeypatch.setenv("WARROOM_BUDGET_FLAG_TOKEN", TOKEN)
    flags = FlagService(TOKEN).start()
    yield flags
    flags.stop()


class Running:
    """Engines on the real clock ticking in the background, each with every snapshot it builds."""

    def __init__(self, make_engine: Callable[..., Awaitable[Engine]]):
        self.make_engine = make_engine
        self.loops: list[tuple[Engine, asyncio.Event, asyncio.Future[None]]] = []

    async def __call__(self, changes: dict, before: Callable[[Engine], Awaitable[None]]) -> tuple[Engine, list[Snapshot]]:
        engine = await self.make_engine({"poll_interval": POLL, **changes}, clock=RealClock(), backfill=False)
        await before(engine)
        seen: list[Snapshot] = []
        engine.snapshot_listeners.append(seen.append)
        stop = asyncio.Event()
        self.loops.append((engine, stop, asyncio.ensure_future(engine.run(stop))))
        return engine, seen

    async def stop(self) -> None:
        """Stop ticking and close (notifications sent meanwhile go out while their target still listens)."""
        for engine, stop, loop in self.loops:
            stop.set()
            await loop
            await engine.close()
        self.loops.clear()


@pytest.fixture
async def running(make_engine) -> AsyncIterator[Running]:
    engines = Running(make_engine)
    yield engines
    await engines.stop()


def kinds(engine: Engine) -> list[str]:
    return [e.kind for e in engine.journal.tail(200)]


async def test_a_hanging_flag_service_does_not_hold_back_a_guardrails_rollback(running: Running, service: FlagService):
    # The provider waits far longer than any test does: only the tick's own budget lets it go on.
    provider = {"flag_provider": {"provider": "http", "url": service.url, "token": "env:WARROOM_BUDGET_FLAG_TOKEN", "timeout": "5m"}}
    hang = threading.Event()

    async def enter_phase_one(engine: Engine) -> None:
        assert await engine.step_up(ALICE) == "stepped up to phase 1"
        service.delay = hang  # from now on every read (and write) waits until the test lets it go

    try:
        engine, seen = await running({**provider, **BREACHING}, enter_phase_one)
        hung_at = engine.clock.now()
        await until_async("the breach journaled and the rollback decided while every flag read hangs",
                          lambda: Kind.ROLLBACK_INTENT in kinds(engine), show=lambda: kinds(engine))
        assert not hang.is_set() and Kind.GUARDRAIL_BREACH in kinds(engine)
        breached = next(s.tick for s in seen if s.guardrails[0].status.breaching)
        decided = next(s.tick for s in seen if s.state == State.ROLLING_BACK)
        assert decided - breached <= 3  # its window (two polls) and the tick that acts, as with a flag service that answers
        # The flags are shown as last read, before the hang: a console can say how old they are.
        assert seen[-1].flags_read_at is not None and seen[-1].flags_read_at < hung_at
        assert seen[-1].flags[0].observed is not None and seen[-1].flags[0].observed.enabled
        ticks = seen[-1].tick
        await until_async("ticks go on while the read still hangs", lambda: seen[-1].tick >= ticks + 2)
        age = await until_async("the flags said to be old, past two polls", lambda: seen[-1].flags_age())
        assert age.startswith("read ") and age.endswith(" ago")
    finally:
        hang.set()
    await until_async("the rollback confirmed once the flag service answers", lambda: engine.state == State.ROLLED_BACK)
    await until_async("the flags read back after the hang", lambda: (engine.flags.read_at or 0) > hung_at)
    assert engine.flags.observed["feature"] is not None and not engine.flags.observed["feature"].enabled


async def test_a_hanging_notification_target_does_not_hold_the_ticks_while_an_update_is_published(running: Running, monkeypatch):
    release = threading.Event()

    def hang(_request):
        release.wait(60)
        return 200, {}, b""

    with serving(hang) as receiver:
        monkeypatch.setenv(HOOK, receiver.url + "/hooks/stakeholders")
        changes = {"updates": {"owner": "Dana Reyes (product)", "every": "1h", "after_incident": "1s", "auto": True},
                   "notify": [{"type": "webhook", "url": f"env:{HOOK}", "events": ["update"]}], **BREACHING}

        async def enter_phase_one(engine: Engine) -> None:
            assert await engine.step_up(ALICE) == "stepped up to phase 1"

        try:
            engine, seen = await running(changes, enter_phase_one)
            # The breach's rollback is an incident: its update is published by itself, and posted to the hanging target.
            await until_async("the incident's update published", lambda: Kind.UPDATE_PUBLISHED in kinds(engine),
                              show=lambda: kinds(engine))
            ticks = seen[-1].tick
            await until_async("ticks go on while the target hangs", lambda: seen[-1].tick >= ticks + 3)
        finally:
            release.set()
            await running.stop()


async def test_a_read_answered_after_a_write_read_back_does_not_undo_it(service):
    """A read asked before a rollback's write, answered after its read-back: the read-back is the newer truth
    (taken as fresh, the old reading would look like a late write and roll back again, or like drift)."""
    service.flags["feature"] = {"enabled": True, "rollout_percentage": 50.0, "user_segments": []}
    config = FlagProviderConfig.model_validate({"provider": "http", "url": service.url, "token": "env:WARROOM_BUDGET_FLAG_TOKEN"})
    reader = FlagReader(make_provider(config, "."), ["feature"], RealClock())
    assert await reader.read() and reader.observed["feature"].enabled
    first = reader.read_at
    hang = service.delay = threading.Event()
    try:
        assert not await reader.read(budget=0.0)  # in flight: the flags stay as last read
        assert reader.read_at == first and reader.observed["feature"].enabled
        reader.observed["feature"] = off = FlagState(False, 0.0)  # what the rollback's write read back meanwhile
    finally:
        hang.set()
    assert await reader.read()  # the read in flight lands (it says the flag is still on)…
    assert reader.observed["feature"] is off and reader.read_at > first  # … and leaves the newer read-back standing
    await reader.provider.close()
