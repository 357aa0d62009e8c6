"""Nothing stops guarding by accident, and engines do not pile up (issue 21, items 1 and 7).

`down` refuses to leave a live launch unguarded unless forced; `up --replace` restarts the
engine with the lease going straight from the old one to the new; racing starts leave one
engine. Real `warroom` processes on one SQLite state, the loopback flag service.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest

from tests.process.conftest import WARROOM
from tests.support.engines import engine_pid, standby_pids, wait_for_engine
from tests.support.terminal import running
from tests.support.waiting import until

pytestmark = pytest.mark.slow


def engine_processes(plan: Path) -> list[int]:
    """Every `warroom engine` process of this plan on the machine, standbys included."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"engine" in argv and str(plan).encode() in argv and running(int(entry.name)):
            found.append(int(entry.name))
    return found


class LeaseWatch:
    """The lease row read over and over from another connection while something happens: who held it, each time."""

    def __init__(self, state: Path):
        self.state = state
        self.seen: list[tuple[int | None, float]] = []  # (holder pid or None, expiry) at each look
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        db = sqlite3.connect(f"file:{self.state}?mode=ro", uri=True, timeout=5)
        while not self._stop.is_set():
            row = db.execute("SELECT pid, holder, expires FROM lease WHERE id = 1").fetchone()
            self.seen.append((row[0] if row[1] else None, row[2]))
        db.close()

    def __enter__(self) -> LeaseWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)


def test_down_refuses_to_leave_a_live_launch_unguarded_and_up_replace_hands_over_with_no_gap(rollout, flags):
    # The error rate breaks a second into phase 1; the guardrail acts after a minute of it: a countdown.
    fault = {"metric": "error_rate", "phase": 1, "after": "1s", "value": 0.05, "while_exposed": False}
    r = rollout(automation={"step_up": "manual"}, faults=[fault],
                guardrails=[{"id": "errors", "pane": "errors", "above": 0.01, "for": "60s", "action": "rollback"}])
    r.up()
    old = wait_for_engine(r.state)
    assert r.verb("step").returncode == 0
    until("the rollback countdown", lambda: r.status_json()["guardrails"][0]["status"] == "pending")

    refused = r.verb("down")
    assert refused.returncode == 6, refused.stdout + refused.stderr
    said = refused.stderr
    assert "RUNNING at phase 1/3 Canary 5% with feature 5% exposed" in said, said  # what stays exposed
    assert "guardrail errors is counting down: ROLLBACK IN" in said, said
    assert "stops enforcing 1 guardrail(s): errors (errors above 1.00% for 1m00s → rollback)" in said, said  # what stops
    assert "`warroom down PLAN --force`" in said and "`warroom up PLAN --replace`" in said, said
    assert running(old) and engine_pid(r.state) == old

    with LeaseWatch(r.state) as watch:
        replaced = r.verb("up", "--replace")
        until("the old engine to exit", lambda: not running(old))
    assert replaced.returncode == 0 and "engine replaced: pid" in replaced.stdout and "with no gap" in replaced.stdout, \
        replaced.stdout + replaced.stderr
    new = engine_pid(r.state)
    assert new not in (None, old) and running(new)
    holders = [pid for pid, _ in watch.seen]
    assert len(holders) > 100 and None not in holders, "a moment when no engine held the lease"  # never unguarded
    assert set(holders) == {old, new} and holders.index(new) > holders.index(old)
    kinds = r.kinds()
    assert not {"engine.left", "engine.lost", "engine.stop"} & set(kinds), kinds  # nobody went unguarded, nothing vanished
    start = [e for e in r.journal() if e["kind"] == "engine.start"][-1]
    assert f"took the lease over from engine {r.lease()['user']}@" in start["message"], start["message"]
    assert f"pid {old} (warroom up --replace), with no gap" in start["message"], start["message"]
    assert "replaced: engine " in r.log.read_text()  # the old one says why it stopped (and exited 0, not as fenced)

    forced = r.verb("down", "--force")
    assert forced.returncode == 0 and f"pid {new} stopped" in forced.stdout, forced.stdout + forced.stderr
    until("the engine to end", lambda: not running(new))
    assert r.kinds()[-1] == "engine.left"


def test_down_of_a_launch_with_nothing_exposed_needs_no_force(rollout):
    r = rollout(automation={"step_up": "manual"})
    r.up()
    pid = wait_for_engine(r.state)
    down = r.verb("down")
    assert down.returncode == 0 and f"pid {pid} stopped" in down.stdout, down.stdout + down.stderr


def test_three_ups_at_once_leave_one_engine(rollout):
    r = rollout(automation={"step_up": "manual"})
    results = r.at_once(("up",), ("up",), ("up",))
    assert all(x.returncode == 0 for x in results), [(x.returncode, x.stdout, x.stderr) for x in results]
    driver = wait_for_engine(r.state)
    assert engine_processes(r.plan) == [driver] and standby_pids(r.state) == []
    assert sum("engine started" in x.stdout for x in results) == 1, [x.stdout for x in results]


def test_rollbacks_racing_with_no_engine_alive_leave_one_engine(rollout, flags):
    r = rollout(automation={"step_up": "manual"})
    r.up()
    assert r.verb("step").returncode == 0
    killed = engine_pid(r.state)
    os.kill(killed, signal.SIGKILL)
    until("the engine to be gone", lambda: not running(killed))
    results = r.at_once(("rollback",), ("rollback",), ("rollback",))
    assert all(x.returncode == 0 for x in results), [(x.returncode, x.stdout, x.stderr) for x in results]
    driver = wait_for_engine(r.state)
    assert engine_processes(r.plan) == [driver] and standby_pids(r.state) == []
    assert flags.flags["feature"]["enabled"] is False and r.kinds().count("rollback.intent") == 1


def test_down_stops_a_standby_too_and_says_so(rollout):
    r = rollout(automation={"step_up": "manual"})
    engine = [*WARROOM, "engine", str(r.plan)]
    driver = subprocess.Popen(engine, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    standby = None
    try:
        assert wait_for_engine(r.state) == driver.pid
        standby = subprocess.Popen(engine, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        until("the standby", lambda: standby.pid in standby_pids(r.state))
        down = r.verb("down")
        assert down.returncode == 0, down.stdout + down.stderr
        assert f"pid {driver.pid} stopped" in down.stdout and f"pid {standby.pid} stopped (it stood by)" in down.stdout, down.stdout
        driver.wait(30)
        standby.wait(30)
        assert engine_pid(r.state) is None  # nobody took over
        assert "engine.start" not in r.kinds()[r.kinds().index("engine.stop"):]
    finally:
        for proc in (driver, standby):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
