"""One always-on engine per rollout (issue 13): guardrails hold with no console open, and every
console shows the same truth. Real processes, real signals, tmux, the loopback flag service."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.process.conftest import WARROOM
from tests.races.conftest import exposing
from tests.support.engines import engine_pid, standby_pids, wait_for_engine
from tests.support.loopback import ok_json, serving
from tests.support.terminal import Tmux, running, wait_gone
from tests.support.waiting import DEADLINE, until
from warroom.core.units import format_duration, format_value
from warroom.engine.lease import HEARTBEAT

BINARY = str(Path(sys.executable).with_name("warroom"))
pytestmark = pytest.mark.slow


def test_up_rolls_back_with_no_console_open_and_a_console_opened_later_shows_it(rollout, flags, tmux):
    # Automatic step-up into phase 1, where the error rate breaks 2 s in: nobody watches.
    r = rollout(faults=[{"metric": "error_rate", "phase": 1, "after": "2s", "value": 0.05}])
    r.up()
    r.wait_for_kind("rollback.outcome")
    assert flags.flags["feature"]["enabled"] is False
    engine = engine_pid(r.state)
    assert {w.who for w in flags.writes} == {engine}  # every flag write: the engine's
    tmux.start(f"{BINARY} {r.plan}")  # attaches: the engine is alive, no second one starts
    screen = tmux.wait_for("ROLLED BACK")
    assert re.search(r"ROLLBACK by warroom \(automatic\): guardrail errors: errors [\d.]+% above 1\.00%", screen), screen
    assert "flags confirmed by read-back: feature off" in screen
    assert engine_pid(r.state) == engine and not standby_pids(r.state)


def test_a_console_that_started_the_engine_can_go_and_the_engine_keeps_guarding(rollout, tmux):
    r = rollout(automation={"step_up": "manual"})
    tmux.start(f"{BINARY} {r.plan}")  # no engine alive: the console starts one, detached
    tmux.wait_for("PENDING")
    engine, console = wait_for_engine(r.state), tmux.pid()
    assert engine != console
    tmux.run("kill-session", "-t", tmux.name)  # the SSH session that ran the console drops
    wait_gone(console)
    assert running(engine)
    beat = r.lease()["heartbeat"]
    until("the engine's heartbeat to move on", lambda: r.lease()["heartbeat"] >= beat + 1.5)
    step = r.verb("step")  # and it still takes commands
    assert step.returncode == 0 and step.stdout.strip() == "stepped up to phase 1", step.stdout + step.stderr


def test_an_engine_run_by_hand_keeps_guarding_when_its_terminal_goes(rollout, tmux):
    r = rollout(automation={"step_up": "manual"})
    tmux.start(f"{BINARY} engine {r.plan}")
    tmux.wait_for("engine.start")
    pid = tmux.pid()
    beat = r.lease()["heartbeat"]
    tmux.run("kill-session", "-t", tmux.name)  # SIGHUP, and a terminal that is gone
    # Two heartbeats after the hangup the engine still renews its lease: it lives on.
    until("the engine's heartbeat to move on after the hangup", lambda: r.lease()["heartbeat"] >= beat + 2 * HEARTBEAT)
    assert running(pid)
    size = r.log.stat().st_size
    assert r.verb("step").returncode == 0
    until("the engine to log the step", lambda: r.log.stat().st_size > size and "step.outcome" in r.log.read_text())


def test_two_consoles_and_status_show_the_same_numbers_and_ages_during_a_source_outage(rollout, tmux, tmp_path):
    # The metrics source goes dark 2 s in: every pane keeps its last value, marked stale, ageing.
    # The engine publishes once a poll: 10 s is time enough for two screens and a status
    # process to read the same snapshot, even on a busy machine.
    r = rollout(automation={"step_up": "manual"}, poll_interval="10s",
                faults=[{"mode": "dark", "at": "2s", "while_exposed": False}])
    r.up()
    other = Tmux(tmux.tmux, tmux.name + "-b", tmp_path / "tmux-b.conf")
    try:
        tmux.start(f"{BINARY} {r.plan}")
        other.start(f"{BINARY} {r.plan}")
        for console in (tmux, other):
            console.wait_for("STALE")

        panes = lambda screen: screen.splitlines()[2:8]  # noqa: E731  (the panes, under the banner)

        def same_moment() -> tuple[str, str, dict] | None:
            before = published(r.state)
            a, b, status = tmux.screen(), other.screen(), r.status_json()
            # Nothing published meanwhile, and both consoles have drawn what was.
            return (a, b, status) if published(r.state) == before and panes(a) == panes(b) else None

        a, b, status = until("two screens and status from one snapshot", same_moment)
        errors = next(p for p in status["panes"] if p["id"] == "errors")
        assert errors["status"] == "stale" and errors["age"] >= 2
        shown = "\n".join(panes(a))
        assert format_value(errors["value"], "ratio") in shown and f"{format_duration(errors['age'])} ago" in shown
        assert status["engine"]["alive"] is True and status["engine"]["pid"] == engine_pid(r.state)
    finally:
        subprocess.run([*other.base, "kill-server"], capture_output=True)


def published(state: Path) -> int:
    import sqlite3

    with sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5) as db:
        row = db.execute("SELECT seq FROM snapshot WHERE id = 1").fetchone()
    return row[0] if row else 0


def test_rollback_from_a_shell_without_the_runbook_secret_still_sends_the_webhook(rollout):
    with serving(ok_json()) as receiver:
        r = rollout(automation={"step_up": "manual"},
                    rollback={"flags": {"feature": False}, "steps": [{"webhook": "env:WARROOM_TEST_HOOK"}], "dry_run": False})
        r.up(env={**os.environ, "WARROOM_TEST_HOOK": f"{receiver.url}/hook-7f3a/rollback"})
        assert r.verb("step").returncode == 0
        assert "WARROOM_TEST_HOOK" not in os.environ  # this shell does not have the secret …
        result = r.verb("rollback", "--reason", "from a shell without the secret")
        assert result.returncode == 0 and result.stdout.strip() == "rolled back", result.stdout + result.stderr
        # … the engine has it, and ran the runbook in its own environment.
        assert [q.path for q in receiver.requests] == ["/hook-7f3a/rollback"]
        assert b"from a shell without the secret" in receiver.requests[0].body


def test_a_frozen_engine_taken_over_writes_nothing_when_it_wakes(rollout, flags):
    r = rollout(automation={"step_up": "manual"})
    first = subprocess.Popen([*WARROOM, "engine", str(r.plan), "--lease-ttl", "2s"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    second = None
    try:
        assert wait_for_engine(r.state) == first.pid
        assert r.verb("step").returncode == 0
        # A standby waits for the lease.
        second = subprocess.Popen([*WARROOM, "engine", str(r.plan), "--lease-ttl", "2s"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        until("the standby to register", lambda: second.pid in standby_pids(r.state))
        flags.fail(503)  # the flag API is down: the rollback the first engine starts keeps retrying
        rollback = subprocess.Popen([*WARROOM, "rollback", str(r.plan)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, stdin=subprocess.DEVNULL)
        until("the first engine's rollback attempts", lambda: r.kinds().count("rollback.attempt") >= 2)
        first.send_signal(signal.SIGSTOP)  # frozen (a VM pause, a stuck host) past its 2 s lease
        frozen_at = time.time()
        until("the standby to take over", lambda: engine_pid(r.state) == second.pid)
        assert r.lease()["epoch"] == 2
        flags.recover()  # the standby finishes the rollback from the journal
        out, err = rollback.communicate(timeout=60)
        assert rollback.returncode == 0 and out.strip() == "rolled back", out + err
        writes_before_wake = len(flags.writes)
        journal_before_wake = r.journal()
        first.send_signal(signal.SIGCONT)  # it wakes up, mid-retry, believing it drives
        first_out, _ = first.communicate(timeout=DEADLINE)
        assert first.returncode == 10 and "FENCED: fenced: this engine held epoch 1; the lease is now epoch 2" in first_out, first_out
        # It has exited: no flag write from it … (one it sent before dying but the service read
        # after would have no pid to show: none but the driver's counts)
        assert [w for w in flags.writes[writes_before_wake:] if w.who != second.pid] == []
        assert r.journal()[:len(journal_before_wake)] == journal_before_wake  # … and no journal entry
        late = [e for e in r.journal() if e["ts"] > frozen_at and e["data"].get("actor", {}).get("driver", "").endswith(f"pid {first.pid}")]
        assert late == []
        assert flags.flags["feature"]["enabled"] is False and r.status_json()["state"] == "ROLLED_BACK"
        kinds = [e["kind"] for e in r.journal()]
        assert "engine.lost" in kinds and kinds.count("rollback.resume") == 1
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait()


def test_rollback_prints_each_attempt_while_it_retries(rollout, flags):
    r = rollout(automation={"step_up": "manual"})
    r.up()
    assert r.verb("step").returncode == 0
    flags.fail(503)
    verb = subprocess.Popen([*WARROOM, "rollback", str(r.plan)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    seen: list[str] = []
    while len([line for line in seen if "attempt" in line]) < 3:
        line = verb.stderr.readline()
        assert line, "the verb ended before saying its attempts: " + "".join(seen)
        seen.append(line)
    # While it retries, before any outcome: each failed attempt, as it happens.
    assert re.match(r"rollback: rollback attempt 1 on feature failed: HTTP 503", seen[0]), seen
    assert verb.poll() is None
    flags.recover()
    out, err = verb.communicate(timeout=60)
    assert verb.returncode == 0 and out.strip() == "rolled back", out + err
    assert "rollback: flags confirmed by read-back: feature off" in err


def test_a_headless_runner_says_it_finishes_its_rollback_and_stops_at_a_second_signal(rollout, flags):
    r = rollout(automation={"step_up": "manual"})
    runner = subprocess.Popen([*WARROOM, "run", "--headless", str(r.plan)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, stdin=subprocess.DEVNULL)
    try:
        wait_for_engine(r.state)
        assert r.verb("step").returncode == 0
        flags.fail(503)
        subprocess.Popen([*WARROOM, "rollback", str(r.plan)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL)
        until("the rollback retrying", lambda: r.kinds().count("rollback.attempt") >= 2)
        runner.send_signal(signal.SIGTERM)
        until("the runner to answer SIGTERM", lambda: "SIGTERM: a rollback is in flight (attempt " in r.log.read_text())
        attempts = r.kinds().count("rollback.attempt")
        until("another rollback attempt after SIGTERM", lambda: r.kinds().count("rollback.attempt") > attempts)
        assert runner.poll() is None  # it keeps rolling back …
        log = r.log.read_text()
        assert ("SIGTERM: a rollback is in flight (attempt " in log and "finishing it before stopping. Send SIGTERM again to stop now"
                in log), log  # … and says so
        runner.send_signal(signal.SIGTERM)
        out, _ = runner.communicate(timeout=DEADLINE)
        assert "SIGTERM again: stopping now; what is in flight stays pending in the journal" in out
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    kinds = r.kinds()
    assert "rollback.outcome" not in kinds and kinds[-1] == "engine.left"
    flags.recover()
    again = r.verb("rollback")  # the next engine finishes it
    assert again.returncode == 0 and "resuming an unfinished rollback" in again.stderr, again.stderr
    assert flags.flags["feature"]["enabled"] is False


def test_an_engine_that_stops_or_vanishes_with_the_launch_in_flight_tells_the_channel(rollout, flags):
    events: list[dict] = []

    def hook(request):
        events.append(json.loads(request.body))
        return ok_json()(request)

    with serving(hook) as receiver:
        r = rollout(automation={"step_up": "manual"}, notify=[{"type": "webhook", "url": "env:WARROOM_TEST_NOTIFY"}])
        env = {**os.environ, "WARROOM_TEST_NOTIFY": f"{receiver.url}/notify"}
        r.up(env=env)
        assert r.verb("step").returncode == 0
        assert r.verb("down", "--force").returncode == 0
        until("the engine.left message", lambda: any(e["event"] == "engine.left" for e in events))
        left = next(e for e in events if e["event"] == "engine.left")
        assert "guardrails are NOT enforced" in left["message"] and left["state"] == "RUNNING"
        r.up(env=env)
        os.kill(engine_pid(r.state), signal.SIGKILL)  # killed: it says nothing
        r.up(env=env)  # the next engine finds it gone, with the launch in flight
        until("the engine.lost message", lambda: any(e["event"] == "engine.lost" for e in events))
        lost = next(e for e in events if e["event"] == "engine.lost")
        assert "vanished with the rollout RUNNING" in lost["message"]


def test_down_refuses_while_a_rollback_is_in_flight_unless_forced(rollout, flags):
    r = rollout(automation={"step_up": "manual"})
    r.up()
    assert r.verb("step").returncode == 0
    flags.fail(503)
    subprocess.Popen([*WARROOM, "rollback", str(r.plan)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    until("the rollback retrying", lambda: r.kinds().count("rollback.attempt") >= 1)
    refused = r.verb("down")
    assert refused.returncode == 6 and "a rollback is in flight" in refused.stderr and "--force" in refused.stderr
    pid = engine_pid(r.state)
    assert running(pid)
    forced = r.verb("down", "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    wait_gone(pid)
    assert r.kinds()[-1] == "engine.left" and "rollback.outcome" not in r.kinds()


def test_status_says_no_engine_and_exits_9_when_nothing_guards_a_live_launch(rollout):
    r = rollout(automation={"step_up": "manual"})
    r.up()
    assert r.verb("step").returncode == 0
    assert r.verb("status").returncode == 0
    pid = engine_pid(r.state)
    os.kill(pid, signal.SIGKILL)
    wait_gone(pid)
    status = r.verb("status")
    assert status.returncode == 9 and "NO ENGINE — guardrails NOT enforced" in status.stdout, status.stdout
    data = json.loads(r.verb("status", "--json").stdout)
    assert data["engine"]["alive"] is False and data["state"] == "RUNNING"
    step = r.verb("step")
    assert step.returncode == 6 and f"no engine drives race: start one with `warroom up {r.plan}`" in step.stderr


def test_status_exits_9_when_the_engine_dies_with_the_first_step_up_in_flight(rollout, flags):
    # PENDING with the first step's flags landing is in flight: users may already be on the new
    # code, and nothing guards them once the engine is gone.
    r = rollout(automation={"step_up": "manual"}, timeout="120s")
    r.up()
    flags.fault_writes("drop", 120.0, when=exposing(5))  # the first step's write is held: it stays in flight
    step = subprocess.Popen([*WARROOM, "step", str(r.plan)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    try:
        until("the first step up's write held", lambda: any(w.fault == "drop" for w in flags.writes))
        until("a snapshot with the step up in flight", lambda: (s := r.status())["action"] is not None and s["state"] == "PENDING")
        engine = engine_pid(r.state)
        os.kill(engine, signal.SIGKILL)
        wait_gone(engine)
        status = r.verb("status")
        assert status.returncode == 9 and "NO ENGINE — guardrails NOT enforced" in status.stdout, status.stdout
        assert r.status()["state"] == "PENDING"
    finally:
        step.kill()
        step.wait()


def test_with_no_engine_alive_the_console_refuses_at_once_and_R_starts_one_to_roll_back(rollout, flags, tmux):
    r = rollout(automation={"step_up": "manual"})
    r.up()
    assert r.verb("step").returncode == 0
    tmux.start(f"{BINARY} {r.plan}")
    tmux.wait_for("RUNNING")
    engine = engine_pid(r.state)
    assert subprocess.run([*WARROOM, "down", str(r.plan), "--force"], capture_output=True, timeout=30).returncode == 0
    wait_gone(engine)
    tmux.wait_for("NO ENGINE — guardrails NOT enforced")
    # Nothing would run it: refused at once (after the client's wait it would say "no answer").
    tmux.run("send-keys", "-t", tmux.name, "p")
    tmux.wait_for("no engine drives this rollout: nothing would run it")
    tmux.run("send-keys", "-t", tmux.name, "R")  # rolling back is never refused for want of an engine
    tmux.wait_for("ROLLED BACK")
    assert flags.flags["feature"]["enabled"] is False
    assert r.kinds().count("rollback.intent") == 1 and "pause" not in r.kinds()
    assert engine_pid(r.state) not in (None, engine)  # a new engine of its own, which goes on guarding
