"""`warroom down` asks the engine to stop: the journal's stop entry says who asked (only the
engine's log said it), as the kernel proved it. Real `up` and `down` processes, a SQLite file."""

from __future__ import annotations

import os
import pwd

import pytest

pytestmark = pytest.mark.slow


def test_the_journal_says_who_stopped_the_engine(rollout):
    r = rollout(automation={"step_up": "manual"})
    r.up()
    stopped = r.verb("down")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stdout + stopped.stderr
    [stop] = [e for e in r.journal() if e["kind"] == "engine.stop"]
    me = pwd.getpwuid(os.getuid()).pw_name
    assert f"(warroom down by {me}@" in stop["message"] and stop["data"]["by"].startswith(f"{me}@"), stop
    assert "not proven" not in stop["message"]  # down went over the engine's local socket: the kernel named its sender
    # The entry's actor is the person who asked, as the kernel proved it, not the engine.
    assert stop["actor"] == stop["data"]["by"] and stop["actor"].startswith(f"{me}@"), stop
    actor = stop["data"]["actor"]  # the actor in full, as journaled with the entry
    assert actor["user"] == me and not actor["automatic"] and actor["proof"].startswith("kernel:"), stop
