"""A flag whose last read failed, then written and read back by a rollback: the read-back is the
flag's truth, its old read error no longer stands (the flags panel showed it in error though the
write had just read it back). An engine in-process, the loopback flag service, no tick between."""

from __future__ import annotations

from tests.conftest import ALICE
from tests.flags.flagservice import FlagService
from warroom.core.clock import RealClock
from warroom.core.snapshot import State

TOKEN = "CONFIRMED-TOKEN-8e2a"


async def test_a_rollbacks_read_back_clears_the_flags_old_read_error(make_engine, monkeypatch):
    monkeypatch.setenv("WARROOM_CONFIRMED_FLAG_TOKEN", TOKEN)
    service = FlagService(TOKEN).start()
    try:
        await rolled_back_after_a_failed_read(make_engine, service)
    finally:
        service.stop()


async def rolled_back_after_a_failed_read(make_engine, service: FlagService) -> None:
    provider = {"provider": "http", "url": service.url, "token": "env:WARROOM_CONFIRMED_FLAG_TOKEN"}
    engine = await make_engine({"flag_provider": provider}, clock=RealClock(), backfill=False)
    assert await engine.step_up(ALICE) == "stepped up to phase 1"
    service.fail(500)  # every read fails from here on
    try:
        [flag] = (await engine.tick()).flags
        assert flag.error and flag.observed is not None and flag.observed.enabled, flag
    finally:
        service.recover()
    await engine.rollback(ALICE, "the read failed")  # returns once the write read the flag back
    assert engine.state == State.ROLLED_BACK
    [flag] = engine.publish(force=True).flags
    assert flag.observed is not None and not flag.observed.enabled, flag
    assert flag.error == "", flag  # the write's read-back is newer than the failed read
