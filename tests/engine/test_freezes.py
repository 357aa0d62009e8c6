"""Freezes: ad hoc (`warroom freeze PLAN --until --reason`, `warroom thaw`) and stop-the-line (`--all`).

A freeze refuses step ups, forced ones too, and never rollback, pause or step-down. Real
engines on real stores (a SQLite file; two engines on one PostgreSQL database), the
engine's clock carrying time across a freeze's end.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time

import pytest

from tests.conftest import load
from warroom.cli.main import main
from warroom.core.clock import VirtualClock
from warroom.core.identity import Actor
from warroom.core.journal_kinds import Kind
from warroom.core.snapshot import State
from warroom.engine.build import build_engine
from warroom.engine.executor import CommandError

OPERATOR = Actor(user="oncall", host="bastion", ssh_client="10.0.0.9", tty="pts/1")
QUICK = {"phases": [{"name": "Canary 5%", "flags": {"feature": 5}, "hold": "0s"},
                    {"name": "Half 50%", "flags": {"feature": 50}, "hold": "0s"},
                    {"name": "Full 100%", "flags": {"feature": 100}, "hold": "0s"}]}


def kinds(engine, kind: Kind) -> list:
    return [e for e in engine.store.entries() if e.kind == kind]


async def test_a_freeze_refuses_step_ups_and_never_going_back(make_engine, clock):
    engine = await make_engine(QUICK)
    await engine.tick()
    await engine.step_up(OPERATOR)
    until = clock.now() + 3600
    engine.store.add_freeze("Black Friday", until, "alice", clock.now())
    snap = await engine.tick()  # honoured within one poll
    (freeze,) = snap.freezes
    assert freeze.reason == "Black Friday" and freeze.by == "alice"
    assert freeze.banner(snap.now) == f"FREEZE until {dt.datetime.fromtimestamp(until, dt.UTC):%H:%M} (Black Friday) · rollback allowed"
    assert any("Black Friday" in b for b in snap.force_blockers)
    began = kinds(engine, Kind.FREEZE_BEGIN)
    assert began and "by alice" in began[0].message
    for force in (False, True):
        with pytest.raises(CommandError, match="Black Friday"):
            await engine.step_up(OPERATOR, force=force, reason="the board wants it")
    assert await engine.pause(OPERATOR, "look at the dashboards")
    assert await engine.resume(OPERATOR)
    assert await engine.rollback(OPERATOR, "errors up") == "rolled back"
    assert engine.state == State.ROLLED_BACK


async def test_a_freeze_ends_when_its_time_passes_on_the_engines_clock(make_engine, clock):
    engine = await make_engine(QUICK)
    await engine.tick()
    engine.store.add_freeze("change freeze", clock.now() + engine.plan.poll_interval * 3, "alice", clock.now())
    await engine.tick()
    with pytest.raises(CommandError, match="change freeze"):
        await engine.step_up(OPERATOR)
    clock.advance(engine.plan.poll_interval * 3)
    snap = await engine.tick()
    assert not snap.freezes
    assert "its time ran out" in kinds(engine, Kind.FREEZE_END)[0].message
    assert await engine.step_up(OPERATOR) == "stepped up to phase 1"


async def test_freeze_and_thaw_verbs_and_status_json(make_engine, tmp_path, capsys):
    engine = await make_engine(QUICK, clock=VirtualClock(time.time()))  # the verbs write wall-clock times
    await engine.tick()
    plan, state = str(tmp_path / "plan.yaml"), str(tmp_path / "state.sqlite")
    assert main(["freeze", plan, "--state", state, "--until", "2h", "--reason", "Black Friday"]) == 0
    assert "(Black Friday) · rollback allowed" in capsys.readouterr().out
    await engine.tick()
    engine.publish(force=True)
    main(["status", plan, "--state", state, "--json"])
    out = capsys.readouterr().out
    shown = json.loads(out)
    assert [(f["kind"], f["reason"]) for f in shown["freezes"]] == [("ad hoc", "Black Friday")]
    with pytest.raises(CommandError, match="Black Friday"):
        await engine.step_up(OPERATOR)
    assert main(["thaw", plan, "--state", state]) == 0
    assert "lifted the freeze of test-launch" in capsys.readouterr().out
    await engine.tick()
    (lifted,) = kinds(engine, Kind.FREEZE_LIFTED)
    assert "lifted by" in lifted.message and lifted.data["lifted_by"]
    assert await engine.step_up(OPERATOR) == "stepped up to phase 1"


@pytest.mark.parametrize("until", ["tomorrow", "2026-11-27T18:00", "2001-01-01T00:00Z"])
def test_freeze_until_is_refused_with_what_to_write(tmp_path, capsys, until):
    from tests.conftest import write_plan

    plan = write_plan(tmp_path, QUICK)
    assert main(["freeze", str(plan), "--until", until, "--reason", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("warroom: --until") and "Traceback" not in err


@pytest.fixture
def database_of_our_own(postgres_cluster, pg_state):
    """A database no other test shares: a stop-the-line holds every rollout in it (others run beside this test)."""
    from tests.support.servers import postgres_database

    with postgres_database(postgres_cluster, f"warroom_stop_the_line_{os.getpid()}") as url:
        yield {"url": url, "password": pg_state.password}


async def test_stop_the_line_is_honoured_by_two_engines_on_one_postgres_database(database_of_our_own, tmp_path, clock):
    engines = []
    try:
        for name in ("checkout", "search"):
            folder = tmp_path / name
            folder.mkdir()
            state = database_of_our_own
            plan = load(folder, {**QUICK, "rollout": {"name": f"{name}-{folder.stat().st_ino}", "environment": "staging"}, "state": state})
            engine = build_engine(plan, clock=clock)
            await engine.start()
            engines.append(engine)
            await engine.tick()
        engines[0].store.add_freeze("incident 4711", None, "carol", clock.now(), every_rollout=True)
        for engine in engines:
            snap = await engine.tick()  # one poll each
            assert [f.kind.value for f in snap.freezes] == ["stop-the-line"]
            assert snap.freezes[0].banner(snap.now) == "STOP-THE-LINE until lifted (incident 4711) · rollback allowed"
            with pytest.raises(CommandError, match="incident 4711"):
                await engine.step_up(OPERATOR, force=True, reason="hotfix")
        (lifted,) = engines[1].store.lift_freezes("dave", clock.now(), every_rollout=True)
        assert lifted.by == "carol"
        for engine in engines:
            await engine.tick()
            (entry,) = kinds(engine, Kind.FREEZE_LIFTED)
            assert "lifted by dave" in entry.message
            assert await engine.step_up(OPERATOR) == "stepped up to phase 1"
    finally:
        for engine in engines:
            await engine.close()


async def test_overlapping_freezes_each_block_the_banner_names_the_longest_and_one_ending_leaves_the_other(make_engine, clock):
    engine = await make_engine(QUICK)
    await engine.tick()
    now = clock.now()
    engine.store.add_freeze("deploy window", now + 600, "alice", now)
    engine.store.add_freeze("Black Friday", now + 7200, "bob", now)
    snap = await engine.tick()
    assert len(snap.freezes) == 2 and "(Black Friday)" in snap.freeze_banner(snap.now)
    assert sum("freeze by" in b for b in snap.force_blockers) == 2
    clock.advance(601)
    snap = await engine.tick()
    assert [f.reason for f in snap.freezes] == ["Black Friday"]
    with pytest.raises(CommandError, match="Black Friday"):
        await engine.step_up(OPERATOR)
