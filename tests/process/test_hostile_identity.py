"""Who runs an engine is outside text too (issue 21, item 11): a host name or user name with
escape sequences, bidi controls or CR/LF never reaches a terminal or the engine's log raw.
Real `warroom up`/`down` processes; the names come the way they do on a host (the
environment)."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.process.conftest import WARROOM

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
    stopped = run("down")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stdout + stopped.stderr
    for name, result in (("up", started), ("up again", again), ("down", stopped)):
        assert_clean(result.stdout + result.stderr, f"the output of {name}")
    log = r.log.read_text()
    assert "engine.start" in log and "stopping: asked by" in log, log
    assert_clean(log, "the engine log")
