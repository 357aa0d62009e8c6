"""A whole drill notifies a real loopback webhook receiver (Slack-shaped and generic JSON).

The receiver answers 500 to the very first request: that delivery is journaled as
failed, retried, and delivered; the order of messages per target is kept. The webhook
token in the URL path never reaches the journal, the output or the report.
"""

from __future__ import annotations

import json

from tests.drills.conftest import drill
from tests.support.loopback import redirect_to, serving
from tests.support.waiting import until_async
from warroom.plan.demo import demo_plan
from warroom.plan.model import Plan
from warroom.plan.rollback import NotifyTarget
from warroom.reports.files import to_html, to_markdown
from warroom.reports.postmortem import build_report
from warroom.store import open_store as Store

TOKEN = "T0KEN-hooks-b7d1e9f00c"


async def test_drill_notifies_with_retry_and_no_secret_leaks(tmp_path, receiver, monkeypatch):
    monkeypatch.setenv("WARROOM_TEST_SLACK", f"{receiver.url}/slack/{TOKEN}")
    monkeypatch.setenv("WARROOM_TEST_HOOK", f"{receiver.url}/hook/{TOKEN}")
    plan = demo_plan(tmp_path / "demo")
    # Without the demo's stakeholder updates: its incident update would be one more message (tests/engine/test_updates.py).
    plan = plan.model_copy(update={"notify": [NotifyTarget(type="slack", url="env:WARROOM_TEST_SLACK"),
                                              NotifyTarget(type="webhook", url="env:WARROOM_TEST_HOOK")], "updates": None})
    card, db, out = await drill(tmp_path, "canary-error-spike", plan)
    assert card.passed

    # Every message of the drill reached both targets, in order, after one retry.
    hook = [b for p, b in receiver.bodies if p == f"/hook/{TOKEN}"]
    assert [b["event"] for b in hook] == [
        "drill.start", "step.outcome", "rollback.intent", "rollback.confirmed", "rollback.outcome", "drill.score"]
    assert receiver.statuses[0] == 500 and receiver.statuses.count(500) == 1
    slack = [b for p, b in receiver.bodies if p == f"/slack/{TOKEN}"]
    assert len(slack) == len(hook)

    # Messages carry rollout, environment, phase, what happened and why (the numbers).
    rollback = next(b for b in hook if b["event"] == "rollback.intent")
    assert rollback["rollout"] == "demo-realtime-features" and rollback["environment"] == "drill"
    assert rollback["phase"] == {"index": 1, "count": 5, "name": "Beta 5%"}
    assert rollback["state"] == "ROLLING BACK" and rollback["actor"] == "warroom (automatic)"
    # 40 % of the new code's requests fail at 5 % exposure: about 2.4 % of all.
    assert rollback["why"].startswith("error-rate: 0.0236994 above 0.01 for 10s")
    slack_rollback = next(b for b in slack if "ROLLBACK" in b["text"])
    assert slack_rollback["text"].startswith("[DRILL] demo-realtime-features · phase 1/5 Beta 5% · ROLLING BACK")
    assert "2.37% above 1.00%" in slack_rollback["text"] and slack_rollback["blocks"][0]["type"] == "section"
    score = next(b for b in hook if b["event"] == "drill.score")
    assert score["data"]["card"]["passed"] is True

    # The failure is journaled (without the URL), then the delivery after the retry.
    entries = Store(db).entries()
    failed = [e for e in entries if e.kind == "notify.failed"]
    assert len(failed) == 1 and "HTTP 500" in failed[0].message and "retrying" in failed[0].message
    assert [e.kind for e in entries if e.kind == "notify.delivered"] == ["notify.delivered"]

    report = build_report(plan, Store(db))
    stored = [p.read_bytes().decode("latin-1") for p in db.parent.iterdir() if p.name.startswith(db.name)]  # db and its WAL
    for text in (*stored, out, to_markdown(report), to_html(report)):
        assert TOKEN not in text and "127.0.0.1" not in text


def _notified(tmp_path, **targets) -> Plan:
    plan = demo_plan(tmp_path / "demo")
    return plan.model_copy(update={"notify": [NotifyTarget.model_validate(t) for t in targets.values()]})


