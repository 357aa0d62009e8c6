"""The stakeholder updates a plan promises, on the engine's clock (virtual time): drafted from the
journal, the owner reminded within a poll of one falling overdue, posted to a real loopback
receiver once approved (or by itself with `auto`), archived in the store and as an HTML file, and
in the post-mortem's timeline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.engine.test_engine import advance, enter_phase_one, with_faults
from tests.support.loopback import serving
from tests.support.waiting import until_async
from warroom.core.identity import Actor
from warroom.core.journal_kinds import Kind
from warroom.core.snapshot import State
from warroom.core.updates import UpdateReason, UpdateStatus
from warroom.engine.commands import dispatch
from warroom.engine.executor import CommandError
from warroom.engine.updates import at, next_time_of_day
from warroom.plan.load import load_plan
from warroom.reports.files import to_markdown
from warroom.reports.postmortem import build_report

DANA = Actor(user="dana", host="laptop", ssh_client="10.0.0.9", tty="pts/1")
POLL = 5.0  # BASE_PLAN's poll_interval
HOOK = "WARROOM_TEST_UPDATES_HOOK"


def promising(receiver_url: str | None = None, **updates) -> dict:
    changes: dict = {"updates": {"owner": "Dana Reyes (product)", "every": "15m", "after_incident": "5m", **updates}}
    if receiver_url is not None:
        changes["notify"] = [{"type": "webhook", "url": f"env:{HOOK}", "events": ["update"]}]
    return changes


def entries(engine, kind: str) -> list:
    return [e for e in engine.store.entries() if e.kind == kind]


async def test_a_timed_update_is_drafted_reminded_within_a_poll_and_posted_once_approved(make_engine, clock, monkeypatch):
    with serving(lambda r: (200, {}, b"")) as receiver:
        monkeypatch.setenv(HOOK, receiver.url + "/hooks/stakeholders")
        engine = await make_engine(promising(receiver.url))
        await enter_phase_one(engine)
        snap = await engine.tick()
        flying_since = snap.now
        assert snap.updates.owner == "Dana Reyes (product)" and snap.updates.due == flying_since + 900 and not snap.updates.draft

        snap = await advance(engine, clock, 600)  # draft_before (5m) ahead of the due time: drafted, not yet overdue
        (drafted,) = entries(engine, Kind.UPDATE_DRAFTED)
        assert drafted.ts - (flying_since + 600) < POLL and not snap.updates.overdue
        assert snap.updates.draft.startswith("test-launch (STAGING): status update")
        assert "State: RUNNING, phase 1/3 Canary 5%, 10m00s in phase." in snap.updates.draft
        assert "Exposure: feature 5%." in snap.updates.draft
        assert "Guardrails: all within their limits; closest errors: errors" in snap.updates.draft
        assert "Actions since the last update: " in snap.updates.draft and "step up by alice" in snap.updates.draft

        while clock.now() < flying_since + 900:
            assert not entries(engine, Kind.UPDATE_OVERDUE)
            snap = await advance(engine, clock, POLL)
        (overdue,) = entries(engine, Kind.UPDATE_OVERDUE)
        assert 0 <= overdue.ts - (flying_since + 900) < POLL  # within a poll of falling due
        assert snap.updates.overdue and "Dana Reyes (product), approve the draft: warroom update PLAN --approve" in overdue.message
        await advance(engine, clock, 60)
        assert len(entries(engine, Kind.UPDATE_OVERDUE)) == 1  # reminded once a due time, the console keeps saying it

        outcome = await dispatch(engine, "update", {}, DANA)
        (published,) = entries(engine, Kind.UPDATE_PUBLISHED)
        assert outcome.startswith(f"stakeholder update {published.data['update']} published; archived as ")
        assert published.actor == DANA.label() and published.message.startswith("test-launch (STAGING): status update")
        stored = engine.store.updates()[0]
        assert (stored.status, stored.reason, stored.by) == (UpdateStatus.PUBLISHED, UpdateReason.CADENCE, DANA.label())
        page = Path(stored.archive).read_text(encoding="utf-8")
        assert "<script" not in page and "State: RUNNING, phase 1/3 Canary 5%" in page and "approved by dana" in page

        def posted(kind: str) -> list[dict]:
            return [body for body in (json.loads(r.body) for r in receiver.requests) if body["event"] == kind]

        await until_async("the update posted to the notify target", lambda: posted("update.published"))
        assert posted("update.published")[0]["message"] == stored.text and posted("update.overdue")
        snap = await engine.tick()
        assert not snap.updates.overdue and snap.updates.due == stored.published + 900 and snap.updates.last_text == stored.text

        md = to_markdown(build_report(engine.plan, engine.store))
        assert "| update.published | dana from 10.0.0.9 on pts/1 | test-launch (STAGING): status update" in md
        assert "| update.overdue |" in md


async def test_an_incident_drafts_an_update_at_once_due_within_the_stated_minutes(make_engine, clock):
    fault = {"metric": "error_rate", "phase": 1, "after": "10s", "value": 0.03, "while_exposed": False}
    engine = await make_engine({**with_faults(fault), **promising(every="1h")})
    await enter_phase_one(engine)
    await advance(engine, clock, 60)  # errors at 3% from 10 s: breach, then a rollback after its 30 s window
    assert engine.state == State.ROLLED_BACK
    breach = entries(engine, Kind.GUARDRAIL_BREACH)[0]
    (drafted,) = entries(engine, Kind.UPDATE_DRAFTED)
    assert drafted.ts - breach.ts <= POLL and drafted.data["due"] == breach.ts + 300 and drafted.data["reason"] == "incident"
    draft = engine.store.updates()[0]
    assert draft.status == UpdateStatus.DRAFT and draft.due == breach.ts + 300
    assert "Incident at " in draft.text and "State: ROLLED BACK" in draft.text and "rollback by warroom (automatic)" in draft.text
    await advance(engine, clock, 300)
    assert entries(engine, Kind.UPDATE_OVERDUE)[0].ts - (breach.ts + 300) <= POLL  # rolled back, still owed: reminded


async def test_with_auto_the_engine_posts_an_incident_update_itself(make_engine, clock):
    fault = {"metric": "error_rate", "phase": 1, "after": "10s", "value": 0.03, "while_exposed": False}
    engine = await make_engine({**with_faults(fault), **promising(auto=True)})
    await enter_phase_one(engine)
    await advance(engine, clock, 20)
    (published,) = entries(engine, Kind.UPDATE_PUBLISHED)
    assert published.actor == "warroom (automatic)" and published.ts - entries(engine, Kind.GUARDRAIL_BREACH)[0].ts <= POLL
    assert not entries(engine, Kind.UPDATE_OVERDUE)


async def test_the_owner_can_publish_an_edited_text_when_none_is_due(make_engine, clock):
    engine = await make_engine(promising())
    await enter_phase_one(engine)
    await dispatch(engine, "update", {"text": "  Going well: <b>5%</b> of users, no errors.  "}, DANA)
    stored = engine.store.updates()[0]
    assert (stored.text, stored.reason) == ("Going well: <b>5%</b> of users, no errors.", UpdateReason.ASKED)
    assert "Going well: &lt;b&gt;5%&lt;/b&gt;" in Path(stored.archive).read_text(encoding="utf-8")


async def test_a_plan_without_updates_refuses_the_verb(make_engine):
    engine = await make_engine()
    with pytest.raises(CommandError, match="promises no stakeholder updates"):
        await dispatch(engine, "update", {}, DANA)


def test_fixed_times_of_day_follow_the_zone_across_a_dst_change():
    berlin = ZoneInfo("Europe/Berlin")
    saturday_night = datetime(2027, 3, 27, 17, 0, tzinfo=berlin).timestamp()  # clocks go forward on the Sunday
    times = [time(9), time(16)]
    sunday_nine = next_time_of_day(saturday_night, times, berlin)
    assert datetime.fromtimestamp(sunday_nine, UTC).strftime("%m-%d %H:%M") == "03-28 07:00"  # 09:00 CEST
    assert datetime.fromtimestamp(next_time_of_day(sunday_nine, times, berlin), UTC).strftime("%H:%M") == "14:00"


@pytest.mark.slow  # the demo as a process
def test_the_sample_plan_promises_its_seeds_updates_and_the_demo_posts_its_own(tmp_path):
    root = Path(__file__).resolve().parents[2]
    sample = load_plan(str(root / "sample-config.yaml"))
    assert sample.updates is not None and sample.updates.promises() == (
        "every 15m00s while in flight · within 5m00s of a rollback or breach · 09:00, 16:00 UTC")
    # The demo (no plan) on its short clock: the engine drafts and posts each update itself.
    run = subprocess.run([sys.executable, "-m", "warroom", "run", "--headless", "--speed", "max", "--for", "3m"], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path, env={**os.environ, "TMPDIR": str(tmp_path)}, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr
    drafted = [line for line in run.stdout.splitlines() if " update.drafted " in line]
    published = [line for line in run.stdout.splitlines() if " update.published " in line]
    assert drafted and "the engine posts it itself (auto)" in drafted[0] and "approve" not in drafted[0]
    assert len(published) >= 2 and "demo-realtime-features (DRILL): status update" in published[0]


async def test_a_published_update_promises_the_next_one_when_the_engine_will_want_it(make_engine, clock):
    engine = await make_engine(promising())  # every 15m, counted from each publication
    await enter_phase_one(engine)
    await advance(engine, clock, 120)  # early: nothing due for 13 minutes
    await dispatch(engine, "update", {}, DANA)
    snap = await engine.tick()
    early = engine.store.updates()[0]
    assert snap.updates.due == early.published + 900
    assert f"Next update by {at(snap.updates.due, engine.cadence.zone)} " in early.text, early.text
    await advance(engine, clock, 900 + 180)  # late: approved three minutes after it fell due
    assert entries(engine, Kind.UPDATE_OVERDUE)
    await dispatch(engine, "update", {}, DANA)
    snap = await engine.tick()
    late = engine.store.updates()[0]
    assert late.id != early.id and snap.updates.due == late.published + 900
    assert f"Next update by {at(snap.updates.due, engine.cadence.zone)} " in late.text, late.text
