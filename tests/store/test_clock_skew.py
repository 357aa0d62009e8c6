"""Clients whose wall clock is off (issue 21, item 5): every liveness and age is the store's to judge.

The audit's cases, on PostgreSQL with the engine on another host (WARROOM_HOSTNAME) and each
client a process of its own whose `time.time()` runs ahead or behind (tests/support/skewed_clock
says why that, not libfaketime): consoles and verbs 5 s and 30 s ahead and 60 s behind see the
engine as it is, a rollback 30 s ahead goes through the driver, a pause 60 s behind is not "old".
Then the same on SQLite, where the store's clock is the host's monotonic one anchored once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.process.test_across_hosts import EU, SharedRollout, shared  # noqa: F401  (shared: the rollout-on-PostgreSQL fixture)
from tests.races.conftest import WARROOM, Rollout, finished, flags, plan_data  # noqa: F401  (flags: the flag service fixture)
from tests.support.waiting import until

pytestmark = pytest.mark.slow
SKEW = str(Path(__file__).resolve().parents[1] / "support" / "skewed_clock")
CONSOLE_HOST = {"WARROOM_HOSTNAME": "laptop-ic", "USER": "carol", "LOGNAME": "carol"}


def skewed(offset: float) -> dict[str, str]:
    """The environment of a client on another host whose wall clock is `offset` seconds off."""
    path = os.pathsep.join(filter(None, [SKEW, os.environ.get("PYTHONPATH", "")]))
    return {**os.environ, **CONSOLE_HOST, "PYTHONPATH": path, "WARROOM_TEST_CLOCK_OFFSET": str(offset)}


def verb(rollout: Rollout, offset: float, *args: str) -> subprocess.CompletedProcess:
    return finished(subprocess.run([*WARROOM, args[0], str(rollout.plan), *args[1:]], capture_output=True, text=True, timeout=90,
                                   stdin=subprocess.DEVNULL, env=skewed(offset)))


def status(rollout: Rollout, offset: float) -> tuple[int, dict]:
    result = verb(rollout, offset, "status", "--json")
    return result.returncode, json.loads(result.stdout)


def driving(shared_rollout: SharedRollout) -> subprocess.Popen:  # noqa: F811
    eu = shared_rollout.engine(EU)
    shared_rollout.started.append(eu)
    until("the eu engine drives", lambda: shared_rollout.driver() == eu.pid)
    assert shared_rollout.verb("step").returncode == 0  # RUNNING at phase 1: in flight
    return eu


def test_clients_ahead_and_behind_see_a_driving_engine_alive_and_a_dead_one_dead(shared):  # noqa: F811
    r = shared(automation={"step_up": "manual"})
    eu = driving(r)
    for offset in (5, 30, -60):
        code, snap = status(r, offset)
        assert code == 0 and snap["engine"]["alive"] and snap["engine"]["pid"] == eu.pid, (offset, snap["engine"])
        assert snap["engine"]["heartbeat_age"] < 5, (offset, snap["engine"])  # its heartbeat as the database tells its age
    eu.send_signal(signal.SIGKILL)  # its host dies
    eu.wait()
    until("a client with the right time sees NO ENGINE", lambda: status(r, 0)[0] == 9)
    code, snap = status(r, -60)  # a minute behind, it used to see the dead engine alive for a minute more
    assert code == 9 and not snap["engine"]["alive"], snap["engine"]


def test_a_pause_from_a_client_a_minute_behind_is_run_not_refused_as_too_old(shared, flags):  # noqa: F811
    r = shared(automation={"step_up": "manual"})
    driving(r)
    paused = verb(r, -60, "pause", "--reason", "DBA asked for a hold")
    assert paused.returncode == 0 and paused.stdout.strip() == "paused", paused.stdout + paused.stderr
    assert "command.expired" not in r.kinds()


def test_a_rollback_from_a_client_30s_ahead_goes_through_the_driver_and_starts_no_engine(shared, flags):  # noqa: F811
    r = shared(automation={"step_up": "manual"})
    eu = driving(r)
    rollback = verb(r, 30, "rollback", "--reason", "errors")
    assert rollback.returncode == 0 and rollback.stdout.strip() == "rolled back", rollback.stdout + rollback.stderr
    assert "started one" not in rollback.stderr and r.standbys() == [] and r.driver() == eu.pid  # no second engine
    assert flags.flags["feature"]["enabled"] is False
    assert [w.who for w in flags.writes][-1] == eu.pid


@pytest.mark.parametrize("offset", [5, 30])
def test_a_console_ahead_shows_the_driver_and_its_R_rolls_back(shared, flags, tmux, offset):  # noqa: F811
    r = shared(automation={"step_up": "manual"})
    eu = driving(r)
    env = {k: v for k, v in skewed(offset).items() if k in (*CONSOLE_HOST, "PYTHONPATH", "WARROOM_TEST_CLOCK_OFFSET",
                                                               "XDG_STATE_HOME", "WARROOM_RACE_FLAG_TOKEN")}
    tmux.start(f"{' '.join(WARROOM)} {r.plan}", env=env)
    screen = tmux.wait_for("engine: alice@bastion-eu", 30)
    assert "RUNNING" in screen and "NO ENGINE" not in screen, screen
    tmux.run("send-keys", "-t", tmux.name, "R")
    until("the flags off", lambda: flags.flags["feature"]["enabled"] is False)
    until("the rollback's outcome", lambda: "rollback.outcome" in r.kinds())
    assert r.standbys() == [] and r.driver() == eu.pid  # the driver ran it: no engine was started for it


def test_on_sqlite_a_skewed_client_judges_by_the_hosts_clock(tmp_path, flags):  # noqa: F811
    """One host, one file: the store's clock is the host's monotonic clock, anchored once; a client
    whose wall clock is off still sees the engine alive, and its pause is not too old."""
    r = Rollout(tmp_path, plan_data(flags, automation={"step_up": "manual"}))
    up = r.verb("up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert r.verb("step").returncode == 0
    for offset in (30, -60):
        code, snap = status(r, offset)
        assert code == 0 and snap["engine"]["alive"] and snap["engine"]["heartbeat_age"] < 5, (offset, snap["engine"])
    paused = verb(r, -60, "pause")
    assert paused.returncode == 0 and paused.stdout.strip() == "paused", paused.stdout + paused.stderr
