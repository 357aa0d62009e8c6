"""An engine killed while a rollback's runbook step runs (issue 21, item 10).

The flags are off, so the state reads ROLLED BACK, but the runbook is not done: nothing runs
it until an engine comes back. Until then `status` says NO ENGINE; `warroom rollback` starts
one and answers once the runbook ran (never `already rolled back` before); the runbook runs
once more from where it stopped, once; the room hears `engine.lost`. Real processes, SIGKILL,
a runbook step that waits for the test to let it finish.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from tests.process.conftest import WARROOM
from tests.support.engines import engine_pid, wait_for_engine
from tests.support.terminal import running
from tests.support.waiting import until

pytestmark = pytest.mark.slow


def test_a_rollback_killed_mid_runbook_is_finished_once_by_the_next_engine_and_nobody_is_told_it_was_done(rollout, flags, tmp_path):
    ran, release = tmp_path / "ran", tmp_path / "release"
    step = f"echo started >> {ran}; while [ ! -e {release} ]; do sleep 0.1; done; echo done >> {ran}"
    r = rollout(automation={"step_up": "manual"},
                rollback={"flags": {"feature": False}, "dry_run": False, "steps": [{"name": "scale down", "run": ["sh", "-c", step]}]})
    r.up()
    assert r.verb("step").returncode == 0
    first = subprocess.Popen([*WARROOM, "rollback", str(r.plan)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             stdin=subprocess.DEVNULL)
    second = None
    try:
        until("the runbook step to run", lambda: ran.exists() and ran.read_text().count("started") == 1)
        killed = engine_pid(r.state)
        os.kill(killed, signal.SIGKILL)  # mid-step: the flags are off, the runbook is not done
        until("the engine to be gone", lambda: not running(killed))
        assert flags.flags["feature"]["enabled"] is False
        status = r.verb("status")
        assert status.returncode == 9 and "NO ENGINE" in status.stdout, status.stdout  # nothing runs the runbook now
        first.communicate(timeout=60)  # its engine went: it says so and ends

        second = subprocess.Popen([*WARROOM, "rollback", str(r.plan)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  stdin=subprocess.DEVNULL)
        until("the next engine to run the step again", lambda: ran.read_text().count("started") == 2)
        assert second.poll() is None  # the runbook is not done: no answer yet
        release.touch()
        out, err = second.communicate(timeout=60)
    finally:
        release.touch()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert second.returncode == 0 and out.strip() == "rolled back", out + err
    wait_for_engine(r.state)
    assert ran.read_text().count("done") == 1  # the step ran to its end once: the killed run was stopped first
    kinds = r.kinds()
    assert kinds.count("rollback.step") == 1 and kinds.count("rollback.outcome") == 1, kinds
    assert "engine.lost" in kinds, kinds
    assert r.verb("status").returncode == 5
