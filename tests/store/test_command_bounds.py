"""Commands are bounded (issue 21, item 6): what one may carry is capped and said, finished ones are
pruned to a bounded history, and a rollback behind a flood of queued commands still comes first."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess

import pytest

from tests.conftest import ALICE, load
from tests.races.conftest import WARROOM, Rollout, finished, flags, plan_data  # noqa: F401  (flags: the flag service fixture)
from tests.store.test_contract import stores  # noqa: F401  (two stores on one state, on each backend)
from tests.support.waiting import until_async
from warroom.core.clock import VirtualClock
from warroom.engine.build import build_engine
from warroom.engine.commands import CommandLoop
from warroom.engine.lease import this_process
from warroom.store import core
from warroom.store.base import MAX_COMMAND_TEXT, CommandTooLarge

FLOOD = 3000


def test_a_command_carrying_more_than_a_command_may_is_refused_and_nothing_is_queued(stores):  # noqa: F811
    first, second = stores
    fence = first.acquire_lease(this_process(), 10).fence()
    with pytest.raises(CommandTooLarge, match=r"pause: the reason is 1,048,576 characters; a command carries at most 1,000 in one text"):
        second.send_command("pause", {"reason": "x" * 1024 * 1024}, ALICE.to_json())
    with pytest.raises(CommandTooLarge, match=r"tick: its arguments take [0-9,]+ bytes; a command carries at most 4,096 bytes"):
        second.send_command("tick", {f"k{i}": "y" * 900 for i in range(6)}, ALICE.to_json())
    assert first.claim_command(fence) is None  # nothing was queued
    second.send_command("pause", {"reason": "r" * MAX_COMMAND_TEXT}, ALICE.to_json())  # the cap itself is fine
    assert first.claim_command(fence).args["reason"] == "r" * MAX_COMMAND_TEXT


def test_finished_commands_are_pruned_to_a_bounded_history(stores, monkeypatch):  # noqa: F811
    first, second = stores
    monkeypatch.setattr(core, "KEEP_COMMANDS", 5)
    fence = first.acquire_lease(this_process(), 10).fence()
    sent = [second.send_command("pause", {}, ALICE.to_json()) for _ in range(12)]
    waiting = second.send_command("resume", {}, ALICE.to_json())
    for command_id in sent:
        assert first.claim_command(fence).id == command_id
        first.finish_command(fence, command_id, "refused", "nothing to pause")
    assert [second.command(c) is not None for c in sent] == [False] * 7 + [True] * 5  # the newest five finished
    assert second.command(waiting).status == "queued"  # one not finished is never pruned


def test_a_huge_pause_reason_from_the_command_line_is_refused_and_the_journal_stays_small(tmp_path, flags):  # noqa: F811
    rollout = Rollout(tmp_path, plan_data(flags, automation={"step_up": "manual"}))
    assert rollout.verb("up").returncode == 0 and rollout.verb("step").returncode == 0
    pause = rollout.verb("pause", "--reason", "r" * 100_000)  # a shell argument can carry at most 128 KiB
    assert pause.returncode == 2, pause.stdout + pause.stderr
    assert f"a command carries at most {MAX_COMMAND_TEXT:,} in one text" in pause.stderr and len(pause.stderr) < 1000
    assert rollout.verb("pause", "--reason", "DBA hold").returncode == 0
    journal = finished(subprocess.run([*WARROOM, "journal", str(rollout.plan), "--limit", "5"], capture_output=True, text=True,
                                      timeout=60))
    assert journal.returncode == 0 and len(journal.stdout) < 4000 and "DBA hold" in journal.stdout
    with sqlite3.connect(rollout.state) as raw:
        assert raw.execute("SELECT max(length(args)) FROM commands").fetchone()[0] < 1000


async def test_a_rollback_sent_after_3000_queued_commands_is_run_before_them(tmp_path):
    """What held before commands were bounded, kept under a test: going back never waits its turn.
    (How fast: bench/command_flood.py.) And a stop claims no more: the flood it leaves stays queued."""
    engine = build_engine(load(tmp_path, {"automation": {"step_up": "manual"}}), clock=VirtualClock())
    await engine.start()
    await engine.tick()
    await engine.step_up(ALICE)
    sent = (engine.store.now(), json.dumps(ALICE.to_json()))
    with sqlite3.connect(engine.store.path) as raw:  # a flood of pauses queued ahead (as 3,000 clients would)
        raw.executemany("INSERT INTO commands (created, verb, args, actor) VALUES (?, 'pause', '{}', ?)", [sent] * FLOOD)
    rollback = engine.store.send_command("rollback", {"reason": "errors"}, ALICE.to_json())
    stop = asyncio.Event()
    commands = CommandLoop(engine, lambda *_: None)
    serving = asyncio.ensure_future(commands.serve(stop))
    try:  # its outcome, kept in the store (the rollback in flight is a moment a look can fall either side of)
        await until_async("the rollback's outcome", lambda: engine.store.command(rollback).status == "done")
    finally:
        stop.set()
        await serving
    await until_async("the commands claimed are answered", lambda: not commands.running)
    await engine.wait_idle()
    entries = engine.store.entries()
    intent = next(e for e in entries if e.kind == "rollback.intent")
    assert not [e for e in entries if e.kind == "pause" and e.seq < intent.seq]  # no pause ran before it
    with sqlite3.connect(engine.store.path) as raw:
        assert raw.execute("SELECT count(*) FROM commands WHERE status = 'queued'").fetchone()[0] > 0  # not claimed after the stop
    await engine.close()
