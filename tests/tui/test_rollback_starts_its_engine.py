"""A rollback pressed with no engine alive starts one (the console on a plan): the engine is told
which queued command is this console's rollback, so that it proves who sent it (it runs as this
person); the engine side is tests/process/test_rollback_starts_its_engine.py."""

from __future__ import annotations

from tests.tui.test_glance import into_phase_one
from tests.tui.test_truth import gone


async def test_a_rollback_that_must_start_its_engine_names_its_queued_command_to_it(console, test_plan):
    c = console(test_plan())
    async with c.app.run_test(size=(120, 36)) as pilot:
        await into_phase_one(c, pilot)
        await gone(c, pilot)
        asked: list[int | None] = []
        c.app.start_engine = lambda rollback: asked.append(rollback) or "not started in this test"
        await pilot.press("R")
        await c.until(pilot, lambda: bool(asked), "an engine asked for")
        [rollback] = asked
        assert rollback is not None
        command = c.app.client.store.command(rollback)
        assert command is not None and command.verb == "rollback" and command.status == "queued", command
