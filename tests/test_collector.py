"""The cyclic garbage collector through a process's start (cli/main.py, tui/app.py).

A console holds it off until its first frame is on the screen, then freezes what start-up
made and turns it on again; a verb (which may run for hours: the engine) runs with it on
from its first line, even when `python -m warroom` turned it off before the imports.
"""

from __future__ import annotations

import gc

import pytest

import warroom.cli.main as cli_main
from tests.conftest import ALICE
from tests.support.waiting import until_async
from warroom.client import EngineClient
from warroom.store import open_store
from warroom.tui.app import WarroomApp


@pytest.fixture
def collector_as_found():
    """Whatever a test does to the collector, the test process gets it back on and unfrozen."""
    yield
    gc.enable()
    gc.unfreeze()


def test_a_verb_runs_with_the_collector_on_even_when_the_process_began_with_it_off(monkeypatch, collector_as_found):
    seen = []
    monkeypatch.setitem(cli_main.HANDLERS, "status", lambda plan, args: seen.append(gc.isenabled()) or 0)
    monkeypatch.setattr(cli_main, "_plan_or_demo", lambda path, state: None)
    gc.disable()  # as `python -m warroom` starts
    assert cli_main.main(["status", "plan.yaml"]) == 0
    assert seen == [True]


def test_a_console_that_gives_up_before_its_screen_leaves_the_collector_on(tmp_path, collector_as_found):
    """No terminal here: the console refuses (exit 2) and the collector it held off is on again."""
    assert cli_main.main(["--state", str(tmp_path / "state.sqlite")]) == 2
    assert gc.isenabled()


async def test_a_console_turns_the_collector_on_with_start_up_frozen_once_its_first_frame_is_up(tmp_path, collector_as_found):
    store = open_store(tmp_path / "state.sqlite")
    app = WarroomApp(EngineClient(store, actor=ALICE))
    frozen = gc.get_freeze_count()
    gc.disable()  # as cli/main.py holds it for a console
    try:
        async with app.run_test() as pilot:
            await until_async("the console's first frame to turn the collector on", gc.isenabled, pause=pilot.pause)
            assert gc.get_freeze_count() > frozen
    finally:
        store.close()


async def test_a_console_in_a_process_that_kept_the_collector_on_freezes_nothing_of_it(tmp_path, collector_as_found):
    store = open_store(tmp_path / "state.sqlite")
    app = WarroomApp(EngineClient(store, actor=ALICE))
    frozen = gc.get_freeze_count()
    try:
        async with app.run_test() as pilot:
            await until_async("the console's first frame", lambda: app._dom_ready, pause=pilot.pause)
            assert gc.isenabled() and gc.get_freeze_count() == frozen
    finally:
        store.close()
