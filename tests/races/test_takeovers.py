"""Actions cut by a takeover (issue 21, items 3, 4 and 18): engines "on two hosts" on one
PostgreSQL database (tests/process/test_across_hosts.py), the driver killed or frozen with
real signals while a runbook request or a flag write is in flight, the standby finishing."""

from __future__ import annotations

import json
import signal
import subprocess
import threading

import pytest

from tests.process.conftest import WARROOM, until
from tests.process.test_across_hosts import EU, US, SharedRollout, shared  # noqa: F401  (shared: the fixture)
from tests.support.loopback import serving
from warroom.outbound.runbook import idempotency_key

pytestmark = pytest.mark.slow


def test_a_webhook_in_flight_when_its_engine_is_killed_is_sent_again_with_the_same_key(shared, monkeypatch):
    held = threading.Event()  # the receiver holds the first request until the test lets it go
    release = threading.Event()

    def receiver(request):
        if not held.is_set():
            held.set()
            release.wait(60)
        return 200, {}, b"ok"

    with serving(receiver) as hook:
        monkeypatch.setenv("WARROOM_TEST_RUNBOOK_HOOK", f"{hook.url}/hooks/launch-room")
        r: SharedRollout = shared(automation={"step_up": "manual"}, rollback={
            "flags": {"feature": False}, "dry_run": False,
            "steps": [{"name": "page the room", "webhook": "env:WARROOM_TEST_RUNBOOK_HOOK", "message": "{rollout} rolled back"}]})
        eu, us = r.pair()
        assert r.verb("step").returncode == 0
        rollback = subprocess.Popen([*WARROOM, "rollback", str(r.plan)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    stdin=subprocess.DEVNULL)
        until("the eu engine's webhook to arrive", held.is_set)
        assert r.status_json()["state"] == "ROLLED_BACK"  # the flags are off; the runbook is in flight
        eu.send_signal(signal.SIGKILL)  # its host dies with the request unanswered
        eu.wait()
        until("the us engine to send the step again", lambda: len(hook.requests) == 2)
        release.set()
        until("the rollback's outcome", lambda: "rollback.outcome" in r.kinds())
        rollback.communicate(timeout=60)
    first, again = hook.requests
    action = next(e.action_id for e in r.store.entries() if e.kind == "rollback.intent")
    key = idempotency_key("race", action, 0)
    assert first.headers["idempotency-key"] == again.headers["idempotency-key"] == key
    assert [json.loads(q.body) for q in (first, again)] == [{"text": "race rolled back", "idempotency_key": key}] * 2
    kinds = r.kinds()
    # The state read ROLLED BACK while the runbook ran: the takeover is journaled all the same.
    assert kinds.count("engine.lost") == 1 and kinds.count("rollback.resume") == 1 and kinds.count("rollback.outcome") == 1
    lost = next(e for e in r.store.entries() if e.kind == "engine.lost")
    assert f"took over from engine alice@bastion-eu pid {eu.pid}, which vanished with the rollout ROLLED BACK, its rollback unfinished" \
        in lost.message, lost.message
