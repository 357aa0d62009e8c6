"""A full disk must not end automation (issue 12, item 6): samples are expendable, decisions are not.

The state lives on a real, small tmpfs that the test fills up while the engine runs; the
flag service is on the network, so the rollback the engine decides can still land.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from tests.process.conftest import WARROOM, Engine
from tests.races.conftest import plan_data
from tests.support.engines import wait_for_engine
from tests.support.waiting import DEADLINE, holds, until
from warroom.engine.lease import HEARTBEAT

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB filesystem of its own (tmpfs; needs root, as CI has)."""
    mount = tmp_path / "small"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True, text=True)
    if result.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a small tmpfs for the full-disk test: {result.stderr.strip()}")
        pytest.skip("mounting a tmpfs needs root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(folder) -> None:
    with open(folder / "filler", "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass  # ENOSPC: the disk is full now


def test_a_full_disk_keeps_guarding_says_so_loudly_and_writes_it_all_down_once_there_is_room(small_disk, flags):
    plan = plan_data(flags, faults=[{"metric": "error_rate", "phase": 1, "after": "6s", "value": 0.05}])
    rollout = Engine(small_disk, plan)
    engine = subprocess.Popen([*WARROOM, "engine", str(rollout.plan)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, stdin=subprocess.DEVNULL)
    try:
        wait_for_engine(rollout.state)
        until("phase 1", lambda: "step.outcome" in rollout.kinds())
        fill(small_disk)  # from here on not one more page of the journal can be written
        # The error rate breaks 6 s into phase 1: the engine rolls back from memory.
        until("the flag turned off", lambda: flags.flags.get("feature", {}).get("enabled") is False)
        assert engine.poll() is None  # still guarding
        journal_before = rollout.kinds()
        assert "rollback.intent" not in journal_before  # the decision could not be written …
        # Its lease renewals fail on the full disk too: two of them go by, and it still guards.
        holds("the engine to keep running on a full disk", lambda: engine.poll() is None, 2 * HEARTBEAT)
        (small_disk / "filler").unlink()  # room again
        until("the held decisions in the journal", lambda: "journal.recovered" in rollout.kinds())
    finally:
        engine.send_signal(signal.SIGTERM)
        out, _ = engine.communicate(timeout=DEADLINE)
    assert "THE JOURNAL CANNOT BE WRITTEN" in out and "Guarding from memory" in out, out  # said loudly
    kinds = rollout.kinds()
    # … and every decision is in it now, in order, with when it was taken.
    start = kinds.index("journal.unwritable")
    assert kinds.index("rollback.intent") > start and kinds.index("rollback.confirmed") > kinds.index("rollback.intent")
    assert kinds.index("journal.recovered") > kinds.index("rollback.outcome")
    entries = rollout.journal()
    intent = next(e for e in entries if e["kind"] == "rollback.intent")
    recovered = next(e for e in entries if e["kind"] == "journal.recovered")
    assert intent["ts"] < recovered["ts"] - 1  # journaled at the time it was decided, not when written
    status = rollout.status()
    assert status["state"] == "ROLLED_BACK" and flags.flags["feature"]["enabled"] is False
