"""A `warroom rollback` that finds no engine starts one (issue 24's last unproven row): the rollback
it queued in the SQLite file reached the engine only through the store, so it was journaled as its
sender declared it. The engine it starts runs as that sender and is told which row is theirs: the
kernel proves who rolled back. Real `rollback` and `down` processes, a real engine, a SQLite file."""

from __future__ import annotations

import os
import pwd
import subprocess

import pytest

from tests.process.conftest import WARROOM

pytestmark = pytest.mark.slow


def test_a_rollback_that_starts_its_engine_is_journaled_as_the_kernel_names_its_sender(rollout):
    r = rollout(automation={"step_up": "manual"})
    env = {**os.environ, "LOGNAME": "mallory", "USER": "mallory"}  # names nobody: the uid's account is the sender
    rolled = subprocess.run([*WARROOM, "rollback", str(r.plan), "--reason", "no engine yet"], capture_output=True, text=True,
                            timeout=60, env=env, stdin=subprocess.DEVNULL)
    try:
        assert rolled.returncode == 0 and "started one to roll back" in rolled.stderr, rolled.stdout + rolled.stderr
        [intent] = [e for e in r.journal() if e["kind"] == "rollback.intent"]
        me = pwd.getpwuid(os.getuid()).pw_name
        actor = intent["data"]["actor"]
        assert actor["user"] == me and not actor.get("unproven"), actor
        assert actor["proof"].startswith(f"kernel: uid {os.getuid()} ({me})"), actor
        assert "not proven" not in intent["actor"] and "mallory" not in intent["actor"], intent["actor"]
    finally:
        r.verb("down", "--force")
