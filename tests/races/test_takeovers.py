"""Actions cut by a takeover (issue 21, items 3, 4 and 18): engines "on two hosts" on one
PostgreSQL database (tests/process/test_across_hosts.py), the driver killed or frozen with
real signals while a runbook request or a flag write is in flight, the standby finishing."""

from __future__ import annotations

import json
import signal
import subprocess
import threading

import pytest

from tests.flags.flagservice import Write
from tests.process.conftest import WARROOM
from tests.process.test_across_hosts import EU, US, SharedRollout, shared  # noqa: F401  (shared: the fixture)
from tests.races.conftest import exposing
from tests.support.loopback import serving
from tests.support.waiting import until
from warroom.outbound.runbook import idempotency_key

pytestmark = pytest.mark.slow


def step_held_at_the_flag_api(r: SharedRollout, flags) -> tuple[subprocess.Popen, subprocess.Popen, subprocess.Popen, Write]:
    """The eu engine driving at phase 1, us standing by, and a `warroom step` whose write to 50 %
    left the eu engine and is held by the flag API: (eu, us, the step verb, that write)."""
    eu, us = r.pair()
    assert r.verb("step").returncode == 0
    # the canary's one-second soak must end first, or the step is refused (on a fast machine it had not)
    until("the canary's soak to end", lambda: not r.status_json()["step_blockers"])
    flags.fault_writes("hold", 60.0, when=exposing(50), count=1)
    step = subprocess.Popen([*WARROOM, "step", str(r.plan)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    held = until("the eu engine's write to 50%", lambda: next((w for w in flags.writes if w.fault == "hold"), None))
    assert held.who == eu.pid
    return eu, us, step, held


def test_a_webhook_in_flight_when_its_engine_is_killed_is_sent_again_with_the_same_key(shared, monkeypatch):  # noqa: F811  (the fixture imported above)
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


def test_a_frozen_drivers_late_flag_write_is_refused_by_its_epoch(shared, flags):  # noqa: F811  (the fixture imported above)
    """The driver's write leaves it, and the driver freezes (SIGSTOP): to the flag API the write
    arrives late (held here until the test lets it go), after the standby took over and rolled
    back. The API fences writers by epoch, so the old driver's write is refused, never applied."""
    flags.fence_epochs = True
    r: SharedRollout = shared(automation={"step_up": "manual"})
    eu, us, step, late = step_held_at_the_flag_api(r, flags)
    eu.send_signal(signal.SIGSTOP)
    until("the us engine to take over", lambda: r.driver() == us.pid)
    rollback = r.verb("rollback", "--reason", "the eu host froze mid-step")
    assert rollback.returncode == 0 and rollback.stdout.strip() == "rolled back", rollback.stdout + rollback.stderr
    eu.send_signal(signal.SIGCONT)  # it wakes with its write still going out …
    flags.release()
    until("the late write to be handled", lambda: late.refused or late.applied)
    assert late.applied is None and late.refused == "stale epoch 1: epoch 2 has written"  # … and the API refuses it
    assert flags.flags["feature"]["enabled"] is False
    assert eu.wait(30) == 10  # then it learns it was fenced
    step.communicate(timeout=60)
    kinds = r.kinds()
    assert "rollback.reassert" not in kinds and kinds.count("engine.lost") == 1
    assert r.status_json()["state"] == "ROLLED_BACK"


def test_a_step_cut_by_a_takeover_is_refused_with_exit_6(shared, flags):  # noqa: F811  (the fixture imported above)
    r: SharedRollout = shared(automation={"step_up": "manual"})
    eu, us, step, _ = step_held_at_the_flag_api(r, flags)  # the eu engine's step waits on the flag API …
    eu.send_signal(signal.SIGKILL)  # … when its host dies
    eu.wait()
    until("the us engine to take over", lambda: r.driver() == us.pid)
    out, err = step.communicate(timeout=60)
    flags.release()
    assert step.returncode == 6 and out == "", (step.returncode, out, err)
    assert "warroom: not finished: the engine running it stopped or was taken over mid-command" in err, err


def test_the_old_drivers_late_step_write_is_set_back_not_taken_for_drift(shared, flags):  # noqa: F811  (the fixture imported above)
    r: SharedRollout = shared(automation={"step_up": "manual"})
    eu, us, step, late = step_held_at_the_flag_api(r, flags)  # the eu engine's step write is on its way …
    eu.send_signal(signal.SIGKILL)  # … when its host dies
    eu.wait()
    until("the us engine to reconcile the interrupted step", lambda: "step.outcome" in r.kinds()[4:])
    flags.release()  # the write lands after the takeover: warroom's own, not someone's click
    until("the late write to land", lambda: late.applied)
    until("the us engine to set it back", lambda: flags.flags["feature"]["rollout_percentage"] == 5)
    step.communicate(timeout=60)
    entries = r.store.entries()
    kinds = [e.kind for e in entries]
    assert "drift.detected" not in kinds, [e.message for e in entries if e.kind == "drift.detected"]
    (landed,) = [e for e in entries if e.kind == "step.late_write"]
    assert landed.message.startswith("feature read back 50%: the late write of the interrupted step up to phase 2 (engine "
                                     f"alice@bastion-eu pid {eu.pid}, before the takeover); setting it back to 5%, the phase it is at"), landed.message
    status = r.status_json()
    assert status["state"] == "RUNNING" and status["phase"]["index"] == 1
