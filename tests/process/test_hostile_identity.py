"""Who runs an engine is outside text too (issue 21, item 11): a host name or user name with
escape sequences, bidi controls or CR/LF never reaches a terminal or the engine's log raw.
Real `warroom up`/`step`/`down` processes; the names come the way they do on a host (the
environment). A user name in USER/LOGNAME is never the sender's either (issue 24): the journal
names the uid's account, as the kernel proved it over the engine's local socket."""

from __future__ import annotations

import os
import pwd
import subprocess

import pytest

from tests.process.conftest import WARROOM
from warroom.store import open_store

pytestmark = pytest.mark.slow

# Retitles the terminal, reverses what follows, and forges a line of its own.
HOSTILE_HOST = "bastion\x1b]0;owned\x07\u202eue-noitsab\r\nFAKE engine stopped"
HOSTILE_USER = "al\x1b[2Jice\u2066\rFAKE"
RAW = ("\x1b", "\x07", "\u202e", "\u2066", "\r")


def assert_clean(text: str, where: str) -> None:
    assert not [c for c in RAW if c in text], f"raw control characters in {where}: {text!r}"
    assert not any(line.startswith("FAKE") for line in text.splitlines()), f"a forged line in {where}: {text!r}"


def test_up_down_and_the_engine_log_never_carry_a_hostile_host_or_user_name_raw(rollout):
    r = rollout(automation={"step_up": "manual"})
    env = {**os.environ, "WARROOM_HOSTNAME": HOSTILE_HOST, "USER": HOSTILE_USER, "LOGNAME": HOSTILE_USER}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*WARROOM, *args, str(r.plan)], capture_output=True, text=True, timeout=60, env=env,
                              stdin=subprocess.DEVNULL)

    started = run("up")
    assert started.returncode == 0 and "engine started: pid" in started.stdout, started.stdout + started.stderr
    again = run("up")  # says who drives: the holder's user and host
    assert again.returncode == 0 and "engine already driving" in again.stdout, again.stdout + again.stderr
    stepped = run("step")
    assert stepped.returncode == 0, stepped.stdout + stepped.stderr
    stopped = run("down", "--force")  # phase 1 is live: its guardrails would go unguarded
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stdout + stopped.stderr
    for name, result in (("up", started), ("up again", again), ("step", stepped), ("down", stopped)):
        assert_clean(result.stdout + result.stderr, f"the output of {name}")
    log = r.log.read_text()
    me = pwd.getpwuid(os.getuid()).pw_name
    assert "engine.start" in log and f"stopping: asked by {me}@" in log, log
    assert_clean(log, "the engine log")
    store = open_store(r.state, create=False, readonly=True)
    try:
        [step] = [e for e in store.entries() if e.kind == "step.intent"]
    finally:
        store.close()
    assert step.data["actor"]["user"] == me and step.data["actor"]["proof"].startswith(f"kernel: uid {os.getuid()} ({me})"), step.data
    assert step.actor.startswith(f"{me}@") and "al" not in step.actor.removeprefix(me), step.actor