async def test_a_flag_outage_is_one_message_and_one_recovery_not_one_per_attempt(tmp_path, monkeypatch):
    with serving(lambda r: (200, {}, b"")) as receiver:
        monkeypatch.setenv("WARROOM_TEST_HOOK", f"{receiver.url}/hook/{TOKEN}")
        plan = _notified(tmp_path, hook={"type": "webhook", "url": "env:WARROOM_TEST_HOOK"})
        card, db, _ = await drill(tmp_path, "flag-service-down-during-rollback", plan)
    sent = [json.loads(r.body) for r in receiver.requests]
    attempts = [e for e in Store(db).entries() if e.kind == "rollback.attempt"]
    assert len(attempts) >= 6 and card.failed_attempts == len(attempts)  # the engine journals each one …
    # … the channel hears of the first, then once when the rollback is confirmed, with the count.
    (failure,) = [m for m in sent if m["event"] == "rollback.attempt"]
    assert failure["message"].startswith("rollback attempt 1 on ")
    assert failure["message"].endswith("(further failed attempts are not sent one by one; a message follows when this ends)")
    (confirmed,) = [m for m in sent if m["event"] == "rollback.confirmed"]
    assert confirmed["message"].endswith(f"(after {len(attempts)} failed attempts)")
    events = [m["event"] for m in sent]
    assert events.index("rollback.attempt") < events.index("rollback.confirmed") < events.index("rollback.outcome")


async def test_a_webhook_redirect_is_not_followed_and_a_broken_url_is_a_failed_delivery(tmp_path, monkeypatch):
    with serving(lambda r: (200, {}, b"")) as elsewhere, serving(redirect_to(elsewhere.other_origin_url)) as origin:
        monkeypatch.setenv("WARROOM_TEST_HOOK", f"{origin.url}/hook/{TOKEN}")
        monkeypatch.setenv("WARROOM_TEST_BROKEN_HOOK", f"http://hooks:{TOKEN}/hook")  # a port that is no number
        plan = _notified(tmp_path, hook={"type": "webhook", "url": "env:WARROOM_TEST_HOOK", "events": ["drill.start"]},
                         broken={"type": "webhook", "url": "env:WARROOM_TEST_BROKEN_HOOK", "events": ["drill.start"]})
        _, db, _ = await drill(tmp_path, "canary-error-spike", plan)
    assert origin.requests and elsewhere.requests == []
    failed = {e.data["target"]: e.message for e in Store(db).entries() if e.kind == "notify.failed"}
    assert f"redirects to {elsewhere.other_origin_url}, not followed" in failed[0]
    assert "(the URL is not a valid http(s) URL), attempt" in failed[1]  # it was a worker dying silently
    assert TOKEN not in failed[0] + failed[1]


async def test_a_429_retry_after_is_honoured(tmp_path, monkeypatch):
    def respond(request):
        return (429, {"Retry-After": "2"}, b"slow down") if len(receiver.requests) == 1 else (200, {}, b"")

    with serving(respond) as receiver:
        monkeypatch.setenv("WARROOM_TEST_HOOK", f"{receiver.url}/hook/{TOKEN}")
        plan = _notified(tmp_path, hook={"type": "webhook", "url": "env:WARROOM_TEST_HOOK", "events": ["drill.start"]})
        _, db, _ = await drill(tmp_path, "canary-error-spike", plan)
        # The drill may end before the retry is due; its close waits for it.
        await until_async("the retry", lambda: len(receiver.requests) >= 2)
    first, second = receiver.requests[:2]
    # Not the 0.5 s of the backoff: what the receiver asked for (a lower bound: a busy machine only adds to it).
    assert second.at - first.at >= 1.9
    (failed,) = [e for e in Store(db).entries() if e.kind == "notify.failed"]
    assert "(HTTP 429), attempt 1; retrying in 2s" in failed.message


async def test_a_cohort_guardrails_rollback_is_sent_with_both_cohorts(tmp_path, receiver, monkeypatch):
    monkeypatch.setenv("WARROOM_TEST_HOOK", f"{receiver.url}/hook/{TOKEN}")
    plan = demo_plan(tmp_path / "demo")
    plan = plan.model_copy(update={"notify": [NotifyTarget(type="slack", url="env:WARROOM_TEST_HOOK")]})
    card, db, out = await drill(tmp_path, "canary-only-regression", plan)
    assert card.passed
    slack = next(b for _, b in receiver.bodies if "ROLLBACK" in b["text"])
    # Both sides and the difference, where the channel reads it, not only the journal.
    assert "guardrail error-rate-vs-control: new 10.00% vs control 0.040% Δ+9.96pp" in slack["text"]
    assert "why: error-rate-vs-control: new 10.00% vs control 0.040% Δ+9.96pp" in slack["text"]
