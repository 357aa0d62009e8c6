"""How verbs end, as a script reads them (issue 21, item 12): `run --headless --for` ends on time
even as a standby, and a step up a rollback took over does not exit 0."""

from __future__ import annotations

import signal
import subprocess

import pytest

from tests.process.conftest import WARROOM
from tests.races.conftest import exposing
from tests.support.engines import standby_pids, wait_for_engine
from tests.support.waiting import until

pytestmark = pytest.mark.slow


def test_run_headless_for_3s_ends_after_3s_while_another_engine_drives(rollout):
    r = rollout(automation={"step_up": "manual"})
    r.up()
    driver = wait_for_engine(r.state)
    run = subprocess.Popen([*WARROOM, "run", "--headless", str(r.plan), "--for", "3s"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    try:
        until("the run to stand by", lambda: run.pid in standby_pids(r.state))
        out, _ = run.communicate(timeout=60)  # it never drives: --for counts from its start all the same
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0 and "ran for 3s of clock time (--for) as a standby" in out, out
    assert wait_for_engine(r.state) == driver and run.pid not in standby_pids(r.state)


def test_a_step_up_abandoned_because_a_rollback_took_over_exits_with_the_rollback_state_code(rollout, flags):
    r = rollout(automation={"step_up": "manual"}, timeout="5s")
    r.up()
    assert r.verb("step").returncode == 0
    until("phase 1's soak to be over", lambda: not r.status_json()["step_blockers"])
    flags.fault_writes("delay", 3.0, when=exposing(50))  # the step to 50 % lands late: after the rollback
    step = subprocess.Popen([*WARROOM, "step", str(r.plan)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        until("the step up to phase 2", lambda: r.kinds().count("step.intent") == 2)
        rollback = r.verb("rollback")
        assert rollback.returncode == 0, rollback.stdout + rollback.stderr
        out, err = step.communicate(timeout=60)
    finally:
        if step.poll() is None:
            step.send_signal(signal.SIGKILL)
            step.wait()
    assert "step up abandoned: rolled back meanwhile" in out + err
    # ROLLING BACK or ROLLED BACK, as `status` says it when the step ends (a rollback takes a step
    # over at once, mid-write): never 0, which a script reads as "stepped".
    assert step.returncode in (4, 5), (step.returncode, out, err)
    assert flags.flags["feature"]["enabled"] is False
